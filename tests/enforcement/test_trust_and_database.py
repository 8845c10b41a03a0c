"""Web identity trust and RDS IAM authentication, as the local stack enforces them.

Tokens come from the local kube-apiserver's TokenRequest API (or are signed here to be expired or
forged); STS answers as AWS does; PostgreSQL logs the IAM user in only with a valid token.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import jwt
import psycopg
import pytest
from botocore.exceptions import ClientError
from conftest import APP_NAMESPACE, APP_SA, DB_USER, STACK_DIR, superuser_connection
from cryptography.hazmat.primitives.asymmetric import rsa
from kubernetes import client as k8s
from probes import rds_connect_policy


def sa_token(core: k8s.CoreV1Api, namespace: str, name: str, audience: str = "sts.amazonaws.com") -> str:
    request = {"spec": {"audiences": [audience], "expirationSeconds": 600}}
    return core.create_namespaced_service_account_token(name, namespace, request).status.token


@pytest.fixture(scope="module")
def irsa(converged: dict[str, Any], core: k8s.CoreV1Api, aws: dict[str, Any], endpoints: dict[str, Any]):
    sa = core.read_namespaced_service_account(APP_SA, APP_NAMESPACE)
    role_arn = sa.metadata.annotations["eks.amazonaws.com/role-arn"]
    issuer = endpoints["sa_issuer"]
    host = issuer.removeprefix("https://")
    provider = next(
        p["Arn"]
        for p in aws["iam"].list_open_id_connect_providers()["OpenIDConnectProviderList"]
        if p["Arn"].endswith(host)
    )
    return {"role_arn": role_arn, "issuer": issuer, "provider_arn": provider}


def assume(aws: dict[str, Any], role_arn: str, token: str) -> dict[str, Any]:
    return aws["sts"].assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName=f"t-{uuid.uuid4().hex[:8]}", WebIdentityToken=token
    )


def refused(aws: dict[str, Any], role_arn: str, token: str) -> tuple[str, str]:
    with pytest.raises(ClientError) as err:
        assume(aws, role_arn, token)
    return err.value.response["Error"]["Code"], err.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def other_namespace(core: k8s.CoreV1Api) -> Iterator[str]:
    name = f"layered-trust-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    core.create_namespaced_service_account(name, {"metadata": {"name": APP_SA}})
    yield name
    core.delete_namespace(name)


def forged(irsa: dict[str, Any], core: k8s.CoreV1Api, *, key: Any, exp_delta: int) -> str:
    """A token with the right claims, signed by ``key`` with the apiserver's key id."""
    real = sa_token(core, APP_NAMESPACE, APP_SA)
    header = jwt.get_unverified_header(real)
    claims = jwt.decode(real, options={"verify_signature": False})
    now = int(time.time())
    claims.update(iat=now - 1200, nbf=now - 1200, exp=now + exp_delta)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": header["kid"]})


def test_token_of_the_right_service_account_assumes_the_role(irsa, core, aws):
    creds = assume(aws, irsa["role_arn"], sa_token(core, APP_NAMESPACE, APP_SA))
    assert creds["SubjectFromWebIdentityToken"] == f"system:serviceaccount:{APP_NAMESPACE}:{APP_SA}"
    session = boto3.session.Session(
        aws_access_key_id=creds["Credentials"]["AccessKeyId"],
        aws_secret_access_key=creds["Credentials"]["SecretAccessKey"],
        aws_session_token=creds["Credentials"]["SessionToken"],
        region_name=aws["sts"].meta.region_name,
    )
    who = session.client("sts", endpoint_url=aws["sts"].meta.endpoint_url).get_caller_identity()
    assert f":assumed-role/{irsa['role_arn'].rsplit('/', 1)[1]}/" in who["Arn"]


def test_wrong_namespace_is_denied(irsa, core, aws, other_namespace):
    code, _ = refused(aws, irsa["role_arn"], sa_token(core, other_namespace, APP_SA))
    assert code == "AccessDenied"


def test_wrong_service_account_is_denied(irsa, core, aws):
    name = f"other-{uuid.uuid4().hex[:6]}"
    core.create_namespaced_service_account(APP_NAMESPACE, {"metadata": {"name": name}})
    try:
        code, _ = refused(aws, irsa["role_arn"], sa_token(core, APP_NAMESPACE, name))
    finally:
        core.delete_namespaced_service_account(name, APP_NAMESPACE)
    assert code == "AccessDenied"


