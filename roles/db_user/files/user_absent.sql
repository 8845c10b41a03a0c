-- One database user, state absent (included by plan.sql once per user).
-- psql variables: user, database, owned (reassign|drop), maintenance.
-- Connected to the maintenance database as the master user. reassign: what the
-- user owns goes to the master user (its database too) and is kept; drop: its
-- database (when it owns it) and everything it owns are deleted. Then the
-- user's privileges are revoked and the user is dropped. As in
-- user_present.sql, the master user is a member of the user only inside a
-- transaction (a lasting membership would put it in rds_iam).

SELECT format('DO $d$ BEGIN RAISE EXCEPTION %L; END $d$',
              'db_user_users: ' || :'user' || ' is the master user; it cannot be dropped here')
 WHERE :'user' = current_user \gexec

SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') AS __db_user_exists,
       :'owned' = 'drop' AS __db_user_drop \gset
\if :__db_user_exists
SELECT NOT pg_has_role(current_user, :'user', 'MEMBER') AS __db_user_grant,
       EXISTS (SELECT FROM pg_database WHERE datname = :'database'
                  AND datdba = (SELECT oid FROM pg_roles WHERE rolname = :'user')) AS __db_user_owns_database \gset

\if :__db_user_drop
\if :__db_user_owns_database
SELECT 'change|drop database ' || :'database' || ' (owned by ' || :'user' || ')';
BEGIN;
\if :__db_user_grant
GRANT :"user" TO CURRENT_USER;
\endif
ALTER DATABASE :"database" OWNER TO CURRENT_USER;
\if :__db_user_grant
REVOKE :"user" FROM CURRENT_USER;
\endif
COMMIT;
DROP DATABASE :"database" WITH (FORCE);
\endif
\endif

-- the objects in its database (REASSIGN and DROP OWNED act on the database
-- they run in, and on shared objects such as databases)
SELECT EXISTS (SELECT FROM pg_database WHERE datname = :'database') AND :'database' <> :'maintenance'
       AND has_database_privilege(current_user, :'database', 'CONNECT') AS __db_user_enter \gset
\if :__db_user_enter
\connect :"database"
\ir owned_objects.sql
\if :__db_user_grant
REVOKE :"user" FROM CURRENT_USER;
\endif
COMMIT;
\connect :"maintenance"
\endif

\if :__db_user_drop
SELECT 'change|drop user ' || :'user' || ' and everything it owns';
\else
SELECT 'change|drop user ' || :'user' || ' (what it owned now belongs to ' || current_user || ')';
\endif
\ir owned_objects.sql
DROP ROLE :"user";
COMMIT;
\endif

SELECT 'done|' || :'user';
