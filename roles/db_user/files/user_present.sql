-- One database user, state present (included by plan.sql once per user).
-- psql variables: user, database, create_database (true|false), schema ('' for
-- none), connection_limit, maintenance. Connected to the maintenance database
-- as the master user. Each statement runs only when the catalog says it is
-- needed, and prints change|<what> before it runs; a converged database prints
-- only done|<user>.

SELECT format('DO $d$ BEGIN RAISE EXCEPTION %L; END $d$',
              'db_user_users: ' || :'user' || ' is the master user; it cannot be an IAM database user')
 WHERE :'user' = current_user \gexec

-- the user: LOGIN, no password, no CREATEDB or CREATEROLE
SELECT 'change|create user ' || :'user' || ' (LOGIN, no password, connection limit ' || :'connection_limit' || ')'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user');
SELECT format('CREATE ROLE %I LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT %s', :'user', (:'connection_limit')::int)
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec

SELECT 'change|set LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT ' || :'connection_limit' || ' on ' || :'user'
  FROM pg_roles
 WHERE rolname = :'user'
   AND (NOT rolcanlogin OR rolcreatedb OR rolcreaterole OR rolconnlimit <> (:'connection_limit')::int);
SELECT format('ALTER ROLE %I LOGIN NOCREATEDB NOCREATEROLE CONNECTION LIMIT %s', :'user', (:'connection_limit')::int)
  FROM pg_roles
 WHERE rolname = :'user'
   AND (NOT rolcanlogin OR rolcreatedb OR rolcreaterole OR rolconnlimit <> (:'connection_limit')::int) \gexec

-- IAM authentication: members of rds_iam log in with an IAM token only
SELECT 'change|grant rds_iam to ' || :'user'
 WHERE NOT EXISTS (SELECT FROM pg_auth_members m
                     JOIN pg_roles g ON g.oid = m.roleid
                     JOIN pg_roles u ON u.oid = m.member
                    WHERE g.rolname = 'rds_iam' AND u.rolname = :'user');
SELECT format('GRANT rds_iam TO %I', :'user')
 WHERE NOT EXISTS (SELECT FROM pg_auth_members m
                     JOIN pg_roles g ON g.oid = m.roleid
                     JOIN pg_roles u ON u.oid = m.member
                    WHERE g.rolname = 'rds_iam' AND u.rolname = :'user') \gexec

-- The master user of RDS is no superuser: it hands a database or a schema to
-- the user only while it is a member of it. That membership would also make
-- the master user a member of rds_iam, and so lock it out of password logins
-- (on RDS as here), so it is granted and revoked inside one transaction.
SELECT NOT pg_has_role(current_user, :'user', 'MEMBER') AS __db_user_grant \gset

-- its own database, owned by it, closed to PUBLIC, open to the master user
\if :create_database
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') AS __db_user_new_database \gset
\if :__db_user_new_database
SELECT 'change|create database ' || :'database' || ' owned by ' || :'user';
CREATE DATABASE :"database";
\endif

SELECT d.datdba <> u.oid AS __db_user_give,
       d.datacl IS NULL OR EXISTS (SELECT FROM aclexplode(d.datacl) a WHERE a.grantee = 0) AS __db_user_public,
       NOT EXISTS (SELECT FROM aclexplode(d.datacl) a
                    WHERE a.grantee = (SELECT oid FROM pg_roles WHERE rolname = current_user)
                      AND a.privilege_type = 'CONNECT') AS __db_user_admin,
       pg_get_userbyid(d.datdba) AS __db_user_owner
  FROM pg_database d, pg_roles u
 WHERE d.datname = :'database' AND u.rolname = :'user' \gset
\if :__db_user_new_database
\elif :__db_user_give
SELECT 'change|give database ' || :'database' || ' to ' || :'user' || ' (owned by ' || :'__db_user_owner' || ')';
\endif
\if :__db_user_public
SELECT 'change|revoke the privileges of PUBLIC on database ' || :'database';
\endif
\if :__db_user_admin
SELECT 'change|grant CONNECT on database ' || :'database' || ' to the master user ' || current_user;
\endif
SELECT :'__db_user_give' OR :'__db_user_public' OR :'__db_user_admin' AS __db_user_database_changes \gset
\if :__db_user_database_changes
BEGIN;
\if :__db_user_grant
GRANT :"user" TO CURRENT_USER;
\endif
\if :__db_user_give
ALTER DATABASE :"database" OWNER TO :"user";
\endif
REVOKE ALL ON DATABASE :"database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"database" TO CURRENT_USER;
\if :__db_user_grant
REVOKE :"user" FROM CURRENT_USER;
\endif
COMMIT;
\endif
\else
SELECT format('DO $d$ BEGIN RAISE EXCEPTION %L; END $d$',
              'db_user_users: the database ' || :'database' || ' of ' || :'user'
              || ' does not exist (create_database is false)')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'database') \gexec

SELECT format('DO $d$ BEGIN RAISE EXCEPTION %L; END $d$',
              'db_user_users: the master user ' || current_user || ' cannot grant CONNECT and CREATE on database '
              || :'database' || ' (owned by ' || pg_get_userbyid(datdba) || '); with create_database false, '
              || 'name a database the master user owns')
  FROM pg_database
 WHERE datname = :'database'
   AND NOT (has_database_privilege(current_user, :'database', 'CONNECT WITH GRANT OPTION')
            AND has_database_privilege(current_user, :'database', 'CREATE')) \gexec

SELECT 'change|grant CONNECT on database ' || :'database' || ' to ' || :'user'
 WHERE NOT has_database_privilege(:'user', :'database', 'CONNECT');
SELECT format('GRANT CONNECT ON DATABASE %I TO %I', :'database', :'user')
 WHERE NOT has_database_privilege(:'user', :'database', 'CONNECT') \gexec
\endif

-- a schema of its own in that database
SELECT :'schema' <> '' AS __db_user_has_schema \gset
\if :__db_user_has_schema
\connect :"database"
SELECT NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = :'schema') AS __db_user_create_schema,
       EXISTS (SELECT FROM pg_namespace WHERE nspname = :'schema'
                  AND nspowner <> (SELECT oid FROM pg_roles WHERE rolname = :'user')) AS __db_user_give_schema \gset
\if :__db_user_create_schema
SELECT 'change|create schema ' || :'schema' || ' owned by ' || :'user' || ' in database ' || :'database';
BEGIN;
\if :__db_user_grant
GRANT :"user" TO CURRENT_USER;
\endif
CREATE SCHEMA :"schema" AUTHORIZATION :"user";
\if :__db_user_grant
REVOKE :"user" FROM CURRENT_USER;
\endif
COMMIT;
\elif :__db_user_give_schema
SELECT 'change|give schema ' || :'schema' || ' to ' || :'user' || ' in database ' || :'database';
BEGIN;
\if :__db_user_grant
GRANT :"user" TO CURRENT_USER;
\endif
ALTER SCHEMA :"schema" OWNER TO :"user";
\if :__db_user_grant
REVOKE :"user" FROM CURRENT_USER;
\endif
COMMIT;
\endif
\connect :"maintenance"
\endif

SELECT 'done|' || :'user';
