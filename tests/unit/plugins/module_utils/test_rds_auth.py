# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import datetime

import pytest

from ansible_collections.layered.eks_rds.plugins.module_utils import rds_auth
from ansible_collections.layered.eks_rds.plugins.module_utils.rds_auth import RdsAuthParameterError

UTC = datetime.timezone.utc
TOKEN = (
    "db.example.com:5432/?Action=connect&DBUser=app.user-1&X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIDEXAMPLE%2F20240102%2Feu-west-1%2Frds-db%2Faws4_request"
    "&X-Amz-Date=20240102T030405Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=9c5d638ac8e94b08dcd3de8c12e1c0ac431608a74ed11f3bd05f3f51eca656a2"
)


def parse_libpq_conninfo(conninfo):
    """Parse a keyword/value string the way libpq's conninfo_parse() does (fe-connect.c)."""
    result = {}
    i, n = 0, len(conninfo)
    while i < n:
        while i < n and conninfo[i].isspace():
            i += 1
        if i >= n:
            break
        start = i
        while i < n and conninfo[i] != "=" and not conninfo[i].isspace():
            i += 1
        key = conninfo[start:i]
        while i < n and conninfo[i].isspace():
            i += 1
        assert i < n and conninfo[i] == "=", f"missing '=' after {key!r}"
        i += 1
        while i < n and conninfo[i].isspace():
            i += 1
        value = []
        if i < n and conninfo[i] == "'":
            i += 1
            while True:
                assert i < n, "unterminated quoted string"
                if conninfo[i] == "\\":
                    i += 1
                    if i < n:
                        value.append(conninfo[i])
                        i += 1
                elif conninfo[i] == "'":
                    i += 1
                    break
                else:
                    value.append(conninfo[i])
                    i += 1
        else:
            while i < n and not conninfo[i].isspace():
                if conninfo[i] == "\\":
                    i += 1
                    if i < n:
                        value.append(conninfo[i])
                        i += 1
                else:
                    value.append(conninfo[i])
                    i += 1
        result[key] = "".join(value)
    return result


# --------------------------------------------------------------------------- db_host


@pytest.mark.parametrize(
    "host",
    [
        "app.abcdefghijkl.eu-west-1.rds.amazonaws.com",
        "app.cluster-ro-abcdefghijkl.eu-west-1.rds.amazonaws.com",
        "localhost",
        "postgres_db",
        "10.0.12.34",
    ],
)
def test_validate_db_host_accepts(host):
    assert rds_auth.validate_db_host(host) == host


@pytest.mark.parametrize(
    "host, fragment",
    [
        (None, "non-empty"),
        ("", "non-empty"),
        ("  \t", "non-empty"),
        ("db example.com", "spaces"),
        (" db.example.com", "spaces"),
        ("https://db.example.com", "scheme"),
        ("postgresql://db.example.com", "scheme"),
        ("db.example.com/postgres", "path"),
        ("db.example.com?sslmode=require", "path"),
        ("user@db.example.com", "user information"),
        ("db.example.com:5432", "db_port"),
        ("db..example.com", "labels"),
        ("db.example.com.", "labels"),
        ("db.exa$mple.com", "labels"),
        ("a" * 64 + ".example.com", "labels"),
        (".".join(["a" * 60] * 5), "253"),
    ],
)
def test_validate_db_host_rejects(host, fragment):
    with pytest.raises(RdsAuthParameterError) as raised:
        rds_auth.validate_db_host(host)
    assert raised.value.option == "db_host"
    assert str(raised.value).startswith("db_host: ")
    assert fragment in str(raised.value)


def test_validate_db_host_names_custom_option():
    with pytest.raises(RdsAuthParameterError, match=r"^login_host: "):
        rds_auth.validate_db_host("", option="login_host")


# --------------------------------------------------------------------------- db_port


@pytest.mark.parametrize("port, expected", [(1, 1), (5432, 5432), (65535, 65535), ("6543", 6543)])
def test_validate_db_port_accepts(port, expected):
    assert rds_auth.validate_db_port(port) == expected


@pytest.mark.parametrize("port", [0, -1, 65536, 70000, None, "abc", True])
def test_validate_db_port_rejects(port):
    with pytest.raises(RdsAuthParameterError, match=r"^db_port: must be"):
        rds_auth.validate_db_port(port)


# --------------------------------------------------------------------------- db_user / db_name


@pytest.mark.parametrize("user", ["app_user", "app.user-1", "A", "a" * 63, "iam-user.2"])
def test_validate_db_user_accepts(user):
    assert rds_auth.validate_db_user(user) == user


@pytest.mark.parametrize(
    "user, fragment",
    [
        (None, "non-empty"),
        ("", "non-empty"),
        ("   ", "non-empty"),
        ("a" * 64, "at most 63"),
        ("app;drop", "[A-Za-z0-9_.-]"),
        ("app user", "[A-Za-z0-9_.-]"),
        ("app'user", "[A-Za-z0-9_.-]"),
        ('app"user', "[A-Za-z0-9_.-]"),
        ("app/user", "[A-Za-z0-9_.-]"),
        ("usér", "[A-Za-z0-9_.-]"),
        ("app\n", "[A-Za-z0-9_.-]"),
    ],
)
def test_validate_db_user_rejects(user, fragment):
    with pytest.raises(RdsAuthParameterError) as raised:
        rds_auth.validate_db_user(user)
    assert raised.value.option == "db_user"
    assert fragment in str(raised.value)


def test_validate_db_name():
    assert rds_auth.validate_db_name("my app") == "my app"
    for bad in (None, "", "  ", "x" * 64):
        with pytest.raises(RdsAuthParameterError, match=r"^db_name: "):
            rds_auth.validate_db_name(bad)


