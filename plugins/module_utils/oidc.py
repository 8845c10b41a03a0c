# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helpers for IAM OpenID Connect (OIDC) identity providers.

Pure functions validate and normalise issuer URLs, client IDs and thumbprints
the way IAM stores them, and ``fetch_certificate_chain`` /
``compute_issuer_thumbprint`` read the TLS certificate chain an issuer presents
to derive the thumbprint IAM expects.

Thumbprint
    The hex SHA-1 of the DER encoding of the *last* certificate the issuer
    presents in its TLS handshake, normally the top of the chain (the root CA,
    or the topmost intermediate when the server does not send its root). This
    is what eksctl computes (``PeerCertificates[len-1]`` in Go) and what the
    IAM documentation describes.

Reading the presented chain from Python
    ``ssl.SSLSocket.getpeercert()`` only returns the leaf. The whole chain, as
    sent by the server and whether or not it was verified, is available:

    * on Python 3.13 and later through the public
      ``ssl.SSLSocket.get_unverified_chain()``, which returns a list of DER
      ``bytes`` (3.13.0 and later; a few 3.13 pre-releases returned
      ``_ssl.Certificate`` objects, which are handled too);
    * on Python 3.10 to 3.12 only through the private
      ``SSLSocket._sslobj.get_unverified_chain()`` (added by bpo-18233), which
      returns ``_ssl.Certificate`` objects with a ``public_bytes(encoding)``
      method. On Python 3.11 this is the only way short of running
      ``openssl s_client``; it wraps OpenSSL's ``SSL_get_peer_cert_chain()``,
      which on the client side includes the leaf.

    Older interpreters have neither, and ``fetch_certificate_chain`` raises an
    error rather than silently falling back to the leaf certificate.
