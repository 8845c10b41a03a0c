#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_cluster
version_added: 0.1.0
short_description: Create, update in place and delete an Amazon EKS cluster
description:
  - Creates an Amazon EKS control plane with a pinned Kubernetes version, a private API endpoint by default,
    control plane logging and, optionally, KMS encryption of Kubernetes secrets.
  - Updates an existing cluster in place when its endpoint access, public access CIDR blocks, subnets, security
    groups, control plane logging, authentication mode, secrets encryption, Kubernetes version or tags differ
    from the options.
  - EKS accepts a single kind of change per C(UpdateClusterConfig) call and refuses a new update while one is in
    progress. The module therefore applies the changes one after another, in this order, waiting for each update
    to succeed (C(DescribeUpdate)) and for the cluster to be C(ACTIVE) again before the next one - endpoint access,
    subnets and security groups, logging, authentication mode, secrets encryption, then the Kubernetes version.
  - Kubernetes version upgrades go one minor version at a time (C(UpdateClusterVersion)); upgrading from 1.29 to
    1.31 makes two upgrades, 1.30 then 1.31, each taking several minutes. Downgrades are refused.
  - All options are validated before any AWS API call is made; changes EKS cannot make (another IAM role,
    removing or replacing the secrets encryption key, a downgrade) are refused after reading the cluster,
    before anything is changed.
  - Deleting a cluster requires its node groups and Fargate profiles to be deleted first.
author:
  - layered.eks_rds maintainers (@layered)
options:
  name:
    description:
      - Name of the cluster, at most 100 letters, digits, hyphens and underscores, starting with a letter or digit.
    type: str
    required: true
  state:
    description:
      - V(present) creates or updates the cluster, V(absent) deletes it.
    type: str
    choices: [ present, absent ]
    default: present
  version:
    description:
      - Kubernetes minor version of the control plane, for example V(1.31). Required when O(state=present).
      - Pinned; the module never upgrades on its own. A higher version than the cluster's upgrades it one minor
        version at a time; a lower one is refused.
    type: str
  role_arn:
    description:
      - ARN of the IAM role the EKS control plane assumes (with the C(AmazonEKSClusterPolicy) managed policy).
        Required when O(state=present).
      - It cannot be changed on an existing cluster; the module fails if it differs.
    type: str
  subnets:
    description:
      - IDs of the subnets (C(subnet-...)) for the control plane network interfaces, in at least two
        Availability Zones of one VPC. Required when O(state=present).
      - Compared as a set; a difference updates the cluster's subnets in place.
    type: list
    elements: str
  security_groups:
    description:
      - IDs (C(sg-...)) of up to five additional security groups for the control plane network interfaces.
        EKS creates and always attaches the cluster security group (RV(cluster_security_group_id)) as well.
      - Compared as a set. When omitted, the security groups of an existing cluster are left as they are.
    type: list
    elements: str
  endpoint_private_access:
    description:
      - Whether the Kubernetes API server endpoint is reachable from within the VPC.
      - At least one of O(endpoint_private_access) and O(endpoint_public_access) must be true.
    type: bool
    default: true
  endpoint_public_access:
    description:
      - Whether the Kubernetes API server endpoint is reachable from the Internet, limited to
        O(public_access_cidrs).
    type: bool
    default: false
  public_access_cidrs:
    description:
      - CIDR blocks allowed to reach the public endpoint. Required and non-empty when O(endpoint_public_access=true);
        validated but not used when it is false.
      - V(0.0.0.0/0), V(::/0) and any other C(/0) block are refused.
      - Compared as a set, after normalising each block (host bits cleared).
    type: list
    elements: str
  encryption_config:
    description:
      - Envelope encryption of Kubernetes secrets with a KMS key.
      - When omitted, the encryption of an existing cluster is left as it is (and a new cluster is created
        without it).
      - Encryption can be added to an existing cluster (C(AssociateEncryptionConfig)) but never removed nor moved
        to another key; the module fails when O(encryption_config.key_arn) is empty or differs while the cluster
        already encrypts secrets.
    type: dict
    suboptions:
      key_arn:
        description:
          - ARN of the symmetric KMS key (C(arn:aws:kms:<region>:<account>:key/<id>)), in the cluster's region.
            Aliases are not accepted.
          - Empty or omitted asks for no encryption, which is refused on a cluster that already has it.
        type: str
  logging:
    description:
      - Control plane log types sent to CloudWatch Logs; the other types are disabled. An empty list disables
        all of them.
    type: list
    elements: str
    choices: [ api, audit, authenticator, controllerManager, scheduler ]
    default: [ api, audit, authenticator, controllerManager, scheduler ]
  authentication_mode:
    description:
      - How the cluster authenticates IAM principals - the C(aws-auth) ConfigMap (V(CONFIG_MAP)), access
        entries (V(API)) or both (V(API_AND_CONFIG_MAP)).
      - EKS only moves from V(CONFIG_MAP) to V(API_AND_CONFIG_MAP) to V(API), never back; going back is refused.
        From V(CONFIG_MAP) to V(API) the module makes two updates.
      - When omitted, the mode of an existing cluster is left as it is and a new cluster gets EKS's default,
        V(CONFIG_MAP). A cluster that does not report its mode is taken to be in V(CONFIG_MAP).
    type: str
    choices: [ CONFIG_MAP, API_AND_CONFIG_MAP, API ]
  tags:
    description:
      - Tags of the cluster. When omitted, the tags of an existing cluster are left as they are.
      - Keys starting with C(aws:) are reserved and refused.
    type: dict
    aliases: [ resource_tags ]
  purge_tags:
    description:
      - Remove tags of the cluster that are not in O(tags). Ignored when O(tags) is omitted.
    type: bool
    default: true
  wait:
    description:
      - Wait for the cluster to be C(ACTIVE) after a creation or the last update, and to be gone after a deletion.
      - Several updates in one run are always applied one after another, waiting for each; O(wait=false) only
        skips the wait after the last one.
    type: bool
    default: true
  wait_timeout:
    description:
      - How many seconds the run may spend waiting in total, over all the waits it makes.
      - Creating a cluster takes 10 to 15 minutes and each version upgrade several more.
    type: int
    default: 1800
