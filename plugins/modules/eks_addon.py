#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_addon
version_added: 0.1.0
short_description: Create, update and delete an Amazon EKS managed add-on
description:
  - Installs an EKS managed add-on (for example C(vpc-cni), C(coredns), C(kube-proxy) or
    C(eks-pod-identity-agent)) on a cluster, updates its version, configuration values, IAM role or
    Pod Identity associations in place, and removes it.
  - O(configuration_values) is compared with the value EKS describes by meaning, as JSON - key order,
    indentation and whitespace never cause a change. It is sent as compact JSON with sorted keys.
  - When O(addon_version) is omitted, a new add-on gets the version EKS marks as default for the cluster's
    Kubernetes version (C(DescribeAddonVersions)); the version of an existing add-on is then left as it is.
  - All options are validated before any AWS API call is made.
author:
  - layered.eks_rds maintainers (@layered)
options:
  cluster_name:
    description:
      - Name of the EKS cluster.
    type: str
    required: true
  name:
    description:
      - Name of the add-on, as listed by C(DescribeAddonVersions).
    type: str
    required: true
    aliases: [ addon_name ]
  state:
    description:
      - V(present) creates or updates the add-on, V(absent) deletes it.
    type: str
    choices: [ present, absent ]
    default: present
  addon_version:
    description:
      - Version of the add-on, for example V(v1.19.2-eksbuild.1).
      - Defaults, on creation, to the default version for the cluster's Kubernetes version. When omitted, an
        existing add-on keeps its version.
    type: str
  configuration_values:
    description:
      - Configuration of the add-on, following the schema C(DescribeAddonConfiguration) returns, as a dict or as
        a string holding a JSON object. An empty dict or string means no configuration.
      - Compared semantically with the described value (JSON, or YAML when it was set that way elsewhere).
      - When omitted, the configuration of an existing add-on is left as it is.
    type: raw
  service_account_role_arn:
    description:
      - ARN of the IAM role the add-on's service account assumes through IAM roles for service accounts (IRSA).
      - When omitted, the role of an existing add-on is left as it is. An empty string asks for no role; EKS
        cannot remove the role of an existing add-on, so this is refused when it has one (delete the add-on and
        create it again instead).
    type: str
  pod_identity_associations:
    description:
      - EKS Pod Identity associations owned by the add-on, one per service account in the add-on's namespace.
        Requires the C(eks-pod-identity-agent) add-on on the cluster.
      - The add-on's associations become exactly this list; an empty list removes them all. When omitted, they
        are left as they are.
    type: list
    elements: dict
    suboptions:
      service_account:
        description: Name of the Kubernetes service account (a DNS-1123 subdomain).
        type: str
        required: true
      role_arn:
        description: ARN of the IAM role pods using the service account receive.
        type: str
        required: true
  resolve_conflicts:
    description:
      - What EKS does when the add-on's Kubernetes objects were changed outside of EKS - V(OVERWRITE) them,
        keep them (V(PRESERVE), updates only) or fail (V(NONE)).
      - Sent with creations and updates; it is not part of the add-on's state and never causes a change.
    type: str
    choices: [ NONE, OVERWRITE, PRESERVE ]
    default: OVERWRITE
  preserve:
    description:
      - With O(state=absent), keep the add-on's Kubernetes objects on the cluster; EKS only stops managing them.
    type: bool
    default: false
  tags:
    description:
      - Tags of the add-on. When omitted, the tags of an existing add-on are left as they are.
    type: dict
    aliases: [ resource_tags ]
  purge_tags:
    description:
      - Remove tags of the add-on that are not in O(tags). Ignored when O(tags) is omitted.
    type: bool
    default: true
  wait:
    description:
      - Wait for the add-on to be C(ACTIVE) after a creation or update (and for the update to succeed), and to be
        gone after a deletion.
      - Some add-ons, such as C(coredns), only become C(ACTIVE) once the cluster has nodes to run them on.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds the run may spend waiting in total.
    type: int
    default: 900
