"""The SQL the worker's promises rest on, named and kept in one place."""

from eventstore.sql import EVENT_COLUMNS, HORIZON, HORIZON_CTE, HORIZON_ONCE

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
# The same round trip sets the batch's timeouts (BATCH_TIMEOUTS; the lock never waits),
# names the session the watchdog would end, and ({commit}) may let the batch commit
# without waiting for the disk (eventstore migration 0004): one round trip per batch.
_LOCK_PROJECTION_BOOKMARK = """
SELECT last_transaction_id, last_position, attempts, failing_event_id,
       pg_backend_pid() AS backend_pid,
       set_config('statement_timeout', %(ms)s, true) AS batch_statement_timeout,
       set_config('idle_in_transaction_session_timeout', %(ms)s, true) AS batch_idle_timeout,
       {commit} AS batch_commit
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

# The retry of a batch given up on (a timeout) commits the events before the hung one: the
# bookmark moves to just before it but keeps its failure and attempts, so they add up.
ADVANCE_LOCKED_KEEPING_FAILURE = """
UPDATE projection_bookmarks
SET last_transaction_id = %(tx)s, last_position = %(pos)s, updated_at = now()
WHERE subscriber_name = %(name)s
"""

# A reaction works outside any transaction, so it holds a lease instead of a lock: the
# plain UPDATE serialises rival claims, and a crashed worker's lease simply expires. Each
# claim writes a token of its own (worker id + counter), so nothing done under an
# earlier claim -- not even by the same worker -- can pass for this one.
CLAIM_LEASE = """
UPDATE projection_bookmarks
SET lease_owner = %(token)s, lease_expires_at = now() + make_interval(secs => %(lease)s),
    updated_at = now()
WHERE subscriber_name = %(name)s AND status IN ('active', 'retrying')
  AND (next_retry_at IS NULL OR next_retry_at <= now())
  AND (lease_expires_at IS NULL OR lease_expires_at <= now())
RETURNING last_transaction_id, last_position, attempts, failing_event_id
"""

# One statement renews every lease a worker holds while its handles run: the bookmark
# leases of global-order reactions and the work-row leases of stream-ordered ones. A row
# another session has locked (a settle, a dismissal) is skipped rather than waited for:
# one busy row must not hold back the renewal of all the others.
RENEW_LEASES = """
WITH bookmarks AS (
    UPDATE projection_bookmarks
    SET lease_expires_at = now() + make_interval(secs => %(lease)s)
    WHERE subscriber_name IN (
        SELECT subscriber_name FROM projection_bookmarks
        WHERE lease_owner = ANY(%(tokens)s) FOR UPDATE SKIP LOCKED
    )
    RETURNING lease_owner AS token, subscriber_name
), work AS (
    UPDATE reaction_work
    SET lease_expires_at = now() + make_interval(secs => %(lease)s)
    WHERE id IN (
        SELECT id FROM reaction_work WHERE lease_token = ANY(%(tokens)s) FOR UPDATE SKIP LOCKED
    )
    RETURNING lease_token AS token, subscriber_name
)
SELECT token, subscriber_name FROM bookmarks
UNION ALL SELECT token, subscriber_name FROM work
"""

# Which of the tokens a renewal did not return still stand (skipped as locked, not lost).
LEASES_STILL_HELD = """
SELECT lease_owner FROM projection_bookmarks WHERE lease_owner = ANY(%(tokens)s)
UNION ALL
SELECT lease_token FROM reaction_work WHERE lease_token = ANY(%(tokens)s)
"""

# Settling a reaction step starts here: the row as it is now decides whether the result
# lands (same cursor, our token), was overtaken (the cursor moved) or lost its lease.
LOCK_REACTION_BOOKMARK = """
SELECT last_transaction_id, last_position, attempts, failing_event_id, lease_owner
FROM projection_bookmarks WHERE subscriber_name = %(name)s
FOR UPDATE
"""

# The reaction's result lands only if the bookmark is still where the claim found it and
# the lease is still this claim's (the token, not the worker: a late result of an earlier
# claim by the same worker is refused). A pause set meanwhile by an operator is kept.
COMPARE_AND_SET = """
UPDATE projection_bookmarks
SET last_transaction_id = %(to_tx)s, last_position = %(to_pos)s,
    status = CASE WHEN status = 'paused' THEN status ELSE 'active' END, attempts = 0,
    failing_event_id = NULL, last_error = '', last_traceback = '', failed_at = NULL,
    next_retry_at = NULL, lease_owner = '', lease_expires_at = NULL, updated_at = now()