"""

import hashlib
import re
import socket
import ssl
from urllib.parse import urlsplit

try:
    import _ssl
except ImportError:  # pragma: no cover - _ssl is always there when ssl is
    _ssl = None

DEFAULT_CLIENT_IDS = ("sts.amazonaws.com",)
MAX_URL_LENGTH = 255
MAX_THUMBPRINTS = 5
MAX_CLIENT_IDS = 100
MAX_CLIENT_ID_LENGTH = 255
DEFAULT_PORT = 443
DEFAULT_TIMEOUT = 10

_THUMBPRINT_RE = re.compile(r"[0-9A-Fa-f]{40}")


class OidcParameterError(ValueError):
    """Raised when an option value is unusable; the message names the option."""

    def __init__(self, option, message):
        self.option = option
        super().__init__(f"{option}: {message}")


class OidcThumbprintError(Exception):
    """Raised when the certificate chain of an issuer cannot be read."""


def normalize_issuer_url(url, option="url"):
    """Validate an issuer URL and return ``(url, host_path)``.

    ``host_path`` is the URL as IAM stores it: without ``https://`` and without
    trailing slashes, with the host name lower-cased. It is the part of the
    provider ARN after ``oidc-provider/`` and the prefix of the trust-policy
    condition keys (``<host_path>:sub``, ``<host_path>:aud``). ``url`` is
    ``https://`` followed by ``host_path``.

    Only ``https`` URLs are accepted, without user information, query string
    or fragment.
    """
    if url is None or not str(url).strip():
        raise OidcParameterError(option, "must be a non-empty https:// URL")
    url = str(url)
    if any(c.isspace() for c in url):
        raise OidcParameterError(option, f"must not contain spaces: {url!r}")
    if "://" not in url:
        raise OidcParameterError(option, f"must be an absolute URL starting with https://, got {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise OidcParameterError(option, f"is not a valid URL ({e}): {url!r}") from None
    if parts.scheme.lower() != "https":
        raise OidcParameterError(
            option, f"must use the https scheme, IAM only accepts https:// issuers; got {parts.scheme}:// in {url!r}"
        )
    if not parts.hostname:
        raise OidcParameterError(option, f"must include a host name: {url!r}")
    if "@" in parts.netloc:
        raise OidcParameterError(option, f"must not contain user information: {url!r}")
    if parts.query or url.endswith("?"):
        raise OidcParameterError(option, f"must not contain a query string: {url!r}")
    if parts.fragment or "#" in url:
        raise OidcParameterError(option, f"must not contain a fragment: {url!r}")
    if port is not None and not 1 <= port <= 65535:
        raise OidcParameterError(option, f"has an invalid port: {url!r}")

    if parts.netloc.endswith(":"):
        raise OidcParameterError(option, f"has an empty port: {url!r}")
    # Without user information the network location is the host and an optional
    # port: host names (and IPv6 literals) are case-insensitive, digits have no case.
    host_path = parts.netloc.lower() + parts.path.rstrip("/")
    normalized = f"https://{host_path}"
    if len(normalized) > MAX_URL_LENGTH:
        raise OidcParameterError(option, f"must be at most {MAX_URL_LENGTH} characters long")
    return normalized, host_path


def issuer_host_path(url):
    """Return the URL as IAM stores it (no scheme, no trailing slash)."""
    return normalize_issuer_url(url)[1]


def issuer_address(url):
    """Return ``(host, port)`` to connect to for an https issuer URL (port 443 by default)."""
    normalized, _host_path = normalize_issuer_url(url)
    parts = urlsplit(normalized)
    return parts.hostname, parts.port or DEFAULT_PORT


def provider_host_path_from_arn(arn):
    """Return the ``host_path`` part of an OIDC provider ARN, or None if it is not one."""
    marker = ":oidc-provider/"
    if not arn or marker not in arn:
        return None
    return arn.split(marker, 1)[1]


def same_host_path(left, right):
    """Compare two stored provider URLs the way IAM does (host case-insensitive, trailing slash ignored)."""
    if left is None or right is None:
        return False

    def canonical(value):
        value = str(value)
        if "://" in value:
            value = value.split("://", 1)[1]
        host, _sep, path = value.partition("/")
        return host.lower() + ("/" + path if path else "").rstrip("/")

    return canonical(left) == canonical(right)


def normalize_thumbprint(value, option="thumbprints"):
    """Return a thumbprint as 40 lower-case hex digits, or raise OidcParameterError."""
    if value is None or not str(value).strip():
        raise OidcParameterError(option, "entries must be 40 hexadecimal digits (a SHA-1 fingerprint), not empty")
    text = str(value).strip()
    if not _THUMBPRINT_RE.fullmatch(text):
        hint = ""
        if ":" in text:
            hint = " without colons"
        elif re.fullmatch(r"[0-9A-Fa-f]{64}", text):
            hint = "; this looks like a SHA-256 fingerprint, IAM expects SHA-1"
        raise OidcParameterError(
            option, f"entries must be 40 hexadecimal digits (a SHA-1 fingerprint){hint}, got {text!r}"
        )
    return text.lower()


def validate_thumbprints(values, option="thumbprints"):
    """Return thumbprints normalised and de-duplicated (order kept); 1 to 5 entries."""
    if not isinstance(values, (list, tuple)):
        raise OidcParameterError(option, f"must be a list of thumbprints, got {type(values).__name__}")
    result = []
    for value in values:
        thumbprint = normalize_thumbprint(value, option=option)
        if thumbprint not in result:
            result.append(thumbprint)
    if not result:
        raise OidcParameterError(
            option,
            "must list 1 to 5 thumbprints; to leave the thumbprints alone omit it and set compute_thumbprint=false",
        )
    if len(result) > MAX_THUMBPRINTS:
        raise OidcParameterError(option, f"IAM accepts at most {MAX_THUMBPRINTS} thumbprints, got {len(result)}")
    return result


def validate_client_ids(values, option="client_ids"):
    """Return client IDs (audiences) de-duplicated (order kept); each 1 to 255 characters, at most 100."""
    if not isinstance(values, (list, tuple)):
        raise OidcParameterError(option, f"must be a list of client IDs, got {type(values).__name__}")
    result = []
    for value in values:
        if value is None or not str(value).strip():
            raise OidcParameterError(option, "entries must be non-empty strings")
        text = str(value)
        if text != text.strip():
            raise OidcParameterError(option, f"entries must not start or end with spaces: {text!r}")
        if len(text) > MAX_CLIENT_ID_LENGTH:
            raise OidcParameterError(option, f"entries must be at most {MAX_CLIENT_ID_LENGTH} characters long")
        if text not in result:
            result.append(text)
    if len(result) > MAX_CLIENT_IDS:
        raise OidcParameterError(option, f"IAM accepts at most {MAX_CLIENT_IDS} client IDs, got {len(result)}")
    return result


def sha1_thumbprint(der):
    """Return the IAM thumbprint (lower-case hex SHA-1) of a DER-encoded certificate."""
    # SHA-1 identifies the certificate here; it protects nothing.
    return hashlib.sha1(bytes(der), usedforsecurity=False).hexdigest()


def _certificate_to_der(certificate):
    if isinstance(certificate, (bytes, bytearray)):
        return bytes(certificate)
    encoding = getattr(_ssl, "ENCODING_DER", None)
    if encoding is not None:
        return bytes(certificate.public_bytes(encoding))
    return ssl.PEM_cert_to_DER_cert(certificate.public_bytes())


def peer_chain_der(tls_socket):
    """Return the certificates the peer presented, in the order it sent them (leaf first), as DER bytes.

    Uses ``SSLSocket.get_unverified_chain()`` on Python 3.13+, else the private
    ``_sslobj.get_unverified_chain()`` of Python 3.10 to 3.12.
    """
    public = getattr(tls_socket, "get_unverified_chain", None)
    if public is not None:
        chain = public()
    else:
        private = getattr(getattr(tls_socket, "_sslobj", None), "get_unverified_chain", None)
        if private is None:
            raise OidcThumbprintError(
                "this Python cannot read the certificate chain presented by a TLS server (Python 3.10 or later "
                "is needed); set thumbprints explicitly or compute_thumbprint=false"
            )
        chain = private()
    der_chain = [_certificate_to_der(certificate) for certificate in chain or []]
    if not der_chain:
        leaf = tls_socket.getpeercert(binary_form=True)
        if leaf:
            der_chain = [leaf]
    return der_chain


def _client_context(validate_certs, ca_path):
    if validate_certs:
        context = ssl.create_default_context(cafile=ca_path)
    else:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def fetch_certificate_chain(url, validate_certs=True, ca_path=None, timeout=DEFAULT_TIMEOUT):
    """Connect to the issuer and return the certificate chain it presents (DER bytes, leaf first).

    The connection goes straight to the host and port of ``url`` (443 by
    default) with SNI set to the host name; proxies are not used and no HTTP
    request is sent. With ``validate_certs`` the chain must verify against
    ``ca_path`` (a PEM bundle) or, without it, the system trust store, and the
    certificate must match the host name.
    """
    host, port = issuer_address(url)
    try:
        context = _client_context(validate_certs, ca_path)
    except (OSError, ssl.SSLError) as e:
        raise OidcThumbprintError(f"ca_path: cannot load CA certificates from {ca_path!r}: {e}") from None
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
        with raw, context.wrap_socket(raw, server_hostname=host) as tls:
            chain = peer_chain_der(tls)
    except ssl.SSLCertVerificationError as e:
        raise OidcThumbprintError(
            f"TLS verification of the issuer {host}:{port} failed: {e.verify_message or e}; set ca_path to a bundle "
            "holding the issuer's CA, or validate_certs=false"
        ) from None
    except (OSError, ssl.SSLError) as e:
        raise OidcThumbprintError(f"cannot read the TLS certificate chain of the issuer {host}:{port}: {e}") from None
    if not chain:
        raise OidcThumbprintError(f"the issuer {host}:{port} presented no certificate")
    return chain


def compute_issuer_thumbprint(url, validate_certs=True, ca_path=None, timeout=DEFAULT_TIMEOUT):
    """Return the thumbprint of the last certificate the issuer presents (the top of its chain)."""
    chain = fetch_certificate_chain(url, validate_certs=validate_certs, ca_path=ca_path, timeout=timeout)
    return sha1_thumbprint(chain[-1])