# --------------------------------------------------------------------------- identifiers and regions


@pytest.mark.parametrize("identifier", ["a", "app-pg", "App-PG-01", "a" * 63])
def test_validate_db_instance_identifier_accepts(identifier):
    assert rds_auth.validate_db_instance_identifier(identifier) == identifier


@pytest.mark.parametrize("identifier", [None, "", "1app", "app--pg", "app-", "app_pg", "app.pg", "a" * 64, "app-pg\n"])
def test_validate_db_instance_identifier_rejects(identifier):
    with pytest.raises(RdsAuthParameterError, match=r"^db_instance_identifier: "):
        rds_auth.validate_db_instance_identifier(identifier)


@pytest.mark.parametrize(
    "region",
    ["us-east-1", "eu-west-1", "eu-central-2", "ap-southeast-4", "us-gov-west-1", "cn-northwest-1", "us-isob-east-1"],
)
def test_validate_region_accepts(region):
    assert rds_auth.validate_region(region) == region


@pytest.mark.parametrize(
    "region",
    [None, "", "eu_west_1", "EU-WEST-1", "eu-west", "europe", "eu-west-1a", " eu-west-1", "eu-west-1 ", "eu-west-1\n"],
)
def test_validate_region_rejects(region):
    with pytest.raises(RdsAuthParameterError, match=r"^region: "):
        rds_auth.validate_region(region)


# --------------------------------------------------------------------------- libpq quoting


@pytest.mark.parametrize(
    "value, quoted",
    [
        ("postgres", "postgres"),
        ("app.user-1", "app.user-1"),
        (5432, "5432"),
        ("a=b", "a=b"),
        ("", "''"),
        ("my db", "'my db'"),
        ("tab\there", "'tab\there'"),
        ("it's", "'it\\'s'"),
        ("C:\\certs\\ca.pem", "'C:\\\\certs\\\\ca.pem'"),
        ("'", "'\\''"),
    ],
)
def test_libpq_quote(value, quoted):
    assert rds_auth.libpq_quote(value) == quoted


@pytest.mark.parametrize(
    "value",
    ["plain", "", "two words", "it's", "back\\slash", "'starts with quote", "ends\\", "mixed ' \\ \t\n", "a=b c=d"],
)
def test_libpq_quote_round_trips_through_libpq_parsing(value):
    parsed = parse_libpq_conninfo(f"dbname={rds_auth.libpq_quote(value)} user=app")
    assert parsed == {"dbname": value, "user": "app"}


def test_libpq_connection_string():
    conninfo = rds_auth.libpq_connection_string(
        host="db.example.com", port=5432, dbname="app", user="app_user", sslmode="verify-full"
    )
    assert conninfo == "host=db.example.com port=5432 dbname=app user=app_user sslmode=verify-full"


def test_libpq_connection_string_with_root_cert():
    conninfo = rds_auth.libpq_connection_string(
        host="db.example.com",
        port=6543,
        dbname="my db",
        user="app_user",
        sslmode="verify-ca",
        sslrootcert="/certs/rds bundle.pem",
    )
    assert conninfo == (
        "host=db.example.com port=6543 dbname='my db' user=app_user sslmode=verify-ca "
        "sslrootcert='/certs/rds bundle.pem'"
    )
    assert parse_libpq_conninfo(conninfo) == {
        "host": "db.example.com",
        "port": "6543",
        "dbname": "my db",
        "user": "app_user",
        "sslmode": "verify-ca",
        "sslrootcert": "/certs/rds bundle.pem",
    }


# --------------------------------------------------------------------------- expiry


def test_token_signing_time_and_lifetime():
    assert rds_auth.token_signing_time(TOKEN) == datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert rds_auth.token_lifetime(TOKEN) == 900


@pytest.mark.parametrize("token", [None, "", "db:5432/?Action=connect", "db:5432/?X-Amz-Date=yesterday"])
def test_token_signing_time_missing(token):
    assert rds_auth.token_signing_time(token) is None
    assert rds_auth.token_lifetime(token) == rds_auth.TOKEN_LIFETIME_SECONDS


def test_compute_expiry_naive_and_aware():
    naive = datetime.datetime(2026, 12, 31, 23, 50, 0)
    aware = datetime.datetime(2027, 1, 1, 1, 50, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    expected = datetime.datetime(2027, 1, 1, 0, 5, 0, tzinfo=UTC)

    assert rds_auth.compute_expiry(naive) == expected
    assert rds_auth.compute_expiry(aware) == expected
    assert rds_auth.compute_expiry(naive, 60) == datetime.datetime(2026, 12, 31, 23, 51, 0, tzinfo=UTC)


def test_format_utc():
    offset = datetime.timezone(datetime.timedelta(hours=-5))
    assert rds_auth.format_utc(datetime.datetime(2026, 3, 4, 5, 21, 7, 999, tzinfo=UTC)) == "2026-03-04T05:21:07Z"
    assert rds_auth.format_utc(datetime.datetime(2026, 3, 4, 0, 21, 7, tzinfo=offset)) == "2026-03-04T05:21:07Z"
    assert rds_auth.format_utc(datetime.datetime(2026, 3, 4, 5, 21, 7)) == "2026-03-04T05:21:07Z"


def test_expiry_of_token_is_fifteen_minutes_after_x_amz_date():
    expiry = rds_auth.compute_expiry(rds_auth.token_signing_time(TOKEN), rds_auth.token_lifetime(TOKEN))
    assert rds_auth.format_utc(expiry) == "2024-01-02T03:19:05Z"
