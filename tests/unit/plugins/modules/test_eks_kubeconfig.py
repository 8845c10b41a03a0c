# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import base64
import datetime
import os
import stat
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest
import yaml
from _harness import clean_aws_env, module_outcomes, patch_exits
from botocore.credentials import Credentials
from botocore.hooks import HierarchicalEmitter
from botocore.model import ServiceId
from botocore.signers import RequestSigner
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.eks.models import eks_backends

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.layered.eks_rds.plugins.module_utils import eks_token
from ansible_collections.layered.eks_rds.plugins.modules import eks_kubeconfig

ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "eu-west-1"
FROZEN_NOW = datetime.datetime(2026, 3, 4, 5, 6, 7)
LATER = datetime.datetime(2026, 3, 4, 5, 36, 7)
ENDPOINT = "https://127.0.0.1:16443"
CA_DATA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n").decode()
OTHER_CA_DATA = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nMIIC\n-----END CERTIFICATE-----\n").decode()
ARN = f"arn:aws:eks:{REGION}:{DEFAULT_ACCOUNT_ID}:cluster/demo"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    clean_aws_env(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY)


@pytest.fixture(autouse=True)
def module_exits(monkeypatch):
    patch_exits(monkeypatch)


class Clock:
    """botocore's SigV4 clock (botocore.auth.get_current_datetime), frozen and movable."""

    def __init__(self, now):
        self.now = now

    def __call__(self, remove_tzinfo=True):
        return self.now


@pytest.fixture
def clock(monkeypatch):
    frozen = Clock(FROZEN_NOW)
    monkeypatch.setattr("botocore.auth.get_current_datetime", frozen)
    return frozen


@pytest.fixture
def aws():
    with mock_aws():
        # mock_aws swaps in its own fake keys; sign with the known ones (the environment is restored on exit).
        os.environ["AWS_ACCESS_KEY_ID"] = ACCESS_KEY
        os.environ["AWS_SECRET_ACCESS_KEY"] = SECRET_KEY
        yield boto3.client("eks", region_name=REGION)


@pytest.fixture
def cluster(aws):
    return aws.create_cluster(
        name="demo", roleArn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/eks", resourcesVpcConfig={}
    )["cluster"]


@pytest.fixture
def temp_dirs():
    """Remove the private temporary directories the module creates."""
    made = []
    yield made
    for path in made:
        if os.path.exists(path):
            os.unlink(path)
        directory = os.path.dirname(path)
        if os.path.isdir(directory):
            os.rmdir(directory)


succeed, fail = module_outcomes(eks_kubeconfig.main)


def independent_presign(cluster_name, region=REGION, access_key=ACCESS_KEY, secret_key=SECRET_KEY, token=None):
    """GetCallerIdentity presigned with botocore's RequestSigner, x-k8s-aws-id set on the request directly."""
    emitter = HierarchicalEmitter()
    signer = RequestSigner(ServiceId("sts"), region, "sts", "v4", Credentials(access_key, secret_key, token), emitter)
    request = {
        "method": "GET",
        "url": f"https://sts.{region}.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15",
        "body": {},
        "headers": {"x-k8s-aws-id": cluster_name},
        "context": {},
    }
    return signer.generate_presigned_url(request, region_name=region, expires_in=60, operation_name="")


def token_query(token):
    return parse_qs(urlsplit(eks_token.decode_token(token)).query, strict_parsing=True)


def load(path):
    with open(path, encoding="utf-8") as handle:
        return yaml.safe_load(handle)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --------------------------------------------------------------------------- describe_cluster path


def test_writes_a_kubeconfig_from_describe_cluster(clock, cluster, tmp_path):
    path = tmp_path / "kube" / "demo.yaml"

    result = succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(path)))

    assert result["changed"] is True
    assert result["kubeconfig_path"] == str(path)
    assert result["cluster"] == dict(name="demo", endpoint=cluster["endpoint"], arn=cluster["arn"])
    assert result["cluster"]["arn"] == ARN
    assert eks_token.decode_token(result["token"]) == independent_presign("demo")
    assert result["expires_at"] == "2026-03-04T05:20:07Z"
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    assert load(path) == {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": ARN,
                "cluster": {
                    "server": cluster["endpoint"],
                    "certificate-authority-data": cluster["certificateAuthority"]["data"],
                },
            }
        ],
        "contexts": [{"name": ARN, "context": {"cluster": ARN, "user": ARN}}],
        "current-context": ARN,
        "preferences": {},
        "users": [{"name": ARN, "user": {"token": result["token"]}}],
    }
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["kubeconfig"]["users"][0]["user"]["token"] == eks_token.REDACTED
    assert result["token"] not in str(result["diff"])


