# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import base64
import datetime
import os
import stat
from urllib.parse import parse_qs, urlsplit

import botocore.session
import pytest
from botocore.credentials import Credentials
from botocore.hooks import HierarchicalEmitter
from botocore.model import ServiceId
from botocore.signers import RequestSigner

from ansible_collections.layered.eks_rds.plugins.module_utils import eks_token
from ansible_collections.layered.eks_rds.plugins.module_utils.eks_token import (
    EksTokenParameterError,
    KubeconfigFileError,
)

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN//+="
REGION = "eu-west-1"
FROZEN_NOW = datetime.datetime(2026, 3, 4, 5, 6, 7)
UTC = datetime.timezone.utc
CA_DATA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()


@pytest.fixture(autouse=True)
def isolated_aws(monkeypatch, tmp_path):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def frozen_time(monkeypatch):
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda remove_tzinfo=True: FROZEN_NOW)
    return FROZEN_NOW


def sts_client(region=REGION, session_token=None):
    return botocore.session.get_session().create_client(
        "sts",
        region_name=region,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        aws_session_token=session_token,
    )


def independent_presign(cluster_name, region=REGION, session_token=None):
    """Presign GetCallerIdentity with botocore's RequestSigner directly, the header set on the request itself."""
    emitter = HierarchicalEmitter()  # the signer only keeps a weak reference to it
    signer = RequestSigner(
        ServiceId("sts"), region, "sts", "v4", Credentials(ACCESS_KEY, SECRET_KEY, session_token), emitter
    )
    request = {
        "method": "GET",
        "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        "body": {},
        "headers": {"x-k8s-aws-id": cluster_name},
        "context": {},
    }
    return signer.generate_presigned_url(request, region_name=region, expires_in=60, operation_name="")


def query(url):
    return parse_qs(urlsplit(url).query, strict_parsing=True)


# --------------------------------------------------------------------------- token


@pytest.mark.parametrize("cluster_name", ["demo", "Prod_cluster-01", "a" * 100])
def test_token_wraps_the_same_presigned_url_as_an_independent_presign(frozen_time, cluster_name):
    token = eks_token.generate_token(sts_client(), cluster_name)

    assert token.startswith("k8s-aws-v1.")
    assert "=" not in token
    assert eks_token.decode_token(token) == independent_presign(cluster_name)


