"""The least-privilege setup of docs/deployment.md works: docs/deploy/roles.sql, run as
written, lets the owning role migrate and the running role append, project and audit,
see other roles' open transactions (the horizon diagnosis), and create nothing."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from eventstore.horizon import HOLDERS
from tests.support import ROOT

ROLES_SQL = ROOT / "docs" / "deploy" / "roles.sql"


@dataclass(frozen=True)
class Database:
    """A database of this test's own on the test server, and the two roles of roles.sql."""

    name: str
    owner: str
    app: str
    password: str

    def url(self, role: str) -> str:
        db = connection.settings_dict
        port = f":{db['PORT']}" if db.get("PORT") else ""
        host = quote(db["HOST"], safe="")
        url = f"postgresql://{role}:{self.password}@{host}{port}/{self.name}"
        # The owner migrates with migrate.env's lock_timeout, as documented.
        return url + ("?options=-c%20lock_timeout%3D10s" if role == self.owner else "")

    def connect(self, role: str | None = None) -> psycopg.Connection[Any]:
        """As ``role``; as the test server's own (super)user when None."""
        db = connection.settings_dict
        params: dict[str, Any] = {"host": db["HOST"], "dbname": self.name, "autocommit": True}
        if db.get("PORT"):
            params["port"] = db["PORT"]
        if role is None:
            params.update(user=db["USER"], password=db.get("PASSWORD") or None)
        else:
            params.update(user=role, password=self.password)
        return psycopg.connect(**params)


def _admin() -> psycopg.Connection[Any]:
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"], port=db.get("PORT") or None, user=db["USER"],
        password=db.get("PASSWORD") or None, dbname="postgres", autocommit=True,
    )  # fmt: skip


def _psql_variables(script: str, values: dict[str, str]) -> str:
    """psql's ``:"name"`` (a quoted identifier), the only form roles.sql uses."""
    return re.sub(r':"(\w+)"', lambda m: '"' + values[m.group(1)] + '"', script)


@pytest.fixture
def database(django_db_setup: None) -> Iterator[Database]:
    key = secrets.token_hex(4)
    made = Database(f"eventdesk_lp_{key}", f"lp_owner_{key}", f"lp_app_{key}", secrets.token_hex(8))
    with _admin() as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(made.name)))
    try:
        with made.connect() as conn:
            conn.execute(
                _psql_variables(ROLES_SQL.read_text(), {"owner": made.owner, "app": made.app})
            )
            for role in (made.owner, made.app):
                conn.execute(
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        sql.Identifier(role), sql.Literal(made.password)
                    )
                )
        yield made
    finally:
        with _admin() as admin:
            admin.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(made.name))
            )
            for role in (made.owner, made.app):
                admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def _manage(database: Database, role: str, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_DEBUG")}
    env["DATABASE_URL"] = database.url(role)
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (
        f"manage.py {' '.join(args)} as {role}:\n{done.stdout}{done.stderr}"
    )
    return done.stdout


def _count(conn: psycopg.Connection[Any], query: str) -> int:
    row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_the_owner_migrates_and_the_running_role_works(database: Database) -> None:
    _manage(database, database.owner, "migrate", "--noinput")
    # The running role: appends (the demo), projects, and writes audited decisions.
    _manage(database, database.app, "seed_demo")
    _manage(database, database.app, "run_subscribers", "--once", "--projections-only")
    # A worker that runs until stopped first reads django_migrations (--once does not).
    check = (
        "from subscribers.management.commands.run_subscribers import"
        " refuse_unapplied_migrations as refuse; refuse()"
    )
    _manage(database, database.app, "shell", "-c", check)
    _manage(database, database.app, "ensure_operator")
    assert _manage(database, database.app, "create_api_token", "admin").strip()
    with database.connect(database.app) as app:
        assert _count(app, "SELECT count(*) FROM demo_runs") > 0
        decisions = "SELECT count(*) FROM events WHERE event_type = 'DecisionRegistered'"
        assert _count(app, decisions) >= 1
        # ... and creates nothing: no table, nor in PostgreSQL 14's open public schema.
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("CREATE TABLE not_mine (id int)")


def test_the_running_role_sees_who_holds_the_horizon(database: Database) -> None:
    with database.connect() as holder, database.connect(database.app) as app:
        holder.execute("BEGIN")
        holder.execute("SELECT pg_current_xact_id()")  # holds an xid: the horizon stops here
        pid = holder.info.backend_pid
        with contextlib.closing(app.cursor()) as cursor:
            cursor.execute(HOLDERS, {"min_age": 0, "limit": 50})
            assert pid in [row[0] for row in cursor.fetchall()]
        holder.execute("ROLLBACK")
