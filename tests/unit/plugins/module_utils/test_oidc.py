# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import contextlib
import datetime
import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ansible_collections.layered.eks_rds.plugins.module_utils import oidc
from ansible_collections.layered.eks_rds.plugins.module_utils.oidc import OidcParameterError, OidcThumbprintError

REPO_ROOT = Path(__file__).resolve().parents[4]

# --------------------------------------------------------------------------- a generated PKI and a TLS server


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, key, issuer, issuer_key, *, ca, path_length=None, sans=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """Root CA -> intermediate CA -> leaf for 127.0.0.1 and localhost, written as PEM files."""

    def __init__(self, directory, label="test"):
        self.directory = directory
        self.root_key = ec.generate_private_key(ec.SECP256R1())
        self.root = _certificate(f"{label} root CA", self.root_key, f"{label} root CA", self.root_key, ca=True)
        self.intermediate_key = ec.generate_private_key(ec.SECP256R1())
        self.intermediate = _certificate(
            f"{label} intermediate CA",
            self.intermediate_key,
            f"{label} root CA",
            self.root_key,
            ca=True,
            path_length=0,
        )
        self.leaf_key = ec.generate_private_key(ec.SECP256R1())
        self.leaf = _certificate(
            "issuer.test",
            self.leaf_key,
            f"{label} intermediate CA",
            self.intermediate_key,
            ca=False,
            sans=[x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))],
        )
        self.key_file = self._write(
            "leaf.key",
            self.leaf_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        self.root_file = self._write("root.pem", self.pem(self.root))

    def _write(self, name, data):
        path = self.directory / name
        path.write_bytes(data)
        return str(path)

    @staticmethod
    def pem(certificate):
        return certificate.public_bytes(serialization.Encoding.PEM)

    @staticmethod
    def der(certificate):
        return certificate.public_bytes(serialization.Encoding.DER)

    @staticmethod
    def sha1(certificate):
        """Thumbprint computed independently of the code under test: cryptography's fingerprint."""
        return certificate.fingerprint(hashes.SHA1()).hex()

    def chain_file(self, *certificates):
        name = "chain-" + "-".join(str(id(c)) for c in certificates) + ".pem"
        return self._write(name, b"".join(self.pem(c) for c in certificates))


class TlsServer:
    """Accepts TLS connections on 127.0.0.1 in a thread, presenting exactly the given certificate chain."""

    def __init__(self, chain_file, key_file):
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(chain_file, key_file)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.handshakes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        while not self._stop.is_set():
            try:
                connection, _address = self.listener.accept()
            except OSError:
                continue
            with contextlib.suppress(OSError), connection:
                connection.settimeout(5)
                with self.context.wrap_socket(connection, server_side=True):
                    self.handshakes += 1

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join(timeout=5)
        self.listener.close()

    def url(self, host="127.0.0.1", path="/id/EXAMPLE"):
        return f"https://{host}:{self.port}{path}"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def other_pki(tmp_path_factory):
    return Pki(tmp_path_factory.mktemp("other-pki"), label="other")


@pytest.fixture(scope="module")
def full_chain_server(pki):
    with TlsServer(pki.chain_file(pki.leaf, pki.intermediate, pki.root), pki.key_file) as server:
        yield server


@pytest.fixture(scope="module")
def partial_chain_server(pki):
    with TlsServer(pki.chain_file(pki.leaf, pki.intermediate), pki.key_file) as server:
        yield server


@pytest.fixture(scope="module")
def leaf_only_server(pki):
    with TlsServer(pki.chain_file(pki.leaf), pki.key_file) as server:
        yield server


# --------------------------------------------------------------------------- thumbprints from a live TLS server


def test_thumbprint_of_full_chain_is_sha1_of_root(pki, full_chain_server):
    thumbprint = oidc.compute_issuer_thumbprint(full_chain_server.url(), ca_path=pki.root_file)

    assert thumbprint == pki.sha1(pki.root)
    assert thumbprint != pki.sha1(pki.leaf)


def test_full_chain_is_read_in_presentation_order(pki, full_chain_server):
    chain = oidc.fetch_certificate_chain(full_chain_server.url(), ca_path=pki.root_file)

    assert chain == [pki.der(pki.leaf), pki.der(pki.intermediate), pki.der(pki.root)]


def test_thumbprint_of_chain_without_root_is_sha1_of_intermediate(pki, partial_chain_server):
    thumbprint = oidc.compute_issuer_thumbprint(partial_chain_server.url(), ca_path=pki.root_file)

    assert thumbprint == pki.sha1(pki.intermediate)


def test_thumbprint_of_leaf_only_server_is_sha1_of_leaf(pki, leaf_only_server):
    assert oidc.compute_issuer_thumbprint(leaf_only_server.url(), validate_certs=False) == pki.sha1(pki.leaf)


def test_thumbprint_by_host_name_uses_sni_and_verifies_the_name(pki, full_chain_server):
    url = full_chain_server.url(host="localhost")

    assert oidc.compute_issuer_thumbprint(url, ca_path=pki.root_file) == pki.sha1(pki.root)


def test_thumbprint_without_validation(pki, full_chain_server):
    assert oidc.compute_issuer_thumbprint(full_chain_server.url(), validate_certs=False) == pki.sha1(pki.root)


def test_untrusted_chain_fails_verification(other_pki, full_chain_server):
    with pytest.raises(OidcThumbprintError, match=r"TLS verification of the issuer 127\.0\.0\.1:\d+ failed.*ca_path"):
        oidc.compute_issuer_thumbprint(full_chain_server.url(), ca_path=other_pki.root_file)


def test_system_trust_store_does_not_trust_a_private_ca(full_chain_server, monkeypatch):
    monkeypatch.setenv("SSL_CERT_FILE", os.devnull)
    monkeypatch.setenv("SSL_CERT_DIR", os.devnull)
    with pytest.raises(OidcThumbprintError, match="TLS verification"):
        oidc.compute_issuer_thumbprint(full_chain_server.url())


def test_unreadable_ca_path(tmp_path, full_chain_server):
    bad = tmp_path / "not-a-ca.pem"
    bad.write_text("nothing here\n")

    with pytest.raises(OidcThumbprintError, match=r"^ca_path: cannot load CA certificates"):
        oidc.compute_issuer_thumbprint(full_chain_server.url(), ca_path=str(bad))


def test_connection_refused():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        OidcThumbprintError, match=rf"cannot read the TLS certificate chain of the issuer 127.0.0.1:{port}"
    ):
        oidc.fetch_certificate_chain(f"https://127.0.0.1:{port}", timeout=2)


