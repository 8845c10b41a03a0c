# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import contextlib
import datetime
import ipaddress
import socket
import ssl
import threading

import boto3
import pytest
from _harness import clean_aws_env, module_outcomes, patch_exits, record_retrying_clients
from ansible.module_utils import basic
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto import mock_aws
from moto.core.responses import EmptyResult
from moto.iam.responses import IamResponse

from ansible_collections.layered.eks_rds.plugins.modules import iam_oidc_provider

REGION = "eu-west-1"
ACCOUNT = "123456789012"
OTHER_THUMBPRINT = "0123456789abcdef0123456789abcdef01234567"

# --------------------------------------------------------------------------- an issuer with a generated chain


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, *, ca, sans=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Issuer:
    """A TLS server on 127.0.0.1 presenting leaf + intermediate + root, generated for the test."""

    def __init__(self, directory):
        root_key, intermediate_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
        self.root = _certificate("issuer root CA", root_key, "issuer root CA", root_key, ca=True)
        intermediate = _certificate("issuer intermediate CA", intermediate_key, "issuer root CA", root_key, ca=True)
        leaf = _certificate(
            "issuer",
            leaf_key,
            "issuer intermediate CA",
            intermediate_key,
            ca=False,
            sans=[x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        )
        pem = serialization.Encoding.PEM
        chain_file, key_file = directory / "chain.pem", directory / "leaf.key"
        chain_file.write_bytes(b"".join(c.public_bytes(pem) for c in (leaf, intermediate, self.root)))
        key_file.write_bytes(
            leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        self.ca_path = str(directory / "root.pem")
        (directory / "root.pem").write_bytes(self.root.public_bytes(pem))
        self.thumbprint = self.root.fingerprint(hashes.SHA1()).hex()

        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(str(chain_file), str(key_file))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.host_path = f"127.0.0.1:{self.port}/id/EXAMPLE"
        self.url = f"https://{self.host_path}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _address = self.listener.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError), connection:
                connection.settimeout(5)
                with self.context.wrap_socket(connection, server_side=True):
                    pass

    def close(self):
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()


@pytest.fixture(scope="module")
def issuer(tmp_path_factory):
    server = Issuer(tmp_path_factory.mktemp("issuer"))
    yield server
    server.close()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    clean_aws_env(monkeypatch, tmp_path)


@pytest.fixture(autouse=True)
def module_exits(monkeypatch):
    patch_exits(monkeypatch)


@pytest.fixture
def warnings(monkeypatch):
    recorded = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning: recorded.append(warning))
    return recorded


def _add_client_id(self):
    provider = self.backend.get_open_id_connect_provider(self._get_param("OpenIDConnectProviderArn"))
    client_id = self._get_param("ClientID")
    if client_id not in provider.client_id_list:
        provider.client_id_list.append(client_id)
    return EmptyResult()


def _remove_client_id(self):
    provider = self.backend.get_open_id_connect_provider(self._get_param("OpenIDConnectProviderArn"))
    client_id = self._get_param("ClientID")
    if client_id in provider.client_id_list:
        provider.client_id_list.remove(client_id)
    return EmptyResult()


@pytest.fixture(autouse=True)
def moto_client_id_calls(monkeypatch):
    """moto 5.2 lacks Add/RemoveClientID(To|From)OpenIDConnectProvider; give it the two calls for these tests."""
    monkeypatch.setattr(IamResponse, "add_client_id_to_open_id_connect_provider", _add_client_id, raising=False)
    monkeypatch.setattr(IamResponse, "remove_client_id_from_open_id_connect_provider", _remove_client_id, raising=False)


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.client("iam", region_name=REGION)


succeed, fail = module_outcomes(iam_oidc_provider.main)


def providers(iam):
    return [p["Arn"] for p in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]]


def read_back(iam, arn):
    response = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
    return dict(
        url=response["Url"],
        client_ids=sorted(response["ClientIDList"]),
        thumbprints=sorted(response["ThumbprintList"]),
        tags={t["Key"]: t["Value"] for t in response.get("Tags", [])},
    )


def arn_for(issuer):
    return f"arn:aws:iam::{ACCOUNT}:oidc-provider/{issuer.host_path}"


# --------------------------------------------------------------------------- create and idempotence


