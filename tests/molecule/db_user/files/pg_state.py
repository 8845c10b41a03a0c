"""Print, as JSON, what the stack's PostgreSQL holds for the given users (read as the superuser).

python pg_state.py <stack endpoints.json> <master user> <user> [<user> ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import psycopg


def main() -> None:
    endpoints = json.loads(Path(sys.argv[1]).read_text())
    conninfo = {
        "host": endpoints["postgres_host"],
        "port": endpoints["postgres_port"],
        "user": endpoints["postgres_superuser"],
        "password": Path(endpoints["postgres_password_file"]).read_text().strip(),
        "dbname": "postgres",
        "sslmode": "verify-full",
        "sslrootcert": endpoints["postgres_ca_file"],
    }
    out: dict = {"users": {}, "databases": {}}
    with psycopg.connect(**conninfo, autocommit=True) as conn:
        for user in sys.argv[3:]:
            row = conn.execute(
                """SELECT rolcanlogin, rolconnlimit, rolsuper, rolcreatedb, rolcreaterole, rolpassword IS NULL,
                          ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid
                                 WHERE m.member = a.oid ORDER BY 1),
                          ARRAY(SELECT u.rolname FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member
                                 WHERE m.roleid = a.oid ORDER BY 1)
                     FROM pg_authid a WHERE rolname = %s""",
                (user,),
            ).fetchone()
            if row is None:
                out["users"][user] = None
                continue
            keys = ("login", "connection_limit", "superuser", "createdb", "createrole", "no_password")
            out["users"][user] = dict(zip(keys, row[:6]), member_of=row[6], members=row[7])
        for name, owner, acl in conn.execute(
            "SELECT datname, pg_get_userbyid(datdba), datacl::text[] FROM pg_database WHERE NOT datistemplate"
        ):
            out["databases"][name] = {"owner": owner, "acl": acl, "schemas": {}}
        for name in out["databases"]:
            if name == "postgres":
                continue
            with psycopg.connect(**{**conninfo, "dbname": name}, autocommit=True) as db:
                for schema, owner in db.execute(
                    "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace"
                    " WHERE nspname !~ '^(pg_|information_schema)'"
                ):
                    out["databases"][name]["schemas"][schema] = owner
        master = conn.execute(
            "SELECT ARRAY(SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid"
            " JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s)",
            (sys.argv[2],),
        ).fetchone()
        out["master_member_of"] = master[0]
    json.dump(out, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main()
