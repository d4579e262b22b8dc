"""The one place the engine appends its own decisions (the worker's: a failure, the
drop of kept tables, the swap of ``--swap-when-verified``).

``register_decision`` moves to ``eventstore.decisions``; only this import changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser

from eventstore.decisions import register_decision

#: Every rebuild decision goes to this stream, with this context.
REBUILD_STREAM = "decisions-projection-rebuild"
CONTEXT = "ProjectionRebuild"
#: How a decision the worker takes on its own names itself.
VIA_WORKER = "worker"


def record_decision(
    choice: str,
    *,
    projection: str,
    inputs: Mapping[str, Any],
    actor: AbstractBaseUser | None,
    reason: str,
) -> None:
    """Append a ``ProjectionRebuild`` decision made by the worker, in the open transaction.

    ``actor`` None is the system (the worker acting on its own: a failure, a cleanup).
    """
    payload = {"subscriber": projection, **inputs}
    if actor is None:
        payload["actor_kind"] = "system"
    register_decision(
        REBUILD_STREAM,
        context=CONTEXT,
        choice=choice,
        actor=actor,
        inputs=payload,
        via=VIA_WORKER,
        reason=reason,
    )


def user_by_id(user_id: int | None) -> AbstractBaseUser | None:
    """The user who started a rebuild (None when gone, or when none was named)."""
    if user_id is None:
        return None
    return get_user_model().objects.filter(pk=user_id).first()
