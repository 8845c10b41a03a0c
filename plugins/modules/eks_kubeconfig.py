#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: eks_kubeconfig
version_added: 0.1.0
short_description: Write a kubeconfig with a fresh authentication token for an Amazon EKS cluster
description:
  - Does what C(aws eks get-token) followed by C(aws eks update-kubeconfig) does, without the AWS CLI. It generates
    an EKS bearer token and writes a kubeconfig file holding the cluster endpoint, its certificate authority data and
    that token.
  - The token is C(k8s-aws-v1.) followed by the unpadded URL-safe base64 encoding of a presigned
    C(sts:GetCallerIdentity) URL whose signature covers the C(x-k8s-aws-id) header set to the cluster name. It is
    signed locally by botocore, against the regional STS endpoint, with the credentials found through the usual chain
    (module options, environment, profile, web identity such as IRSA or EKS Pod Identity, instance metadata), or with
    those of O(role_arn).
  - Unless both O(endpoint) and O(certificate_authority_data) are given, the module reads them with
    C(eks:DescribeCluster), which also checks that the cluster exists and is C(ACTIVE) (or C(UPDATING), when its API
    keeps serving). When both are given, C(sts:GetCallerIdentity) provides the account used in the cluster ARN.
  - The kubeconfig holds exactly one cluster, one user (with a static C(token)) and one context, all named after the
    cluster ARN as C(aws eks update-kubeconfig) names them, and that context is the current one.
  - All options are validated before any AWS API call is made.
author:
  - layered.eks_rds maintainers (@layered)
