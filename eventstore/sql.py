"""The SQL that the event store's promises rest on, named and kept in one place."""

EVENT_COLUMNS = (
    "position, transaction_id::text::bigint, event_id, stream_id, stream_version,"
    " event_type, data, metadata, recorded_at"
)

# The horizon: only transactions older than every one still in flight are read, so
# an event whose transaction began first but commits last is never overtaken.
HORIZON = "transaction_id < pg_snapshot_xmin(pg_current_snapshot())"

# Events after a cursor, in global order, under the horizon (index: events_global_order).
READ_AFTER = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE (transaction_id, position) > (%(tx)s::text::xid8, %(pos)s) AND {HORIZON}
ORDER BY transaction_id, position
LIMIT %(limit)s
"""

# The same, only some event types (a subscriber that wants a few types).
READ_AFTER_OF_TYPES = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE (transaction_id, position) > (%(tx)s::text::xid8, %(pos)s) AND {HORIZON}
  AND event_type = ANY(%(types)s)
ORDER BY transaction_id, position
LIMIT %(limit)s
"""

# The last event every reader can see: the cursor a caught-up subscriber stands on.
HEAD = f"""
SELECT transaction_id::text::bigint, position FROM events WHERE {HORIZON}
ORDER BY transaction_id DESC, position DESC LIMIT 1
"""

# How many visible events lie in (after, upto]: a subscriber's lag, or what a dismissal passes over.
COUNT_BETWEEN = f"""
SELECT count(*) FROM events
WHERE (transaction_id, position) > (%(after_tx)s::text::xid8, %(after_pos)s)
  AND (transaction_id, position) <= (%(upto_tx)s::text::xid8, %(upto_pos)s)
  AND {HORIZON}
"""

READ_STREAM = f"""
SELECT {EVENT_COLUMNS} FROM events
WHERE stream_id = %(stream)s AND stream_version >= %(from_version)s
ORDER BY stream_version
LIMIT %(limit)s
"""

GET_EVENT = f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = %(event_id)s"

# Appends to one stream are serialised by a transaction-scoped advisory lock taken in
# stream-id order (no deadlock), so the version check below sees the latest version.
LOCK_STREAMS = """
SELECT pg_advisory_xact_lock(%(namespace)s, hashtext(s))
FROM unnest(%(streams)s::text[]) WITH ORDINALITY AS u(s, n) ORDER BY n
"""
STREAM_NAMESPACE = 0x45_44_53_4B  # "EDSK": keeps our advisory locks apart from others'

STREAM_VERSIONS = """
SELECT stream_id, max(stream_version) FROM events
WHERE stream_id = ANY(%(streams)s) GROUP BY stream_id
"""

# One round trip for the whole batch; NOTIFY wakes the workers when the transaction commits.
NOTIFY_CHANNEL = "eventdesk_events"
INSERT_EVENTS = """
WITH inserted AS (
    INSERT INTO events (event_id, stream_id, stream_version, event_type, data, metadata)
    VALUES {values}
    RETURNING event_id, position, transaction_id::text::bigint, recorded_at
), notified AS (SELECT pg_notify('eventdesk_events', '') AS n)
SELECT inserted.* FROM inserted, notified
"""
INSERT_ROW = "(%s, %s, %s, %s, %s::jsonb, %s::jsonb)"
