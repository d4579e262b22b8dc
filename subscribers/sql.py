"""The SQL the worker's promises rest on, named and kept in one place."""

from eventstore.sql import EVENT_COLUMNS, HORIZON

# A new subscriber's bookmark; concurrent workers may both try, the first one wins.
ENSURE_BOOKMARK = """
INSERT INTO projection_bookmarks (subscriber_name, kind, last_transaction_id, last_position,
    status, attempts, last_error, last_traceback, lease_owner)
VALUES (%(name)s, %(kind)s, %(tx)s, %(pos)s, 'active', 0, '', '', '')
ON CONFLICT (subscriber_name) DO NOTHING
"""

# Bounds a projection batch: a hung statement, or a batch idling in Python, is ended by
# the server (its transaction rolls back) instead of holding the horizon back forever.
# The session's pid is what the worker's watchdog terminates if the batch hangs in Python.
BATCH_TIMEOUTS = """
SELECT pg_backend_pid(), set_config('statement_timeout', %(ms)s, true),
       set_config('idle_in_transaction_session_timeout', %(ms)s, true)
"""

# A batch past its timeout: end its session, so its transaction rolls back and the
# bookmark row it holds is released (the stuck Python thread cannot be interrupted).
TERMINATE_BATCH = "SELECT pg_terminate_backend(%(pid)s)"

# The watchdog records the timeout once the terminated session has let go of the row.
WAIT_FOR_ROW = "SET LOCAL lock_timeout = '30s'"
LOCK_BOOKMARK_AFTER_TIMEOUT = """
SELECT 1 FROM projection_bookmarks WHERE subscriber_name = %(name)s FOR UPDATE
"""

# A projection batch owns its bookmark row for the whole transaction; SKIP LOCKED lets
# another worker pass over a subscriber that is already being worked instead of queueing.
LOCK_PROJECTION_BOOKMARK = """
SELECT last_transaction_id, last_position, attempts, failing_event_id
FROM projection_bookmarks
WHERE subscriber_name = %(name)s AND status IN ('active', 'retrying')
  AND (next_retry_at IS NULL OR next_retry_at <= now())
FOR UPDATE SKIP LOCKED
"""

# The projection's bookmark moves in the transaction holding its writes (row already locked).
ADVANCE_LOCKED = """
UPDATE projection_bookmarks
SET last_transaction_id = %(tx)s, last_position = %(pos)s, status = 'active', attempts = 0,
    failing_event_id = NULL, last_error = '', last_traceback = '', failed_at = NULL,
    next_retry_at = NULL, updated_at = now()
WHERE subscriber_name = %(name)s
"""

# A reaction works outside any transaction, so it holds a lease instead of a lock: the
# plain UPDATE serialises rival claims, and a crashed worker's lease simply expires.
CLAIM_LEASE = """
UPDATE projection_bookmarks
SET lease_owner = %(owner)s, lease_expires_at = now() + make_interval(secs => %(lease)s),
    updated_at = now()
WHERE subscriber_name = %(name)s AND status IN ('active', 'retrying')
  AND (next_retry_at IS NULL OR next_retry_at <= now())
  AND (lease_expires_at IS NULL OR lease_expires_at <= now() OR lease_owner = %(owner)s)
RETURNING last_transaction_id, last_position, attempts, failing_event_id
"""

# The reaction's result lands only if the bookmark is still where the claim found it and
# the lease is still ours; otherwise an operator moved it (or another worker took over)
# and the result is discarded. A pause set meanwhile by an operator is kept.
COMPARE_AND_SET = """
UPDATE projection_bookmarks
SET last_transaction_id = %(to_tx)s, last_position = %(to_pos)s,
    status = CASE WHEN status = 'paused' THEN status ELSE 'active' END, attempts = 0,
    failing_event_id = NULL, last_error = '', last_traceback = '', failed_at = NULL,
    next_retry_at = NULL, lease_owner = '', lease_expires_at = NULL, updated_at = now()
WHERE subscriber_name = %(name)s AND last_transaction_id = %(tx)s AND last_position = %(pos)s
  AND lease_owner = %(owner)s
RETURNING 1
"""

