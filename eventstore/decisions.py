"""``register_decision``: the audit event every operator act (and the worker, acting for
the system) appends.

A decision is a ``DecisionRegistered`` event with a ``context`` and a ``choice`` (what
kind of act), the actor, a reason and the act's inputs. It is appended in the caller's
transaction, the one that makes the change it records: both land or neither does.
"""

from __future__ import annotations

import getpass
import uuid
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser
from django.db import connection

from eventstore.postgres import PostgresEventStore
from eventstore.types import NewEvent, RecordedEvent, StreamAppend

#: Who acts: a user, or ``None`` for the operating-system account running a command
#: without naming a user (``manage.py create_api_token`` without ``--as``).
DecisionActor = AbstractBaseUser | AnonymousUser | None

#: The event type of every audited decision (a dismissal is one kind).
DECISION_EVENT_TYPE = "DecisionRegistered"


def actor_payload(actor: DecisionActor) -> dict[str, Any]:
    """How a decision names who acted: ``{"username", "id"}`` for a user; for the
    operating-system account, no user but ``os_user``."""
    if actor is None:
        return {"username": None, "id": None, "os_user": _os_user()}
    return {"username": actor.get_username(), "id": actor.pk}


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        return "unknown"


def register_decision(
    stream: str,
    *,
    context: str,
    choice: str,
    actor: DecisionActor,
    inputs: Mapping[str, Any],
    via: str,
    reason: str = "",
    correlation_id: uuid.UUID | None = None,
    causation_id: uuid.UUID | None = None,
) -> RecordedEvent:
    """Append a ``DecisionRegistered`` to ``stream`` in the open transaction.

    Always the PostgreSQL store: it is the one that shares Django's transaction, so
    the decision commits with the change it records. Raises ``RuntimeError`` outside
    ``transaction.atomic()``, where the two could land apart.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("A decision is appended in the transaction of the change it records.")
    who = actor_payload(actor)
    data = {"context": context, "choice": choice, "reason": reason, "actor": who,
            "inputs": dict(inputs)}  # fmt: skip
    metadata: dict[str, Any] = {
        "actor": who,
        "via": via,
        "correlation_id": str(correlation_id or uuid.uuid4()),
    }
    if causation_id is not None:
        metadata["causation_id"] = str(causation_id)
    [recorded] = PostgresEventStore().append_streams(
        [StreamAppend(stream, [NewEvent(DECISION_EVENT_TYPE, data, metadata)])]
    )
    return recorded
