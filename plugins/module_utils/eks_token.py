# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helpers to authenticate to Amazon EKS without the AWS CLI.

An EKS bearer token is what ``aws eks get-token`` and aws-iam-authenticator
produce: ``k8s-aws-v1.`` followed by the unpadded URL-safe base64 of a SigV4
presigned ``sts:GetCallerIdentity`` URL (HTTP GET, ``X-Amz-Expires=60``) whose
signature covers an ``x-k8s-aws-id: <cluster name>`` header. EKS replays the
URL against STS to learn who the caller is, and accepts the token for 15
minutes after ``X-Amz-Date``; like the CLI, the expiry is reported one minute
earlier.

The header is added the way the AWS CLI does it with botocore: a
``provide-client-params.sts.GetCallerIdentity`` handler moves the cluster name
from the call parameters into the request context, and a
``before-sign.sts.GetCallerIdentity`` handler turns it into a header just
before the request is signed, so that it ends up in ``X-Amz-SignedHeaders``.

The module also holds the helpers that build, compare and write the kubeconfig
file holding such a token.
"""

import base64
import binascii
import copy
import datetime
import os
import re
import tempfile
from urllib.parse import parse_qs, urlsplit

TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105 - the fixed token format prefix, not a secret
CLUSTER_ID_HEADER = "x-k8s-aws-id"
PRESIGN_EXPIRES_SECONDS = 60
# EKS accepts a token for 15 minutes after it was signed; the AWS CLI and
# aws-iam-authenticator report an expiry one minute earlier, for some cushion.
TOKEN_VALIDITY = datetime.timedelta(minutes=14)
ACCEPTED_CLUSTER_STATUSES = ("ACTIVE", "UPDATING")
TEMP_DIR_PREFIX = "eks-kubeconfig-"
TEMP_FILE_NAME = "kubeconfig"
REDACTED = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"

_CLUSTER_NAME_RE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,99}")
_ROLE_ARN_RE = re.compile(r"arn:aws[a-z-]*:iam::[0-9]{12}:role/[\w+=,.@/-]{1,512}")
_ROLE_SESSION_NAME_RE = re.compile(r"[\w+=,.@-]{2,64}")
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_HANDLER_ID = "layered-eks-rds-x-k8s-aws-id"


class EksTokenParameterError(ValueError):
    """Raised when an option value is unusable; the message names the option."""

    def __init__(self, option, message):
        self.option = option
        super().__init__(f"{option}: {message}")


class KubeconfigFileError(Exception):
    """Raised when an existing kubeconfig file cannot be read, replaced or deleted safely."""


# --------------------------------------------------------------------------- validation


def validate_cluster_name(name, option="cluster_name"):
    """Return the name if it follows the EKS rules: 1-100 of [0-9A-Za-z_-], starting with a letter or digit."""
    if name is None or not str(name).strip():
        raise EksTokenParameterError(option, "must be a non-empty EKS cluster name")
    name = str(name)
    if not _CLUSTER_NAME_RE.fullmatch(name):
        raise EksTokenParameterError(
            option,
            f"must be 1 to 100 letters, digits, hyphens or underscores, starting with a letter or digit, got {name!r}",
        )
    return name


def validate_endpoint(url, option="endpoint"):
    """Return the URL of a Kubernetes API server if it is an https URL with a host."""
    if url is None or not str(url).strip():
        raise EksTokenParameterError(option, "must be a non-empty https:// URL")
    url = str(url)
    if any(c.isspace() for c in url):
        raise EksTokenParameterError(option, f"must not contain spaces: {url!r}")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a port that is not a number in 0..65535
    except ValueError as e:
        raise EksTokenParameterError(option, f"is not a valid URL ({e}): {url!r}") from None
    if parts.scheme != "https":
        raise EksTokenParameterError(option, f"must be an https:// URL, got {url!r}")
    if port == 0:
        raise EksTokenParameterError(option, f"has an invalid port: {url!r}")
    if not parts.hostname or "@" in parts.netloc:
        raise EksTokenParameterError(option, f"must name a host, without user information: {url!r}")
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise EksTokenParameterError(option, f"must not contain a query string or fragment: {url!r}")
    return url


def validate_certificate_authority_data(data, option="certificate_authority_data"):
    """Return base64 CA data if it decodes to at least one PEM certificate, as EKS returns it."""
    if data is None or not str(data).strip():
        raise EksTokenParameterError(option, "must be non-empty base64 data")
    if _PEM_CERTIFICATE.decode() in str(data):
        raise EksTokenParameterError(
            option, "must be the base64 encoding of the PEM certificate(s), not the PEM text itself"
        )
    text = "".join(str(data).split())
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise EksTokenParameterError(option, "is not valid base64") from None
    if _PEM_CERTIFICATE not in decoded:
        raise EksTokenParameterError(option, "must decode to PEM certificate(s) (-----BEGIN CERTIFICATE-----)")
    return text


def validate_role_arn(arn, option="role_arn"):
    """Return the ARN if it is an IAM role ARN."""
    if arn is None or not _ROLE_ARN_RE.fullmatch(str(arn)):
        raise EksTokenParameterError(
            option, f"must be an IAM role ARN such as arn:aws:iam::123456789012:role/name, got {arn!r}"
        )
    return str(arn)


def validate_role_session_name(name, option="role_session_name"):
    """Return the name if STS accepts it as a role session name (2-64 of [A-Za-z0-9_+=,.@-])."""
    if name is None or not _ROLE_SESSION_NAME_RE.fullmatch(str(name)):
        raise EksTokenParameterError(option, f"must be 2 to 64 characters from [A-Za-z0-9_+=,.@-], got {name!r}")
    return str(name)


# --------------------------------------------------------------------------- token


def _retrieve_cluster_id(params, context, **kwargs):
    """provide-client-params handler: move the cluster name out of the API parameters into the context."""
    if CLUSTER_ID_HEADER in params:
        context[CLUSTER_ID_HEADER] = params.pop(CLUSTER_ID_HEADER)


def _inject_cluster_id_header(request, **kwargs):
    """before-sign handler: add the cluster name header so that the signature covers it."""
    if CLUSTER_ID_HEADER in request.context:
        request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


def register_cluster_id_handlers(sts_client):
    """Teach an STS client to carry ``x-k8s-aws-id`` from GetCallerIdentity parameters into a signed header."""
    events = sts_client.meta.events
    events.register(
        "provide-client-params.sts.GetCallerIdentity", _retrieve_cluster_id, unique_id=f"{_HANDLER_ID}-params"
    )
    events.register("before-sign.sts.GetCallerIdentity", _inject_cluster_id_header, unique_id=f"{_HANDLER_ID}-sign")


def presign_get_caller_identity(sts_client, cluster_name):
    """Return a presigned GetCallerIdentity URL whose signature covers ``x-k8s-aws-id: cluster_name``."""
    register_cluster_id_handlers(sts_client)
    return sts_client.generate_presigned_url(
        "get_caller_identity",
        Params={CLUSTER_ID_HEADER: cluster_name},
        ExpiresIn=PRESIGN_EXPIRES_SECONDS,
        HttpMethod="GET",
    )


def encode_token(presigned_url):
    """Wrap a presigned URL into an EKS bearer token."""
    encoded = base64.urlsafe_b64encode(presigned_url.encode("utf-8")).decode("ascii")
    return TOKEN_PREFIX + encoded.rstrip("=")


def decode_token(token):
    """Return the presigned URL inside an EKS bearer token (raises ValueError if it is not one)."""
    if not token or not token.startswith(TOKEN_PREFIX):
        raise ValueError(f"an EKS token starts with {TOKEN_PREFIX}")
    payload = token[len(TOKEN_PREFIX) :]
    payload += "=" * (-len(payload) % 4)
    return base64.urlsafe_b64decode(payload.encode("ascii")).decode("utf-8")


def generate_token(sts_client, cluster_name):
    """Return an EKS bearer token for cluster_name, signed with the credentials of sts_client."""
    return encode_token(presign_get_caller_identity(sts_client, cluster_name))


def presigned_url_signing_time(presigned_url):
    """Return X-Amz-Date of a presigned URL as an aware UTC datetime, or None."""
    stamp = parse_qs(urlsplit(presigned_url).query).get("X-Amz-Date", [None])[0]
    if not stamp:
        return None
    try:
        return datetime.datetime.strptime(stamp, _SIGV4_TIMESTAMP).replace(tzinfo=datetime.timezone.utc)
    except ValueError:
        return None


def token_expiry(token, now=None):
    """Return when a token should be considered expired: 14 minutes after it was signed (aware UTC)."""
    try:
        signed_at = presigned_url_signing_time(decode_token(token))
    except (ValueError, binascii.Error):  # UnicodeDecodeError is a ValueError too
        signed_at = None
    if signed_at is None:
        signed_at = now or datetime.datetime.now(datetime.timezone.utc)
    return signed_at + TOKEN_VALIDITY


def format_utc(moment):
    """Format an aware datetime as ISO 8601 UTC with a Z suffix, to the second (as the AWS CLI does)."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cluster_arn(partition, region, account_id, cluster_name):
    """Return the ARN of an EKS cluster."""
    return f"arn:{partition}:eks:{region}:{account_id}:cluster/{cluster_name}"


