#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_pod_identity_association
version_added: 0.1.0
short_description: Create, update and delete an Amazon EKS Pod Identity association
description:
  - Associates an IAM role with a Kubernetes service account of an EKS cluster, so that pods using the
    service account receive the role's credentials from the EKS Pod Identity agent.
  - An association is identified by (O(cluster_name), O(namespace), O(service_account)); EKS allows one per
    service account. The module finds it with C(ListPodIdentityAssociations) and updates O(role_arn),
    O(target_role_arn) and O(tags) in place, so running it again never creates a second association.
  - If another run creates the association between the lookup and the creation, the module adopts it and
    updates it instead of failing.
  - Associations created by an add-on (through its C(podIdentityAssociations)) are left to
    M(layered.eks_rds.eks_addon); the module refuses to change or delete them.
  - All options are validated before any AWS API call is made.
author:
  - layered.eks_rds maintainers (@layered)
options:
  cluster_name:
    description:
      - Name of the EKS cluster. The C(eks-pod-identity-agent) add-on must run on it for pods to get credentials.
    type: str
    required: true
  namespace:
    description:
      - Kubernetes namespace of the service account; a DNS-1123 label (lower case letters, digits and C(-),
        at most 63 characters). It does not need to exist yet.
    type: str
    required: true
  service_account:
    description:
      - Name of the Kubernetes service account; a DNS-1123 subdomain (lower case letters, digits, C(-) and C(.),
        at most 253 characters). It does not need to exist yet.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the association, V(absent) deletes it.
    type: str
    choices: [ present, absent ]
    default: present
  role_arn:
    description:
      - ARN of the IAM role pods using the service account receive. Required when O(state=present).
      - Its trust policy must allow C(sts:AssumeRole) and C(sts:TagSession) to the service principal
        C(pods.eks.amazonaws.com).
    type: str
  target_role_arn:
    description:
      - ARN of a role, possibly in another account, that EKS assumes with the credentials of O(role_arn)
        (role chaining); pods then receive the target role's credentials.
      - An empty string removes it. When omitted, the target role of an existing association is left as it is.
    type: str
  tags:
    description:
      - Tags of the association. When omitted, the tags of an existing association are left as they are.
    type: dict
    aliases: [ resource_tags ]
  purge_tags:
    description:
      - Remove tags of the association that are not in O(tags). Ignored when O(tags) is omitted.
    type: bool
    default: true
notes:
  - Supports check mode, predicting the resulting association, and diff mode, showing the compared options
    before and after. In check mode a missing cluster is not an error, so that a play can be checked against an
    empty account; the association is then predicted to be created.
  - EKS applies associations synchronously, so there is nothing to wait for.
  - Needs C(eks:ListPodIdentityAssociations), C(eks:DescribePodIdentityAssociation),
    C(eks:CreatePodIdentityAssociation), C(eks:UpdatePodIdentityAssociation), C(eks:DeletePodIdentityAssociation),
    C(eks:TagResource), C(eks:UntagResource), and C(iam:PassRole) on the roles.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Give the app's service account the role that may connect to its database
  layered.eks_rds.eks_pod_identity_association:
    cluster_name: app
    namespace: metabase
    service_account: metabase
    role_arn: arn:aws:iam::123456789012:role/metabase-rds-connect
    tags:
      Project: app
  register: metabase_identity

- name: Switch the service account to another role (updated in place)
  layered.eks_rds.eks_pod_identity_association:
    cluster_name: app
    namespace: metabase
    service_account: metabase
    role_arn: arn:aws:iam::123456789012:role/metabase-rds-connect-v2

- name: Remove the association
  layered.eks_rds.eks_pod_identity_association:
    cluster_name: app
    namespace: metabase
    service_account: metabase
    state: absent
"""

RETURN = r"""
association:
  description:
    - The association as described by C(DescribePodIdentityAssociation), in snake_case (tag keys unchanged).
    - In check mode, the predicted association. Empty after a deletion.
  returned: always
  type: dict
  sample:
    cluster_name: app
    namespace: metabase
    service_account: metabase
    role_arn: arn:aws:iam::123456789012:role/metabase-rds-connect
    association_id: a-0123456789abcdefg
    association_arn: arn:aws:eks:eu-west-1:123456789012:podidentityassociation/app/a-0123456789abcdefg
    disable_session_tags: false
    tags:
      Project: app
association_id:
  description: ID of the association; null when unknown (check mode before creation, or after a deletion).
  returned: always
  type: str
  sample: a-0123456789abcdefg