def test_presigned_url_shape(frozen_time):
    url = eks_token.decode_token(eks_token.generate_token(sts_client(), "demo"))

    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "sts.eu-west-1.amazonaws.com", "/")
    assert url.startswith("https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&")
    params = query(url)
    assert params["Action"] == ["GetCallerIdentity"]
    assert params["Version"] == ["2011-06-15"]
    assert params["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert params["X-Amz-Credential"] == [f"{ACCESS_KEY}/20260304/{REGION}/sts/aws4_request"]
    assert params["X-Amz-Date"] == ["20260304T050607Z"]
    assert params["X-Amz-Expires"] == ["60"]
    assert params["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert len(params["X-Amz-Signature"][0]) == 64
    assert "X-Amz-Security-Token" not in params


def test_token_with_session_credentials(frozen_time):
    url = eks_token.decode_token(eks_token.generate_token(sts_client(session_token=SESSION_TOKEN), "demo"))

    assert query(url)["X-Amz-Security-Token"] == [SESSION_TOKEN]
    assert url == independent_presign("demo", session_token=SESSION_TOKEN)


def test_the_cluster_name_is_signed(frozen_time):
    client = sts_client()
    one = eks_token.decode_token(eks_token.generate_token(client, "one"))
    two = eks_token.decode_token(eks_token.generate_token(client, "two"))

    assert query(one)["X-Amz-Signature"] != query(two)["X-Amz-Signature"]
    assert "one" not in one  # a header, not a query parameter


def test_handlers_do_not_touch_other_presigns(frozen_time):
    client = sts_client()
    eks_token.register_cluster_id_handlers(client)
    eks_token.register_cluster_id_handlers(client)  # idempotent

    plain = client.generate_presigned_url("get_caller_identity", ExpiresIn=60, HttpMethod="GET")

    assert query(plain)["X-Amz-SignedHeaders"] == ["host"]


def test_token_for_another_region_uses_its_regional_endpoint(frozen_time):
    url = eks_token.decode_token(eks_token.generate_token(sts_client(region="us-east-1"), "demo"))

    assert urlsplit(url).netloc == "sts.us-east-1.amazonaws.com"
    assert url == independent_presign("demo", region="us-east-1")


def test_encode_and_decode():
    url = "https://sts.eu-west-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Date=x"
    token = eks_token.encode_token(url)

    assert token == "k8s-aws-v1." + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    assert eks_token.decode_token(token) == url
    for bad in (None, "", "k8s-aws-v2.abc", "Bearer x"):
        with pytest.raises(ValueError):
            eks_token.decode_token(bad)


def test_token_expiry_is_fourteen_minutes_after_signing(frozen_time):
    token = eks_token.generate_token(sts_client(), "demo")

    expiry = eks_token.token_expiry(token)

    assert expiry == datetime.datetime(2026, 3, 4, 5, 20, 7, tzinfo=UTC)
    assert eks_token.format_utc(expiry) == "2026-03-04T05:20:07Z"


def test_token_expiry_falls_back_to_now():
    now = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    assert eks_token.token_expiry("not-a-token", now=now) == datetime.datetime(2026, 1, 1, 12, 14, tzinfo=UTC)
    assert eks_token.token_expiry(eks_token.encode_token("https://sts/?Action=x"), now=now) == now + (
        datetime.timedelta(minutes=14)
    )


def test_format_utc():
    offset = datetime.timezone(datetime.timedelta(hours=2))
    assert eks_token.format_utc(datetime.datetime(2026, 1, 1, 14, 0, 30, 999, tzinfo=offset)) == "2026-01-01T12:00:30Z"


def test_cluster_arn():
    assert eks_token.cluster_arn("aws", "eu-west-1", "123456789012", "demo") == (
        "arn:aws:eks:eu-west-1:123456789012:cluster/demo"
    )


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ["a", "demo", "Demo-1_x", "0cluster", "a" * 100])
def test_validate_cluster_name_accepts(name):
    assert eks_token.validate_cluster_name(name) == name


@pytest.mark.parametrize("name", [None, "", " ", "-demo", "_demo", "demo.prod", "demo prod", "a" * 101, "démo", "x\n"])
def test_validate_cluster_name_rejects(name):
    with pytest.raises(EksTokenParameterError, match=r"^cluster_name: ") as raised:
        eks_token.validate_cluster_name(name)
    assert raised.value.option == "cluster_name"


@pytest.mark.parametrize(
    "url",
    [
        "https://0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com",
        "https://127.0.0.1:16443",
        "https://api.example.com:6443/prefix",
    ],
)
def test_validate_endpoint_accepts(url):
    assert eks_token.validate_endpoint(url) == url


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("", "non-empty"),
        ("http://127.0.0.1:8080", "https://"),
        ("127.0.0.1:16443", "https://"),
        ("https://", "name a host"),
        ("https://user@api.example.com", "user information"),
        ("https://api.example.com?x=1", "query string"),
        ("https://api.example.com:0", "invalid port"),
        ("https://api.example.com:99999", "not a valid URL"),
        ("https://api example.com", "spaces"),
    ],
)
def test_validate_endpoint_rejects(url, fragment):
    with pytest.raises(EksTokenParameterError, match=r"^endpoint: ") as raised:
        eks_token.validate_endpoint(url)
    assert fragment in str(raised.value)


def test_validate_certificate_authority_data():
    assert eks_token.validate_certificate_authority_data(CA_DATA) == CA_DATA
    wrapped = "\n".join(CA_DATA[i : i + 20] for i in range(0, len(CA_DATA), 20))
    assert eks_token.validate_certificate_authority_data(wrapped) == CA_DATA
    pem = base64.b64decode(CA_DATA).decode()
    for bad, fragment in (
        ("", "non-empty"),
        (pem, "not the PEM text"),
        ("not base64!", "not valid base64"),
        (base64.b64encode(b"hello").decode(), "PEM certificate"),
    ):
        with pytest.raises(EksTokenParameterError, match=r"^certificate_authority_data: ") as raised:
            eks_token.validate_certificate_authority_data(bad)
        assert fragment in str(raised.value)


