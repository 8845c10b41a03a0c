# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""aws_node_env's main() against an in-memory API server.

``FakeApiServer`` stands in for kubernetes.core's K8SClient: it keeps DaemonSets and Nodes as
dicts, applies JSON patches with the jsonpatch library (a failed ``test`` answers 422 as the
kube-apiserver does), bumps resourceVersion and generation, honours dryRun=All, records every
request and can be told to fail or to change the DaemonSet behind the module's back. The
molecule scenario tests/molecule/aws_node_env runs the module against the real kube-apiserver.
"""

import copy
import json
import re
import socket
import types

import jsonpatch
import kubernetes.config
import pytest
from _harness import ModuleFail, fail, patch_exits, run_main, succeed
from ansible.module_utils import basic
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import api_exception

from ansible_collections.layered.eks_rds.plugins.module_utils import aws_node_env as utils
from ansible_collections.layered.eks_rds.plugins.modules import aws_node_env

NAMESPACE = "kube-system"
NODE_NAME_REF = {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}
MAIN_ENV = [
    {"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "DEBUG"},
    {"name": "MY_NODE_NAME", "valueFrom": NODE_NAME_REF},
    {"name": "ENABLE_POD_ENI", "value": "false"},
    {"name": "WARM_ENI_TARGET", "value": "1"},
]
INIT_ENV = [{"name": "DISABLE_IPV6", "value": "false"}]


def api_error(status, message="", headers=None):
    raw = ApiException(status=status, reason=f"reason {status}", body=json.dumps({"message": message, "code": status}))
    raw.headers = headers
    return api_exception(raw)


def aws_node(**metadata):
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {
            "name": "aws-node",
            "namespace": NAMESPACE,
            "uid": "0b2c4d6e-0000-4000-8000-000000000001",
            "resourceVersion": "100",
            "generation": 1,
            **metadata,
        },
        "spec": {
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "spec": {
                    "initContainers": [{"name": "aws-vpc-cni-init", "image": "init", "env": copy.deepcopy(INIT_ENV)}],
                    "containers": [
                        {"name": "aws-node", "image": "cni", "env": copy.deepcopy(MAIN_ENV)},
                        {"name": "aws-eks-nodeagent", "image": "agent"},
                    ],
                }
            },
        },
        "status": {
            "observedGeneration": 1,
            "desiredNumberScheduled": 2,
            "updatedNumberScheduled": 2,
            "numberAvailable": 2,
        },
    }


class Instance:
    """What the dynamic client returns: an object with to_dict()."""

    def __init__(self, data):
        self._data = copy.deepcopy(data)

    def to_dict(self):
        return copy.deepcopy(self._data)


class FakeApiServer:
    def __init__(self, daemonset=None):
        self.daemonsets = {}
        if daemonset is not None:
            self.daemonsets[(daemonset["metadata"]["namespace"], daemonset["metadata"]["name"])] = daemonset
        self.nodes = []
        self.requests = []
        self.patch_faults = []  # errors the next patches raise, in order
        self.get_faults = []
        self.before_patch = None  # callable(daemonset) run before applying a patch: a concurrent writer
        self.controller = None  # callable(daemonset) run on every read: the DaemonSet controller
        self.next_version = 101

    # K8SClient's interface, as used by the module
    def resource(self, kind, api_version):
        self.requests.append(("resource", kind, api_version))
        return kind

    def get(self, resource, name=None, namespace=None, label_selector=None):
        self.requests.append(("get", resource, name, namespace, label_selector))
        if self.get_faults:
            raise self.get_faults.pop(0)
        if resource == "Node":
            key, _sep, value = label_selector.partition("=")
            items = [n for n in self.nodes if (n["metadata"].get("labels") or {}).get(key) == value]
            return Instance({"kind": "NodeList", "items": items})
        daemonset = self.daemonsets.get((namespace, name))
        if daemonset is None:
            raise api_error(404, f'daemonsets.apps "{name}" not found')
        if self.controller:
            self.controller(daemonset)
        return Instance(daemonset)

    def patch(self, resource, body, name=None, namespace=None, content_type=None, field_manager=None, dry_run=None):
        self.requests.append(("patch", resource, name, namespace, content_type, field_manager, dry_run, body))
        if self.patch_faults:
            raise self.patch_faults.pop(0)
        if self.before_patch:
            self.before_patch(self.daemonsets[(namespace, name)])
            self.before_patch = None
        current = self.daemonsets[(namespace, name)]
        try:
            patched = jsonpatch.apply_patch(current, body)
        except jsonpatch.JsonPatchTestFailed:
            raise api_error(422, "the server rejected our request due to an error in our request") from None
        if patched["spec"] != current["spec"]:
            patched["metadata"]["generation"] += 1
        if dry_run != "All":
            self.bump(patched)
            self.daemonsets[(namespace, name)] = patched
        return Instance(patched)

    def bump(self, daemonset):
        daemonset["metadata"]["resourceVersion"] = str(self.next_version)
        self.next_version += 1

    # reading the state back
    def stored(self, name="aws-node", namespace=NAMESPACE):
        return self.daemonsets[(namespace, name)]

    def env(self, container="aws-node", key="containers"):
        pod = self.stored()["spec"]["template"]["spec"]
        return next(c for c in pod[key] if c["name"] == container).get("env")

    def verbs(self):
        return [r[0] for r in self.requests if r[0] != "resource"]

    def patches(self):
        return [r for r in self.requests if r[0] == "patch"]


def catch_up(daemonset):
    """The controller has rolled the current generation out to every node."""
    daemonset["status"] = {
        "observedGeneration": daemonset["metadata"]["generation"],
        "desiredNumberScheduled": 2,
        "updatedNumberScheduled": 2,
        "numberAvailable": 2,
    }


class FakeTime:
    """A clock that only moves when the module sleeps."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps = []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(autouse=True)