def test_wrong_audience_is_refused(irsa, core, aws):
    code, message = refused(
        aws, irsa["role_arn"], sa_token(core, APP_NAMESPACE, APP_SA, "https://kubernetes.default.svc")
    )
    assert code == "InvalidIdentityToken"
    assert "audience" in message.lower()


def test_expired_web_identity_token_is_refused(irsa, core, aws):
    sa_key = (STACK_DIR / "pki" / "sa.key").read_bytes()
    code, _ = refused(aws, irsa["role_arn"], forged(irsa, core, key=sa_key, exp_delta=-300))
    assert code == "ExpiredTokenException"


def test_token_signed_by_another_key_is_refused(irsa, core, aws):
    code, _ = refused(aws, irsa["role_arn"], forged(irsa, core, key=other_key(), exp_delta=600))
    assert code == "InvalidIdentityToken"


def test_deleted_provider_refuses_every_token(irsa, core, aws):
    iam = aws["iam"]
    provider = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=irsa["provider_arn"])
    token = sa_token(core, APP_NAMESPACE, APP_SA)
    iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=irsa["provider_arn"])
    try:
        code, _ = refused(aws, irsa["role_arn"], token)
    finally:
        iam.create_open_id_connect_provider(
            Url=irsa["issuer"],
            ClientIDList=provider["ClientIDList"],
            ThumbprintList=provider["ThumbprintList"],
            Tags=provider.get("Tags") or [],
        )
    assert code == "InvalidIdentityToken"
    assume(aws, irsa["role_arn"], token)


def other_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# ---------------------------------------------------------------- the database
@pytest.fixture(scope="module")
def db(converged: dict[str, Any], endpoints: dict[str, Any]) -> dict[str, Any]:
    instance = converged["db"]
    superuser = superuser_connection(endpoints)
    with psycopg.connect(**superuser) as conn:
        if not conn.execute("select 1 from pg_roles where rolname = %s", (DB_USER,)).fetchone():
            conn.execute(f'create role "{DB_USER}" login')
        conn.execute(f'grant rds_iam to "{DB_USER}"')
        if not conn.execute("select 1 from pg_roles where rolname = 'layered_plain'").fetchone():
            conn.execute("create role layered_plain login password 'plain-password-1'")
    return {
        "address": instance["Endpoint"]["Address"],
        "port": instance["Endpoint"]["Port"],
        "local_port": endpoints["postgres_port"],
        "ca": endpoints["postgres_ca_file"],
        "superuser": superuser,
        "region": endpoints["aws_region"],
    }


@pytest.fixture(scope="module")
def role_session(irsa, core, aws) -> boto3.session.Session:
    creds = assume(aws, irsa["role_arn"], sa_token(core, APP_NAMESPACE, APP_SA))["Credentials"]
    return boto3.session.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=aws["sts"].meta.region_name,
    )


def token(session: boto3.session.Session, db: dict[str, Any], *, user: str = DB_USER, host: str | None = None) -> str:
    rds = session.client("rds", endpoint_url="http://127.0.0.1:1")  # signing only: nothing is sent
    return rds.generate_db_auth_token(DBHostname=host or db["address"], Port=db["port"], DBUsername=user)


def login(db: dict[str, Any], password: str, *, user: str = DB_USER, sslmode: str = "verify-full") -> str:
    """Log in as the RDS endpoint name (TLS checked against it), on the local server's address."""
    with psycopg.connect(
        host=db["address"],
        hostaddr="127.0.0.1",
        port=db["local_port"],
        user=user,
        password=password,
        dbname="postgres",
        sslmode=sslmode,
        sslrootcert=db["ca"],
        connect_timeout=10,
    ) as conn:
        return conn.execute("select current_user").fetchone()[0]


def login_error(db: dict[str, Any], password: str, **kwargs: Any) -> str:
    with pytest.raises(psycopg.OperationalError) as err:
        login(db, password, **kwargs)
    return str(err.value)


def test_token_of_the_role_logs_in_over_tls(db, role_session):
    assert login(db, token(role_session, db)) == DB_USER


def test_same_token_over_plain_tcp_is_refused(db, role_session):
    message = login_error(db, token(role_session, db), sslmode="disable")
    assert "no pg_hba.conf entry" in message or "rejects connection" in message