def test_create_computes_the_root_thumbprint(aws, issuer, warnings):
    result = succeed(dict(url=issuer.url + "/", ca_path=issuer.ca_path, tags={"Project": "demo"}))

    assert result["changed"] is True
    assert result["arn"] == arn_for(issuer)
    assert result["url"] == issuer.url
    assert result["issuer_host_path"] == issuer.host_path
    assert result["client_ids"] == ["sts.amazonaws.com"]
    assert result["thumbprints"] == [issuer.thumbprint]
    assert result["computed_thumbprint"] == issuer.thumbprint
    assert result["tags"] == {"Project": "demo"}
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["thumbprints"] == [issuer.thumbprint]
    assert warnings == []
    assert providers(aws) == [arn_for(issuer)]
    assert read_back(aws, arn_for(issuer)) == dict(
        url=issuer.host_path,
        client_ids=["sts.amazonaws.com"],
        thumbprints=[issuer.thumbprint],
        tags={"Project": "demo"},
    )


def test_second_run_changes_nothing(aws, issuer, warnings):
    args = dict(url=issuer.url, ca_path=issuer.ca_path, tags={"Project": "demo"})
    succeed(args)

    again = succeed(args)
    in_check_mode = succeed(args, check_mode=True)

    for result in (again, in_check_mode):
        assert result["changed"] is False
        assert result["arn"] == arn_for(issuer)
        assert result["thumbprints"] == [issuer.thumbprint]
        assert result["create_date"]
        assert result["diff"]["before"] == result["diff"]["after"]
    assert warnings == []
    assert providers(aws) == [arn_for(issuer)]


def test_existing_provider_is_matched_without_trailing_slash_and_host_case(aws):
    arn = aws.create_open_id_connect_provider(
        Url="https://oidc.example.com/id/ABC", ClientIDList=["sts.amazonaws.com"]
    )["OpenIDConnectProviderArn"]

    result = succeed(dict(url="https://OIDC.Example.com/id/ABC//", compute_thumbprint=False))

    assert result["changed"] is False
    assert result["arn"] == arn
    assert result["issuer_host_path"] == "oidc.example.com/id/ABC"
    assert providers(aws) == [arn]


def test_check_mode_on_an_empty_account_predicts_the_provider(aws, issuer):
    result = succeed(dict(url=issuer.url, ca_path=issuer.ca_path, tags={"a": "b"}), check_mode=True)

    assert result["changed"] is True
    assert result["arn"] == arn_for(issuer)
    assert result["thumbprints"] == [issuer.thumbprint]
    assert result["client_ids"] == ["sts.amazonaws.com"]
    assert result["tags"] == {"a": "b"}
    assert result["create_date"] is None
    assert providers(aws) == []


def test_create_without_thumbprints(aws, issuer):
    result = succeed(dict(url="https://oidc.example.com/id/ABC", compute_thumbprint=False, client_ids=[]))

    assert result["changed"] is True
    assert result["thumbprints"] == []
    assert result["client_ids"] == []
    assert read_back(aws, result["arn"])["thumbprints"] == []


def test_create_with_explicit_thumbprints(aws):
    result = succeed(dict(url="https://oidc.example.com", thumbprints=[OTHER_THUMBPRINT.upper(), "f" * 40]))

    assert result["thumbprints"] == [OTHER_THUMBPRINT, "f" * 40]
    assert read_back(aws, result["arn"])["thumbprints"] == sorted([OTHER_THUMBPRINT, "f" * 40])
    assert "computed_thumbprint" not in result


# --------------------------------------------------------------------------- updates


def test_client_ids_are_added_and_removed(aws, issuer):
    created = succeed(dict(url=issuer.url, ca_path=issuer.ca_path))
    audiences = ["sts.amazonaws.com", "https://kubernetes.default.svc"]

    added = succeed(dict(url=issuer.url, ca_path=issuer.ca_path, client_ids=audiences))
    assert added["changed"] is True
    assert added["client_ids"] == audiences
    assert added["diff"]["before"]["client_ids"] == ["sts.amazonaws.com"]
    assert read_back(aws, created["arn"])["client_ids"] == sorted(audiences)

    assert succeed(dict(url=issuer.url, ca_path=issuer.ca_path, client_ids=audiences[::-1]))["changed"] is False

    removed = succeed(dict(url=issuer.url, ca_path=issuer.ca_path, client_ids=["https://kubernetes.default.svc"]))
    assert removed["changed"] is True
    assert removed["client_ids"] == ["https://kubernetes.default.svc"]
    assert read_back(aws, created["arn"])["client_ids"] == ["https://kubernetes.default.svc"]


def test_client_id_changes_in_check_mode_are_only_predicted(aws, issuer):
    created = succeed(dict(url=issuer.url, ca_path=issuer.ca_path))

    result = succeed(dict(url=issuer.url, ca_path=issuer.ca_path, client_ids=["other"]), check_mode=True)

    assert result["changed"] is True
    assert result["client_ids"] == ["other"]
    assert read_back(aws, created["arn"])["client_ids"] == ["sts.amazonaws.com"]