def fake_time(monkeypatch):
    fake = FakeTime()
    namespace = types.SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep)
    monkeypatch.setattr(utils, "time", namespace)
    monkeypatch.setattr(aws_node_env, "time", namespace)
    return fake


@pytest.fixture(autouse=True)
def warnings(monkeypatch):
    seen = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, msg: seen.append(msg))
    return seen


@pytest.fixture
def server(monkeypatch):
    fake = FakeApiServer(aws_node())
    fake.controller = catch_up
    monkeypatch.setattr(aws_node_env, "get_api_client", lambda module=None, **kwargs: fake)
    return fake


@pytest.fixture
def run(monkeypatch):
    patch_exits(monkeypatch)

    def runner(args, check_mode=False, diff=True):
        outcome = run_main(aws_node_env.main, args, check_mode=check_mode, diff=diff)
        return isinstance(outcome, ModuleFail), outcome.result

    return runner


@pytest.fixture
def no_api_client(monkeypatch):
    """Every way of reaching an API server fails the test and is recorded."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append((args, kwargs))
        raise AssertionError("an API client was created (or a connection made) before input validation finished")

    monkeypatch.setattr(aws_node_env, "get_api_client", refuse)
    monkeypatch.setattr(kubernetes.config, "load_kube_config", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


# ---------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("args", "option", "text"),
    [
        ({"env": {"ENABLE_POD_ENI": True}}, "env", 'env.ENABLE_POD_ENI: true is a boolean.*quote it.*"true"'),
        ({"init_env": {"DISABLE_TCP_EARLY_DEMUX": False}}, "init_env", "init_env.DISABLE_TCP_EARLY_DEMUX: false is a"),
        ({"env": {"WARM_ENI_TARGET": 1}}, "env", "env.WARM_ENI_TARGET: 1 is int"),
        ({"env": {"WARM_ENI_TARGET": None}}, "env", "env.WARM_ENI_TARGET: None is null"),
        ({"env": {"BAD-NAME": "x"}}, "env", "'BAD-NAME' is not a valid environment variable name"),
        ({"env": {"1ST": "x"}}, "env", "'1ST' is not a valid"),
        ({"init_env": ["A"]}, "init_env", "with state=present, give a dict"),
        ({"state": "absent", "env": ["OK", "NOT OK"]}, "env", "'NOT OK' is not a valid"),
        ({"state": "absent", "env": "ENABLE_POD_ENI"}, "env", "give a list of variable names"),
        ({"wait_timeout": -5}, "wait_timeout", "wait_timeout: must be 0 or more"),
        ({"wait_for_trunk_nodes": -1}, "wait_for_trunk_nodes", "wait_for_trunk_nodes: must be 0 or more"),
    ],
)
def test_bad_input_fails_before_any_api_call(run, no_api_client, args, option, text):
    result = fail(run, {"kubeconfig": "/nonexistent/kubeconfig", **args})
    assert result.get("option") == option
    assert re.search(text, result["msg"]), result["msg"]
    assert no_api_client == []


def test_unknown_state_is_refused_before_any_api_call(run, no_api_client):
    result = fail(run, {"state": "removed", "env": {"A": "1"}})
    assert "state" in result["msg"]
    assert no_api_client == []


# ---------------------------------------------------------------------- present


def test_sets_variables_in_place_and_appends_new_ones(run, server):
    result = succeed(
        run,
        {
            "env": {"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "standard"},
            "init_env": {"DISABLE_TCP_EARLY_DEMUX": "true"},
        },
    )

    expected_main = [
        {"name": "AWS_VPC_K8S_CNI_LOGLEVEL", "value": "DEBUG"},
        {"name": "MY_NODE_NAME", "valueFrom": NODE_NAME_REF},
        {"name": "ENABLE_POD_ENI", "value": "true"},
        {"name": "WARM_ENI_TARGET", "value": "1"},
        {"name": "POD_SECURITY_GROUP_ENFORCING_MODE", "value": "standard"},
    ]
    expected_init = [{"name": "DISABLE_IPV6", "value": "false"}, {"name": "DISABLE_TCP_EARLY_DEMUX", "value": "true"}]
    assert server.env() == expected_main
    assert server.env("aws-vpc-cni-init", "initContainers") == expected_init
    assert server.env("aws-eks-nodeagent") is None
    assert result["changed"] is True
    assert result["env"] == expected_main
    assert result["init_env"] == expected_init
    assert result["daemonset"] == {
        "name": "aws-node",
        "namespace": NAMESPACE,
        "uid": "0b2c4d6e-0000-4000-8000-000000000001",
        "resource_version": "101",
        "generation": 2,
    }
    assert result["rollout"]["done"] is True
    assert result["eks_addon"] == {"managed": False, "env": [], "init_env": []}
    assert result["diff"]["before"] == {"env": MAIN_ENV, "init_env": INIT_ENV}
    assert result["diff"]["after"] == {"env": expected_main, "init_env": expected_init}
    assert "trunk_nodes" not in result

    (patch,) = server.patches()
    _verb, _kind, name, namespace, content_type, field_manager, dry_run, body = patch
    assert (name, namespace, content_type, field_manager, dry_run) == (
        "aws-node",
        NAMESPACE,
        "application/json-patch+json",
        "layered.eks_rds.aws_node_env",
        None,
    )
    assert body[0] == {"op": "test", "path": "/metadata/resourceVersion", "value": "100"}
    assert [op["path"] for op in body[1:]] == [
        "/spec/template/spec/containers/0/name",
        "/spec/template/spec/containers/0/env",
        "/spec/template/spec/initContainers/0/name",
        "/spec/template/spec/initContainers/0/env",
    ]


def test_nothing_to_change_sends_no_patch(run, server):
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "false", "WARM_ENI_TARGET": "1"}})
    assert result["changed"] is False
    assert server.patches() == []
    assert server.stored()["metadata"]["resourceVersion"] == "100"
    assert result["diff"]["before"] == result["diff"]["after"]


def test_second_run_changes_nothing(run, server):
    args = {"env": {"ENABLE_POD_ENI": "true"}, "init_env": {"DISABLE_TCP_EARLY_DEMUX": "true"}}
    assert succeed(run, args)["changed"] is True
    assert succeed(run, args)["changed"] is False
    assert len(server.patches()) == 1


def test_empty_value_is_idempotent(run, server):
    # the API server stores {"name": "X", "value": ""} as {"name": "X"}
    server.stored()["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "EMPTY"})
    assert succeed(run, {"env": {"EMPTY": ""}})["changed"] is False


def test_no_diff_without_diff_mode(run, server):
    failed, result = run({"env": {"ENABLE_POD_ENI": "true"}}, diff=False)
    assert not failed
    assert "diff" not in result


def test_reading_only_reports_both_containers(run, server):
    result = succeed(run, {})
    assert result["changed"] is False
    assert result["env"] == MAIN_ENV
    assert result["init_env"] == INIT_ENV
    assert server.patches() == []


def test_other_names_and_namespace(run, server):
    daemonset = aws_node(name="cni", namespace="cni-test")
    pod = daemonset["spec"]["template"]["spec"]
    pod["containers"][0]["name"] = "main"
    pod["initContainers"][0]["name"] = "init"
    server.daemonsets = {("cni-test", "cni"): daemonset}
    args = {
        "name": "cni",
        "namespace": "cni-test",
        "container": "main",
        "init_container": "init",
        "env": {"A": "1"},
        "init_env": {"B": "2"},
    }
    result = succeed(run, args)
    assert result["changed"] is True
    assert pod["containers"][0]["env"] == MAIN_ENV  # the stored copy is replaced, not this one
    stored = server.daemonsets[("cni-test", "cni")]["spec"]["template"]["spec"]
    assert stored["containers"][0]["env"][-1] == {"name": "A", "value": "1"}
    assert stored["initContainers"][0]["env"][-1] == {"name": "B", "value": "2"}


# ---------------------------------------------------------------------- absent


def test_absent_removes_the_named_variables_only(run, server):
    server.stored()["spec"]["template"]["spec"]["containers"][0]["env"].append(
        {"name": "WARM_ENI_TARGET", "value": "2"}
    )
    result = succeed(run, {"state": "absent", "env": ["WARM_ENI_TARGET", "NOT_SET"], "init_env": ["DISABLE_IPV6"]})
    assert result["changed"] is True
    assert server.env() == MAIN_ENV[:3]
    assert server.env("aws-vpc-cni-init", "initContainers") == []
    assert (
        succeed(run, {"state": "absent", "env": ["WARM_ENI_TARGET"], "init_env": ["DISABLE_IPV6"]})["changed"] is False
    )


def test_absent_accepts_a_dict_and_ignores_its_values(run, server):
    result = succeed(run, {"state": "absent", "env": {"WARM_ENI_TARGET": True}})
    assert result["changed"] is True
    assert [e["name"] for e in server.env()] == ["AWS_VPC_K8S_CNI_LOGLEVEL", "MY_NODE_NAME", "ENABLE_POD_ENI"]


@pytest.mark.parametrize("state", ["present", "absent"])
def test_value_from_entries_are_refused(run, server, state):
    env = {"MY_NODE_NAME": "x"} if state == "present" else ["MY_NODE_NAME"]
    result = fail(run, {"state": state, "env": env})
    assert "MY_NODE_NAME is set with valueFrom" in result["msg"]
    assert "container 'aws-node'" in result["msg"]
    assert server.patches() == []


# ---------------------------------------------------------------------- not found


def test_missing_daemonset(run, server):
    result = fail(run, {"namespace": "nowhere", "env": {"A": "1"}})
    assert result["msg"] == "DaemonSet nowhere/aws-node was not found"


def test_missing_container_names_the_existing_ones(run, server):
    result = fail(run, {"container": "cni", "env": {"A": "1"}})
    assert result["msg"] == (
        "DaemonSet kube-system/aws-node has no container named 'cni'; its containers: 'aws-node', 'aws-eks-nodeagent'"
    )


def test_missing_init_container(run, server):
    result = fail(run, {"init_container": "init", "init_env": {"A": "1"}})
    assert "has no init container named 'init'; its init containers: 'aws-vpc-cni-init'" in result["msg"]


def test_missing_init_container_is_fine_when_not_managed(run, server):
    del server.stored()["spec"]["template"]["spec"]["initContainers"]
    result = succeed(run, {"env": {"A": "1"}})
    assert result["changed"] is True
    assert result["init_env"] is None


# ---------------------------------------------------------------------- check mode


def test_check_mode_is_a_server_side_dry_run(run, server):
    before = copy.deepcopy(server.stored())
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}}, check_mode=True)
    assert result["changed"] is True
    assert server.stored() == before
    (patch,) = server.patches()
    assert patch[6] == "All"
    assert result["env"][2] == {"name": "ENABLE_POD_ENI", "value": "true"}
    assert result["daemonset"]["resource_version"] == "100"
    assert result["rollout"]["done"] is True  # the real DaemonSet's rollout, not the dry run's generation


def test_check_mode_without_changes_sends_nothing(run, server):
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "false"}}, check_mode=True)
    assert result["changed"] is False
    assert server.patches() == []


def test_check_mode_does_not_wait_and_only_lists_trunk_nodes_once(run, server, warnings, fake_time):
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}, "wait_for_trunk_nodes": 2}, check_mode=True)
    assert result["trunk_nodes"] == []
    assert fake_time.sleeps == []
    assert any("0 of the 2 nodes expected" in w for w in warnings)


# ---------------------------------------------------------------------- concurrency and retries


def test_conflict_rereads_and_patches_again(run, server, fake_time):
    server.patch_faults = [api_error(409, "the object has been modified")]
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}})
    assert result["changed"] is True
    assert server.verbs()[:4] == ["get", "patch", "get", "patch"]
    assert len(fake_time.sleeps) >= 1


def test_failed_resource_version_test_after_a_concurrent_write_is_retried(run, server):
    def other_writer(daemonset):
        daemonset["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "ADDED_MEANWHILE", "value": "y"})
        server.bump(daemonset)

    server.before_patch = other_writer
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}})
    assert result["changed"] is True
    names = [e["name"] for e in server.env()]
    assert names == ["AWS_VPC_K8S_CNI_LOGLEVEL", "MY_NODE_NAME", "ENABLE_POD_ENI", "WARM_ENI_TARGET", "ADDED_MEANWHILE"]
    assert server.env()[2]["value"] == "true"
    patches = server.patches()
    assert [p[7][0]["value"] for p in patches] == ["100", "101"]


def test_validation_error_is_not_retried(run, server):
    server.patch_faults = [api_error(422, 'DaemonSet.apps "aws-node" is invalid: spec.template...')]
    result = fail(run, {"env": {"ENABLE_POD_ENI": "true"}})
    assert (
        result["msg"]
        == 'Failed to patch the DaemonSet kube-system/aws-node: DaemonSet.apps "aws-node" is invalid: spec.template...'
    )
    assert len(server.patches()) == 1


def test_gives_up_when_the_daemonset_keeps_changing(run, server):
    server.patch_faults = [api_error(409) for _ in range(aws_node_env.CONFLICT_RETRIES + 1)]
    result = fail(run, {"env": {"ENABLE_POD_ENI": "true"}})
    assert "kept changing while it was being patched" in result["msg"]
    assert len(server.patches()) == aws_node_env.CONFLICT_RETRIES + 1


@pytest.mark.parametrize("status", [429, 500, 503, 504])
def test_throttling_and_server_errors_are_retried_with_backoff(run, server, fake_time, status):
    server.patch_faults = [api_error(status), api_error(status)]
    server.get_faults = [api_error(status)]
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}})
    assert result["changed"] is True
    assert len(server.patches()) == 3
    assert len(fake_time.sleeps) >= 3


def test_forbidden_is_reported(run, server):
    server.get_faults = [api_error(403, 'daemonsets.apps "aws-node" is forbidden: User "dev" cannot get')]
    result = fail(run, {"env": {"ENABLE_POD_ENI": "true"}})
    assert result["msg"].startswith("Failed to read the DaemonSet kube-system/aws-node: daemonsets.apps")
    assert result["status"] == 403


# ---------------------------------------------------------------------- waiting


def lagging_controller(server, reads_behind):
    """A controller that reports the old generation for ``reads_behind`` reads after each change."""
    state = {"seen": None, "reads": 0}

    def controller(daemonset):
        generation = daemonset["metadata"]["generation"]
        if state["seen"] != generation:
            state["seen"], state["reads"] = generation, 0
        state["reads"] += 1
        if state["reads"] > reads_behind and daemonset["status"].get("observedGeneration") != generation:
            catch_up(daemonset)
            server.bump(daemonset)  # a status update is a new resourceVersion too

    return controller


def test_waits_for_the_rollout(run, server, fake_time):
    server.controller = lagging_controller(server, 3)
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}})
    assert result["rollout"]["done"] is True
    assert result["rollout"]["observed_generation"] == 2
    assert fake_time.sleeps == [2.0, 2.0, 2.0]
    # the DaemonSet as last read while waiting, not as the patch returned it
    assert result["daemonset"]["resource_version"] == server.stored()["metadata"]["resourceVersion"] == "102"
    assert result["daemonset"]["generation"] == 2


def test_rollout_timeout_names_what_is_pending(run, server):
    def stuck(daemonset):
        daemonset["status"] = {
            "observedGeneration": daemonset["metadata"]["generation"],
            "desiredNumberScheduled": 3,
            "updatedNumberScheduled": 1,
            "numberAvailable": 2,
        }

    server.controller = stuck
    result = fail(run, {"env": {"ENABLE_POD_ENI": "true"}, "wait_timeout": 9})
    assert result["msg"] == (
        "Timed out after 9s waiting for the rollout of the DaemonSet kube-system/aws-node; "
        "still pending: 1 of 3 pods updated, 2 of 3 pods available"
    )
    assert result["changed"] is True
    assert result["rollout"]["pending"] == ["1 of 3 pods updated", "2 of 3 pods available"]


def test_unchanged_daemonset_still_waits_for_a_running_rollout(run, server):
    server.stored()["status"]["numberAvailable"] = 1
    server.controller = None
    result = fail(run, {"env": {"ENABLE_POD_ENI": "false"}, "wait_timeout": 0})
    assert "still pending: 1 of 2 pods available" in result["msg"]
    assert result["changed"] is False


def test_no_wait(run, server, fake_time):
    server.controller = None
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}, "wait": False})
    assert result["rollout"]["done"] is False
    assert result["rollout"]["pending"] == ["observed generation 1 of 2"]
    assert server.verbs() == ["get", "patch"]
    assert fake_time.sleeps == []


def test_on_delete_strategy_warns_and_waits_for_the_generation(run, server, warnings):
    server.stored()["spec"]["updateStrategy"] = {"type": "OnDelete"}

    def observed_only(daemonset):
        daemonset["status"]["observedGeneration"] = daemonset["metadata"]["generation"]
        daemonset["status"]["updatedNumberScheduled"] = 0

    server.controller = observed_only
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}})
    assert result["rollout"]["done"] is True
    assert any("OnDelete" in w for w in warnings)


def node(name, trunk=True):
    labels = {utils.TRUNK_LABEL: "true"} if trunk else {}
    return {"metadata": {"name": name, "labels": labels}}


def test_waits_for_trunk_nodes(run, server, fake_time):
    server.nodes = [node("n-1"), node("n-0", trunk=False)]
    reads = {"count": 0}
    real_get = server.get

    def get(resource, **kwargs):
        if resource == "Node":
            reads["count"] += 1
            if reads["count"] == 3:
                server.nodes.append(node("n-2"))
        return real_get(resource, **kwargs)

    server.get = get
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true"}, "wait_for_trunk_nodes": 2})
    assert result["trunk_nodes"] == ["n-1", "n-2"]
    node_reads = [r for r in server.requests if r[0] == "get" and r[1] == "Node"]
    assert {r[4] for r in node_reads} == {"vpc.amazonaws.com/has-trunk-attached=true"}


def test_trunk_node_timeout_counts_what_was_found(run, server):
    server.nodes = [node("n-1"), node("n-0", trunk=False)]
    result = fail(run, {"wait_for_trunk_nodes": 3, "wait_timeout": 5, "wait": False})
    assert result["msg"] == (
        "Timed out after 5s waiting for 3 nodes labelled vpc.amazonaws.com/has-trunk-attached=true; 1 found: n-1"
    )
    assert result["trunk_nodes"] == ["n-1"]


def test_rollout_and_trunk_nodes_share_the_timeout(run, server, fake_time):
    server.controller = lagging_controller(server, 3)  # about 6 s of the 7 s
    result = fail(run, {"env": {"ENABLE_POD_ENI": "true"}, "wait_for_trunk_nodes": 1, "wait_timeout": 7})
    assert "waiting for 1 nodes labelled" in result["msg"]
    assert sum(fake_time.sleeps) == pytest.approx(7.0)


# ---------------------------------------------------------------------- EKS add-on


def eks_fields():
    return [
        {
            "manager": "eks",
            "operation": "Apply",
            "fieldsType": "FieldsV1",
            "fieldsV1": {
                "f:spec": {
                    "f:template": {
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"aws-node"}': {"f:env": {'k:{"name":"ENABLE_POD_ENI"}': {".": {}}}}
                            }
                        }
                    }
                }
            },
        }
    ]


def test_warns_when_the_eks_add_on_manages_the_daemonset(run, server, warnings):
    server.stored()["metadata"]["managedFields"] = eks_fields()
    result = succeed(run, {"env": {"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "strict"}})
    assert result["eks_addon"] == {"managed": True, "env": ["ENABLE_POD_ENI"], "init_env": []}
    (warning,) = warnings
    assert "managed by an Amazon EKS add-on (vpc-cni)" in warning
    assert "field manager 'eks'" in warning
    assert "the add-on owns the entries of ENABLE_POD_ENI" in warning
    assert "eks_pod_security_groups and eks_pod_security_group_enforcing_mode" in warning
    assert result["changed"] is True  # a warning, not a refusal


def test_no_add_on_warning_when_only_reading(run, server, warnings):
    server.stored()["metadata"]["managedFields"] = eks_fields()
    result = succeed(run, {})
    assert result["eks_addon"]["managed"] is True
    assert warnings == []
