-- What the user owns in the current database (and the shared objects, such
-- as databases): reassigned to the master user or dropped (owned), then its
-- privileges revoked. Opens a transaction in which the master user is a member
-- of the user (__db_user_grant); the caller ends it. Included by
-- user_absent.sql.
BEGIN;
\if :__db_user_grant
GRANT :"user" TO CURRENT_USER;
\endif
\if :__db_user_drop
DROP OWNED BY :"user";
\else
REASSIGN OWNED BY :"user" TO CURRENT_USER;
DROP OWNED BY :"user";
\endif
