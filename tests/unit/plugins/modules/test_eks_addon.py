# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""eks_addon against the stack's extended moto server (fixtures in conftest.py)."""

import json

import pytest
from _harness import fail, succeed
from botocore.exceptions import ClientError

from ansible_collections.layered.eks_rds.plugins.modules import eks_addon

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/vpc-cni"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/vpc-cni-other"
CONFIG = {
    "env": {"ENABLE_POD_ENI": "true", "WARM_IP_TARGET": "2"},
    "init": {"env": {"DISABLE_TCP_EARLY_DEMUX": "true"}},
}

pytestmark = pytest.mark.usefixtures("moto_eks_env")


@pytest.fixture
def eks(moto_eks_clients):
    return moto_eks_clients["eks"]


@pytest.fixture
def cluster_name(moto_eks_cluster):
    return moto_eks_cluster["name"]


@pytest.fixture
def run(run_eks_module):
    def _run(args, check_mode=False):
        return run_eks_module(eks_addon, args, check_mode=check_mode)

    return _run


def described(eks, cluster_name, name="vpc-cni"):
    try:
        return eks.describe_addon(clusterName=cluster_name, addonName=name)["addon"]
    except ClientError as e:
        assert e.response["Error"]["Code"] == "ResourceNotFoundException"
        return None


def associations(eks, cluster_name):
    listed = eks.list_pod_identity_associations(clusterName=cluster_name)["associations"]
    result = []
    for summary in listed:
        association = eks.describe_pod_identity_association(
            clusterName=cluster_name, associationId=summary["associationId"]
        )["association"]
        result.append((association["namespace"], association["serviceAccount"], association["roleArn"]))
    return sorted(result)


# ------------------------------------------------------------------ create / idempotence


def test_create_with_default_version_and_configuration(run, eks, cluster_name):
    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=CONFIG))

    assert result["changed"] is True
    addon = described(eks, cluster_name)
    # The catalogue's default for Kubernetes 1.31.
    assert addon["addonVersion"] == "v1.19.2-eksbuild.1"
    assert json.loads(addon["configurationValues"]) == CONFIG
    # Sent compact, with sorted keys.
    assert addon["configurationValues"] == json.dumps(CONFIG, sort_keys=True, separators=(",", ":"))
    assert result["addon_version"] == "v1.19.2-eksbuild.1"
    assert result["addon_arn"] == addon["addonArn"]
    assert result["status"] == "ACTIVE"
    assert result["configuration_values"] == CONFIG
    assert result["addon"]["configuration_values"] == addon["configurationValues"]
    assert result["addon"]["addon_name"] == "vpc-cni"
    assert result["diff"] == {
        "before": {},
        "after": {
            "addon_version": "v1.19.2-eksbuild.1",
            "configuration_values": CONFIG,
            "service_account_role_arn": "",
            "tags": {},
        },
    }


def test_second_run_changes_nothing(run, eks, cluster_name):
    args = dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=CONFIG, tags={"Project": "app"})
    succeed(run, args)

    result = succeed(run, args)

    assert result["changed"] is False
    assert result["update"] is None
    assert result["diff"]["before"] == result["diff"]["after"]
    assert eks.list_updates(name=cluster_name, addonName="vpc-cni")["updateIds"] == []


def test_configuration_in_another_key_order_and_spacing_is_no_change(run, eks, cluster_name):
    succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=CONFIG))
    reordered = (
        '{ "init" : {"env": {"DISABLE_TCP_EARLY_DEMUX": "true"}},\n'
        '  "env": {"WARM_IP_TARGET": "2",   "ENABLE_POD_ENI": "true"} }'
    )

    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=reordered))

    assert result["changed"] is False
    assert eks.list_updates(name=cluster_name, addonName="vpc-cni")["updateIds"] == []


def test_configuration_stored_as_yaml_elsewhere_is_compared_by_meaning(run, eks, cluster_name):
    eks.create_addon(clusterName=cluster_name, addonName="coredns", configurationValues="replicaCount: 3\n")

    result = succeed(run, dict(cluster_name=cluster_name, name="coredns", configuration_values={"replicaCount": 3}))

    assert result["changed"] is False
    assert result["configuration_values"] == {"replicaCount": 3}


