#!/bin/sh
# The db_user Job's SQL container: reads the master user's name and password
# from the Secrets Manager secret RDS manages (written by the init container to
# a memory-backed volume), removes that file, and runs plan.sql with psql. The
# password is only in psql's environment; nothing here prints it.
set -eu
secret=${DB_USER_SECRET_FILE:-/run/master/secret.json}
if [ ! -s "$secret" ]; then
  echo "error|the master user secret was not read (no $secret)" >&2
  exit 2
fi
# A JSON string field of the secret ({"username": "...", "password": "..."}),
# with the JSON escapes \" \\ \/ undone (RDS passwords are printable ASCII).
field() {
  sed -n 's/.*"'"$1"'"[[:space:]]*:[[:space:]]*"\(\([^"\\]\|\\.\)*\)".*/\1/p' "$secret" | sed 's/\\\(.\)/\1/g'
}
PGUSER=$(field username)
PGPASSWORD=$(field password)
rm -f "$secret"
if [ -z "$PGUSER" ] || [ -z "$PGPASSWORD" ]; then
  echo "error|the master user secret has no username or password field" >&2
  exit 2
fi
export PGUSER PGPASSWORD
exec psql --no-psqlrc --no-align --tuples-only --quiet --set ON_ERROR_STOP=1 --file "${DB_USER_PLAN:-/etc/db-user/plan.sql}"
