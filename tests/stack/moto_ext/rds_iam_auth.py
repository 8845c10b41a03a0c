"""RDS IAM database authentication tokens, verified against moto's IAM, STS and RDS state.

The stack's PostgreSQL stands in for the RDS for PostgreSQL instances the collection creates in moto: logins of
members of ``rds_iam`` go through PAM to ``tests/stack/rds_iam_pam.py``, which asks this endpoint of the moto
server whether the password is a valid token for the login role::

    POST /moto-api/layered/rds-iam-auth   {"token": "...", "user": "app", "client": "10.0.1.5"}
    200 {"allowed": false, "reason": "bad signature: ...", "principal": "arn:aws:iam::...", "instance": "arn:..."}

A token is what botocore's ``generate_db_auth_token`` makes: a SigV4 presigned URL without its scheme,
``<host>:<port>/?Action=connect&DBUser=<user>&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=...
&X-Amz-Date=...&X-Amz-Expires=...&X-Amz-SignedHeaders=host[&X-Amz-Security-Token=...]&X-Amz-Signature=...``.
It is accepted, as RDS accepts it, when

* ``DBUser`` is the role PostgreSQL authenticates;
* host and port are the endpoint of a DB instance in moto (any account and region) that has IAM database
  authentication enabled, and the credential scope names that instance's region and the ``rds-db`` service;
* it is not expired (``X-Amz-Date`` + ``X-Amz-Expires``, at most 900 s) nor dated more than 5 minutes ahead;
* the signature, recomputed with botocore's SigV4 query signer, matches for the secret moto issued to the access
  key: a long-term IAM user key, or temporary credentials from STS AssumeRole* (whose session token must match);
* the identity policies of the IAM user (its groups included) or of the assumed role allow ``rds-db:connect`` on
  ``arn:<partition>:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<user>`` and none denies it (a session
  policy passed to AssumeRole must allow it too). Statements are evaluated with moto's ``IAMPolicyStatement``,
  with IAM's wildcard matching (``*``, ``?``, actions case-insensitive) and ``NotResource``; Condition blocks
  are not evaluated: an Allow with a Condition grants nothing, a Deny with one always applies.

Reasons never contain the token, the session token or the signature. The checks are pure functions of their
inputs (``parse_token``, ``check_*``, ``compute_signature``, ``evaluate_policies``, ``verify``); only
``moto_instances``, ``moto_credential`` and the request handlers read moto's backends.

A test that must see a token expire without waiting 15 minutes shortens the lifetime the stack accepts for the
tokens of one login role (its own, so that tests sharing the stack keep AWS's lifetime), and restores it after::

    POST /moto-api/layered/rds-iam-auth/max-token-age   {"user": "app", "seconds": 20}    (1..900)
    POST /moto-api/layered/rds-iam-auth/max-token-age   {"user": "app", "seconds": null}  (back to the default)
    GET  /moto-api/layered/rds-iam-auth/max-token-age   -> {"default": 900, "users": {"app": 20}}

A token of that role is then expired ``seconds`` after its ``X-Amz-Date`` (or at ``X-Amz-Expires``, if sooner).
"""

from __future__ import annotations

import datetime
import hmac
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSPreparedRequest, AWSRequest
from botocore.credentials import Credentials
from moto.iam.access_control import (
    CreateAccessKeyFailure,
    IAMPolicy,
    IAMPolicyStatement,
    PermissionResult,
    create_access_key,
)
from moto.iam.models import iam_backends
from moto.moto_api._internal import urls as moto_api_urls
from moto.rds.models import rds_backends
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

__all__ = [
    "ENDPOINT_PATH",
    "MAX_TOKEN_AGE_PATH",
    "AuthToken",
    "Credential",
    "Decision",
    "Denied",
    "Instance",
    "check_db_user",
    "check_lifetime",
    "check_signature",
    "compute_signature",
    "dbuser_arn",
    "evaluate_policies",
    "install",
    "match_instance",
    "moto_credential",
    "moto_instances",
    "parse_token",
    "verify",
]

