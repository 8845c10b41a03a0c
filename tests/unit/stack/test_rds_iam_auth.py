"""RDS IAM database authentication of the local stack: the token verifier of the extended moto, the PAM program
that asks it, and the files the stack installs for PostgreSQL.

Pure checks run on tokens signed with botocore's ``generate_db_auth_token`` under a fixed clock; the endpoint
tests talk to the stack's moto launcher (``tests/stack/moto_server.py``) on a free port.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pki
import pytest
import rds_iam_pam
import rds_iam_setup
from _moto import aws_clients
from moto.iam.access_control import PermissionResult
from moto_ext import rds_iam_auth as auth

REGION = "eu-west-1"
ACCOUNT = "123456789012"
HOST = "orders.aaaaaaaaaa.eu-west-1.rds.amazonaws.com"
PORT = 5432
RESOURCE_ID = "db-ABCDEFGHIJKLMNOPQRSTUVWXYZ"
NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)
KEY_ID = "AKIAEXAMPLEKEY000001"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
USER_ARN = f"arn:aws:iam::{ACCOUNT}:user/alice"


@contextlib.contextmanager
def signing_clock(moment: datetime.datetime) -> Iterator[None]:
    """botocore signs with this time instead of now."""
    original = botocore.auth.get_current_datetime
    botocore.auth.get_current_datetime = lambda remove_tzinfo=True: moment.astimezone(datetime.timezone.utc).replace(
        tzinfo=None
    )
    try:
        yield
    finally:
        botocore.auth.get_current_datetime = original


def make_token(
    user: str = "app_user",
    *,
    host: str = HOST,
    port: int = PORT,
    key: str = KEY_ID,
    secret: str = SECRET,
    session_token: str | None = None,
    at: datetime.datetime | None = None,
    region: str = REGION,
) -> str:
    session = boto3.session.Session(
        aws_access_key_id=key, aws_secret_access_key=secret, aws_session_token=session_token, region_name=region
    )
    client = session.client("rds")
    if at is None:
        return str(client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user))
    with signing_clock(at):
        return str(client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user))


def signature_of(token: str) -> str:
    return token.rsplit("X-Amz-Signature=", 1)[1]


def instance(**overrides: Any) -> auth.Instance:
    values: dict[str, Any] = {
        "arn": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders",
        "account_id": ACCOUNT,
        "region": REGION,
        "identifier": "orders",
        "address": HOST,
        "port": PORT,
        "dbi_resource_id": RESOURCE_ID,
        "iam_auth_enabled": True,
    }
    values.update(overrides)
    return auth.Instance(**values)


def allow(resource: str, action: Any = "rds-db:connect", effect: str = "Allow", **extra: Any) -> str:
    statement = {"Effect": effect, "Action": action, **extra}
    if "NotResource" not in extra:
        statement["Resource"] = resource
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def dbuser(user: str = "app_user", resource_id: str = RESOURCE_ID) -> str:
    return f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{resource_id}/{user}"


def credential(*policies: Any, session_token: str | None = None, session_policy: str | None = None) -> auth.Credential:
    return auth.Credential(
        access_key_id=KEY_ID,
        secret_access_key=SECRET,
        session_token=session_token,
        principal_arn=USER_ARN,
        account_id=ACCOUNT,
        policies=policies,
        session_policy=session_policy,
    )


def decide(token: str, user: str = "app_user", *, now: datetime.datetime = NOW, **kwargs: Any) -> auth.Decision:
    found = kwargs.pop("credential", None) or credential(allow(dbuser()))
    instances = kwargs.pop("instances", None) or [instance()]

    def resolve(access_key_id: str, session_token: str | None, _now: datetime.datetime) -> auth.Credential:
        if access_key_id != found.access_key_id:
            raise auth.Denied(f"unknown access key {access_key_id}")
        return found

    return auth.verify(token, user, now=now, instances=lambda: instances, resolve_credential=resolve)


# ------------------------------------------------------------------ parsing


def test_parse_token_of_botocore() -> None:
    token = make_token(at=NOW)
    parsed = auth.parse_token(token)
    assert (parsed.host, parsed.port, parsed.db_user) == (HOST, PORT, "app_user")
    assert (parsed.access_key_id, parsed.region, parsed.service) == (KEY_ID, REGION, "rds-db")
    assert parsed.signed_at == NOW
    assert parsed.expires == 900
    assert parsed.security_token is None
    assert parsed.signature == signature_of(token)
    assert "X-Amz-Signature" not in dict(parsed.params)
    assert parsed.signature not in repr(parsed) and parsed.signature not in str(parsed)


def test_parse_token_with_session_token() -> None:
    parsed = auth.parse_token(make_token(session_token="FQoGZXIvYXdzE+/=", at=NOW))
    assert parsed.security_token == "FQoGZXIvYXdzE+/="
    assert "FQoGZXIvYXdzE" not in repr(parsed)


@pytest.mark.parametrize(
    ("mangle", "reason"),
    [
        (lambda t: "", "malformed token: empty"),
        (lambda t: "https://" + t, "malformed token: not a presigned rds-db URL"),
        (lambda t: t.replace(f":{PORT}/", "/"), "malformed token: it does not start with <host>:<port>"),
        (lambda t: t.replace(f":{PORT}/", ":port/"), "malformed token: the port is not a number"),
        (lambda t: t.replace("/?", "/x?"), "malformed token: the path must be /"),
        (lambda t: t.replace("Action=connect", "Action=login"), "malformed token: Action must be connect"),
        (lambda t: t.rsplit("&X-Amz-Signature=", 1)[0], "malformed token: missing X-Amz-Signature"),
        (lambda t: t + "&DBUser=root", "malformed token: repeated parameters DBUser"),
        (lambda t: t + "&Extra=1", "malformed token: unexpected parameters Extra"),
        (lambda t: t.replace("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"), "malformed token: X-Amz-Algorithm must be"),
        (lambda t: t.replace("SignedHeaders=host", "SignedHeaders=host%3Bx-amz-date"), "SignedHeaders must be host"),
        (lambda t: t[:-64] + "Z" * 64, "malformed token: X-Amz-Signature is not 64 lower-case hex digits"),
        (lambda t: t.replace("%2F20260301%2F", "%2F20260302%2F"), "the credential scope date is not the date"),
        (lambda t: t.replace("X-Amz-Date=20260301T", "X-Amz-Date=2026-03-01T"), "X-Amz-Date is not yyyymmddThhmmssZ"),
        (lambda t: t.replace("X-Amz-Expires=900", "X-Amz-Expires=soon"), "X-Amz-Expires is not a number"),
    ],
)
def test_parse_token_refuses_what_rds_refuses(mangle: Any, reason: str) -> None:
    token = make_token(at=NOW)
    with pytest.raises(auth.Denied) as denied:
        auth.parse_token(mangle(token))
    assert reason in denied.value.reason
    assert signature_of(token) not in denied.value.reason


# ------------------------------------------------------------------ pure checks


@pytest.mark.parametrize(
    ("signed", "expires", "allowed", "reason"),
    [
        (NOW, 900, True, ""),
        (NOW - datetime.timedelta(seconds=899), 900, True, ""),
        (NOW - datetime.timedelta(seconds=900), 900, False, "expired: signed at 2026-03-01T11:45:00Z, valid for 900 s"),
        (NOW - datetime.timedelta(seconds=61), 60, False, "expired"),
        (NOW + datetime.timedelta(minutes=4), 900, True, ""),
        (NOW + datetime.timedelta(minutes=6), 900, False, "not yet valid: signed at 2026-03-01T12:06:00Z"),
        (NOW, 901, False, "bad expiry: X-Amz-Expires must be between 1 and 900 seconds, not 901"),
        (NOW, 0, False, "bad expiry"),
    ],
)
def test_check_lifetime(signed: datetime.datetime, expires: int, allowed: bool, reason: str) -> None:
    token = auth.parse_token(make_token(at=signed).replace("X-Amz-Expires=900", f"X-Amz-Expires={expires}"))
    if allowed:
        auth.check_lifetime(token, NOW)
    else:
        with pytest.raises(auth.Denied) as denied:
            auth.check_lifetime(token, NOW)
        assert denied.value.reason.startswith(reason)


@pytest.mark.parametrize(
    ("age", "max_age", "allowed"),
    [(19, 20, True), (20, 20, False), (899, None, True), (900, None, False), (899, 900, True), (899, 1000, True)],
)
def test_check_lifetime_with_a_maximum_age(age: int, max_age: int | None, allowed: bool) -> None:
    token = auth.parse_token(make_token(at=NOW - datetime.timedelta(seconds=age)))
    if allowed:
        auth.check_lifetime(token, NOW, max_age)
        return
    with pytest.raises(auth.Denied) as denied:
        auth.check_lifetime(token, NOW, max_age)
    if max_age is None:
        assert denied.value.reason.endswith("valid for 900 s, now 2026-03-01T12:00:00Z")
    else:
        assert denied.value.reason.startswith("expired: signed at 2026-03-01T11:59:40Z, valid for 900 s ")
        assert "(the stack accepts app_user's tokens for 20 s)" in denied.value.reason


def test_verify_passes_the_maximum_age_on() -> None:
    token = make_token(at=NOW - datetime.timedelta(seconds=30))
    assert decide(token).allowed
    shortened = auth.verify(
        token,
        "app_user",
        now=NOW,
        instances=lambda: [instance()],
        resolve_credential=lambda *_: credential(allow(dbuser())),
        max_token_age=20,
    )
    assert not shortened.allowed
    assert shortened.reason.startswith("expired:")


def test_check_db_user() -> None:
    token = auth.parse_token(make_token("app_user", at=NOW))
    auth.check_db_user(token, "app_user")
    with pytest.raises(auth.Denied, match="wrong user: the token is for DBUser 'app_user', the login role is 'other'"):
        auth.check_db_user(token, "other")


def test_match_instance() -> None:
    orders = instance()
    same_name_other_region = instance(region="us-east-1", arn="arn:aws:rds:us-east-1:123456789012:db:orders")
    token = auth.parse_token(make_token(at=NOW))
    assert auth.match_instance(token, [same_name_other_region, orders]) is orders
    with pytest.raises(auth.Denied, match=r"wrong host: no DB instance has the endpoint address other\.aaaa"):
        auth.match_instance(auth.parse_token(make_token(host="other.aaaaaaaaaa.eu-west-1.rds.amazonaws.com")), [orders])
    with pytest.raises(auth.Denied, match=f"wrong port: {HOST} listens on 5432, the token is for port 5433"):
        auth.match_instance(auth.parse_token(make_token(port=5433)), [orders])
    with pytest.raises(auth.Denied, match="wrong region: the token is signed for us-west-2"):
        auth.match_instance(auth.parse_token(make_token(region="us-west-2")), [orders])


def test_compute_signature_is_botocores() -> None:
    token = make_token(at=NOW)
    parsed = auth.parse_token(token)
    assert auth.compute_signature(parsed, SECRET, None) == signature_of(token)
    assert auth.compute_signature(parsed, SECRET + "x", None) != signature_of(token)
    with_session = make_token(session_token="session/token+1=", at=NOW)
    parsed = auth.parse_token(with_session)
    assert auth.compute_signature(parsed, SECRET, "session/token+1=") == signature_of(with_session)


def test_check_signature() -> None:
    token = make_token(at=NOW)
    auth.check_signature(auth.parse_token(token), credential())
    tampered = token[:-1] + ("0" if token[-1] != "0" else "1")
    with pytest.raises(auth.Denied, match="bad signature") as denied:
        auth.check_signature(auth.parse_token(tampered), credential())
    assert signature_of(tampered) not in denied.value.reason and signature_of(token) not in denied.value.reason
    with pytest.raises(auth.Denied, match="invalid session token"):
        auth.check_signature(auth.parse_token(make_token(session_token="a", at=NOW)), credential(session_token="b"))


@pytest.mark.parametrize(
    ("policies", "expected"),
    [
        ([allow(dbuser())], PermissionResult.PERMITTED),
        ([allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/app_user")], PermissionResult.PERMITTED),
        ([allow(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{RESOURCE_ID}/*")], PermissionResult.PERMITTED),
        ([allow(f"arn:aws:rds-db:*:*:dbuser:{RESOURCE_ID}/app_use?")], PermissionResult.PERMITTED),
        ([allow("*", action="rds-db:*")], PermissionResult.PERMITTED),
        ([allow(dbuser(), action="RDS-DB:Connect")], PermissionResult.PERMITTED),
        ([allow(dbuser(), action=["s3:GetObject", "rds-db:connect"])], PermissionResult.PERMITTED),
        ([allow(dbuser(resource_id="db-OTHERINSTANCE0000000000000"))], PermissionResult.NEUTRAL),
        ([allow(dbuser("other"))], PermissionResult.NEUTRAL),
        ([allow(dbuser(), action="rds:Connect")], PermissionResult.NEUTRAL),
        ([allow(dbuser().replace("app_user", "app.user"))], PermissionResult.NEUTRAL),  # '.' is no wildcard
        ([allow("*"), allow(dbuser(), effect="Deny")], PermissionResult.DENIED),
        ([allow(dbuser(), effect="Deny"), allow(dbuser())], PermissionResult.DENIED),
        ([allow(dbuser(), action="*", effect="Deny")], PermissionResult.DENIED),
        ([allow("*", NotResource=dbuser())], PermissionResult.NEUTRAL),
        ([allow("*", NotResource=dbuser("other"))], PermissionResult.PERMITTED),
        ([allow(dbuser(), Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})], PermissionResult.NEUTRAL),
        (
            [allow(dbuser()), allow(dbuser(), effect="Deny", Condition={"Bool": {"aws:SecureTransport": "false"}})],
            PermissionResult.DENIED,
        ),
        (
            [json.dumps({"Statement": {"Effect": "Allow", "Action": "rds-db:connect", "Resource": dbuser()}})],
            PermissionResult.PERMITTED,
        ),
        ([{"policy_document": allow(dbuser())}], PermissionResult.PERMITTED),
        (["not json"], PermissionResult.NEUTRAL),
        ([], PermissionResult.NEUTRAL),
    ],
)
def test_evaluate_policies(policies: list[Any], expected: PermissionResult) -> None:
    assert auth.evaluate_policies(policies, "rds-db:connect", dbuser()) == expected


def test_session_policy_narrows_the_role() -> None:
    token = make_token(at=NOW)
    assert decide(token, credential=credential(allow("*"), session_policy=allow(dbuser()))).allowed
    narrowed = decide(token, credential=credential(allow("*"), session_policy=allow(dbuser("other"))))
    assert not narrowed.allowed
    assert narrowed.reason.startswith("not allowed by policy: the session policy of")


def test_verify_decisions() -> None:
    token = make_token(at=NOW)
    decision = decide(token)
    assert decision == auth.Decision(
        True,
        f"allowed: {USER_ARN} may rds-db:connect on {dbuser()}",
        USER_ARN,
        f"arn:aws:rds:{REGION}:{ACCOUNT}:db:orders",
    )
    cases = {
        "wrong user": decide(token, "other"),
        "wrong host": decide(make_token(host="x.aaaaaaaaaa.eu-west-1.rds.amazonaws.com", at=NOW)),
        "wrong port": decide(make_token(port=6432, at=NOW)),
        "IAM database authentication is not enabled on DB instance orders": decide(
            token, instances=[instance(iam_auth_enabled=False)]
        ),
        "expired": decide(token, now=NOW + datetime.timedelta(minutes=20)),
        "unknown access key AKIAUNKNOWNKEY000000": decide(make_token(key="AKIAUNKNOWNKEY000000", at=NOW)),
        "bad signature": decide(make_token(secret="another-secret", at=NOW)),
        "not allowed by policy": decide(token, credential=credential(allow(dbuser("someone_else")))),
        "denied by policy": decide(token, credential=credential(allow("*"), allow("*", effect="Deny"))),
    }
    for reason, decision in cases.items():
        assert not decision.allowed, reason
        assert decision.reason.startswith(reason), (reason, decision.reason)
        assert signature_of(token) not in decision.reason and "X-Amz-Signature" not in decision.reason


def test_wrong_service_in_scope() -> None:
    session = boto3.session.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name=REGION)
    with signing_clock(NOW):
        url = session.client("s3").generate_presigned_url("list_buckets")
    assert not decide(url).allowed  # an S3 URL is no token
    token = make_token(at=NOW).replace("%2Frds-db%2F", "%2Frds%2F")
    assert decide(token).reason == "wrong service: the credential scope is for 'rds', not 'rds-db'"


# ------------------------------------------------------------------ the moto endpoint


@pytest.fixture(scope="module")
def aws(moto_url: str) -> dict[str, Any]:
    return aws_clients(moto_url, "rds", "iam", "sts", "secretsmanager", region=REGION)


@pytest.fixture(scope="module")
def db(aws: dict[str, Any]) -> dict[str, Any]:
    name = f"orders-{uuid.uuid4().hex[:6]}"
    aws["rds"].create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="pgadmin",
        ManageMasterUserPassword=True,
        EnableIAMDatabaseAuthentication=True,
    )
    return aws["rds"].describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]  # type: ignore[no-any-return]


def arn_for(db: dict[str, Any], user: str = "app_user", resource_id: str | None = None) -> str:
    return f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:{resource_id or db['DbiResourceId']}/{user}"


def policy(resource: str, effect: str = "Allow") -> str:
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": effect, "Action": "rds-db:connect", "Resource": resource}]}
    )


def iam_user(aws: dict[str, Any], *policies: str) -> dict[str, str]:
    name = f"u-{uuid.uuid4().hex[:8]}"
    aws["iam"].create_user(UserName=name)
    for index, document in enumerate(policies):
        aws["iam"].put_user_policy(UserName=name, PolicyName=f"p{index}", PolicyDocument=document)
    key = aws["iam"].create_access_key(UserName=name)["AccessKey"]
    return {"key": key["AccessKeyId"], "secret": key["SecretAccessKey"], "arn": f"arn:aws:iam::{ACCOUNT}:user/{name}"}


def assumed_role(aws: dict[str, Any], *policies: str, managed: bool = False) -> dict[str, str]:
    name = f"r-{uuid.uuid4().hex[:8]}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": ACCOUNT}, "Action": "sts:AssumeRole"}],
    }
    role = aws["iam"].create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    for index, document in enumerate(policies):
        if managed:
            arn = aws["iam"].create_policy(PolicyName=f"{name}-{index}", PolicyDocument=document)["Policy"]["Arn"]
            aws["iam"].attach_role_policy(RoleName=name, PolicyArn=arn)
        else:
            aws["iam"].put_role_policy(RoleName=name, PolicyName=f"p{index}", PolicyDocument=document)
    creds = aws["sts"].assume_role(RoleArn=role["Arn"], RoleSessionName="app-session")["Credentials"]
    return {
        "key": creds["AccessKeyId"],
        "secret": creds["SecretAccessKey"],
        "token": creds["SessionToken"],
        "arn": f"arn:aws:sts::{ACCOUNT}:assumed-role/{name}/app-session",
    }


def token_for(db: dict[str, Any], who: dict[str, str], user: str = "app_user", **kwargs: Any) -> str:
    kwargs.setdefault("host", db["Endpoint"]["Address"])
    kwargs.setdefault("port", db["Endpoint"]["Port"])
    return make_token(user, key=who["key"], secret=who["secret"], session_token=who.get("token"), **kwargs)


def ask(moto_url: str, token: Any, user: Any = "app_user", raw: bytes | None = None) -> tuple[int, dict[str, Any]]:
    body = raw if raw is not None else json.dumps({"token": token, "user": user, "client": "127.0.0.1"}).encode()
    request = urllib.request.Request(
        moto_url + auth.ENDPOINT_PATH, data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_endpoint_allows_an_iam_user(moto_url: str, aws: dict[str, Any], db: dict[str, Any]) -> None:
    alice = iam_user(aws, policy(arn_for(db)))
    status, answer = ask(moto_url, token_for(db, alice))
    assert status == 200
    assert answer == {
        "allowed": True,
        "reason": f"allowed: {alice['arn']} may rds-db:connect on {arn_for(db)}",
        "principal": alice["arn"],
        "instance": db["DBInstanceArn"],
    }


def test_endpoint_allows_an_assumed_role_with_a_wildcard(
    moto_url: str, aws: dict[str, Any], db: dict[str, Any]
) -> None:
    role = assumed_role(aws, policy(f"arn:aws:rds-db:{REGION}:{ACCOUNT}:dbuser:*/app_user"), managed=True)
    token = token_for(db, role)
    assert "X-Amz-Security-Token=" in token
    status, answer = ask(moto_url, token)
    assert (status, answer["allowed"], answer["principal"]) == (200, True, role["arn"])
    # the same role for another database user is not covered by dbuser:*/app_user
    _, other = ask(moto_url, token_for(db, role, "reporting"), "reporting")
    assert other["allowed"] is False
    assert other["reason"].startswith(f"not allowed by policy: no policy of {role['arn']} allows rds-db:connect")


def test_endpoint_refusals(moto_url: str, aws: dict[str, Any], db: dict[str, Any]) -> None:
    alice = iam_user(aws, policy(arn_for(db)))
    good = token_for(db, alice)
    tampered = good[:-1] + ("0" if good[-1] != "0" else "1")
    expired = token_for(db, alice, at=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=16))
    future = token_for(db, alice, at=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(minutes=10))
    nobody = assumed_role(
        aws,
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "rds:DescribeDBInstances", "Resource": "*"}],
            }
        ),
    )
    other_instance = iam_user(aws, policy(arn_for(db, resource_id="db-ANOTHERINSTANCE000000000")))
    denied = iam_user(aws, policy("*"), policy(arn_for(db), effect="Deny"))
    role = assumed_role(aws, policy(arn_for(db)))
    cases = {
        "bad signature": (tampered, "app_user"),
        "expired: signed at": (expired, "app_user"),
        "not yet valid": (future, "app_user"),
        "wrong user: the token is for DBUser 'app_user', the login role is 'admin'": (good, "admin"),
        "wrong host: no DB instance has the endpoint address elsewhere.aaaaaaaaaa": (
            token_for(db, alice, host="elsewhere.aaaaaaaaaa.eu-west-1.rds.amazonaws.com"),
            "app_user",
        ),
        "wrong port": (token_for(db, alice, port=6543), "app_user"),
        "unknown access key AKIA": (
            make_token(key="AKIAIOSFODNN7EXAMPLE", host=db["Endpoint"]["Address"]),
            "app_user",
        ),
        "unknown access key testing": (
            make_token(key="testing", secret="testing", host=db["Endpoint"]["Address"]),
            "app_user",
        ),
        "invalid session token": (token_for(db, {**role, "token": role["token"][:-4] + "AAAA"}), "app_user"),
        f"not allowed by policy: no policy of {nobody['arn']}": (token_for(db, nobody), "app_user"),
        f"not allowed by policy: no policy of {other_instance['arn']}": (token_for(db, other_instance), "app_user"),
        f"denied by policy: an explicit Deny of rds-db:connect on {arn_for(db)}": (token_for(db, denied), "app_user"),
        "malformed token: empty": ("", "app_user"),
    }
    for reason, (token, user) in cases.items():
        status, answer = ask(moto_url, token, user)
        assert status == 200
        assert answer["allowed"] is False, reason
        assert answer["reason"].startswith(reason), (reason, answer["reason"])
        text = json.dumps(answer)
        if token:
            assert signature_of(token) not in text
        assert role["token"] not in text


def test_endpoint_requires_iam_auth_on_the_instance(moto_url: str, aws: dict[str, Any]) -> None:
    name = f"plain-{uuid.uuid4().hex[:6]}"
    aws["rds"].create_db_instance(
        DBInstanceIdentifier=name,
        Engine="postgres",
        DBInstanceClass="db.t3.micro",
        AllocatedStorage=20,
        MasterUsername="pgadmin",
        MasterUserPassword="not-managed-123",
    )
    plain = aws["rds"].describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    alice = iam_user(aws, policy("*"))
    _, answer = ask(moto_url, token_for(plain, alice))
    assert answer["reason"] == f"IAM database authentication is not enabled on DB instance {name}"
    aws["rds"].modify_db_instance(
        DBInstanceIdentifier=name, EnableIAMDatabaseAuthentication=True, ApplyImmediately=True
    )
    assert ask(moto_url, token_for(plain, alice))[1]["allowed"] is True


def test_endpoint_inactive_key_and_bad_requests(moto_url: str, aws: dict[str, Any], db: dict[str, Any]) -> None:
    alice = iam_user(aws, policy(arn_for(db)))
    user_name = alice["arn"].rsplit("/", 1)[1]
    aws["iam"].update_access_key(UserName=user_name, AccessKeyId=alice["key"], Status="Inactive")
    assert ask(moto_url, token_for(db, alice))[1]["reason"] == f"inactive access key {alice['key']}"
    assert ask(moto_url, None, raw=b"not json") == (
        400,
        {"allowed": False, "reason": "bad request: the body must be a JSON object", "principal": "", "instance": ""},
    )
    assert ask(moto_url, 5)[0] == 400


def max_token_age(moto_url: str, body: Any = None, method: str = "POST") -> tuple[int, dict[str, Any]]:
    data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    request = urllib.request.Request(moto_url + auth.MAX_TOKEN_AGE_PATH, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_endpoint_max_token_age_shortens_one_roles_tokens(
    moto_url: str, aws: dict[str, Any], db: dict[str, Any]
) -> None:
    alice = iam_user(aws, policy(arn_for(db)), policy(arn_for(db, "reporting")))
    half_a_minute_ago = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(seconds=30)
    token = token_for(db, alice, at=half_a_minute_ago)
    other = token_for(db, alice, "reporting", at=half_a_minute_ago)
    assert ask(moto_url, token)[1]["allowed"] is True
    assert max_token_age(moto_url, {"user": "app_user", "seconds": 20}) == (
        200,
        {"user": "app_user", "seconds": 20, "previous": None},
    )
    try:
        assert max_token_age(moto_url, method="GET") == (200, {"default": 900, "users": {"app_user": 20}})
        _, answer = ask(moto_url, token)
        assert answer["allowed"] is False
        assert answer["reason"].startswith("expired: signed at ")
        assert "(the stack accepts app_user's tokens for 20 s)" in answer["reason"]
        # another role keeps AWS's lifetime, and a token signed now is still good
        assert ask(moto_url, other, "reporting")[1]["allowed"] is True
        assert ask(moto_url, token_for(db, alice))[1]["allowed"] is True
    finally:
        restored = max_token_age(moto_url, {"user": "app_user", "seconds": None})
    assert restored == (200, {"user": "app_user", "seconds": None, "previous": 20})
    assert max_token_age(moto_url, method="GET") == (200, {"default": 900, "users": {}})
    assert ask(moto_url, token)[1]["allowed"] is True


@pytest.mark.parametrize(
    "body",
    [
        {"user": "app_user", "seconds": 0},
        {"user": "app_user", "seconds": 901},
        {"user": "app_user", "seconds": "20"},
        {"user": "app_user", "seconds": True},
        {"user": "app_user", "seconds": 2.5},
        {"seconds": 20},
        {"user": "", "seconds": 20},
        b"not json",
        b"[1]",
    ],
)
def test_endpoint_max_token_age_refuses_bad_requests(moto_url: str, body: Any) -> None:
    status, answer = max_token_age(moto_url, body)
    assert status == 400, answer
    assert max_token_age(moto_url, method="GET")[1]["users"] == {}


def test_master_user_secret_is_the_instances(aws: dict[str, Any], db: dict[str, Any]) -> None:
    secret = db["MasterUserSecret"]
    assert secret["SecretStatus"] == "active" and secret["KmsKeyId"].startswith("arn:aws:kms:")
    value = json.loads(aws["secretsmanager"].get_secret_value(SecretId=secret["SecretArn"])["SecretString"])
    assert value["username"] == "pgadmin"
    assert len(value["password"]) == 28 and value["password"] != "P@55w0rd!"
    assert not set(value["password"]) & set("/@\"' \\")


# ------------------------------------------------------------------ the PAM program


def run_pam_program(
    moto_url: str, token: str, user: str, log: Path, monkeypatch: pytest.MonkeyPatch, tail: bytes = b"\0"
) -> int:
    monkeypatch.setenv("PAM_USER", user)
    monkeypatch.setenv("PAM_RHOST", "127.0.0.1")
    monkeypatch.setenv("PAM_TYPE", "auth")
    stdin = io.BytesIO(token.encode() + tail)
    return rds_iam_pam.main(["--url", moto_url + auth.ENDPOINT_PATH, "--log", str(log)], stdin=stdin)


def test_pam_program(
    moto_url: str, aws: dict[str, Any], db: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = iam_user(aws, policy(arn_for(db)))
    token = token_for(db, alice)
    log = tmp_path / "attempts.log"
    assert run_pam_program(moto_url, token, "app_user", log, monkeypatch) == 0
    assert run_pam_program(moto_url, token, "app_user", log, monkeypatch, tail=b"\n") == 0
    assert run_pam_program(moto_url, token, "intruder", log, monkeypatch) == 1
    assert run_pam_program(moto_url, "", "app_user", log, monkeypatch) == 1
    assert run_pam_program("http://127.0.0.1:9", token, "app_user", log, monkeypatch) == 1
    monkeypatch.setenv("PAM_TYPE", "account")
    assert rds_iam_pam.main(["--url", moto_url + auth.ENDPOINT_PATH, "--log", str(log)], stdin=io.BytesIO(b"")) == 1
    lines = log.read_text().splitlines()
    assert len(lines) == 6
    assert 'user="app_user" client="127.0.0.1" result="allowed"' in lines[0]
    assert f'principal="{alice["arn"]}"' in lines[0]
    assert 'user="intruder" client="127.0.0.1" result="denied" reason="wrong user:' in lines[2]
    assert 'reason="empty password"' in lines[3]
    assert 'reason="verifier unreachable or unreadable: URLError"' in lines[4]
    assert 'reason="only the auth stack is handled, not account"' in lines[5]
    text = log.read_text()
    assert signature_of(token) not in text and "X-Amz" not in text
    assert oct(log.stat().st_mode & 0o777) == "0o600"


def test_pam_program_refuses_oversized_passwords(
    moto_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "attempts.log"
    assert run_pam_program(moto_url, "x" * 20000, "app_user", log, monkeypatch) == 1
    assert "longer than 16384 bytes" in log.read_text()


# ------------------------------------------------------------------ what the stack installs


def test_hba_in_rds_order() -> None:
    rules = [
        line.split()
        for line in rds_iam_setup.hba_text("layered-rds-iam-x").splitlines()
        if line and not line.startswith("#")
    ]
    assert rules == [
        ["local", "all", "all", "peer"],
        ["hostssl", "all", "+rds_iam", "0.0.0.0/0", "pam", "pamservice=layered-rds-iam-x"],
        ["hostssl", "all", "+rds_iam", "::/0", "pam", "pamservice=layered-rds-iam-x"],
        ["host", "all", "+rds_iam", "0.0.0.0/0", "reject"],
        ["host", "all", "+rds_iam", "::/0", "reject"],
        ["hostssl", "all", "all", "0.0.0.0/0", "scram-sha-256"],
        ["hostssl", "all", "all", "::/0", "scram-sha-256"],
    ]
    without_pam = rds_iam_setup.hba_text(None)
    assert "pam" not in without_pam.replace("rds_iam", "")
    assert "hostssl all +rds_iam 0.0.0.0/0 reject" in " ".join(without_pam.split())


def test_pam_service_install(tmp_path: Path) -> None:
    pam_dir = tmp_path / "pam.d"
    pam_dir.mkdir()
    program_dir = tmp_path / "prog"
    log = tmp_path / "attempts.log"
    url = "http://127.0.0.1:4999" + auth.ENDPOINT_PATH
    shim = rds_iam_setup.install(program_dir, "layered-rds-iam-unit", url, log, pam_dir=pam_dir)
    text = (pam_dir / "layered-rds-iam-unit").read_text()
    program = f"/usr/bin/python3 -I {program_dir}/rds_iam_pam.py --url {url} --log {log}"
    if shim is not None:
        assert f"auth    required {program_dir}/pam_authtok_exec.so {program}\n" in text
    else:
        assert f"auth    required pam_exec.so expose_authtok quiet {program}\n" in text
    assert "account required pam_permit.so\n" in text
    assert (program_dir / "rds_iam_pam.py").read_bytes() == rds_iam_setup.PAM_PROGRAM.read_bytes()
    assert log.exists()
    assert rds_iam_setup.uninstall("layered-rds-iam-unit", pam_dir=pam_dir)
    assert not (pam_dir / "layered-rds-iam-unit").exists()
    with pytest.raises(SystemExit):
        rds_iam_setup.install(tmp_path / "p2", "bad name", url, log, pam_dir=pam_dir)
    with pytest.raises(SystemExit):
        rds_iam_setup.install(tmp_path / "p3", "svc", url, tmp_path / "a log", pam_dir=pam_dir)


def test_postgres_certificate_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cryptography import x509

    monkeypatch.delenv("LAYERED_AWS_REGION", raising=False)
    assert pki.postgres_server_names() == ("localhost", "*.aaaaaaaaaa.eu-west-1.rds.amazonaws.com")
    monkeypatch.setenv("LAYERED_AWS_REGION", "us-east-2")
    assert pki.postgres_server_names() == ("localhost", "*.aaaaaaaaaa.us-east-2.rds.amazonaws.com")
    ca = pki.ensure_ca(tmp_path)
    # a certificate of an older stack, without the RDS names, is issued again; one with them is kept
    pki.ensure_leaf(tmp_path, "postgres", ca, "localhost", server_names=("localhost",), server_ips=("127.0.0.1",))
    old = (tmp_path / "postgres.crt").read_bytes()
    names = pki.postgres_server_names(("eu-west-1",))
    for _ in range(2):
        pki.ensure_leaf(
            tmp_path,
            "postgres",
            ca,
            "localhost",
            server_names=names,
            server_ips=("127.0.0.1",),
            reissue_without_names=True,
        )
    new = (tmp_path / "postgres.crt").read_bytes()
    assert new != old
    sans = x509.load_pem_x509_certificate(new).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost", "*.aaaaaaaaaa.eu-west-1.rds.amazonaws.com"]
    pki.ensure_leaf(
        tmp_path, "postgres", ca, "localhost", server_names=names, server_ips=("127.0.0.1",), reissue_without_names=True
    )
    assert (tmp_path / "postgres.crt").read_bytes() == new


def test_pam_module_is_rebuilt_when_its_source_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if not Path("/usr/include/security/pam_modules.h").exists():
        pytest.skip("PAM headers (libpam0g-dev) are not installed")
    first = rds_iam_setup.build_shim(tmp_path)
    if first is None:
        pytest.skip("no C compiler")
    built = first.stat().st_mtime_ns
    assert rds_iam_setup.build_shim(tmp_path) == first
    assert first.stat().st_mtime_ns == built  # same source: kept
    changed = tmp_path / "changed.c"
    changed.write_text(rds_iam_setup.SHIM_SOURCE.read_text() + "\n/* changed */\n")
    monkeypatch.setattr(rds_iam_setup, "SHIM_SOURCE", changed)
    assert rds_iam_setup.build_shim(tmp_path) == first
    assert first.stat().st_mtime_ns != built
    broken = tmp_path / "broken.c"
    broken.write_text("this is not C\n")
    monkeypatch.setattr(rds_iam_setup, "SHIM_SOURCE", broken)
    assert rds_iam_setup.build_shim(tmp_path) is None  # never the build of another source
