"""The stack's moto server (tests/stack/moto_server.py) speaks the EKS calls stock moto lacks.

The launcher runs as a subprocess on a free loopback port; boto3 talks to it as to AWS.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from _moto import aws_clients
from botocore.exceptions import ClientError
from moto_process import start_server, stop_server

REGION = "eu-west-1"
ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-test"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/eks-test-other"


@pytest.fixture(scope="module")
def clients(moto_url: str) -> dict[str, Any]:
    return aws_clients(moto_url, "eks", "ec2", "iam", "kms", "rds", region=REGION)


@pytest.fixture
def eks(clients: dict[str, Any]) -> Any:
    return clients["eks"]


@pytest.fixture
def ec2(clients: dict[str, Any]) -> Any:
    return clients["ec2"]


@pytest.fixture
def network(ec2: Any) -> dict[str, Any]:
    """A fresh VPC with two subnets in two AZs."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = []
    for i, zone in enumerate(("a", "b")):
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")
        subnets.append(subnet["Subnet"]["SubnetId"])
    return {"vpc_id": vpc_id, "subnet_ids": subnets}


@pytest.fixture
def cluster(eks: Any, network: dict[str, Any]) -> dict[str, Any]:
    name = f"c-{uuid.uuid4().hex[:8]}"
    return eks.create_cluster(
        name=name, version="1.31", roleArn=ROLE, resourcesVpcConfig={"subnetIds": network["subnet_ids"]}
    )["cluster"]


def error_of(call: Callable[..., Any], **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as raised:
        call(**kwargs)
    return raised.value.response  # type: ignore[no-any-return]


# ------------------------------------------------------------------ clusters


def test_cluster_security_group_is_a_real_ec2_group(
    eks: Any, ec2: Any, network: dict[str, Any], cluster: dict[str, Any]
) -> None:
    name = cluster["name"]
    config = cluster["resourcesVpcConfig"]
    assert config["vpcId"] == network["vpc_id"]
    assert config["subnetIds"] == network["subnet_ids"]
    assert config["endpointPublicAccess"] is True
    assert config["endpointPrivateAccess"] is False
    assert config["publicAccessCidrs"] == ["0.0.0.0/0"]
    assert eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"] == config

    group_id = config["clusterSecurityGroupId"]
    group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    assert re.fullmatch(rf"eks-cluster-sg-{name}-\d{{10}}", group["GroupName"])
    assert group["VpcId"] == network["vpc_id"]
    assert group["Description"].startswith("EKS created security group applied to ENI")
    tags = {t["Key"]: t["Value"] for t in group["Tags"]}
    assert tags[f"kubernetes.io/cluster/{name}"] == "owned"
    assert tags["aws:eks:cluster-name"] == name
    [ingress] = group["IpPermissions"]
    assert ingress["IpProtocol"] == "-1"
    assert [pair["GroupId"] for pair in ingress["UserIdGroupPairs"]] == [group_id]
    assert {"IpProtocol": "-1", "CidrIp": "0.0.0.0/0"} in [
        {"IpProtocol": p["IpProtocol"], "CidrIp": r["CidrIp"]}
        for p in group["IpPermissionsEgress"]
        for r in p["IpRanges"]
    ]

    ec2.authorize_security_group_ingress(
        GroupId=group_id,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}],
    )
    ports = [
        p.get("FromPort")
        for p in ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]["IpPermissions"]
    ]
    assert 443 in ports

    assert eks.delete_cluster(name=name)["cluster"]["status"] == "DELETING"
    assert error_of(ec2.describe_security_groups, GroupIds=[group_id])["Error"]["Code"] == "InvalidGroup.NotFound"
    assert error_of(eks.describe_cluster, name=name)["Error"]["Code"] == "ResourceNotFoundException"


def test_cluster_keeps_given_endpoint_access(eks: Any, network: dict[str, Any]) -> None:
    config = {
        "subnetIds": network["subnet_ids"],
        "endpointPublicAccess": False,
        "endpointPrivateAccess": True,
    }
    created = eks.create_cluster(name=f"c-{uuid.uuid4().hex[:8]}", roleArn=ROLE, resourcesVpcConfig=config)
    vpc_config = created["cluster"]["resourcesVpcConfig"]
    assert (vpc_config["endpointPublicAccess"], vpc_config["endpointPrivateAccess"]) == (False, True)
    assert vpc_config["publicAccessCidrs"] == ["0.0.0.0/0"]