WHERE subscriber_name = %(name)s AND last_transaction_id = %(tx)s AND last_position = %(pos)s
  AND lease_owner = %(token)s
RETURNING 1
"""

# A lease given back without moving the bookmark (nothing to do, a discarded result).
RELEASE_LEASE = """
UPDATE projection_bookmarks SET lease_owner = '', lease_expires_at = NULL, updated_at = now()
WHERE subscriber_name = %(name)s AND lease_owner = %(token)s
"""

# Every lease a stopping worker still holds, on bookmarks and work rows (all its tokens
# start with its id and '#'): another worker need not wait for them to expire.
RELEASE_ALL_LEASES = """
WITH work AS (
    UPDATE reaction_work SET lease_token = '', lease_expires_at = NULL
    WHERE starts_with(lease_token, %(owner)s || '#')
)
UPDATE projection_bookmarks SET lease_owner = '', lease_expires_at = NULL, updated_at = now()
WHERE starts_with(lease_owner, %(owner)s || '#')
"""

# The failure is recorded against the cursor it happened at (and, for a reaction, only
# while the lease is this claim's token): a bookmark an operator has moved is left alone.
# A pause set meanwhile is kept; the retrying/wedged status is what resume brings back.
# An attempt whose lease was lost meanwhile failed too (its result is discarded), and
# counts: a handle that keeps losing its lease backs off and wedges instead of repeating
# its outside effects forever. That lease now belongs to someone else and is kept
# (keep_lease, with no owner to match); the caller holds the row locked at this cursor.
RECORD_FAILURE = """
UPDATE projection_bookmarks
SET status = CASE WHEN status = 'paused' THEN status ELSE %(status)s END,
    paused_from = CASE WHEN status = 'paused' THEN %(status)s ELSE paused_from END,
    attempts = %(attempts)s, failing_event_id = %(event_id)s,
    last_error = %(error)s, last_traceback = %(traceback)s, failed_at = now(),
    next_retry_at = CASE WHEN %(delay)s::float8 IS NULL THEN NULL
                         ELSE now() + make_interval(secs => %(delay)s::float8) END,
    lease_owner = CASE WHEN %(keep_lease)s THEN lease_owner ELSE '' END,
    lease_expires_at = CASE WHEN %(keep_lease)s THEN lease_expires_at END,
    updated_at = now()
WHERE subscriber_name = %(name)s AND last_transaction_id = %(tx)s AND last_position = %(pos)s
  AND (%(owner)s = '' OR lease_owner = %(owner)s)
RETURNING next_retry_at
"""

# When the loop should look again at subscribers waiting for a retry.
NEXT_RETRY = """
SELECT min(next_retry_at) FROM projection_bookmarks
WHERE subscriber_name = ANY(%(names)s) AND status = 'retrying'
"""

# The head and the batch under one horizon (HORIZON_CTE in the statement's WITH).
_HEAD = f"""
SELECT transaction_id::text::bigint AS head_tx, position AS head_pos FROM events
WHERE {HORIZON_ONCE} ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1
"""

# The wanted events after a bookmark and the visible head, in ONE statement so both see
# the same snapshot: a batch that comes back short may then move the bookmark to that
# head, past events the subscriber does not want, without passing over a wanted one.
_READ_BATCH = """
WITH {horizon_cte}, head AS ({head})
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
_ONCE = {"horizon_cte": HORIZON_CTE, "horizon": HORIZON_ONCE, "head": _HEAD}
READ_BATCH = _READ_BATCH.format(**_ONCE, columns=EVENT_COLUMNS, types="")
READ_BATCH_OF_TYPES = _READ_BATCH.format(
    **_ONCE, columns=EVENT_COLUMNS, types=" AND event_type = ANY(%(types)s)"
)

