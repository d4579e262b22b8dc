"""The SQL a rebuild's promises rest on, named and kept in one place."""

from eventstore.sql import EVENT_COLUMNS, HORIZON, NOTIFY_CHANNEL

# The rebuild's events: after its bookmark, never past the live projection's (every event
# up to there was visible to the live projection, so none can still appear before it),
# and under the horizon like every reader.
_READ_UPTO = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE (transaction_id, position) > (%(tx)s::text::xid8, %(pos)s)
  AND (transaction_id, position) <= (%(to_tx)s::text::xid8, %(to_pos)s)
  AND {HORIZON}{{types}}
ORDER BY events.transaction_id, events.position
LIMIT %(limit)s
"""
READ_UPTO = _READ_UPTO.format(types="")
READ_UPTO_OF_TYPES = _READ_UPTO.format(types=" AND event_type = ANY(%(types)s)")

# How many of its events lie between two cursors (progress: the total, what is left).
_COUNT_UPTO = f"""
SELECT count(*) FROM events
WHERE (transaction_id, position) > (%(tx)s::text::xid8, %(pos)s)
  AND (transaction_id, position) <= (%(to_tx)s::text::xid8, %(to_pos)s)
  AND {HORIZON}{{types}}
"""
COUNT_UPTO = _COUNT_UPTO.format(types="")
COUNT_UPTO_OF_TYPES = _COUNT_UPTO.format(types=" AND event_type = ANY(%(types)s)")

# A rebuild's batch does not wait for its commit to reach the disk: after a crash, the
# last batches are lost together with the bookmark that counted them, and replayed.
NO_FSYNC_WAIT = "SELECT set_config('synchronous_commit', 'off', true)"

# Where the live projection stands (no lock: the rebuild only must not pass it).
LIVE_CURSOR = """
SELECT last_transaction_id, last_position FROM projection_bookmarks WHERE subscriber_name = %(name)s
"""

# The swap and the verification line both bookmarks up: the live one is locked so that the
# live projection (FOR UPDATE SKIP LOCKED) passes over it for those few milliseconds.
LOCK_LIVE = """
SELECT last_transaction_id, last_position, status FROM projection_bookmarks
WHERE subscriber_name = %(name)s FOR UPDATE
"""

# A rebuild a worker may work now: configured here, in a worked phase, due, and not leased
# to another worker for a long step. SKIP LOCKED: a rebuild another worker is batching
# is passed over, not queued for.
CLAIM = """
SELECT id FROM projection_rebuilds
WHERE projection_name = ANY(%(names)s) AND phase = ANY(%(phases)s)
  AND (next_retry_at IS NULL OR next_retry_at <= now())
  AND (lease_expires_at IS NULL OR lease_expires_at <= now() OR lease_owner = %(owner)s)
ORDER BY updated_at
LIMIT 1
FOR UPDATE SKIP LOCKED
"""

# A long step (indexing, verifying) runs outside any transaction under a lease.
TAKE_LEASE = """
UPDATE projection_rebuilds
SET lease_owner = %(owner)s, lease_expires_at = now() + make_interval(secs => %(secs)s),
    updated_at = now()
WHERE id = %(id)s
"""

# Which sessions hold a lock on the live tables (the swap says whom it waits for).
LOCK_HOLDERS = """
SELECT DISTINCT a.pid, left(coalesce(a.query, ''), 120),
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8
FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.granted AND l.relation = ANY(%(tables)s::regclass[]) AND a.pid <> pg_backend_pid()
ORDER BY 3 DESC NULLS LAST
LIMIT 3
"""

# Kept tables past their window, for the worker's cleanup.
#: How long after a swap its clearing (the earlier kept tables, the role) counts as failed,
#: and the worker's cleanup does it.
LEFT_AFTER_SWAP_SECONDS = 60

# Kept tables to drop: past their window, or left by a later swap (which drops them just
# after its commit: these are the ones it could not, a minute on) and so beyond any roll
# back (only the last swap rolls back). Whether the window is over, too. Read without a
# lock: the drop locks the tables, then the row (KEPT_STILL_THERE).
KEPT_EXPIRED = f"""
SELECT id, kept_until <= now() FROM projection_rebuilds r
WHERE phase = 'swapped' AND kept_dropped_at IS NULL AND id <> ALL(%(skipped)s::bigint[])
  AND (kept_until <= now() OR EXISTS (
      SELECT 1 FROM projection_rebuilds n
      WHERE n.projection_name = r.projection_name AND n.created_at > r.created_at
        AND n.swapped_at < now() - interval '{LEFT_AFTER_SWAP_SECONDS} seconds'))
ORDER BY kept_until
LIMIT 1
"""

# The tables of a kept schema, each qualified and quoted (to be locked).
KEPT_TABLES = """
SELECT format('%%I.%%I', n.nspname, c.relname) FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relkind IN ('r', 'p')
ORDER BY c.relname
"""

# The row of kept tables about to be dropped, locked, if they are still to drop.
KEPT_STILL_THERE = """
SELECT id FROM projection_rebuilds
WHERE id = %(id)s AND phase = 'swapped' AND kept_dropped_at IS NULL
FOR UPDATE SKIP LOCKED
"""

# The role of a rebuild that swapped, still there a minute on (the swap drops it just
# after its commit: this is one it could not).
LEFTOVER_ROLES = f"""
SELECT r.id FROM projection_rebuilds r JOIN pg_roles ON pg_roles.rolname = r.role_name
WHERE r.phase IN ('swapped', 'rolled_back')
  AND r.swapped_at < now() - interval '{LEFT_AFTER_SWAP_SECONDS} seconds'
"""

# After the live bookmark was held (the line-up, a swap, a roll back), the live projection
# may have passed over it (SKIP LOCKED) and gone to sleep: wake the workers (at commit).
WAKE_WORKERS = f"SELECT pg_notify('{NOTIFY_CHANNEL}', '')"