@pytest.mark.parametrize(
    ("subnets", "message"),
    [
        (lambda net: [net["subnet_ids"][0], "subnet-0000000000000000"], "does not exist"),
        (lambda net: net["subnet_ids"][:1], "at least two different AZs"),
    ],
    ids=["unknown-subnet", "one-zone"],
)
def test_create_cluster_checks_subnets(
    eks: Any, network: dict[str, Any], subnets: Callable[[dict[str, Any]], list[str]], message: str
) -> None:
    response = error_of(
        eks.create_cluster, name="bad-subnets", roleArn=ROLE, resourcesVpcConfig={"subnetIds": subnets(network)}
    )
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert message in response["Error"]["Message"]


def test_update_cluster_config_merges_and_returns_an_update(
    eks: Any, ec2: Any, network: dict[str, Any], cluster: dict[str, Any]
) -> None:
    name = cluster["name"]
    before = cluster["resourcesVpcConfig"]

    update = eks.update_cluster_config(
        name=name, resourcesVpcConfig={"endpointPrivateAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}
    )["update"]
    assert (update["type"], update["status"]) == ("EndpointAccessUpdate", "Successful")
    params = {p["type"]: p["value"] for p in update["params"]}
    assert params["EndpointPrivateAccess"] == "true"
    assert json.loads(params["PublicAccessCidrs"]) == ["203.0.113.0/24"]

    after = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert after == {**before, "endpointPrivateAccess": True, "publicAccessCidrs": ["203.0.113.0/24"]}
    assert eks.describe_update(name=name, updateId=update["id"])["update"] == update

    again = error_of(eks.update_cluster_config, name=name, resourcesVpcConfig={"endpointPrivateAccess": True})
    assert again["Error"]["Code"] == "InvalidParameterException"
    assert "already at the desired configuration" in again["Error"]["Message"]

    logging = eks.update_cluster_config(
        name=name, logging={"clusterLogging": [{"types": ["api", "audit"], "enabled": True}]}
    )["update"]
    assert logging["type"] == "LoggingUpdate"
    eks.update_cluster_config(name=name, logging={"clusterLogging": [{"types": ["audit"], "enabled": False}]})
    entries = eks.describe_cluster(name=name)["cluster"]["logging"]["clusterLogging"]
    assert [e["types"] for e in entries if e["enabled"]] == [["api"]]

    group_id = ec2.create_security_group(GroupName=f"{name}-extra", Description="extra", VpcId=network["vpc_id"])[
        "GroupId"
    ]
    vpc_update = eks.update_cluster_config(name=name, resourcesVpcConfig={"securityGroupIds": [group_id]})["update"]
    assert vpc_update["type"] == "VpcConfigUpdate"
    after_vpc_update = eks.describe_cluster(name=name)["cluster"]["resourcesVpcConfig"]
    assert after_vpc_update == {**after, "securityGroupIds": [group_id]}

    assert {update["id"], logging["id"], vpc_update["id"]} <= set(eks.list_updates(name=name)["updateIds"])
    missing = error_of(eks.describe_update, name=name, updateId=str(uuid.uuid4()))
    assert missing["Error"]["Code"] == "ResourceNotFoundException"


def test_nodegroup_updates_are_described(eks: Any, network: dict[str, Any], cluster: dict[str, Any]) -> None:
    name = cluster["name"]
    eks.create_nodegroup(clusterName=name, nodegroupName="ng", nodeRole=ROLE, subnets=network["subnet_ids"])
    update = eks.update_nodegroup_config(
        clusterName=name, nodegroupName="ng", scalingConfig={"minSize": 1, "maxSize": 3, "desiredSize": 2}
    )["update"]
    described = eks.describe_update(name=name, updateId=update["id"], nodegroupName="ng")["update"]
    assert described["id"] == update["id"]
    eks.delete_nodegroup(clusterName=name, nodegroupName="ng")


# ------------------------------------------------------------------ add-ons


def test_addon_lifecycle(eks: Any, cluster: dict[str, Any]) -> None:
    name = cluster["name"]
    addon = eks.create_addon(
        clusterName=name,
        addonName="vpc-cni",
        serviceAccountRoleArn=ROLE,
        configurationValues='{"env": {"ENABLE_PREFIX_DELEGATION": "true"}}',
        resolveConflicts="OVERWRITE",
        tags={"team": "platform"},
    )["addon"]
    assert addon["status"] == "ACTIVE"
    assert addon["addonVersion"] == "v1.19.2-eksbuild.1"
    assert addon["health"] == {"issues": []}
    assert re.fullmatch(rf"arn:aws:eks:{REGION}:{ACCOUNT}:addon/{name}/vpc-cni/[0-9a-f-]{{36}}", addon["addonArn"])
    assert "createdAt" in addon
    assert "modifiedAt" in addon

    described = eks.describe_addon(clusterName=name, addonName="vpc-cni")["addon"]
    assert described["serviceAccountRoleArn"] == ROLE
    assert json.loads(described["configurationValues"]) == {"env": {"ENABLE_PREFIX_DELEGATION": "true"}}
    assert described["tags"] == {"team": "platform"}

    in_use = error_of(eks.create_addon, clusterName=name, addonName="vpc-cni")
    assert in_use["Error"]["Code"] == "ResourceInUseException"
    assert in_use["addonName"] == "vpc-cni"
    assert in_use["ResponseMetadata"]["HTTPStatusCode"] == 409

    eks.create_addon(clusterName=name, addonName="coredns")
    assert eks.list_addons(clusterName=name)["addons"] == ["coredns", "vpc-cni"]
    page = eks.list_addons(clusterName=name, maxResults=1)
    assert page["addons"] == ["coredns"]
    assert eks.list_addons(clusterName=name, nextToken=page["nextToken"])["addons"] == ["vpc-cni"]

    new_values = '{"env": {"ENABLE_PREFIX_DELEGATION": "false"}}'
    update = eks.update_addon(
        clusterName=name, addonName="vpc-cni", addonVersion="v1.18.6-eksbuild.1", configurationValues=new_values
    )["update"]
    assert (update["type"], update["status"]) == ("AddonUpdate", "Successful")
    params = {p["type"]: p["value"] for p in update["params"]}
    assert params == {"AddonVersion": "v1.18.6-eksbuild.1", "ConfigurationValues": new_values}
    described = eks.describe_addon(clusterName=name, addonName="vpc-cni")["addon"]
    assert described["configurationValues"] == new_values
    assert described["addonVersion"] == "v1.18.6-eksbuild.1"
    assert eks.describe_update(name=name, updateId=update["id"], addonName="vpc-cni")["update"] == update
    assert eks.list_updates(name=name, addonName="vpc-cni")["updateIds"] == [update["id"]]
    assert error_of(eks.describe_update, name=name, updateId=update["id"])["Error"]["Code"] == (
        "ResourceNotFoundException"
    )

    arn = described["addonArn"]
    eks.tag_resource(resourceArn=arn, tags={"env": "test"})
    eks.untag_resource(resourceArn=arn, tagKeys=["team"])
    assert eks.list_tags_for_resource(resourceArn=arn)["tags"] == {"env": "test"}

    deleted = eks.delete_addon(clusterName=name, addonName="vpc-cni")["addon"]
    assert deleted["addonName"] == "vpc-cni"
    missing = error_of(eks.describe_addon, clusterName=name, addonName="vpc-cni")
    assert missing["Error"]["Code"] == "ResourceNotFoundException"
    assert missing["Error"]["Message"] == f"No addon: vpc-cni found in cluster: {name}"
    assert missing["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error_of(eks.delete_addon, clusterName=name, addonName="vpc-cni")["Error"]["Code"] == (
        "ResourceNotFoundException"
    )
    assert error_of(eks.update_addon, clusterName=name, addonName="vpc-cni")["Error"]["Code"] == (
        "ResourceNotFoundException"
    )
    assert eks.list_addons(clusterName=name)["addons"] == ["coredns"]


def test_addon_on_missing_cluster(eks: Any) -> None:
    response = error_of(eks.create_addon, clusterName="no-such-cluster", addonName="vpc-cni")
    assert response["Error"]["Code"] == "ResourceNotFoundException"
    assert error_of(eks.list_addons, clusterName="no-such-cluster")["Error"]["Code"] == "ResourceNotFoundException"


def test_addon_versions_follow_the_cluster(eks: Any, network: dict[str, Any]) -> None:
    name = f"c-{uuid.uuid4().hex[:8]}"
    eks.create_cluster(name=name, version="1.30", roleArn=ROLE, resourcesVpcConfig={"subnetIds": network["subnet_ids"]})
    assert eks.create_addon(clusterName=name, addonName="kube-proxy")["addon"]["addonVersion"] == "v1.30.7-eksbuild.2"

    unknown = error_of(eks.create_addon, clusterName=name, addonName="no-such-addon")
    assert unknown["Error"]["Code"] == "InvalidParameterException"
    bad_version = error_of(eks.create_addon, clusterName=name, addonName="coredns", addonVersion="v0.0.1")
    assert bad_version["Error"]["Code"] == "InvalidParameterException"
    bad_role = error_of(eks.create_addon, clusterName=name, addonName="coredns", serviceAccountRoleArn="not-an-arn")
    assert bad_role["Error"]["Code"] == "InvalidParameterException"


@pytest.mark.parametrize("values", ['{"env": ', "{'env': 1}", "[1, 2]", '"text"', "a: [b"])
def test_invalid_configuration_values_are_rejected(eks: Any, cluster: dict[str, Any], values: str) -> None:
    name = cluster["name"]
    response = error_of(eks.create_addon, clusterName=name, addonName="coredns", configurationValues=values)
    assert response["Error"]["Code"] == "InvalidParameterException"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert eks.list_addons(clusterName=name)["addons"] == []

    eks.create_addon(clusterName=name, addonName="coredns", configurationValues='{"replicaCount": 3}')
    response = error_of(eks.update_addon, clusterName=name, addonName="coredns", configurationValues=values)
    assert response["Error"]["Code"] == "InvalidParameterException"
    described = eks.describe_addon(clusterName=name, addonName="coredns")["addon"]
    assert described["configurationValues"] == '{"replicaCount": 3}'


def test_yaml_configuration_values_are_accepted(eks: Any, cluster: dict[str, Any]) -> None:
    values = "replicaCount: 3\nresources:\n  limits:\n    memory: 170Mi\n"
    eks.create_addon(clusterName=cluster["name"], addonName="coredns", configurationValues=values)
    assert (
        eks.describe_addon(clusterName=cluster["name"], addonName="coredns")["addon"]["configurationValues"] == values
    )


def test_describe_addon_versions(eks: Any) -> None:
    paginator = eks.get_paginator("describe_addon_versions")
    addons = [a for page in paginator.paginate(PaginationConfig={"PageSize": 1}) for a in page["addons"]]
    assert sorted(a["addonName"] for a in addons) == ["coredns", "eks-pod-identity-agent", "kube-proxy", "vpc-cni"]
    for addon in addons:
        assert addon["owner"] == "aws"
        assert len(addon["addonVersions"]) >= 2

    [proxy] = eks.describe_addon_versions(addonName="kube-proxy", kubernetesVersion="1.31")["addons"]
    [version] = proxy["addonVersions"]
    assert version["addonVersion"] == "v1.31.3-eksbuild.2"
    assert version["compatibilities"] == [{"clusterVersion": "1.31", "platformVersions": ["*"], "defaultVersion": True}]

    [cni] = eks.describe_addon_versions(addonName="vpc-cni")["addons"]
    defaults = [
        v["addonVersion"] for v in cni["addonVersions"] for c in v["compatibilities"] if c["clusterVersion"] == "1.31"
    ]
    assert defaults[0] == "v1.19.2-eksbuild.1"
    security = eks.describe_addon_versions(types=["security"])["addons"]
    assert [a["addonName"] for a in security] == ["eks-pod-identity-agent"]


def test_addon_pod_identity_associations(eks: Any, cluster: dict[str, Any]) -> None:
    name = cluster["name"]
    addon = eks.create_addon(
        clusterName=name,
        addonName="vpc-cni",
        podIdentityAssociations=[{"serviceAccount": "aws-node", "roleArn": ROLE}],
    )["addon"]
    [association_arn] = addon["podIdentityAssociations"]
    [summary] = eks.list_pod_identity_associations(clusterName=name, namespace="kube-system")["associations"]
    assert summary["associationArn"] == association_arn
    assert summary["serviceAccount"] == "aws-node"
    assert summary["ownerArn"] == addon["addonArn"]

    eks.update_addon(
        clusterName=name,
        addonName="vpc-cni",
        podIdentityAssociations=[{"serviceAccount": "aws-node", "roleArn": OTHER_ROLE}],
    )
    association = eks.describe_pod_identity_association(clusterName=name, associationId=summary["associationId"])
    assert association["association"]["roleArn"] == OTHER_ROLE

    taken = error_of(
        eks.create_pod_identity_association,
        clusterName=name,
        namespace="kube-system",
        serviceAccount="aws-node",
        roleArn=ROLE,
    )
    assert taken["Error"]["Code"] == "ResourceInUseException"

    eks.delete_addon(clusterName=name, addonName="vpc-cni")
    assert eks.list_pod_identity_associations(clusterName=name)["associations"] == []


def test_delete_cluster_removes_addons_and_associations(eks: Any, ec2: Any, network: dict[str, Any]) -> None:
    name = f"c-{uuid.uuid4().hex[:8]}"
    config = {"subnetIds": network["subnet_ids"]}
    eks.create_cluster(name=name, roleArn=ROLE, resourcesVpcConfig=config)
    eks.create_addon(clusterName=name, addonName="coredns")
    eks.create_pod_identity_association(clusterName=name, namespace="app", serviceAccount="app", roleArn=ROLE)
    eks.delete_cluster(name=name)

    assert error_of(eks.list_addons, clusterName=name)["Error"]["Code"] == "ResourceNotFoundException"
    recreated = eks.create_cluster(name=name, roleArn=ROLE, resourcesVpcConfig=config)["cluster"]
    assert eks.list_addons(clusterName=name)["addons"] == []
    assert eks.list_pod_identity_associations(clusterName=name)["associations"] == []
    groups = ec2.describe_security_groups(Filters=[{"Name": "tag:aws:eks:cluster-name", "Values": [name]}])[
        "SecurityGroups"
    ]
    assert [g["GroupId"] for g in groups] == [recreated["resourcesVpcConfig"]["clusterSecurityGroupId"]]


# ------------------------------------------------------------------ pod identity


def test_pod_identity_association_lifecycle(eks: Any, cluster: dict[str, Any]) -> None:
    name = cluster["name"]
    created = eks.create_pod_identity_association(
        clusterName=name, namespace="app", serviceAccount="api", roleArn=ROLE, tags={"team": "platform"}
    )["association"]
    association_id = created["associationId"]
    assert re.fullmatch(r"a-[a-z0-9]{17}", association_id)
    assert created["associationArn"] == f"arn:aws:eks:{REGION}:{ACCOUNT}:podidentityassociation/{name}/{association_id}"
    assert (created["namespace"], created["serviceAccount"], created["roleArn"]) == ("app", "api", ROLE)
    assert created["tags"] == {"team": "platform"}

    duplicate = error_of(
        eks.create_pod_identity_association, clusterName=name, namespace="app", serviceAccount="api", roleArn=OTHER_ROLE
    )
    assert duplicate["Error"]["Code"] == "ResourceInUseException"
    assert duplicate["Error"]["Message"] == f"Association already exists: {association_id}"

    eks.create_pod_identity_association(clusterName=name, namespace="app", serviceAccount="worker", roleArn=ROLE)
    eks.create_pod_identity_association(clusterName=name, namespace="ops", serviceAccount="api", roleArn=ROLE)

    def listed(**filters: str) -> list[tuple[str, str]]:
        paginator = eks.get_paginator("list_pod_identity_associations")
        pages = paginator.paginate(clusterName=name, PaginationConfig={"PageSize": 1}, **filters)
        return sorted((a["namespace"], a["serviceAccount"]) for page in pages for a in page["associations"])

    assert listed() == [("app", "api"), ("app", "worker"), ("ops", "api")]
    assert listed(namespace="app") == [("app", "api"), ("app", "worker")]
    assert listed(serviceAccount="api") == [("app", "api"), ("ops", "api")]
    assert listed(namespace="ops", serviceAccount="api") == [("ops", "api")]
    assert listed(namespace="none") == []

    updated = eks.update_pod_identity_association(
        clusterName=name, associationId=association_id, roleArn=OTHER_ROLE, targetRoleArn=ROLE
    )["association"]
    assert (updated["roleArn"], updated["targetRoleArn"]) == (OTHER_ROLE, ROLE)
    assert updated["externalId"]
    described = eks.describe_pod_identity_association(clusterName=name, associationId=association_id)["association"]
    assert described["roleArn"] == OTHER_ROLE
    assert described["modifiedAt"] >= described["createdAt"]

    eks.tag_resource(resourceArn=created["associationArn"], tags={"env": "test"})
    assert eks.list_tags_for_resource(resourceArn=created["associationArn"])["tags"] == {
        "team": "platform",
        "env": "test",
    }

    bad_role = error_of(
        eks.update_pod_identity_association, clusterName=name, associationId=association_id, roleArn="x"
    )
    assert bad_role["Error"]["Code"] == "InvalidParameterException"

    deleted = eks.delete_pod_identity_association(clusterName=name, associationId=association_id)["association"]
    assert deleted["associationId"] == association_id
    missing = error_of(eks.describe_pod_identity_association, clusterName=name, associationId=association_id)
    assert missing["Error"]["Code"] == "ResourceNotFoundException"
    assert listed(namespace="app") == [("app", "worker")]


def test_pod_identity_association_validation(eks: Any, cluster: dict[str, Any]) -> None:
    name = cluster["name"]
    bad_role = error_of(
        eks.create_pod_identity_association, clusterName=name, namespace="app", serviceAccount="api", roleArn="role/x"
    )
    assert bad_role["Error"]["Code"] == "InvalidParameterException"
    bad_id = error_of(eks.describe_pod_identity_association, clusterName=name, associationId="a-short")
    assert bad_id["Error"]["Code"] == "InvalidParameterException"
    no_cluster = error_of(
        eks.create_pod_identity_association,
        clusterName="no-such-cluster",
        namespace="a",
        serviceAccount="b",
        roleArn=ROLE,
    )
    assert no_cluster["Error"]["Code"] == "ResourceNotFoundException"


# ------------------------------------------------------------------ IAM and the launcher


def test_aws_managed_policies_attach(clients: dict[str, Any]) -> None:
    iam = clients["iam"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "eks.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    role = f"eks-cluster-{uuid.uuid4().hex[:8]}"
    iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
    policy_arn = "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"
    iam.attach_role_policy(RoleName=role, PolicyArn=policy_arn)
    attached = iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [policy_arn]


def test_launcher_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc, _ = start_server(tmp_path / "server.log")
    assert stop_server(proc) == 0


def test_oidc_provider_client_ids_change_in_place(clients: dict[str, Any]) -> None:
    iam = clients["iam"]
    arn = iam.create_open_id_connect_provider(
        Url="https://issuer.example.test/id/abc", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["a" * 40]
    )["OpenIDConnectProviderArn"]
    try:
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="other-audience")
        iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="other-audience")
        assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"] == [
            "sts.amazonaws.com",
            "other-audience",
        ]
        iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="sts.amazonaws.com")
        iam.remove_client_id_from_open_id_connect_provider(OpenIDConnectProviderArn=arn, ClientID="not-there")
        assert iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"] == ["other-audience"]
        missing = arn.replace("abc", "missing")
        with pytest.raises(iam.exceptions.NoSuchEntityException):
            iam.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=missing, ClientID="x")
    finally:
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


