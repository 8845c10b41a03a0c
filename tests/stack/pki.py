"""Certificates and keys for the local stack.

Creates, once, under a stack directory:

* ``ca.crt``/``ca.key``: the local CA (also the cluster signing CA, so CSRs
  approved in the cluster are signed by it);
* ``apiserver.crt``/``.key``: kube-apiserver serving certificate, and
  ``apiserver-chain.crt``, the leaf followed by the CA, which the apiserver
  presents (so TLS clients, like IAM OIDC thumbprinting, see the whole chain);
* ``admin.crt``/``.key``: client certificate in ``system:masters``;
* ``controller-manager.crt``/``.key``: ``system:kube-controller-manager``;
* ``scheduler.crt``/``.key``: ``system:kube-scheduler``;
* ``postgres.crt``/``.key``: PostgreSQL server certificate (TLS is forced), valid for localhost,
  127.0.0.1 and the endpoint names of moto's RDS DB instances, ``*.aaaaaaaaaa.<region>.rds.amazonaws.com``,
  for the stack's region (``LAYERED_AWS_REGION``, default eu-west-1) and any ``--rds-region``, so clients
  reach it with ``sslmode=verify-full`` under an instance's endpoint address;
* ``sa.key``/``sa.pub``: the service-account signing key pair, unless the
  caller points ``--sa-key`` at a key of its own (self-hosted OIDC tests do).

Existing files are kept, so re-running is a no-op, except that a postgres
certificate lacking one of those names is issued again. Private keys are
written with mode 0600.
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=365)
DEFAULT_REGION = "eu-west-1"
# moto 5.2's DescribeDBInstances Endpoint.Address: <identifier>.aaaaaaaaaa.<region>.rds.amazonaws.com
RDS_ENDPOINT_WILDCARD = "*.aaaaaaaaaa.{region}.rds.amazonaws.com"


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _load_key(path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SystemExit(f"{path}: expected an RSA private key")
    return key


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def ensure_ca(directory: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    crt, key = directory / "ca.crt", directory / "ca.key"
    if crt.exists() and key.exists():
        return x509.load_pem_x509_certificate(crt.read_bytes()), _load_key(key)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    name = _name("layered-eks-rds-local-ca")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY * 5)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key, ca_key)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert, ca_key


def _has_names(path: Path, names: tuple[str, ...], ips: tuple[str, ...]) -> bool:
    """Whether the certificate at path carries all these DNS and IP subject alternative names."""
    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (ValueError, x509.ExtensionNotFound):
        return False
    have_names = set(sans.get_values_for_type(x509.DNSName))
    have_ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    return set(names) <= have_names and {str(ipaddress.ip_address(ip)) for ip in ips} <= have_ips


def postgres_server_names(regions: tuple[str, ...] = ()) -> tuple[str, ...]:
    """localhost and the RDS endpoint wildcard of each region (default: LAYERED_AWS_REGION or eu-west-1)."""
    wanted = regions or (os.environ.get("LAYERED_AWS_REGION") or DEFAULT_REGION,)
    names = ["localhost"]
    for region in wanted:
        name = RDS_ENDPOINT_WILDCARD.format(region=region)
        if name not in names:
            names.append(name)
    return tuple(names)


def ensure_leaf(
    directory: Path,
    stem: str,
    ca: tuple[x509.Certificate, rsa.RSAPrivateKey],
    common_name: str,
    *,
    organization: str | None = None,
    server_names: tuple[str, ...] = (),
    server_ips: tuple[str, ...] = (),
    client: bool = False,
    reissue_without_names: bool = False,
) -> None:
    crt, key_path = directory / f"{stem}.crt", directory / f"{stem}.key"
    if crt.exists() and key_path.exists() and (not reissue_without_names or _has_names(crt, server_names, server_ips)):
        return
    ca_cert, ca_key = ca
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.timezone.utc)
    usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organization))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server_names or server_ips:
        sans: list[x509.GeneralName] = [x509.DNSName(n) for n in server_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in server_ips]
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_key(key_path, key)
    crt.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def ensure_sa_keypair(key_path: Path, pub_path: Path) -> None:
    if not key_path.exists():
        _write_key(key_path, rsa.generate_private_key(public_exponent=65537, key_size=2048))
    if not pub_path.exists():
        pub = _load_key(key_path).public_key()
        pub_path.write_bytes(
            pub.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--sa-key", type=Path, help="service-account signing key (default: <dir>/sa.key)")
    parser.add_argument(
        "--rds-region",
        action="append",
        default=[],
        help="region whose RDS endpoint names the postgres certificate covers (repeatable; default: "
        "LAYERED_AWS_REGION or eu-west-1)",
    )
    args = parser.parse_args()
    directory: Path = args.directory
    directory.mkdir(parents=True, exist_ok=True)
    ca = ensure_ca(directory)
    ensure_leaf(
        directory,
        "apiserver",
        ca,
        "kube-apiserver",
        server_names=(
            "localhost",
            "kubernetes",
            "kubernetes.default",
            "kubernetes.default.svc",
            "kubernetes.default.svc.cluster.local",
        ),
        server_ips=("127.0.0.1", "10.96.0.1"),
    )
    chain = directory / "apiserver-chain.crt"
    chain.write_bytes((directory / "apiserver.crt").read_bytes() + (directory / "ca.crt").read_bytes())
    ensure_leaf(directory, "admin", ca, "layered-admin", organization="system:masters", client=True)
    ensure_leaf(directory, "controller-manager", ca, "system:kube-controller-manager", client=True)
    ensure_leaf(directory, "scheduler", ca, "system:kube-scheduler", client=True)
    ensure_leaf(
        directory,
        "postgres",
        ca,
        "localhost",
        server_names=postgres_server_names(tuple(args.rds_region)),
        server_ips=("127.0.0.1",),
        reissue_without_names=True,
    )
    sa_key = args.sa_key or directory / "sa.key"
    ensure_sa_keypair(sa_key, sa_key.with_suffix(".pub"))


if __name__ == "__main__":
    main()