def test_fetch_refuses_http_before_connecting(monkeypatch):
    def no_connection(*args, **kwargs):
        raise AssertionError("a connection was attempted")

    monkeypatch.setattr(socket, "create_connection", no_connection)
    with pytest.raises(OidcParameterError, match=r"^url: must use the https scheme"):
        oidc.compute_issuer_thumbprint("http://127.0.0.1:8080")


# --------------------------------------------------------------------------- reading the chain off a socket


class _FakeCertificate:
    def __init__(self, der):
        self.der = der
        self.encodings = []

    def public_bytes(self, encoding=None):
        self.encodings.append(encoding)
        return self.der


class _FakeSslObject:
    def __init__(self, chain):
        self._chain = chain

    def get_unverified_chain(self):
        return self._chain


class _PrivateApiSocket:
    """What an ssl.SSLSocket looks like on Python 3.10 to 3.12."""

    def __init__(self, chain, leaf=None):
        self._sslobj = _FakeSslObject(chain)
        self._leaf = leaf

    def getpeercert(self, binary_form=False):
        return self._leaf


class _PublicApiSocket(_PrivateApiSocket):
    """What an ssl.SSLSocket looks like on Python 3.13 and later."""

    def __init__(self, chain):
        super().__init__(chain=None)
        self._public_chain = chain

    def get_unverified_chain(self):
        return self._public_chain