# A projection batch's first round trip: LOCK_PROJECTION_BOOKMARK and READ_BATCH in one
# statement. The events and the head are read under this statement's snapshot, after
# the bookmark as locked: FOR UPDATE returns the row's latest version (a batch that
# committed meanwhile is seen), so the read starts where the last batch left off.
_LOCK_AND_READ_BATCH = """
WITH {horizon_cte}, bookmark AS ({lock}), head AS ({head})
SELECT bookmark.*, head.head_tx, head.head_pos, wanted.*
FROM bookmark
LEFT JOIN head ON true
LEFT JOIN LATERAL (
    SELECT {columns} FROM events
    WHERE (transaction_id, position)
          > (bookmark.last_transaction_id::text::xid8, bookmark.last_position)
      AND {horizon}{types}
    ORDER BY events.transaction_id, events.position
    LIMIT %(limit)s
) AS wanted ON true
"""
# Keyed by (of its types only, waits for the disk at commit). A batch that waits (the
# option projection_commit_waits_for_flush, or the redo after a failure, whose record must
# outlive a crash) does not name eventdesk_commit_without_flush() at all: a database not
# migrated yet (0004) still runs it.
LOCK_AND_READ_BATCH = {
    (typed, waits): _LOCK_AND_READ_BATCH.format(
        **_ONCE, columns=EVENT_COLUMNS,
        lock=_LOCK_PROJECTION_BOOKMARK.format(
            commit="NULL::text" if waits else "eventdesk_commit_without_flush()"
        ),
        types=" AND event_type = ANY(%(types)s)" if typed else "",
    )
    for typed in (False, True) for waits in (False, True)
}  # fmt: skip
#: The bookmark's columns before the head's in a LOCK_AND_READ_BATCH row.
LOCKED_BOOKMARK_COLUMNS = 8

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


# --- stream-ordered reactions: the bookmark is the intake point, reaction_work the rest ---

# Intake and claim both hold the bookmark row for their (short) transaction: two workers'
# claims are serialised, so counting the live leases and then claiming cannot race.
LOCK_STREAM_BOOKMARK = """
SELECT last_transaction_id, last_position, status, intake_paused_at IS NOT NULL
FROM projection_bookmarks
WHERE subscriber_name = %(name)s FOR UPDATE
"""

# Unfinished rows of streams that are not parked, counted up to the limit: rows waiting
# behind a parked stream must not stop intake for everyone.
_OPEN_WORK = """
SELECT count(*) AS n FROM (
    SELECT 1 FROM reaction_work w
    WHERE w.subscriber_name = %(name)s
      AND NOT EXISTS (SELECT 1 FROM reaction_work p
                      WHERE p.subscriber_name = w.subscriber_name AND p.stream_id = w.stream_id
                        AND p.parked_at IS NOT NULL)
    LIMIT %(limit)s
) AS open_rows
"""

# Take in the wanted events past the intake point, as many as the limit leaves room for,
# in ONE statement so the visible head and the events come from the same snapshot (the
# point may then move to that head without passing over a wanted event). A row already
# there (ON CONFLICT) was taken in before; nothing is taken in twice.
_INTAKE = """
WITH {horizon_cte}, open_work AS ({open_work}),
head AS ({head}),
wanted AS (
    SELECT event_id, transaction_id::text::bigint AS tx, position, stream_id, event_type
    FROM events
    WHERE (transaction_id, position) > (%(tx)s::text::xid8, %(pos)s) AND {horizon}{types}
    ORDER BY events.transaction_id, events.position
    LIMIT greatest(0, least(%(batch)s, %(limit)s - (SELECT n FROM open_work)))
),
taken AS (
    INSERT INTO reaction_work (subscriber_name, event_id, transaction_id, position, stream_id,
        event_type, attempts, lease_token, last_error, last_traceback)
    SELECT %(name)s, event_id, tx, position, stream_id, event_type, 0, '', '', '' FROM wanted
    ON CONFLICT (subscriber_name, event_id) DO NOTHING
    RETURNING 1
)
SELECT (SELECT n FROM open_work), (SELECT count(*) FROM wanted), (SELECT count(*) FROM taken),
       last.tx, last.position, head.head_tx, head.head_pos
FROM (SELECT 1) AS one
LEFT JOIN head ON true
LEFT JOIN (SELECT tx, position FROM wanted ORDER BY tx DESC, position DESC LIMIT 1) AS last
    ON true
"""
INTAKE = _INTAKE.format(**_ONCE, open_work=_OPEN_WORK, types="")
INTAKE_OF_TYPES = _INTAKE.format(
    **_ONCE, open_work=_OPEN_WORK, types=" AND event_type = ANY(%(types)s)"
)

# The intake point moves (forward only) in the transaction that took the events in;
# intake running again clears the "paused at the limit" mark.
MOVE_INTAKE_POINT = """
UPDATE projection_bookmarks
SET last_transaction_id = %(to_tx)s, last_position = %(to_pos)s, intake_paused_at = NULL,
    updated_at = now()
WHERE subscriber_name = %(name)s
  AND (last_transaction_id, last_position) <= (%(to_tx)s, %(to_pos)s)
"""

# Intake stopped at intake_limit: recorded (since when) so the console can say so.
MARK_INTAKE_PAUSED = """
UPDATE projection_bookmarks SET intake_paused_at = coalesce(intake_paused_at, now())
WHERE subscriber_name = %(name)s
"""

