from django.db import migrations

# Revocation is final: once a token's revoked_at is set, the database refuses to clear or
# change it, whatever the path (the admin, the ORM, raw SQL). The constraint name lets the
# ORM turn the refusal into RevocationFinal (reactions_admin/models.py).
FORBID = """
CREATE FUNCTION api_token_revocation_final() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'API token % was revoked at %: revocation is final', OLD.prefix, OLD.revoked_at
        USING ERRCODE = 'restrict_violation', CONSTRAINT = 'api_token_revocation_final';
END $$;
CREATE TRIGGER api_token_revocation_final BEFORE UPDATE OF revoked_at ON reactions_admin_apitoken
    FOR EACH ROW
    WHEN (OLD.revoked_at IS NOT NULL AND NEW.revoked_at IS DISTINCT FROM OLD.revoked_at)
    EXECUTE FUNCTION api_token_revocation_final();
"""
ALLOW = """
DROP TRIGGER IF EXISTS api_token_revocation_final ON reactions_admin_apitoken;
DROP FUNCTION IF EXISTS api_token_revocation_final();
"""


class Migration(migrations.Migration):
    dependencies = [("reactions_admin", "0001_initial")]
    operations = [migrations.RunSQL(FORBID, ALLOW)]