def test_peer_chain_prefers_the_public_api():
    assert oidc.peer_chain_der(_PublicApiSocket([b"leaf", bytearray(b"root")])) == [b"leaf", b"root"]


def test_peer_chain_accepts_certificate_objects_from_the_public_api():
    chain = [_FakeCertificate(b"leaf"), _FakeCertificate(b"root")]

    assert oidc.peer_chain_der(_PublicApiSocket(chain)) == [b"leaf", b"root"]


def test_peer_chain_falls_back_to_the_private_api():
    leaf, root = _FakeCertificate(b"leaf"), _FakeCertificate(b"root")

    assert oidc.peer_chain_der(_PrivateApiSocket([leaf, root])) == [b"leaf", b"root"]
    assert leaf.encodings == [ssl._ssl.ENCODING_DER]


def test_peer_chain_falls_back_to_the_leaf_when_the_chain_is_empty():
    assert oidc.peer_chain_der(_PrivateApiSocket(None, leaf=b"leaf")) == [b"leaf"]
    assert oidc.peer_chain_der(_PrivateApiSocket([], leaf=None)) == []


def test_peer_chain_without_any_chain_api_fails():
    class OldSocket:
        _sslobj = object()

        def getpeercert(self, binary_form=False):
            return b"leaf"

    with pytest.raises(OidcThumbprintError, match=r"Python 3\.10 or later"):
        oidc.peer_chain_der(OldSocket())


def test_this_python_exposes_a_chain_api():
    """The module runs on this interpreter: one of the two APIs must exist."""
    assert hasattr(ssl.SSLSocket, "get_unverified_chain") or hasattr(ssl._ssl._SSLSocket, "get_unverified_chain")


def test_sha1_thumbprint(pki):
    assert oidc.sha1_thumbprint(pki.der(pki.root)) == pki.sha1(pki.root)
    assert oidc.sha1_thumbprint(b"") == "da39a3ee5e6b4b0d3255bfef95601890afd80709"


# --------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url, normalized, host_path",
    [
        (
            "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
            "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
            "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE",
        ),
        (
            "https://OIDC.EKS.eu-west-1.amazonaws.com/id/ABC/",
            "https://oidc.eks.eu-west-1.amazonaws.com/id/ABC",
            "oidc.eks.eu-west-1.amazonaws.com/id/ABC",
        ),
        ("HTTPS://accounts.example.com//", "https://accounts.example.com", "accounts.example.com"),
        ("https://127.0.0.1:16443", "https://127.0.0.1:16443", "127.0.0.1:16443"),
        ("https://127.0.0.1:16443/", "https://127.0.0.1:16443", "127.0.0.1:16443"),
        ("https://[::1]:8443/issuer", "https://[::1]:8443/issuer", "[::1]:8443/issuer"),
        ("https://s3.eu-west-1.amazonaws.com/bucket/Path", "https://s3.eu-west-1.amazonaws.com/bucket/Path", None),
    ],
)
def test_normalize_issuer_url(url, normalized, host_path):
    assert oidc.normalize_issuer_url(url) == (normalized, host_path or normalized[len("https://") :])
    assert oidc.issuer_host_path(url) == normalized[len("https://") :]