# Below the limit again with nothing new to take in (the point did not move): the mark
# goes all the same, or the console would go on saying intake is paused.
CLEAR_INTAKE_PAUSED = """
UPDATE projection_bookmarks SET intake_paused_at = NULL WHERE subscriber_name = %(name)s
"""

# The handle calls in flight, over all workers: an expired lease does not count (its
# worker died or lost it; the row may be claimed again).
COUNT_LIVE_LEASES = """
SELECT count(*) FROM reaction_work
WHERE subscriber_name = %(name)s AND lease_expires_at > now()
"""

# Up to %(room)s runnable rows, each the earliest unfinished row of its stream (so a
# stream runs one event at a time, in order), not parked, due, and not under a live
# lease; SKIP LOCKED passes over a row a settle is deleting right now. Each claim gets a
# token of its own (the worker's id and a counter, %(tokens)s): only it can settle the row.
CLAIM_WORK = """
WITH runnable AS (
    SELECT w.id FROM reaction_work w
    WHERE w.subscriber_name = %(name)s AND w.parked_at IS NULL
      AND (w.next_retry_at IS NULL OR w.next_retry_at <= now())
      AND (w.lease_expires_at IS NULL OR w.lease_expires_at <= now())
      AND NOT EXISTS (
          SELECT 1 FROM reaction_work e
          WHERE e.subscriber_name = w.subscriber_name AND e.stream_id = w.stream_id
            AND (e.transaction_id, e.position) < (w.transaction_id, w.position))
    ORDER BY w.transaction_id, w.position
    LIMIT %(room)s
    FOR UPDATE OF w SKIP LOCKED
), numbered AS (
    SELECT id, row_number() OVER (ORDER BY id) AS n FROM runnable
)
UPDATE reaction_work SET
    lease_token = (%(tokens)s::text[])[numbered.n],
    lease_expires_at = now() + make_interval(secs => %(lease)s)
FROM numbered, events
WHERE reaction_work.id = numbered.id AND events.event_id = reaction_work.event_id
RETURNING reaction_work.id, reaction_work.lease_token, reaction_work.attempts,
    events.position, events.transaction_id::text::bigint, events.event_id, events.stream_id,
    events.stream_version, events.event_type, events.data, events.metadata, events.recorded_at
"""

# The compare-and-set that makes the appends exactly-once: the row is deleted only under
# the claim's own token, in the transaction that appends the results. No row: the claim
# was lost (expired and taken again, or dismissed) and the result is discarded.
SETTLE_WORK = """
DELETE FROM reaction_work WHERE id = %(id)s AND lease_token = %(token)s RETURNING 1
"""

# A failed attempt, recorded only under the claim's token: backoff until the next retry,
# or parked (the stream waits for an operator) once the attempts ran out.
FAIL_WORK = """
UPDATE reaction_work
SET attempts = %(attempts)s, last_error = %(error)s, last_traceback = %(traceback)s,
    failed_at = now(),
    next_retry_at = CASE WHEN %(delay)s::float8 IS NULL THEN NULL
                         ELSE now() + make_interval(secs => %(delay)s::float8) END,
    parked_at = CASE WHEN %(wedged)s THEN now() ELSE NULL END,
    first_parked_at = CASE WHEN %(wedged)s THEN coalesce(first_parked_at, now())
                           ELSE first_parked_at END,
    lease_token = '', lease_expires_at = NULL
WHERE id = %(id)s AND lease_token = %(token)s
RETURNING 1
"""

# Claims given back unsettled (a stopping worker): another worker need not wait for expiry.
RELEASE_WORK_LEASES = """
UPDATE reaction_work SET lease_token = '', lease_expires_at = NULL
WHERE lease_token = ANY(%(tokens)s)
"""

# When the stream loop should look again: the earliest retry of a row that is not parked.
NEXT_WORK_RETRY = """
SELECT min(next_retry_at) FROM reaction_work
WHERE subscriber_name = %(name)s AND parked_at IS NULL AND next_retry_at IS NOT NULL
"""

# A global-order reaction must not start while stream-ordered work is left (it would
# pass over the rows behind its cursor).
HAS_WORK = "SELECT EXISTS (SELECT 1 FROM reaction_work WHERE subscriber_name = %(name)s)"

