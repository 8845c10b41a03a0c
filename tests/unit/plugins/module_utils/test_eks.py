# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json
from unittest import mock

import botocore.session
import pytest
from botocore.stub import Stubber

from ansible_collections.layered.eks_rds.plugins.module_utils import eks
from ansible_collections.layered.eks_rds.plugins.module_utils.eks import EksParameterError

ROLE = "arn:aws:iam::123456789012:role/eks-cluster"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b"
OTHER_KEY = "arn:aws:kms:eu-west-1:123456789012:key/11111111-2222-3333-4444-555555555555"
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]


def cluster_params(**overrides):
    params = dict(
        name="app",
        state="present",
        version="1.31",
        role_arn=ROLE,
        subnets=list(SUBNETS),
        security_groups=None,
        endpoint_private_access=True,
        endpoint_public_access=False,
        public_access_cidrs=None,
        encryption_config=None,
        logging=list(eks.LOG_TYPES),
        authentication_mode=None,
        tags=None,
        purge_tags=True,
        wait=True,
        wait_timeout=1800,
    )
    params.update(overrides)
    return params


def described_cluster(**overrides):
    cluster = dict(
        name="app",
        arn="arn:aws:eks:eu-west-1:123456789012:cluster/app",
        version="1.31",
        roleArn=ROLE,
        status="ACTIVE",
        resourcesVpcConfig=dict(
            subnetIds=list(reversed(SUBNETS)),
            securityGroupIds=[],
            clusterSecurityGroupId="sg-0123456789abcdef0",
            vpcId="vpc-0123456789abcdef0",
            endpointPublicAccess=False,
            endpointPrivateAccess=True,
            publicAccessCidrs=["0.0.0.0/0"],
        ),
        logging=dict(clusterLogging=[dict(types=list(eks.LOG_TYPES), enabled=True)]),
        tags={},
    )
    cluster.update(overrides)
    return cluster


def plan(params=None, cluster=None):
    desired = eks.validate_cluster_params(params or cluster_params())
    return eks.plan_cluster_updates(desired, eks.current_cluster_state(cluster or described_cluster()))


# --------------------------------------------------------------------------- JSON comparison


@pytest.mark.parametrize(
    "left, right",
    [
        ({"a": 1, "b": {"c": [1, 2]}}, {"b": {"c": [1, 2]}, "a": 1}),
        ({"a": 1}, {"a": 1.0}),
        ({}, {}),
        ({"a": None}, {"a": None}),
        ({"a": "true"}, {"a": "true"}),
    ],
)
def test_json_equal(left, right):
    assert eks.json_equal(left, right)
    assert eks.json_equal(right, left)


@pytest.mark.parametrize(
    "left, right",
    [
        ({"a": True}, {"a": 1}),
        ({"a": False}, {"a": 0}),
        ({"a": "1"}, {"a": 1}),
        ({"a": [1, 2]}, {"a": [2, 1]}),
        ({"a": 1}, {"a": 1, "b": None}),
        ({"a": {"b": 1}}, {"a": {"b": 2}}),
        ({"a": "true"}, {"a": True}),
        ({"a": 1}, "{'a': 1}"),
    ],
)
def test_json_not_equal(left, right):
    assert not eks.json_equal(left, right)
    assert not eks.json_equal(right, left)


def test_parse_configuration_values_ignores_formatting():
    text = '{\n  "b": {"y": 2, "x": 1},\n  "a": [1, 2]\n}'

    assert eks.parse_configuration_values(text) == {"a": [1, 2], "b": {"x": 1, "y": 2}}
    assert eks.json_equal(eks.parse_configuration_values(text), {"b": {"x": 1, "y": 2}, "a": [1, 2]})


@pytest.mark.parametrize("value", ["", "   ", {}])
def test_empty_configuration_is_no_configuration(value):
    assert eks.parse_configuration_values(value) == {}