notes:
  - Supports check mode, predicting the resulting cluster (identifiers EKS assigns are unknown before creation),
    and diff mode, showing the compared options before and after.
  - Needs C(eks:DescribeCluster), C(eks:CreateCluster), C(eks:DeleteCluster), C(eks:UpdateClusterConfig),
    C(eks:UpdateClusterVersion), C(eks:AssociateEncryptionConfig), C(eks:DescribeUpdate), C(eks:TagResource),
    C(eks:UntagResource), and C(iam:PassRole) on O(role_arn); the KMS key policy must let the cluster role use
    the key.
  - Calls are retried with jittered backoff when throttled; waits use botocore's EKS waiters
    (C(cluster_active), C(cluster_deleted)) and a C(DescribeUpdate) waiter, never fixed sleeps.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Private cluster with secrets encryption and all control plane logs
  layered.eks_rds.eks_cluster:
    name: app
    version: "1.31"
    role_arn: arn:aws:iam::123456789012:role/app-eks-cluster
    subnets:
      - subnet-0a1b2c3d4e5f60718
      - subnet-0b1c2d3e4f5a60718
    encryption_config:
      key_arn: arn:aws:kms:eu-west-1:123456789012:key/0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b
    authentication_mode: API_AND_CONFIG_MAP
    tags:
      Project: app
      ManagedBy: layered.eks_rds
  register: app_cluster

- name: Open the public endpoint to one office range, then only audit logs (two updates, one after the other)
  layered.eks_rds.eks_cluster:
    name: app
    version: "1.31"
    role_arn: arn:aws:iam::123456789012:role/app-eks-cluster
    subnets:
      - subnet-0a1b2c3d4e5f60718
      - subnet-0b1c2d3e4f5a60718
    endpoint_public_access: true
    public_access_cidrs:
      - 203.0.113.0/24
    logging:
      - audit

- name: Upgrade two minor versions (1.31 -> 1.32 -> 1.33), waiting up to an hour
  layered.eks_rds.eks_cluster:
    name: app
    version: "1.33"
    role_arn: arn:aws:iam::123456789012:role/app-eks-cluster
    subnets:
      - subnet-0a1b2c3d4e5f60718
      - subnet-0b1c2d3e4f5a60718
    wait_timeout: 3600