# Switching from global to stream: the cursor stays (the intake point); the global lane's
# lease and failure state no longer apply.
ADOPT_STREAM_ORDERING = """
UPDATE projection_bookmarks
SET status = 'active', attempts = 0, failing_event_id = NULL, last_error = '',
    last_traceback = '', failed_at = NULL, next_retry_at = NULL, lease_owner = '',
    lease_expires_at = NULL, updated_at = now()
WHERE subscriber_name = %(name)s AND status IN ('retrying', 'wedged')
"""

# --- reading the work table (operators, the console, the diagnosis) ----------------------

# The parked streams of a reaction: head row, and how many rows wait behind it. The
# oldest figures below count from when a head first parked (a failed retry re-parks it).
PARKED_STREAMS = """
SELECT p.stream_id, p.event_id, p.event_type, p.transaction_id, p.position, p.attempts,
       p.last_error, p.parked_at,
       (SELECT count(*) FROM reaction_work b
        WHERE b.subscriber_name = p.subscriber_name AND b.stream_id = p.stream_id
          AND b.id <> p.id) AS waiting,
       coalesce(p.first_parked_at, p.parked_at)
FROM reaction_work p
WHERE p.subscriber_name = %(name)s AND p.parked_at IS NOT NULL
ORDER BY coalesce(p.first_parked_at, p.parked_at), p.stream_id
"""

# Every unfinished row of one stream, in stream order (the head first).
STREAM_WORK = """
SELECT id, event_id, event_type, transaction_id, position, attempts, lease_token,
       lease_expires_at, next_retry_at, last_error, failed_at, parked_at
FROM reaction_work
WHERE subscriber_name = %(name)s AND stream_id = %(stream)s
ORDER BY transaction_id, position
"""

# The figures the Bookmarks page and the diagnosis show for one stream-ordered reaction,
# with since when intake has been paused at intake_limit (NULL: it is not).
WORK_SUMMARY = """
SELECT count(*) AS unfinished,
       count(*) FILTER (WHERE lease_expires_at > now()) AS in_flight,
       count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked_streams,
       min(coalesce(first_parked_at, parked_at)) FILTER (WHERE parked_at IS NOT NULL)
           AS oldest_parked,
       count(*) FILTER (WHERE parked_at IS NULL AND NOT EXISTS (
           SELECT 1 FROM reaction_work p WHERE p.subscriber_name = w.subscriber_name
             AND p.stream_id = w.stream_id AND p.parked_at IS NOT NULL)) AS open_rows,
       (SELECT intake_paused_at FROM projection_bookmarks
        WHERE projection_bookmarks.subscriber_name = %(name)s) AS intake_paused_at
FROM reaction_work w WHERE subscriber_name = %(name)s
"""

# --- observability: lag, status and work per subscriber (/metrics, the history samples) ---

# Exact lag up to this many events per subscriber: counting a million index entries per
# subscriber per scrape is too slow, so past the cap the count says "at least" (capped).
METRICS_LAG_CAP = 10_000

