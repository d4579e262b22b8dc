"""The example deployment in docs/deploy/: systemd accepts the unit files
(``systemd-analyze verify``, where it exists), every command line parses with the very
uvicorn and management commands it names, and the example environment passes
``check --deploy``."""

from __future__ import annotations

import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import load_command_class
from uvicorn.main import main as uvicorn_main

from config.options import EventdeskOptions
from tests.support import ROOT

DEPLOY = ROOT / "docs" / "deploy"
UNITS = sorted(DEPLOY.glob("*.service"))
#: Where the unit files expect the project (the test substitutes this checkout).
INSTALLED_AT = "/opt/eventdesk"
#: The project's commands and the apps that hold them.
COMMANDS = {"run_subscribers": "subscribers", "migrate": "django.core"}


def _sections(unit: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as systemd reads it: sections, keys (repeatable), continued lines."""
    text = re.sub(r"\\\n\s*", " ", unit.read_text())
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        key, equals, value = line.partition("=")
        assert current is not None, f"{unit.name}:{number}: outside a section: {line}"
        assert equals, f"{unit.name}:{number}: not key=value: {line}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _exec_start(unit: Path) -> list[str]:
    (command,) = _sections(unit)["Service"]["ExecStart"]
    return shlex.split(command.replace("%i", "9464"))


def test_there_are_a_console_a_worker_and_a_migration() -> None:
    assert {u.name for u in UNITS} == {
        "eventdesk-console.service",
        "eventdesk-worker@.service",
        "eventdesk-migrate.service",
    }


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_every_command_line_parses(unit: Path) -> None:
    argv = _exec_start(unit)
    assert argv[0] == f"{INSTALLED_AT}/.venv/bin/python"
    if argv[1:3] == ["-m", "uvicorn"]:
        # click parses the options exactly as `uvicorn ...` would, without serving.
        context = uvicorn_main.make_context("uvicorn", argv[3:])
        assert context.params["app"] == "config.asgi:application"
        assert context.params["forwarded_allow_ips"] == "127.0.0.1"
    else:
        assert argv[1] == "manage.py"
        name, args = argv[2], argv[3:]
        parser = load_command_class(COMMANDS[name], name).create_parser("manage.py", name)
        parser.parse_args(args)  # exits (SystemExit) on an option the command lacks


def test_a_stopping_worker_has_time_to_give_its_claims_back() -> None:
    service = _sections(DEPLOY / "eventdesk-worker@.service")["Service"]
    (stop,) = service["TimeoutStopSec"]
    assert int(stop) > EventdeskOptions().shutdown_timeout_seconds + 10


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("no systemd-analyze here (Debian's systemd package): the units are only parsed")
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED_AT, str(ROOT)))
    names = [str(tmp_path / u.name) for u in UNITS] + [
        str(tmp_path / "eventdesk-worker@9464.service")
    ]
    done = subprocess.run(
        [analyze, "verify", *names], capture_output=True, text=True, timeout=120, check=False
    )
    # It warns (unknown keys, bad values, missing programs) on stderr, exit status 0 or not.
    assert (done.returncode, done.stderr.strip()) == (0, ""), done.stdout + done.stderr


def _env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_the_example_environment_passes_check_deploy() -> None:
    example = _env_file(DEPLOY / "eventdesk.env")
    assert example["DJANGO_SECRET_KEY"] == "CHANGE-ME"
    example["DJANGO_SECRET_KEY"] = secrets.token_urlsafe(50)  # as its comment says to make one
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EVENTDESK_", "DJANGO_"))}
    done = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env={**env, **example}, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout
    assert set(_env_file(DEPLOY / "migrate.env")) == {"DATABASE_URL"}