def test_version_upgrades_one_minor_at_a_time(eks: Any, cluster: dict[str, Any]) -> None:
    name = cluster["name"]
    assert error_of(eks.update_cluster_version, name=name, version="1.33")["Error"]["Code"] == (
        "InvalidParameterException"
    )
    assert error_of(eks.update_cluster_version, name=name, version="1.30")["Error"]["Code"] == (
        "InvalidParameterException"
    )
    update = eks.update_cluster_version(name=name, version="1.32")["update"]
    assert update["type"] == "VersionUpdate"
    assert eks.describe_update(name=name, updateId=update["id"])["update"]["status"] == "Successful"
    assert eks.describe_cluster(name=name)["cluster"]["version"] == "1.32"


def test_encryption_can_be_added_once(eks: Any, cluster: dict[str, Any]) -> None:
    name = cluster["name"]
    assert not eks.describe_cluster(name=name)["cluster"].get("encryptionConfig")
    config = [{"resources": ["secrets"], "provider": {"keyArn": f"arn:aws:kms:{REGION}:123456789012:key/k1"}}]
    update = eks.associate_encryption_config(clusterName=name, encryptionConfig=config)["update"]
    assert update["type"] == "AssociateEncryptionConfig"
    assert eks.describe_cluster(name=name)["cluster"]["encryptionConfig"] == config
    again = error_of(eks.associate_encryption_config, clusterName=name, encryptionConfig=config)
    assert again["Error"]["Code"] == "InvalidRequestException"