ENDPOINT_PATH = "/moto-api/layered/rds-iam-auth"
MAX_TOKEN_AGE_PATH = ENDPOINT_PATH + "/max-token-age"
SERVICE = "rds-db"
ACTION = "rds-db:connect"
ALGORITHM = "AWS4-HMAC-SHA256"
MAX_EXPIRES = 900
CLOCK_SKEW = datetime.timedelta(minutes=5)
SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
MAX_TOKEN_LENGTH = 16384
# The parameters generate_db_auth_token signs, in its order; X-Amz-Security-Token only with temporary credentials.
REQUIRED_PARAMS = (
    "Action",
    "DBUser",
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Date",
    "X-Amz-Expires",
    "X-Amz-SignedHeaders",
    "X-Amz-Signature",
)
OPTIONAL_PARAMS = ("X-Amz-Security-Token",)
_SIGNATURE_RE = re.compile(r"[0-9a-f]{64}")
_DATE_RE = re.compile(r"[0-9]{8}")
# login role -> the most seconds after X-Amz-Date its tokens are accepted (set through MAX_TOKEN_AGE_PATH)
_max_token_age: dict[str, int] = {}


class Denied(Exception):
    """A refused token; ``reason`` says why without quoting the token."""

    def __init__(self, reason: str, *, principal: str = "", instance: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.principal = principal
        self.instance = instance


@dataclass(frozen=True)
class AuthToken:
    """The parts of a parsed token. ``params`` are the decoded signed query parameters (signature excluded)."""

    host: str
    port: int
    db_user: str
    access_key_id: str
    credential_date: str
    region: str
    service: str
    signed_at: datetime.datetime
    expires: int
    security_token: str | None = field(repr=False)
    signature: str = field(repr=False)
    params: tuple[tuple[str, str], ...] = field(repr=False)

    def __str__(self) -> str:  # never the signature or the session token
        return f"token for {self.db_user}@{self.host}:{self.port} by {self.access_key_id}"


@dataclass(frozen=True)
class Instance:
    """An RDS DB instance as far as IAM authentication cares."""

    arn: str
    account_id: str
    region: str
    identifier: str
    address: str
    port: int
    dbi_resource_id: str
    iam_auth_enabled: bool


@dataclass(frozen=True)
class Credential:
    """Access key material and the identity behind it, as moto issued them."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(repr=False)
    principal_arn: str
    account_id: str
    policies: tuple[Any, ...] = field(default=(), repr=False)
    session_policy: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    principal: str = ""
    instance: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "reason": self.reason, "principal": self.principal, "instance": self.instance}


# ------------------------------------------------------------------ parsing and pure checks


def parse_token(token: str) -> AuthToken:
    """Split a token into its parts; Denied("malformed token: ...") when it is not an rds-db presigned URL."""
    if not isinstance(token, str) or not token:
        raise Denied("malformed token: empty")
    if len(token) > MAX_TOKEN_LENGTH:
        raise Denied(f"malformed token: longer than {MAX_TOKEN_LENGTH} characters")
    if any(c.isspace() for c in token) or "://" in token:
        raise Denied("malformed token: not a presigned rds-db URL without scheme")
    parts = urlsplit("//" + token)
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        raise Denied("malformed token: the port is not a number") from None
    if not host or port is None or parts.username is not None:
        raise Denied("malformed token: it does not start with <host>:<port>")
    if parts.path != "/" or parts.fragment:
        raise Denied("malformed token: the path must be /")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise Denied("malformed token: the query string cannot be parsed") from None
    names = [name for name, _ in pairs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise Denied(f"malformed token: repeated parameters {', '.join(duplicates)}")
    values = dict(pairs)
    missing = [name for name in REQUIRED_PARAMS if not values.get(name)]
    if missing:
        raise Denied(f"malformed token: missing {', '.join(missing)}")
    unknown = sorted(set(values) - set(REQUIRED_PARAMS) - set(OPTIONAL_PARAMS))
    if unknown:
        raise Denied(f"malformed token: unexpected parameters {', '.join(unknown)}")
    if values["Action"] != "connect":
        raise Denied("malformed token: Action must be connect")
    if values["X-Amz-Algorithm"] != ALGORITHM:
        raise Denied(f"malformed token: X-Amz-Algorithm must be {ALGORITHM}")
    if values["X-Amz-SignedHeaders"] != "host":
        raise Denied("malformed token: X-Amz-SignedHeaders must be host")
    if not _SIGNATURE_RE.fullmatch(values["X-Amz-Signature"]):
        raise Denied("malformed token: X-Amz-Signature is not 64 lower-case hex digits")
    scope = values["X-Amz-Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request" or not all(scope[:4]) or not _DATE_RE.fullmatch(scope[1]):
        raise Denied("malformed token: X-Amz-Credential is not <key>/<yyyymmdd>/<region>/<service>/aws4_request")
    try:
        signed_at = datetime.datetime.strptime(values["X-Amz-Date"], SIGV4_TIMESTAMP).replace(
            tzinfo=datetime.timezone.utc
        )
    except ValueError:
        raise Denied("malformed token: X-Amz-Date is not yyyymmddThhmmssZ") from None
    if scope[1] != values["X-Amz-Date"][:8]:
        raise Denied("malformed token: the credential scope date is not the date of X-Amz-Date")
    try:
        expires = int(values["X-Amz-Expires"])
    except ValueError:
        raise Denied("malformed token: X-Amz-Expires is not a number") from None
    return AuthToken(
        host=host.lower(),
        port=port,
        db_user=values["DBUser"],
        access_key_id=scope[0],
        credential_date=scope[1],
        region=scope[2],
        service=scope[3],
        signed_at=signed_at,
        expires=expires,
        security_token=values.get("X-Amz-Security-Token"),
        signature=values["X-Amz-Signature"],
        params=tuple((name, value) for name, value in pairs if name != "X-Amz-Signature"),
    )


def check_db_user(token: AuthToken, user: str) -> None:
    if token.db_user != user:
        raise Denied(f"wrong user: the token is for DBUser {token.db_user!r}, the login role is {user!r}")


def check_lifetime(token: AuthToken, now: datetime.datetime, max_age: int | None = None) -> None:
    """X-Amz-Expires within 1..900 s, not expired, not dated more than CLOCK_SKEW ahead of ``now``.

    ``max_age`` (seconds), when given, ends a token's life that long after X-Amz-Date if that is sooner.
    """
    if not 1 <= token.expires <= MAX_EXPIRES:
        raise Denied(f"bad expiry: X-Amz-Expires must be between 1 and {MAX_EXPIRES} seconds, not {token.expires}")
    if now.tzinfo is None:
        now = now.replace(tzinfo=datetime.timezone.utc)
    if token.signed_at > now + CLOCK_SKEW:
        raise Denied(f"not yet valid: signed at {_utc(token.signed_at)}, more than 5 minutes after {_utc(now)}")
    lifetime = token.expires if max_age is None else min(token.expires, max_age)
    if now >= token.signed_at + datetime.timedelta(seconds=lifetime):
        shortened = ""
        if lifetime < token.expires:
            shortened = f" (the stack accepts {token.db_user}'s tokens for {lifetime} s)"
        raise Denied(
            f"expired: signed at {_utc(token.signed_at)}, valid for {token.expires} s{shortened}, now {_utc(now)}"
        )


def match_instance(token: AuthToken, instances: Iterable[Instance]) -> Instance:
    """The DB instance whose endpoint is the token's host and port, in the token's region when there are several."""
    same_host = [i for i in instances if i.address.lower() == token.host]
    if not same_host:
        raise Denied(f"wrong host: no DB instance has the endpoint address {token.host}")
    same_port = [i for i in same_host if i.port == token.port]
    if not same_port:
        ports = ", ".join(sorted({str(i.port) for i in same_host}))
        raise Denied(f"wrong port: {token.host} listens on {ports}, the token is for port {token.port}")
    in_region = [i for i in same_port if i.region == token.region]
    if not in_region:
        regions = ", ".join(sorted({i.region for i in same_port}))
        raise Denied(
            f"wrong region: the token is signed for {token.region}, {token.host} is in {regions}",
            instance=same_port[0].arn,
        )
    return in_region[0]


def compute_signature(token: AuthToken, secret_access_key: str, session_token: str | None) -> str:
    """The SigV4 signature botocore's presigner would have put on this token for these credentials."""
    credentials = Credentials(token.access_key_id, secret_access_key, session_token)
    auth = SigV4QueryAuth(credentials, token.service, token.region, expires=token.expires)
    request = AWSRequest(method="GET", url=f"https://{token.host}:{token.port}/", params=list(token.params))
    request.context["timestamp"] = token.signed_at.strftime(SIGV4_TIMESTAMP)
    canonical_request = auth.canonical_request(request)
    string_to_sign = auth.string_to_sign(request, canonical_request)
    return str(auth.signature(string_to_sign, request))


def check_signature(token: AuthToken, credential: Credential) -> None:
    if (token.security_token or None) != (credential.session_token or None):
        raise Denied(f"invalid session token for access key {token.access_key_id}", principal=credential.principal_arn)
    expected = compute_signature(token, credential.secret_access_key, credential.session_token)
    if not hmac.compare_digest(expected, token.signature):
        raise Denied(
            f"bad signature: it does not match the request signed with the secret of access key {token.access_key_id}",
            principal=credential.principal_arn,
        )


def dbuser_arn(instance: Instance, user: str) -> str:
    partition = get_partition(instance.region)
    return f"arn:{partition}:rds-db:{instance.region}:{instance.account_id}:dbuser:{instance.dbi_resource_id}/{user}"


def _glob(pattern: str, value: str, *, ignore_case: bool) -> bool:
    """IAM's wildcard match: ``*`` any run of characters, ``?`` exactly one, everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


class _Statement(IAMPolicyStatement):
    """moto's statement evaluation with IAM's wildcards, NotResource and conservative conditions."""

    def _check_element_matches(self, statement_element: Any, value: str) -> bool:
        patterns = self._statement[statement_element]
        if isinstance(patterns, str):
            patterns = [patterns]
        ignore_case = statement_element in ("Action", "NotAction")
        return any(isinstance(p, str) and _glob(p, value, ignore_case=ignore_case) for p in patterns)

    def is_action_permitted(
        self,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> PermissionResult:
        statement = dict(self._statement)
        if "Condition" in statement:
            if statement.get("Effect") != "Deny":
                return PermissionResult.NEUTRAL  # conditions are not evaluated: nothing is granted through one
            del statement["Condition"]  # ... and a conditional Deny applies as if it always held
        if "NotResource" in statement:
            if _Statement({"Resource": statement.pop("NotResource")})._check_element_matches("Resource", resource):
                return PermissionResult.NEUTRAL
            statement["Resource"] = "*"
        if not statement.get("Resource") or statement.get("Effect") not in ("Allow", "Deny"):
            return PermissionResult.NEUTRAL  # not a valid identity policy statement
        if "Action" not in statement and "NotAction" not in statement:
            return PermissionResult.NEUTRAL
        return IAMPolicyStatement.is_action_permitted(_Statement(statement), action, resource)


class _Policy(IAMPolicy):
    def is_action_permitted(
        self,
        action: str,
        resource: str = "*",
        principal: str | None = None,
        incoming_condition_values: dict[str, str] | None = None,
    ) -> PermissionResult:
        statements = self._policy_json.get("Statement", [])
        if isinstance(statements, dict):
            statements = [statements]
        permitted = False
        for statement in statements:
            if not isinstance(statement, dict):
                continue
            result = _Statement(statement).is_action_permitted(action, resource)
            if result == PermissionResult.DENIED:
                return result
            permitted = permitted or result == PermissionResult.PERMITTED
        return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def evaluate_policies(policies: Iterable[Any], action: str, resource: str) -> PermissionResult:
    """DENIED if a policy denies, PERMITTED if one allows and none denies, else NEUTRAL (implicit deny).

    A policy is what moto's ``IAMPolicy`` takes: a managed ``Policy``, a JSON document, or an inline policy dict.
    """
    permitted = False
    for policy in policies:
        try:
            result = _Policy(policy).is_action_permitted(action, resource)
        except (ValueError, KeyError, TypeError, StopIteration):
            continue  # a document moto could not parse grants nothing
        if result == PermissionResult.DENIED:
            return result
        permitted = permitted or result == PermissionResult.PERMITTED
    return PermissionResult.PERMITTED if permitted else PermissionResult.NEUTRAL


def check_policies(credential: Credential, resource: str) -> None:
    """The identity policies (and the session policy of an assumed role, if any) must allow, none may deny."""
    identity = evaluate_policies(credential.policies, ACTION, resource)
    session = evaluate_policies([credential.session_policy], ACTION, resource) if credential.session_policy else None
    if PermissionResult.DENIED in (identity, session):
        raise Denied(
            f"denied by policy: an explicit Deny of {ACTION} on {resource} for {credential.principal_arn}",
            principal=credential.principal_arn,
        )
    if identity != PermissionResult.PERMITTED:
        raise Denied(
            f"not allowed by policy: no policy of {credential.principal_arn} allows {ACTION} on {resource}",
            principal=credential.principal_arn,
        )
    if session is not None and session != PermissionResult.PERMITTED:
        raise Denied(
            f"not allowed by policy: the session policy of {credential.principal_arn} does not allow {ACTION} "
            f"on {resource}",
            principal=credential.principal_arn,
        )


def verify(
    token_text: str,
    user: str,
    *,
    now: datetime.datetime,
    instances: Callable[[], Sequence[Instance]],
    resolve_credential: Callable[[str, str | None, datetime.datetime], Credential],
    max_token_age: int | None = None,
) -> Decision:
    """Decide on one login; ``resolve_credential(access_key_id, session_token, now)`` raises Denied if unknown.

    ``max_token_age`` shortens the token's lifetime (see ``check_lifetime``).
    """
    principal = instance_arn = ""
    try:
        token = parse_token(token_text)
        check_db_user(token, user)
        instance = match_instance(token, instances())
        instance_arn = instance.arn
        if not instance.iam_auth_enabled:
            raise Denied(f"IAM database authentication is not enabled on DB instance {instance.identifier}")
        if token.service != SERVICE:
            raise Denied(f"wrong service: the credential scope is for {token.service!r}, not {SERVICE!r}")
        check_lifetime(token, now, max_token_age)
        credential = resolve_credential(token.access_key_id, token.security_token, now)
        principal = credential.principal_arn
        check_signature(token, credential)
        resource = dbuser_arn(instance, user)
        check_policies(credential, resource)
    except Denied as denied:
        return Decision(False, denied.reason, denied.principal or principal, denied.instance or instance_arn)
    return Decision(True, f"allowed: {principal} may {ACTION} on {resource}", principal, instance_arn)


# ------------------------------------------------------------------ moto's state


def moto_instances() -> list[Instance]:
    """Every DB instance of every account and region moto holds."""
    found = []
    for account_id, regions in list(dict.items(rds_backends)):
        for region, backend in list(dict.items(regions)):
            for database in list(backend.databases.values()):
                found.append(
                    Instance(
                        arn=database.db_instance_arn,
                        account_id=account_id,
                        region=region,
                        identifier=database.db_instance_identifier,
                        address=database.address,
                        port=int(database.port),
                        dbi_resource_id=database.dbi_resource_id,
                        iam_auth_enabled=bool(getattr(database, "enable_iam_database_authentication", False)),
                    )
                )
    return found


def _user_key_status(access_key_id: str) -> str | None:
    for _account, partitions in list(dict.items(iam_backends)):
        for _partition, backend in list(dict.items(partitions)):
            for user in list(backend.users.values()):
                for key in user.access_keys:
                    if key.access_key_id == access_key_id:
                        return str(key.status)
    return None


def _assumed_role(access_key_id: str) -> Any:
    for _account, partitions in list(dict.items(sts_backends)):
        for _partition, backend in list(dict.items(partitions)):
            for role in list(backend.assumed_roles):
                if role.access_key_id == access_key_id:
                    return role
    return None


def moto_credential(access_key_id: str, session_token: str | None, now: datetime.datetime) -> Credential:
    """Find the secret of an access key the way moto's request authentication does (IAM users, then STS)."""
    headers = {"X-Amz-Security-Token": session_token} if session_token else {}
    accounts = {account for account, _ in list(dict.items(iam_backends))}
    accounts |= {account for account, _ in list(dict.items(sts_backends))}
    bad_token = False
    for account_id in sorted(accounts):
        partitions = {p for p, _ in list(dict.items(iam_backends[account_id]))} | {"aws"}
        for partition in sorted(partitions):
            try:
                key = create_access_key(
                    account_id=account_id, partition=partition, access_key_id=access_key_id, headers=headers
                )
            except CreateAccessKeyFailure as failure:
                bad_token = bad_token or failure.reason == "InvalidToken"
                continue
            except (KeyError, AttributeError):
                continue
            secret = key._secret_access_key
            principal = key.arn
            session_policy = None
            assumed = _assumed_role(access_key_id) if session_token else None
            if assumed is not None:
                expiration = assumed.expiration
                if expiration.tzinfo is None:
                    expiration = expiration.replace(tzinfo=datetime.timezone.utc)
                if now >= expiration:
                    raise Denied(
                        f"expired credentials: the session of access key {access_key_id} has ended", principal=principal
                    )
                session_policy = assumed.policy or None
            elif _user_key_status(access_key_id) not in (None, "Active"):
                raise Denied(f"inactive access key {access_key_id}", principal=principal)
            try:
                policies = tuple(key.collect_policies())
            except Exception as error:  # the user or role behind the key is gone
                raise Denied(
                    f"unknown identity: {principal} cannot be found ({type(error).__name__})", principal=principal
                ) from None
            return Credential(
                access_key_id=access_key_id,
                secret_access_key=secret,
                session_token=session_token,
                principal_arn=principal,
                account_id=account_id,
                policies=policies,
                session_policy=session_policy,
            )
    if bad_token:
        raise Denied(f"invalid session token for access key {access_key_id}")
    raise Denied(f"unknown access key {access_key_id}")


def _body(request: Any, headers: Any) -> Mapping[str, Any]:
    if isinstance(request, AWSPreparedRequest):  # mock_aws in-process
        raw = request.body or b""
    else:  # the server's werkzeug request
        length = int(headers.get("Content-Length") or 0)
        raw = request.environ["wsgi.input"].read(length) if length else b""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8")
    data = json.loads(raw or "{}")
    if not isinstance(data, dict):
        raise ValueError("not an object")
    return data


def handle(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    """The moto-api view: decide on {"token", "user", "client"}; never logs or echoes the token."""
    response_headers = {"Content-Type": "application/json"}
    if request.method != "POST":
        return 405, response_headers, json.dumps({"allowed": False, "reason": "use POST"}).encode()
    try:
        data = _body(request, headers)
    except (ValueError, UnicodeDecodeError):
        decision = Decision(False, "bad request: the body must be a JSON object")
        return 400, response_headers, json.dumps(decision.as_dict()).encode()
    token, user = data.get("token"), data.get("user")
    if not isinstance(token, str) or not isinstance(user, str) or not user:
        decision = Decision(False, "bad request: token and user must be strings")
        return 400, response_headers, json.dumps(decision.as_dict()).encode()
    decision = verify(
        token,
        user,
        now=datetime.datetime.now(datetime.timezone.utc),
        instances=moto_instances,
        resolve_credential=moto_credential,
        max_token_age=_max_token_age.get(user),
    )
    return 200, response_headers, json.dumps(decision.as_dict()).encode()


def handle_max_token_age(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], bytes]:
    """The moto-api view of the per-role maximum token age: GET lists it, POST sets or (``null``) clears one."""
    response_headers = {"Content-Type": "application/json"}

    def answer(status: int, body: Mapping[str, Any]) -> tuple[int, dict[str, str], bytes]:
        return status, response_headers, json.dumps(body).encode()

    if request.method == "GET":
        return answer(200, {"default": MAX_EXPIRES, "users": dict(_max_token_age)})
    if request.method != "POST":
        return answer(405, {"error": "use GET or POST"})
    try:
        data = _body(request, headers)
    except (ValueError, UnicodeDecodeError):
        return answer(400, {"error": "the body must be a JSON object"})
    user, seconds = data.get("user"), data.get("seconds")
    if not isinstance(user, str) or not user:
        return answer(400, {"error": "user must be a login role name"})
    whole = isinstance(seconds, int) and not isinstance(seconds, bool)
    if seconds is not None and not (whole and 1 <= seconds <= MAX_EXPIRES):
        return answer(400, {"error": f"seconds must be a whole number from 1 to {MAX_EXPIRES}, or null"})
    previous = _max_token_age.pop(user, None) if seconds is None else _max_token_age.get(user)
    if seconds is not None:
        _max_token_age[user] = seconds
    return answer(200, {"user": user, "seconds": seconds, "previous": previous})


def _utc(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def install() -> None:
    """Route ENDPOINT_PATH and MAX_TOKEN_AGE_PATH on moto's own API (the server's /moto-api/ app and mock_aws's
    motoapi host)."""
    moto_api_urls.url_paths.setdefault("{0}" + ENDPOINT_PATH, handle)
    moto_api_urls.url_paths.setdefault("{0}" + MAX_TOKEN_AGE_PATH, handle_max_token_age)
