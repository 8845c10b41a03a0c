"""The stack's STS AssumeRoleWithWebIdentity (moto_ext.web_identity) enforces what AWS STS enforces.

moto runs in process (``mock_aws``) with the stack's extensions installed.  One issuer serves its discovery document
and JWKS over real HTTPS (a thread, a certificate from a throwaway CA named by LAYERED_OIDC_CA_FILE), others live
in moto's S3 (the self-hosted OIDC of EKS Anywhere).  Roles trust the provider exactly as the irsa role writes it.
"""

from __future__ import annotations

import base64
import datetime
import http.server
import ipaddress
import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import moto_ext
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from moto import mock_aws
from moto_ext import web_identity as wi

from ansible_collections.layered.eks_rds.plugins.filter.irsa import irsa_trust_policy

REGION = "eu-west-1"
ACCOUNT = "123456789012"
AUDIENCE = "sts.amazonaws.com"
NAMESPACE = "metabase"
SERVICE_ACCOUNT = "metabase-sa"
SUBJECT = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
BUCKET = "layered-oidc-issuers"
NO_RETRIES = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module", autouse=True)
def stack_moto() -> None:
    """moto with the stack's extensions.

    Installed when these tests start, not when the module is collected: that would change moto under the module
    tests that run first.  They stay installed for the rest of the process.
    """
    moto_ext.install()


# ------------------------------------------------------------------------------------------ keys and tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def _uint(value: int, size: int | None = None) -> str:
    return b64url(value.to_bytes(size or (value.bit_length() + 7) // 8, "big"))


@dataclass
class SigningKey:
    kid: str
    private: Any
    alg: str = "RS256"

    def jwk(self) -> dict[str, Any]:
        public = self.private.public_key().public_numbers()
        common = {"kid": self.kid, "use": "sig", "alg": self.alg}
        if self.alg.startswith("RS"):
            return {"kty": "RSA", **common, "n": _uint(public.n), "e": _uint(public.e)}
        return {"kty": "EC", **common, "crv": "P-256", "x": _uint(public.x, 32), "y": _uint(public.y, 32)}

    def sign(self, claims: dict[str, Any], kid: str | None = "") -> str:
        """A compact JWS; ``kid`` "" is the key's own, None leaves it out."""
        header: dict[str, Any] = {"alg": self.alg, "typ": "JWT"}
        if kid is not None:
            header["kid"] = kid or self.kid
        signing_input = f"{b64url_json(header)}.{b64url_json(claims)}".encode()
        if self.alg.startswith("RS"):
            signature = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        else:
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
        return f"{signing_input.decode()}.{b64url(signature)}"


def rsa_key(kid: str) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {
        "main": rsa_key("main-kid"),
        "rogue": rsa_key("main-kid"),  # same kid, not in any JWKS
        "rotated": rsa_key("rotated-kid"),
        "ec": SigningKey("ec-kid", ec.generate_private_key(ec.SECP256R1()), alg="ES256"),
    }


def claims_for(issuer: str, subject: str = SUBJECT, audience: Any = None, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": issuer,
        "sub": subject,
        "aud": [AUDIENCE] if audience is None else audience,
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "kubernetes.io": {"namespace": subject.split(":")[2], "serviceaccount": {"name": subject.split(":")[3]}},
    }
    claims.update(changes)
    return claims


# ------------------------------------------------------------------------------------------ HTTPS issuer


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject: str, key: Any, issuer: tuple[str, Any] | None, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    issuer_name, issuer_key = issuer if issuer else (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class Pki:
    ca_file: Path
    other_ca_file: Path
    cert_file: Path
    key_file: Path


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _certificate("layered test OIDC CA", ca_key, None, ca=True)
    other_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _certificate("127.0.0.1", server_key, ("layered test OIDC CA", ca_key), ca=False)
    pki = Pki(directory / "ca.pem", directory / "other-ca.pem", directory / "server.pem", directory / "server-key.pem")
    pki.ca_file.write_bytes(_pem(ca))
    pki.other_ca_file.write_bytes(_pem(_certificate("another CA", other_key, None, ca=True)))
    pki.cert_file.write_bytes(_pem(server))
    pki.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return pki


@dataclass
class Issuer:
    url: str
    documents: dict[str, bytes] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def serve_keys(self, *keys: SigningKey) -> None:
        self.documents["/openid/v1/jwks"] = json.dumps({"keys": [k.jwk() for k in keys]}).encode()


@pytest.fixture(scope="module")
def https_issuer(pki: Pki) -> Iterator[Issuer]:
    """A kube-apiserver-like issuer: discovery document and JWKS over HTTPS on a free loopback port."""
    issuer = Issuer(url="")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            issuer.requests.append(self.path)
            body = issuer.documents.get(self.path)
            self.send_response(200 if body is not None else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body or b"{}")

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki.cert_file, pki.key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    issuer.url = f"https://127.0.0.1:{server.server_address[1]}"
    issuer.documents["/.well-known/openid-configuration"] = json.dumps(
        {
            "issuer": issuer.url,
            "jwks_uri": f"{issuer.url}/openid/v1/jwks",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        }
    ).encode()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield issuer
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


# ------------------------------------------------------------------------------------------ AWS side


@dataclass
class Aws:
    sts: Any
    iam: Any
    s3: Any

    def provider(self, url: str, client_ids: tuple[str, ...] = (AUDIENCE,)) -> str:
        return self.iam.create_open_id_connect_provider(
            Url=url, ClientIDList=list(client_ids), ThumbprintList=["9" * 40]
        )["OpenIDConnectProviderArn"]

    def role(self, name: str, trust: dict[str, Any], **kwargs: Any) -> str:
        return self.iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust), **kwargs)["Role"]["Arn"]

    def irsa_role(self, name: str, provider_arn: str, issuer: str, namespace: str = NAMESPACE) -> str:
        """The role as the irsa role creates it (its trust policy comes from the collection's filter)."""
        workload = {"name": name, "namespace": namespace, "service_account": SERVICE_ACCOUNT}
        trust = irsa_trust_policy(workload, provider_arn=provider_arn, issuer_url=issuer, audience=AUDIENCE)
        return self.role(name, trust)

    def assume(self, role_arn: str, token: str, session: str = "app", **kwargs: Any) -> dict[str, Any]:
        return self.sts.assume_role_with_web_identity(  # type: ignore[no-any-return]
            RoleArn=role_arn, RoleSessionName=session, WebIdentityToken=token, **kwargs
        )

    def refused(self, role_arn: str, token: str, code: str, message: str, status: int = 400, **kwargs: Any) -> str:
        with pytest.raises(ClientError) as raised:
            self.assume(role_arn, token, **kwargs)
        error = raised.value.response
        assert error["Error"]["Code"] == code, error
        assert message in error["Error"]["Message"], error
        assert error["ResponseMetadata"]["HTTPStatusCode"] == status, error
        return str(error["Error"]["Message"])


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, pki: Pki) -> Iterator[Aws]:
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv(wi.CA_FILE_ENV, str(pki.ca_file))
    wi.clear_cache()
    with mock_aws():
        session = boto3.session.Session(region_name=REGION)
        yield Aws(
            sts=session.client("sts", config=NO_RETRIES),
            iam=session.client("iam"),
            s3=session.client("s3"),
        )
    wi.clear_cache()


