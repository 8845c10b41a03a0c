# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import datetime
import hashlib
import hmac
import os
from unittest import mock
from urllib.parse import parse_qs, quote, urlsplit

import boto3
import pytest
from _harness import ModuleFail, clean_aws_env, fail_result, module_outcomes, patch_exits, record_retrying_clients
from ansible.module_utils import basic
from moto import mock_aws

from ansible_collections.layered.eks_rds.plugins.modules import rds_auth_token

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
HOST = "app.abcdefghijkl.eu-west-1.rds.amazonaws.com"
FROZEN_NOW = datetime.datetime(2026, 3, 4, 5, 6, 7)
FROZEN_EXPIRY = "2026-03-04T05:21:07Z"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    clean_aws_env(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY)


@pytest.fixture(autouse=True)
def module_exits(monkeypatch):
    patch_exits(monkeypatch)


@pytest.fixture
def frozen_time(monkeypatch):
    """Freeze the clock botocore's SigV4 signers read (botocore.auth.get_current_datetime)."""
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda remove_tzinfo=True: FROZEN_NOW)
    return FROZEN_NOW


succeed, fail = module_outcomes(rds_auth_token.main, diff=False)


def _hmac(key, message):
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def sigv4_presign(host, port, user, region, access_key, secret_key, when, expires=900):
    """RDS auth token derived straight from the SigV4 query-string signing specification."""
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    date_stamp = when.strftime("%Y%m%d")
    service = "rds-db"
    scope = f"{date_stamp}/{region}/{service}/aws4_request"
    query = {
        "Action": "connect",
        "DBUser": user,
        "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
        "X-Amz-Credential": f"{access_key}/{scope}",
        "X-Amz-Date": amz_date,
        "X-Amz-Expires": str(expires),
        "X-Amz-SignedHeaders": "host",
    }
    canonical_query = "&".join(
        f"{quote(key, safe='-_.~')}={quote(value, safe='-_.~')}" for key, value in sorted(query.items())
    )
    canonical_headers = f"host:{host}:{port}\n"
    canonical_request = "\n".join(
        ["GET", "/", canonical_query, canonical_headers, "host", hashlib.sha256(b"").hexdigest()]
    )
    string_to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()]
    )
    signing_key = _hmac(("AWS4" + secret_key).encode("utf-8"), date_stamp)
    for part in (region, service, "aws4_request"):
        signing_key = _hmac(signing_key, part)
    signature = hmac.new(signing_key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    return f"{host}:{port}/?{canonical_query}&X-Amz-Signature={signature}"


def token_query(token):
    return parse_qs(urlsplit("//" + token).query, strict_parsing=True)


# --------------------------------------------------------------------------- signing


@pytest.mark.parametrize("user", ["app_user", "app.user-1"])
@pytest.mark.parametrize("port", [5432, 6543])
def test_token_matches_independent_sigv4_presign(frozen_time, user, port):
    result = succeed(dict(db_host=HOST, db_port=port, db_user=user, region=REGION))

    expected = sigv4_presign(HOST, port, user, REGION, ACCESS_KEY, SECRET_KEY, frozen_time)
    assert result["token"] == expected


def test_token_shape(frozen_time):
    result = succeed(dict(host=HOST, port=5432, user="app.user-1", region=REGION))
    token = result["token"]

    assert token.startswith(f"{HOST}:5432/?")
    query = token_query(token)
    assert query["Action"] == ["connect"]
    assert query["DBUser"] == ["app.user-1"]
    assert query["X-Amz-Expires"] == ["900"]
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert query["X-Amz-Date"] == ["20260304T050607Z"]
    assert query["X-Amz-Credential"] == [f"{ACCESS_KEY}/20260304/{REGION}/rds-db/aws4_request"]
    assert "X-Amz-Security-Token" not in query
    assert "&X-Amz-Expires=900&" in token
    assert "Action=connect&" in token
    assert "&DBUser=app.user-1&" in token


def test_result_fields(frozen_time):
    result = succeed(dict(db_host=HOST, db_user="app_user", db_name="app", region=REGION))

    assert result["changed"] is False
    assert result["expires_at"] == FROZEN_EXPIRY
    assert result["expires_in"] == 900
    assert result["host"] == HOST
    assert result["port"] == 5432
    assert result["user"] == "app_user"
    assert result["region"] == REGION
    assert result["connection_string"] == (f"host={HOST} port=5432 dbname=app user=app_user sslmode=verify-full")
    assert "diff" not in result


def test_expires_at_is_fifteen_minutes_after_signing(frozen_time):
    result = succeed(dict(db_host=HOST, db_user="app_user", region=REGION))

    expires_at = datetime.datetime.strptime(result["expires_at"], "%Y-%m-%dT%H:%M:%SZ")
    assert expires_at - frozen_time == datetime.timedelta(minutes=15)


def test_expires_at_follows_real_clock_without_freezing():
    before = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    result = succeed(dict(db_host=HOST, db_user="app_user", region=REGION))
    after = datetime.datetime.now(datetime.timezone.utc)

    expires_at = datetime.datetime.strptime(result["expires_at"], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc
    )
    fifteen = datetime.timedelta(minutes=15)
    assert before + fifteen <= expires_at <= after + fifteen


def test_token_is_not_masked_in_result(frozen_time):
    result = succeed(dict(db_host=HOST, db_user="app_user", region=REGION))

    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" not in result["token"]
    assert "X-Amz-Signature=" in result["token"]


def test_check_mode_returns_token(frozen_time):
    result = succeed(dict(db_host=HOST, db_user="app_user", region=REGION, _ansible_check_mode=True))

    assert result["changed"] is False
    assert result["token"] == sigv4_presign(HOST, 5432, "app_user", REGION, ACCESS_KEY, SECRET_KEY, frozen_time)


def test_region_from_environment(frozen_time, monkeypatch):
    monkeypatch.setenv("AWS_REGION", "us-west-2")
    result = succeed(dict(db_host=HOST, db_user="app_user"))

    assert result["region"] == "us-west-2"
    assert result["token"] == sigv4_presign(HOST, 5432, "app_user", "us-west-2", ACCESS_KEY, SECRET_KEY, frozen_time)


def test_session_token_is_signed_into_the_token(frozen_time, monkeypatch):
    monkeypatch.setenv("AWS_SESSION_TOKEN", "FwoGZXIvYXdzEXAMPLE")
    result = succeed(dict(db_host=HOST, db_user="app_user", region=REGION))

    assert token_query(result["token"])["X-Amz-Security-Token"] == ["FwoGZXIvYXdzEXAMPLE"]


def test_connection_string_quotes_values_and_adds_root_cert(frozen_time):
    result = succeed(
        dict(
            db_host=HOST,
            db_user="app_user",
            db_name="my app's db",
            region=REGION,
            ssl_mode="verify-ca",
            ssl_root_cert="/etc/ssl/rds certs/global-bundle.pem",
        )
    )

    assert result["connection_string"] == (
        f"host={HOST} port=5432 dbname='my app\\'s db' user=app_user sslmode=verify-ca "
        "sslrootcert='/etc/ssl/rds certs/global-bundle.pem'"
    )
    assert result["token"] not in result["connection_string"]
    assert "X-Amz-Signature" not in result["connection_string"]


@pytest.mark.parametrize("ssl_mode", ["disable", "allow", "prefer"])
def test_weak_ssl_modes_warn(frozen_time, ssl_mode):
    with mock.patch.object(basic.AnsibleModule, "warn") as warn:
        result = succeed(dict(db_host=HOST, db_user="app_user", region=REGION, ssl_mode=ssl_mode))

    assert f"sslmode={ssl_mode}" in result["connection_string"]
    assert any("TLS" in call.args[0] for call in warn.call_args_list)


def test_missing_credentials_fail_clearly(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    monkeypatch.setattr("botocore.credentials.InstanceMetadataProvider.load", lambda self: None)
    monkeypatch.setattr("botocore.credentials.ContainerProvider.load", lambda self: None)

    result = fail(dict(db_host=HOST, db_user="app_user", region=REGION))
    assert "Failed to generate an RDS IAM authentication token" in result["msg"]
    assert "credentials" in result["msg"].lower()


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "overrides, option",
    [
        (dict(db_host=""), "db_host"),
        (dict(db_host="   "), "db_host"),
        (dict(db_host="https://" + HOST), "db_host"),
        (dict(db_host=HOST + "/postgres"), "db_host"),
        (dict(db_host="db .example.com"), "db_host"),
        (dict(db_host=HOST + ":5432"), "db_host"),
        (dict(db_port=0), "db_port"),
        (dict(db_port=70000), "db_port"),
        (dict(db_port=-1), "db_port"),
        (dict(db_user=""), "db_user"),
        (dict(db_user="   "), "db_user"),
        (dict(db_user="app;drop"), "db_user"),
        (dict(db_user="app user"), "db_user"),
        (dict(db_user="a" * 64), "db_user"),
        (dict(db_name=""), "db_name"),
        (dict(region="eu_west_1"), "region"),
        (dict(region="Moon-Base-1"), "region"),
    ],
)
def test_bad_input_fails_before_any_api_call(no_clients, overrides, option):
    args = dict(db_host=HOST, db_port=5432, db_user="app_user", region=REGION)
    args.update(overrides)

    result = fail(args)

    assert result["msg"].startswith(f"{option}:"), result["msg"]
    assert result["option"] == option
    assert no_clients == []


@pytest.mark.parametrize("identifier", ["1starts-with-digit", "double--hyphen", "trailing-", "has_underscore"])
def test_bad_instance_identifier_fails_before_any_api_call(no_clients, identifier):
    result = fail(dict(db_instance_identifier=identifier, db_user="app_user", region=REGION))

    assert result["msg"].startswith("db_instance_identifier:")
    assert no_clients == []


def test_missing_region_fails_before_any_api_call(no_clients):
    result = fail(dict(db_host=HOST, db_user="app_user"))

    assert result["msg"].startswith("region:")
    assert result["option"] == "region"
    assert no_clients == []


def test_host_and_instance_are_mutually_exclusive(no_clients):
    result = fail(dict(db_host=HOST, db_instance_identifier="app-pg", db_user="app_user", region=REGION))

    assert "mutually exclusive" in result["msg"]
    assert no_clients == []


def test_host_or_instance_is_required(no_clients):
    result = fail(dict(db_user="app_user", region=REGION))

    assert "db_host" in result["msg"] and "db_instance_identifier" in result["msg"]
    assert no_clients == []


def test_user_is_required(no_clients):
    result = fail(dict(db_host=HOST, region=REGION))

    assert "db_user" in result["msg"]
    assert no_clients == []


def test_bad_ssl_mode_is_rejected(no_clients):
    result = fail(dict(db_host=HOST, db_user="app_user", region=REGION, ssl_mode="verify"))

    assert "ssl_mode" in result["msg"]
    assert no_clients == []


# --------------------------------------------------------------------------- db_instance_identifier


def _create_instance(identifier, iam_auth, region="us-east-1"):
    client = boto3.client("rds", region_name=region)
    client.create_db_instance(
        DBInstanceIdentifier=identifier,
        DBInstanceClass="db.t4g.micro",
        Engine="postgres",
        MasterUsername="master",
        MasterUserPassword="not-a-real-password",
        AllocatedStorage=20,
        EnableIAMDatabaseAuthentication=iam_auth,
    )
    return client.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


@mock_aws
def test_instance_endpoint_is_resolved(frozen_time):
    instance = _create_instance("app-pg", iam_auth=True)
    address, port = instance["Endpoint"]["Address"], instance["Endpoint"]["Port"]

    result = succeed(dict(db_instance_identifier="app-pg", db_user="app_user", db_name="app", region="us-east-1"))

    assert result["host"] == address
    assert result["port"] == port
    assert result["token"].startswith(f"{address}:{port}/?")
    assert result["token"] == sigv4_presign(
        address,
        port,
        "app_user",
        "us-east-1",
        os.environ["AWS_ACCESS_KEY_ID"],
        os.environ["AWS_SECRET_ACCESS_KEY"],
        frozen_time,
    )
    assert result["connection_string"].startswith(f"host={address} port={port} dbname=app user=app_user ")


@mock_aws
def test_instance_port_overrides_db_port(frozen_time):
    instance = _create_instance("app-pg", iam_auth=True)

    result = succeed(dict(db_instance_identifier="app-pg", db_port=1234, db_user="app_user", region="us-east-1"))

    assert result["port"] == instance["Endpoint"]["Port"] != 1234


@mock_aws
def test_instance_without_iam_auth_fails():
    _create_instance("legacy-pg", iam_auth=False)

    result = fail(dict(db_instance_identifier="legacy-pg", db_user="app_user", region="us-east-1"))

    assert "IAM database authentication is not enabled" in result["msg"]
    assert "'legacy-pg'" in result["msg"]


@mock_aws
def test_missing_instance_fails():
    _create_instance("app-pg", iam_auth=True)

    result = fail(dict(db_instance_identifier="nope-pg", db_user="app_user", region="us-east-1"))

    assert result["msg"] == "db_instance_identifier: DB instance 'nope-pg' was not found in region us-east-1"


@mock_aws
def test_instance_in_another_region_is_not_found():
    _create_instance("app-pg", iam_auth=True, region="us-east-1")

    result = fail(dict(db_instance_identifier="app-pg", db_user="app_user", region="eu-west-1"))

    assert "'app-pg' was not found in region eu-west-1" in result["msg"]


def test_describe_uses_retries():
    client = mock.Mock()
    client.describe_db_instances.return_value = {
        "DBInstances": [
            {
                "DBInstanceIdentifier": "app-pg",
                "IAMDatabaseAuthenticationEnabled": True,
                "Endpoint": {"Address": HOST, "Port": 5432},
            }
        ]
    }

    address, port = rds_auth_token.describe_instance_endpoint(mock.Mock(), client, "app-pg", REGION)

    client.describe_db_instances.assert_called_once_with(DBInstanceIdentifier="app-pg", aws_retry=True)
    assert (address, port) == (HOST, 5432)


def test_instance_without_endpoint_fails():
    client = mock.Mock()
    client.describe_db_instances.return_value = {
        "DBInstances": [
            {"DBInstanceIdentifier": "app-pg", "IAMDatabaseAuthenticationEnabled": True, "DBInstanceStatus": "creating"}
        ]
    }
    module = mock.Mock()
    module.fail_json.side_effect = fail_result

    with pytest.raises(ModuleFail) as raised:
        rds_auth_token.describe_instance_endpoint(module, client, "app-pg", REGION)

    assert "'app-pg' has no endpoint yet (status: creating)" in raised.value.result["msg"]


def test_module_client_uses_jittered_backoff(frozen_time, monkeypatch):
    calls, decorators = record_retrying_clients(monkeypatch, rds_auth_token)
    succeed(dict(db_host=HOST, db_user="app_user", region=REGION))

    assert len(decorators) == 1
    assert calls == [("rds", decorators[0])]
