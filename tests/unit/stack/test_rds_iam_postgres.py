"""RDS IAM database authentication end to end: a private PostgreSQL (own data directory, free port) with the
stack's pg_hba.conf and PAM service, the stack's moto server on a free port, and psycopg clients that connect
with ``sslmode=verify-full`` to a DB instance's endpoint address and an IAM token as password.

Also the master user sync (``tests/stack/rds_sync.py``) against that server. Needs root (PostgreSQL runs as the
``postgres`` account, the PAM service goes to /etc/pam.d under a name of its own and is removed afterwards)
and Debian's PostgreSQL server binaries.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pki
import psycopg
import pytest
import rds_iam_setup
import rds_sync
from _moto import aws_clients
from moto_ext.rds_iam_auth import ENDPOINT_PATH

REGION = "eu-west-1"
ACCOUNT = "123456789012"


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _postgres_account() -> bool:
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return False
    return True


PG_BIN = _pg_bin()
pytestmark = [
    pytest.mark.skipif(
        os.geteuid() != 0,
        reason="needs root: PostgreSQL runs as the postgres account and a PAM service is installed in /etc/pam.d",
    ),
    pytest.mark.skipif(
        PG_BIN is None or not _postgres_account(),
        reason="PostgreSQL server binaries (/usr/lib/postgresql/*/bin) or the postgres account are missing",
    ),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _as_postgres(*command: str | Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["runuser", "-u", "postgres", "--", *map(str, command)], cwd="/", capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{command[0]} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result


def _chown_postgres(*paths: Path) -> None:
    entry = pwd.getpwnam("postgres")
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)


@pytest.fixture(scope="module")
def aws(moto_url: str) -> dict[str, Any]:
    return aws_clients(moto_url, "rds", "iam", "sts", "secretsmanager", region=REGION)


@pytest.fixture(scope="module")
def db(aws: dict[str, Any]) -> dict[str, Any]:
    aws["rds"].create_db_instance(
        DBInstanceIdentifier="orders",
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        DBName="orders",
        MasterUsername="pgadmin",
        ManageMasterUserPassword=True,
        EnableIAMDatabaseAuthentication=True,
    )
    return aws["rds"].describe_db_instances(DBInstanceIdentifier="orders")["DBInstances"][0]  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def pg(moto_url: str) -> Iterator[dict[str, Any]]:
    """A private PostgreSQL set up as scripts/stack.sh's up_postgres does; its superuser and paths."""
    assert PG_BIN is not None
    base = Path(tempfile.mkdtemp(prefix="layered-rds-iam-pg-"))
    os.chmod(base, 0o711)  # the postgres account traverses it
    data, run, var, pam, certs = (base / name for name in ("data", "run", "var", "pam", "pki"))
    for directory in (data, run, var):
        directory.mkdir(mode=0o700)
        _chown_postgres(directory)
    certs.mkdir(mode=0o700)
    ca = pki.ensure_ca(certs)
    pki.ensure_leaf(
        certs, "postgres", ca, "localhost", server_names=pki.postgres_server_names((REGION,)), server_ips=("127.0.0.1",)
    )
    password = uuid.uuid4().hex
    pwfile = var / "pwfile"
    pwfile.write_text(password)
    _chown_postgres(pwfile)
    service = f"layered-rds-iam-test-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    started = False
    try:
        _as_postgres(
            PG_BIN / "initdb", "-D", data, "-U", "postgres", "--auth-local=peer", "--auth-host=scram-sha-256",
            f"--pwfile={pwfile}", "-E", "UTF8",
        )  # fmt: skip
        pwfile.unlink()
        for source, target, mode in (
            (certs / "postgres.crt", data / "server.crt", 0o600),
            (certs / "postgres.key", data / "server.key", 0o600),
            (certs / "ca.crt", data / "root.crt", 0o644),
        ):
            shutil.copyfile(source, target)
            os.chmod(target, mode)
            _chown_postgres(target)
        log = var / "rds-iam-auth.log"
        shim = rds_iam_setup.install(pam, service, moto_url + ENDPOINT_PATH, log, owner="postgres")
        (data / "pg_hba.conf").write_text(rds_iam_setup.hba_text(service))
        _as_postgres(
            PG_BIN / "pg_ctl", "-D", data, "-l", var / "postgres.log", "-w", "-t", "60", "start", "-o",
            f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={run} -c ssl=on "
            "-c ssl_cert_file=server.crt -c ssl_key_file=server.key -c ssl_ca_file=root.crt "
            "-c password_encryption=scram-sha-256 -c log_connections=on",
        )  # fmt: skip
        started = True
        superuser = {
            "host": "127.0.0.1",
            "port": port,
            "user": "postgres",
            "password": password,
            "dbname": "postgres",
            "sslmode": "verify-full",
            "sslrootcert": str(certs / "ca.crt"),
        }
        with psycopg.connect(**superuser, autocommit=True) as conn:
            conn.execute("CREATE ROLE rds_iam NOLOGIN")
            conn.execute("CREATE ROLE app_user LOGIN IN ROLE rds_iam")
            conn.execute("CREATE ROLE iam_with_password LOGIN PASSWORD 'plain-password-1' IN ROLE rds_iam")
            conn.execute("CREATE ROLE plain_user LOGIN PASSWORD 'plain-password-2'")
        yield {"port": port, "ca": str(certs / "ca.crt"), "superuser": superuser, "log": log, "shim": shim,
               "service": service, "postgres_log": var / "postgres.log"}  # fmt: skip
    finally:
        if started:
            with contextlib.suppress(RuntimeError):
                _as_postgres(PG_BIN / "pg_ctl", "-D", data, "-m", "fast", "-w", "stop")
        rds_iam_setup.uninstall(service)
        shutil.rmtree(base, ignore_errors=True)


