from django.db import migrations

# The store is append-only: the database itself refuses to change or delete an event.
FORBID = """
CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the events table is append-only (% refused)', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_append_only();
"""
ALLOW = """
DROP TRIGGER IF EXISTS events_append_only ON events;
DROP FUNCTION IF EXISTS events_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("eventstore", "0001_initial")]
    operations = [migrations.RunSQL(FORBID, ALLOW)]
