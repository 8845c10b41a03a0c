# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure helpers for Amazon RDS IAM database authentication.

Nothing in here talks to AWS: these functions validate connection parameters,
build libpq connection strings and work out when a signed token expires, so
that any module (or plugin) generating or consuming RDS auth tokens can reuse
them.
"""

import datetime
import re
from urllib.parse import parse_qs, urlsplit

# RDS auth tokens are SigV4 presigned URLs that AWS accepts for 15 minutes.
TOKEN_LIFETIME_SECONDS = 900

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# IAM database authentication only works over TLS; these modes may fall back to
# (or insist on) a plain-text connection.
SSL_MODES_WITHOUT_TLS_GUARANTEE = ("disable", "allow", "prefer")

# PostgreSQL truncates identifiers to NAMEDATALEN - 1 bytes.
PG_IDENTIFIER_MAX_LENGTH = 63
_PG_USER_RE = re.compile(r"[A-Za-z0-9_.-]+")
_HOST_LABEL_RE = re.compile(r"[A-Za-z0-9_-]{1,63}")
_HOST_MAX_LENGTH = 253
# us-east-1, eu-central-2, us-gov-west-1, cn-northwest-1, us-isob-east-1, ...
# RDS: 1-63 letters, digits or hyphens, starting with a letter, no "--", no trailing "-".
_DB_INSTANCE_IDENTIFIER_RE = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)")
_REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]+")
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"


class RdsAuthParameterError(ValueError):
    """Raised when a connection parameter is unusable; the message names the option."""

    def __init__(self, option, message):
        self.option = option
        super().__init__(f"{option}: {message}")


def validate_db_host(host, option="db_host"):
    """Return the host name unchanged if it is a bare DNS name or IPv4 address.

    Raises RdsAuthParameterError for an empty value, a URL (scheme, path, query),
    embedded whitespace, an embedded port or characters a host name cannot contain.
    """
    if host is None or not str(host).strip():
        raise RdsAuthParameterError(option, "must be a non-empty host name")
    host = str(host)
    if any(c.isspace() for c in host):
        raise RdsAuthParameterError(option, f"must not contain spaces: {host!r}")
    if "://" in host:
        raise RdsAuthParameterError(option, f"must be a bare host name without a scheme such as https://: {host!r}")
    if any(c in host for c in "/?#"):
        raise RdsAuthParameterError(option, f"must be a bare host name without a path or query: {host!r}")
    if "@" in host:
        raise RdsAuthParameterError(option, f"must not contain user information: {host!r}")
    if ":" in host:
        raise RdsAuthParameterError(option, f"must not include a port, set db_port instead: {host!r}")
    if len(host) > _HOST_MAX_LENGTH:
        raise RdsAuthParameterError(option, f"must be at most {_HOST_MAX_LENGTH} characters long")
    if not all(_HOST_LABEL_RE.fullmatch(label) for label in host.split(".")):
        raise RdsAuthParameterError(
            option,
            f"must be a DNS name or IPv4 address made of dot-separated labels of [A-Za-z0-9_-]: {host!r}",
        )
    return host


def validate_db_port(port, option="db_port"):
    """Return the port as an int if it is within 1..65535."""
    try:
        value = int(port)
    except (TypeError, ValueError):
        raise RdsAuthParameterError(option, f"must be an integer between 1 and 65535, got {port!r}") from None
    if isinstance(port, bool) or not 1 <= value <= 65535:
        raise RdsAuthParameterError(option, f"must be between 1 and 65535, got {port!r}")
    return value


def validate_db_user(user, option="db_user"):
    """Return the user name if it is a PostgreSQL-safe identifier ([A-Za-z0-9_.-], at most 63 characters)."""
    if user is None or not str(user).strip():
        raise RdsAuthParameterError(option, "must be a non-empty database user name")
    user = str(user)
    if len(user) > PG_IDENTIFIER_MAX_LENGTH:
        raise RdsAuthParameterError(
            option, f"must be at most {PG_IDENTIFIER_MAX_LENGTH} characters long, got {len(user)}"
        )
    if not _PG_USER_RE.fullmatch(user):
        raise RdsAuthParameterError(option, f"may only contain the characters [A-Za-z0-9_.-], got {user!r}")
    return user


def validate_db_name(name, option="db_name"):
    """Return the database name if it is not empty and fits in a PostgreSQL identifier."""
    if name is None or not str(name).strip():
        raise RdsAuthParameterError(option, "must be a non-empty database name")
    name = str(name)
    if len(name.encode("utf-8")) > PG_IDENTIFIER_MAX_LENGTH:
        raise RdsAuthParameterError(option, f"must be at most {PG_IDENTIFIER_MAX_LENGTH} bytes long")
    return name


def validate_db_instance_identifier(identifier, option="db_instance_identifier"):
    """Return the identifier if it follows the RDS DB instance identifier rules."""
    if identifier is None or not str(identifier).strip():
        raise RdsAuthParameterError(option, "must be a non-empty DB instance identifier")
    identifier = str(identifier)
    if not _DB_INSTANCE_IDENTIFIER_RE.fullmatch(identifier):
        raise RdsAuthParameterError(
            option,
            "must be 1 to 63 letters, digits or hyphens, start with a letter, and neither end with a hyphen "
            f"nor contain two consecutive hyphens: {identifier!r}",
        )
    return identifier


def validate_region(region, option="region"):
    """Return the region name if it looks like an AWS region (for example eu-west-1)."""
    if region is None or not str(region).strip():
        raise RdsAuthParameterError(option, "must be set")
    region = str(region)
    if not _REGION_RE.fullmatch(region):
        raise RdsAuthParameterError(option, f"is not a valid AWS region name such as eu-west-1: {region!r}")
    return region


def libpq_quote(value):
    """Quote a value for a libpq keyword/value connection string.

    Values that are empty or contain whitespace, single quotes or backslashes are
    wrapped in single quotes, with single quotes and backslashes escaped by a
    backslash; anything else is returned verbatim.
    """
    value = str(value)
    if value and not any(c.isspace() or c in "'\\" for c in value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def libpq_connection_string(host, port, dbname, user, sslmode, *, sslrootcert=None):
    """Build a libpq keyword/value connection string.

    The password (the auth token) is deliberately not part of it: pass it through
    PGPASSWORD or the client's password parameter so it never lands in a DSN that
    might be logged.
    """
    pairs = [
        ("host", host),
        ("port", port),
        ("dbname", dbname),
        ("user", user),
        ("sslmode", sslmode),
    ]
    if sslrootcert:
        pairs.append(("sslrootcert", sslrootcert))
    return " ".join(f"{key}={libpq_quote(value)}" for key, value in pairs)


def token_signing_time(token):
    """Return the X-Amz-Date of a presigned RDS auth token as an aware UTC datetime, or None."""
    query = parse_qs(urlsplit("//" + token).query) if token else {}
    stamp = query.get("X-Amz-Date", [None])[0]
    if not stamp:
        return None
    try:
        signed = datetime.datetime.strptime(stamp, _SIGV4_TIMESTAMP)
    except ValueError:
        return None
    return signed.replace(tzinfo=datetime.timezone.utc)


def token_lifetime(token, default=TOKEN_LIFETIME_SECONDS):
    """Return the X-Amz-Expires of a presigned RDS auth token in seconds (default when absent)."""
    query = parse_qs(urlsplit("//" + token).query) if token else {}
    try:
        return int(query["X-Amz-Expires"][0])
    except (KeyError, IndexError, ValueError):
        return default


def compute_expiry(signed_at, lifetime=TOKEN_LIFETIME_SECONDS):
    """Return the expiry instant for a token signed at signed_at, as an aware UTC datetime."""
    if signed_at.tzinfo is None:
        signed_at = signed_at.replace(tzinfo=datetime.timezone.utc)
    return signed_at.astimezone(datetime.timezone.utc) + datetime.timedelta(seconds=lifetime)


def format_utc(moment):
    """Format an aware (or naive UTC) datetime as ISO 8601 with a Z suffix, to the second."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