# One row per bookmark (all, or those named): cursor, status, attempts, the committed
# events past the cursor it handles (counted up to %(cap)s + 1) and when the first of them
# was recorded, and for a stream-ordered reaction its unfinished rows. Committed events
# count whether or not they are under the horizon yet: a held horizon is lag too (it has
# its own metric). %(types)s maps a subscriber with event_types to them (JSON); the typed
# and untyped branches are gated on the row, so each uses its own index
# (events_type_order, events_global_order) and stops at the cap.
SUBSCRIBER_STATE = """
WITH b AS (
    SELECT subscriber_name, kind, status, attempts, intake_paused_at,
           last_transaction_id, last_position,
           (SELECT array_agg(t) FROM jsonb_array_elements_text(
                %(types)s::jsonb -> subscriber_name) AS t) AS types
    FROM projection_bookmarks
    WHERE %(names)s::text[] IS NULL OR subscriber_name = ANY(%(names)s::text[])
)
SELECT b.subscriber_name, b.kind, b.status, b.attempts, b.intake_paused_at,
       b.last_transaction_id, b.last_position,
       behind.n AS past_cursor,
       coalesce(work.open_rows, 0) AS open_rows,
       least(first_past.recorded_at, first_open.recorded_at) AS oldest_unhandled,
       coalesce(work.parked_streams, 0) AS parked_streams,
       work.oldest_parked,
       coalesce(work.in_flight, 0) AS in_flight
FROM b
LEFT JOIN LATERAL (
    SELECT count(*) AS n FROM (
        (SELECT 1 FROM events e
         WHERE b.types IS NULL
           AND {past}
         LIMIT %(cap)s + 1)
        UNION ALL
        (SELECT 1 FROM events e
         WHERE b.types IS NOT NULL AND e.event_type = ANY(b.types)
           AND {past}
         LIMIT %(cap)s + 1)
    ) AS past
) AS behind ON true
LEFT JOIN LATERAL (
    SELECT min(firsts.recorded_at) AS recorded_at FROM (
        (SELECT e.recorded_at FROM events e
         WHERE b.types IS NULL
           AND {past}
         ORDER BY e.transaction_id, e.position LIMIT 1)
        UNION ALL
        SELECT first_of_type.recorded_at FROM unnest(b.types) AS k(event_type)
        CROSS JOIN LATERAL (
            SELECT e.recorded_at FROM events e
            WHERE e.event_type = k.event_type
              AND {past}
            ORDER BY e.event_type, e.transaction_id, e.position LIMIT 1
        ) AS first_of_type
    ) AS firsts
) AS first_past ON true
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE w.parked_at IS NULL AND NOT EXISTS (
               SELECT 1 FROM reaction_work p WHERE p.subscriber_name = w.subscriber_name
                 AND p.stream_id = w.stream_id AND p.parked_at IS NOT NULL)) AS open_rows,
           count(*) FILTER (WHERE w.parked_at IS NOT NULL) AS parked_streams,
           min(coalesce(w.first_parked_at, w.parked_at)) FILTER (WHERE w.parked_at IS NOT NULL)
               AS oldest_parked,
           count(*) FILTER (WHERE w.lease_expires_at > now()) AS in_flight
    FROM reaction_work w WHERE w.subscriber_name = b.subscriber_name
) AS work ON true
LEFT JOIN LATERAL (
    SELECT e.recorded_at FROM reaction_work w JOIN events e ON e.event_id = w.event_id
    WHERE w.subscriber_name = b.subscriber_name AND NOT EXISTS (
        SELECT 1 FROM reaction_work p WHERE p.subscriber_name = w.subscriber_name
          AND p.stream_id = w.stream_id AND p.parked_at IS NOT NULL)
    ORDER BY w.transaction_id, w.position LIMIT 1
) AS first_open ON true
ORDER BY b.subscriber_name
""".format(
    past="(e.transaction_id, e.position) > (b.last_transaction_id::text::xid8, b.last_position)"
)

# A sample of each named subscriber's cursor and lag, in the current bucket (now floored to
# %(every)s seconds). Several workers sampling the same subscriber in the same bucket write
# one row: the first insert wins, the others do nothing.
SAMPLE_SUBSCRIBERS = f"""
WITH state AS ({SUBSCRIBER_STATE}),
head AS (SELECT coalesce(max(position), 0) AS position FROM events)
INSERT INTO subscriber_samples (subscriber_name, bucket, transaction_id, position,
    head_position, lag_events, lag_capped)
SELECT state.subscriber_name,
       to_timestamp(floor(extract(epoch FROM now()) / %(every)s) * %(every)s),
       state.last_transaction_id, state.last_position, head.position,
       least(state.past_cursor, %(cap)s) + state.open_rows, state.past_cursor > %(cap)s
FROM state, head
ON CONFLICT (subscriber_name, bucket) DO NOTHING
"""

# Samples past the retention go (index subscriber_samples_bucket), so the table stays small.
PRUNE_SAMPLES = """
DELETE FROM subscriber_samples WHERE bucket < now() - make_interval(secs => %(keep)s)
"""

# One subscriber's samples since a moment, oldest first (the chart, the rate and the ETA).
SAMPLES_SINCE = """
SELECT bucket, position, head_position, lag_events, lag_capped FROM subscriber_samples
WHERE subscriber_name = %(name)s AND bucket >= %(since)s
ORDER BY bucket
"""


# --- worker heartbeats (the console's Workers page, the diagnosis, the metrics) ----------

# Each worker refreshes its own row every interval; the first beat inserts it. A worker id
# is unique per process, so rows never contend.
BEAT = """
INSERT INTO worker_heartbeats (worker_id, host, pid, started_at, last_seen_at,
    interval_seconds, subscribers, doing, stopped_at, wakeups_working)
VALUES (%(worker_id)s, %(host)s, %(pid)s, %(started_at)s, now(), %(interval)s,
    %(subscribers)s::jsonb, %(doing)s::jsonb, NULL, %(wakeups_working)s)
ON CONFLICT (worker_id) DO UPDATE
SET last_seen_at = now(), interval_seconds = EXCLUDED.interval_seconds,
    subscribers = EXCLUDED.subscribers, doing = EXCLUDED.doing, stopped_at = NULL,
    wakeups_working = EXCLUDED.wakeups_working
"""