- name: Let the nodes reach the API through the cluster security group
  amazon.aws.ec2_security_group:
    name: app-nodes
    description: Worker nodes
    vpc_id: "{{ app_cluster.cluster.resources_vpc_config.vpc_id }}"
    rules:
      - proto: tcp
        ports: [443]
        group_id: "{{ app_cluster.cluster_security_group_id }}"

- name: Delete the cluster
  layered.eks_rds.eks_cluster:
    name: app
    state: absent
"""

RETURN = r"""
cluster:
  description:
    - The cluster as described by C(DescribeCluster), in snake_case (tag keys unchanged).
    - In check mode, the predicted cluster; identifiers EKS assigns are missing before creation.
    - Empty after a deletion.
  returned: always
  type: dict
  sample:
    name: app
    arn: arn:aws:eks:eu-west-1:123456789012:cluster/app
    version: "1.31"
    status: ACTIVE
    endpoint: https://0123456789ABCDEF0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com
    role_arn: arn:aws:iam::123456789012:role/app-eks-cluster
    resources_vpc_config:
      subnet_ids: [subnet-0a1b2c3d4e5f60718, subnet-0b1c2d3e4f5a60718]
      security_group_ids: []
      cluster_security_group_id: sg-0123456789abcdef0
      vpc_id: vpc-0123456789abcdef0
      endpoint_public_access: false
      endpoint_private_access: true
    logging:
      cluster_logging:
        - types: [api, audit, authenticator, controllerManager, scheduler]
          enabled: true
    identity:
      oidc:
        issuer: https://oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF
    encryption_config:
      - resources: [secrets]
        provider:
          key_arn: arn:aws:kms:eu-west-1:123456789012:key/0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b
    access_config:
      authentication_mode: API_AND_CONFIG_MAP
    tags:
      Project: app
arn:
  description: ARN of the cluster; null when unknown (check mode before creation, or after a deletion).
  returned: always
  type: str
  sample: arn:aws:eks:eu-west-1:123456789012:cluster/app
endpoint:
  description: URL of the Kubernetes API server; null until EKS has assigned it.
  returned: always
  type: str
  sample: https://0123456789ABCDEF0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com
certificate_authority_data:
  description: Base64-encoded certificate of the cluster's certificate authority, for a kubeconfig.
  returned: always
  type: str
  sample: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM1ekNDQWMrZ0F3SUJBZ0lCQURBTkJna3Foa2lHOXcwQkFRc0ZBREFWTVJNd0VR
oidc_issuer:
  description: URL of the cluster's OpenID Connect issuer, for an IAM OIDC provider (IAM roles for service accounts).
  returned: always
  type: str
  sample: https://oidc.eks.eu-west-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF
cluster_security_group_id:
  description:
    - ID of the security group EKS creates for the cluster and attaches to the control plane network interfaces
      and to managed nodes; null when unknown.
  returned: always
  type: str
  sample: sg-0123456789abcdef0
vpc_id:
  description: ID of the VPC of the cluster; null when unknown.
  returned: always
  type: str
  sample: vpc-0123456789abcdef0
status:
  description: Status of the cluster (C(CREATING), C(ACTIVE), C(UPDATING), ...); C(DELETED) after a deletion.
  returned: always
  type: str
  sample: ACTIVE
version:
  description: Kubernetes version of the cluster; null after a deletion.
  returned: always
  type: str
  sample: "1.31"
updates:
  description:
    - The updates applied (or, in check mode, that would be applied), in order. Each has C(kind) (one of
      C(endpoint_access), C(vpc_config), C(logging), C(access_config), C(encryption), C(version)), C(description)
      and, when applied, the C(id) and C(status) EKS returned.
  returned: always
  type: list
  elements: dict
  sample:
    - kind: endpoint_access
      description: endpoint access
      id: 1f7ad9d5-3d5e-4a5b-8f4f-4ac0b0e5a0c1
      status: Successful
    - kind: logging
      description: control plane logging
      id: 6c1f5c2e-7d0b-4c9e-a1f3-2b5a0d2e9c47
      status: Successful
diff:
  description: The compared options before and after the change.
  returned: always
  type: dict
  contains:
    before:
      description: Options of the cluster before the change; empty when it did not exist.
      type: dict
    after:
      description: Options of the cluster after the change; empty when it was deleted.
      type: dict