def test_access_config_is_kept_and_moves_forward_only(eks: Any, network: dict[str, Any]) -> None:
    name = f"c-{uuid.uuid4().hex[:8]}"
    eks.create_cluster(
        name=name,
        version="1.31",
        roleArn=ROLE,
        resourcesVpcConfig={"subnetIds": network["subnet_ids"]},
        accessConfig={"authenticationMode": "API_AND_CONFIG_MAP"},
    )
    assert eks.describe_cluster(name=name)["cluster"]["accessConfig"]["authenticationMode"] == "API_AND_CONFIG_MAP"
    back = error_of(eks.update_cluster_config, name=name, accessConfig={"authenticationMode": "CONFIG_MAP"})
    assert back["Error"]["Code"] == "InvalidParameterException"
    update = eks.update_cluster_config(name=name, accessConfig={"authenticationMode": "API"})["update"]
    assert update["type"] == "AccessConfigUpdate"
    assert eks.describe_cluster(name=name)["cluster"]["accessConfig"]["authenticationMode"] == "API"


def test_access_config_defaults_to_config_map(eks: Any, cluster: dict[str, Any]) -> None:
    assert eks.describe_cluster(name=cluster["name"])["cluster"]["accessConfig"]["authenticationMode"] == "CONFIG_MAP"


# ------------------------------------------------------------------ RDS and KMS


def test_kms_key_state_calls_accept_an_arn(clients: dict[str, Any]) -> None:
    kms = clients["kms"]
    arn = kms.create_key(Description="moto-ext test")["KeyMetadata"]["Arn"]
    kms.disable_key(KeyId=arn)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["Enabled"] is False
    kms.enable_key(KeyId=arn)
    kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "PendingDeletion"
    kms.cancel_key_deletion(KeyId=arn)
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] != "PendingDeletion"


def test_missing_parameter_group_is_not_found(clients: dict[str, Any]) -> None:
    response = error_of(clients["rds"].describe_db_parameter_groups, DBParameterGroupName="no-such-group")
    assert response["Error"]["Code"] == "DBParameterGroupNotFound"


def test_new_postgres_parameter_group_lists_engine_defaults(clients: dict[str, Any]) -> None:
    rds = clients["rds"]
    name = f"pg-{uuid.uuid4().hex[:8]}"
    rds.create_db_parameter_group(DBParameterGroupName=name, DBParameterGroupFamily="postgres17", Description="t")
    parameters = {p["ParameterName"]: p for p in rds.describe_db_parameters(DBParameterGroupName=name)["Parameters"]}
    assert parameters["rds.force_ssl"]["ApplyType"] == "dynamic"
    assert parameters["rds.force_ssl"]["ParameterValue"] == "1"
    rds.modify_db_parameter_group(
        DBParameterGroupName=name,
        Parameters=[{"ParameterName": "rds.force_ssl", "ParameterValue": "1", "ApplyMethod": "immediate"}],
    )
    rds.delete_db_parameter_group(DBParameterGroupName=name)


