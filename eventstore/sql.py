"""The SQL that the event store's promises rest on, named and kept in one place."""

EVENT_COLUMNS = (
    "position, transaction_id::text::bigint AS transaction_number, event_id, stream_id,"
    " stream_version, event_type, data, metadata, recorded_at"
)

# The horizon: only transactions older than every one still in flight are read, so
# an event whose transaction began first but commits last is never overtaken. Except the
# transactions that can never append an event (EXEMPT_FROM_HORIZON): they hide none, so
# they hold no reader back. eventdesk_horizon() (migration eventstore 0003) is that rule,
# read once per statement (a subquery) from the statement's own snapshot.
HORIZON = "transaction_id < (SELECT eventdesk_horizon())"
# A statement that compares with the horizon in two places (the visible head and a batch)
# must compare with ONE value: two calls may read pg_locks apart, and a transaction found
# exempt by one may have ended by the other. It names this CTE (evaluated once) and uses
# HORIZON_ONCE.
HORIZON_CTE = "horizon AS (SELECT eventdesk_horizon() AS h)"
HORIZON_ONCE = "transaction_id < (SELECT h FROM horizon)"

# A transaction's first statements, before any query (DEFERRABLE is refused after one, and
# the function refuses a transaction that has an xid): from then on it can append no event
# (a trigger on events refuses it), and no reader waits for it. For transactions that write
# only their own tables, such as a rebuild's batches.
EXEMPT_FROM_HORIZON = ("SET TRANSACTION DEFERRABLE", "SELECT eventdesk_exempt_from_horizon()")

# Events after a cursor, in global order, under the horizon (index: events_global_order).
READ_AFTER = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE (transaction_id, position) > (%(tx)s::text::xid8, %(pos)s) AND {HORIZON}
ORDER BY events.transaction_id, events.position
LIMIT %(limit)s
"""

# The same, only some event types (a subscriber that wants a few types).
READ_AFTER_OF_TYPES = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE (transaction_id, position) > (%(tx)s::text::xid8, %(pos)s) AND {HORIZON}
  AND event_type = ANY(%(types)s)
ORDER BY events.transaction_id, events.position
LIMIT %(limit)s
"""

# The last event every reader can see: the cursor a caught-up subscriber stands on.
HEAD = f"""
SELECT transaction_id::text::bigint, position FROM events WHERE {HORIZON}
ORDER BY events.transaction_id DESC, events.position DESC LIMIT 1
"""

# How many visible events lie in (after, upto]: a subscriber's lag, or what a dismissal passes over.
COUNT_BETWEEN = f"""
SELECT count(*) FROM events
WHERE (transaction_id, position) > (%(after_tx)s::text::xid8, %(after_pos)s)
  AND (transaction_id, position) <= (%(upto_tx)s::text::xid8, %(upto_pos)s)
  AND {HORIZON}
"""

# The same, only some event types: what a subscriber with event_types would have handled.
COUNT_BETWEEN_OF_TYPES = COUNT_BETWEEN + "  AND event_type = ANY(%(types)s)\n"

# Whether an event's transaction is under the horizon: it and every transaction that began
# before it have ended, so no event can still appear at or before it in the global order.
VISIBLE = "SELECT %(tx)s::text::xid8 < eventdesk_horizon()"

