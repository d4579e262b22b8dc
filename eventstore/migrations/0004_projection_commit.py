from django.db import migrations

# A projection's batch commits without waiting for the disk (docs/projections.md, "What a
# batch's commit waits for").
#
# Its writes and its bookmark are one transaction: a crash of the server that loses the
# last batches (at most about three times wal_writer_delay, 0.6 s by default) loses them
# together, and the worker applies those events again from the bookmark. Nothing is lost
# or applied twice, and the batch no longer waits for a flush that other commits (an
# append's, a rebuild's batch's) make slow.
#
# An event is different: the store is the record. A transaction that appends one commits
# with the flush, whoever turned it off. eventdesk_commit_without_flush() (first in the
# batch's transaction, from its first statement) keeps the session's synchronous_commit
# in eventdesk.synchronous_commit, then turns it off for the transaction; the trigger
# below puts it back before any row goes into events and leaves 'appended' there, after
# which the function turns nothing off again in that transaction (a rolled back savepoint
# undoes the rows and the settings together). A transaction that never called the
# function pays one setting's read per insert statement.
FORWARD = """
CREATE FUNCTION eventdesk_commit_without_flush() RETURNS text LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('synchronous_commit') <> 'off'
       AND coalesce(current_setting('eventdesk.synchronous_commit', true), '') = '' THEN
        PERFORM set_config('eventdesk.synchronous_commit', current_setting('synchronous_commit'),
                           true);
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN current_setting('synchronous_commit');
END $$;

CREATE FUNCTION events_commit_with_flush() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', current_setting('eventdesk.synchronous_commit'),
                       true);
    PERFORM set_config('eventdesk.synchronous_commit', 'appended', true);
    RETURN NULL;
END $$;
CREATE TRIGGER events_commit_with_flush BEFORE INSERT ON events
    FOR EACH STATEMENT
    WHEN (current_setting('eventdesk.synchronous_commit', true) NOT IN ('', 'appended'))
    EXECUTE FUNCTION events_commit_with_flush();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS events_commit_with_flush ON events;
DROP FUNCTION IF EXISTS events_commit_with_flush();
DROP FUNCTION IF EXISTS eventdesk_commit_without_flush();
"""


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0003_horizon_exemption")]
    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
