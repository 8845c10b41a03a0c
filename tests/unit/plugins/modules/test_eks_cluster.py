# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""eks_cluster against the stack's extended moto server (fixtures in conftest.py)."""

import uuid

import botocore.client
import pytest
from _harness import fail, succeed
from botocore.exceptions import ClientError

from ansible_collections.layered.eks_rds.plugins.modules import eks_cluster

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-cluster"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b"
OTHER_KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/11111111-2222-3333-4444-555555555555"
ALL_LOGS = ["api", "audit", "authenticator", "controllerManager", "scheduler"]

pytestmark = pytest.mark.usefixtures("moto_eks_env")


@pytest.fixture
def eks(moto_eks_clients):
    return moto_eks_clients["eks"]


@pytest.fixture
def ec2(moto_eks_clients):
    return moto_eks_clients["ec2"]


@pytest.fixture
def name():
    return f"c-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def args(name, moto_eks_network):
    return dict(name=name, version="1.31", role_arn=ROLE, subnets=moto_eks_network["subnet_ids"])


@pytest.fixture
def run(run_eks_module):
    def _run(args, check_mode=False):
        return run_eks_module(eks_cluster, args, check_mode=check_mode)

    return _run


def enabled_logs(cluster):
    return sorted(t for e in cluster["logging"]["clusterLogging"] if e["enabled"] for t in e["types"])


def exists(eks, name):
    try:
        eks.describe_cluster(name=name)
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException"
        return False
    return True