@pytest.mark.parametrize(
    "url, fragment",
    [
        (None, "non-empty"),
        ("", "non-empty"),
        ("   ", "non-empty"),
        ("http://oidc.example.com", "https scheme"),
        ("HTTP://oidc.example.com", "https scheme"),
        ("ftp://oidc.example.com", "https scheme"),
        ("oidc.example.com/id/ABC", "absolute URL"),
        ("//oidc.example.com", "absolute URL"),
        ("https://", "host name"),
        ("https:///id/ABC", "host name"),
        ("https://user:secret@oidc.example.com", "user information"),
        ("https://oidc.example.com/?a=b", "query string"),
        ("https://oidc.example.com/?", "query string"),
        ("https://oidc.example.com/#frag", "fragment"),
        ("https://oidc.example.com:0", "invalid port"),
        ("https://oidc.example.com:99999", "not a valid URL"),
        ("https://oidc.example.com:", "empty port"),
        ("https://oidc.example.com/id with space", "spaces"),
        ("https://oidc.example.com/" + "a" * 250, "at most 255"),
    ],
)
def test_normalize_issuer_url_rejects(url, fragment):
    with pytest.raises(OidcParameterError) as raised:
        oidc.normalize_issuer_url(url)
    assert raised.value.option == "url"
    assert str(raised.value).startswith("url: ")
    assert fragment in str(raised.value)


@pytest.mark.parametrize(
    "url, address",
    [
        ("https://oidc.example.com/id/x", ("oidc.example.com", 443)),
        ("https://127.0.0.1:16443", ("127.0.0.1", 16443)),
        ("https://[::1]:8443/x", ("::1", 8443)),
        ("https://Example.COM", ("example.com", 443)),
    ],
)
def test_issuer_address(url, address):
    assert oidc.issuer_address(url) == address


def test_provider_host_path_from_arn():
    arn = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/ABC"
    assert oidc.provider_host_path_from_arn(arn) == "oidc.eks.eu-west-1.amazonaws.com/id/ABC"
    assert oidc.provider_host_path_from_arn("arn:aws-cn:iam::123456789012:oidc-provider/127.0.0.1:16443") == (
        "127.0.0.1:16443"
    )
    assert oidc.provider_host_path_from_arn("arn:aws:iam::123456789012:saml-provider/x") is None
    assert oidc.provider_host_path_from_arn(None) is None


@pytest.mark.parametrize(
    "left, right, same",
    [
        ("oidc.example.com/id/ABC", "oidc.example.com/id/ABC", True),
        ("oidc.example.com/id/ABC/", "oidc.example.com/id/ABC", True),
        ("OIDC.example.com/id/ABC", "oidc.example.com/id/ABC", True),
        ("https://oidc.example.com/id/ABC", "oidc.example.com/id/ABC", True),
        ("oidc.example.com/id/abc", "oidc.example.com/id/ABC", False),
        ("oidc.example.com/id/ABC", "oidc.example.com/id/ABCD", False),
        ("oidc.example.com:8443", "oidc.example.com", False),
        (None, "oidc.example.com", False),
    ],
)
def test_same_host_path(left, right, same):
    assert oidc.same_host_path(left, right) is same


# --------------------------------------------------------------------------- thumbprints and client IDs


def test_normalize_thumbprint():
    assert oidc.normalize_thumbprint("9E99A48A9960B14926BB7F3B02E22DA2B0AB7280") == (
        "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
    )
    assert oidc.normalize_thumbprint(" 9e99a48a9960b14926bb7f3b02e22da2b0ab7280 ") == (
        "9e99a48a9960b14926bb7f3b02e22da2b0ab7280"
    )


@pytest.mark.parametrize(
    "value, fragment",
    [
        (None, "not empty"),
        ("", "not empty"),
        ("9e99a48a9960b14926bb7f3b02e22da2b0ab728", "40 hexadecimal digits"),
        ("9e99a48a9960b14926bb7f3b02e22da2b0ab72800", "40 hexadecimal digits"),
        ("9e99a48a9960b14926bb7f3b02e22da2b0ab728g", "40 hexadecimal digits"),
        ("9E:99:A4:8A:99:60:B1:49:26:BB:7F:3B:02:E2:2D:A2:B0:AB:72:80", "without colons"),
        ("a" * 64, "SHA-256"),
        ("0x9e99a48a9960b14926bb7f3b02e22da2b0ab72", "40 hexadecimal digits"),
    ],
)
def test_normalize_thumbprint_rejects(value, fragment):
    with pytest.raises(OidcParameterError) as raised:
        oidc.normalize_thumbprint(value)
    assert raised.value.option == "thumbprints"
    assert fragment in str(raised.value)