notes:
  - Supports check mode, predicting the resulting add-on, and diff mode, showing the compared options before
    and after. In check mode a missing cluster is not an error, so that a play can be checked against an empty
    account; the add-on is then predicted to be created.
  - Needs C(eks:DescribeCluster), C(eks:DescribeAddon), C(eks:DescribeAddonVersions), C(eks:CreateAddon),
    C(eks:UpdateAddon), C(eks:DeleteAddon), C(eks:DescribeUpdate), C(eks:TagResource), C(eks:UntagResource),
    C(eks:DescribePodIdentityAssociation) with O(pod_identity_associations), and C(iam:PassRole) on the roles.
  - Calls are retried with jittered backoff when throttled; waits use botocore's EKS waiters (C(addon_active),
    C(addon_deleted)) and a C(DescribeUpdate) waiter, never fixed sleeps.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: VPC CNI with security groups for pods, using IRSA
  layered.eks_rds.eks_addon:
    cluster_name: app
    name: vpc-cni
    addon_version: v1.19.2-eksbuild.1
    service_account_role_arn: arn:aws:iam::123456789012:role/app-vpc-cni
    configuration_values:
      env:
        ENABLE_POD_ENI: "true"
        POD_SECURITY_GROUP_ENFORCING_MODE: standard
      init:
        env:
          DISABLE_TCP_EARLY_DEMUX: "true"
  register: vpc_cni

- name: The configuration can also be a JSON string; key order and spacing do not matter
  layered.eks_rds.eks_addon:
    cluster_name: app
    name: coredns
    configuration_values: '{"replicaCount": 3}'

- name: Pod Identity agent, at the cluster's default version
  layered.eks_rds.eks_addon:
    cluster_name: app
    name: eks-pod-identity-agent

- name: Let the VPC CNI use EKS Pod Identity
  layered.eks_rds.eks_addon:
    cluster_name: app
    name: vpc-cni
    pod_identity_associations:
      - service_account: aws-node
        role_arn: arn:aws:iam::123456789012:role/app-vpc-cni

- name: Remove an add-on but keep what it installed
  layered.eks_rds.eks_addon:
    cluster_name: app
    name: kube-proxy
    state: absent
    preserve: true
"""

RETURN = r"""
addon:
  description:
    - The add-on as described by C(DescribeAddon), in snake_case (tag keys unchanged). Its C(configuration_values)
      is the string EKS stores; RV(configuration_values) has it parsed.
    - In check mode, the predicted add-on. Empty after a deletion.
  returned: always
  type: dict
  sample:
    addon_name: vpc-cni
    cluster_name: app
    status: ACTIVE
    addon_version: v1.19.2-eksbuild.1
    addon_arn: arn:aws:eks:eu-west-1:123456789012:addon/app/vpc-cni/a2c9e5b1-6c2f-7d0e-1b3a-4f5e6d7c8b9a
    service_account_role_arn: arn:aws:iam::123456789012:role/app-vpc-cni
    configuration_values: '{"env":{"ENABLE_POD_ENI":"true"}}'
    health:
      issues: []
    pod_identity_associations: []
    tags:
      Project: app
configuration_values:
  description: The add-on's configuration values parsed into a dict; empty when it has none.
  returned: always
  type: dict
  sample:
    env:
      ENABLE_POD_ENI: "true"
addon_version:
  description: Version of the add-on; null after a deletion or when unknown in check mode.
  returned: always
  type: str
  sample: v1.19.2-eksbuild.1
addon_arn:
  description: ARN of the add-on; null when unknown (check mode before creation, or after a deletion).
  returned: always
  type: str
  sample: arn:aws:eks:eu-west-1:123456789012:addon/app/vpc-cni/a2c9e5b1-6c2f-7d0e-1b3a-4f5e6d7c8b9a
status:
  description: Status of the add-on (C(CREATING), C(ACTIVE), C(DEGRADED), ...); C(DELETED) after a deletion.
  returned: always
  type: str
  sample: ACTIVE
pod_identity_associations:
  description: The add-on's Pod Identity associations, each with C(service_account) and C(role_arn).
  returned: when O(pod_identity_associations) is set
  type: list
  elements: dict
  sample:
    - service_account: aws-node
      role_arn: arn:aws:iam::123456789012:role/app-vpc-cni