@pytest.mark.parametrize(
    "value, text",
    [
        ("[1]", "JSON object"),
        ('"text"', "JSON object"),
        ("{'a': 1}", "not valid JSON"),
        ("a: 1", "not valid JSON"),
        (1, "dict or a JSON object string"),
        ({"a": {1, 2}}, "cannot be expressed as JSON"),
    ],
)
def test_parse_configuration_values_refuses(value, text):
    with pytest.raises(EksParameterError) as raised:
        eks.parse_configuration_values(value)

    assert raised.value.option == "configuration_values"
    assert str(raised.value).startswith("configuration_values:")
    assert text in str(raised.value)


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, {}),
        ("", {}),
        ('{"a":1}', {"a": 1}),
        ("a: 1\nb:\n  c: true\n", {"a": 1, "b": {"c": True}}),
        ("not: [valid", "not: [valid"),
    ],
)
def test_described_configuration_values(text, expected):
    assert eks.described_configuration_values(text) == expected


def test_compact_json_is_stable():
    assert eks.compact_json({"b": 1, "a": {"d": [1, 2], "c": "x"}}) == '{"a":{"c":"x","d":[1,2]},"b":1}'
    assert json.loads(eks.compact_json({"x": True})) == {"x": True}


# --------------------------------------------------------------------------- validation


def test_validate_cluster_params_normalises():
    desired = eks.validate_cluster_params(
        cluster_params(
            subnets=[SUBNETS[1], SUBNETS[0], SUBNETS[1]],
            endpoint_public_access=True,
            public_access_cidrs=["203.0.113.7/24", "198.51.100.0/24", "203.0.113.0/24"],
            logging=["scheduler", "api"],
            encryption_config=dict(key_arn=KEY),
            tags={"n": 1},
        )
    )

    assert desired["subnets"] == sorted(SUBNETS)
    assert desired["public_access_cidrs"] == ["198.51.100.0/24", "203.0.113.0/24"]
    assert desired["logging"] == ["api", "scheduler"]
    assert desired["encryption_key_arn"] == KEY
    assert desired["tags"] == {"n": "1"}
    assert desired["security_groups"] is None


def test_validate_cluster_params_absent_checks_only_the_name():
    assert eks.validate_cluster_params(cluster_params(state="absent", version=None, role_arn=None)) is None
    with pytest.raises(EksParameterError):
        eks.validate_cluster_params(cluster_params(state="absent", name="bad name"))


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "::/0", "10.1.2.3/0", " 0.0.0.0/0 "])
def test_whole_internet_is_refused(cidr):
    with pytest.raises(EksParameterError) as raised:
        eks.normalize_cidr(cidr, "public_access_cidrs")

    assert raised.value.option == "public_access_cidrs"
    assert "whole Internet" in str(raised.value)


@pytest.mark.parametrize(
    "cidr, expected",
    [("203.0.113.7/24", "203.0.113.0/24"), ("198.51.100.1/32", "198.51.100.1/32"), ("2001:db8::1/64", "2001:db8::/64")],
)
def test_cidrs_are_normalised(cidr, expected):
    assert eks.normalize_cidr(cidr, "public_access_cidrs") == expected


@pytest.mark.parametrize(
    "validator, value",
    [
        (eks.validate_dns1123_label, "a"),
        (eks.validate_dns1123_label, "kube-system"),
        (eks.validate_dns1123_label, "a" * 63),
        (eks.validate_dns1123_label, "0abc"),
        (eks.validate_dns1123_subdomain, "aws-node"),
        (eks.validate_dns1123_subdomain, "a.b-c.d"),
        (eks.validate_dns1123_subdomain, ("a" * 63 + ".") * 3 + "a" * 61),
    ],
)
def test_dns1123_valid(validator, value):
    assert validator(value, "opt") == value


@pytest.mark.parametrize(
    "validator, value",
    [
        (eks.validate_dns1123_label, ""),
        (eks.validate_dns1123_label, "A"),
        (eks.validate_dns1123_label, "a.b"),
        (eks.validate_dns1123_label, "a_b"),
        (eks.validate_dns1123_label, "-a"),
        (eks.validate_dns1123_label, "a-"),
        (eks.validate_dns1123_label, "a" * 64),
        (eks.validate_dns1123_label, None),
        (eks.validate_dns1123_subdomain, "a..b"),
        (eks.validate_dns1123_subdomain, ".a"),
        (eks.validate_dns1123_subdomain, "a."),
        (eks.validate_dns1123_subdomain, "A.b"),
        (eks.validate_dns1123_subdomain, "a" * 254),
        (eks.validate_dns1123_subdomain, "a b"),
    ],
)
def test_dns1123_invalid(validator, value):
    with pytest.raises(EksParameterError) as raised:
        validator(value, "opt")
    assert raised.value.option == "opt"