association_arn:
  description: ARN of the association; null when unknown.
  returned: always
  type: str
  sample: arn:aws:eks:eu-west-1:123456789012:podidentityassociation/app/a-0123456789abcdefg
role_arn:
  description: ARN of the IAM role of the association; null after a deletion.
  returned: always
  type: str
  sample: arn:aws:iam::123456789012:role/metabase-rds-connect
target_role_arn:
  description: ARN of the target role, if any.
  returned: always
  type: str
  sample: arn:aws:iam::210987654321:role/metabase-cross-account
namespace:
  description: Kubernetes namespace of the service account.
  returned: always
  type: str
  sample: metabase
service_account:
  description: Name of the Kubernetes service account.
  returned: always
  type: str
  sample: metabase
diff:
  description: The compared options before and after the change.
  returned: always
  type: dict
  contains:
    before:
      description: Options of the association before the change; empty when it did not exist.
      type: dict
    after:
      description: Options of the association after the change; empty when it was deleted.
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
    EksParameterError,
    apply_tags,
    snake_result,
    update_tags,
    validate_association_params,
)

ARGUMENT_SPEC = dict(
    cluster_name=dict(type="str", required=True),
    namespace=dict(type="str", required=True),
    service_account=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    role_arn=dict(type="str"),
    target_role_arn=dict(type="str"),
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
)


def diff_view(association):
    if not association:
        return {}
    return dict(
        namespace=association.get("namespace"),
        service_account=association.get("serviceAccount"),
        role_arn=association.get("roleArn"),
        target_role_arn=association.get("targetRoleArn") or "",
        tags=dict(association.get("tags") or {}),
    )


class ClusterMissing(Exception):
    """The cluster named by cluster_name does not exist."""