# A clean shutdown says so, rather than leaving the row to go stale.
STOP_BEATING = """
UPDATE worker_heartbeats SET stopped_at = now(), last_seen_at = now(), doing = '[]'::jsonb
WHERE worker_id = %(worker_id)s
"""

# Rows of workers stopped or gone long ago: the table keeps only the recent past.
PRUNE_HEARTBEATS = """
DELETE FROM worker_heartbeats
WHERE last_seen_at < now() - make_interval(secs => %(keep)s)
"""

# The global-order reactions this worker holds a live lease on: the event it is handling
# is the failing one (a retry) or the first wanted event past the bookmark.
LEASED_BOOKMARKS = """
SELECT b.subscriber_name, b.attempts, b.updated_at,
       coalesce(b.failing_event_id, (
           SELECT e.event_id FROM events e
           WHERE (e.transaction_id, e.position) > (b.last_transaction_id::text::xid8,
                                                   b.last_position)
             AND (NOT %(types)s::jsonb ? b.subscriber_name
                  OR e.event_type = ANY(ARRAY(SELECT jsonb_array_elements_text(
                         %(types)s::jsonb -> b.subscriber_name))))
           ORDER BY e.transaction_id, e.position LIMIT 1)) AS event_id
FROM projection_bookmarks b
WHERE split_part(b.lease_owner, '#', 1) = %(worker_id)s AND b.lease_expires_at > now()
"""

# Every worker seen recently, with whether it is live: its last beat is within
# %(intervals)s of its own interval (and it has not stopped).
_WORKER_LIVE = """stopped_at IS NULL
         AND last_seen_at >= now() - make_interval(secs => interval_seconds * %(intervals)s)"""
# Every worker of the last day (the rows kept), or with %(live_only)s only those beating now:
# /metrics asks on every scrape, and a day of short-lived workers (`run_subscribers --once`
# from cron, restarts) is thousands of rows it would parse only to drop.
WORKERS = f"""
SELECT worker_id, host, pid, started_at, last_seen_at, interval_seconds, subscribers, doing,
       stopped_at,
       {_WORKER_LIVE} AS live,
       extract(epoch FROM now() - last_seen_at)::float8 AS silent_seconds,
       wakeups_working
FROM worker_heartbeats
WHERE NOT %(live_only)s OR ({_WORKER_LIVE})
ORDER BY (stopped_at IS NULL) DESC, last_seen_at DESC
"""

# --- operators acting on parked streams (reactions_admin/acts/parked_streams/) ---------------

# Every unfinished row of one stream, head first, locked for the operator's transaction
# (the bookmark row is already held): a settle or a failure on them waits for the act.
LOCK_STREAM_WORK = """
SELECT event_id, event_type, stream_id, transaction_id, position, attempts,
       parked_at IS NOT NULL, coalesce(lease_expires_at > now(), false)
FROM reaction_work
WHERE subscriber_name = %(name)s AND stream_id = %(stream)s
ORDER BY transaction_id, position
FOR UPDATE
"""

# The head of one stream (unlocked): what "dismiss the head of stream S" names, then
# checked again under the locks by the dismissal itself.
STREAM_HEAD = """
SELECT event_id FROM reaction_work
WHERE subscriber_name = %(name)s AND stream_id = %(stream)s
ORDER BY transaction_id, position
LIMIT 1
"""

# Dismissed rows go in the transaction that appends their decisions (rows locked above).
DELETE_WORK_EVENTS = """
DELETE FROM reaction_work
WHERE subscriber_name = %(name)s AND event_id = ANY(%(event_ids)s::uuid[])
RETURNING event_id
"""

# Retry now: the parked head becomes runnable at once; its attempts are kept, so one more
# failure parks it again (issue 11's "retry now": one attempt, no reset).
UNPARK_STREAM_HEAD = """
UPDATE reaction_work
SET parked_at = NULL, next_retry_at = NULL, lease_token = '', lease_expires_at = NULL
WHERE subscriber_name = %(name)s AND event_id = %(event_id)s AND parked_at IS NOT NULL
RETURNING 1
"""

# The Bookmarks page: per bookmark, the unfinished rows of streams that are not parked
# (the part of a stream-ordered reaction's lag that is taken in but not finished).
OPEN_WORK_OF_BOOKMARK = """
SELECT count(*) FROM reaction_work w
WHERE w.subscriber_name = projection_bookmarks.subscriber_name
  AND NOT EXISTS (SELECT 1 FROM reaction_work p
                  WHERE p.subscriber_name = w.subscriber_name AND p.stream_id = w.stream_id
                    AND p.parked_at IS NOT NULL)
"""