@pytest.mark.parametrize(
    "value, valid",
    [
        (ROLE, True),
        ("arn:aws-cn:iam::123456789012:role/path/to/role", True),
        ("arn:aws:iam::123456789012:user/someone", False),
        ("arn:aws:iam::12345678901:role/x", False),
        ("role/x", False),
        ("", False),
    ],
)
def test_role_arn(value, valid):
    if valid:
        assert eks.validate_role_arn(value, "role_arn") == value
    else:
        with pytest.raises(EksParameterError):
            eks.validate_role_arn(value, "role_arn")


def test_empty_role_arn_only_where_allowed():
    assert eks.validate_role_arn("", "target_role_arn", allow_empty=True) == ""


@pytest.mark.parametrize(
    "value", ["alias/eks", "arn:aws:kms:eu-west-1:123456789012:alias/eks", "0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b"]
)
def test_kms_key_must_be_a_key_arn(value):
    with pytest.raises(EksParameterError):
        eks.validate_kms_key_arn(value, "encryption_config.key_arn")


def test_addon_params_are_normalised():
    desired = eks.validate_addon_params(
        dict(
            cluster_name="app",
            name="vpc-cni",
            state="present",
            addon_version=None,
            configuration_values='{"b": 1, "a": 2}',
            service_account_role_arn=None,
            pod_identity_associations=[
                dict(service_account="z-sa", role_arn=ROLE),
                dict(service_account="a-sa", role_arn=ROLE),
            ],
            tags=None,
            wait_timeout=10,
        )
    )

    assert desired["configuration_values"] == {"a": 2, "b": 1}
    assert [a["service_account"] for a in desired["pod_identity_associations"]] == ["a-sa", "z-sa"]


# --------------------------------------------------------------------------- cluster planning


def test_no_difference_no_plan():
    assert plan() == []


def test_endpoint_then_logging_are_separate_ordered_updates():
    steps = plan(cluster_params(endpoint_public_access=True, public_access_cidrs=["203.0.113.0/24"], logging=["audit"]))

    assert [s["kind"] for s in steps] == ["endpoint_access", "logging"]
    assert steps[0]["operation"] == steps[1]["operation"] == "update_cluster_config"
    assert steps[0]["request"] == {
        "resourcesVpcConfig": {
            "endpointPublicAccess": True,
            "endpointPrivateAccess": True,
            "publicAccessCidrs": ["203.0.113.0/24"],
        }
    }
    assert steps[1]["request"] == {
        "logging": {
            "clusterLogging": [
                {"types": ["audit"], "enabled": True},
                {"types": ["api", "authenticator", "controllerManager", "scheduler"], "enabled": False},
            ]
        }
    }
    # One kind of change per call.
    assert all(len(s["request"]) == 1 for s in steps)


def test_public_cidrs_are_ignored_while_public_access_is_off():
    cluster = described_cluster()
    cluster["resourcesVpcConfig"]["publicAccessCidrs"] = ["192.0.2.0/24"]

    assert plan(cluster_params(public_access_cidrs=["203.0.113.0/24"]), cluster) == []


def test_public_cidrs_compared_as_a_set():
    cluster = described_cluster()
    cluster["resourcesVpcConfig"].update(
        endpointPublicAccess=True, publicAccessCidrs=["203.0.113.0/24", "198.51.100.0/24"]
    )
    params = cluster_params(endpoint_public_access=True, public_access_cidrs=["198.51.100.0/24", "203.0.113.0/24"])

    assert plan(params, cluster) == []


def test_everything_in_order():
    cluster = described_cluster(version="1.29", accessConfig={"authenticationMode": "CONFIG_MAP"})
    steps = plan(
        cluster_params(
            version="1.31",
            endpoint_public_access=True,
            public_access_cidrs=["203.0.113.0/24"],
            security_groups=["sg-0123456789abcdef1"],
            logging=["api"],
            authentication_mode="API",
            encryption_config=dict(key_arn=KEY),
        ),
        cluster,
    )

    assert [(s["kind"], s["description"]) for s in steps] == [
        ("endpoint_access", "endpoint access"),
        ("vpc_config", "subnets and security groups"),
        ("logging", "control plane logging"),
        ("access_config", "authentication mode API_AND_CONFIG_MAP"),
        ("access_config", "authentication mode API"),
        ("encryption", "secrets encryption"),
        ("version", "Kubernetes version 1.30"),
        ("version", "Kubernetes version 1.31"),
    ]
    assert steps[1]["request"] == {
        "resourcesVpcConfig": {"subnetIds": sorted(SUBNETS), "securityGroupIds": ["sg-0123456789abcdef1"]}
    }
    assert steps[5]["operation"] == "associate_encryption_config"
    assert steps[5]["request"] == {"encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": KEY}}]}
    assert steps[-1] == {
        "kind": "version",
        "operation": "update_cluster_version",
        "description": "Kubernetes version 1.31",
        "request": {"version": "1.31"},
    }


