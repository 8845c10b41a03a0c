#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: aws_node_env
version_added: 0.1.0
short_description: Set or remove environment variables of the Amazon VPC CNI DaemonSet (aws-node)
description:
  - Sets, removes or checks environment variables of the C(aws-node) DaemonSet of the Amazon VPC CNI, on its main
    container (for example C(ENABLE_POD_ENI) and C(POD_SECURITY_GROUP_ENFORCING_MODE), for security groups for pods)
    and on its init container (C(DISABLE_TCP_EARLY_DEMUX), so that kubelet probes reach pods that have their own
    security group).
  - Only the variables named in O(env) and O(init_env) are touched. All other entries of the containers' C(env)
    lists keep their values and their order; new variables are appended at the end. Entries set with C(valueFrom)
    are never changed or removed - naming one of them is an error.
  - The change is one JSON patch that first tests the C(resourceVersion) that was read (optimistic concurrency).
    When the DaemonSet changed in between (HTTP 409, or 422 with a new C(resourceVersion)), it is read again and
    the patch recomputed, after a jittered backoff. Throttling (429) and server errors (5xx) are retried with
    jittered backoff too. Nothing is sent when the variables already have the desired values.
  - With O(wait), waits for the DaemonSet's rollout, as C(kubectl rollout status) does - the controller has observed
    the new generation, and every desired pod is updated and available - also when nothing changed, so that a run
    after an interrupted rollout waits for it too.
  - With O(wait_for_trunk_nodes), waits until that many nodes carry the label
    C(vpc.amazonaws.com/has-trunk-attached=true), which the VPC resource controller sets once C(ENABLE_POD_ENI=true)
    has attached a trunk network interface to the node.
  - 'Warns when the DaemonSet is managed by the Amazon EKS C(vpc-cni) add-on: EKS installs and updates add-ons with
    server-side apply under the field manager C(eks), so such a DaemonSet has an entry with C(manager: eks) in its
    C(metadata.managedFields). EKS may then overwrite a direct change on the next add-on update; the warning names
    the variables whose entries the add-on owns. Labels such as C(app.kubernetes.io/managed-by: Helm) are not used
    for this: the VPC CNI EKS preinstalls without an add-on carries them too.'
  - Options are validated before any request to the API server.
author:
  - layered.eks_rds maintainers (@layered)
options:
  name:
    description:
      - Name of the DaemonSet.
    type: str
    default: aws-node
  namespace:
    description:
      - Namespace of the DaemonSet.
    type: str
    default: kube-system
  container:
    description:
      - Name of the container whose variables O(env) manages.
    type: str
    default: aws-node
  init_container:
    description:
      - Name of the init container whose variables O(init_env) manages.
    type: str
    default: aws-vpc-cni-init
  state:
    description:
      - V(present) sets the variables of O(env) and O(init_env) to the given values.
      - V(absent) removes the named variables (every entry of each name); names that are not set are ignored.
    type: str
    choices: [ present, absent ]
    default: present
  env:
    description:
      - Variables of the O(container).
      - With O(state=present), a dict of variable names to values. Values must be strings - quote C(true), C(false)
        and numbers in YAML; a boolean, number or null is refused rather than converted.
      - With O(state=absent), a list of variable names (a dict is accepted too; its values are ignored).
      - Names must be C_IDENTIFIERs (C(^[A-Za-z_][A-Za-z0-9_]*$)).
      - When omitted, the container's variables are left as they are (and the container need not exist).
    type: raw
  init_env:
    description:
      - Variables of the O(init_container), given as for O(env).
      - When omitted, the init container's variables are left as they are (and the init container need not exist).
    type: raw
  wait:
    description:
      - Wait for the DaemonSet's rollout to complete. With the C(OnDelete) update strategy, only for the controller
        to observe the new generation (pods change when they are deleted).
      - Not done in check mode.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds the run may spend waiting in total (rollout and trunk nodes). On timeout the module fails
        naming what is still pending.
    type: int
    default: 300
  wait_for_trunk_nodes:
    description:
      - Wait until at least this many nodes carry the label C(vpc.amazonaws.com/has-trunk-attached=true); V(0) does
        not wait nor list nodes. Independent of O(wait); needs permission to list nodes.
      - In check mode the nodes are listed once, with a warning when there are fewer.
    type: int
    default: 0
