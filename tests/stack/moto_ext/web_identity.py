"""AssumeRoleWithWebIdentity that checks the token and the role's trust policy as STS does.

Stock moto hands out credentials for any token and any role.  Here STS accepts a token only when:

1. it is a JWT signed with RS256/384/512 or ES256/384/512 whose ``iss`` is the URL of an IAM OIDC provider in the
   role's account (``InvalidIdentityToken``: "No OpenIDConnect provider found in your account for <iss>");
2. its signature verifies with a key of the issuer's JWKS (``<iss>/.well-known/openid-configuration`` names the
   ``jwks_uri``), chosen by ``kid`` (or the only usable key).  Issuers served over HTTPS are fetched with TLS
   verified against ``LAYERED_OIDC_CA_FILE`` (a PEM bundle; the system store when unset), short timeouts, and the
   documents cached for 30 seconds, fetched again for a ``kid`` the cached set lacks.  Issuers hosted in S3
   (``https://<bucket>.s3.<region>.amazonaws.com[/path]`` or ``https://s3.<region>.amazonaws.com/<bucket>[/path]``,
   as for the self-hosted OIDC of EKS Anywhere) are read from moto's S3, and only objects an anonymous reader could
   get (public-read ACL or a bucket policy granting ``s3:GetObject`` to ``*``, unless blocked by the bucket's
   public access block or ``BucketOwnerEnforced``);
3. its ``aud`` names one of the provider's client ids, ``exp`` has not passed (``ExpiredTokenException``) and
   ``nbf``/``iat`` are not more than five minutes ahead;
4. the role exists and its trust policy allows ``sts:AssumeRoleWithWebIdentity`` for the provider (``Principal``
   ``Federated``) with every ``Condition`` met, no ``Deny`` matching (``AccessDenied``, HTTP 403: "Not authorized to
   perform sts:AssumeRoleWithWebIdentity").

Condition keys are ``<provider url>:sub``, ``:aud``, ``:amr`` and ``:azp`` (from the claims of those names) and
``sts:RoleSessionName``.  Operators: ``StringEquals``, ``StringNotEquals``, ``StringEqualsIgnoreCase``,
``StringNotEqualsIgnoreCase``, ``StringLike``, ``StringNotLike`` (also with ``IfExists`` and the ``ForAnyValue:``
and ``ForAllValues:`` prefixes) and ``Null``; a statement with any other operator never allows and always denies.

The checks are plain functions (``authorize`` and what it calls); ``install()`` wires them into moto's STS
response, which then creates the credentials as before, so moto's IAM access control still maps them to the role.
The response also carries ``SubjectFromWebIdentityToken`` (``sub``), ``Provider`` (the provider ARN) and
``Audience`` (the client id the token was issued for).  Why a token was refused is logged at INFO.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import os
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from moto.core.exceptions import AccessDeniedError
from moto.core.responses import ActionResult
from moto.iam.exceptions import NotFoundException
from moto.iam.models import IAMBackend, iam_backends
from moto.s3.exceptions import S3ClientError
from moto.s3.models import FakeKey, s3_backends
from moto.sts.exceptions import STSClientError, STSValidationError
from moto.sts.responses import TokenResponse
from moto.utilities.utils import ARN_PARTITION_REGEX

LOG = logging.getLogger(__name__)

ACTION = "sts:AssumeRoleWithWebIdentity"
CA_FILE_ENV = "LAYERED_OIDC_CA_FILE"

# Error codes (botocore's STS model: InvalidIdentityToken, ExpiredTokenException, IDPCommunicationError are
# HTTP 400; AccessDenied is STS's common 403 error).
INVALID_TOKEN = "InvalidIdentityToken"
EXPIRED_TOKEN = "ExpiredTokenException"
IDP_COMMUNICATION = "IDPCommunicationError"
ACCESS_DENIED = "AccessDenied"

# Messages as STS returns them (NO_KEY has STS's double space), except NOT_VALIDATED, the STS API reference's
# description of InvalidIdentityToken, and NOT_YET_VALID, worded here after TOKEN_EXPIRED.
NOT_A_JWT = "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)"
NO_PROVIDER = "No OpenIDConnect provider found in your account for {issuer}"
NO_KEY = (
    "Couldn't retrieve verification key from your identity provider,  "
    "please reference AssumeRoleWithWebIdentity documentation for requirements"
)
NOT_VALIDATED = (
    "The web identity token that was passed could not be validated by AWS. "
    "Get a new identity token from the identity provider and then retry the request."
)
MISSING_CLAIM = "Missing a required claim: {claim}"
INCORRECT_AUDIENCE = "Incorrect token audience"
TOKEN_EXPIRED = "Token expired: current date/time {now} must be before the expiration date/time {exp}"
NOT_YET_VALID = "Token not yet valid: current date/time {now} must not be before the {claim} date/time {value}"
NOT_AUTHORIZED = f"Not authorized to perform {ACTION}"
DURATION_TOO_LONG = "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."

CLOCK_SKEW = 300  # seconds a token's nbf/iat may be ahead of this clock
CACHE_SECONDS = 30.0
FETCH_TIMEOUT = 3.0
MAX_DOCUMENT_BYTES = 1 << 20
DISCOVERY_PATH = "/.well-known/openid-configuration"

# alg -> (kty, hash, EC curve)
ALGORITHMS: dict[str, tuple[str, type[hashes.HashAlgorithm], str | None]] = {
    "RS256": ("RSA", hashes.SHA256, None),
    "RS384": ("RSA", hashes.SHA384, None),
    "RS512": ("RSA", hashes.SHA512, None),
    "ES256": ("EC", hashes.SHA256, "P-256"),
    "ES384": ("EC", hashes.SHA384, "P-384"),
    "ES512": ("EC", hashes.SHA512, "P-521"),
}
CURVES: dict[str, type[ec.EllipticCurve]] = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}

# Claims that become trust policy condition keys (<provider url>:<claim>).
CONDITION_CLAIMS = ("sub", "aud", "amr", "azp")


class WebIdentityError(Exception):
    """STS refuses the request: ``code`` is the STS error code, ``message`` what STS says, ``reason`` the detail."""

    def __init__(self, code: str, message: str, reason: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.reason = reason or message


class FetchError(Exception):
    """A discovery document or key set could not be read; ``unreachable`` when the issuer did not answer."""

    def __init__(self, reason: str, unreachable: bool = False) -> None:
        super().__init__(reason)
        self.unreachable = unreachable


# ---------------------------------------------------------------------------------------------------- JWT


@dataclass(frozen=True)
class Jwt:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _b64url(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_jwt(token: Any) -> Jwt:
    """Split a compact JWS (no signature check); ``InvalidIdentityToken`` for anything else."""
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:
        raise WebIdentityError(INVALID_TOKEN, NOT_A_JWT, "the token is not three dot-separated parts")
    try:
        header = json.loads(_b64url(parts[0]))
        claims = json.loads(_b64url(parts[1]))
        signature = _b64url(parts[2])
    except (ValueError, binascii.Error) as e:
        raise WebIdentityError(INVALID_TOKEN, NOT_A_JWT, f"the token does not decode: {e}") from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise WebIdentityError(INVALID_TOKEN, NOT_A_JWT, "the token's header or claims are not JSON objects")
    return Jwt(header, claims, f"{parts[0]}.{parts[1]}".encode("ascii"), signature)


def issuer_host_path(url: Any) -> str | None:
    """``https://Host:port/path/`` -> ``host:port/path``, IAM's form of a provider URL; None unless https."""
    if not isinstance(url, str) or not url.lower().startswith("https://"):
        return None
    parsed = urllib.parse.urlsplit(url)
    if not parsed.netloc or parsed.query or parsed.fragment or "@" in parsed.netloc:
        return None
    return parsed.netloc.lower() + parsed.path.rstrip("/")