"""


from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.layered.eks_rds.plugins.module_utils.aws_errors import aws_errors
from ansible_collections.layered.eks_rds.plugins.module_utils.eks import (
    AUTHENTICATION_MODES,
    LOG_TYPES,
    Deadline,
    EksParameterError,
    after_cluster_state,
    cluster_diff_view,
    create_cluster_request,
    current_cluster_state,
    plan_cluster_updates,
    predicted_cluster,
    snake_result,
    update_tags,
    validate_cluster_params,
    wait,
)

ARGUMENT_SPEC = dict(
    name=dict(type="str", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    version=dict(type="str"),
    role_arn=dict(type="str"),
    subnets=dict(type="list", elements="str"),
    security_groups=dict(type="list", elements="str"),
    endpoint_private_access=dict(type="bool", default=True),
    endpoint_public_access=dict(type="bool", default=False),
    public_access_cidrs=dict(type="list", elements="str"),
    encryption_config=dict(type="dict", options=dict(key_arn=dict(type="str", no_log=False))),
    logging=dict(type="list", elements="str", choices=list(LOG_TYPES), default=list(LOG_TYPES)),
    authentication_mode=dict(type="str", choices=list(AUTHENTICATION_MODES)),
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
    wait=dict(type="bool", default=True),
    wait_timeout=dict(type="int", default=1800),
)

# Statuses in which EKS is still working on the cluster and refuses updates.
BUSY_STATUSES = ("CREATING", "UPDATING", "PENDING")


class Cluster:
    """Finds, creates, updates and deletes one EKS cluster."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.name = module.params["name"]
        self.deadline = Deadline(module.params["wait_timeout"])

    def describe(self):
        try:
            return self.client.describe_cluster(name=self.name, aws_retry=True)["cluster"]
        except is_boto3_error_code("ResourceNotFoundException"):
            return None
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to describe EKS cluster '{self.name}'")

    def wait_active(self):
        wait(
            self.module,
            self.client,
            "cluster_active",
            self.deadline,
            f"cluster '{self.name}' to be ACTIVE",
            name=self.name,
        )

    def wait_update(self, update, description):
        wait(
            self.module,
            self.client,
            "update_successful",
            self.deadline,
            f"the {description} update {update['id']} of cluster '{self.name}' to succeed",
            name=self.name,
            updateId=update["id"],
        )

    # ------------------------------------------------------------------ present

    def ensure_present(self, cluster, desired):
        params = self.module.params
        if cluster and cluster.get("status") in ("DELETING", "FAILED"):
            self.module.fail_json(
                msg=f"EKS cluster '{self.name}' is {cluster['status']}; it cannot be updated. "
                "Delete it (state=absent) and run again to recreate it"
            )
        if not cluster:
            return self.create(desired)

        current = current_cluster_state(cluster)
        try:
            steps = plan_cluster_updates(desired, current)
        except EksParameterError as e:
            self.module.fail_json(msg=str(e), option=e.option)
        after = after_cluster_state(desired, current, params["purge_tags"])
        diff = dict(before=cluster_diff_view(current), after=cluster_diff_view(after))
        tags_changed = after["tags"] != current["tags"]
        changed = bool(steps) or tags_changed

        if self.module.check_mode:
            updates = [dict(kind=s["kind"], description=s["description"]) for s in steps]
            return dict(changed=changed, cluster=predicted_cluster(cluster, after), updates=updates, diff=diff)

        updates = []
        if steps or (params["wait"] and cluster.get("status") in BUSY_STATUSES):
            self.wait_active()
        for index, step in enumerate(steps):
            if index:
                self.wait_active()
            update = self.apply(step)
            updates.append(
                dict(kind=step["kind"], description=step["description"], id=update["id"], status=update["status"])
            )
            last = index == len(steps) - 1
            if not last or params["wait"]:
                self.wait_update(update, step["description"])
                updates[-1]["status"] = "Successful"
        if steps and params["wait"]:
            self.wait_active()
        if tags_changed:
            update_tags(
                self.module,
                self.client,
                cluster["arn"],
                current["tags"],
                desired["tags"],
                purge_tags=params["purge_tags"],
            )
        return dict(changed=changed, cluster=self.describe() or cluster, updates=updates, diff=diff)

    def apply(self, step):
        """Start one update; return the ``update`` EKS answers with."""
        name_key = "clusterName" if step["operation"] == "associate_encryption_config" else "name"
        request = dict(step["request"], **{name_key: self.name})
        try:
            response = getattr(self.client, step["operation"])(aws_retry=True, **request)
        except aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Failed to update the {step['description']} of EKS cluster '{self.name}'")
        return response["update"]

    def create(self, desired):
        params = self.module.params
        after = after_cluster_state(desired, {}, params["purge_tags"])
        diff = dict(before={}, after=cluster_diff_view(after))
        if self.module.check_mode:
            return dict(changed=True, cluster=predicted_cluster(None, after), updates=[], diff=diff)
        try:
            cluster = self.client.create_cluster(aws_retry=True, **create_cluster_request(desired))["cluster"]
        except aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Failed to create EKS cluster '{self.name}'")
        if params["wait"]:
            self.wait_active()
            cluster = self.describe() or cluster
        return dict(changed=True, cluster=cluster, updates=[], diff=diff)

    # ------------------------------------------------------------------ absent

    def ensure_absent(self, cluster):
        params = self.module.params
        if not cluster:
            return dict(changed=False, cluster={}, updates=[], diff=dict(before={}, after={}))
        diff = dict(before=cluster_diff_view(current_cluster_state(cluster)), after={})
        if cluster.get("status") == "DELETING":
            if params["wait"] and not self.module.check_mode:
                self.wait_deleted()
            return dict(changed=False, cluster={}, updates=[], diff=dict(before={}, after={}))
        if self.module.check_mode:
            return dict(changed=True, cluster={}, updates=[], diff=diff)
        if cluster.get("status") in BUSY_STATUSES:
            self.wait_active()  # EKS refuses to delete a cluster that is still being created or updated
        try:
            self.client.delete_cluster(name=self.name, aws_retry=True)
        except is_boto3_error_code("ResourceNotFoundException"):
            return dict(changed=False, cluster={}, updates=[], diff=dict(before={}, after={}))
        except is_boto3_error_code("ResourceInUseException") as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(
                e,
                msg=f"Failed to delete EKS cluster '{self.name}'; delete its node groups and Fargate profiles first",
            )
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to delete EKS cluster '{self.name}'")
        if params["wait"]:
            self.wait_deleted()
        return dict(changed=True, cluster={}, updates=[], diff=diff)

    def wait_deleted(self):
        wait(
            self.module,
            self.client,
            "cluster_deleted",
            self.deadline,
            f"cluster '{self.name}' to be deleted",
            name=self.name,
        )


