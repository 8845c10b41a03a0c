# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""eks_pod_identity_association against the stack's extended moto server (fixtures in conftest.py)."""

import pytest
from _harness import fail, succeed

from ansible_collections.layered.eks_rds.plugins.modules import eks_pod_identity_association

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/metabase-rds-connect"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/metabase-rds-connect-v2"
TARGET_ROLE = "arn:aws:iam::210987654321:role/metabase-cross-account"

pytestmark = pytest.mark.usefixtures("moto_eks_env")


@pytest.fixture
def eks(moto_eks_clients):
    return moto_eks_clients["eks"]


@pytest.fixture
def cluster_name(moto_eks_cluster):
    return moto_eks_cluster["name"]


@pytest.fixture
def args(cluster_name):
    return dict(cluster_name=cluster_name, namespace="metabase", service_account="metabase", role_arn=ROLE)


@pytest.fixture
def run(run_eks_module):
    def _run(args, check_mode=False):
        return run_eks_module(eks_pod_identity_association, args, check_mode=check_mode)

    return _run


def listed(eks, cluster_name):
    return eks.list_pod_identity_associations(clusterName=cluster_name)["associations"]


def read_back(eks, cluster_name, association_id):
    return eks.describe_pod_identity_association(clusterName=cluster_name, associationId=association_id)["association"]


def test_create_and_return_values(run, eks, args, cluster_name):
    result = succeed(run, dict(args, tags={"Project": "app"}))

    assert result["changed"] is True
    [summary] = listed(eks, cluster_name)
    association = read_back(eks, cluster_name, summary["associationId"])
    assert (association["namespace"], association["serviceAccount"], association["roleArn"]) == (
        "metabase",
        "metabase",
        ROLE,
    )
    assert association["tags"] == {"Project": "app"}
    assert result["association_id"] == summary["associationId"]
    assert result["association_arn"] == summary["associationArn"]
    assert (result["role_arn"], result["namespace"], result["service_account"]) == (ROLE, "metabase", "metabase")
    assert result["target_role_arn"] is None
    assert result["association"]["role_arn"] == ROLE
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["role_arn"] == ROLE


def test_second_run_changes_nothing(run, eks, args, cluster_name):
    first = succeed(run, dict(args, tags={"Project": "app"}))

    result = succeed(run, dict(args, tags={"Project": "app"}))

    assert result["changed"] is False
    assert result["association_id"] == first["association_id"]
    assert result["diff"]["before"] == result["diff"]["after"]
    assert len(listed(eks, cluster_name)) == 1


def test_role_is_updated_in_place(run, eks, args, cluster_name):
    first = succeed(run, args)

    result = succeed(run, dict(args, role_arn=OTHER_ROLE))

    assert result["changed"] is True
    assert result["association_id"] == first["association_id"]
    assert read_back(eks, cluster_name, first["association_id"])["roleArn"] == OTHER_ROLE
    assert result["role_arn"] == OTHER_ROLE
    assert (result["diff"]["before"]["role_arn"], result["diff"]["after"]["role_arn"]) == (ROLE, OTHER_ROLE)
    assert len(listed(eks, cluster_name)) == 1


def test_target_role_is_set_and_removed(run, eks, args, cluster_name):
    first = succeed(run, args)

    result = succeed(run, dict(args, target_role_arn=TARGET_ROLE))
    assert result["changed"] is True
    association = read_back(eks, cluster_name, first["association_id"])
    assert association["targetRoleArn"] == TARGET_ROLE
    assert result["target_role_arn"] == TARGET_ROLE
    assert succeed(run, dict(args, target_role_arn=TARGET_ROLE))["changed"] is False
    assert succeed(run, args)["changed"] is False  # omitted: left as it is

    result = succeed(run, dict(args, target_role_arn=""))
    assert result["changed"] is True
    assert "targetRoleArn" not in read_back(eks, cluster_name, first["association_id"])


def test_tags_are_updated(run, eks, args, cluster_name):
    first = succeed(run, dict(args, tags={"Project": "app", "Old": "1"}))

    result = succeed(run, dict(args, tags={"Project": "app2"}))

    assert result["changed"] is True
    assert eks.list_tags_for_resource(resourceArn=first["association_arn"])["tags"] == {"Project": "app2"}
    assert result["association"]["tags"] == {"Project": "app2"}


def test_existing_association_is_adopted_not_duplicated(run, eks, args, cluster_name):
    existing = eks.create_pod_identity_association(
        clusterName=cluster_name, namespace="metabase", serviceAccount="metabase", roleArn=OTHER_ROLE
    )["association"]
    # Another service account and another namespace with the same account name are not the one.
    eks.create_pod_identity_association(
        clusterName=cluster_name, namespace="metabase", serviceAccount="worker", roleArn=ROLE
    )
    eks.create_pod_identity_association(
        clusterName=cluster_name, namespace="other", serviceAccount="metabase", roleArn=ROLE
    )

    result = succeed(run, args)

    assert result["changed"] is True
    assert result["association_id"] == existing["associationId"]
    assert read_back(eks, cluster_name, existing["associationId"])["roleArn"] == ROLE
    assert len(listed(eks, cluster_name)) == 3


def test_creation_race_is_adopted(run, eks, args, cluster_name, monkeypatch):
    """Another run creates the association between our lookup and our creation."""
    real_find = eks_pod_identity_association.Association.find
    calls = []

    def find(self):
        calls.append(1)
        if len(calls) == 1:
            eks.create_pod_identity_association(
                clusterName=cluster_name, namespace="metabase", serviceAccount="metabase", roleArn=OTHER_ROLE
            )
            return None
        return real_find(self)

    monkeypatch.setattr(eks_pod_identity_association.Association, "find", find)

    result = succeed(run, args)

    assert result["changed"] is True
    [summary] = listed(eks, cluster_name)
    assert result["association_id"] == summary["associationId"]
    assert read_back(eks, cluster_name, summary["associationId"])["roleArn"] == ROLE


