"""Who knocks: one function turns an API token into an actor, for every door that takes
tokens (REST, MCP, ``/metrics``). What comes after (authorize, the durable store, the
database) is ``reactions_admin.guards``, shared with the acts and reads."""

from __future__ import annotations

from reactions_admin import errors
from reactions_admin.acts.tokens.handler import user_for_token
from reactions_admin.guards import Actor, database_errors


def actor_for_token(secret: str | None) -> Actor:
    """The active user an API token belongs to; 401 ``not_authenticated`` for no token, an
    unknown or revoked one, or one whose user is inactive."""
    if not secret:
        raise errors.NotAuthenticated("An API token is required (Authorization: Bearer <token>).")
    with database_errors():
        user = user_for_token(secret.strip())
    if user is None:
        raise errors.NotAuthenticated("The API token is unknown or revoked.")
    return user