def test_token_carries_the_signed_cluster_header(clock, cluster, tmp_path):
    result = succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(tmp_path / "k")))

    query = token_query(result["token"])
    assert urlsplit(eks_token.decode_token(result["token"])).netloc == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert query["Version"] == ["2011-06-15"]
    assert query["X-Amz-Expires"] == ["60"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert query["X-Amz-Credential"] == [f"{ACCESS_KEY}/20260304/{REGION}/sts/aws4_request"]


def test_second_run_refreshes_the_token_without_reporting_a_change(clock, cluster, tmp_path):
    path = tmp_path / "kubeconfig"
    first = succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(path)))
    clock.now = LATER

    second = succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(path)))

    assert second["changed"] is False
    assert second["token"] != first["token"]
    assert load(path)["users"][0]["user"]["token"] == second["token"]
    assert eks_token.decode_token(second["token"]) == independent_presign("demo")
    assert second["expires_at"] == "2026-03-04T05:50:07Z"
    assert second["diff"]["before"] == second["diff"]["after"]


def test_check_mode_writes_nothing(clock, cluster, tmp_path):
    path = tmp_path / "kubeconfig"

    predicted = succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(path)), check_mode=True)

    assert predicted["changed"] is True
    assert predicted["kubeconfig_path"] == str(path)
    assert eks_token.decode_token(predicted["token"]) == independent_presign("demo")
    assert not path.exists()

    succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(path)))
    content = path.read_text()
    clock.now = LATER
    again = succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(path)), check_mode=True)
    assert again["changed"] is False
    assert path.read_text() == content


def test_check_mode_without_a_path_creates_no_temp_file(clock, cluster, monkeypatch):
    monkeypatch.setattr(eks_kubeconfig, "make_private_temp_path", lambda: pytest.fail("a temp file was made"))

    result = succeed(dict(cluster_name="demo", region=REGION), check_mode=True)

    assert result["changed"] is False
    assert result["kubeconfig_path"] is None
    assert result["token"].startswith("k8s-aws-v1.")


def test_default_path_is_a_private_temp_file(clock, cluster, temp_dirs):
    result = succeed(dict(cluster_name="demo", region=REGION))
    path = result["kubeconfig_path"]
    temp_dirs.append(path)

    assert result["changed"] is False
    assert "diff" not in result
    assert os.path.basename(path) == "kubeconfig"
    assert os.path.basename(os.path.dirname(path)).startswith("eks-kubeconfig-")
    assert mode(path) == 0o600
    assert mode(os.path.dirname(path)) == 0o700
    assert load(path)["users"][0]["user"]["token"] == result["token"]

    other = succeed(dict(cluster_name="demo", region=REGION))
    temp_dirs.append(other["kubeconfig_path"])
    assert other["kubeconfig_path"] != path

    removed = succeed(dict(cluster_name="demo", kubeconfig_path=path, state="absent"))
    assert removed["changed"] is True
    assert not os.path.exists(os.path.dirname(path))


def test_cluster_not_found(clock, aws, tmp_path):
    result = fail(dict(cluster_name="nope", region=REGION, kubeconfig_path=str(tmp_path / "k")))

    assert result["msg"] == f"cluster_name: EKS cluster 'nope' was not found in region {REGION}"
    assert not (tmp_path / "k").exists()


@pytest.mark.parametrize("status", ["CREATING", "FAILED", "DELETING"])
def test_cluster_not_active(clock, cluster, tmp_path, status):
    eks_backends[DEFAULT_ACCOUNT_ID][REGION].clusters["demo"].status = status

    result = fail(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(tmp_path / "k")))

    assert result["msg"] == f"EKS cluster 'demo' is {status}, not ACTIVE; retry once it is ACTIVE"
    assert result["cluster_status"] == status


def test_updating_cluster_is_usable(clock, cluster, tmp_path):
    eks_backends[DEFAULT_ACCOUNT_ID][REGION].clusters["demo"].status = "UPDATING"

    assert succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(tmp_path / "k")))["changed"]


def test_endpoint_override_with_described_ca(clock, cluster, tmp_path):
    result = succeed(dict(cluster_name="demo", region=REGION, endpoint=ENDPOINT, kubeconfig_path=str(tmp_path / "k")))

    document = load(tmp_path / "k")
    assert document["clusters"][0]["cluster"] == {
        "server": ENDPOINT,
        "certificate-authority-data": cluster["certificateAuthority"]["data"],
    }
    assert result["cluster"]["endpoint"] == ENDPOINT


# --------------------------------------------------------------------------- endpoint and CA given


