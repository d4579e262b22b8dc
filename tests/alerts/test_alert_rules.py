"""docs/alerts.yml, checked and unit-tested by the real ``promtool`` (Debian's package).

Each alert has a file of its own here with input series that fire it and series that
must not; ``promtool test rules`` proves the *firing* state with synthetic time, so no
test waits out a ``for:`` duration.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support import ROOT

RULES = ROOT / "docs" / "alerts.yml"
HERE = Path(__file__).resolve().parent
UNIT_TESTS = sorted(HERE.glob("*.yml"))


def _alerts() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["alert"] for group in groups for rule in group["rules"] if "alert" in rule]


def test_the_rules_are_valid(promtool: str) -> None:
    result = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_every_alert_has_a_runbook_linking_the_playbook() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    for rule in (rule for group in groups for rule in group["rules"]):
        annotations = rule["annotations"]
        assert annotations["runbook"].strip(), rule["alert"]
        target = annotations["runbook_url"].split("#")[0]
        assert (ROOT / target).is_file(), f"{rule['alert']}: {target} does not exist"


def test_every_alert_is_unit_tested_firing_and_quiet() -> None:
    """Each alert appears in some unit test with an expected alert (fires) and with an
    empty expectation (input series that must not fire it)."""
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        for case in yaml.safe_load(path.read_text())["tests"]:
            for check in case["alert_rule_test"]:
                (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    wanted = set(_alerts())
    assert wanted == {"EventdeskSubscriberWedged", "EventdeskSubscriberLagging",
                      "EventdeskStreamParked", "EventdeskHorizonHeld", "EventdeskNoLiveWorker",
                      "EventdeskFailureRate", "EventdeskRebuildStalled",
                      "EventdeskWakeupsNotArriving"}  # fmt: skip
    assert wanted <= firing, f"never shown firing: {wanted - firing}"
    assert wanted <= quiet, f"never shown quiet: {wanted - quiet}"


@pytest.mark.parametrize("unit_test", UNIT_TESTS, ids=[path.stem for path in UNIT_TESTS])
def test_alert_unit_tests_pass(promtool: str, unit_test: Path) -> None:
    result = subprocess.run(
        [promtool, "test", "rules", unit_test.name],
        cwd=HERE,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout
