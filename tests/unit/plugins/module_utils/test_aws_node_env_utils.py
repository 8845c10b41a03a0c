# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json

import pytest
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import api_exception

from ansible_collections.layered.eks_rds.plugins.module_utils import aws_node_env as utils
from ansible_collections.layered.eks_rds.plugins.module_utils.aws_node_env import EnvParameterError, EnvStateError

NODE_NAME_REF = {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}


def api_error(status, headers=None):
    raw = ApiException(status=status, reason="reason", body=json.dumps({"message": f"status {status}"}))
    raw.headers = headers
    return api_exception(raw)


def params(**overrides):
    base = dict(
        name="aws-node",
        namespace="kube-system",
        container="aws-node",
        init_container="aws-vpc-cni-init",
        state="present",
        env=None,
        init_env=None,
        wait=True,
        wait_timeout=300,
        wait_for_trunk_nodes=0,
    )
    base.update(overrides)
    return base


def daemonset(env=None, init_env=None, containers=None, init_containers=None, **metadata):
    containers = containers or [{"name": "aws-node", "image": "cni", "env": env or []}]
    init_containers = init_containers or [{"name": "aws-vpc-cni-init", "image": "init", "env": init_env or []}]
    return {
        "metadata": {
            "name": "aws-node",
            "namespace": "kube-system",
            "resourceVersion": "7",
            "generation": 3,
            **metadata,
        },
        "spec": {"template": {"spec": {"containers": containers, "initContainers": init_containers}}},
    }


# ---------------------------------------------------------------------- input


class TestValidateEnvOption:
    def test_present_keeps_order(self):
        value = {"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard", "_X1": ""}
        assert list(utils.validate_env_option("env", value, "present")) == list(value)

    def test_omitted_is_none(self):
        assert utils.validate_env_option("env", None, "present") is None
        assert utils.validate_env_option("init_env", None, "absent") is None

    @pytest.mark.parametrize("name", ["1ABC", "A-B", "A B", "", "ÄB", "A.B", "A=B"])
    def test_invalid_names(self, name):
        with pytest.raises(EnvParameterError, match="not a valid environment variable name") as raised:
            utils.validate_env_option("env", {name: "x"}, "present")
        assert raised.value.option == "env"
        assert repr(name) in str(raised.value)

    def test_name_must_be_a_string(self):
        with pytest.raises(EnvParameterError, match="names must be strings, got int 1"):
            utils.validate_env_option("init_env", {1: "x"}, "present")

    @pytest.mark.parametrize("value", [True, False])
    def test_booleans_are_refused_with_a_quoting_hint(self, value):
        word = str(value).lower()
        with pytest.raises(EnvParameterError) as raised:
            utils.validate_env_option("init_env", {"DISABLE_TCP_EARLY_DEMUX": value}, "present")
        message = str(raised.value)
        assert message.startswith(f"init_env.DISABLE_TCP_EARLY_DEMUX: {word} is a boolean")
        assert f'DISABLE_TCP_EARLY_DEMUX: "{word}"' in message
        assert raised.value.option == "init_env"

    @pytest.mark.parametrize(("value", "kind"), [(1, "int"), (1.5, "float"), (None, "null"), (["a"], "list")])
    def test_other_non_strings_are_refused(self, value, kind):
        with pytest.raises(EnvParameterError, match=f"env.WARM_ENI_TARGET: .* is {kind}, environment values are"):
            utils.validate_env_option("env", {"WARM_ENI_TARGET": value}, "present")

    def test_present_needs_a_dict(self):
        with pytest.raises(EnvParameterError, match="with state=present, give a dict"):
            utils.validate_env_option("env", ["ENABLE_POD_ENI"], "present")

    def test_absent_takes_a_list_or_dict_keys(self):
        assert utils.validate_env_option("env", ["A", "B", "A"], "absent") == ["A", "B"]
        assert utils.validate_env_option("env", {"A": True, "B": None}, "absent") == ["A", "B"]

    def test_absent_checks_names(self):
        with pytest.raises(EnvParameterError, match="'9A' is not a valid"):
            utils.validate_env_option("env", ["9A"], "absent")
        with pytest.raises(EnvParameterError, match="give a list of variable names, got str"):
            utils.validate_env_option("env", "A", "absent")


