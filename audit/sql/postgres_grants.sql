-- relink on PostgreSQL, step 3 of postgres_roles.sql: run as the schema owner AFTER `relink init`.
--   psql "postgresql://relink_owner@HOST/DB" -v app=relink_app -v schema=relink \
--        -f audit/sql/postgres_grants.sql
-- Safe to run again (GRANT is idempotent).

\set ON_ERROR_STOP on

-- The audit log: read and append only. No UPDATE, DELETE, TRUNCATE, TRIGGER or REFERENCES.
GRANT SELECT, INSERT ON :"schema".audit_entry TO :"app";
-- The chain's head: locked (SELECT ... FOR UPDATE needs UPDATE) and moved by every append.
GRANT SELECT, UPDATE ON :"schema".audit_head TO :"app";
-- Corrections: created and moved from state to state; never deleted.
GRANT SELECT, INSERT, UPDATE ON :"schema".workflow TO :"app";
GRANT USAGE ON ALL SEQUENCES IN SCHEMA :"schema" TO :"app";
-- The schema version check at start-up.
GRANT SELECT ON :"schema".alembic_version TO :"app";