# The parked-streams page: how many rows wait behind each parked head.
WAITING_BEHIND_HEAD = """
SELECT count(*) FROM reaction_work b
WHERE b.subscriber_name = reaction_work.subscriber_name
  AND b.stream_id = reaction_work.stream_id AND b.id <> reaction_work.id
"""

# The figures the diagnosis reads from every stream-ordered reaction's work at once:
# parked streams (and the oldest), rows waiting for a retry, and who holds live leases
# (a claim's token is its worker's id, '#', a counter).
WORK_FACTS = """
SELECT subscriber_name,
       count(*) FILTER (WHERE parked_at IS NOT NULL),
       min(coalesce(first_parked_at, parked_at)) FILTER (WHERE parked_at IS NOT NULL),
       count(*) FILTER (WHERE parked_at IS NULL AND next_retry_at IS NOT NULL),
       min(next_retry_at) FILTER (WHERE parked_at IS NULL),
       coalesce(array_agg(DISTINCT split_part(lease_token, '#', 1))
                FILTER (WHERE lease_expires_at > now()), '{}')
FROM reaction_work GROUP BY subscriber_name
"""

# Committed events no reader sees yet (an older transaction is still open), capped.
HIDDEN_EVENTS = """
SELECT count(*) FROM (
    SELECT 1 FROM events WHERE transaction_id >= (SELECT eventdesk_horizon())
    LIMIT 1000
) AS hidden
"""

# --- the operator's actions on a subscriber (reactions_admin/acts/operations/) -----------------

# An action holds the bookmark row for its short transaction; a projection batch holding
# it longer than this makes the action answer "busy, try again" instead of hanging.
ACTION_LOCK_TIMEOUT = "SET LOCAL lock_timeout = '5s'"

# The row an action decides on, locked, with the stream-ordered rows waiting for a retry.
LOCK_FOR_ACTION = """
SELECT b.subscriber_name, b.kind, b.status, b.attempts, b.failing_event_id, b.paused_from,
       (SELECT count(*) FROM reaction_work w
        WHERE w.subscriber_name = b.subscriber_name AND w.parked_at IS NULL
          AND w.next_retry_at IS NOT NULL) AS retrying_rows
FROM projection_bookmarks b WHERE b.subscriber_name = %(name)s FOR UPDATE OF b
"""

# Retry now: the next attempt is due at once (attempts kept: the retry rule counts on).
RETRY_NOW = """
UPDATE projection_bookmarks SET status = 'retrying', next_retry_at = now(), updated_at = now()
WHERE subscriber_name = %(name)s
"""

# Retry now, stream-ordered: the rows waiting for a retry (not parked) are due at once.
RETRY_ROWS_NOW = """
UPDATE reaction_work SET next_retry_at = now()
WHERE subscriber_name = %(name)s AND parked_at IS NULL AND next_retry_at IS NOT NULL
"""

# A pause: no worker's lock or claim selects a paused bookmark (they all filter on status);
# the status it had comes back on resume.
PAUSE = """
UPDATE projection_bookmarks
SET status = 'paused', paused_from = %(paused_from)s, paused_at = now(),
    paused_by = %(paused_by)s, pause_reason = %(reason)s, updated_at = now()
WHERE subscriber_name = %(name)s
"""

RESUME = """
UPDATE projection_bookmarks
SET status = %(status)s, paused_from = '', paused_at = NULL, paused_by = '', pause_reason = '',
    updated_at = now()
WHERE subscriber_name = %(name)s
"""

# Wake every worker's loops: a retry is due, or a subscriber was resumed.
WAKE_WORKERS = "SELECT pg_notify('eventdesk_events', '')"

# A worker's proof that its wake-ups arrive: a NOTIFY of its own, sent through the ordinary
# connection, that its listener must receive (subscribers/listener.py).
WAKE_CHECK = "SELECT pg_notify('eventdesk_events', %(payload)s)"

# Every failing item a fingerprint can group: a bookmark retrying or wedged on an event.
FAILING_BOOKMARKS = """
SELECT subscriber_name, kind, failing_event_id, last_error FROM projection_bookmarks
WHERE status IN ('retrying', 'wedged') AND failing_event_id IS NOT NULL
ORDER BY subscriber_name
"""

# Acting on a failure group takes this lock for its transaction: a second operator acting
# on the same group at once is refused (409) instead of queueing behind the first.
TRY_LOCK_GROUP = "SELECT pg_try_advisory_xact_lock(hashtextextended(%(key)s, 0))"