def test_validate_thumbprints():
    upper, lower = "A" * 40, "a" * 40
    assert oidc.validate_thumbprints([upper, "b" * 40, lower]) == [lower, "b" * 40]
    with pytest.raises(OidcParameterError, match=r"^thumbprints: must list 1 to 5"):
        oidc.validate_thumbprints([])
    with pytest.raises(OidcParameterError, match="at most 5"):
        oidc.validate_thumbprints([c * 40 for c in "abcdef"])
    with pytest.raises(OidcParameterError, match="must be a list"):
        oidc.validate_thumbprints("a" * 40)


def test_validate_client_ids():
    assert oidc.validate_client_ids(["sts.amazonaws.com", "x", "sts.amazonaws.com"]) == ["sts.amazonaws.com", "x"]
    assert oidc.validate_client_ids([]) == []
    for bad, fragment in (([""], "non-empty"), ([" x"], "spaces"), (["x" * 256], "at most 255")):
        with pytest.raises(OidcParameterError, match=rf"^client_ids: .*{fragment}"):
            oidc.validate_client_ids(bad)
    with pytest.raises(OidcParameterError, match="at most 100"):
        oidc.validate_client_ids([str(i) for i in range(101)])


# --------------------------------------------------------------------------- the local stack's kube-apiserver


def _stack_endpoints():
    stack_dir = Path(os.environ.get("LAYERED_STACK_DIR") or REPO_ROOT / ".stack")
    endpoints = stack_dir / "endpoints.json"
    if not endpoints.is_file():
        pytest.skip(f"the local stack is not up: {endpoints} is missing (start it with `make up`)")
    return json.loads(endpoints.read_text())


def _presented_chain_with_openssl(host, port):
    """DER certificates the server presents, as `openssl s_client -showcerts` prints them."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("openssl is needed to read the presented chain independently")
    completed = subprocess.run(
        [openssl, "s_client", "-connect", f"{host}:{port}", "-servername", host, "-showcerts"],
        input=b"",
        capture_output=True,
        timeout=30,
        check=False,
    )
    pems = []
    block = None
    for line in completed.stdout.decode("ascii", "replace").splitlines():
        if line.strip() == "-----BEGIN CERTIFICATE-----":
            block = [line]
        elif block is not None:
            block.append(line)
            if line.strip() == "-----END CERTIFICATE-----":
                pems.append("\n".join(block) + "\n")
                block = None
    return [x509.load_pem_x509_certificate(pem.encode()) for pem in pems]


def _directly_issued_by(certificate, ca):
    try:
        certificate.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def test_thumbprint_of_the_local_kube_apiserver():
    endpoints = _stack_endpoints()
    url = endpoints["sa_issuer"]
    host, port = oidc.issuer_address(url)
    try:
        socket.create_connection((host, port), timeout=5).close()
    except OSError as e:
        pytest.skip(f"the local stack's kube-apiserver does not answer on {host}:{port}: {e}")

    presented = _presented_chain_with_openssl(host, port)
    assert presented, "openssl read no certificate from the kube-apiserver"

    thumbprint = oidc.compute_issuer_thumbprint(url, validate_certs=False)
    assert thumbprint == presented[-1].fingerprint(hashes.SHA1()).hex()

    ca_file = Path(endpoints.get("kube_ca_file", ""))
    if ca_file.is_file():
        ca = x509.load_pem_x509_certificate(ca_file.read_bytes())
        if any(cert == ca for cert in presented):
            # The server sends its CA along with the leaf: the thumbprint is the CA's.
            assert presented[-1] == ca
            assert thumbprint == ca.fingerprint(hashes.SHA1()).hex()
        if _directly_issued_by(presented[0], ca):
            # The stack's CA signed the serving certificate: verification against it succeeds too.
            assert oidc.compute_issuer_thumbprint(url, ca_path=str(ca_file)) == thumbprint
