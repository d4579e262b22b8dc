-- Least privilege for Eventdesk (docs/deployment.md, "Privileges"): one role owns the
-- tables and runs the migrations, another runs the console and the workers. Run once,
-- as a superuser (or the managed service's admin role), connected to Eventdesk's database:
--
--   psql -v owner=eventdesk_owner -v app=eventdesk_app -d eventdesk -f roles.sql
--
-- then give each role its password (\password eventdesk_owner, \password eventdesk_app).
-- tests/integration/test_least_privilege.py runs this very file.

-- The owner: `manage.py migrate` (and nothing else) connects as it; it owns every table.
CREATE ROLE :"owner" LOGIN;
-- The running role: the console and the workers read and write rows, and nothing else.
CREATE ROLE :"app" LOGIN;

-- PostgreSQL 14 lets every role create tables in the public schema; 15 and newer do not
-- (public belongs to pg_database_owner and only it may create there). The same on both:
-- the owner may create, the running role may only use.
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA public TO :"owner";
GRANT USAGE ON SCHEMA public TO :"app";

-- Every table and sequence the owner creates, now and in later migrations, the running
-- role may read and write (the events table refuses UPDATE and DELETE by a trigger).
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO :"app";
ALTER DEFAULT PRIVILEGES FOR ROLE :"owner" IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO :"app";

-- The console names the session that holds the horizon back, whoever it belongs to.
-- Without this, pg_stat_activity hides other roles' transactions from the running role
-- and the diagnosis would miss exactly the idle-in-transaction psql that stalls everyone.
GRANT pg_read_all_stats TO :"app";