def test_postgres_engine_versions(clients: dict[str, Any]) -> None:
    rds = clients["rds"]
    default = rds.describe_db_engine_versions(Engine="postgres", DefaultOnly=True)["DBEngineVersions"]
    assert [v["EngineVersion"].split(".")[0] for v in default] == ["17"]
    assert "iam-db-auth-error" in default[0]["ExportableLogTypes"]
    sixteen = rds.describe_db_engine_versions(Engine="postgres", EngineVersion="16", DefaultOnly=True)
    assert [v["DBParameterGroupFamily"] for v in sixteen["DBEngineVersions"]] == ["postgres16"]


def test_each_instance_has_its_own_dbi_resource_id(clients: dict[str, Any]) -> None:
    rds = clients["rds"]
    names = [f"db-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    ids = []
    for name in names:
        instance = rds.create_db_instance(
            DBInstanceIdentifier=name,
            Engine="postgres",
            DBInstanceClass="db.t4g.micro",
            AllocatedStorage=20,
            MasterUsername="pgadmin",
            ManageMasterUserPassword=True,
        )["DBInstance"]
        ids.append(instance["DbiResourceId"])
    try:
        assert all(i.startswith("db-") for i in ids)
        assert ids[0] != ids[1]
    finally:
        for name in names:
            rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)