def test_real_configuration_change(run, eks, cluster_name):
    succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=CONFIG))
    changed = {"env": {"ENABLE_POD_ENI": "false", "WARM_IP_TARGET": "2"}, "init": CONFIG["init"]}

    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=json.dumps(changed)))

    assert result["changed"] is True
    assert json.loads(described(eks, cluster_name)["configurationValues"]) == changed
    assert result["configuration_values"] == changed
    assert result["update"]["status"] == "Successful"
    update = eks.describe_update(name=cluster_name, updateId=result["update"]["id"], addonName="vpc-cni")["update"]
    assert update["type"] == "AddonUpdate"
    assert {p["type"] for p in update["params"]} == {"ConfigurationValues", "ResolveConflicts"}
    assert result["diff"]["before"]["configuration_values"] == CONFIG
    assert result["diff"]["after"]["configuration_values"] == changed


def test_true_is_not_one(run, eks, cluster_name):
    succeed(run, dict(cluster_name=cluster_name, name="coredns", configuration_values={"flag": 1}))

    result = succeed(run, dict(cluster_name=cluster_name, name="coredns", configuration_values={"flag": True}))

    assert result["changed"] is True
    assert json.loads(described(eks, cluster_name, "coredns")["configurationValues"]) == {"flag": True}


def test_empty_configuration_clears_it(run, eks, cluster_name):
    succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=CONFIG))

    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values={}))

    assert result["changed"] is True
    assert json.loads(described(eks, cluster_name)["configurationValues"] or "{}") == {}
    assert result["configuration_values"] == {}
    assert succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=""))["changed"] is False


def test_version_and_role_updates(run, eks, cluster_name):
    succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", addon_version="v1.18.6-eksbuild.1"))
    assert described(eks, cluster_name)["addonVersion"] == "v1.18.6-eksbuild.1"
    # Omitted version: an existing add-on keeps its version.
    assert succeed(run, dict(cluster_name=cluster_name, name="vpc-cni"))["changed"] is False

    result = succeed(
        run,
        dict(
            cluster_name=cluster_name,
            name="vpc-cni",
            addon_version="v1.19.2-eksbuild.1",
            service_account_role_arn=ROLE,
            resolve_conflicts="PRESERVE",
        ),
    )

    assert result["changed"] is True
    addon = described(eks, cluster_name)
    assert (addon["addonVersion"], addon["serviceAccountRoleArn"]) == ("v1.19.2-eksbuild.1", ROLE)
    update = eks.describe_update(name=cluster_name, updateId=result["update"]["id"], addonName="vpc-cni")["update"]
    params = {p["type"]: p["value"] for p in update["params"]}
    assert params["ResolveConflicts"] == "PRESERVE"

    result = fail(run, dict(cluster_name=cluster_name, name="vpc-cni", service_account_role_arn=""))
    assert result["option"] == "service_account_role_arn"
    assert "cannot remove the IAM role" in result["msg"]
    assert described(eks, cluster_name)["serviceAccountRoleArn"] == ROLE


def test_empty_role_on_an_addon_without_role_is_no_change(run, cluster_name):
    succeed(run, dict(cluster_name=cluster_name, name="coredns", service_account_role_arn=""))

    assert (
        succeed(run, dict(cluster_name=cluster_name, name="coredns", service_account_role_arn=""))["changed"] is False
    )


def test_pod_identity_associations(run, eks, cluster_name):
    wanted = [dict(service_account="aws-node", role_arn=ROLE)]
    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", pod_identity_associations=wanted))

    assert result["changed"] is True
    assert associations(eks, cluster_name) == [("kube-system", "aws-node", ROLE)]
    assert result["pod_identity_associations"] == wanted
    assert (
        succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", pod_identity_associations=wanted))["changed"]
        is False
    )

    moved = [dict(service_account="aws-node", role_arn=OTHER_ROLE)]
    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", pod_identity_associations=moved))
    assert result["changed"] is True
    assert associations(eks, cluster_name) == [("kube-system", "aws-node", OTHER_ROLE)]
    assert result["diff"]["before"]["pod_identity_associations"] == wanted
    assert result["diff"]["after"]["pod_identity_associations"] == moved

    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", pod_identity_associations=[]))
    assert result["changed"] is True
    assert associations(eks, cluster_name) == []


def test_tags(run, eks, cluster_name):
    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", tags={"Project": "app", "Old": "1"}))
    arn = result["addon_arn"]
    assert eks.list_tags_for_resource(resourceArn=arn)["tags"] == {"Project": "app", "Old": "1"}

    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", tags={"Project": "app2"}))

    assert result["changed"] is True
    assert result["update"] is None
    assert eks.list_tags_for_resource(resourceArn=arn)["tags"] == {"Project": "app2"}
    assert result["addon"]["tags"] == {"Project": "app2"}


# ------------------------------------------------------------------ check mode