@pytest.fixture
def recorded_updates(monkeypatch):
    """Record (operation, params) of UpdateClusterVersion, AssociateEncryptionConfig and DescribeUpdate.

    Every call still goes to the server; the record shows the order in which updates were made and waited for.
    """
    calls = []
    real = botocore.client.BaseClient._make_api_call

    def record(self, operation_name, api_params):
        if operation_name in ("UpdateClusterVersion", "AssociateEncryptionConfig", "DescribeUpdate"):
            calls.append((operation_name, dict(api_params)))
        return real(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", record)
    return calls


# ------------------------------------------------------------------ create / idempotence


def test_create_returns_what_other_tasks_need(run, eks, ec2, args, name, moto_eks_network):
    result = succeed(run, args)

    assert result["changed"] is True
    described = eks.describe_cluster(name=name)["cluster"]
    vpc = described["resourcesVpcConfig"]
    assert described["version"] == "1.31"
    assert described["roleArn"] == ROLE
    assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"]) == (True, False)
    assert sorted(vpc["subnetIds"]) == sorted(moto_eks_network["subnet_ids"])
    assert enabled_logs(described) == sorted(ALL_LOGS)
    assert "encryptionConfig" not in described or described["encryptionConfig"] == []

    assert result["arn"] == described["arn"]
    assert result["endpoint"] == described["endpoint"]
    assert result["certificate_authority_data"] == described["certificateAuthority"]["data"]
    assert result["oidc_issuer"] == described["identity"]["oidc"]["issuer"]
    assert result["cluster_security_group_id"] == vpc["clusterSecurityGroupId"]
    assert result["vpc_id"] == moto_eks_network["vpc_id"]
    assert result["status"] == "ACTIVE"
    assert result["version"] == "1.31"
    group = ec2.describe_security_groups(GroupIds=[result["cluster_security_group_id"]])["SecurityGroups"][0]
    assert group["VpcId"] == moto_eks_network["vpc_id"]

    cluster = result["cluster"]
    assert cluster["name"] == name
    assert cluster["resources_vpc_config"]["cluster_security_group_id"] == result["cluster_security_group_id"]
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["endpoint_private_access"] is True
    assert result["updates"] == []


def test_second_run_changes_nothing(run, eks, args, name):
    succeed(run, dict(args, tags={"Project": "app"}))
    updates_before = eks.list_updates(name=name)["updateIds"]

    result = succeed(run, dict(args, tags={"Project": "app"}))

    assert result["changed"] is False
    assert result["updates"] == []
    assert result["diff"]["before"] == result["diff"]["after"]
    assert eks.list_updates(name=name)["updateIds"] == updates_before


def test_create_with_everything(run, eks, args, name):
    result = succeed(
        run,
        dict(
            args,
            endpoint_public_access=True,
            public_access_cidrs=["203.0.113.7/24", "198.51.100.0/24"],
            encryption_config=dict(key_arn=KEY),
            logging=["audit", "api"],
            tags={"Project": "app", "Environment": "test"},
        ),
    )

    assert result["changed"] is True
    described = eks.describe_cluster(name=name)["cluster"]
    vpc = described["resourcesVpcConfig"]
    assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"]) == (True, True)
    assert sorted(vpc["publicAccessCidrs"]) == ["198.51.100.0/24", "203.0.113.0/24"]
    assert described["encryptionConfig"] == [{"resources": ["secrets"], "provider": {"keyArn": KEY}}]
    assert enabled_logs(described) == ["api", "audit"]
    assert described["tags"] == {"Project": "app", "Environment": "test"}

    again = succeed(
        run,
        dict(
            args,
            endpoint_public_access=True,
            public_access_cidrs=["198.51.100.0/24", "203.0.113.0/24"],
            encryption_config=dict(key_arn=KEY),
            logging=["api", "audit"],
            tags={"Environment": "test", "Project": "app"},
        ),
    )
    assert again["changed"] is False


# ------------------------------------------------------------------ updates


def test_endpoint_then_logging_in_one_run(run, eks, args, name):
    succeed(run, args)

    result = succeed(
        run,
        dict(args, endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24"], logging=["audit"]),
    )

    assert result["changed"] is True
    assert [u["kind"] for u in result["updates"]] == ["endpoint_access", "logging"]
    assert all(u["status"] == "Successful" for u in result["updates"])
    described = eks.describe_cluster(name=name)["cluster"]
    vpc = described["resourcesVpcConfig"]
    assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"]) == (True, True)
    assert vpc["publicAccessCidrs"] == ["203.0.113.0/24"]
    assert enabled_logs(described) == ["audit"]

    types = [eks.describe_update(name=name, updateId=u["id"])["update"]["type"] for u in result["updates"]]
    assert types == ["EndpointAccessUpdate", "LoggingUpdate"]
    assert result["diff"]["before"]["logging"] == ALL_LOGS
    assert result["diff"]["after"]["logging"] == ["audit"]
    assert result["diff"]["after"]["public_access_cidrs"] == ["203.0.113.0/24"]

    again = succeed(
        run,
        dict(args, endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24"], logging=["audit"]),
    )
    assert again["changed"] is False


def test_public_cidrs_change_alone(run, eks, args, name):
    public = dict(args, endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24"])
    succeed(run, public)

    result = succeed(run, dict(public, public_access_cidrs=["203.0.113.0/24", "198.51.100.0/24"]))

    assert [u["kind"] for u in result["updates"]] == ["endpoint_access"]
    vpc = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert sorted(vpc["publicAccessCidrs"]) == ["198.51.100.0/24", "203.0.113.0/24"]


def test_logging_off(run, eks, args, name):
    succeed(run, args)

    result = succeed(run, dict(args, logging=[]))

    assert [u["kind"] for u in result["updates"]] == ["logging"]
    assert enabled_logs(eks.describe_cluster(name=name)["cluster"]) == []


def test_security_groups_update_in_place(run, eks, ec2, args, name, moto_eks_network):
    succeed(run, args)
    group_id = ec2.create_security_group(
        GroupName=f"{name}-extra", Description="extra", VpcId=moto_eks_network["vpc_id"]
    )["GroupId"]

    result = succeed(run, dict(args, security_groups=[group_id]))

    assert [u["kind"] for u in result["updates"]] == ["vpc_config"]
    assert eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]["securityGroupIds"] == [group_id]
    assert succeed(run, dict(args, security_groups=[group_id]))["changed"] is False
    # Omitted: left as they are.
    assert succeed(run, args)["changed"] is False


def test_tags_are_updated_and_purged(run, eks, args, name):
    result = succeed(run, dict(args, tags={"Project": "app", "Old": "yes"}))
    arn = result["arn"]

    result = succeed(run, dict(args, tags={"Project": "app2", "New": "1"}))

    assert result["changed"] is True
    assert result["updates"] == []
    assert eks.list_tags_for_resource(resourceArn=arn)["tags"] == {"Project": "app2", "New": "1"}
    assert result["cluster"]["tags"] == {"Project": "app2", "New": "1"}

    result = succeed(run, dict(args, tags={"Extra": "x"}, purge_tags=False))
    assert eks.list_tags_for_resource(resourceArn=arn)["tags"] == {"Project": "app2", "New": "1", "Extra": "x"}
    assert succeed(run, args)["changed"] is False  # tags omitted: not managed


def test_version_upgrade_goes_one_minor_at_a_time(run, eks, args, name, recorded_updates):
    succeed(run, dict(args, version="1.29"))

    result = succeed(run, dict(args, version="1.31"))

    assert result["changed"] is True
    assert [u["description"] for u in result["updates"]] == ["Kubernetes version 1.30", "Kubernetes version 1.31"]
    upgrades = [params for op, params in recorded_updates if op == "UpdateClusterVersion"]
    assert upgrades == [{"name": name, "version": "1.30"}, {"name": name, "version": "1.31"}]
    # Each upgrade was waited for before the next one started.
    operations = [op for op, _ in recorded_updates]
    assert operations == ["UpdateClusterVersion", "DescribeUpdate", "UpdateClusterVersion", "DescribeUpdate"]
    assert eks.describe_cluster(name=name)["cluster"]["version"] == "1.31"
    assert succeed(run, dict(args, version="1.31"))["changed"] is False


def test_encryption_can_be_added(run, eks, args, name, recorded_updates):
    succeed(run, args)

    result = succeed(run, dict(args, encryption_config=dict(key_arn=KEY)))

    assert result["changed"] is True
    assert [u["kind"] for u in result["updates"]] == ["encryption"]
    assert eks.describe_cluster(name=name)["cluster"]["encryptionConfig"] == [
        {"resources": ["secrets"], "provider": {"keyArn": KEY}}
    ]
    assert succeed(run, dict(args, encryption_config=dict(key_arn=KEY)))["changed"] is False
    operation, params = recorded_updates[0]
    assert operation == "AssociateEncryptionConfig"
    assert params == {
        "clusterName": name,
        "encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": KEY}}],
    }
    assert result["diff"]["after"]["encryption_key_arn"] == KEY


