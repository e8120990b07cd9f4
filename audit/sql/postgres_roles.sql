-- relink on PostgreSQL with a separate schema owner (spec/audit.md, "Append-only in the database").
--
-- Two roles:
--   owner  owns the schema and its tables; runs `relink init` (migrations) and nothing else.
--   app    what relink runs as day to day: SELECT and INSERT on audit_entry, nothing more, so
--          it can add to the audit log but never UPDATE, DELETE or TRUNCATE it, nor drop or
--          disable the append-only triggers (only a table's owner can).
--
-- Step 1, this file, as a superuser (or a role with CREATEROLE) in the target database:
--   psql "$ADMIN_URL" -v owner=relink_owner -v app=relink_app -v schema=relink \
--        -f audit/sql/postgres_roles.sql
--   then give both roles a password: \password relink_owner and \password relink_app
-- Step 2, as the owner:  relink --db "postgresql://relink_owner@HOST/DB" init
-- Step 3, as the owner:  psql "postgresql://relink_owner@HOST/DB" -v app=relink_app \
--        -v schema=relink -f audit/sql/postgres_grants.sql
-- Step 4, relink runs as the application role:
--   RELINK_DATABASE_URL=postgresql://relink_app@HOST/DB
-- After a relink upgrade that adds tables, run `relink init` as the owner and step 3 again.

\set ON_ERROR_STOP on

CREATE ROLE :"owner" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE ROLE :"app" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;

CREATE SCHEMA :"schema" AUTHORIZATION :"owner";
REVOKE ALL ON SCHEMA :"schema" FROM PUBLIC;
GRANT USAGE ON SCHEMA :"schema" TO :"app";

-- Both roles find relink's tables without a schema-qualified URL.
ALTER ROLE :"owner" SET search_path = :"schema";
ALTER ROLE :"app" SET search_path = :"schema";