def _numeric_date(claims: Mapping[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise WebIdentityError(INVALID_TOKEN, NOT_A_JWT, f"the {name} claim is not a number")
    return float(value)


def audiences(claims: Mapping[str, Any]) -> list[str]:
    aud = claims.get("aud")
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []


def check_claims(claims: Mapping[str, Any], client_ids: Iterable[str], now: float) -> str:
    """Check ``sub``, ``aud`` and the validity window; return the client id the token was issued for."""
    if not isinstance(claims.get("sub"), str):
        raise WebIdentityError(INVALID_TOKEN, MISSING_CLAIM.format(claim="sub"))
    token_audiences = audiences(claims)
    if not token_audiences:
        raise WebIdentityError(INVALID_TOKEN, MISSING_CLAIM.format(claim="aud"))
    known = set(client_ids)
    matched = next((a for a in token_audiences if a in known), None)
    if matched is None:
        raise WebIdentityError(
            INVALID_TOKEN, INCORRECT_AUDIENCE, f"aud {token_audiences} is none of the client ids {sorted(known)}"
        )
    exp = _numeric_date(claims, "exp")
    if exp is None:
        raise WebIdentityError(INVALID_TOKEN, MISSING_CLAIM.format(claim="exp"))
    if now >= exp:
        raise WebIdentityError(EXPIRED_TOKEN, TOKEN_EXPIRED.format(now=int(now), exp=int(exp)))
    for name in ("nbf", "iat"):
        value = _numeric_date(claims, name)
        if value is not None and value > now + CLOCK_SKEW:
            raise WebIdentityError(INVALID_TOKEN, NOT_YET_VALID.format(now=int(now), claim=name, value=int(value)))
    return matched


def select_keys(jwks: Any, header: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The keys of ``jwks`` that may have signed a token with ``header``: the one with its ``kid``, else all usable.

    An empty list means the key is not there (a ``kid`` the set lacks, or no key of the algorithm's type).
    """
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise WebIdentityError(INVALID_TOKEN, NOT_VALIDATED, f"unsupported signing algorithm {alg!r}")
    kty = ALGORITHMS[alg][0]
    keys = jwks.get("keys") if isinstance(jwks, dict) else None
    usable = [
        k
        for k in (keys if isinstance(keys, list) else [])
        if isinstance(k, dict) and k.get("kty") == kty and k.get("use", "sig") == "sig" and k.get("alg", alg) == alg
    ]
    kid = header.get("kid")
    if kid is not None:
        return [k for k in usable if k.get("kid") == kid]
    return usable


def _int(value: Any) -> int:
    return int.from_bytes(_b64url(value), "big")


def verify_signature(token: Jwt, jwk: Mapping[str, Any]) -> bool:
    """True when ``jwk`` (a public RSA or EC key of the token's algorithm) verifies the token's signature."""
    alg = token.header.get("alg")
    if alg not in ALGORITHMS:
        return False
    kty, hash_type, curve_name = ALGORITHMS[alg]
    try:
        if kty == "RSA":
            rsa_key = rsa.RSAPublicNumbers(_int(jwk["e"]), _int(jwk["n"])).public_key()
            rsa_key.verify(token.signature, token.signing_input, padding.PKCS1v15(), hash_type())
            return True
        if jwk.get("crv") != curve_name:
            return False
        curve = CURVES[curve_name]()  # type: ignore[index]
        ec_key = ec.EllipticCurvePublicNumbers(_int(jwk["x"]), _int(jwk["y"]), curve).public_key()
        size = (curve.key_size + 7) // 8
        if len(token.signature) != 2 * size:
            return False
        r = int.from_bytes(token.signature[:size], "big")
        s = int.from_bytes(token.signature[size:], "big")
        ec_key.verify(encode_dss_signature(r, s), token.signing_input, ec.ECDSA(hash_type()))
        return True
    except (InvalidSignature, KeyError, TypeError, ValueError, binascii.Error):
        return False


# ---------------------------------------------------------------------------------------------------- trust policy


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _policy_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def wildcard_match(pattern: str, value: str, ignore_case: bool = False) -> bool:
    """IAM's ``*`` (any run of characters) and ``?`` (one character); nothing else is special."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL | (re.IGNORECASE if ignore_case else 0)) is not None


def _equals(policy_value: str, value: str) -> bool:
    return policy_value == value


def _equals_ignore_case(policy_value: str, value: str) -> bool:
    return policy_value.casefold() == value.casefold()


def _like(policy_value: str, value: str) -> bool:
    return wildcard_match(policy_value, value)


# operator -> (negated, how one policy value matches one request value)
STRING_OPERATORS: dict[str, tuple[bool, Callable[[str, str], bool]]] = {
    "stringequals": (False, _equals),
    "stringnotequals": (True, _equals),
    "stringequalsignorecase": (False, _equals_ignore_case),
    "stringnotequalsignorecase": (True, _equals_ignore_case),
    "stringlike": (False, _like),
    "stringnotlike": (True, _like),
}
SET_PREFIXES = ("foranyvalue:", "forallvalues:")


def _key_condition(
    operator: str, set_prefix: str, if_exists: bool, values: list[str], policy_values: list[str]
) -> bool:
    negated, match = STRING_OPERATORS[operator]

    def value_ok(value: str) -> bool:
        hit = any(match(p, value) for p in policy_values)
        return not hit if negated else hit

    if not values:
        if if_exists or set_prefix == "forallvalues:":
            return True
        if set_prefix == "foranyvalue:":
            return False
        return negated  # StringNotEquals on a key the request lacks is met; StringEquals is not
    if set_prefix == "forallvalues:":
        return all(value_ok(v) for v in values)
    if set_prefix == "foranyvalue:":
        return any(value_ok(v) for v in values)
    return all(value_ok(v) for v in values) if negated else any(value_ok(v) for v in values)


def evaluate_conditions(block: Any, context: Mapping[str, list[str]]) -> bool | None:
    """Evaluate a statement's ``Condition`` block against ``context`` (lower-case key -> values).

    True when every condition is met, False when one is not, None when one uses an operator not modelled here.
    """
    if block is None:
        return True
    if not isinstance(block, dict):
        return None
    unknown = False
    for raw_operator, pairs in block.items():
        if not isinstance(pairs, dict) or not isinstance(raw_operator, str):
            return None
        operator = raw_operator.lower()
        set_prefix = next((p for p in SET_PREFIXES if operator.startswith(p)), "")
        operator = operator[len(set_prefix) :]
        if_exists = operator.endswith("ifexists")
        if if_exists:
            operator = operator[: -len("ifexists")]
        for raw_key, raw_values in pairs.items():
            values = context.get(str(raw_key).lower(), [])
            policy_values = [_policy_text(v) for v in _as_list(raw_values)]
            if operator == "null" and not set_prefix and not if_exists:
                wants_absent = any(p.lower() == "true" for p in policy_values)
                met = (not values) == wants_absent
            elif operator in STRING_OPERATORS:
                met = _key_condition(operator, set_prefix, if_exists, values, policy_values)
            else:
                unknown = True
                continue
            if not met:
                return False
    return None if unknown else True


def _principal_matches(principal: Any, provider_arn: str, any_wildcard: bool) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    if provider_arn in _as_list(principal.get("Federated")):
        return True
    return any_wildcard and any("*" in _as_list(v) for v in principal.values())


def _statement_applies(statement: Mapping[str, Any], provider_arn: str, is_deny: bool) -> bool:
    if "Principal" in statement:
        if not _principal_matches(statement["Principal"], provider_arn, any_wildcard=is_deny):
            return False
    elif "NotPrincipal" in statement:
        if not is_deny or _principal_matches(statement["NotPrincipal"], provider_arn, any_wildcard=False):
            return False
    else:
        return False
    if "Action" in statement:
        return any(wildcard_match(str(a), ACTION, ignore_case=True) for a in _as_list(statement["Action"]))
    if "NotAction" in statement:
        return not any(wildcard_match(str(a), ACTION, ignore_case=True) for a in _as_list(statement["NotAction"]))
    return False


def parse_policy(document: Any) -> dict[str, Any] | None:
    """A policy document as IAM may keep it: a dict, JSON text, or URL-encoded JSON text."""
    if isinstance(document, dict):
        return document
    if isinstance(document, bytes):
        document = document.decode("utf-8", "replace")
    if not isinstance(document, str):
        return None
    for text in (document, urllib.parse.unquote(document)):
        try:
            parsed = json.loads(text)
        except ValueError:
            continue
        return parsed if isinstance(parsed, dict) else None
    return None


def evaluate_trust_policy(document: Any, provider_arn: str, context: Mapping[str, list[str]]) -> bool:
    """True when the trust policy allows ``sts:AssumeRoleWithWebIdentity`` for the provider and nothing denies it."""
    policy = parse_policy(document)
    if policy is None:
        return False
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        if not isinstance(statement, dict):
            continue
        effect = statement.get("Effect")
        if effect not in ("Allow", "Deny") or not _statement_applies(statement, provider_arn, effect == "Deny"):
            continue
        met = evaluate_conditions(statement.get("Condition"), context)
        if effect == "Deny" and met is not False:
            return False  # an explicit Deny wins; one with an unknown operator is taken to apply
        if effect == "Allow" and met is True:
            allowed = True
    return allowed


def condition_context(host_path: str, claims: Mapping[str, Any], session_name: str | None) -> dict[str, list[str]]:
    """The condition keys of the request, lower case (IAM compares key names case-insensitively)."""
    context: dict[str, list[str]] = {}
    for claim in CONDITION_CLAIMS:
        raw = claims.get(claim)
        values = [_policy_text(v) for v in _as_list(raw) if isinstance(v, (str, int, float))]
        if values:
            context[f"{host_path}:{claim}".lower()] = values
    if session_name:
        context["sts:rolesessionname"] = [session_name]
    return context


# ---------------------------------------------------------------------------------------------------- key sources


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str
    region: str | None


_REGION = r"[a-z]{2}(?:-[a-z]+)+-\d+"
_VIRTUAL_HOST = re.compile(rf"^(?P<bucket>[a-z0-9][a-z0-9.-]*?)\.s3(?:[.-](?P<region>{_REGION}))?\.amazonaws\.com$")
_PATH_HOST = re.compile(rf"^s3(?:[.-](?P<region>{_REGION}))?\.amazonaws\.com$")


def s3_location(url: str) -> S3Location | None:
    """The bucket, key and region of an https S3 URL (virtual-hosted or path style), None for any other URL."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme != "https" or parsed.port is not None or not parsed.hostname:
        return None
    path = urllib.parse.unquote(parsed.path).lstrip("/")
    virtual = _VIRTUAL_HOST.match(parsed.hostname)
    if virtual:
        return S3Location(virtual["bucket"], path, virtual["region"])
    path_style = _PATH_HOST.match(parsed.hostname)
    if path_style and "/" in path:
        bucket, key = path.split("/", 1)
        return S3Location(bucket, key, path_style["region"])
    return None


def _anonymous(principal: Any) -> bool:
    if principal == "*":
        return True
    return isinstance(principal, dict) and "*" in _as_list(principal.get("AWS"))


def s3_object_is_public(
    *,
    resource_arn: str,
    acl_public_read: bool,
    acls_disabled: bool,
    policy: Any,
    ignore_public_acls: bool,
    restrict_public_buckets: bool,
) -> bool:
    """Could an anonymous client GetObject ``resource_arn`` (``arn:<partition>:s3:::<bucket>/<key>``)?

    Public-read object ACLs count unless ACLs are disabled (``BucketOwnerEnforced``) or ignored (public access
    block); a bucket policy counts when it allows ``s3:GetObject`` to ``*`` without conditions (conditional
    statements are not evaluated: an Allow with a condition grants nothing, a Deny with one is taken not to apply)
    and public policies are not restricted.
    """
    parsed = parse_policy(policy) if policy else None
    allowed_by_policy = False
    for statement in _as_list(parsed.get("Statement")) if parsed else []:
        if not isinstance(statement, dict) or not _anonymous(statement.get("Principal")):
            continue
        if not any(wildcard_match(str(a), "s3:GetObject", ignore_case=True) for a in _as_list(statement.get("Action"))):
            continue
        if not any(wildcard_match(str(r), resource_arn) for r in _as_list(statement.get("Resource"))):
            continue
        if statement.get("Condition"):
            continue
        if statement.get("Effect") == "Deny":
            return False
        if statement.get("Effect") == "Allow":
            allowed_by_policy = True
    if acl_public_read and not acls_disabled and not ignore_public_acls:
        return True
    return allowed_by_policy and not restrict_public_buckets


class DocumentCache:
    """Documents fetched over HTTPS, by URL and CA bundle, each kept for ``ttl`` seconds."""

    def __init__(self, ttl: float = CACHE_SECONDS) -> None:
        self.ttl = ttl
        self._documents: dict[tuple[str, str | None], tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str | None]) -> Any | None:
        with self._lock:
            entry = self._documents.get(key)
        return entry[1] if entry is not None and entry[0] > time.monotonic() else None

    def put(self, key: tuple[str, str | None], document: Any) -> None:
        with self._lock:
            self._documents[key] = (time.monotonic() + self.ttl, document)

    def clear(self) -> None:
        with self._lock:
            self._documents.clear()


class KeySource:
    """Reads an issuer's discovery document and JWKS.

    S3 URLs go to ``read_s3`` (not cached: moto's S3 is in process); every other URL must be https and is fetched
    with TLS verified against ``$LAYERED_OIDC_CA_FILE`` (or the system store) and kept in ``cache``.
    """

    def __init__(
        self,
        read_s3: Callable[[S3Location], bytes] | None = None,
        cache: DocumentCache | None = None,
        timeout: float = FETCH_TIMEOUT,
    ) -> None:
        self.read_s3 = read_s3
        self.cache = cache if cache is not None else DocumentCache()
        self.timeout = timeout

    def jwks(self, issuer: str, refresh: bool = False) -> dict[str, Any]:
        discovery = self.read_json(issuer.rstrip("/") + DISCOVERY_PATH, refresh)
        jwks_uri = discovery.get("jwks_uri") if isinstance(discovery, dict) else None
        if not isinstance(jwks_uri, str) or not jwks_uri.startswith("https://"):
            raise FetchError(f"the discovery document of {issuer} has no https jwks_uri")
        jwks = self.read_json(jwks_uri, refresh)
        if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
            raise FetchError(f"{jwks_uri} is not a JSON Web Key Set")
        return jwks

    def read_json(self, url: str, refresh: bool = False) -> Any:
        location = s3_location(url)
        if location is not None:
            if self.read_s3 is None:
                raise FetchError(f"{url}: S3 is not available")
            return _json(url, self.read_s3(location))
        if not url.startswith("https://"):
            raise FetchError(f"{url} is not an https URL")
        ca_file = os.environ.get(CA_FILE_ENV) or None
        cached = None if refresh else self.cache.get((url, ca_file))
        if cached is not None:
            return cached
        document = _json(url, _https_get(url, ca_file, self.timeout))
        self.cache.put((url, ca_file), document)
        return document


def _json(url: str, body: bytes) -> Any:
    if len(body) > MAX_DOCUMENT_BYTES:
        raise FetchError(f"{url} is larger than {MAX_DOCUMENT_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError:
        raise FetchError(f"{url} is not JSON") from None


class _HttpsRedirectsOnly(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        if not newurl.startswith("https://"):
            return None
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _https_get(url: str, ca_file: str | None, timeout: float) -> bytes:
    try:
        context = ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as e:
        raise FetchError(f"{CA_FILE_ENV}={ca_file}: {e}") from None
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context), _HttpsRedirectsOnly()
    )
    request = urllib.request.Request(
        url, headers={"Accept": "application/json, application/jwk-set+json;q=0.9, */*;q=0.8"}
    )  # the caller checked https
    try:
        with opener.open(request, timeout=timeout) as response:
            return bytes(response.read(MAX_DOCUMENT_BYTES + 1))
    except urllib.error.HTTPError as e:
        raise FetchError(f"{url}: HTTP {e.code}", unreachable=e.code >= 500) from None
    except urllib.error.URLError as e:
        reason = e.reason
        raise FetchError(f"{url}: {reason}", unreachable=not isinstance(reason, ssl.SSLError)) from None
    except ssl.SSLError as e:
        raise FetchError(f"{url}: {e}") from None
    except OSError as e:  # timeouts and resets while reading
        raise FetchError(f"{url}: {e}", unreachable=True) from None


# ---------------------------------------------------------------------------------------------------- the decision


@dataclass(frozen=True)
class Provider:
    arn: str
    url: str  # as IAM keeps it: host[:port][/path], no scheme
    client_ids: tuple[str, ...]


@dataclass(frozen=True)
class Grant:
    subject: str
    provider_arn: str
    audience: str
    issuer: str


def _keys(source: KeySource, issuer: str, header: Mapping[str, Any]) -> list[dict[str, Any]]:
    try:
        keys = select_keys(source.jwks(issuer), header)
        if not keys and header.get("kid") is not None:  # a key added since the cached set was read
            keys = select_keys(source.jwks(issuer, refresh=True), header)
    except FetchError as e:
        raise WebIdentityError(IDP_COMMUNICATION if e.unreachable else INVALID_TOKEN, NO_KEY, str(e)) from None
    if not keys:
        raise WebIdentityError(INVALID_TOKEN, NO_KEY, f"no key with kid {header.get('kid')!r} in the JWKS of {issuer}")
    return keys


def authorize(
    token: Any,
    *,
    providers: Iterable[Provider],
    trust_policy: Any,
    session_name: str | None,
    source: KeySource,
    now: float | None = None,
) -> Grant:
    """Decide AssumeRoleWithWebIdentity for ``token``: return what STS reports, or raise ``WebIdentityError``.

    ``providers`` are the IAM OIDC providers of the role's account; ``trust_policy`` is the role's
    AssumeRolePolicyDocument (None when the role does not exist).
    """
    jwt = parse_jwt(token)
    issuer = jwt.claims.get("iss")
    if not isinstance(issuer, str) or not issuer:
        raise WebIdentityError(INVALID_TOKEN, MISSING_CLAIM.format(claim="iss"))
    host_path = issuer_host_path(issuer)
    provider = next((p for p in providers if host_path and issuer_host_path(f"https://{p.url}") == host_path), None)
    if provider is None:
        raise WebIdentityError(INVALID_TOKEN, NO_PROVIDER.format(issuer=issuer))

    if jwt.header.get("alg") not in ALGORITHMS:
        raise WebIdentityError(INVALID_TOKEN, NOT_VALIDATED, f"unsupported signing algorithm {jwt.header.get('alg')!r}")
    keys = _keys(source, issuer, jwt.header)
    if not any(verify_signature(jwt, key) for key in keys):
        raise WebIdentityError(INVALID_TOKEN, NOT_VALIDATED, "the signature does not verify with the issuer's keys")
    audience = check_claims(jwt.claims, provider.client_ids, time.time() if now is None else now)

    context = condition_context(provider.url, jwt.claims, session_name)
    if trust_policy is None:
        raise WebIdentityError(ACCESS_DENIED, NOT_AUTHORIZED, "the role does not exist")
    if not evaluate_trust_policy(trust_policy, provider.arn, context):
        raise WebIdentityError(ACCESS_DENIED, NOT_AUTHORIZED, f"the trust policy does not allow {context}")
    return Grant(subject=jwt.claims["sub"], provider_arn=provider.arn, audience=audience, issuer=issuer)


# ---------------------------------------------------------------------------------------------------- moto


class StsAccessDenied(AccessDeniedError):
    """STS's AccessDenied, HTTP 403 (the STS service model has no shape for it, so not a ServiceException)."""

    def __init__(self, message: str) -> None:
        # skip AccessDeniedError's "User: ... is not authorized to perform: ..." wording
        super(AccessDeniedError, self).__init__("AccessDenied", message)


def _moto_error(error: WebIdentityError) -> Exception:
    if error.code == ACCESS_DENIED:
        return StsAccessDenied(error.message)
    # a moto.sts exception, so moto serializes it with the STS model's shape (code and HTTP status)
    return STSClientError(error.code, error.message)


def _read_s3(location: S3Location, account_id: str, partition: str) -> bytes:
    backend = s3_backends[account_id][partition]
    try:
        bucket = backend.get_bucket(location.bucket)
    except S3ClientError:
        raise FetchError(f"s3://{location.bucket}: no such bucket") from None
    if location.region and bucket.region_name != location.region:
        raise FetchError(f"s3://{location.bucket} is in {bucket.region_name}, not {location.region}")
    obj = bucket.keys.get(location.key)
    if not isinstance(obj, FakeKey):
        raise FetchError(f"s3://{location.bucket}/{location.key}: no such key")
    block = bucket.public_access_block
    ownership = bucket.ownership_rule  # moto keeps the ObjectOwnership value
    public = s3_object_is_public(
        resource_arn=f"arn:{bucket.partition}:s3:::{location.bucket}/{location.key}",
        acl_public_read=bool(obj.acl is not None and obj.acl.public_read),
        acls_disabled="BucketOwnerEnforced" in str(ownership or ""),
        policy=bucket.policy,
        ignore_public_acls=bool(block and block.ignore_public_acls),
        restrict_public_buckets=bool(block and block.restrict_public_buckets),
    )
    if not public:
        raise FetchError(f"s3://{location.bucket}/{location.key} is not publicly readable")
    return bytes(obj.value)


HTTPS_DOCUMENTS = DocumentCache()


def clear_cache() -> None:
    """Forget the discovery documents and key sets fetched over HTTPS."""
    HTTPS_DOCUMENTS.clear()


def _role_account(role_arn: Any, default: str) -> str:
    match = re.match(ARN_PARTITION_REGEX + r":iam::([0-9]{12}):role/", role_arn) if isinstance(role_arn, str) else None
    return match.group(2) if match else default


def _providers(iam: IAMBackend) -> list[Provider]:
    return [Provider(p.arn, p.url, tuple(p.client_id_list)) for p in iam.open_id_providers.values()]


def _assume_role_with_web_identity(self: TokenResponse) -> ActionResult:
    role_arn = self._get_param("RoleArn")
    session_name = self._get_param("RoleSessionName")
    duration = self._get_int_param("DurationSeconds", 3600)
    account_id = _role_account(role_arn, self.current_account)
    iam = iam_backends[account_id][self.partition]
    try:
        role = iam.get_role_by_arn(role_arn)
    except NotFoundException:
        role = None
    try:
        grant = authorize(
            self._get_param("WebIdentityToken"),
            providers=_providers(iam),
            trust_policy=role.assume_role_policy_document if role is not None else None,
            session_name=session_name,
            source=KeySource(
                read_s3=functools.partial(_read_s3, account_id=account_id, partition=self.partition),
                cache=HTTPS_DOCUMENTS,
            ),
        )
    except WebIdentityError as e:
        LOG.info("AssumeRoleWithWebIdentity of %s refused (%s): %s", role_arn, e.code, e.reason)
        raise _moto_error(e) from None
    if role is not None and duration > int(role.max_session_duration or 3600):
        raise STSValidationError(DURATION_TOO_LONG)

    assumed = self.backend.assume_role_with_web_identity(
        region_name=self.region,
        role_session_name=session_name,
        role_arn=role_arn,
        policy=self._get_param("Policy"),
        duration=duration,
        external_id=None,
    )
    result = {
        "Credentials": assumed,
        "SubjectFromWebIdentityToken": grant.subject,
        "AssumedRoleUser": {"AssumedRoleId": assumed.user_id, "Arn": assumed.arn},
        "PackedPolicySize": 6,
        "Provider": grant.provider_arn,
        "Audience": grant.audience,
    }
    return ActionResult(result)


def install() -> None:
    TokenResponse.assume_role_with_web_identity = _assume_role_with_web_identity  # type: ignore[method-assign]