def test_endpoint_and_ca_skip_describe_cluster(clock, aws, tmp_path, monkeypatch):
    monkeypatch.setattr(eks_kubeconfig, "describe_cluster", lambda *a, **k: pytest.fail("describe_cluster called"))
    path = tmp_path / "kubeconfig"

    result = succeed(
        dict(
            cluster_name="demo",
            region=REGION,
            endpoint=ENDPOINT,
            certificate_authority_data=CA_DATA,
            kubeconfig_path=str(path),
        )
    )

    assert result["changed"] is True
    assert result["cluster"] == dict(name="demo", endpoint=ENDPOINT, arn=ARN)
    assert load(path)["clusters"] == [
        {"name": ARN, "cluster": {"server": ENDPOINT, "certificate-authority-data": CA_DATA}}
    ]
    assert eks_token.decode_token(result["token"]) == independent_presign("demo")


def test_endpoint_or_ca_change_is_a_change(clock, aws, tmp_path):
    path = tmp_path / "kubeconfig"
    args = dict(
        cluster_name="demo",
        region=REGION,
        endpoint=ENDPOINT,
        certificate_authority_data=CA_DATA,
        kubeconfig_path=str(path),
    )
    succeed(args)
    assert succeed(args)["changed"] is False

    new_ca = succeed(dict(args, certificate_authority_data=OTHER_CA_DATA))
    assert new_ca["changed"] is True
    assert new_ca["diff"]["before"]["kubeconfig"]["clusters"][0]["cluster"]["certificate-authority-data"] == CA_DATA
    assert load(path)["clusters"][0]["cluster"]["certificate-authority-data"] == OTHER_CA_DATA

    new_endpoint = succeed(dict(args, certificate_authority_data=OTHER_CA_DATA, endpoint="https://127.0.0.2:6443"))
    assert new_endpoint["changed"] is True
    assert load(path)["clusters"][0]["cluster"]["server"] == "https://127.0.0.2:6443"


def test_loose_file_mode_is_a_change_and_is_fixed(clock, aws, tmp_path):
    path = tmp_path / "kubeconfig"
    args = dict(
        cluster_name="demo",
        region=REGION,
        endpoint=ENDPOINT,
        certificate_authority_data=CA_DATA,
        kubeconfig_path=str(path),
    )
    succeed(args)
    path.chmod(0o644)

    result = succeed(args)

    assert result["changed"] is True
    assert result["diff"]["before"]["mode"] == "0644"
    assert mode(path) == 0o600
    assert succeed(args)["changed"] is False


def test_replaces_a_single_cluster_kubeconfig(clock, aws, tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(eks_token.build_kubeconfig("old", "https://old.example.com", CA_DATA, "t")))
    path.chmod(0o600)

    result = succeed(
        dict(
            cluster_name="demo",
            region=REGION,
            endpoint=ENDPOINT,
            certificate_authority_data=CA_DATA,
            kubeconfig_path=str(path),
        )
    )

    assert result["changed"] is True
    assert load(path)["current-context"] == ARN


# --------------------------------------------------------------------------- role_arn and STS endpoint


def test_role_arn_is_assumed_first(clock, cluster, tmp_path):
    role_arn = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/deploy"

    result = succeed(dict(cluster_name="demo", region=REGION, role_arn=role_arn, kubeconfig_path=str(tmp_path / "k")))

    query = token_query(result["token"])
    access_key = query["X-Amz-Credential"][0].split("/")[0]
    assert access_key != ACCESS_KEY
    assert query["X-Amz-Security-Token"]
    assert query["X-Amz-SignedHeaders"] == ["host;x-k8s-aws-id"]
    assert result["cluster"]["arn"] == ARN


def test_sts_endpoint_is_regional_even_when_legacy_is_configured(clock, aws, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_STS_REGIONAL_ENDPOINTS", "legacy")
    result = succeed(
        dict(
            cluster_name="demo",
            region="us-east-1",
            endpoint=ENDPOINT,
            certificate_authority_data=CA_DATA,
            kubeconfig_path=str(tmp_path / "k"),
        )
    )

    assert urlsplit(eks_token.decode_token(result["token"])).netloc == "sts.us-east-1.amazonaws.com"
    assert eks_token.decode_token(result["token"]) == independent_presign("demo", region="us-east-1")
    assert os.environ["AWS_STS_REGIONAL_ENDPOINTS"] == "legacy"


def test_clients_use_jittered_backoff(clock, cluster, tmp_path, monkeypatch):
    real_client = AnsibleAWSModule.client
    services = []

    def spy(self, service, retry_decorator=None, **kwargs):
        services.append((service, retry_decorator is not None))
        return real_client(self, service, retry_decorator=retry_decorator, **kwargs)

    monkeypatch.setattr(AnsibleAWSModule, "client", spy)
    succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(tmp_path / "k")))

    assert services == [("sts", True), ("eks", True)]


