from django.db import migrations

# The horizon, with its one exception (DESIGN.md, "The events table and its order"; the
# rule in words: docs/projections.md, "The horizon").
#
# A reader sees the events whose transaction is older than every transaction still in
# flight. A transaction that can never append an event cannot hide one, so it need not
# hold readers back: a rebuild's batch writes its own tables (it has an xid) for a fraction
# of a second, and every subscriber used to wait for it.
#
# Such a transaction marks itself, as its first acts: SET TRANSACTION DEFERRABLE (allowed
# only before the transaction's first query and outside a savepoint, so it holds to the
# end; harmless here: it changes only a SERIALIZABLE READ ONLY transaction), then, before
# it has an xid, a shared transaction-level advisory lock of key (1162119258 = "EDHZ", 1),
# which cannot be let go before the transaction ends either. From then on the trigger below
# refuses it any insert into events, so every transaction found holding the marker has
# appended nothing and never will. The trigger's WHEN reads one setting: an append that is
# not DEFERRABLE (all of them) pays nothing more.
#
# eventdesk_horizon() is the least xid in flight in the caller's snapshot (STABLE: the
# statement's own snapshot) whose transaction is not found holding the marker, else the
# snapshot's xmax. The marker and the transaction's own xid lock both live in the main lock
# table (advisory and transactionid locks never take the fast path), so one read of
# pg_locks sees them consistently, paired by virtualtransaction. A transaction that ended
# between the snapshot and that read is not found, so it is not exempted: the horizon stays
# before it (conservative). With nothing in flight, pg_locks is not read at all.
#
# The key is reserved: taken by hand (not through eventdesk_exempt_from_horizon(), which
# refuses a transaction that already has an xid, hence may already have appended), it
# would exempt a transaction whose events were written before it.
FORWARD = """
CREATE FUNCTION eventdesk_horizon() RETURNS xid8
LANGUAGE sql STABLE PARALLEL RESTRICTED AS $$
SELECT CASE
    WHEN pg_snapshot_xmin(s) = pg_snapshot_xmax(s) THEN pg_snapshot_xmin(s)
    ELSE coalesce(
        (WITH held AS MATERIALIZED (
             SELECT locktype, transactionid, virtualtransaction FROM pg_locks
             WHERE granted
               AND ((locktype = 'transactionid' AND mode = 'ExclusiveLock')
                    OR (locktype = 'advisory' AND classid = 1162119258 AND objid = 1
                        AND objsubid = 2))
         ), exempt AS (
             SELECT x.transactionid FROM held x JOIN held m USING (virtualtransaction)
             WHERE x.locktype = 'transactionid' AND m.locktype = 'advisory'
         )
         SELECT f FROM pg_snapshot_xip(s) AS f
         WHERE NOT EXISTS (SELECT 1 FROM exempt WHERE exempt.transactionid = xid(f))
         ORDER BY f LIMIT 1),
        -- Every xid listed is exempt. None listed (a standby's snapshot lists none): xmin.
        CASE WHEN EXISTS (SELECT FROM pg_snapshot_xip(s)) THEN pg_snapshot_xmax(s)
             ELSE pg_snapshot_xmin(s) END)
    END
FROM pg_current_snapshot() AS s
$$;

CREATE FUNCTION eventdesk_exempt_from_horizon() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('transaction_deferrable') <> 'on' THEN
        RAISE EXCEPTION 'a transaction exempted from the horizon is DEFERRABLE first'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    IF pg_current_xact_id_if_assigned() IS NOT NULL THEN
        RAISE EXCEPTION 'a transaction is exempted from the horizon before it has an xid'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    PERFORM pg_advisory_xact_lock_shared(1162119258, 1);
END $$;

CREATE FUNCTION events_refuse_exempt() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_locks
               WHERE locktype = 'advisory' AND classid = 1162119258 AND objid = 1
                 AND objsubid = 2 AND pid = pg_backend_pid() AND granted) THEN
        RAISE EXCEPTION 'a transaction exempted from the horizon cannot append events'
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER events_refuse_exempt BEFORE INSERT ON events
    FOR EACH STATEMENT WHEN (current_setting('transaction_deferrable') = 'on')
    EXECUTE FUNCTION events_refuse_exempt();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS events_refuse_exempt ON events;
DROP FUNCTION IF EXISTS events_refuse_exempt();
DROP FUNCTION IF EXISTS eventdesk_exempt_from_horizon();
DROP FUNCTION IF EXISTS eventdesk_horizon();
"""


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0001_squashed_0002_append_only")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