options:
  cluster_name:
    description:
      - Name of the EKS cluster; 1 to 100 letters, digits, hyphens or underscores, starting with a letter or digit.
      - It is the value of the signed C(x-k8s-aws-id) header; EKS rejects tokens made for another cluster.
    type: str
    required: true
    aliases: [ name ]
  role_arn:
    description:
      - IAM role to assume (C(sts:AssumeRole)) before doing anything else. The token then authenticates as this role,
        and C(eks:DescribeCluster) and C(sts:GetCallerIdentity) are called as this role too.
      - Unlike C(aws eks update-kubeconfig --role-arn), the role is not written into the kubeconfig; the token
        already carries it.
    type: str
  role_session_name:
    description:
      - Session name used when assuming O(role_arn); it shows in CloudTrail and in the Kubernetes audit log.
    type: str
    default: layered-eks-rds-kubeconfig
  endpoint:
    description:
      - URL of the cluster's Kubernetes API server, for example the C(endpoint) of the cluster as returned by
        C(eks:DescribeCluster). Must be an C(https://) URL.
      - Read from C(eks:DescribeCluster) when not set.
    type: str
    aliases: [ cluster_endpoint ]
  certificate_authority_data:
    description:
      - Base64 encoding of the PEM certificate(s) of the cluster's certificate authority, as in
        C(certificateAuthority.data) of C(eks:DescribeCluster).
      - Read from C(eks:DescribeCluster) when not set.
    type: str
    aliases: [ ca_data ]
  kubeconfig_path:
    description:
      - Where to write the kubeconfig. Missing parent directories are created with mode C(0700); the file is
        replaced atomically and gets mode C(0600), since it holds a credential.
      - The module owns this file. To protect shared kubeconfig files (such as C(~/.kube/config)), it refuses to
        overwrite or delete a file that is not a kubeconfig or that holds more than one cluster, context or user.
      - When not set, each run writes a new file named C(kubeconfig) in a new private temporary directory
        (mode C(0700)), returned as RV(kubeconfig_path). Delete it with O(state=absent) once done.
      - Required with O(state=absent).
    type: path
    aliases: [ path ]
  state:
    description:
      - V(present) writes the kubeconfig with a fresh token.
      - V(absent) deletes the file at O(kubeconfig_path), and its directory when it is an empty temporary
        directory created by this module. No AWS API is called.
    type: str
    choices: [ present, absent ]
    default: present
notes:
  - C(changed) reflects the configuration, not the token. With O(state=present) and O(kubeconfig_path) set, the module
    reports C(changed=true) only when the file did not exist, when anything but the token differs (cluster ARN,
    endpoint, certificate authority data, entry names) or when its mode was not C(0600). The token, which is new on
    every run, is refreshed silently, so that playbooks stay idempotent. Without O(kubeconfig_path), the temporary file
    is treated like the token, as transient output, and C(changed) is V(false).
  - The token is valid for 15 minutes, reported as RV(expires_at) one minute earlier, as the AWS CLI does. Run the
    module again for a fresh one before that; never cache the token or the file longer.
  - The token is a credential. Set C(no_log=true) on the task that runs this module and on every task that uses
    RV(token). The module does not mask it, so that it can be registered and passed on.
  - In check mode nothing is written; a real token is still generated (signing changes nothing), RV(kubeconfig_path)
    is the path that would be written, or V(null) when O(kubeconfig_path) is not set.
  - Supports diff mode when O(kubeconfig_path) is set; tokens are masked in the diff.
  - "Required IAM permissions: C(eks:DescribeCluster) unless O(endpoint) and O(certificate_authority_data) are set,
    C(sts:GetCallerIdentity) when they are, and C(sts:AssumeRole) on O(role_arn) when set. Access to the Kubernetes
    API itself is granted to the IAM principal by an EKS access entry (or the C(aws-auth) ConfigMap)."
  - The regional STS endpoint is used even when the profile or C(AWS_STS_REGIONAL_ENDPOINTS) asks for the global
    one. When an endpoint URL is configured (O(endpoint_url), C(AWS_ENDPOINT_URL) or C(AWS_ENDPOINT_URL_STS)), the token
    is presigned for that endpoint instead, which only suits test stacks.
  - Requires PyYAML on the host that runs the module.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Write a kubeconfig for the cluster to a private temporary file
  layered.eks_rds.eks_kubeconfig:
    cluster_name: demo
    region: eu-west-1
  register: demo_kubeconfig
  no_log: true

- name: Use it with kubernetes.core
  kubernetes.core.k8s_info:
    kubeconfig: "{{ demo_kubeconfig.kubeconfig_path }}"
    kind: Namespace
  register: demo_namespaces

- name: Delete the temporary kubeconfig
  layered.eks_rds.eks_kubeconfig:
    cluster_name: demo
    kubeconfig_path: "{{ demo_kubeconfig.kubeconfig_path }}"
    state: absent

- name: Authenticate as a deployment role, with a known endpoint and CA, to a fixed path
  layered.eks_rds.eks_kubeconfig:
    cluster_name: demo
    role_arn: arn:aws:iam::123456789012:role/demo-cluster-admin
    endpoint: "{{ demo_cluster.endpoint }}"
    certificate_authority_data: "{{ demo_cluster.certificate_authority.data }}"
    kubeconfig_path: "{{ playbook_dir }}/.kube/demo.kubeconfig"
  no_log: true

- name: Pass only the token to a tool that takes a bearer token
  ansible.builtin.uri:
    url: "{{ demo_kubeconfig.cluster.endpoint }}/version"
    ca_path: /etc/pki/demo-cluster-ca.pem
    headers:
      Authorization: "Bearer {{ demo_kubeconfig.token }}"
  no_log: true
"""

RETURN = r"""
kubeconfig_path:
  description:
    - Absolute path of the kubeconfig file (written, deleted, or that would be written in check mode).
    - V(null) in check mode when O(kubeconfig_path) is not set.
  returned: always
  type: str
  sample: /tmp/eks-kubeconfig-k2j4h1/kubeconfig
token:
  description:
    - The EKS bearer token, also written into the kubeconfig.
    - It is a secret; run the task with C(no_log=true). The module does not mask it, so that it can be registered and
      passed on.
  returned: when O(state=present)
  type: str
  sample: k8s-aws-v1.aHR0cHM6Ly9zdHMuZXUtd2VzdC0xLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxsZXJJZGVudGl0eSZWZXJzaW9u
expires_at:
  description:
    - When to consider the token expired, in ISO 8601 UTC; 14 minutes after it was signed (EKS accepts it for 15).
  returned: when O(state=present)
  type: str
  sample: "2026-01-01T12:14:00Z"
cluster:
  description: The cluster the kubeconfig points at.
  returned: always
  type: dict
  contains:
    name:
      description: Name of the cluster.
      type: str
      sample: demo
    endpoint:
      description: URL of its Kubernetes API server.
      type: str
      returned: when O(state=present)
      sample: https://0123456789ABCDEF0123456789ABCDEF.gr7.eu-west-1.eks.amazonaws.com
    arn:
      description: ARN of the cluster, also the name of the kubeconfig cluster, user and context entries.
      type: str
      returned: when O(state=present)
      sample: arn:aws:eks:eu-west-1:123456789012:cluster/demo
"""

import contextlib
import datetime
import os

with contextlib.suppress(ImportError):  # a missing botocore is reported by AnsibleAWSModule
    from botocore.exceptions import BotoCoreError, ClientError

try:
    import yaml
except ImportError:
    yaml = None

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.layered.eks_rds.plugins.module_utils.eks_token import (
    ACCEPTED_CLUSTER_STATUSES,
    EksTokenParameterError,
    KubeconfigFileError,
    build_kubeconfig,
    check_replaceable,
    cluster_arn,
    format_utc,
    generate_token,
    make_private_temp_path,
    redact_kubeconfig,
    remove_kubeconfig_file,
    token_expiry,
    validate_certificate_authority_data,
    validate_cluster_name,
    validate_endpoint,
    validate_role_arn,
    validate_role_session_name,
    write_private_file,
)

ARGUMENT_SPEC = dict(
    cluster_name=dict(type="str", required=True, aliases=["name"]),
    role_arn=dict(type="str"),
    role_session_name=dict(type="str", default="layered-eks-rds-kubeconfig"),
    endpoint=dict(type="str", aliases=["cluster_endpoint"]),
    certificate_authority_data=dict(type="str", aliases=["ca_data"]),
    kubeconfig_path=dict(type="path", aliases=["path"]),
    state=dict(type="str", default="present", choices=["present", "absent"]),
)

FILE_MODE = 0o600


def validated_request(module):
    """Check every option before any API call; fail naming the offending option."""
    params = module.params
    try:
        request = dict(
            cluster_name=validate_cluster_name(params["cluster_name"]),
            state=params["state"],
            path=os.path.realpath(params["kubeconfig_path"]) if params["kubeconfig_path"] else None,
        )
        if request["path"] and os.path.isdir(request["path"]):
            raise EksTokenParameterError("kubeconfig_path", f"{request['path']} is a directory, give a file path")
        if request["state"] == "absent":
            return request
        request["role_arn"] = validate_role_arn(params["role_arn"]) if params["role_arn"] else None
        request["role_session_name"] = validate_role_session_name(params["role_session_name"])
        request["endpoint"] = validate_endpoint(params["endpoint"]) if params["endpoint"] else None
        request["ca_data"] = (
            validate_certificate_authority_data(params["certificate_authority_data"])
            if params["certificate_authority_data"]
            else None
        )
    except EksTokenParameterError as e:
        module.fail_json(msg=str(e), option=e.option)
    if not module.region:
        module.fail_json(
            msg="region: no AWS region could be determined; set the region option, the AWS_REGION or "
            "AWS_DEFAULT_REGION environment variable, or a region in the AWS profile",
            option="region",
        )
    request["region"] = module.region
    return request


def read_existing(module, path, cluster_name=None):
    """Return (exists, parsed document, mode) of the kubeconfig at path; fail if it must not be touched."""
    if not path or not os.path.lexists(path):
        return False, None, None
    if not os.path.isfile(path):
        module.fail_json(msg=f"kubeconfig_path: {path} exists and is not a regular file", option="kubeconfig_path")
    try:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
        mode = os.stat(path).st_mode & 0o7777
    except (OSError, UnicodeDecodeError) as e:
        module.fail_json(msg=f"kubeconfig_path: cannot read {path}: {e}", option="kubeconfig_path")
    except yaml.YAMLError:
        module.fail_json(
            msg=f"kubeconfig_path: {path} exists and is not a kubeconfig file (not YAML); not touching it",
            option="kubeconfig_path",
        )
    try:
        check_replaceable(document, path, cluster_name=cluster_name)
    except KubeconfigFileError as e:
        module.fail_json(msg=str(e), option="kubeconfig_path")
    return True, document, mode


@contextlib.contextmanager
def regional_sts_endpoints():
    """Make botocore pick the regional STS endpoint even if the profile or environment asks for the global one."""
    name = "AWS_STS_REGIONAL_ENDPOINTS"
    previous = os.environ.get(name)
    os.environ[name] = "regional"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def sts_client(module, credentials):
    with regional_sts_endpoints():
        return module.client("sts", retry_decorator=AWSRetry.jittered_backoff(), **credentials)


def assume_role(module, request):
    """Return client keyword arguments carrying the credentials of role_arn."""
    client = sts_client(module, {})
    try:
        response = client.assume_role(
            RoleArn=request["role_arn"], RoleSessionName=request["role_session_name"], aws_retry=True
        )
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to assume role {request['role_arn']}")
    credentials = response["Credentials"]
    return dict(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )


def describe_cluster(module, request, credentials):
    """Return (arn, endpoint, certificate authority data) of an ACTIVE (or UPDATING) cluster."""
    name, region = request["cluster_name"], request["region"]
    client = module.client("eks", retry_decorator=AWSRetry.jittered_backoff(), **credentials)
    try:
        cluster = client.describe_cluster(name=name, aws_retry=True)["cluster"]
    except is_boto3_error_code("ResourceNotFoundException"):
        module.fail_json(msg=f"cluster_name: EKS cluster '{name}' was not found in region {region}")
    except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Failed to describe EKS cluster '{name}'")

    status = cluster.get("status", "UNKNOWN")
    if status not in ACCEPTED_CLUSTER_STATUSES:
        module.fail_json(
            msg=f"EKS cluster '{name}' is {status}, not ACTIVE; retry once it is ACTIVE", cluster_status=status
        )
    endpoint = request["endpoint"] or cluster.get("endpoint")
    ca_data = request["ca_data"] or (cluster.get("certificateAuthority") or {}).get("data")
    if not endpoint or not ca_data:
        module.fail_json(msg=f"EKS cluster '{name}' has no endpoint or certificate authority data yet ({status})")
    return cluster["arn"], endpoint, ca_data


def caller_cluster_arn(module, client, request):
    """Build the cluster ARN from the caller's account, when the cluster is not described."""
    try:
        caller = client.get_caller_identity(aws_retry=True)
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Failed to read the caller identity (sts:GetCallerIdentity)")
    partition = caller["Arn"].split(":")[1]
    return cluster_arn(partition, request["region"], caller["Account"], request["cluster_name"])


def ensure_present(module, request):
    exists, existing, mode = read_existing(module, request["path"])

    credentials = assume_role(module, request) if request["role_arn"] else {}
    client = sts_client(module, credentials)
    if request["endpoint"] and request["ca_data"]:
        arn, endpoint, ca_data = caller_cluster_arn(module, client, request), request["endpoint"], request["ca_data"]
    else:
        arn, endpoint, ca_data = describe_cluster(module, request, credentials)

    requested_at = datetime.datetime.now(datetime.timezone.utc)
    try:
        token = generate_token(client, request["cluster_name"])
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Failed to sign the EKS authentication token")
    document = build_kubeconfig(arn, endpoint, ca_data, token)

    result = dict(
        changed=False,
        token=token,
        expires_at=format_utc(token_expiry(token, now=requested_at)),
        cluster=dict(name=request["cluster_name"], endpoint=endpoint, arn=arn),
        kubeconfig_path=request["path"],
    )
    if request["path"]:
        after = redact_kubeconfig(document)
        before = redact_kubeconfig(existing) if exists else None
        result["changed"] = not exists or before != after or mode != FILE_MODE
        result["diff"] = dict(
            before=dict(path=request["path"], mode=f"{mode:04o}", kubeconfig=before) if exists else {},
            after=dict(path=request["path"], mode=f"{FILE_MODE:04o}", kubeconfig=after),
        )
    if module.check_mode:
        return result

    path = request["path"] or make_private_temp_path()
    try:
        write_private_file(path, yaml.safe_dump(document, default_flow_style=False, sort_keys=False))
    except OSError as e:
        module.fail_json(msg=f"kubeconfig_path: cannot write {path}: {e}", option="kubeconfig_path")
    result["kubeconfig_path"] = path
    return result


def ensure_absent(module, request):
    path = request["path"]
    exists, existing, mode = read_existing(module, path, cluster_name=request["cluster_name"])
    result = dict(
        changed=exists,
        kubeconfig_path=path,
        cluster=dict(name=request["cluster_name"]),
        diff=dict(
            before=dict(path=path, mode=f"{mode:04o}", kubeconfig=redact_kubeconfig(existing)) if exists else {},
            after={},
        ),
    )
    if exists and not module.check_mode:
        try:
            remove_kubeconfig_file(path)
        except OSError as e:
            module.fail_json(msg=f"kubeconfig_path: cannot delete {path}: {e}", option="kubeconfig_path")
    return result


def main():
    module = AnsibleAWSModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "absent", ("kubeconfig_path",))],
        supports_check_mode=True,
    )
    if yaml is None:
        module.fail_json(msg=missing_required_lib("PyYAML"))
    request = validated_request(module)
    if request["state"] == "absent":
        module.exit_json(**ensure_absent(module, request))
    module.exit_json(**ensure_present(module, request))


if __name__ == "__main__":
    main()