# --------------------------------------------------------------------------- protecting other files


def test_refuses_to_overwrite_a_shared_kubeconfig(clock, aws, tmp_path):
    path = tmp_path / "config"
    shared = eks_token.build_kubeconfig("a", "https://a.example.com", CA_DATA, "t")
    shared["clusters"].append({"name": "b", "cluster": {"server": "https://b.example.com"}})
    path.write_text(yaml.safe_dump(shared))
    before = path.read_text()

    for state in ("present", "absent"):
        result = fail(
            dict(
                cluster_name="demo",
                region=REGION,
                endpoint=ENDPOINT,
                certificate_authority_data=CA_DATA,
                kubeconfig_path=str(path),
                state=state,
            )
        )
        assert result["msg"].startswith(f"kubeconfig_path: {path} holds several clusters")
        assert path.read_text() == before


@pytest.mark.parametrize("content", ["just: [text\n", "- a\n- b\n", "kind: Pod\n"])
def test_refuses_to_touch_a_file_that_is_not_a_kubeconfig(no_clients, tmp_path, content):
    path = tmp_path / "file"
    path.write_text(content)

    result = fail(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(path)))

    assert result["option"] == "kubeconfig_path"
    assert "is not a kubeconfig file" in result["msg"]
    assert path.read_text() == content
    assert no_clients == []


# --------------------------------------------------------------------------- absent


def test_absent_deletes_the_file(clock, cluster, tmp_path):
    path = tmp_path / "kubeconfig"
    succeed(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(path)))

    predicted = succeed(dict(cluster_name="demo", kubeconfig_path=str(path), state="absent"), check_mode=True)
    assert predicted["changed"] is True
    assert path.exists()

    removed = succeed(dict(cluster_name="demo", kubeconfig_path=str(path), state="absent"))
    assert removed["changed"] is True
    assert removed["diff"]["after"] == {}
    assert removed["diff"]["before"]["kubeconfig"]["users"][0]["user"]["token"] == eks_token.REDACTED
    assert not path.exists()
    assert tmp_path.is_dir()

    again = succeed(dict(cluster_name="demo", kubeconfig_path=str(path), state="absent"))
    assert again["changed"] is False


def test_absent_makes_no_aws_call(no_clients, tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(eks_token.build_kubeconfig(ARN, ENDPOINT, CA_DATA, "t")))

    assert succeed(dict(cluster_name="demo", kubeconfig_path=str(path), state="absent"))["changed"] is True
    assert no_clients == []


def test_absent_refuses_another_clusters_kubeconfig(no_clients, tmp_path):
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(eks_token.build_kubeconfig(ARN, ENDPOINT, CA_DATA, "t")))

    result = fail(dict(cluster_name="other", kubeconfig_path=str(path), state="absent"))

    assert "not for the cluster 'other'" in result["msg"]
    assert path.exists()


def test_absent_requires_a_path(no_clients):
    result = fail(dict(cluster_name="demo", state="absent"))

    assert "kubeconfig_path" in result["msg"]


# --------------------------------------------------------------------------- bad input fails first


@pytest.mark.parametrize(
    "args, option, fragment",
    [
        (dict(cluster_name="-demo"), "cluster_name", "1 to 100 letters"),
        (dict(cluster_name="demo.prod"), "cluster_name", "1 to 100 letters"),
        (dict(cluster_name="a" * 101), "cluster_name", "1 to 100 letters"),
        (dict(cluster_name="-demo", state="absent", kubeconfig_path="/tmp/x"), "cluster_name", "1 to 100"),
        (dict(cluster_name="demo", endpoint="http://127.0.0.1:8080"), "endpoint", "https://"),
        (dict(cluster_name="demo", certificate_authority_data="not base64!"), "certificate_authority_data", "base64"),
        (dict(cluster_name="demo", role_arn="deploy"), "role_arn", "IAM role ARN"),
        (
            dict(cluster_name="demo", role_arn=f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/x", role_session_name="x"),
            "role_session_name",
            "2 to 64",
        ),
    ],
)
def test_bad_input_fails_before_any_call(no_clients, args, option, fragment):
    result = fail(dict(args, region=REGION))

    assert result["option"] == option
    assert result["msg"].startswith(f"{option}: ")
    assert fragment in result["msg"]
    assert no_clients == []


def test_missing_region_fails_before_any_call(no_clients):
    result = fail(dict(cluster_name="demo"))

    assert result["option"] == "region"
    assert no_clients == []


def test_directory_path_fails_before_any_call(no_clients, tmp_path):
    result = fail(dict(cluster_name="demo", region=REGION, kubeconfig_path=str(tmp_path)))

    assert result["option"] == "kubeconfig_path"
    assert "is a directory" in result["msg"]