def test_thumbprint_mismatch_is_updated_with_a_warning(aws, issuer, warnings):
    arn = aws.create_open_id_connect_provider(
        Url=issuer.url, ClientIDList=["sts.amazonaws.com"], ThumbprintList=[OTHER_THUMBPRINT]
    )["OpenIDConnectProviderArn"]

    predicted = succeed(dict(url=issuer.url, ca_path=issuer.ca_path), check_mode=True)
    assert predicted["changed"] is True
    assert read_back(aws, arn)["thumbprints"] == [OTHER_THUMBPRINT]

    result = succeed(dict(url=issuer.url, ca_path=issuer.ca_path))

    assert result["changed"] is True
    assert result["thumbprints"] == [issuer.thumbprint]
    assert result["diff"]["before"]["thumbprints"] == [OTHER_THUMBPRINT]
    assert result["diff"]["after"]["thumbprints"] == [issuer.thumbprint]
    assert read_back(aws, arn)["thumbprints"] == [issuer.thumbprint]
    assert len(warnings) == 2
    assert "would be replaced" in warnings[0]
    assert "Thumbprint mismatch" in warnings[1]
    assert OTHER_THUMBPRINT in warnings[1]
    assert issuer.thumbprint in warnings[1]
    assert "replaced the thumbprint list" in warnings[1]


def test_computed_thumbprint_among_others_is_left_alone(aws, issuer, warnings):
    arn = aws.create_open_id_connect_provider(
        Url=issuer.url, ClientIDList=["sts.amazonaws.com"], ThumbprintList=[OTHER_THUMBPRINT, issuer.thumbprint]
    )["OpenIDConnectProviderArn"]

    result = succeed(dict(url=issuer.url, ca_path=issuer.ca_path))

    assert result["changed"] is False
    assert warnings == []
    assert read_back(aws, arn)["thumbprints"] == sorted([OTHER_THUMBPRINT, issuer.thumbprint])


def test_provider_without_thumbprints_gets_the_computed_one_silently(aws, issuer, warnings):
    arn = aws.create_open_id_connect_provider(Url=issuer.url, ClientIDList=["sts.amazonaws.com"])[
        "OpenIDConnectProviderArn"
    ]

    result = succeed(dict(url=issuer.url, ca_path=issuer.ca_path))

    assert result["changed"] is True
    assert warnings == []
    assert read_back(aws, arn)["thumbprints"] == [issuer.thumbprint]


def test_explicit_thumbprints_replace_the_list(aws, warnings):
    url = "https://oidc.example.com/id/ABC"
    arn = succeed(dict(url=url, thumbprints=[OTHER_THUMBPRINT]))["arn"]

    assert succeed(dict(url=url, thumbprints=[OTHER_THUMBPRINT.upper()]))["changed"] is False
    result = succeed(dict(url=url, thumbprints=["a" * 40, "b" * 40]))

    assert result["changed"] is True
    assert read_back(aws, arn)["thumbprints"] == ["a" * 40, "b" * 40]
    assert succeed(dict(url=url, thumbprints=["b" * 40, "A" * 40]))["changed"] is False
    assert warnings == []


def test_thumbprints_are_left_alone_without_compute(aws):
    url = "https://oidc.example.com/id/ABC"
    arn = succeed(dict(url=url, thumbprints=[OTHER_THUMBPRINT]))["arn"]

    result = succeed(dict(url=url, compute_thumbprint=False))

    assert result["changed"] is False
    assert result["thumbprints"] == [OTHER_THUMBPRINT]
    assert read_back(aws, arn)["thumbprints"] == [OTHER_THUMBPRINT]


def test_tags(aws):
    url = "https://oidc.example.com/id/ABC"
    arn = succeed(dict(url=url, compute_thumbprint=False, tags={"Project": "demo", "Env": "dev"}))["arn"]

    untouched = succeed(dict(url=url, compute_thumbprint=False))
    assert untouched["changed"] is False
    assert untouched["tags"] == {"Project": "demo", "Env": "dev"}

    kept = succeed(dict(url=url, compute_thumbprint=False, tags={"Owner": "team"}, purge_tags=False))
    assert kept["changed"] is True
    assert kept["tags"] == {"Project": "demo", "Env": "dev", "Owner": "team"}
    assert read_back(aws, arn)["tags"] == {"Project": "demo", "Env": "dev", "Owner": "team"}

    purged = succeed(dict(url=url, compute_thumbprint=False, tags={"Project": "demo", "Env": "prod"}))
    assert purged["changed"] is True
    assert purged["tags"] == {"Project": "demo", "Env": "prod"}
    assert purged["diff"]["before"]["tags"] == {"Env": "dev", "Owner": "team", "Project": "demo"}
    assert read_back(aws, arn)["tags"] == {"Project": "demo", "Env": "prod"}

    same = succeed(dict(url=url, compute_thumbprint=False, tags={"Env": "prod", "Project": "demo"}))
    assert same["changed"] is False

    cleared = succeed(dict(url=url, compute_thumbprint=False, tags={}))
    assert cleared["changed"] is True
    assert read_back(aws, arn)["tags"] == {}