@contextlib.contextmanager
def signing_clock(moment: datetime.datetime) -> Iterator[None]:
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: moment.replace(tzinfo=None)
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = original


def policy(resource: str) -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "rds-db:connect", "Resource": resource}]}
    )


@pytest.fixture(scope="module")
def alice(aws: dict[str, Any], db: dict[str, Any]) -> boto3.session.Session:
    """An IAM user allowed to connect as app_user and iam_with_password."""
    aws["iam"].create_user(UserName="alice")
    resource = f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{db['DbiResourceId']}"
    aws["iam"].put_user_policy(
        UserName="alice",
        PolicyName="connect",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "rds-db:connect",
                        "Resource": [f"{resource}/app_user", f"{resource}/plain_user"],
                    }
                ],
            }
        ),
    )
    key = aws["iam"].create_access_key(UserName="alice")["AccessKey"]
    return boto3.session.Session(
        aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION
    )


def role_session(aws: dict[str, Any], name: str, *policies: str) -> boto3.session.Session:
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT},
                                                      "Action": "sts:AssumeRole"}]}  # fmt: skip
    arn = aws["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    for index, document in enumerate(policies):
        aws["iam"].put_role_policy(RoleName=name, PolicyName=f"p{index}", PolicyDocument=document)
    creds = aws["sts"].assume_role(RoleArn=arn, RoleSessionName="pod")["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )


def token(session: boto3.session.Session, db: dict[str, Any], user: str) -> str:
    endpoint = db["Endpoint"]
    return str(
        session.client("rds").generate_db_auth_token(
            DBHostname=endpoint["Address"], Port=endpoint["Port"], DBUsername=user
        )
    )


def connect(pg: dict[str, Any], db: dict[str, Any], user: str, password: str, **options: Any) -> psycopg.Connection:
    """Connect to the instance's endpoint name (the certificate must match it), at the private server's address."""
    settings = {
        "host": db["Endpoint"]["Address"],
        "hostaddr": "127.0.0.1",
        "port": pg["port"],
        "user": user,
        "password": password,
        "dbname": "postgres",
        "sslmode": "verify-full",
        "sslrootcert": pg["ca"],
        "connect_timeout": 20,
    }
    settings.update(options)
    return psycopg.connect(**settings)


def refused(pg: dict[str, Any], db: dict[str, Any], user: str, password: str, **options: Any) -> str:
    with pytest.raises(psycopg.OperationalError) as error:
        connect(pg, db, user, password, **options).close()
    return str(error.value)


def last_attempt(pg: dict[str, Any]) -> str:
    return pg["log"].read_text().splitlines()[-1]


def pam_failed(user: str) -> str:
    return f'FATAL:  PAM authentication failed for user "{user}"'


def test_token_of_an_iam_user_logs_in(pg: dict[str, Any], db: dict[str, Any], alice: boto3.session.Session) -> None:
    with connect(pg, db, "app_user", token(alice, db, "app_user")) as conn:
        assert conn.execute("SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone() == (
            "app_user",
            True,
        )
    assert 'user="app_user" client="127.0.0.1" result="allowed"' in last_attempt(pg)
    assert 'principal="arn:aws:iam::123456789012:user/alice"' in last_attempt(pg)


def test_long_token_of_an_assumed_role_logs_in(pg: dict[str, Any], db: dict[str, Any], aws: dict[str, Any]) -> None:
    session = role_session(aws, "orders-app", policy(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/app_user"))
    long_token = token(session, db, "app_user")
    assert len(long_token) > 511  # more than pam_exec's expose_authtok passes on
    if pg["shim"] is None:
        pytest.skip("pam_authtok_exec.so could not be built (C compiler or libpam0g-dev missing)")
    with connect(pg, db, "app_user", long_token) as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("app_user",)
    assert 'principal="arn:aws:sts::123456789012:assumed-role/orders-app/pod"' in last_attempt(pg)


def test_plain_tcp_is_refused(pg: dict[str, Any], db: dict[str, Any], alice: boto3.session.Session) -> None:
    message = refused(pg, db, "app_user", token(alice, db, "app_user"), sslmode="disable")
    assert (
        'FATAL:  pg_hba.conf rejects connection for host "127.0.0.1", user "app_user", database "postgres", '
        "no encryption" in message
    )


def test_token_for_another_user_is_refused(
    pg: dict[str, Any], db: dict[str, Any], alice: boto3.session.Session
) -> None:
    message = refused(pg, db, "app_user", token(alice, db, "plain_user"))
    assert pam_failed("app_user") in message
    assert "wrong user: the token is for DBUser 'plain_user', the login role is 'app_user'" in last_attempt(pg)


def test_expired_token_is_refused(pg: dict[str, Any], db: dict[str, Any], alice: boto3.session.Session) -> None:
    with signing_clock(datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16)):
        old = token(alice, db, "app_user")
    assert pam_failed("app_user") in refused(pg, db, "app_user", old)
    assert 'result="denied" reason="expired: signed at' in last_attempt(pg)


def test_role_without_permission_is_refused(pg: dict[str, Any], db: dict[str, Any], aws: dict[str, Any]) -> None:
    session = role_session(aws, "no-db-access", policy(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/reporting"))
    if pg["shim"] is None:
        pytest.skip("pam_authtok_exec.so could not be built (C compiler or libpam0g-dev missing)")
    assert pam_failed("app_user") in refused(pg, db, "app_user", token(session, db, "app_user"))
    assert 'reason="not allowed by policy: no policy of arn:aws:sts::123456789012:assumed-role/no-db-access/pod' in (
        last_attempt(pg)
    )


def test_user_outside_rds_iam_cannot_use_a_token(
    pg: dict[str, Any], db: dict[str, Any], alice: boto3.session.Session
) -> None:
    attempts = pg["log"].read_text()
    message = refused(pg, db, "plain_user", token(alice, db, "plain_user"))
    assert 'FATAL:  password authentication failed for user "plain_user"' in message
    assert pg["log"].read_text() == attempts  # PAM was not asked
    with connect(pg, db, "plain_user", "plain-password-2") as conn:
        assert conn.execute("SELECT current_user").fetchone() == ("plain_user",)


def test_password_of_an_rds_iam_member_is_refused(pg: dict[str, Any], db: dict[str, Any]) -> None:
    assert pam_failed("iam_with_password") in refused(pg, db, "iam_with_password", "plain-password-1")
    assert 'user="iam_with_password" client="127.0.0.1" result="denied" reason="malformed token' in last_attempt(pg)


def test_attempt_log_has_no_tokens(pg: dict[str, Any]) -> None:
    text = pg["log"].read_text()
    assert text.count("\n") >= 5
    assert "X-Amz-" not in text and "Signature" not in text and "plain-password" not in text


def test_sync_creates_the_master_user(
    pg: dict[str, Any], db: dict[str, Any], aws: dict[str, Any], moto_url: str
) -> None:
    changes = rds_sync.sync_once(moto_url, pg["superuser"], [REGION])
    secret = json.loads(
        aws["secretsmanager"].get_secret_value(SecretId=db["MasterUserSecret"]["SecretArn"])["SecretString"]
    )
    assert secret["username"] == "pgadmin"
    assert f"created master user pgadmin of {db['DBInstanceArn']} with the password of its secret" in changes
    assert "created role rds_superuser (NOLOGIN)" in changes
    assert "granted rds_superuser to pgadmin" in changes
    assert "created database orders owned by pgadmin" in changes
    assert not any(secret["password"] in change for change in changes)
    assert rds_sync.sync_once(moto_url, pg["superuser"], [REGION]) == []
    assert secret["password"] not in pg["postgres_log"].read_text()

    with connect(pg, db, "pgadmin", secret["password"], dbname="orders") as conn:
        conn.autocommit = True
        row = conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, pg_has_role('pgadmin', 'rds_superuser', 'member') "
            "FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, True, True, True)
        conn.execute("CREATE ROLE orders_app LOGIN")
        conn.execute("GRANT rds_iam TO orders_app")
        assert conn.execute("SELECT pg_has_role('orders_app', 'rds_iam', 'member')").fetchone() == (True,)

    # the password comes back after a change made behind the sync's back
    with psycopg.connect(**pg["superuser"], autocommit=True) as conn:
        conn.execute("ALTER ROLE pgadmin PASSWORD 'something-else' NOCREATEDB")
    changes = rds_sync.sync_once(moto_url, pg["superuser"], [REGION])
    assert sorted(changes) == [
        f"set LOGIN CREATEDB CREATEROLE NOSUPERUSER on master user pgadmin of {db['DBInstanceArn']} "
        "(createdb differed)",
        f"set the password of master user pgadmin of {db['DBInstanceArn']} from its secret",
    ]
    connect(pg, db, "pgadmin", secret["password"]).close()