class TestValidateParams:
    def test_normalises_both_options(self):
        desired = utils.validate_params(params(env={"A": "1"}, init_env=None))
        assert desired == {"env": {"A": "1"}, "init_env": None}

    @pytest.mark.parametrize(
        ("override", "option"),
        [
            ({"wait_timeout": -1}, "wait_timeout"),
            ({"wait_for_trunk_nodes": -2}, "wait_for_trunk_nodes"),
            ({"container": ""}, "container"),
            ({"namespace": ""}, "namespace"),
        ],
    )
    def test_bad_numbers_and_names(self, override, option):
        with pytest.raises(EnvParameterError, match=f"^{option}: ") as raised:
            utils.validate_params(params(**override))
        assert raised.value.option == option


# ---------------------------------------------------------------------- env lists


class TestMergeEnv:
    CURRENT = (
        {"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "DEBUG"},
        {"name": "MY_NODE_NAME", "valueFrom": NODE_NAME_REF},
        {"name": "ENABLE_POD_ENI", "value": "false"},
        {"name": "WARM_ENI_TARGET", "value": "1"},
    )

    def test_replaces_in_place_and_appends_new_ones(self):
        merged = utils.merge_env(
            list(self.CURRENT), set_values={"POD_SECURITY_GROUP_ENFORCING_MODE": "standard", "ENABLE_POD_ENI": "true"}
        )
        assert merged == [
            {"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "DEBUG"},
            {"name": "MY_NODE_NAME", "valueFrom": NODE_NAME_REF},
            {"name": "ENABLE_POD_ENI", "value": "true"},
            {"name": "WARM_ENI_TARGET", "value": "1"},
            {"name": "POD_SECURITY_GROUP_ENFORCING_MODE", "value": "standard"},
        ]

    def test_other_entries_are_the_same_objects(self):
        current = list(self.CURRENT)
        merged = utils.merge_env(current, set_values={"NEW": "x"})
        assert all(a is b for a, b in zip(merged, current))

    def test_removes_every_entry_of_a_name(self):
        current = [*self.CURRENT, {"name": "WARM_ENI_TARGET", "value": "2"}]
        merged = utils.merge_env(current, remove=["WARM_ENI_TARGET", "NOT_SET"])
        assert [e["name"] for e in merged] == ["AWS_VPC_K8S_CNI_LOGLEVEL", "MY_NODE_NAME", "ENABLE_POD_ENI"]

    def test_set_drops_later_duplicates_of_an_owned_name(self):
        current = [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}, {"name": "A", "value": "3"}]
        assert utils.merge_env(current, set_values={"A": "9"}) == [
            {"name": "A", "value": "9"},
            {"name": "B", "value": "2"},
        ]

    def test_unchanged_when_values_match(self):
        merged = utils.merge_env(list(self.CURRENT), set_values={"ENABLE_POD_ENI": "false"})
        assert utils.normal_env(merged) == utils.normal_env(self.CURRENT)

    @pytest.mark.parametrize("how", ["set", "remove"])
    def test_value_from_entries_are_never_touched(self, how):
        kwargs = {"set_values": {"MY_NODE_NAME": "x"}} if how == "set" else {"remove": ["MY_NODE_NAME"]}
        with pytest.raises(EnvStateError, match="aws-node: MY_NODE_NAME is set with valueFrom"):
            utils.merge_env(list(self.CURRENT), label="aws-node", **kwargs)

    def test_empty_and_missing_lists(self):
        assert utils.merge_env(None, set_values={"A": ""}) == [{"name": "A", "value": ""}]
        assert utils.merge_env([], remove=["A"]) == []


def test_normal_entry_fills_the_empty_value_the_api_server_leaves_out():
    assert utils.normal_env(
        [{"name": "A"}, {"name": "B", "value": "b"}, {"name": "C", "valueFrom": NODE_NAME_REF}]
    ) == [
        {"name": "A", "value": ""},
        {"name": "B", "value": "b"},
        {"name": "C", "valueFrom": NODE_NAME_REF},
    ]


class TestPlanChanges:
    def plan(self, ds, state="present", **desired):
        wanted = {"env": desired.get("env"), "init_env": desired.get("init_env")}
        return utils.plan_changes(
            ds,
            wanted,
            state,
            container="aws-node",
            init_container="aws-vpc-cni-init",
            label="DaemonSet kube-system/aws-node",
        )

    def test_patch_operations_target_the_named_containers(self):
        ds = daemonset(
            containers=[
                {"name": "aws-eks-nodeagent", "env": [{"name": "X", "value": "1"}]},
                {"name": "aws-node", "env": [{"name": "A", "value": "1"}]},
            ],
            init_env=[{"name": "DISABLE_IPV6", "value": "false"}],
        )
        plan = self.plan(ds, env={"ENABLE_POD_ENI": "true"}, init_env={"DISABLE_TCP_EARLY_DEMUX": "true"})
        assert plan["changed"]
        assert plan["ops"] == [
            {"op": "test", "path": "/spec/template/spec/containers/1/name", "value": "aws-node"},
            {
                "op": "add",
                "path": "/spec/template/spec/containers/1/env",
                "value": [{"name": "A", "value": "1"}, {"name": "ENABLE_POD_ENI", "value": "true"}],
            },
            {"op": "test", "path": "/spec/template/spec/initContainers/0/name", "value": "aws-vpc-cni-init"},
            {
                "op": "add",
                "path": "/spec/template/spec/initContainers/0/env",
                "value": [
                    {"name": "DISABLE_IPV6", "value": "false"},
                    {"name": "DISABLE_TCP_EARLY_DEMUX", "value": "true"},
                ],
            },
        ]
        assert plan["before"]["init_env"] == [{"name": "DISABLE_IPV6", "value": "false"}]
        assert plan["after"]["env"][-1] == {"name": "ENABLE_POD_ENI", "value": "true"}

    def test_no_operations_when_nothing_differs(self):
        ds = daemonset(env=[{"name": "ENABLE_POD_ENI", "value": "true"}, {"name": "EMPTY"}])
        plan = self.plan(ds, env={"ENABLE_POD_ENI": "true", "EMPTY": ""})
        assert plan == {
            "before": {
                "env": [{"name": "ENABLE_POD_ENI", "value": "true"}, {"name": "EMPTY", "value": ""}],
                "init_env": [],
            },
            "after": {
                "env": [{"name": "ENABLE_POD_ENI", "value": "true"}, {"name": "EMPTY", "value": ""}],
                "init_env": [],
            },
            "changed": False,
            "ops": [],
        }

    def test_absent(self):
        ds = daemonset(env=[{"name": "A", "value": "1"}, {"name": "B", "value": "2"}])
        plan = self.plan(ds, state="absent", env=["A", "C"])
        assert plan["after"]["env"] == [{"name": "B", "value": "2"}]
        assert self.plan(ds, state="absent", env=["C"])["changed"] is False

    def test_missing_container_names_the_present_ones(self):
        ds = daemonset(containers=[{"name": "cni"}, {"name": "agent"}])
        with pytest.raises(EnvStateError, match="has no container named 'aws-node'; its containers: 'cni', 'agent'"):
            self.plan(ds, env={"A": "1"})

    def test_missing_init_container(self):
        ds = daemonset()
        ds["spec"]["template"]["spec"]["initContainers"] = []
        with pytest.raises(
            EnvStateError, match="has no init container named 'aws-vpc-cni-init'; its init containers: none"
        ):
            self.plan(ds, init_env={"DISABLE_TCP_EARLY_DEMUX": "true"})

    def test_unmanaged_missing_init_container_is_fine(self):
        ds = daemonset()
        del ds["spec"]["template"]["spec"]["initContainers"]
        plan = self.plan(ds, env={"A": "1"})
        assert "init_env" not in plan["before"]
        assert plan["changed"]


def test_patch_document_tests_the_resource_version_first():
    ops = [{"op": "add", "path": "/x", "value": 1}]
    assert utils.patch_document("42", ops) == [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
        {"op": "add", "path": "/x", "value": 1},
    ]


def test_container_env():
    ds = daemonset(env=[{"name": "A"}])
    assert utils.container_env(ds, "env", "aws-node") == [{"name": "A", "value": ""}]
    assert utils.container_env(ds, "init_env", "other") is None


# ---------------------------------------------------------------------- rollout


class TestRolloutStatus:
    @staticmethod
    def ds(generation=2, strategy=None, **status):
        ds = {"metadata": {"generation": generation}, "spec": {}, "status": status}
        if strategy:
            ds["spec"]["updateStrategy"] = {"type": strategy}
        return ds

    def test_done(self):
        status = utils.rollout_status(
            self.ds(observedGeneration=2, desiredNumberScheduled=3, updatedNumberScheduled=3, numberAvailable=3)
        )
        assert status["done"] is True
        assert status["pending"] == []
        assert status["update_strategy"] == "RollingUpdate"

    def test_no_nodes_is_done_once_observed(self):
        # the API server leaves zero counts out
        assert utils.rollout_status(self.ds(observedGeneration=2, desiredNumberScheduled=0))["done"] is True
        assert utils.rollout_status(self.ds(desiredNumberScheduled=0))["pending"] == ["observed generation 0 of 2"]

    def test_pending_names_every_count(self):
        status = utils.rollout_status(
            self.ds(generation=5, observedGeneration=4, desiredNumberScheduled=3, updatedNumberScheduled=1)
        )
        assert status["done"] is False
        assert status["pending"] == ["observed generation 4 of 5", "1 of 3 pods updated", "0 of 3 pods available"]
        assert (status["desired_number_scheduled"], status["updated_number_scheduled"], status["number_available"]) == (
            3,
            1,
            0,
        )

    def test_more_available_than_desired_is_done(self):
        status = utils.rollout_status(
            self.ds(observedGeneration=2, desiredNumberScheduled=2, updatedNumberScheduled=2, numberAvailable=3)
        )
        assert status["done"] is True

    def test_on_delete_waits_for_the_generation_only(self):
        status = utils.rollout_status(self.ds(strategy="OnDelete", observedGeneration=2, desiredNumberScheduled=3))
        assert status["done"] is True
        assert status["update_strategy"] == "OnDelete"

    def test_without_status(self):
        assert utils.rollout_status({"metadata": {"generation": 1}})["pending"] == ["observed generation 0 of 1"]


def test_trunk_node_names():
    nodes = [
        {"metadata": {"name": "b", "labels": {utils.TRUNK_LABEL: "true"}}},
        {"metadata": {"name": "c", "labels": {utils.TRUNK_LABEL: "false"}}},
        {"metadata": {"name": "d"}},
        {"metadata": {"name": "a", "labels": {utils.TRUNK_LABEL: "true"}}},
    ]
    assert utils.trunk_node_names(nodes) == ["a", "b"]


# ---------------------------------------------------------------------- EKS add-on


def eks_managed_fields():
    """managedFields as EKS's server-side apply of the vpc-cni add-on leaves them (abridged)."""
    return [
        {
            "manager": "eks",
            "operation": "Apply",
            "apiVersion": "apps/v1",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:metadata": {"f:labels": {"f:k8s-app": {}}},
                "f:spec": {
                    "f:template": {
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"aws-node"}': {
                                    ".": {},
                                    "f:env": {
                                        'k:{"name":"ENABLE_POD_ENI"}': {".": {}, "f:name": {}, "f:value": {}},
                                        'k:{"name":"WARM_ENI_TARGET"}': {".": {}, "f:name": {}, "f:value": {}},
                                    },
                                    "f:image": {},
                                }
                            },
                            "f:initContainers": {
                                'k:{"name":"aws-vpc-cni-init"}': {
                                    "f:env": {'k:{"name":"DISABLE_TCP_EARLY_DEMUX"}': {".": {}}},
                                }
                            },
                        }
                    }
                },
            },
        },
        {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status", "fieldsV1": {}},
    ]


