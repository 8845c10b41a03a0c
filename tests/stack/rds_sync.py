"""Keep the stack's PostgreSQL in step with the RDS for PostgreSQL DB instances in moto.

    python tests/stack/rds_sync.py --once            # one pass, print the changes
    python tests/stack/rds_sync.py --interval 15     # a pass every 15 s until interrupted

or, from Python, ``sync_once(moto_url, pg) -> list[str]`` (``stack_settings()`` reads both from the stack's
``endpoints.json``). For every DB instance of engine ``postgres`` in the stack's region(s), a pass

* creates the NOLOGIN roles ``rds_iam`` (its members authenticate with IAM tokens, see ``pg_hba.conf`` and
  ``moto_ext/rds_iam_auth.py``) and ``rds_superuser`` (member of ``pg_monitor`` and ``pg_signal_backend``);
* creates or updates the master user (``MasterUsername``) as RDS sets it up: LOGIN, CREATEDB, CREATEROLE, not
  SUPERUSER, member of ``rds_superuser``, with the password of the Secrets Manager secret RDS manages for it
  (``MasterUserSecret.SecretArn``); with CREATEROLE it may ``GRANT rds_iam`` to the roles it creates
  (PostgreSQL 15; from 16 on CREATEROLE alone no longer allows that);
* creates the instance's initial database (``DBName``) owned by the master user.

A pass changes only what differs and returns one line per change. The password only travels as a SCRAM
verifier computed by libpq on this side (it is never part of an SQL statement, a log line or a file) and is
compared against the stored verifier without resetting it. When several instances name the same master user
with different passwords, the first instance (by account, region, identifier) wins and the others are reported.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg import sql

__all__ = ["MasterUser", "describe_master_users", "stack_settings", "sync_once"]

IAM_ROLE = "rds_iam"
SUPERUSER_ROLE = "rds_superuser"
SUPERUSER_ROLE_MEMBER_OF = ("pg_monitor", "pg_signal_backend")
# Role names RDS reserves for itself; a master user of that name is not touched.
RESERVED = frozenset({"postgres", "rdsadmin", "rds_superuser", "rds_iam", "rds_replication", "rds_password"})
DEFAULT_REGION = "eu-west-1"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class MasterUser:
    instance: str  # DB instance ARN
    username: str
    database: str | None
    password: str | None = field(default=None, repr=False)
    problem: str | None = None  # why the password could not be read


def _session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")


def describe_master_users(moto_url: str, regions: Sequence[str]) -> list[MasterUser]:
    """The master users of the postgres DB instances in moto, passwords read from their managed secrets."""
    session = _session()
    found = []
    for region in regions:
        rds = session.client("rds", region_name=region, endpoint_url=moto_url)
        instances = [
            instance
            for page in rds.get_paginator("describe_db_instances").paginate()
            for instance in page["DBInstances"]
            if instance.get("Engine") == "postgres" and instance.get("DBInstanceStatus") != "deleting"
        ]
        for instance in sorted(instances, key=lambda i: i["DBInstanceArn"]):
            secret_arn = (instance.get("MasterUserSecret") or {}).get("SecretArn")
            password = problem = None
            if not secret_arn:
                problem = "no MasterUserSecret (ManageMasterUserPassword is off)"
            else:
                secret_region = secret_arn.split(":")[3] or region
                secrets = session.client("secretsmanager", region_name=secret_region, endpoint_url=moto_url)
                try:
                    value = json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])
                    password = value["password"]
                except (ClientError, BotoCoreError, ValueError, KeyError, TypeError) as error:
                    problem = f"the master user secret cannot be read ({type(error).__name__})"
            found.append(
                MasterUser(
                    instance=instance["DBInstanceArn"],
                    username=instance["MasterUsername"],
                    database=instance.get("DBName"),
                    password=password,
                    problem=problem,
                )
            )
    return found


def scram_matches(verifier: str | None, password: str) -> bool:
    """Whether a stored ``SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`` is for this password."""
    try:
        method, rest = (verifier or "").split("$", 1)
        iterations_salt, keys = rest.split("$", 1)
        iterations, salt = iterations_salt.split(":", 1)
        stored_key = keys.split(":", 1)[0]
        if method != "SCRAM-SHA-256":
            return False
        salted = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt), int(iterations))
    except (ValueError, TypeError):
        return False
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return hmac.compare_digest(hashlib.sha256(client_key).digest(), base64.b64decode(stored_key))


def _role(conn: psycopg.Connection[Any], name: str) -> dict[str, Any] | None:
    row = conn.execute(
        "SELECT rolcanlogin, rolcreatedb, rolcreaterole, rolsuper, rolpassword FROM pg_authid WHERE rolname = %s",
        (name,),
    ).fetchone()
    if row is None:
        return None
    return dict(zip(("login", "createdb", "createrole", "superuser", "password"), row))


def _member_of(conn: psycopg.Connection[Any], member: str, role: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member"
        " WHERE r.rolname = %s AND u.rolname = %s",
        (role, member),
    ).fetchone()
    return row is not None


def ensure_base_roles(conn: psycopg.Connection[Any]) -> list[str]:
    changes = []
    for name in (IAM_ROLE, SUPERUSER_ROLE):
        if _role(conn, name) is None:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
            changes.append(f"created role {name} (NOLOGIN)")
    for granted in SUPERUSER_ROLE_MEMBER_OF:
        if _role(conn, granted) is not None and not _member_of(conn, SUPERUSER_ROLE, granted):
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(granted), sql.Identifier(SUPERUSER_ROLE)))
            changes.append(f"granted {granted} to {SUPERUSER_ROLE}")
    return changes


def _verifier(conn: psycopg.Connection[Any], user: str, password: str) -> str:
    """The SCRAM-SHA-256 verifier libpq computes on the client, as psql's \\password does."""
    return conn.pgconn.encrypt_password(password.encode("utf-8"), user.encode("utf-8"), b"scram-sha-256").decode()