def test_token_for_another_user_is_refused(db, role_session):
    assert f'PAM authentication failed for user "{DB_USER}"' in login_error(
        db, token(role_session, db, user="someone_else")
    )


def test_token_for_another_host_is_refused(db, role_session):
    other = "another-db.aaaaaaaaaa." + db["region"] + ".rds.amazonaws.com"
    assert "PAM authentication failed" in login_error(db, token(role_session, db, host=other))


def test_expired_database_token_is_refused(db, role_session):
    original = botocore.auth.get_current_datetime
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=20)
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: past.replace(tzinfo=None) if remove_tzinfo else past
    try:
        old = token(role_session, db)
    finally:
        botocore.auth.get_current_datetime = original
    assert "PAM authentication failed" in login_error(db, old)


def test_identity_without_rds_db_connect_is_refused(db, aws):
    iam = aws["iam"]
    name = f"layered-no-connect-{uuid.uuid4().hex[:6]}"
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    try:
        session = boto3.session.Session(
            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=db["region"]
        )
        assert "PAM authentication failed" in login_error(db, token(session, db))
    finally:
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=name)


def test_identity_allowed_on_another_instance_only_is_refused(db, aws, converged):
    iam = aws["iam"]
    name = f"layered-other-db-{uuid.uuid4().hex[:6]}"
    region, account = db["region"], converged["cluster"]["arn"].split(":")[4]
    other = f"arn:aws:rds-db:{region}:{account}:dbuser:db-ANOTHERINSTANCE0000000000/{DB_USER}"
    iam.create_user(UserName=name)
    iam.put_user_policy(
        UserName=name,
        PolicyName="connect",
        PolicyDocument=rds_connect_policy(other),
    )
    key = iam.create_access_key(UserName=name)["AccessKey"]
    try:
        session = boto3.session.Session(
            aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=region
        )
        assert "PAM authentication failed" in login_error(db, token(session, db))
        # the same user, allowed on this instance's DbiResourceId, logs in
        mine = f"arn:aws:rds-db:{region}:{account}:dbuser:{converged['db']['DbiResourceId']}/{DB_USER}"
        iam.put_user_policy(
            UserName=name,
            PolicyName="connect",
            PolicyDocument=rds_connect_policy(mine),
        )
        assert login(db, token(session, db)) == DB_USER
    finally:
        iam.delete_user_policy(UserName=name, PolicyName="connect")
        iam.delete_access_key(UserName=name, AccessKeyId=key["AccessKeyId"])
        iam.delete_user(UserName=name)


def test_user_without_rds_iam_cannot_use_a_token(db, role_session):
    message = login_error(db, token(role_session, db, user="layered_plain"), user="layered_plain")
    assert 'password authentication failed for user "layered_plain"' in message
    assert login(db, "plain-password-1", user="layered_plain") == "layered_plain"


def test_plain_password_of_an_rds_iam_member_is_refused(db):
    with psycopg.connect(**db["superuser"]) as conn:
        conn.execute(f"alter role \"{DB_USER}\" password 'a-static-password-1'")
    try:
        message = login_error(db, "a-static-password-1")
    finally:
        with psycopg.connect(**db["superuser"]) as conn:
            conn.execute(f'alter role "{DB_USER}" password null')
    assert f'PAM authentication failed for user "{DB_USER}"' in message


def test_refusals_are_explained_in_the_stack_log_without_the_token(db, role_session, endpoints):
    secret = token(role_session, db, user="someone_else")
    login_error(db, secret)
    log = Path(endpoints["postgres_data_dir"]).parent / "rds-iam-auth.log"
    last = log.read_text().splitlines()[-1]
    assert DB_USER in last and "someone_else" in last, last
    logs = log.read_text()
    signature = secret.rsplit("X-Amz-Signature=", 1)[1]
    assert signature not in logs


def test_master_user_logs_in_with_the_password_rds_keeps_in_secrets_manager(db, aws, converged):
    instance = converged["db"]
    secret = json.loads(
        aws["secretsmanager"].get_secret_value(SecretId=instance["MasterUserSecret"]["SecretArn"])["SecretString"]
    )
    assert secret["username"] == instance["MasterUsername"]
    assert login(db, secret["password"], user=secret["username"]) == secret["username"]
    message = login_error(db, secret["password"] + "-not", user=secret["username"])
    assert f'password authentication failed for user "{secret["username"]}"' in message