def test_nodegroup_keeps_its_update_config(eks: Any, network: dict[str, Any], cluster: dict[str, Any]) -> None:
    common = {"clusterName": cluster["name"], "nodeRole": ROLE, "subnets": network["subnet_ids"]}
    eks.create_nodegroup(nodegroupName="given", updateConfig={"maxUnavailablePercentage": 25}, **common)
    eks.create_nodegroup(nodegroupName="default", **common)
    described = {
        name: eks.describe_nodegroup(clusterName=cluster["name"], nodegroupName=name)["nodegroup"]["updateConfig"]
        for name in ("given", "default")
    }
    assert described == {"given": {"maxUnavailablePercentage": 25}, "default": {"maxUnavailable": 1}}


def test_rules_referencing_a_group_are_described_with_their_description(ec2: Any, network: dict[str, Any]) -> None:
    vpc_id = network["vpc_id"]
    target = ec2.create_security_group(GroupName=f"t-{uuid.uuid4().hex[:8]}", Description="t", VpcId=vpc_id)["GroupId"]
    peer = ec2.create_security_group(GroupName=f"p-{uuid.uuid4().hex[:8]}", Description="p", VpcId=vpc_id)["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=target,
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 5432,
                "ToPort": 5432,
                "UserIdGroupPairs": [{"GroupId": peer, "Description": "PostgreSQL from the pods"}],
            },
            {
                "IpProtocol": "tcp",
                "FromPort": 443,
                "ToPort": 443,
                "IpRanges": [{"CidrIp": "10.0.0.0/8", "Description": "https"}],
            },
        ],
    )
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [target]}])["SecurityGroupRules"]
    described = {
        (r.get("ReferencedGroupInfo", {}).get("GroupId") or r.get("CidrIpv4")): r.get("Description")
        for r in rules
        if not r["IsEgress"]
    }
    assert described == {peer: "PostgreSQL from the pods", "10.0.0.0/8": "https"}