def format_result(result):
    """Module result: the cluster in snake_case plus the values other tasks need most."""
    cluster = result.pop("cluster") or {}
    vpc = cluster.get("resourcesVpcConfig") or {}
    result.update(
        cluster=snake_result(cluster),
        arn=cluster.get("arn"),
        endpoint=cluster.get("endpoint"),
        certificate_authority_data=(cluster.get("certificateAuthority") or {}).get("data"),
        oidc_issuer=((cluster.get("identity") or {}).get("oidc") or {}).get("issuer"),
        cluster_security_group_id=vpc.get("clusterSecurityGroupId"),
        vpc_id=vpc.get("vpcId"),
        status=cluster.get("status") if cluster else "DELETED",
        version=cluster.get("version"),
    )
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ("version", "role_arn", "subnets"))],
        supports_check_mode=True,
    )
    try:
        desired = validate_cluster_params(module.params)
    except EksParameterError as e:
        module.fail_json(msg=str(e), option=e.option)
    if desired and not desired["endpoint_public_access"] and module.params["public_access_cidrs"]:
        module.warn("public_access_cidrs is ignored because endpoint_public_access is false")

    client = module.client("eks", retry_decorator=AWSRetry.jittered_backoff())
    manager = Cluster(module, client)
    cluster = manager.describe()
    if module.params["state"] == "absent":
        result = manager.ensure_absent(cluster)
    else:
        result = manager.ensure_present(cluster, desired)
    module.exit_json(**format_result(result))


if __name__ == "__main__":
    main()