@pytest.fixture
def irsa(aws: Aws, https_issuer: Issuer, keys: dict[str, SigningKey]) -> dict[str, str]:
    """The HTTPS issuer registered as an IAM OIDC provider and a role created as the irsa role does."""
    https_issuer.serve_keys(keys["main"], keys["ec"])
    provider_arn = aws.provider(https_issuer.url)
    return {"provider": provider_arn, "role": aws.irsa_role("demo-dev-metabase", provider_arn, https_issuer.url)}


def _host_path(url: str) -> str:
    return url.removeprefix("https://")


# ------------------------------------------------------------------------------------------ allowed


def test_service_account_token_assumes_the_irsa_role(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    response = aws.assume(irsa["role"], keys["main"].sign(claims_for(https_issuer.url)), session="metabase")

    assert response["SubjectFromWebIdentityToken"] == SUBJECT
    assert response["Provider"] == irsa["provider"]
    assert response["Provider"] == f"arn:aws:iam::{ACCOUNT}:oidc-provider/{_host_path(https_issuer.url)}"
    assert response["Audience"] == AUDIENCE
    assumed_arn = f"arn:aws:sts::{ACCOUNT}:assumed-role/demo-dev-metabase/metabase"
    assert response["AssumedRoleUser"]["Arn"] == assumed_arn
    role_id = aws.iam.get_role(RoleName="demo-dev-metabase")["Role"]["RoleId"]
    assert response["AssumedRoleUser"]["AssumedRoleId"] == f"{role_id}:metabase"

    credentials = response["Credentials"]
    caller = boto3.client(
        "sts",
        region_name=REGION,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    ).get_caller_identity()
    assert caller["Arn"] == assumed_arn
    assert caller["Account"] == ACCOUNT
    assert caller["UserId"] == f"{role_id}:metabase"


def test_es256_token_is_accepted(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    response = aws.assume(irsa["role"], keys["ec"].sign(claims_for(https_issuer.url)))
    assert response["SubjectFromWebIdentityToken"] == SUBJECT


def test_token_without_kid_is_checked_with_the_only_key_of_its_type(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    response = aws.assume(irsa["role"], keys["main"].sign(claims_for(https_issuer.url), kid=None))
    assert response["SubjectFromWebIdentityToken"] == SUBJECT
    rogue = keys["rogue"].sign(claims_for(https_issuer.url), kid=None)
    aws.refused(irsa["role"], rogue, "InvalidIdentityToken", "could not be validated by AWS")


def test_string_like_wildcard_subject(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    host_path = _host_path(https_issuer.url)
    role = aws.role(
        "team-a-any",
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": irsa["provider"]},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringLike": {f"{host_path}:sub": "system:serviceaccount:team-a:*"},
                        "StringEquals": {f"{host_path}:aud": AUDIENCE},
                    },
                }
            ],
        },
    )
    main = keys["main"]
    token = main.sign(claims_for(https_issuer.url, "system:serviceaccount:team-a:reporting"))
    assert aws.assume(role, token)["SubjectFromWebIdentityToken"] == "system:serviceaccount:team-a:reporting"

    other_team = main.sign(claims_for(https_issuer.url, "system:serviceaccount:team-b:reporting"))
    aws.refused(role, other_team, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_key_added_after_the_set_was_cached_is_fetched(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    aws.assume(irsa["role"], keys["main"].sign(claims_for(https_issuer.url)))  # caches the JWKS
    https_issuer.serve_keys(keys["main"], keys["rotated"])
    response = aws.assume(irsa["role"], keys["rotated"].sign(claims_for(https_issuer.url)))
    assert response["SubjectFromWebIdentityToken"] == SUBJECT


def test_key_set_is_cached(aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]) -> None:
    token = keys["main"].sign(claims_for(https_issuer.url))
    https_issuer.requests.clear()
    aws.assume(irsa["role"], token)
    aws.assume(irsa["role"], token)
    assert https_issuer.requests == ["/.well-known/openid-configuration", "/openid/v1/jwks"]


# ------------------------------------------------------------------------------------------ trust policy


def test_service_account_of_another_namespace_is_denied(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    token = keys["main"].sign(claims_for(https_issuer.url, f"system:serviceaccount:other:{SERVICE_ACCOUNT}"))
    aws.refused(irsa["role"], token, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_other_service_account_of_the_namespace_is_denied(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    token = keys["main"].sign(claims_for(https_issuer.url, f"system:serviceaccount:{NAMESPACE}:default"))
    aws.refused(irsa["role"], token, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_audience_the_provider_knows_but_the_trust_policy_does_not_is_denied(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    aws.iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=irsa["provider"], ClientID="vault")
    token = keys["main"].sign(claims_for(https_issuer.url, audience=["vault"]))
    aws.refused(irsa["role"], token, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_federated_principal_of_another_provider_is_denied(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    other_issuer = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
    other_provider = aws.provider(other_issuer)
    role = aws.irsa_role("trusts-other-cluster", other_provider, other_issuer)
    token = keys["main"].sign(claims_for(https_issuer.url))
    aws.refused(role, token, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_explicit_deny_wins(aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]) -> None:
    host_path = _host_path(https_issuer.url)
    allow = irsa_trust_policy(
        {"name": "x", "namespace": NAMESPACE, "service_account": SERVICE_ACCOUNT},
        provider_arn=irsa["provider"],
        issuer_url=https_issuer.url,
    )["Statement"][0]
    deny = {
        "Effect": "Deny",
        "Principal": {"Federated": [irsa["provider"]]},
        "Action": "sts:*",
        "Condition": {"StringLike": {f"{host_path}:sub": f"system:serviceaccount:{NAMESPACE}:*"}},
    }
    role = aws.role("denied", {"Version": "2012-10-17", "Statement": [allow, deny]})
    token = keys["main"].sign(claims_for(https_issuer.url))
    aws.refused(role, token, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_role_that_does_not_exist_is_denied(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    token = keys["main"].sign(claims_for(https_issuer.url))
    role = f"arn:aws:iam::{ACCOUNT}:role/nobody"
    aws.refused(role, token, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)


def test_duration_above_the_role_maximum_is_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    token = keys["main"].sign(claims_for(https_issuer.url))
    aws.refused(irsa["role"], token, "ValidationError", "exceeds the MaxSessionDuration", DurationSeconds=7200)


# ------------------------------------------------------------------------------------------ the token


def test_audience_that_is_not_a_client_id_is_refused(
    aws: Aws,
    https_issuer: Issuer,
    irsa: dict[str, str],
    keys: dict[str, SigningKey],
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = keys["main"].sign(claims_for(https_issuer.url, audience="https://kubernetes.default.svc"))
    with caplog.at_level("INFO", logger=wi.__name__):
        aws.refused(irsa["role"], token, "InvalidIdentityToken", "Incorrect token audience")
    assert "none of the client ids ['sts.amazonaws.com']" in caplog.text


def test_token_without_audience_is_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    claims = claims_for(https_issuer.url)
    del claims["aud"]
    aws.refused(irsa["role"], keys["main"].sign(claims), "InvalidIdentityToken", "Missing a required claim: aud")


def test_expired_token_is_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    expired = int(time.time()) - 60
    token = keys["main"].sign(claims_for(https_issuer.url, iat=expired - 3600, nbf=expired - 3600, exp=expired))
    message = aws.refused(irsa["role"], token, "ExpiredTokenException", "Token expired: current date/time ")
    assert message.endswith(f" must be before the expiration date/time {expired}")


def test_token_issued_in_the_future_is_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    later = int(time.time()) + 3600
    token = keys["main"].sign(claims_for(https_issuer.url, iat=later, nbf=later, exp=later + 3600))
    aws.refused(irsa["role"], token, "InvalidIdentityToken", "Token not yet valid")


def test_token_signed_by_another_key_is_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    token = keys["rogue"].sign(claims_for(https_issuer.url))  # the kid of the served key
    aws.refused(irsa["role"], token, "InvalidIdentityToken", "could not be validated by AWS")


def test_tampered_claims_are_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    header, _, signature = keys["main"].sign(claims_for(https_issuer.url, "system:serviceaccount:x:y")).split(".")
    forged = f"{header}.{b64url_json(claims_for(https_issuer.url))}.{signature}"
    aws.refused(irsa["role"], forged, "InvalidIdentityToken", "could not be validated by AWS")


def test_unknown_kid_is_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    token = keys["rotated"].sign(claims_for(https_issuer.url))  # rotated-kid is not served
    aws.refused(irsa["role"], token, "InvalidIdentityToken", "Couldn't retrieve verification key")


def test_unsigned_token_is_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    token = f"{b64url_json({'alg': 'none'})}.{b64url_json(claims_for(https_issuer.url))}."
    aws.refused(irsa["role"], token, "InvalidIdentityToken", "could not be validated by AWS")


@pytest.mark.parametrize("token", ["not-a-token", "a.b.c", f"{b64url(b'[]')}.{b64url(b'{}')}.c"])
def test_what_is_not_a_jwt_is_refused(aws: Aws, irsa: dict[str, str], token: str) -> None:
    aws.refused(irsa["role"], token, "InvalidIdentityToken", "The ID Token provided is not a valid JWT")


def test_token_after_the_provider_was_deleted_is_refused(
    aws: Aws, https_issuer: Issuer, irsa: dict[str, str], keys: dict[str, SigningKey]
) -> None:
    token = keys["main"].sign(claims_for(https_issuer.url))
    aws.assume(irsa["role"], token)
    aws.iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=irsa["provider"])
    aws.refused(
        irsa["role"],
        token,
        "InvalidIdentityToken",
        f"No OpenIDConnect provider found in your account for {https_issuer.url}",
    )


def test_issuer_whose_certificate_is_not_trusted_is_refused(
    aws: Aws,
    https_issuer: Issuer,
    irsa: dict[str, str],
    keys: dict[str, SigningKey],
    pki: Pki,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(wi.CA_FILE_ENV, str(pki.other_ca_file))
    token = keys["main"].sign(claims_for(https_issuer.url))
    aws.refused(irsa["role"], token, "InvalidIdentityToken", "Couldn't retrieve verification key")


def test_issuer_that_does_not_answer_is_an_idp_communication_error(aws: Aws, keys: dict[str, SigningKey]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        issuer = f"https://127.0.0.1:{sock.getsockname()[1]}"
    provider = aws.provider(issuer)
    role = aws.irsa_role("unreachable", provider, issuer)
    token = keys["main"].sign(claims_for(issuer))
    aws.refused(role, token, "IDPCommunicationError", "Couldn't retrieve verification key")


# ------------------------------------------------------------------------------------------ issuers in S3


def _put_s3_issuer(aws: Aws, issuer: str, prefix: str, jwks_uri: str, key: SigningKey, acl: str | None) -> None:
    extra = {"ACL": acl} if acl else {}
    discovery = {"issuer": issuer, "jwks_uri": jwks_uri, "id_token_signing_alg_values_supported": ["RS256"]}
    aws.s3.put_object(
        Bucket=BUCKET, Key=f"{prefix}/.well-known/openid-configuration", Body=json.dumps(discovery), **extra
    )
    aws.s3.put_object(Bucket=BUCKET, Key=f"{prefix}/keys.json", Body=json.dumps({"keys": [key.jwk()]}), **extra)


@pytest.fixture
def bucket(aws: Aws) -> str:
    aws.s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
    return BUCKET


def test_issuer_hosted_in_s3_with_public_read_objects(aws: Aws, bucket: str, keys: dict[str, SigningKey]) -> None:
    issuer = f"https://{bucket}.s3.{REGION}.amazonaws.com/clusters/anywhere-1"
    _put_s3_issuer(aws, issuer, "clusters/anywhere-1", f"{issuer}/keys.json", keys["rotated"], acl="public-read")
    provider = aws.provider(issuer)
    role = aws.irsa_role("anywhere-1", provider, issuer)

    response = aws.assume(role, keys["rotated"].sign(claims_for(issuer)))
    assert response["Provider"] == provider
    assert response["SubjectFromWebIdentityToken"] == SUBJECT

    other_namespace = keys["rotated"].sign(claims_for(issuer, "system:serviceaccount:other:metabase-sa"))
    aws.refused(role, other_namespace, "AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)
    aws.refused(role, keys["main"].sign(claims_for(issuer)), "InvalidIdentityToken", "Couldn't retrieve verification")


def test_path_style_s3_issuer_readable_through_the_bucket_policy(
    aws: Aws, bucket: str, keys: dict[str, SigningKey]
) -> None:
    issuer = f"https://s3.{REGION}.amazonaws.com/{bucket}/clusters/anywhere-2"
    _put_s3_issuer(aws, issuer, "clusters/anywhere-2", f"{issuer}/keys.json", keys["main"], acl=None)
    provider = aws.provider(issuer)
    role = aws.irsa_role("anywhere-2", provider, issuer)
    token = keys["main"].sign(claims_for(issuer))
    aws.refused(role, token, "InvalidIdentityToken", "Couldn't retrieve verification key")  # private objects

    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": f"arn:aws:s3:::{bucket}/clusters/*",
            }
        ],
    }
    aws.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(policy))
    assert aws.assume(role, token)["Provider"] == provider

    aws.s3.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
    )
    aws.refused(role, token, "InvalidIdentityToken", "Couldn't retrieve verification key")


def test_s3_issuer_in_another_region_than_its_url_is_refused(
    aws: Aws, bucket: str, keys: dict[str, SigningKey]
) -> None:
    issuer = f"https://{bucket}.s3.us-east-2.amazonaws.com/clusters/c"
    _put_s3_issuer(aws, issuer, "clusters/c", f"{issuer}/keys.json", keys["main"], acl="public-read")
    role = aws.irsa_role("wrong-region", aws.provider(issuer), issuer)
    aws.refused(role, keys["main"].sign(claims_for(issuer)), "InvalidIdentityToken", "Couldn't retrieve verification")


# ------------------------------------------------------------------------------------------ plain functions


HOST = "oidc.example.com/id/ABC"
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{HOST}"


def _trust(statement_condition: Any = None, **statement: Any) -> dict[str, Any]:
    base = {"Effect": "Allow", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity"}
    base.update(statement)
    base = {k: v for k, v in base.items() if v is not None}
    if statement_condition is not None:
        base["Condition"] = statement_condition
    return {"Version": "2012-10-17", "Statement": base}


def _context(sub: str = SUBJECT, aud: Any = AUDIENCE, **claims: Any) -> dict[str, list[str]]:
    return wi.condition_context(HOST, {"sub": sub, "aud": aud, **claims}, "app")


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEquals": {f"{HOST}:sub": SUBJECT, f"{HOST}:aud": AUDIENCE}}, _context(), True),
        ({"StringEquals": {f"{HOST}:sub": [SUBJECT, "x"]}}, _context(), True),
        ({"StringEquals": {f"{HOST.upper()}:SUB": SUBJECT}}, _context(), True),  # key names are case-insensitive
        ({"StringEquals": {f"{HOST}:sub": SUBJECT.upper()}}, _context(), False),  # values are not
        ({"StringEqualsIgnoreCase": {f"{HOST}:sub": SUBJECT.upper()}}, _context(), True),
        ({"StringEquals": {f"{HOST}:amr": "x"}}, _context(), False),  # a key the request lacks
        ({"StringEqualsIfExists": {f"{HOST}:amr": "x"}}, _context(), True),
        ({"StringNotEquals": {f"{HOST}:amr": "x"}}, _context(), True),
        ({"StringNotEquals": {f"{HOST}:sub": SUBJECT}}, _context(), False),
        ({"StringLike": {f"{HOST}:sub": "system:serviceaccount:metabase:*"}}, _context(), True),
        ({"StringLike": {f"{HOST}:sub": "system:serviceaccount:metabas?:metabase-sa"}}, _context(), True),
        ({"StringLike": {f"{HOST}:sub": "system:serviceaccount:metabas?:metabase"}}, _context(), False),
        ({"StringLike": {f"{HOST}:sub": "system:serviceaccount:[m]etabase:*"}}, _context(), False),  # no classes
        ({"StringNotLike": {f"{HOST}:sub": "system:serviceaccount:kube-system:*"}}, _context(), True),
        ({"StringEquals": {f"{HOST}:aud": AUDIENCE}}, _context(aud=[AUDIENCE, "other"]), True),
        ({"ForAnyValue:StringEquals": {f"{HOST}:aud": AUDIENCE}}, _context(aud=[AUDIENCE, "other"]), True),
        ({"ForAllValues:StringEquals": {f"{HOST}:aud": AUDIENCE}}, _context(aud=[AUDIENCE, "other"]), False),
        ({"ForAllValues:StringEquals": {f"{HOST}:aud": [AUDIENCE, "other"]}}, _context(aud=[AUDIENCE, "other"]), True),
        ({"ForAllValues:StringEquals": {f"{HOST}:amr": "x"}}, _context(), True),  # vacuously, as in IAM
        ({"ForAnyValue:StringEquals": {f"{HOST}:amr": "x"}}, _context(), False),
        ({"ForAnyValue:StringLike": {f"{HOST}:amr": "auth*"}}, _context(amr=["unauth", "authenticated"]), True),
        ({"Null": {f"{HOST}:amr": "true"}}, _context(), True),
        ({"Null": {f"{HOST}:sub": "true"}}, _context(), False),
        ({"Null": {f"{HOST}:sub": "false"}}, _context(), True),
        ({"StringEquals": {"sts:RoleSessionName": "app"}}, _context(), True),
        ({"StringEquals": {"sts:RoleSessionName": "other"}}, _context(), False),
        ({"NumericLessThan": {f"{HOST}:sub": "1"}}, _context(), None),
        ({"StringEquals": {f"{HOST}:sub": "x"}, "DateLessThan": {"aws:CurrentTime": "2030-01-01"}}, _context(), False),
        ({"StringEquals": {f"{HOST}:sub": SUBJECT}, "Bool": {"aws:SecureTransport": "true"}}, _context(), None),
    ],
)
def test_evaluate_conditions(condition: Any, context: dict[str, list[str]], expected: bool | None) -> None:
    assert wi.evaluate_conditions(condition, context) is expected


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (_trust(), True),
        (_trust(Action=["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"]), True),
        (_trust(Action="sts:*"), True),
        (_trust(Action="STS:assumerolewith*"), True),
        (_trust(Action="sts:AssumeRole"), False),
        (_trust(Action=None, NotAction="sts:AssumeRole"), True),
        (_trust(Principal={"Federated": [f"{PROVIDER}2", PROVIDER]}), True),
        (_trust(Principal={"Federated": f"{PROVIDER}2"}), False),
        (_trust(Principal={"AWS": "*"}), False),
        (_trust(Principal="*"), True),
        (_trust(Principal={"Service": "pods.eks.amazonaws.com"}), False),
        (_trust(Effect="allow"), False),
        (_trust({"StringEquals": {f"{HOST}:sub": SUBJECT}}), True),
        (_trust({"StringEquals": {f"{HOST}:sub": "other"}}), False),
        (_trust({"NumericEquals": {f"{HOST}:sub": "1"}}), False),  # unknown operators never allow
        (json.dumps(_trust()), True),
        (urllib.parse.quote(json.dumps(_trust())), True),  # IAM's URL-encoded form
        (json.dumps({"Statement": []}), False),
        ("not json", False),
    ],
)
def test_evaluate_trust_policy(policy: Any, expected: bool) -> None:
    assert wi.evaluate_trust_policy(policy, PROVIDER, _context()) is expected


@pytest.mark.parametrize(
    ("deny", "expected"),
    [
        ({"Effect": "Deny", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRoleWithWebIdentity"}, False),
        ({"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "*"}, False),
        ({"Effect": "Deny", "Principal": {"Federated": PROVIDER}, "Action": "sts:AssumeRole"}, True),
        (
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "sts:*",
                "Condition": {"StringNotEquals": {f"{HOST}:aud": AUDIENCE}},
            },
            True,
        ),
        ({"Effect": "Deny", "Principal": "*", "Action": "sts:*", "Condition": {"Bool": {"x": "true"}}}, False),
        ({"Effect": "Deny", "NotPrincipal": {"Federated": PROVIDER}, "Action": "*"}, True),
        ({"Effect": "Deny", "NotPrincipal": {"Federated": "other"}, "Action": "*"}, False),
    ],
)
def test_deny_statements(deny: dict[str, Any], expected: bool) -> None:
    policy = _trust()
    policy["Statement"] = [policy["Statement"], deny]
    assert wi.evaluate_trust_policy(policy, PROVIDER, _context()) is expected


def test_check_claims() -> None:
    now = 1_700_000_000.0
    claims = {"sub": SUBJECT, "aud": ["other", AUDIENCE], "exp": now + 60, "iat": now + 200, "nbf": now}
    assert wi.check_claims(claims, [AUDIENCE, "vault"], now) == AUDIENCE  # 200 s ahead is within the skew
    assert wi.check_claims({**claims, "aud": "vault"}, [AUDIENCE, "vault"], now) == "vault"

    def refused(changes: dict[str, Any]) -> wi.WebIdentityError:
        with pytest.raises(wi.WebIdentityError) as raised:
            wi.check_claims({k: v for k, v in {**claims, **changes}.items() if v is not None}, [AUDIENCE], now)
        return raised.value

    assert refused({"aud": ["vault"]}).message == "Incorrect token audience"
    assert refused({"aud": None}).message == "Missing a required claim: aud"
    assert refused({"sub": None}).message == "Missing a required claim: sub"
    assert refused({"exp": None}).message == "Missing a required claim: exp"
    expired = refused({"exp": now})
    assert (expired.code, expired.message) == (
        "ExpiredTokenException",
        "Token expired: current date/time 1700000000 must be before the expiration date/time 1700000000",
    )
    assert refused({"nbf": now + 301}).code == "InvalidIdentityToken"
    assert refused({"exp": "tomorrow"}).message == wi.NOT_A_JWT
    assert refused({"exp": True}).message == wi.NOT_A_JWT


def test_select_keys(keys: dict[str, SigningKey]) -> None:
    main, ec_key = keys["main"].jwk(), keys["ec"].jwk()
    jwks = {"keys": [main, ec_key, {**keys["rotated"].jwk(), "use": "enc"}]}
    assert wi.select_keys(jwks, {"alg": "RS256", "kid": "main-kid"}) == [main]
    assert wi.select_keys(jwks, {"alg": "RS256", "kid": "rotated-kid"}) == []  # an encryption key
    assert wi.select_keys(jwks, {"alg": "RS256", "kid": "ec-kid"}) == []  # not an RSA key
    assert wi.select_keys(jwks, {"alg": "RS256"}) == [main]  # the only usable key
    assert wi.select_keys(jwks, {"alg": "ES256"}) == [ec_key]
    assert wi.select_keys({"keys": [{**main, "alg": "RS512"}]}, {"alg": "RS256", "kid": "main-kid"}) == []
    assert wi.select_keys({"no": "keys"}, {"alg": "RS256"}) == []
    with pytest.raises(wi.WebIdentityError, match="could not be validated"):
        wi.select_keys(jwks, {"alg": "HS256"})


def test_verify_signature(keys: dict[str, SigningKey]) -> None:
    claims = claims_for("https://issuer.example")
    rsa_token = wi.parse_jwt(keys["main"].sign(claims))
    ec_token = wi.parse_jwt(keys["ec"].sign(claims))
    assert wi.verify_signature(rsa_token, keys["main"].jwk())
    assert not wi.verify_signature(rsa_token, keys["rogue"].jwk())
    assert not wi.verify_signature(rsa_token, keys["ec"].jwk())
    assert wi.verify_signature(ec_token, keys["ec"].jwk())
    assert not wi.verify_signature(ec_token, {**keys["ec"].jwk(), "crv": "P-384"})
    assert not wi.verify_signature(ec_token, keys["main"].jwk())
    tampered = wi.Jwt(rsa_token.header, rsa_token.claims, rsa_token.signing_input + b"x", rsa_token.signature)
    assert not wi.verify_signature(tampered, keys["main"].jwk())


def test_parse_jwt(keys: dict[str, SigningKey]) -> None:
    token = wi.parse_jwt(keys["main"].sign({"sub": "x"}))
    assert token.header == {"alg": "RS256", "typ": "JWT", "kid": "main-kid"}
    assert token.claims == {"sub": "x"}
    for bad in (None, "", "a.b", "a.b.c.d", "e30.e30.!!", "e30.W10.", "bm90IGpzb24.e30."):
        with pytest.raises(wi.WebIdentityError) as raised:
            wi.parse_jwt(bad)
        assert raised.value.code == "InvalidIdentityToken"
        assert raised.value.message == wi.NOT_A_JWT


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://127.0.0.1:16443", "127.0.0.1:16443"),
        ("https://OIDC.eks.eu-west-1.amazonaws.com/id/ABC/", "oidc.eks.eu-west-1.amazonaws.com/id/ABC"),
        ("http://127.0.0.1:16443", None),
        ("https://user@host", None),
        ("https://host/?q=1", None),
        (42, None),
    ],
)
def test_issuer_host_path(url: Any, expected: str | None) -> None:
    assert wi.issuer_host_path(url) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://b.s3.eu-west-1.amazonaws.com/c/keys.json", ("b", "c/keys.json", "eu-west-1")),
        ("https://my.b.s3-us-gov-west-1.amazonaws.com/x", ("my.b", "x", "us-gov-west-1")),
        (
            "https://b.s3.amazonaws.com/.well-known/openid-configuration",
            ("b", ".well-known/openid-configuration", None),
        ),
        ("https://s3.eu-west-1.amazonaws.com/b/c/d%20e", ("b", "c/d e", "eu-west-1")),
        ("https://s3.amazonaws.com/b/k", ("b", "k", None)),
        ("https://s3.eu-west-1.amazonaws.com/b", None),
        ("https://127.0.0.1:16443/openid/v1/jwks", None),
        ("https://b.s3.eu-west-1.amazonaws.com:8443/k", None),
        ("http://b.s3.eu-west-1.amazonaws.com/k", None),
        ("https://oidc.eks.eu-west-1.amazonaws.com/id/ABC", None),
    ],
)
def test_s3_location(url: str, expected: tuple[str, str, str | None] | None) -> None:
    location = wi.s3_location(url)
    assert (None if location is None else (location.bucket, location.key, location.region)) == expected


def _public_policy(**statement: Any) -> str:
    base = {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "s3:Get*", "Resource": "arn:aws:s3:::b/*"}
    base.update(statement)
    return json.dumps({"Statement": [base]})


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, False),
        ({"acl_public_read": True}, True),
        ({"acl_public_read": True, "acls_disabled": True}, False),
        ({"acl_public_read": True, "ignore_public_acls": True}, False),
        ({"acl_public_read": True, "restrict_public_buckets": True}, True),
        ({"policy": _public_policy()}, True),
        ({"policy": _public_policy().encode()}, True),
        ({"policy": _public_policy(), "restrict_public_buckets": True}, False),
        ({"policy": _public_policy(), "ignore_public_acls": True, "acls_disabled": True}, True),
        ({"policy": _public_policy(Resource="arn:aws:s3:::b/other/*")}, False),
        ({"policy": _public_policy(Principal={"AWS": "arn:aws:iam::123456789012:root"})}, False),
        ({"policy": _public_policy(Condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}})}, False),
        ({"policy": _public_policy(Action="s3:PutObject")}, False),
        ({"policy": _public_policy(Effect="Deny"), "acl_public_read": True}, False),
    ],
)
def test_s3_object_is_public(settings: dict[str, Any], expected: bool) -> None:
    arguments = {
        "resource_arn": "arn:aws:s3:::b/c/keys.json",
        "acl_public_read": False,
        "acls_disabled": False,
        "policy": None,
        "ignore_public_acls": False,
        "restrict_public_buckets": False,
        **settings,
    }
    assert wi.s3_object_is_public(**arguments) is expected


def test_authorize_reports_subject_provider_and_audience(keys: dict[str, SigningKey]) -> None:
    issuer = "https://issuer.example/tenant"

    class Source(wi.KeySource):
        def jwks(self, issuer_url: str, refresh: bool = False) -> dict[str, Any]:
            assert issuer_url == issuer
            return {"keys": [keys["main"].jwk()]}

    grant = wi.authorize(
        keys["main"].sign(claims_for(issuer, audience=["x", AUDIENCE])),
        providers=[
            wi.Provider(f"arn:aws:iam::{ACCOUNT}:oidc-provider/elsewhere.example", "elsewhere.example", (AUDIENCE,)),
            wi.Provider(PROVIDER.replace(HOST, "issuer.example/tenant"), "Issuer.example/tenant", (AUDIENCE,)),
        ],
        trust_policy=_trust(Principal={"Federated": PROVIDER.replace(HOST, "issuer.example/tenant")}),
        session_name="app",
        source=Source(),
    )
    assert grant == wi.Grant(SUBJECT, PROVIDER.replace(HOST, "issuer.example/tenant"), AUDIENCE, issuer)
