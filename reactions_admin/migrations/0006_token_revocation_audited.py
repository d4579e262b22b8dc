from django.db import migrations

# A token is revoked only with its audit: whatever the path (the ORM's save() or update(),
# raw SQL), a transaction that sets a live token's revoked_at must also append the
# TokenRevoked decision naming that token, or it does not commit. The check is deferred to
# the commit because the act writes the token first and its decision after. A live token
# cannot be deleted either (a user's deletion revokes them first, audited): only a revoked
# one, whose revocation is on record. The constraint name lets the ORM raise
# RevocationNotAudited (reactions_admin/models.py).
#
# Numbered 0006 and depending on 0004: h/rebuild-doors adds its own 0005 (the lead orders
# them at the merge).
FORBID = """
CREATE FUNCTION api_token_revocation_audited() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (
        SELECT 1 FROM events
        WHERE transaction_id = pg_current_xact_id()
          AND event_type = 'DecisionRegistered'
          AND data->>'context' = 'ApiToken' AND data->>'choice' = 'TokenRevoked'
          AND data->'inputs'->>'token_id' = NEW.id::text
    ) THEN
        RAISE EXCEPTION 'API token % was revoked without its TokenRevoked decision: revoke '
            'tokens with reactions_admin.acts.tokens (the admin action, manage.py '
            'revoke_api_token)', NEW.prefix
            USING ERRCODE = 'restrict_violation', CONSTRAINT = 'api_token_revocation_audited';
    END IF;
    RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER api_token_revocation_audited
    AFTER UPDATE OF revoked_at ON reactions_admin_apitoken
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NULL AND NEW.revoked_at IS NOT NULL)
    EXECUTE FUNCTION api_token_revocation_audited();

CREATE FUNCTION api_token_live_not_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'API token % is live: revoke it (audited) before deleting it', OLD.prefix
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'api_token_revocation_audited';
END $$;
CREATE TRIGGER api_token_live_not_deleted BEFORE DELETE ON reactions_admin_apitoken
    FOR EACH ROW WHEN (OLD.revoked_at IS NULL)
    EXECUTE FUNCTION api_token_live_not_deleted();
"""
ALLOW = """
DROP TRIGGER IF EXISTS api_token_live_not_deleted ON reactions_admin_apitoken;
DROP FUNCTION IF EXISTS api_token_live_not_deleted();
DROP TRIGGER IF EXISTS api_token_revocation_audited ON reactions_admin_apitoken;
DROP FUNCTION IF EXISTS api_token_revocation_audited();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("reactions_admin", "0005_rebuild_projection_permission"),
        ("eventstore", "0001_initial"),
    ]
    operations = [migrations.RunSQL(FORBID, ALLOW)]