def test_association_owned_by_an_addon_is_refused(run, eks, cluster_name):
    eks.create_addon(
        clusterName=cluster_name,
        addonName="vpc-cni",
        podIdentityAssociations=[{"serviceAccount": "aws-node", "roleArn": ROLE}],
    )
    args = dict(cluster_name=cluster_name, namespace="kube-system", service_account="aws-node", role_arn=OTHER_ROLE)

    result = fail(run, args)
    assert "belongs to the add-on" in result["msg"]
    result = fail(run, dict(args, state="absent"))
    assert "belongs to the add-on" in result["msg"]

    [summary] = listed(eks, cluster_name)
    assert read_back(eks, cluster_name, summary["associationId"])["roleArn"] == ROLE


# ------------------------------------------------------------------ check mode


def test_check_mode_creates_nothing(run, eks, args, cluster_name):
    result = succeed(run, args, check_mode=True)

    assert result["changed"] is True
    assert result["association_id"] is None
    assert result["role_arn"] == ROLE
    assert listed(eks, cluster_name) == []


def test_check_mode_update_changes_nothing(run, eks, args, cluster_name):
    first = succeed(run, args)

    result = succeed(run, dict(args, role_arn=OTHER_ROLE), check_mode=True)

    assert result["changed"] is True
    assert result["role_arn"] == OTHER_ROLE
    assert read_back(eks, cluster_name, first["association_id"])["roleArn"] == ROLE


def test_check_mode_on_a_missing_cluster_predicts(run, monkeypatch):
    warnings = []
    monkeypatch.setattr(eks_pod_identity_association.AnsibleAWSModule, "warn", lambda self, msg: warnings.append(msg))

    result = succeed(
        run,
        dict(cluster_name="not-created-yet", namespace="metabase", service_account="metabase", role_arn=ROLE),
        check_mode=True,
    )

    assert result["changed"] is True
    assert any("does not exist" in w for w in warnings)


def test_missing_cluster_fails_naming_the_option(run):
    result = fail(run, dict(cluster_name="no-such-cluster", namespace="a", service_account="b", role_arn=ROLE))

    assert result["option"] == "cluster_name"
    assert "'no-such-cluster' was not found" in result["msg"]


# ------------------------------------------------------------------ absent


def test_absent(run, eks, args, cluster_name):
    succeed(run, args)
    absent = dict(args, state="absent")

    assert succeed(run, absent, check_mode=True)["changed"] is True
    assert len(listed(eks, cluster_name)) == 1

    result = succeed(run, absent)
    assert result["changed"] is True
    assert result["association"] == {}
    assert result["diff"]["before"]["role_arn"] == ROLE
    assert listed(eks, cluster_name) == []

    assert succeed(run, absent)["changed"] is False
    assert succeed(run, dict(absent, cluster_name="no-such-cluster"))["changed"] is False


def test_absent_needs_no_role(run, cluster_name):
    result = succeed(run, dict(cluster_name=cluster_name, namespace="a", service_account="b", state="absent"))

    assert result["changed"] is False


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "overrides, option, text",
    [
        (dict(namespace="Metabase"), "namespace", "DNS-1123 label"),
        (dict(namespace="meta.base"), "namespace", "DNS-1123 label"),
        (dict(namespace="-metabase"), "namespace", "DNS-1123 label"),
        (dict(namespace="a" * 64), "namespace", "longer than 63"),
        (dict(namespace=""), "namespace", "non-empty"),
        (dict(service_account="Metabase"), "service_account", "DNS-1123 subdomain"),
        (dict(service_account="meta_base"), "service_account", "DNS-1123 subdomain"),
        (dict(service_account="metabase."), "service_account", "DNS-1123 subdomain"),
        (dict(service_account="a" * 254), "service_account", "longer than 253"),
        (dict(role_arn="metabase-rds-connect"), "role_arn", "IAM role ARN"),
        (dict(role_arn=f"arn:aws:iam::{ACCOUNT}:user/metabase"), "role_arn", "IAM role ARN"),
        (dict(target_role_arn="x"), "target_role_arn", "IAM role ARN"),
        (dict(cluster_name="_cluster"), "cluster_name", "cluster name"),
        (dict(tags={"aws:eks": "x"}), "tags", "reserved"),
    ],
)
def test_bad_input_fails_before_any_api_call(run, no_clients, overrides, option, text):
    args = dict(cluster_name="app", namespace="metabase", service_account="metabase", role_arn=ROLE)

    result = fail(run, dict(args, **overrides))

    assert result["msg"].startswith(f"{option}:"), result["msg"]
    assert result["option"] == option
    assert text in result["msg"]
    assert no_clients == []


def test_long_valid_names_are_accepted(run, no_clients, monkeypatch):
    """Limits are inclusive: a 63-character namespace and a 253-character service account pass validation."""
    namespace = "n" * 63
    service_account = ".".join(["s" * 63] * 4)[:253].rstrip(".")
    assert len(service_account) == 253

    with pytest.raises(AssertionError, match="before input validation finished"):
        run(dict(cluster_name="app", namespace=namespace, service_account=service_account, role_arn=ROLE))
    assert len(no_clients) == 1


def test_role_is_required_when_present(run, no_clients):
    result = fail(run, dict(cluster_name="app", namespace="metabase", service_account="metabase"))

    assert "role_arn" in result["msg"]
    assert no_clients == []