def test_security_groups_omitted_are_not_managed():
    cluster = described_cluster()
    cluster["resourcesVpcConfig"]["securityGroupIds"] = ["sg-0123456789abcdef1"]

    assert plan(cluster_params(), cluster) == []
    steps = plan(cluster_params(subnets=[*SUBNETS, "subnet-0123456789abcdef2"]), cluster)
    assert steps[0]["request"]["resourcesVpcConfig"]["securityGroupIds"] == ["sg-0123456789abcdef1"]


@pytest.mark.parametrize(
    "current, desired, expected",
    [
        ("1.31", "1.31", []),
        ("1.29", "1.30", ["1.30"]),
        ("1.29", "1.32", ["1.30", "1.31", "1.32"]),
    ],
)
def test_version_steps(current, desired, expected):
    assert eks.version_steps(current, desired) == expected


@pytest.mark.parametrize("current, desired, text", [("1.31", "1.30", "downgrade"), ("1.31", "2.0", "upgrade")])
def test_version_steps_refused(current, desired, text):
    with pytest.raises(EksParameterError) as raised:
        eks.version_steps(current, desired)

    assert raised.value.option == "version"
    assert text in str(raised.value)


@pytest.mark.parametrize(
    "cluster_key, params_key, option, text",
    [
        (KEY, "", "encryption_config", "cannot be removed"),
        (KEY, OTHER_KEY, "encryption_config.key_arn", "cannot change the key"),
    ],
)
def test_encryption_changes_refused(cluster_key, params_key, option, text):
    cluster = described_cluster(encryptionConfig=eks.encryption_request(cluster_key))
    params = cluster_params(encryption_config=dict(key_arn=params_key))

    with pytest.raises(EksParameterError) as raised:
        plan(params, cluster)

    assert raised.value.option == option
    assert text in str(raised.value)


def test_encryption_same_key_or_omitted_is_no_change():
    cluster = described_cluster(encryptionConfig=eks.encryption_request(KEY))

    assert plan(cluster_params(encryption_config=dict(key_arn=KEY)), cluster) == []
    assert plan(cluster_params(), cluster) == []


def test_no_encryption_wanted_on_an_unencrypted_cluster_is_no_change():
    assert plan(cluster_params(encryption_config={"key_arn": None})) == []


@pytest.mark.parametrize("have, want", [("API", "API_AND_CONFIG_MAP"), ("API_AND_CONFIG_MAP", "CONFIG_MAP")])
def test_authentication_mode_never_goes_back(have, want):
    cluster = described_cluster(accessConfig={"authenticationMode": have})

    with pytest.raises(EksParameterError) as raised:
        plan(cluster_params(authentication_mode=want), cluster)

    assert raised.value.option == "authentication_mode"


def test_missing_access_config_is_config_map():
    steps = plan(cluster_params(authentication_mode="API_AND_CONFIG_MAP"))

    assert [s["request"] for s in steps] == [{"accessConfig": {"authenticationMode": "API_AND_CONFIG_MAP"}}]
    assert plan(cluster_params(authentication_mode="CONFIG_MAP")) == []


def test_role_change_refused():
    with pytest.raises(EksParameterError) as raised:
        plan(cluster_params(role_arn="arn:aws:iam::123456789012:role/other"))

    assert raised.value.option == "role_arn"