class Association:
    """Finds, creates, updates and deletes the association of one service account."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        params = module.params
        self.cluster_name = params["cluster_name"]
        self.namespace = params["namespace"]
        self.service_account = params["service_account"]
        self.label = (
            f"Pod Identity association of service account '{self.namespace}/{self.service_account}' "
            f"in EKS cluster '{self.cluster_name}'"
        )

    def find(self):
        """The described association, or None; raises ClusterMissing."""
        try:
            listed = paginated_query_with_retries(
                self.client,
                "list_pod_identity_associations",
                retry_decorator=AWSRetry.jittered_backoff(),
                clusterName=self.cluster_name,
                namespace=self.namespace,
                serviceAccount=self.service_account,
            )
        except is_boto3_error_code("ResourceNotFoundException"):
            raise ClusterMissing() from None
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to list the Pod Identity associations of '{self.cluster_name}'")
        matches = [
            a
            for a in listed.get("associations") or []
            if (a.get("namespace"), a.get("serviceAccount")) == (self.namespace, self.service_account)
        ]
        if not matches:
            return None
        try:
            return self.client.describe_pod_identity_association(
                clusterName=self.cluster_name, associationId=matches[0]["associationId"], aws_retry=True
            )["association"]
        except is_boto3_error_code("ResourceNotFoundException"):
            return None  # deleted in the meantime
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to describe the {self.label}")

    def refuse_owned(self, association):
        owner = association.get("ownerArn")
        if owner:
            self.module.fail_json(
                msg=f"The {self.label} ({association['associationId']}) belongs to the add-on {owner}; "
                "manage it through that add-on's pod_identity_associations (layered.eks_rds.eks_addon)"
            )

    # ------------------------------------------------------------------ present

    def ensure_present(self, desired):
        try:
            association = self.find()
        except ClusterMissing:
            if not self.module.check_mode:
                self.module.fail_json(
                    msg=f"cluster_name: EKS cluster '{self.cluster_name}' was not found", option="cluster_name"
                )
            self.module.warn(f"EKS cluster '{self.cluster_name}' does not exist; predicting the association's creation")
            association = None
        if association is None:
            if self.module.check_mode:
                return self.predicted_creation(desired)
            association, created = self.create(desired)
            if created:
                return dict(changed=True, association=association, diff=dict(before={}, after=diff_view(association)))
        return self.update(association, desired)

    def predicted_creation(self, desired):
        predicted = dict(
            clusterName=self.cluster_name,
            namespace=self.namespace,
            serviceAccount=self.service_account,
            roleArn=desired["role_arn"],
            tags=dict(desired["tags"] or {}),
        )
        if desired["target_role_arn"]:
            predicted["targetRoleArn"] = desired["target_role_arn"]
        return dict(changed=True, association=predicted, diff=dict(before={}, after=diff_view(predicted)))

    def create(self, desired):
        """Create the association; return (association, True), or (the one created elsewhere meanwhile, False)."""
        request = dict(
            clusterName=self.cluster_name,
            namespace=self.namespace,
            serviceAccount=self.service_account,
            roleArn=desired["role_arn"],
        )
        if desired["target_role_arn"]:
            request["targetRoleArn"] = desired["target_role_arn"]
        if desired["tags"]:
            request["tags"] = desired["tags"]
        try:
            created = self.client.create_pod_identity_association(aws_retry=True, **request)["association"]
        except is_boto3_error_code("ResourceInUseException") as e:
            # Created elsewhere since the lookup: adopt it.
            existing = self.find()
            if existing is None:
                self.module.fail_json_aws(e, msg=f"Failed to create the {self.label}")
            return existing, False
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to create the {self.label}")
        return created, True

    def update(self, association, desired):
        params = self.module.params
        self.refuse_owned(association)
        before = diff_view(association)
        after = copy.deepcopy(before)
        after["role_arn"] = desired["role_arn"]
        if desired["target_role_arn"] is not None:
            after["target_role_arn"] = desired["target_role_arn"]
        after["tags"] = apply_tags(before["tags"], desired["tags"], params["purge_tags"])
        fields_changed = (after["role_arn"], after["target_role_arn"]) != (
            before["role_arn"],
            before["target_role_arn"],
        )
        tags_changed = after["tags"] != before["tags"]
        changed = fields_changed or tags_changed
        diff = dict(before=before, after=after)

        if self.module.check_mode:
            predicted = copy.deepcopy(association)
            predicted.update(roleArn=after["role_arn"], tags=after["tags"])
            if after["target_role_arn"]:
                predicted["targetRoleArn"] = after["target_role_arn"]
            else:
                predicted.pop("targetRoleArn", None)
                predicted.pop("externalId", None)
            return dict(changed=changed, association=predicted, diff=diff)

        if fields_changed:
            request = dict(
                clusterName=self.cluster_name, associationId=association["associationId"], roleArn=after["role_arn"]
            )
            if after["target_role_arn"] != before["target_role_arn"]:
                request["targetRoleArn"] = after["target_role_arn"]
            try:
                association = self.client.update_pod_identity_association(aws_retry=True, **request)["association"]
            except aws_errors() as e:
                self.module.fail_json_aws(e, msg=f"Failed to update the {self.label}")
        if tags_changed:
            update_tags(
                self.module,
                self.client,
                association["associationArn"],
                before["tags"],
                desired["tags"],
                purge_tags=params["purge_tags"],
            )
            association = self.find() or association
        return dict(changed=changed, association=association, diff=diff)

    # ------------------------------------------------------------------ absent

    def ensure_absent(self):
        unchanged = dict(changed=False, association={}, diff=dict(before={}, after={}))
        try:
            association = self.find()
        except ClusterMissing:
            return unchanged
        if association is None:
            return unchanged
        self.refuse_owned(association)
        diff = dict(before=diff_view(association), after={})
        if self.module.check_mode:
            return dict(changed=True, association={}, diff=diff)
        try:
            self.client.delete_pod_identity_association(
                clusterName=self.cluster_name, associationId=association["associationId"], aws_retry=True
            )
        except is_boto3_error_code("ResourceNotFoundException"):
            return unchanged
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to delete the {self.label}")
        return dict(changed=True, association={}, diff=diff)


def format_result(result, params):
    association = result.pop("association") or {}
    present = bool(association)
    result.update(
        association=snake_result(association),
        association_id=association.get("associationId"),
        association_arn=association.get("associationArn"),
        role_arn=association.get("roleArn"),
        target_role_arn=association.get("targetRoleArn"),
        namespace=association.get("namespace") if present else params["namespace"],
        service_account=association.get("serviceAccount") if present else params["service_account"],
    )
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ("role_arn",))],
        supports_check_mode=True,
    )
    try:
        desired = validate_association_params(module.params)
    except EksParameterError as e:
        module.fail_json(msg=str(e), option=e.option)

    client = module.client("eks", retry_decorator=AWSRetry.jittered_backoff())
    manager = Association(module, client)
    result = manager.ensure_absent() if module.params["state"] == "absent" else manager.ensure_present(desired)
    module.exit_json(**format_result(result, module.params))


if __name__ == "__main__":
    main()