update:
  description: The C(UpdateAddon) update applied (C(id), C(status)); null when none was needed or in check mode.
  returned: always
  type: dict
  sample:
    id: 0b6a3c7e-2f1d-4b8e-9a5c-3d2e1f0a9b8c
    status: Successful
diff:
  description: The compared options before and after the change.
  returned: always
  type: dict
  contains:
    before:
      description: Options of the add-on before the change; empty when it did not exist.
      type: dict
    after:
      description: Options of the add-on after the change; empty when it was deleted.
      type: dict
"""

import copy

from ansible_collections.amazon.aws.plugins.module_utils.botocore import (
    is_boto3_error_code,
    paginated_query_with_retries,
)
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.layered.eks_rds.plugins.module_utils.aws_errors import aws_errors
from ansible_collections.layered.eks_rds.plugins.module_utils.eks import (
    RESOLVE_CONFLICTS,
    Deadline,
    EksParameterError,
    addon_changes,
    addon_update_request,
    apply_tags,
    association_id_from_arn,
    compact_json,
    default_addon_version,
    described_configuration_values,
    snake_result,
    update_tags,
    validate_addon_params,
    wait,
)

ARGUMENT_SPEC = dict(
    cluster_name=dict(type="str", required=True),
    name=dict(type="str", required=True, aliases=["addon_name"]),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    addon_version=dict(type="str"),
    configuration_values=dict(type="raw"),
    service_account_role_arn=dict(type="str"),
    pod_identity_associations=dict(
        type="list",
        elements="dict",
        options=dict(service_account=dict(type="str", required=True), role_arn=dict(type="str", required=True)),
    ),
    resolve_conflicts=dict(type="str", default="OVERWRITE", choices=list(RESOLVE_CONFLICTS)),
    preserve=dict(type="bool", default=False),
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=900),
)

BUSY_STATUSES = ("CREATING", "UPDATING", "DELETING")


def diff_view(addon, associations=None):
    """The compared options of a described add-on."""
    if not addon:
        return {}
    view = dict(
        addon_version=addon.get("addonVersion"),
        configuration_values=described_configuration_values(addon.get("configurationValues")),
        service_account_role_arn=addon.get("serviceAccountRoleArn") or "",
        tags=dict(addon.get("tags") or {}),
    )
    if associations is not None:
        view["pod_identity_associations"] = associations
    return view


class Addon:
    """Finds, creates, updates and deletes one managed add-on."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.cluster_name = module.params["cluster_name"]
        self.name = module.params["name"]
        self.deadline = Deadline(module.params["wait_timeout"])
        self.label = f"add-on '{self.name}' of EKS cluster '{self.cluster_name}'"

    def describe_cluster(self):
        try:
            return self.client.describe_cluster(name=self.cluster_name, aws_retry=True)["cluster"]
        except is_boto3_error_code("ResourceNotFoundException"):
            return None
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to describe EKS cluster '{self.cluster_name}'")

    def describe(self):
        try:
            return self.client.describe_addon(clusterName=self.cluster_name, addonName=self.name, aws_retry=True)[
                "addon"
            ]
        except is_boto3_error_code("ResourceNotFoundException"):
            return None
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to describe the {self.label}")

    def associations(self, addon):
        """The add-on's Pod Identity associations as [{service_account, role_arn}], sorted."""
        result = []
        for arn in addon.get("podIdentityAssociations") or []:
            try:
                association = self.client.describe_pod_identity_association(
                    clusterName=self.cluster_name, associationId=association_id_from_arn(arn), aws_retry=True
                )["association"]
            except aws_errors() as e:
                self.module.fail_json_aws(e, msg=f"Failed to describe Pod Identity association {arn}")
            result.append(dict(service_account=association["serviceAccount"], role_arn=association["roleArn"]))
        return sorted(result, key=lambda a: a["service_account"])

    def wait_for(self, waiter, description):
        """Wait for the add-on with one of botocore's add-on waiters (addon_active, addon_deleted)."""
        wait(
            self.module,
            self.client,
            waiter,
            self.deadline,
            description,
            clusterName=self.cluster_name,
            addonName=self.name,
        )

    def default_version(self, cluster_version):
        try:
            pages = paginated_query_with_retries(
                self.client,
                "describe_addon_versions",
                retry_decorator=AWSRetry.jittered_backoff(),
                addonName=self.name,
                kubernetesVersion=cluster_version,
            )
        except aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Failed to list the versions of add-on '{self.name}'")
        version = default_addon_version(pages.get("addons"), cluster_version)
        if not version:
            self.module.fail_json(
                msg=f"name: EKS offers no version of add-on '{self.name}' for Kubernetes {cluster_version}",
                option="name",
            )
        return version

    # ------------------------------------------------------------------ present

    def ensure_present(self, desired):
        params = self.module.params
        cluster = self.describe_cluster()
        if not cluster:
            if self.module.check_mode:
                self.module.warn(f"EKS cluster '{self.cluster_name}' does not exist; predicting the add-on's creation")
                return self.create(desired, None)
            self.module.fail_json(
                msg=f"cluster_name: EKS cluster '{self.cluster_name}' was not found", option="cluster_name"
            )
        addon = self.describe()
        if not addon:
            return self.create(desired, cluster)
        if addon.get("status") == "DELETING":
            self.module.fail_json(msg=f"The {self.label} is being deleted; run again once it is gone")

        wanted_associations = desired["pod_identity_associations"] is not None
        current_associations = self.associations(addon) if wanted_associations else None
        try:
            changes = addon_changes(desired, addon, current_associations)
        except EksParameterError as e:
            self.module.fail_json(msg=str(e), option=e.option)
        before = diff_view(addon, current_associations)
        after = copy.deepcopy(before)
        for key, (_before, value) in changes.items():
            after[key] = value
        after["tags"] = apply_tags(before["tags"], desired["tags"], params["purge_tags"])
        tags_changed = after["tags"] != before["tags"]
        changed = bool(changes) or tags_changed
        diff = dict(before=before, after=after)

        if self.module.check_mode:
            return dict(
                changed=changed,
                addon=self.predicted(addon, after),
                associations=after.get("pod_identity_associations"),
                update=None,
                diff=diff,
            )

        update = None
        if changes:
            if addon.get("status") in BUSY_STATUSES:
                self.wait_for("addon_active", f"the {self.label} to be ACTIVE before updating it")
            request = addon_update_request(changes)
            try:
                update = self.client.update_addon(
                    clusterName=self.cluster_name,
                    addonName=self.name,
                    resolveConflicts=params["resolve_conflicts"],
                    aws_retry=True,
                    **request,
                )["update"]
            except aws_errors() as e:
                self.module.fail_json_aws(e, msg=f"Failed to update the {self.label}")
            update = dict(id=update["id"], status=update["status"])
            if params["wait"]:
                wait(
                    self.module,
                    self.client,
                    "update_successful",
                    self.deadline,
                    f"update {update['id']} of the {self.label} to succeed",
                    name=self.cluster_name,
                    addonName=self.name,
                    updateId=update["id"],
                )
                update["status"] = "Successful"
                self.wait_for("addon_active", f"the {self.label} to be ACTIVE")
        if tags_changed:
            update_tags(
                self.module,
                self.client,
                addon["addonArn"],
                before["tags"],
                desired["tags"],
                purge_tags=params["purge_tags"],
            )
        addon = self.describe() or addon
        associations = self.associations(addon) if wanted_associations else None
        return dict(changed=changed, addon=addon, associations=associations, update=update, diff=diff)

    def predicted(self, addon, after):
        predicted = copy.deepcopy(addon) if addon else dict(addonName=self.name, clusterName=self.cluster_name)
        if not addon:
            predicted["status"] = "CREATING"
        if after.get("addon_version"):
            predicted["addonVersion"] = after["addon_version"]
        configuration = after.get("configuration_values")
        if configuration is not None:
            predicted["configurationValues"] = compact_json(configuration) if configuration else None
        if after.get("service_account_role_arn") is not None:
            predicted["serviceAccountRoleArn"] = after["service_account_role_arn"] or None
        predicted["tags"] = dict(after.get("tags") or {})
        return {k: v for k, v in predicted.items() if v is not None}

    def create(self, desired, cluster):
        params = self.module.params
        version = desired["addon_version"]
        if not version and cluster:
            version = self.default_version(cluster["version"])
        after = dict(
            addon_version=version,
            configuration_values=desired["configuration_values"] or {},
            service_account_role_arn=desired["service_account_role_arn"] or "",
            tags=dict(desired["tags"] or {}),
        )
        if desired["pod_identity_associations"] is not None:
            after["pod_identity_associations"] = desired["pod_identity_associations"]
        diff = dict(before={}, after=after)
        if self.module.check_mode:
            return dict(
                changed=True,
                addon=self.predicted(None, after),
                associations=after.get("pod_identity_associations"),
                update=None,
                diff=diff,
            )

        request = dict(
            clusterName=self.cluster_name,
            addonName=self.name,
            addonVersion=version,
            resolveConflicts=params["resolve_conflicts"],
        )
        if desired["configuration_values"]:
            request["configurationValues"] = compact_json(desired["configuration_values"])
        if desired["service_account_role_arn"]:
            request["serviceAccountRoleArn"] = desired["service_account_role_arn"]
        if desired["pod_identity_associations"]:
            request["podIdentityAssociations"] = [
                dict(serviceAccount=a["service_account"], roleArn=a["role_arn"])
                for a in desired["pod_identity_associations"]
            ]
        if desired["tags"]:
            request["tags"] = desired["tags"]
        try:
            addon = self.client.create_addon(aws_retry=True, **request)["addon"]
        except aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Failed to create the {self.label}")
        if params["wait"]:
            self.wait_for("addon_active", f"the {self.label} to be ACTIVE")
            addon = self.describe() or addon
        associations = self.associations(addon) if desired["pod_identity_associations"] is not None else None
        return dict(changed=True, addon=addon, associations=associations, update=None, diff=diff)

    # ------------------------------------------------------------------ absent

    def ensure_absent(self):
        params = self.module.params
        unchanged = dict(changed=False, addon={}, associations=None, update=None, diff=dict(before={}, after={}))
        if not self.describe_cluster():
            return unchanged
        addon = self.describe()
        if not addon:
            return unchanged
        diff = dict(before=diff_view(addon), after={})
        if addon.get("status") == "DELETING":
            if params["wait"] and not self.module.check_mode:
                self.wait_for("addon_deleted", f"the {self.label} to be deleted")
            return unchanged
        if self.module.check_mode:
            return dict(changed=True, addon={}, associations=None, update=None, diff=diff)
        try:
            self.client.delete_addon(
                clusterName=self.cluster_name, addonName=self.name, preserve=params["preserve"], aws_retry=True
            )
        except is_boto3_error_code("ResourceNotFoundException"):
            return unchanged
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to delete the {self.label}")
        if params["wait"]:
            self.wait_for("addon_deleted", f"the {self.label} to be deleted")
        return dict(changed=True, addon={}, associations=None, update=None, diff=diff)


def format_result(result):
    """Module result: the add-on in snake_case, its configuration parsed, and the most used values."""
    addon = result.pop("addon") or {}
    associations = result.pop("associations")
    configuration = described_configuration_values(addon.get("configurationValues"))
    result.update(
        addon=snake_result(addon),
        configuration_values=configuration if isinstance(configuration, dict) else {},
        addon_version=addon.get("addonVersion"),
        addon_arn=addon.get("addonArn"),
        status=addon.get("status") if addon else "DELETED",
    )
    if associations is not None:
        result["pod_identity_associations"] = associations
    return result


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        desired = validate_addon_params(module.params)
    except EksParameterError as e:
        module.fail_json(msg=str(e), option=e.option)

    client = module.client("eks", retry_decorator=AWSRetry.jittered_backoff())
    manager = Addon(module, client)
    result = manager.ensure_absent() if module.params["state"] == "absent" else manager.ensure_present(desired)
    module.exit_json(**format_result(result))


if __name__ == "__main__":
    main()