def test_create_request():
    desired = eks.validate_cluster_params(
        cluster_params(
            endpoint_public_access=True,
            public_access_cidrs=["203.0.113.0/24"],
            encryption_config=dict(key_arn=KEY),
            authentication_mode="API",
            tags={"Project": "app"},
            logging=[],
        )
    )

    assert eks.create_cluster_request(desired) == {
        "name": "app",
        "version": "1.31",
        "roleArn": ROLE,
        "resourcesVpcConfig": {
            "subnetIds": sorted(SUBNETS),
            "securityGroupIds": [],
            "endpointPublicAccess": True,
            "endpointPrivateAccess": True,
            "publicAccessCidrs": ["203.0.113.0/24"],
        },
        "logging": {"clusterLogging": [{"types": list(eks.LOG_TYPES), "enabled": False}]},
        "encryptionConfig": [{"resources": ["secrets"], "provider": {"keyArn": KEY}}],
        "accessConfig": {"authenticationMode": "API"},
        "tags": {"Project": "app"},
    }


def test_after_state_and_prediction():
    cluster = described_cluster(tags={"Keep": "1", "Drop": "2"})
    desired = eks.validate_cluster_params(cluster_params(logging=["api"], tags={"Keep": "1", "New": "3"}))
    current = eks.current_cluster_state(cluster)

    after = eks.after_cluster_state(desired, current)
    assert after["logging"] == ["api"]
    assert after["tags"] == {"Keep": "1", "New": "3"}
    assert eks.after_cluster_state(desired, current, purge_tags=False)["tags"] == {"Keep": "1", "Drop": "2", "New": "3"}

    predicted = eks.predicted_cluster(cluster, after)
    assert predicted["logging"]["clusterLogging"][0] == {"types": ["api"], "enabled": True}
    assert predicted["resourcesVpcConfig"]["clusterSecurityGroupId"] == "sg-0123456789abcdef0"
    assert cluster["logging"]["clusterLogging"][0]["types"] == list(eks.LOG_TYPES)  # not modified


# --------------------------------------------------------------------------- add-ons


def test_default_addon_version():
    versions = [
        {
            "addonName": "vpc-cni",
            "addonVersions": [
                {
                    "addonVersion": "v2",
                    "compatibilities": [{"clusterVersion": "1.31", "defaultVersion": False}],
                },
                {
                    "addonVersion": "v1",
                    "compatibilities": [{"clusterVersion": "1.31", "defaultVersion": True}],
                },
            ],
        }
    ]

    assert eks.default_addon_version(versions, "1.31") == "v1"
    versions[0]["addonVersions"][1]["compatibilities"][0]["defaultVersion"] = False
    assert eks.default_addon_version(versions, "1.31") == "v2"
    assert eks.default_addon_version(versions, "1.20") is None
    assert eks.default_addon_version([], "1.31") is None


def addon_desired(**overrides):
    desired = dict(
        addon_version=None,
        configuration_values=None,
        service_account_role_arn=None,
        pod_identity_associations=None,
        tags=None,
    )
    desired.update(overrides)
    return desired


def test_addon_changes_compare_configuration_semantically():
    addon = {"addonName": "vpc-cni", "addonVersion": "v1", "configurationValues": '{"b": 1,\n "a": {"y": 2, "x": 1}}'}

    assert eks.addon_changes(addon_desired(configuration_values={"a": {"x": 1, "y": 2}, "b": 1}), addon) == {}
    assert eks.addon_changes(addon_desired(), addon) == {}
    changes = eks.addon_changes(addon_desired(configuration_values={"a": {"x": 1, "y": 3}, "b": 1}), addon)
    assert list(changes) == ["configuration_values"]
    assert eks.addon_update_request(changes) == {"configurationValues": '{"a":{"x":1,"y":3},"b":1}'}


def test_addon_changes_other_fields():
    addon = {"addonName": "vpc-cni", "addonVersion": "v1"}
    wanted = [{"service_account": "aws-node", "role_arn": ROLE}]

    changes = eks.addon_changes(
        addon_desired(addon_version="v2", service_account_role_arn=ROLE, pod_identity_associations=wanted),
        addon,
        current_associations=[],
    )

    assert eks.addon_update_request(changes) == {
        "addonVersion": "v2",
        "serviceAccountRoleArn": ROLE,
        "podIdentityAssociations": [{"serviceAccount": "aws-node", "roleArn": ROLE}],
    }
    assert eks.addon_changes(addon_desired(addon_version="v1", pod_identity_associations=wanted), addon, wanted) == {}


def test_addon_role_cannot_be_removed():
    with pytest.raises(EksParameterError) as raised:
        eks.addon_changes(addon_desired(service_account_role_arn=""), {"serviceAccountRoleArn": ROLE})

    assert raised.value.option == "service_account_role_arn"