notes:
  - Supports check mode with a server-side dry run (C(dryRun=All)) of the same patch, so the API server's admission
    and validation apply and the DaemonSet is not changed. Supports diff mode, showing the C(env) lists of both
    containers before and after.
  - The patch uses the field manager C(layered.eks_rds.aws_node_env), visible in the DaemonSet's C(managedFields).
  - Values are returned in RV(env), RV(init_env) and the diff. The VPC CNI's settings are not secret; should a value
    be, use C(no_log) on the task, or keep it in a Secret referenced with C(valueFrom), which this module leaves alone.
  - Needs C(get) and C(patch) on DaemonSets in O(namespace), and C(list) on nodes with O(wait_for_trunk_nodes).
  - On an EKS cluster that runs the C(vpc-cni) managed add-on, set these variables through the add-on's
    configuration values instead (C(env) and C(init.env)) - the C(eks) role of this collection does, from
    C(eks_pod_security_groups) and C(eks_pod_security_group_enforcing_mode), with M(layered.eks_rds.eks_addon).
requirements:
  - python >= 3.9
  - kubernetes >= 24.2.0
extends_documentation_fragment:
  - kubernetes.core.k8s_auth_options
"""

EXAMPLES = r"""
- name: Security groups for pods on a self-managed VPC CNI
  layered.eks_rds.aws_node_env:
    env:
      ENABLE_POD_ENI: "true"
      POD_SECURITY_GROUP_ENFORCING_MODE: standard
    init_env:
      DISABLE_TCP_EARLY_DEMUX: "true"
    wait_for_trunk_nodes: 2
    wait_timeout: 600
  register: cni

- name: Show the nodes with a trunk network interface
  ansible.builtin.debug:
    msg: "{{ cni.trunk_nodes }}"

- name: Remove a variable again, without waiting for the rollout
  layered.eks_rds.aws_node_env:
    state: absent
    env:
      - POD_SECURITY_GROUP_ENFORCING_MODE
    wait: false

- name: Read the variables and wait for a running rollout, changing nothing
  layered.eks_rds.aws_node_env:
    kubeconfig: ~/.kube/app
    context: app
  register: aws_node

- name: A copy of the DaemonSet elsewhere, with its own container names
  layered.eks_rds.aws_node_env:
    namespace: cni-canary
    name: aws-node-canary
    container: cni
    init_container: cni-init
    env:
      WARM_ENI_TARGET: "1"