def ensure_master_user(conn: psycopg.Connection[Any], master: MasterUser) -> list[str]:
    name = master.username
    label = f"master user {name} of {master.instance}"
    if name.lower() in RESERVED or name.startswith("pg_"):
        return [f"skipped {label}: reserved role name"]
    changes = []
    role = _role(conn, name)
    ident = sql.Identifier(name)
    if role is None:
        statement = sql.SQL("CREATE ROLE {} LOGIN CREATEDB CREATEROLE NOSUPERUSER").format(ident)
        if master.password is not None:
            statement += sql.SQL(" PASSWORD {}").format(sql.Literal(_verifier(conn, name, master.password)))
        conn.execute(statement)
        changes.append(f"created {label}" + (" with the password of its secret" if master.password else ""))
    else:
        wanted = {"login": True, "createdb": True, "createrole": True, "superuser": False}
        differing = [key for key, value in wanted.items() if role[key] != value]
        if differing:
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN CREATEDB CREATEROLE NOSUPERUSER").format(ident))
            changes.append(f"set LOGIN CREATEDB CREATEROLE NOSUPERUSER on {label} ({', '.join(differing)} differed)")
        if master.password is not None and not scram_matches(role["password"], master.password):
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(ident, sql.Literal(_verifier(conn, name, master.password)))
            )
            changes.append(f"set the password of {label} from its secret")
    if not _member_of(conn, name, SUPERUSER_ROLE):
        conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(SUPERUSER_ROLE), ident))
        changes.append(f"granted {SUPERUSER_ROLE} to {name}")
    if master.problem:
        changes.append(f"password of {label} left as is: {master.problem}")
    if master.database:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (master.database,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(master.database), ident))
            changes.append(f"created database {master.database} owned by {name}")
    return changes


def _connect(pg: str | Mapping[str, Any]) -> psycopg.Connection[Any]:
    if isinstance(pg, str):
        return psycopg.connect(pg, autocommit=True)
    return psycopg.connect(**dict(pg), autocommit=True)


def sync_once(moto_url: str, pg: str | Mapping[str, Any], regions: Sequence[str] | None = None) -> list[str]:
    """One pass; pg is a libpq connection string or psycopg.connect keyword arguments for a superuser."""
    wanted_regions = list(regions or [os.environ.get("LAYERED_AWS_REGION") or DEFAULT_REGION])
    masters = describe_master_users(moto_url, wanted_regions)
    changes: list[str] = []
    with _connect(pg) as conn:
        changes += ensure_base_roles(conn)
        passwords: dict[str, tuple[str, str | None]] = {}
        for master in masters:
            first = passwords.setdefault(master.username, (master.instance, master.password))
            if first[0] != master.instance and first[1] != master.password:
                changes.append(
                    f"skipped master user {master.username} of {master.instance}: {first[0]} has the same "
                    "master user with another password"
                )
                continue
            changes += ensure_master_user(conn, master)
    return changes


def stack_settings(stack_dir: Path | None = None) -> tuple[str, dict[str, Any], str]:
    """(moto URL, superuser connection keywords over verified TLS, region) from the stack's endpoints.json."""
    directory = stack_dir or Path(os.environ.get("LAYERED_STACK_DIR") or REPO / ".stack")
    endpoints = json.loads((directory / "endpoints.json").read_text())
    params = {
        "host": endpoints["postgres_host"],
        "port": int(endpoints["postgres_port"]),
        "user": endpoints["postgres_superuser"],
        "password": Path(endpoints["postgres_password_file"]).read_text().strip(),
        "dbname": "postgres",
        "sslmode": "verify-full",
        "sslrootcert": endpoints["postgres_ca_file"],
        "connect_timeout": 10,
    }
    return endpoints["aws_endpoint_url"], params, endpoints.get("aws_region") or DEFAULT_REGION


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-dir", type=Path, help="default: LAYERED_STACK_DIR or <repo>/.stack")
    parser.add_argument("--region", action="append", help="repeatable; default: the stack's region")
    parser.add_argument("--once", action="store_true", help="one pass, then exit")
    parser.add_argument("--interval", type=float, default=30.0, help="seconds between passes (default 30)")
    args = parser.parse_args(argv)
    moto_url, params, region = stack_settings(args.stack_dir)
    while True:
        try:
            for change in sync_once(moto_url, params, args.region or [region]):
                print(f"[rds-sync] {change}", flush=True)
        except (psycopg.Error, BotoCoreError, ClientError) as error:
            if args.once:
                print(f"[rds-sync] failed: {type(error).__name__}: {error}", file=sys.stderr)
                return 1
            print(f"[rds-sync] pass failed, retrying: {type(error).__name__}", file=sys.stderr, flush=True)
        if args.once:
            return 0
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