READ_STREAM = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE stream_id = %(stream)s AND stream_version >= %(from_version)s
ORDER BY stream_version
LIMIT %(limit)s
"""

GET_EVENT = f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = %(event_id)s"

# Appends with no expected version ("any") to a stream are serialised by a
# transaction-scoped advisory lock, taken in the order of the lock keys (the stream ids'
# hashes, so two streams whose hashes collide cannot deadlock two appenders), so they
# never collide on a version number. Appends that name a version need no lock: the
# unique (stream_id, stream_version) index refuses the loser of a race.
LOCK_STREAMS = """
SELECT pg_advisory_xact_lock(%(namespace)s, k)
FROM (SELECT DISTINCT hashtext(s) AS k FROM unnest(%(streams)s::text[]) AS u(s)) AS keys
ORDER BY k
"""
STREAM_NAMESPACE = 0x45_44_53_4B  # "EDSK": keeps our advisory locks apart from others'

STREAM_VERSIONS = """
SELECT stream_id, max(stream_version) FROM events
WHERE stream_id = ANY(%(streams)s) GROUP BY stream_id
"""

# One round trip for the whole request: read each stream's version, check every
# expected version, insert (or insert nothing when one is off), and NOTIFY the
# workers, who hear it when the transaction commits. The NOTIFY's payload names the
# request's event types (a JSON array), so a worker wakes only the loops that want one
# of them; past NOTIFY's limit (8,000 bytes) it is empty, which wakes every loop.
NOTIFY_CHANNEL = "eventdesk_events"
NOTIFY_PAYLOAD_LIMIT = 7_900
_INSERT_EVENTS = """
WITH rows AS (
    SELECT * FROM jsonb_to_recordset(%(rows)s::jsonb)
        AS r(n int, event_id uuid, stream_id text, k int, event_type text, data jsonb,
             metadata jsonb, expected bigint)
), current AS (
    SELECT s.stream_id,
           coalesce((SELECT max(e.stream_version) FROM events e
                     WHERE e.stream_id = s.stream_id), 0) AS version
    FROM (SELECT DISTINCT stream_id FROM rows) s
), conflicts AS (
    SELECT 1 FROM rows JOIN current USING (stream_id)
    WHERE rows.expected IS NOT NULL AND rows.expected <> current.version
){busy}, inserted AS (
    INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
    SELECT rows.event_id, rows.stream_id, current.version + rows.k, rows.event_type,
           rows.data, rows.metadata
    FROM rows JOIN current USING (stream_id)
    WHERE NOT EXISTS (SELECT 1 FROM conflicts){unless_busy}
    ORDER BY rows.n{on_conflict}
    RETURNING event_id, position, transaction_id::text::bigint, stream_version, recorded_at
), notified AS (
    SELECT pg_notify('eventdesk_events',
                     CASE WHEN octet_length(types) < {limit} THEN types ELSE '' END) AS sent
    FROM (SELECT coalesce(json_agg(DISTINCT event_type)::text, '') AS types FROM rows) AS t
)
SELECT inserted.* FROM inserted, notified
"""
INSERT_EVENTS = _INSERT_EVENTS.format(
    busy="", unless_busy="", on_conflict="", limit=NOTIFY_PAYLOAD_LIMIT
)

# The optimistic append (no lock, no transaction of its own) of "any version" streams
# defers to an append on the lock path: it tries each such stream's lock and inserts
# nothing if one is held. An append holding the locks therefore races no "any version"
# append, and lands on its first try (only an append naming its version can still win).
_BUSY = f""", busy AS (
    SELECT 1 FROM (SELECT DISTINCT stream_id FROM rows WHERE expected IS NULL) AS s
    WHERE NOT pg_try_advisory_xact_lock({STREAM_NAMESPACE}, hashtext(s.stream_id))
)"""
INSERT_EVENTS_UNLESS_LOCKED = _INSERT_EVENTS.format(
    busy=_BUSY,
    unless_busy=" AND NOT EXISTS (SELECT 1 FROM busy)",
    on_conflict="",
    limit=NOTIFY_PAYLOAD_LIMIT,
)

# The same, for one event in a caller's transaction (a decision): a version another
# append took first (its snapshot was older than the lock) inserts nothing rather than
# failing the statement, which would fail the caller's transaction, or cost a savepoint.
# Only for one event (of several, some could land and others not), and only under READ
# COMMITTED (under a snapshot of the whole transaction, a version taken since would fail
# the statement: the lock path refuses it as before).
INSERT_EVENT_UNLESS_LOCKED_OR_TAKEN = _INSERT_EVENTS.format(
    busy=_BUSY,
    unless_busy=" AND NOT EXISTS (SELECT 1 FROM busy)"
    " AND current_setting('transaction_isolation') = 'read committed'",
    on_conflict="\n    ON CONFLICT (stream_id, stream_version) DO NOTHING",
    limit=NOTIFY_PAYLOAD_LIMIT,
)