"""

RETURN = r"""
env:
  description:
    - The C(env) list of the O(container) after the run (in check mode, as the server's dry run predicts it),
      entries with C(name) and C(value) or C(valueFrom). Null when the container does not exist.
  returned: always
  type: list
  elements: dict
  sample:
    - name: AWS_VPC_K8S_CNI_LOGLEVEL
      value: DEBUG
    - name: MY_NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    - name: ENABLE_POD_ENI
      value: "true"
init_env:
  description: The C(env) list of the O(init_container), as RV(env). Null when the init container does not exist.
  returned: always
  type: list
  elements: dict
  sample:
    - name: DISABLE_TCP_EARLY_DEMUX
      value: "true"
daemonset:
  description: Identity and version of the DaemonSet when the run ended.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the DaemonSet.
      type: str
      sample: aws-node
    namespace:
      description: Namespace of the DaemonSet.
      type: str
      sample: kube-system
    uid:
      description: UID of the DaemonSet.
      type: str
      sample: 7b0e5a6c-1d2f-4e3a-9b8c-0d1e2f3a4b5c
    resource_version:
      description:
        - C(resourceVersion) when the run ended - after the rollout when waiting for it, as the controller's status
          updates change it too. Unchanged in check mode.
      type: str
      sample: "48213"
    generation:
      description: C(metadata.generation) after the change.
      type: int
      sample: 4
rollout:
  description:
    - Rollout status of the DaemonSet when the run ended (before any change in check mode).
  returned: always
  type: dict
  contains:
    done:
      description: Whether the rollout is complete.
      type: bool
      sample: true
    pending:
      description: What the rollout still waits for, for example C(1 of 3 pods available).
      type: list
      elements: str
      sample: []
    generation:
      description: C(metadata.generation).
      type: int
      sample: 4
    observed_generation:
      description: C(status.observedGeneration).
      type: int
      sample: 4
    desired_number_scheduled:
      description: C(status.desiredNumberScheduled).
      type: int
      sample: 3
    updated_number_scheduled:
      description: C(status.updatedNumberScheduled).
      type: int
      sample: 3
    number_available:
      description: C(status.numberAvailable).
      type: int
      sample: 3
    update_strategy:
      description: C(RollingUpdate) or C(OnDelete).
      type: str
      sample: RollingUpdate
trunk_nodes:
  description: Sorted names of the nodes labelled C(vpc.amazonaws.com/has-trunk-attached=true).
  returned: when O(wait_for_trunk_nodes) is more than 0
  type: list
  elements: str
  sample: [ ip-10-0-1-23.eu-west-1.compute.internal ]
eks_addon:
  description: Whether an Amazon EKS managed add-on manages the DaemonSet (a C(managedFields) entry of manager C(eks)).
  returned: always
  type: dict
  contains:
    managed:
      description: Whether the C(eks) field manager manages the DaemonSet.
      type: bool
      sample: false
    env:
      description: Names of O(env) whose entries the add-on owns in the O(container).
      type: list
      elements: str
      sample: []
    init_env:
      description: Names of O(init_env) whose entries the add-on owns in the O(init_container).
      type: list
      elements: str
      sample: []
diff:
  description: The C(env) lists of both containers before and after, keyed C(env) and C(init_env).
  returned: in diff mode
  type: dict
  contains:
    before:
      description: The lists before the change.
      type: dict
    after:
      description: The lists after the change.
      type: dict
"""

import copy
import functools
import json
import time

from ansible_collections.kubernetes.core.plugins.module_utils.ansiblemodule import AnsibleModule
from ansible_collections.kubernetes.core.plugins.module_utils.args_common import AUTH_ARG_SPEC
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.client import get_api_client
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.core import AnsibleK8SModule
from ansible_collections.kubernetes.core.plugins.module_utils.k8s.exceptions import CoreException
from ansible_collections.layered.eks_rds.plugins.module_utils.aws_node_env import (
    FIELD_MANAGER,
    TRUNK_LABEL,
    Deadline,
    DynamicApiError,
    EnvParameterError,
    EnvStateError,
    container_env,
    eks_addon_fields,
    jittered_delays,
    patch_document,
    plan_changes,
    poll,
    retry_transient,
    rollout_status,
    trunk_node_names,
    validate_params,
)

try:
    from urllib3.exceptions import HTTPError
except ImportError:  # urllib3 comes with the kubernetes library, whose absence AnsibleK8SModule reports

    class HTTPError(Exception):
        """Stand-in so that ``except`` clauses stay valid; never raised."""


ARGUMENT_SPEC = dict(
    name=dict(type="str", default="aws-node"),
    namespace=dict(type="str", default="kube-system"),
    container=dict(type="str", default="aws-node"),
    init_container=dict(type="str", default="aws-vpc-cni-init"),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    env=dict(type="raw"),
    init_env=dict(type="raw"),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=300),
    wait_for_trunk_nodes=dict(type="int", default=0),
)

# Patch attempts after a concurrent change of the DaemonSet, each after a jittered delay.
CONFLICT_RETRIES = 5
POLL_INTERVAL = 2.0


def api_error_message(error):
    """The API server's message in a DynamicApiError, else its status and reason."""
    try:
        message = json.loads(error.body).get("message")
    except (TypeError, ValueError, AttributeError):
        message = None
    return message or f"{getattr(error, 'status', '')} {getattr(error, 'reason', '')}".strip()


def identity(daemonset):
    """The ``daemonset`` return value."""
    metadata = daemonset.get("metadata") or {}
    return dict(
        name=metadata.get("name"),
        namespace=metadata.get("namespace"),
        uid=metadata.get("uid"),
        resource_version=metadata.get("resourceVersion"),
        generation=metadata.get("generation"),
    )


class AwsNodeEnv:
    """Reads, patches and waits for one DaemonSet."""

    def __init__(self, module, client, desired):
        self.module = module
        self.client = client
        self.desired = desired
        params = module.params
        self.name = params["name"]
        self.namespace = params["namespace"]
        self.container = params["container"]
        self.init_container = params["init_container"]
        self.label = f"DaemonSet {self.namespace}/{self.name}"
        self.latest = None  # the DaemonSet as last read while waiting
        self.resource = self.api("find the DaemonSet API", lambda: client.resource("DaemonSet", "apps/v1"))

    def api(self, action, call):
        """``call()`` with retries on 429/5xx; any other error ends the run naming ``action``."""
        try:
            return retry_transient(call)
        except DynamicApiError as e:
            self.module.fail_json(msg=f"Failed to {action}: {api_error_message(e)}", status=e.status, reason=e.reason)
        except HTTPError as e:  # pylint: disable=duplicate-except
            self.module.fail_json(msg=f"Failed to {action}: cannot reach the API server: {e}")

    def read(self):
        def get():
            return self.client.get(self.resource, name=self.name, namespace=self.namespace).to_dict()

        try:
            return retry_transient(get)
        except DynamicApiError as e:
            if e.status == 404:
                self.module.fail_json(msg=f"{self.label} was not found", status=404)
            self.module.fail_json(
                msg=f"Failed to read the {self.label}: {api_error_message(e)}", status=e.status, reason=e.reason
            )
        except HTTPError as e:  # pylint: disable=duplicate-except
            self.module.fail_json(msg=f"Failed to read the {self.label}: cannot reach the API server: {e}")

    def conflicting(self, error, read):
        """Whether a failed patch lost a race: 409, or 422 (failed test) with a new resourceVersion."""
        if error.status == 409:
            return True
        if error.status != 422:
            return False
        return self.read()["metadata"].get("resourceVersion") != read["metadata"].get("resourceVersion")

    def ensure(self):
        """Bring the variables to the desired state. Returns (daemonset read, daemonset after, plan, changed)."""
        params = self.module.params
        extra = {"dry_run": "All"} if self.module.check_mode else {}
        conflict_delays = jittered_delays(attempts=CONFLICT_RETRIES)
        while True:
            read = self.read()
            try:
                plan = plan_changes(
                    read,
                    self.desired,
                    params["state"],
                    container=self.container,
                    init_container=self.init_container,
                    label=self.label,
                )
            except EnvStateError as e:
                self.module.fail_json(msg=str(e))
            if not plan["changed"]:
                return read, read, plan, False
            call = functools.partial(
                self.client.patch,
                self.resource,
                patch_document(read["metadata"]["resourceVersion"], plan["ops"]),
                name=self.name,
                namespace=self.namespace,
                content_type="application/json-patch+json",
                field_manager=FIELD_MANAGER,
                **extra,
            )
            try:
                return read, retry_transient(call).to_dict(), plan, True
            except DynamicApiError as e:
                if not self.conflicting(e, read):
                    self.module.fail_json(
                        msg=f"Failed to patch the {self.label}: {api_error_message(e)}",
                        status=e.status,
                        reason=e.reason,
                    )
                delay = next(conflict_delays, None)
                if delay is None:
                    self.module.fail_json(
                        msg=f"The {self.label} kept changing while it was being patched "
                        f"({CONFLICT_RETRIES + 1} attempts); run again"
                    )
                time.sleep(delay)
            except HTTPError as e:  # pylint: disable=duplicate-except
                self.module.fail_json(msg=f"Failed to patch the {self.label}: cannot reach the API server: {e}")

    def rollout(self):
        self.latest = self.read()
        status = rollout_status(self.latest)
        return status["done"], status

    def trunk_nodes(self):
        nodes = self.api("find the Node API", lambda: self.client.resource("Node", "v1"))
        listed = self.api(
            f"list the nodes labelled {TRUNK_LABEL}=true",
            lambda: self.client.get(nodes, label_selector=f"{TRUNK_LABEL}=true").to_dict(),
        )
        names = trunk_node_names(listed.get("items") or [])
        return len(names) >= self.module.params["wait_for_trunk_nodes"], names

    def warn_addon(self, addon):
        if not addon["managed"] or (self.desired["env"] is None and self.desired["init_env"] is None):
            return
        owned = addon["env"] + addon["init_env"]
        owned_note = f"; the add-on owns the entries of {', '.join(owned)}" if owned else ""
        self.module.warn(
            f"The {self.label} is managed by an Amazon EKS add-on (vpc-cni): its managedFields has the field "
            f"manager 'eks'{owned_note}. EKS may overwrite these variables when it updates the add-on. Set them in "
            "the add-on's configuration values (env, init.env) instead - the eks role of layered.eks_rds does with "
            "eks_pod_security_groups and eks_pod_security_group_enforcing_mode, or use "
            "layered.eks_rds.eks_addon's configuration_values."
        )

    def run(self):
        params = self.module.params
        read, after, plan, changed = self.ensure()
        names = {option: list(value) if value is not None else [] for option, value in self.desired.items()}
        addon = eks_addon_fields(read, self.container, self.init_container, names)
        self.warn_addon(addon)
        result = dict(
            changed=changed,
            env=container_env(after, "env", self.container),
            init_env=container_env(after, "init_env", self.init_container),
            daemonset=identity(after),
            rollout=rollout_status(read if self.module.check_mode else after),
            eks_addon=addon,
        )
        if self.module._diff:
            result["diff"] = dict(before=plan["before"], after=plan["after"])
        if self.module.check_mode:
            if params["wait_for_trunk_nodes"]:
                enough, result["trunk_nodes"] = self.trunk_nodes()
                if not enough:
                    self.module.warn(
                        f"{len(result['trunk_nodes'])} of the {params['wait_for_trunk_nodes']} nodes expected are "
                        f"labelled {TRUNK_LABEL}=true"
                    )
            return result

        deadline = Deadline(params["wait_timeout"])
        if params["wait"]:
            if result["rollout"]["update_strategy"] == "OnDelete":
                self.module.warn(
                    f"The {self.label} uses the OnDelete update strategy: its pods get the new variables only when "
                    "they are deleted; waiting only for the controller to observe the change"
                )
            done, result["rollout"] = poll(self.rollout, deadline, POLL_INTERVAL)
            result["daemonset"] = identity(self.latest)
            if not done:
                self.module.fail_json(
                    msg=f"Timed out after {params['wait_timeout']}s waiting for the rollout of the {self.label}; "
                    f"still pending: {', '.join(result['rollout']['pending'])}",
                    **result,
                )
        if params["wait_for_trunk_nodes"]:
            done, result["trunk_nodes"] = poll(self.trunk_nodes, deadline, POLL_INTERVAL)
            if not done:
                found = result["trunk_nodes"]
                self.module.fail_json(
                    msg=f"Timed out after {params['wait_timeout']}s waiting for {params['wait_for_trunk_nodes']} "
                    f"nodes labelled {TRUNK_LABEL}=true; {len(found)} found"
                    + (f": {', '.join(found)}" if found else ""),
                    **result,
                )
        return result


def main():
    argument_spec = copy.deepcopy(AUTH_ARG_SPEC)
    argument_spec.update(ARGUMENT_SPEC)
    module = AnsibleK8SModule(module_class=AnsibleModule, argument_spec=argument_spec, supports_check_mode=True)
    try:
        desired = validate_params(module.params)
    except EnvParameterError as e:
        module.fail_json(msg=str(e), option=e.option)

    try:
        client = get_api_client(module=module)
        result = AwsNodeEnv(module, client, desired).run()
    except CoreException as e:
        module.fail_from_exception(e)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