def test_without_wait_the_last_update_is_not_waited_for(run, eks, args, name, recorded_updates):
    succeed(run, dict(args, version="1.30"))

    result = succeed(run, dict(args, version="1.31", wait=False))

    assert [op for op, _ in recorded_updates] == ["UpdateClusterVersion"]
    assert [u["kind"] for u in result["updates"]] == ["version"]
    assert eks.describe_cluster(name=name)["cluster"]["version"] == "1.31"


# ------------------------------------------------------------------ refused changes


def test_encryption_removal_is_refused(run, eks, args, name, moto_eks_network):
    eks.create_cluster(
        name=name,
        version="1.31",
        roleArn=ROLE,
        resourcesVpcConfig={
            "subnetIds": moto_eks_network["subnet_ids"],
            "endpointPrivateAccess": True,
            "endpointPublicAccess": False,
        },
        logging={"clusterLogging": [{"types": ALL_LOGS, "enabled": True}]},
        encryptionConfig=[{"resources": ["secrets"], "provider": {"keyArn": KEY}}],
    )

    for encryption in ({}, {"key_arn": ""}):
        result = fail(run, dict(args, encryption_config=encryption))
        assert result["option"] == "encryption_config"
        assert "cannot be removed" in result["msg"]
        assert KEY in result["msg"]

    result = fail(run, dict(args, encryption_config=dict(key_arn=OTHER_KEY)))
    assert result["option"] == "encryption_config.key_arn"
    assert "cannot change the key" in result["msg"]

    described = eks.describe_cluster(name=name)["cluster"]
    assert described["encryptionConfig"][0]["provider"]["keyArn"] == KEY
    assert eks.list_updates(name=name)["updateIds"] == []
    # Omitted: left as it is.
    assert succeed(run, args)["changed"] is False


def test_refused_changes_are_refused_before_any_update(run, eks, args, name):
    succeed(run, args)

    downgrade = fail(run, dict(args, version="1.30", logging=["api"]))
    assert downgrade["option"] == "version"
    assert "cannot downgrade" in downgrade["msg"]

    role = fail(run, dict(args, role_arn=f"arn:aws:iam::{ACCOUNT}:role/other", logging=["api"]))
    assert role["option"] == "role_arn"

    assert enabled_logs(eks.describe_cluster(name=name)["cluster"]) == sorted(ALL_LOGS)
    assert eks.list_updates(name=name)["updateIds"] == []


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "overrides, option, text",
    [
        (dict(endpoint_public_access=True, public_access_cidrs=["0.0.0.0/0"]), "public_access_cidrs", "0.0.0.0/0"),
        (dict(endpoint_public_access=True, public_access_cidrs=["::/0"]), "public_access_cidrs", "::/0"),
        (
            dict(endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24", "0.0.0.0/0"]),
            "public_access_cidrs",
            "whole Internet",
        ),
        (dict(public_access_cidrs=["0.0.0.0/0"]), "public_access_cidrs", "whole Internet"),
        (dict(endpoint_public_access=True), "public_access_cidrs", "required"),
        (dict(endpoint_public_access=True, public_access_cidrs=[]), "public_access_cidrs", "required"),
        (dict(endpoint_public_access=True, public_access_cidrs=["10.0.0.0/33"]), "public_access_cidrs", "valid"),
        (dict(endpoint_private_access=False), "endpoint_private_access", "at least one"),
        (dict(version="1.31.2"), "version", "minor version"),
        (dict(version="latest"), "version", "minor version"),
        (dict(role_arn="eks-cluster"), "role_arn", "IAM role ARN"),
        (dict(subnets=["subnet-0123456789abcdef0"]), "subnets", "two"),
        (dict(subnets=["subnet-0123456789abcdef0", "subnet-0123456789abcdef0"]), "subnets", "two"),
        (dict(subnets=["private-a", "private-b"]), "subnets", "subnet id"),
        (dict(security_groups=["default"]), "security_groups", "security group id"),
        (dict(encryption_config=dict(key_arn="alias/eks")), "encryption_config.key_arn", "KMS key ARN"),
        (dict(tags={"aws:owner": "me"}), "tags", "reserved"),
        (dict(name="-bad"), "name", "cluster name"),
        (dict(name="a" * 101), "name", "longer than 100"),
        (dict(wait_timeout=0), "wait_timeout", "positive"),
    ],
)
def test_bad_input_fails_before_any_api_call(run, no_clients, args, overrides, option, text):
    result = fail(run, dict(args, **overrides))

    assert result["msg"].startswith(f"{option}:"), result["msg"]
    assert result["option"] == option
    assert text in result["msg"]
    assert no_clients == []