# --------------------------------------------------------------------------- absent


def test_absent_deletes_the_provider(aws, issuer):
    arn = succeed(dict(url=issuer.url, ca_path=issuer.ca_path))["arn"]

    predicted = succeed(dict(url=issuer.url, state="absent"), check_mode=True)
    assert predicted["changed"] is True
    assert predicted["arn"] == arn
    assert providers(aws) == [arn]

    result = succeed(dict(url=issuer.url + "/", state="absent"))
    assert result["changed"] is True
    assert result["arn"] == arn
    assert result["issuer_host_path"] == issuer.host_path
    assert result["diff"]["before"]["url"] == issuer.url
    assert result["diff"]["after"] == {}
    assert providers(aws) == []

    again = succeed(dict(url=issuer.url, state="absent"))
    assert again["changed"] is False
    assert again["arn"] is None


def test_absent_leaves_other_providers(aws):
    keep = succeed(dict(url="https://oidc.example.com/id/KEEP", compute_thumbprint=False))["arn"]
    succeed(dict(url="https://oidc.example.com/id/GONE", compute_thumbprint=False))

    succeed(dict(url="https://oidc.example.com/id/GONE", state="absent"))

    assert providers(aws) == [keep]


# --------------------------------------------------------------------------- bad input fails first


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("http://oidc.example.com/id/ABC", "must use the https scheme"),
        ("ftp://oidc.example.com", "must use the https scheme"),
        ("oidc.example.com/id/ABC", "starting with https://"),
        ("https://oidc.example.com/?x=1", "query string"),
    ],
)
@pytest.mark.parametrize("state", ["present", "absent"])
def test_bad_url_fails_before_any_call(no_clients, url, fragment, state):
    result = fail(dict(url=url, state=state))

    assert result["msg"].startswith("url: ")
    assert fragment in result["msg"]
    assert result["option"] == "url"
    assert no_clients == []


@pytest.mark.parametrize(
    "args, option, fragment",
    [
        (dict(thumbprints=["abc"]), "thumbprints", "40 hexadecimal digits"),
        (dict(thumbprints=["AB:CD"]), "thumbprints", "40 hexadecimal digits"),
        (dict(thumbprints=[]), "thumbprints", "1 to 5"),
        (dict(thumbprints=["a" * 40], compute_thumbprint=True), "compute_thumbprint", "cannot be true"),
        (dict(client_ids=["x" * 256]), "client_ids", "at most 255"),
        (dict(ca_path="/nonexistent/ca.pem"), "ca_path", "is not a file"),
    ],
)
def test_bad_options_fail_before_any_call(no_clients, args, option, fragment):
    result = fail(dict(url="https://oidc.example.com", **args))

    assert result["option"] == option
    assert result["msg"].startswith(f"{option}: ")
    assert fragment in result["msg"]
    assert no_clients == []


def test_unreachable_issuer_fails_with_a_way_out(aws):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    result = fail(dict(url=f"https://127.0.0.1:{port}/id/X"))

    assert result["msg"].startswith(f"url: cannot compute the thumbprint of https://127.0.0.1:{port}/id/X")
    assert "Set thumbprints, or compute_thumbprint=false" in result["msg"]
    assert providers(aws) == []


def test_untrusted_issuer_fails_verification(aws, issuer):
    result = fail(dict(url=issuer.url))

    assert "TLS verification of the issuer" in result["msg"]
    assert providers(aws) == []


def test_validate_certs_false_skips_issuer_verification(aws, issuer):
    result = succeed(dict(url=issuer.url, validate_certs=False))

    assert result["thumbprints"] == [issuer.thumbprint]


# --------------------------------------------------------------------------- client creation


def test_iam_client_uses_jittered_backoff_and_retries(aws, monkeypatch):
    services, decorators = record_retrying_clients(monkeypatch, iam_oidc_provider)
    succeed(dict(url="https://oidc.example.com", compute_thumbprint=False))

    assert services == [("iam", decorators[0])]