# --------------------------------------------------------------------------- kubeconfig


def build_kubeconfig(entry_name, endpoint, certificate_authority_data, token):
    """Return a kubeconfig (as a dict) with one cluster, user and context named entry_name.

    The layout follows ``aws eks update-kubeconfig`` (entries named after the
    cluster ARN), except that the user holds a static ``token`` instead of an
    ``exec`` credential plugin.
    """
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": entry_name,
                "cluster": {
                    "server": endpoint,
                    "certificate-authority-data": certificate_authority_data,
                },
            }
        ],
        "contexts": [{"name": entry_name, "context": {"cluster": entry_name, "user": entry_name}}],
        "current-context": entry_name,
        "preferences": {},
        "users": [{"name": entry_name, "user": {"token": token}}],
    }


def redact_kubeconfig(document):
    """Return a copy of a kubeconfig dict with user tokens replaced by a placeholder."""
    if not isinstance(document, dict):
        return document
    redacted = copy.deepcopy(document)
    for user in redacted.get("users") or []:
        if isinstance(user, dict) and isinstance(user.get("user"), dict) and "token" in user["user"]:
            user["user"]["token"] = REDACTED
    return redacted


def _entries(document, key):
    value = document.get(key)
    return value if isinstance(value, list) else []


def check_replaceable(document, path, cluster_name=None):
    """Raise KubeconfigFileError unless the file holding document may be overwritten or deleted.

    An empty file, or a kubeconfig with at most one cluster, context and user, may
    be; a shared kubeconfig with several entries (such as ``~/.kube/config``) or
    anything that is not a kubeconfig may not. With cluster_name, the single
    cluster entry must be named after that cluster (its name, or an EKS ARN ending
    in ``cluster/<name>``).
    """
    if document is None:
        return
    if not isinstance(document, dict) or document.get("kind", "Config") != "Config":
        raise KubeconfigFileError(f"kubeconfig_path: {path} exists and is not a kubeconfig file; not touching it")
    for key in ("clusters", "contexts", "users"):
        if len(_entries(document, key)) > 1:
            raise KubeconfigFileError(
                f"kubeconfig_path: {path} holds several {key}; this module manages a kubeconfig file of its own "
                "and does not edit shared ones, choose another path"
            )
    if cluster_name is not None:
        for cluster in _entries(document, "clusters"):
            name = str(cluster.get("name", "")) if isinstance(cluster, dict) else ""
            if name != cluster_name and not name.endswith(f":cluster/{cluster_name}"):
                raise KubeconfigFileError(
                    f"kubeconfig_path: {path} is a kubeconfig for {name!r}, not for the cluster {cluster_name!r}; "
                    "not deleting it"
                )


def make_private_temp_path():
    """Create a new directory only the current user can enter (0700) and return the path of a file in it."""
    directory = tempfile.mkdtemp(prefix=TEMP_DIR_PREFIX)
    os.chmod(directory, 0o700)
    return os.path.join(directory, TEMP_FILE_NAME)


def write_private_file(path, content):
    """Atomically replace path with content, mode 0600; missing parent directories are created 0700."""
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    fd, temp_path = tempfile.mkstemp(prefix=".kubeconfig-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_path, 0o600)
        os.replace(temp_path, path)
    except BaseException:
        if os.path.exists(temp_path):
            os.unlink(temp_path)
        raise


def remove_kubeconfig_file(path):
    """Delete path; also remove its directory when it is an empty private temp directory made for it."""
    os.unlink(path)
    directory = os.path.dirname(path)
    if os.path.basename(directory).startswith(TEMP_DIR_PREFIX) and not os.listdir(directory):
        os.rmdir(directory)