def test_validate_role_arn_and_session_name():
    arn = "arn:aws:iam::123456789012:role/path/deploy"
    assert eks_token.validate_role_arn(arn) == arn
    assert eks_token.validate_role_arn("arn:aws-cn:iam::123456789012:role/x") == "arn:aws-cn:iam::123456789012:role/x"
    for bad in ("deploy", "arn:aws:iam::123456789012:user/x", "arn:aws:iam::1234:role/x"):
        with pytest.raises(EksTokenParameterError, match=r"^role_arn: "):
            eks_token.validate_role_arn(bad)
    assert eks_token.validate_role_session_name("ansible@host") == "ansible@host"
    for bad in ("x", "a b", "a" * 65):
        with pytest.raises(EksTokenParameterError, match=r"^role_session_name: "):
            eks_token.validate_role_session_name(bad)


# --------------------------------------------------------------------------- kubeconfig


ARN = "arn:aws:eks:eu-west-1:123456789012:cluster/demo"


def test_build_kubeconfig():
    document = eks_token.build_kubeconfig(ARN, "https://api.example.com", CA_DATA, "k8s-aws-v1.abc")

    assert document == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": ARN, "cluster": {"server": "https://api.example.com", "certificate-authority-data": CA_DATA}}
        ],
        "contexts": [{"name": ARN, "context": {"cluster": ARN, "user": ARN}}],
        "current-context": ARN,
        "preferences": {},
        "users": [{"name": ARN, "user": {"token": "k8s-aws-v1.abc"}}],
    }


def test_redact_kubeconfig_masks_tokens_only():
    document = eks_token.build_kubeconfig(ARN, "https://api.example.com", CA_DATA, "k8s-aws-v1.abc")

    redacted = eks_token.redact_kubeconfig(document)

    assert redacted["users"][0]["user"]["token"] == eks_token.REDACTED
    assert document["users"][0]["user"]["token"] == "k8s-aws-v1.abc"
    assert redacted["clusters"] == document["clusters"]
    other = eks_token.build_kubeconfig(ARN, "https://api.example.com", CA_DATA, "k8s-aws-v1.xyz")
    assert eks_token.redact_kubeconfig(other) == redacted
    assert eks_token.redact_kubeconfig(None) is None


def test_check_replaceable():
    single = eks_token.build_kubeconfig(ARN, "https://api.example.com", CA_DATA, "t")
    eks_token.check_replaceable(None, "/p")
    eks_token.check_replaceable(single, "/p")
    eks_token.check_replaceable(single, "/p", cluster_name="demo")
    eks_token.check_replaceable({"apiVersion": "v1", "kind": "Config", "clusters": [{"name": "demo"}]}, "/p", "demo")

    shared = dict(single, clusters=single["clusters"] + [{"name": "other", "cluster": {}}])
    with pytest.raises(KubeconfigFileError, match=r"^kubeconfig_path: /p holds several clusters"):
        eks_token.check_replaceable(shared, "/p")
    for not_a_kubeconfig in ("text", ["a"], {"kind": "Pod"}):
        with pytest.raises(KubeconfigFileError, match="is not a kubeconfig"):
            eks_token.check_replaceable(not_a_kubeconfig, "/p")
    with pytest.raises(KubeconfigFileError, match="not for the cluster 'other'"):
        eks_token.check_replaceable(single, "/p", cluster_name="other")
    with pytest.raises(KubeconfigFileError, match="not for the cluster 'emo'"):
        eks_token.check_replaceable(single, "/p", cluster_name="emo")


def test_write_private_file(tmp_path):
    path = tmp_path / "new" / "dir" / "kubeconfig"

    eks_token.write_private_file(str(path), "first\n")

    assert path.read_text() == "first\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    path.chmod(0o644)
    eks_token.write_private_file(str(path), "second\n")
    assert path.read_text() == "second\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in path.parent.iterdir()) == ["kubeconfig"]


def test_private_temp_path_and_removal():
    path = eks_token.make_private_temp_path()
    directory = os.path.dirname(path)
    try:
        assert os.path.basename(path) == "kubeconfig"
        assert os.path.basename(directory).startswith(eks_token.TEMP_DIR_PREFIX)
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700
        assert not os.path.exists(path)
        eks_token.write_private_file(path, "x")
        eks_token.remove_kubeconfig_file(path)
        assert not os.path.exists(directory)
    finally:
        if os.path.exists(path):
            os.unlink(path)
        if os.path.isdir(directory):
            os.rmdir(directory)


def test_removal_keeps_ordinary_directories(tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text("x")

    eks_token.remove_kubeconfig_file(str(path))

    assert not path.exists()
    assert tmp_path.is_dir()