# A lease given back without moving the bookmark (nothing to do, a discarded result).
RELEASE_LEASE = """
UPDATE projection_bookmarks SET lease_owner = '', lease_expires_at = NULL, updated_at = now()
WHERE subscriber_name = %(name)s AND lease_owner = %(owner)s
"""

# Every lease a stopping worker still holds: another worker need not wait for expiry.
RELEASE_ALL_LEASES = """
UPDATE projection_bookmarks SET lease_owner = '', lease_expires_at = NULL, updated_at = now()
WHERE lease_owner = %(owner)s
"""

# The failure is recorded against the cursor it happened at (and, for a reaction, only
# while the lease is ours): a bookmark an operator has moved meanwhile is left alone.
RECORD_FAILURE = """
UPDATE projection_bookmarks
SET status = %(status)s, attempts = %(attempts)s, failing_event_id = %(event_id)s,
    last_error = %(error)s, last_traceback = %(traceback)s, failed_at = now(),
    next_retry_at = CASE WHEN %(delay)s::float8 IS NULL THEN NULL
                         ELSE now() + make_interval(secs => %(delay)s::float8) END,
    lease_owner = '', lease_expires_at = NULL, updated_at = now()
WHERE subscriber_name = %(name)s AND last_transaction_id = %(tx)s AND last_position = %(pos)s
  AND (%(owner)s = '' OR lease_owner = %(owner)s)
RETURNING next_retry_at
"""

# When the loop should look again at subscribers waiting for a retry.
NEXT_RETRY = """
SELECT min(next_retry_at) FROM projection_bookmarks
WHERE subscriber_name = ANY(%(names)s) AND status = 'retrying'
"""

_HEAD = f"""
SELECT transaction_id::text::bigint AS head_tx, position AS head_pos FROM events
WHERE {HORIZON} ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1
"""

# The wanted events after a bookmark and the visible head, in ONE statement so both see
# the same snapshot: a batch that comes back short may then move the bookmark to that
# head, past events the subscriber does not want, without passing over a wanted one.
_READ_BATCH = """
WITH head AS ({head})
SELECT head.head_tx, head.head_pos, wanted.*
FROM (SELECT 1) AS one
LEFT JOIN head ON true
LEFT JOIN LATERAL (
    SELECT {columns} FROM events
    WHERE (transaction_id, position) > (%(tx)s::text::xid8, %(pos)s) AND {horizon}{types}
    ORDER BY events.transaction_id, events.position
    LIMIT %(limit)s
) AS wanted ON true
"""
READ_BATCH = _READ_BATCH.format(head=_HEAD, columns=EVENT_COLUMNS, horizon=HORIZON, types="")
READ_BATCH_OF_TYPES = _READ_BATCH.format(
    head=_HEAD, columns=EVENT_COLUMNS, horizon=HORIZON, types=" AND event_type = ANY(%(types)s)"
)

# Lag for the admin: events behind the head, counted along the global-order index and
# capped, so a subscriber far behind costs a bounded count (shown as "10000+"). Only the
# types the subscriber handles count: %s is a JSON object of subscriber name -> its
# event_types; a subscriber missing from it (no event_types, or unknown) counts every type.
LAG_CAP = 10_000
LAG = f"""
SELECT count(*) FROM (
    SELECT 1 FROM events
    WHERE (transaction_id, position) > (projection_bookmarks.last_transaction_id::text::xid8,
                                        projection_bookmarks.last_position)
      AND {HORIZON}
      AND (NOT %s::jsonb ? projection_bookmarks.subscriber_name
           OR event_type = ANY(ARRAY(SELECT jsonb_array_elements_text(
                  %s::jsonb -> projection_bookmarks.subscriber_name))))
    LIMIT {LAG_CAP + 1}
) AS behind
"""