def test_required_options_for_present(run, no_clients, name):
    result = fail(run, dict(name=name))

    assert "version" in result["msg"] and "role_arn" in result["msg"] and "subnets" in result["msg"]
    assert no_clients == []


def test_absent_needs_only_the_name(run, name):
    result = succeed(run, dict(name=name, state="absent"))

    assert result["changed"] is False
    assert result["status"] == "DELETED"


def test_cidrs_without_public_access_warn(run, args, name, monkeypatch):
    warnings = []
    monkeypatch.setattr(eks_cluster.AnsibleAWSModule, "warn", lambda self, msg: warnings.append(msg))

    succeed(run, dict(args, public_access_cidrs=["203.0.113.0/24"]))

    assert any("public_access_cidrs is ignored" in w for w in warnings)


# ------------------------------------------------------------------ check mode


def test_check_mode_create_creates_nothing(run, eks, args, name):
    result = succeed(run, dict(args, tags={"Project": "app"}), check_mode=True)

    assert result["changed"] is True
    assert result["cluster"]["name"] == name
    assert result["cluster"]["status"] == "CREATING"
    assert result["cluster"]["resources_vpc_config"]["endpoint_private_access"] is True
    assert result["arn"] is None
    assert result["diff"]["after"]["tags"] == {"Project": "app"}
    assert not exists(eks, name)


def test_check_mode_update_changes_nothing(run, eks, args, name):
    succeed(run, args)

    result = succeed(
        run,
        dict(args, endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24"], logging=["api"]),
        check_mode=True,
    )

    assert result["changed"] is True
    assert [u["kind"] for u in result["updates"]] == ["endpoint_access", "logging"]
    assert "id" not in result["updates"][0]
    assert result["cluster"]["resources_vpc_config"]["endpoint_public_access"] is True
    described = eks.describe_cluster(name=name)["cluster"]
    assert described["resourcesVpcConfig"]["endpointPublicAccess"] is False
    assert enabled_logs(described) == sorted(ALL_LOGS)
    assert eks.list_updates(name=name)["updateIds"] == []


def test_check_mode_without_changes(run, args):
    succeed(run, args)

    assert succeed(run, args, check_mode=True)["changed"] is False


# ------------------------------------------------------------------ absent


def test_absent_deletes_and_is_idempotent(run, eks, ec2, args, name):
    created = succeed(run, args)

    check = succeed(run, dict(name=name, state="absent"), check_mode=True)
    assert check["changed"] is True
    assert exists(eks, name)

    result = succeed(run, dict(name=name, state="absent"))
    assert result["changed"] is True
    assert result["cluster"] == {}
    assert result["diff"]["after"] == {}
    assert result["diff"]["before"]["name"] == name
    assert not exists(eks, name)
    with pytest.raises(ClientError):
        ec2.describe_security_groups(GroupIds=[created["cluster_security_group_id"]])

    assert succeed(run, dict(name=name, state="absent"))["changed"] is False


def test_delete_with_nodegroups_fails_clearly(run, eks, args, name, moto_eks_network):
    succeed(run, args)
    eks.create_nodegroup(clusterName=name, nodegroupName="ng", nodeRole=ROLE, subnets=moto_eks_network["subnet_ids"])

    result = fail(run, dict(name=name, state="absent"))

    assert "node groups" in result["msg"]
    assert exists(eks, name)
    eks.delete_nodegroup(clusterName=name, nodegroupName="ng")
