"""Reaction leases: a token per claim, and one renewer per worker for all of them.

A worker's leases are of two kinds, renewed by the same thread in the same statement:
a global-order reaction's claim is a lease on its bookmark row, a stream-ordered
reaction's claim a lease on one row of ``reaction_work``.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connection

from config.options import options
from subscribers import sql
from subscribers.connection import discard_connection

logger = logging.getLogger("eventdesk.leases")

#: A lease is renewed this many times per ``lease_seconds``: a renewal that comes late
#: (a busy machine, a slow statement) still lands well before the lease runs out.
RENEWALS_PER_LEASE = 4
#: ``projection_bookmarks.lease_owner`` holds a token: the worker id, '#', a counter.
MAX_TOKEN_LENGTH = 200
_COUNTER_ROOM = 21  # '#' and up to 20 digits


class LeaseKeeper:
    """The leases one worker holds: one token per claim, all renewed together.

    A token is the worker's id plus a counter (``host:pid:random#17``), written on
    the bookmark (or the work row) by the claim. The compare-and-set, the renewal and
    the failure record match the token, so a ``handle`` that timed out and returns
    late can never commit under a later claim, even one by the same worker.

    Thread-safe: the reaction loops ``hold`` and ``let_go`` tokens while the
    renewer thread (``renew_until``) reads them.
    """

    def __init__(self, owner: str) -> None:
        if not owner or len(owner) > MAX_TOKEN_LENGTH - _COUNTER_ROOM:
            raise ValueError(
                f"a worker id must have 1 to {MAX_TOKEN_LENGTH - _COUNTER_ROOM} characters,"
                f" got {len(owner)}"
            )
        self.owner = owner
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        self._held: set[str] = set()
        self._lost: set[str] = set()
        #: Set while no lease is held: a stopping renewer waits on it.
        self._idle = threading.Event()
        self._idle.set()
        #: Told the subscriber of each lease renewed (the worker's metrics count them).
        self.on_renewed: Callable[[str], None] | None = None

    def new_token(self) -> str:
        """A token no claim of this worker has used before."""
        with self._lock:
            return f"{self.owner}#{next(self._counter)}"

    def hold(self, token: str) -> None:
        """``token`` was claimed: renew it until ``let_go``."""
        with self._lock:
            self._held.add(token)
            self._idle.clear()

    def let_go(self, token: str) -> None:
        """The claim of ``token`` is settled (or abandoned): stop renewing it."""
        with self._lock:
            self._held.discard(token)
            self._lost.discard(token)
            if not self._held:
                self._idle.set()

    def held(self) -> frozenset[str]:
        """The tokens being renewed now."""
        with self._lock:
            return frozenset(self._held)

    def is_lost(self, token: str) -> bool:
        """True once a renewal found no row carrying ``token`` any more (another worker
        took it over, an operator moved it): the claim's result will be refused."""
        with self._lock:
            return token in self._lost

    def renew(self) -> None:
        """Push back the expiry of every lease held, bookmark and work-row leases alike,
        in one short statement."""
        tokens = sorted(self.held())
        if not tokens:
            return
        with connection.cursor() as cursor:
            cursor.execute(sql.RENEW_LEASES, {"tokens": tokens, "lease": options().lease_seconds})
            rows = cursor.fetchall()
            renewed = {row[0] for row in rows}
            missing = [token for token in tokens if token not in renewed]
            if missing:
                cursor.execute(sql.LEASES_STILL_HELD, {"tokens": missing})
                missing = [t for t in missing if t not in {row[0] for row in cursor.fetchall()}]
        if self.on_renewed is not None:
            for row in rows:
                self.on_renewed(row[1])
        if missing:
            with self._lock:
                # Only tokens still held: one settled meanwhile has nothing left to lose.
                self._lost.update(token for token in missing if token in self._held)

    def renew_until(self, stopped: threading.Event) -> None:
        """The renewer thread: renew every ``lease_seconds / 4`` until ``stopped`` is set
        and no lease is held any more (a stopping worker's last batches keep theirs)."""
        try:
            while True:
                interval = options().lease_seconds / RENEWALS_PER_LEASE
                if stopped.is_set():
                    if not self.held():
                        return
                    self._idle.wait(interval)
                elif stopped.wait(interval):
                    continue
                self._renew_once()
        finally:
            discard_connection()

    def _renew_once(self) -> None:
        try:
            self.renew()
        except (OperationalError, InterfaceError) as exc:
            # The leases run out if the database stays away; the settle then finds out.
            logger.warning("could not renew the leases of %s: %s", self.owner, exc)
            discard_connection()  # the next renewal starts on a fresh connection
        except BaseException:
            discard_connection()
            raise
        else:
            # While leases are held the connection is kept: with a connection pool, the
            # next renewal must not queue behind the handle calls for a free slot.
            # Idle, it is given back (no backend kept for nothing).
            if not self.held():
                discard_connection()
