"""The one refusal of the rebuild engine: ``RebuildRefused(code, detail)``.

Every inner step (start, swap, roll back, cancel, pause, resume, retry) either makes
its change in the caller's transaction or raises this, with one of ``CODES``; the
operator surface maps the codes to its answers (409, or 404 for an unknown subscriber).
"""

from __future__ import annotations

from typing import Final

#: The projection declares no ``models``, or a foreign key from outside points at them.
PROJECTION_NOT_REBUILDABLE: Final = "projection_not_rebuildable"
#: A reaction's effects already happened: replaying it would repeat them.
REACTION_CANNOT_BE_REBUILT: Final = "reaction_cannot_be_rebuilt"
#: The projection already has a rebuild that has not ended.
REBUILD_IN_PROGRESS: Final = "rebuild_in_progress"
#: No rebuild of that projection to act on.
NO_REBUILD: Final = "no_rebuild"
#: The swap of a rebuild that is not verified (or whose ``verify()`` found problems).
REBUILD_NOT_READY: Final = "rebuild_not_ready"
#: The rebuild failed: cancel it, or retry it.
REBUILD_FAILED: Final = "rebuild_failed"
#: No kept tables to swap back.
NOTHING_TO_ROLL_BACK: Final = "nothing_to_roll_back"
#: A migration changed a live table during the rebuild (or since the swap).
TABLE_DEFINITION_CHANGED: Final = "table_definition_changed"
#: No subscriber of that name is configured here.
SUBSCRIBER_NOT_FOUND: Final = "subscriber_not_found"
#: The swap (or roll back) could not take its locks within the lock timeout: a long
#: reader holds a table. Nothing changed; try again (``with_lock_retries`` does).
REBUILD_LOCKS_BUSY: Final = "rebuild_locks_busy"

CODES: Final = (
    PROJECTION_NOT_REBUILDABLE,
    REACTION_CANNOT_BE_REBUILT,
    REBUILD_IN_PROGRESS,
    NO_REBUILD,
    REBUILD_NOT_READY,
    REBUILD_FAILED,
    NOTHING_TO_ROLL_BACK,
    TABLE_DEFINITION_CHANGED,
    SUBSCRIBER_NOT_FOUND,
    REBUILD_LOCKS_BUSY,
)


class RebuildRefused(Exception):
    """An inner step refused: ``code`` (one of ``CODES``) and a sentence for the operator.

    Raised before anything changed, or inside the caller's transaction, which the
    caller then rolls back: either way nothing of the step lands.
    """

    def __init__(self, code: str, detail: str) -> None:
        assert code in CODES, code
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