OWNED_NAMES = {"env": ["ENABLE_POD_ENI", "POD_SECURITY_GROUP_ENFORCING_MODE"], "init_env": ["DISABLE_TCP_EARLY_DEMUX"]}


class TestEksAddonFields:
    def test_managed_add_on_and_the_entries_it_owns(self):
        ds = daemonset(managedFields=eks_managed_fields())
        assert utils.eks_addon_fields(ds, "aws-node", "aws-vpc-cni-init", OWNED_NAMES) == {
            "managed": True,
            "env": ["ENABLE_POD_ENI"],
            "init_env": ["DISABLE_TCP_EARLY_DEMUX"],
        }

    def test_other_container_names_own_nothing(self):
        ds = daemonset(managedFields=eks_managed_fields())
        assert utils.eks_addon_fields(ds, "cni", "cni-init", OWNED_NAMES) == {
            "managed": True,
            "env": [],
            "init_env": [],
        }

    def test_self_managed_helm_install_is_not_an_add_on(self):
        ds = daemonset(
            labels={"app.kubernetes.io/managed-by": "Helm", "app.kubernetes.io/instance": "aws-vpc-cni"},
            managedFields=[
                {"manager": "helm", "operation": "Update", "fieldsV1": {}},
                {"manager": "kube-controller-manager", "operation": "Update", "subresource": "status"},
            ],
        )
        assert utils.eks_addon_fields(ds, "aws-node", "aws-vpc-cni-init", OWNED_NAMES)["managed"] is False

    def test_no_managed_fields(self):
        assert utils.eks_addon_fields(daemonset(), "aws-node", "aws-vpc-cni-init", {}) == {
            "managed": False,
            "env": [],
            "init_env": [],
        }

    def test_malformed_keys_are_skipped(self):
        fields = eks_managed_fields()
        containers = fields[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
        containers["k:not json"] = {}
        containers["k:[1]"] = {}
        ds = daemonset(managedFields=fields)
        assert utils.eks_addon_fields(ds, "aws-node", "aws-vpc-cni-init", OWNED_NAMES)["env"] == ["ENABLE_POD_ENI"]


# ---------------------------------------------------------------------- time and retries


class FakeClock:
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_jittered_delays_grow_and_are_capped():
    delays = list(utils.jittered_delays(attempts=8, base=0.5, cap=4.0, uniform=lambda low, high: high))
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    assert all(0 <= d <= 4.0 for d in utils.jittered_delays(attempts=50, cap=4.0))


def scripted(answers):
    """A call that returns or raises each of ``answers`` in turn."""

    def call():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return call


class TestRetryTransient:
    def test_retries_throttling_and_server_errors(self):
        call = scripted([api_error(429), api_error(503), api_error(500), "ok"])
        sleeps = []
        assert utils.retry_transient(call, delays=[1, 2, 3], sleep=sleeps.append) == "ok"
        assert sleeps == [1, 2, 3]

    def test_honours_retry_after(self):
        call = scripted([api_error(429, headers={"Retry-After": "7"}), "ok"])
        sleeps = []
        utils.retry_transient(call, delays=[0.1], sleep=sleeps.append)
        assert sleeps == [7.0]

    def test_gives_up_after_the_last_delay(self):
        calls = []

        def call():
            calls.append(1)
            raise api_error(503)

        with pytest.raises(Exception, match="503"):
            utils.retry_transient(call, delays=[0, 0], sleep=lambda s: None)
        assert len(calls) == 3

    @pytest.mark.parametrize("status", [400, 403, 404, 409, 422])
    def test_other_errors_are_raised_at_once(self, status):
        calls = []

        def call():
            calls.append(1)
            raise api_error(status)

        with pytest.raises(Exception, match=str(status)):
            utils.retry_transient(call, delays=[0, 0], sleep=lambda s: None)
        assert calls == [1]


class TestPoll:
    def test_polls_until_done(self):
        clock = FakeClock()
        answers = iter([(False, 1), (False, 2), (True, 3)])
        assert utils.poll(lambda: next(answers), utils.Deadline(60, clock), 2.0, clock.sleep) == (True, 3)
        assert clock.sleeps == [2.0, 2.0]

    def test_stops_at_the_deadline_without_overshooting(self):
        clock = FakeClock()
        done, value = utils.poll(lambda: (False, clock.now), utils.Deadline(5, clock), 2.0, clock.sleep)
        assert (done, value) == (False, 105.0)
        assert clock.sleeps == [2.0, 2.0, 1.0]

    def test_zero_timeout_checks_once(self):
        clock = FakeClock()
        calls = []
        assert utils.poll(lambda: (calls.append(1) or False, None), utils.Deadline(0, clock), 2.0, clock.sleep) == (
            False,
            None,
        )
        assert calls == [1]
        assert clock.sleeps == []