def test_check_mode_create_creates_nothing(run, eks, cluster_name):
    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=CONFIG), check_mode=True)

    assert result["changed"] is True
    assert result["status"] == "CREATING"
    assert result["addon_version"] == "v1.19.2-eksbuild.1"
    assert result["configuration_values"] == CONFIG
    assert described(eks, cluster_name) is None


def test_check_mode_update_changes_nothing(run, eks, cluster_name):
    succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", configuration_values=CONFIG))

    result = succeed(
        run,
        dict(cluster_name=cluster_name, name="vpc-cni", configuration_values={"env": {"A": "1"}}),
        check_mode=True,
    )

    assert result["changed"] is True
    assert result["configuration_values"] == {"env": {"A": "1"}}
    assert json.loads(described(eks, cluster_name)["configurationValues"]) == CONFIG
    assert eks.list_updates(name=cluster_name, addonName="vpc-cni")["updateIds"] == []


def test_check_mode_on_a_missing_cluster_predicts(run, monkeypatch):
    warnings = []
    monkeypatch.setattr(eks_addon.AnsibleAWSModule, "warn", lambda self, msg: warnings.append(msg))

    result = succeed(run, dict(cluster_name="not-created-yet", name="coredns"), check_mode=True)

    assert result["changed"] is True
    assert result["status"] == "CREATING"
    assert any("does not exist" in w for w in warnings)


def test_missing_cluster_fails_naming_the_option(run):
    result = fail(run, dict(cluster_name="no-such-cluster", name="coredns"))

    assert result["option"] == "cluster_name"
    assert result["msg"] == "cluster_name: EKS cluster 'no-such-cluster' was not found"


def test_unknown_addon_fails_clearly(run, cluster_name):
    result = fail(run, dict(cluster_name=cluster_name, name="no-such-addon"))

    assert result["option"] == "name"
    assert "no version of add-on 'no-such-addon'" in result["msg"]


# ------------------------------------------------------------------ absent


def test_absent(run, eks, cluster_name):
    succeed(run, dict(cluster_name=cluster_name, name="vpc-cni"))

    check = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", state="absent"), check_mode=True)
    assert check["changed"] is True
    assert described(eks, cluster_name) is not None

    result = succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", state="absent", preserve=True))
    assert result["changed"] is True
    assert result["status"] == "DELETED"
    assert result["addon"] == {}
    assert described(eks, cluster_name) is None

    assert succeed(run, dict(cluster_name=cluster_name, name="vpc-cni", state="absent"))["changed"] is False
    assert succeed(run, dict(cluster_name="no-such-cluster", name="vpc-cni", state="absent"))["changed"] is False


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "overrides, option, text",
    [
        (dict(configuration_values="[1, 2]"), "configuration_values", "JSON object"),
        (dict(configuration_values='{"env": '), "configuration_values", "not valid JSON"),
        (dict(configuration_values="replicaCount: 3"), "configuration_values", "not valid JSON"),
        (dict(configuration_values=3), "configuration_values", "dict or a JSON object string"),
        (dict(service_account_role_arn="vpc-cni"), "service_account_role_arn", "IAM role ARN"),
        (
            dict(pod_identity_associations=[dict(service_account="Aws_Node", role_arn=ROLE)]),
            "pod_identity_associations.service_account",
            "DNS-1123",
        ),
        (
            dict(pod_identity_associations=[dict(service_account="aws-node", role_arn="role/x")]),
            "pod_identity_associations.role_arn",
            "IAM role ARN",
        ),
        (
            dict(
                pod_identity_associations=[
                    dict(service_account="aws-node", role_arn=ROLE),
                    dict(service_account="aws-node", role_arn=OTHER_ROLE),
                ]
            ),
            "pod_identity_associations",
            "more than once",
        ),
        (dict(cluster_name="bad name"), "cluster_name", "cluster name"),
        (dict(name="bad/name"), "name", "add-on name"),
        (dict(tags={"aws:x": "y"}), "tags", "reserved"),
        (dict(wait_timeout=-1), "wait_timeout", "positive"),
    ],
)
def test_bad_input_fails_before_any_api_call(run, no_clients, overrides, option, text):
    result = fail(run, dict(dict(cluster_name="app", name="vpc-cni"), **overrides))

    assert result["msg"].startswith(f"{option}:"), result["msg"]
    assert result["option"] == option
    assert text in result["msg"]
    assert no_clients == []


def test_bad_resolve_conflicts_is_rejected(run, no_clients):
    result = fail(run, dict(cluster_name="app", name="vpc-cni", resolve_conflicts="KEEP"))

    assert "resolve_conflicts" in result["msg"]
    assert no_clients == []