def test_association_id_from_arn():
    arn = "arn:aws:eks:eu-west-1:123456789012:podidentityassociation/app/a-0123456789abcdefg"

    assert eks.association_id_from_arn(arn) == "a-0123456789abcdefg"


# --------------------------------------------------------------------------- tags


def test_tag_changes():
    assert eks.tag_changes({"a": "1", "aws:x": "y"}, None) == ({}, [])
    assert eks.tag_changes({"a": "1", "b": "2", "aws:x": "y"}, {"a": "2"}) == ({"a": "2"}, ["b"])
    assert eks.tag_changes({"a": "1", "b": "2"}, {"c": "3"}, purge_tags=False) == ({"c": "3"}, [])


# --------------------------------------------------------------------------- waiters


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_deadline_is_shared():
    clock = FakeClock()
    deadline = eks.Deadline(100, clock=clock)

    assert deadline.remaining() == 100
    clock.now += 70
    assert deadline.remaining() == 30
    clock.now += 70
    assert deadline.remaining() == 0


@pytest.mark.parametrize(
    "remaining, delay, expected",
    [
        (1800, 30, {"Delay": 30, "MaxAttempts": 61}),
        (100, 30, {"Delay": 30, "MaxAttempts": 4}),
        (10, 30, {"Delay": 10, "MaxAttempts": 2}),
        (0, 30, {"Delay": 1, "MaxAttempts": 1}),
        (0.5, 15, {"Delay": 1, "MaxAttempts": 1}),
    ],
)
def test_waiter_config(remaining, delay, expected):
    assert eks.waiter_config(remaining, delay) == expected


@pytest.fixture
def eks_client():
    session = botocore.session.get_session()
    return session.create_client(
        "eks", region_name="eu-west-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )


class Failed(Exception):
    pass


@pytest.fixture
def module():
    module = mock.Mock()

    def fail_json_aws(exception, msg=None):
        raise Failed(msg)

    module.fail_json_aws.side_effect = fail_json_aws
    return module


def update_response(status, errors=None):
    return {"update": {"id": "u-1", "status": status, "type": "LoggingUpdate", "errors": errors or []}}


def test_update_waiter_succeeds(eks_client, module):
    stubber = Stubber(eks_client)
    params = {"name": "app", "updateId": "u-1"}
    stubber.add_response("describe_update", update_response("InProgress"), params)
    stubber.add_response("describe_update", update_response("Successful"), params)

    with stubber, mock.patch("time.sleep") as sleep:
        eks.wait(module, eks_client, "update_successful", eks.Deadline(60), "the update", name="app", updateId="u-1")

    stubber.assert_no_pending_responses()
    sleep.assert_called_once_with(15)
    module.fail_json_aws.assert_not_called()


def test_update_waiter_reports_the_update_errors(eks_client, module):
    stubber = Stubber(eks_client)
    errors = [{"errorCode": "AccessDenied", "errorMessage": "kms:CreateGrant denied", "resourceIds": []}]
    stubber.add_response("describe_update", update_response("Failed", errors))

    with stubber, pytest.raises(Failed) as raised:
        eks.wait(module, eks_client, "update_successful", eks.Deadline(60), "the update", name="app", updateId="u-1")

    assert str(raised.value) == "Failed waiting for the update (AccessDenied: kms:CreateGrant denied)"


def test_waiter_timeout_is_reported(eks_client, module):
    stubber = Stubber(eks_client)
    stubber.add_response("describe_cluster", {"cluster": {"name": "app", "status": "CREATING"}})

    with stubber, pytest.raises(Failed) as raised:
        eks.wait(module, eks_client, "cluster_active", eks.Deadline(0), "cluster 'app' to be ACTIVE", name="app")

    assert str(raised.value).startswith("Timed out after about 0 seconds (wait_timeout) waiting for cluster 'app'")


def test_botocore_waiters_are_used_through_the_retrying_wrapper(eks_client):
    wrapper = mock.Mock(client=eks_client)

    assert eks.get_waiter(wrapper, "addon_active").name == "AddonActive"
    assert eks.get_waiter(eks_client, "cluster_deleted").name == "ClusterDeleted"
    assert eks.get_waiter(eks_client, "update_successful").name == "UpdateSuccessful"