def test_network_interfaces_get_unique_addresses_inside_their_subnet(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    subnet_id = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.9.1.0/28")["Subnet"]["SubnetId"]
    first = ec2.create_network_interface(SubnetId=subnet_id)["NetworkInterface"]
    second = ec2.create_network_interface(SubnetId=subnet_id, SecondaryPrivateIpAddressCount=2)["NetworkInterface"]
    addresses = [first["PrivateIpAddress"]] + [a["PrivateIpAddress"] for a in second["PrivateIpAddresses"]]
    # 10.9.1.0-3 and the broadcast address are reserved, as in a VPC
    assert addresses == ["10.9.1.4", "10.9.1.5", "10.9.1.6", "10.9.1.7"]
    with pytest.raises(ClientError) as taken:
        ec2.create_network_interface(SubnetId=subnet_id, PrivateIpAddress="10.9.1.5")
    assert taken.value.response["Error"]["Code"] == "InvalidIPAddress.InUse"
    # NAT gateways: moto hands its own interface a random 10.x address; it gets one of the subnet
    ec2.create_nat_gateway(SubnetId=subnet_id, ConnectivityType="private")
    nat_eni = ec2.describe_network_interfaces(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])[
        "NetworkInterfaces"
    ]
    assert sorted(e["PrivateIpAddress"] for e in nat_eni)[-1] == "10.9.1.8"


def test_interface_endpoints_have_the_endpoint_groups_on_their_interfaces(ec2: Any) -> None:
    vpc_id = ec2.create_vpc(CidrBlock="10.8.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.8.{i}.0/24", AvailabilityZone=f"{REGION}{z}")["Subnet"][
            "SubnetId"
        ]
        for i, z in enumerate("ab")
    ]
    groups = [
        ec2.create_security_group(GroupName=f"ep-{i}", Description="endpoint", VpcId=vpc_id)["GroupId"]
        for i in range(2)
    ]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"com.amazonaws.{REGION}.sts",
        VpcEndpointType="Interface",
        SubnetIds=subnets,
        SecurityGroupIds=[groups[0]],
        PrivateDnsEnabled=True,
    )["VpcEndpoint"]

    def interfaces() -> list[dict[str, Any]]:
        ids = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])["VpcEndpoints"][0][
            "NetworkInterfaceIds"
        ]
        return ec2.describe_network_interfaces(NetworkInterfaceIds=ids)["NetworkInterfaces"]

    found = interfaces()
    assert sorted(e["SubnetId"] for e in found) == sorted(subnets)
    for eni in found:
        assert [g["GroupId"] for g in eni["Groups"]] == [groups[0]]
        assert eni["Description"] == f"VPC Endpoint Interface {endpoint['VpcEndpointId']}"
        assert eni["PrivateIpAddress"].startswith("10.8.")
    ec2.modify_vpc_endpoint(
        VpcEndpointId=endpoint["VpcEndpointId"],
        AddSecurityGroupIds=[groups[1]],
        RemoveSecurityGroupIds=[groups[0]],
        RemoveSubnetIds=[subnets[1]],
    )
    found = interfaces()
    assert [(e["SubnetId"], [g["GroupId"] for g in e["Groups"]]) for e in found] == [(subnets[0], [groups[1]])]
