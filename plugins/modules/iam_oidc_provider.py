#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: iam_oidc_provider
version_added: 0.1.0
short_description: Manage an IAM OpenID Connect identity provider
description:
  - Creates, updates or deletes an IAM OpenID Connect (OIDC) identity provider, such as the one IAM roles for
    service accounts (IRSA) need for the OIDC issuer of an EKS cluster or of a self-hosted Kubernetes cluster.
  - The provider is found by its issuer URL (get-or-create). IAM stores the URL without C(https://) and without a
    trailing slash, and allows one provider per URL in an account; the module matches existing providers the same way.
  - Client IDs (audiences) are added and removed one by one, the thumbprint list is replaced when it differs, and tags
    are added and removed, so an existing provider is updated in place and never recreated.
  - When no O(thumbprints) are given, the module computes the thumbprint the way eksctl does, from the TLS
    certificate chain the issuer presents (see O(compute_thumbprint)).
  - All options are validated before any AWS API call or network connection is made.
author:
  - layered.eks_rds maintainers (@layered)
options:
  url:
    description:
      - URL of the OIDC issuer, exactly as in the C(iss) claim of its tokens, for example the
        C(identity.oidc.issuer) of an EKS cluster.
      - Must start with C(https://); IAM does not accept any other scheme. It may contain a port and a path but
        no user information, query string or fragment.
      - A trailing slash is removed and the host name is lower-cased, as IAM does.
    type: str
    required: true
    aliases: [ issuer_url ]
  client_ids:
    description:
      - Client IDs, also known as audiences, that may use this provider (the C(aud) claim of the tokens).
      - Client IDs of an existing provider that are not in this list are removed.
      - The default is the audience of IAM roles for service accounts and of EKS Pod Identity webhooks.
    type: list
    elements: str
    default: [ sts.amazonaws.com ]
    aliases: [ audiences ]
  thumbprints:
    description:
      - Server certificate thumbprints of the issuer, each the hexadecimal SHA-1 fingerprint (40 digits, without
        colons) of the certificate at the top of the chain the issuer presents. Between 1 and 5 entries.
      - When set, the thumbprint list of the provider is replaced by this list if it differs (order is ignored).
      - Mutually exclusive with O(compute_thumbprint=true).
    type: list
    elements: str
  compute_thumbprint:
    description:
      - Compute the thumbprint from the issuer's TLS certificate chain, as eksctl does.
      - The module connects to the host and port of O(url) (with SNI set to the host name), reads the certificates
        the server presents and takes the SHA-1 of the DER encoding of the last one, normally the root CA.
        No HTTP request is sent and proxies are not used. Reading the chain needs Python 3.10 or later on the host
        that runs the module.
      - Defaults to V(true) when O(thumbprints) is not set. With V(false) and no O(thumbprints), a new provider is
        created without thumbprints (IAM then works them out itself) and the thumbprints of an existing provider are
        left alone.
      - When the thumbprint list of an existing provider does not contain the computed thumbprint, the list is
        replaced by the computed thumbprint and the module emits a warning; this is not an error.
    type: bool
  validate_certs:
    description:
      - When V(false), TLS certificates are not validated, neither for the AWS APIs nor when the issuer's
        certificate chain is read for O(compute_thumbprint).
      - Prefer O(ca_path) for an issuer whose CA is not in the system trust store, and O(aws_ca_bundle) for the
        AWS endpoint.
    type: bool
    default: true
  ca_path:
    description:
      - PEM file with the CA certificates to verify the issuer's TLS certificate against when the thumbprint is
        computed, instead of the system trust store.
      - Only used when O(compute_thumbprint) is in effect and O(validate_certs=true).
    type: path
  state:
    description:
      - V(present) creates or updates the provider, V(absent) deletes it.
      - Deleting a provider breaks every role whose trust policy names it.
    type: str
    choices: [ present, absent ]
    default: present
notes:
  - IAM no longer uses the thumbprint for issuers whose certificate it can verify with a trusted root CA (for example
    the EKS OIDC issuers), and I(thumbprints) are optional when creating a provider. The module still keeps them
    accurate, because other issuers rely on them, and so that the state it reports matches what an issuer presents.
  - Role trust policies refer to the provider by its ARN (RV(arn)) and use RV(issuer_host_path) as the prefix of the
    condition keys, for example C(<issuer_host_path>:sub) and C(<issuer_host_path>:aud).
  - "Required IAM permissions: C(iam:ListOpenIDConnectProviders), C(iam:GetOpenIDConnectProvider),
    C(iam:CreateOpenIDConnectProvider), C(iam:AddClientIDToOpenIDConnectProvider),
    C(iam:RemoveClientIDFromOpenIDConnectProvider), C(iam:UpdateOpenIDConnectProviderThumbprint),
    C(iam:TagOpenIDConnectProvider), C(iam:UntagOpenIDConnectProvider), C(iam:DeleteOpenIDConnectProvider);
    in check mode, C(sts:GetCallerIdentity) to predict the ARN of a provider that does not exist yet."
  - Supports check mode (the thumbprint is still computed, since reading a certificate chain changes nothing) and
    diff mode.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Read the OIDC issuer of an EKS cluster
  amazon.aws.eks_cluster_info:
    name: demo
  register: demo_cluster

- name: Create the IAM OIDC provider for IRSA, computing the thumbprint
  layered.eks_rds.iam_oidc_provider:
    url: "{{ demo_cluster.cluster.identity.oidc.issuer }}"
    tags:
      Project: demo
      ManagedBy: layered.eks_rds
  register: demo_oidc

- name: Trust policy of a role for the ServiceAccount app/app
  ansible.builtin.set_fact:
    app_trust_policy:
      Version: "2012-10-17"
      Statement:
        - Effect: Allow
          Principal:
            Federated: "{{ demo_oidc.arn }}"
          Action: sts:AssumeRoleWithWebIdentity
          Condition:
            StringEquals:
              "{{ demo_oidc.issuer_host_path }}:sub": system:serviceaccount:app:app
              "{{ demo_oidc.issuer_host_path }}:aud": sts.amazonaws.com

- name: Self-hosted issuer with a private CA and an extra audience
  layered.eks_rds.iam_oidc_provider:
    url: https://oidc.example.internal:8443/cluster-a
    ca_path: /etc/pki/example-internal-ca.pem
    client_ids:
      - sts.amazonaws.com
      - https://kubernetes.default.svc

- name: Pin the thumbprint instead of computing it
  layered.eks_rds.iam_oidc_provider:
    url: https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
    thumbprints:
      - 9e99a48a9960b14926bb7f3b02e22da2b0ab7280

- name: Delete the provider
  layered.eks_rds.iam_oidc_provider:
    url: "{{ demo_cluster.cluster.identity.oidc.issuer }}"
    state: absent
"""

RETURN = r"""
arn:
  description:
    - ARN of the provider. With O(state=absent), the ARN of the deleted provider, or V(null) if there was none.
    - In check mode, the predicted ARN of a provider that would be created (V(null) if the account could not be read).
  returned: always
  type: str
  sample: arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
url:
  description: The normalised issuer URL, with C(https://) and without a trailing slash.
  returned: always
  type: str
  sample: https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
issuer_host_path:
  description:
    - The issuer URL without its scheme, as IAM stores it. It is the prefix of the trust-policy condition keys
      (C(<issuer_host_path>:sub), C(<issuer_host_path>:aud)).
  returned: always
  type: str
  sample: oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE
client_ids:
  description: Client IDs (audiences) of the provider.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [ sts.amazonaws.com ]
thumbprints:
  description: Thumbprints of the provider, lower-case.
  returned: when O(state=present)
  type: list
  elements: str
  sample: [ 9e99a48a9960b14926bb7f3b02e22da2b0ab7280 ]
computed_thumbprint:
  description: The thumbprint computed from the issuer's certificate chain, when O(compute_thumbprint) is in effect.
  returned: when O(state=present) and the thumbprint was computed
  type: str
  sample: 9e99a48a9960b14926bb7f3b02e22da2b0ab7280
tags:
  description: Tags of the provider.
  returned: when O(state=present)
  type: dict
  sample: { Project: demo, ManagedBy: layered.eks_rds }
create_date:
  description: When the provider was created, in ISO 8601; V(null) when this run created it (or would create it).
  returned: when O(state=present)
  type: str
  sample: "2026-01-01T12:00:00+00:00"
"""

import contextlib
import os

with contextlib.suppress(ImportError):  # a missing botocore is reported by AnsibleAWSModule
    from botocore.exceptions import BotoCoreError, ClientError

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    ansible_dict_to_boto3_tag_list,
    boto3_tag_list_to_ansible_dict,
    compare_aws_tags,
)
from ansible_collections.layered.eks_rds.plugins.module_utils.oidc import (
    DEFAULT_CLIENT_IDS,
    OidcParameterError,
    OidcThumbprintError,
    compute_issuer_thumbprint,
    normalize_issuer_url,
    provider_host_path_from_arn,
    same_host_path,
    validate_client_ids,
    validate_thumbprints,
)

ARGUMENT_SPEC = dict(
    url=dict(type="str", required=True, aliases=["issuer_url"]),
    client_ids=dict(type="list", elements="str", default=list(DEFAULT_CLIENT_IDS), aliases=["audiences"]),
    thumbprints=dict(type="list", elements="str"),
    compute_thumbprint=dict(type="bool"),
    ca_path=dict(type="path"),
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
)


def validated_request(module):
    """Check every option before any API call or connection; fail naming the offending option."""
    params = module.params
    try:
        url, host_path = normalize_issuer_url(params["url"])
        request = dict(url=url, host_path=host_path, state=params["state"])
        if params["state"] == "absent":
            return request
        request["client_ids"] = validate_client_ids(params["client_ids"])
        request["thumbprints"] = None
        if params["thumbprints"] is not None:
            if params["compute_thumbprint"]:
                raise OidcParameterError(
                    "compute_thumbprint", "cannot be true when thumbprints is set; give one or the other"
                )
            request["thumbprints"] = validate_thumbprints(params["thumbprints"])
        compute = params["compute_thumbprint"]
        request["compute_thumbprint"] = params["thumbprints"] is None if compute is None else compute
        ca_path = params["ca_path"]
        if ca_path and request["compute_thumbprint"] and not os.path.isfile(ca_path):
            raise OidcParameterError("ca_path", f"{ca_path!r} is not a file")
    except OidcParameterError as e:
        module.fail_json(msg=str(e), option=e.option)
    request["tags"] = params["tags"]
    request["purge_tags"] = params["purge_tags"]
    return request


def normalize_provider(arn, response):
    """Turn a GetOpenIDConnectProvider response into the module's view of a provider."""
    host_path = response.get("Url") or provider_host_path_from_arn(arn)
    create_date = response.get("CreateDate")
    return dict(
        arn=arn,
        url=f"https://{host_path}",
        issuer_host_path=host_path,
        client_ids=list(response.get("ClientIDList") or []),
        thumbprints=[t.lower() for t in response.get("ThumbprintList") or []],
        tags=boto3_tag_list_to_ansible_dict(response.get("Tags") or []),
        create_date=create_date.isoformat() if hasattr(create_date, "isoformat") else create_date,
    )


def find_provider(module, client, host_path):
    """Return the existing provider for host_path, or None."""
    try:
        listed = client.list_open_id_connect_providers(aws_retry=True).get("OpenIDConnectProviderList") or []
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg="Failed to list IAM OIDC providers")
    for entry in listed:
        arn = entry.get("Arn")
        if not same_host_path(provider_host_path_from_arn(arn), host_path):
            continue
        try:
            response = client.get_open_id_connect_provider(OpenIDConnectProviderArn=arn, aws_retry=True)
        except is_boto3_error_code("NoSuchEntity"):
            continue  # deleted between the two calls
        except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
            module.fail_json_aws(e, msg=f"Failed to read IAM OIDC provider {arn}")
        if same_host_path(response.get("Url") or provider_host_path_from_arn(arn), host_path):
            return normalize_provider(arn, response)
    return None


def diff_view(provider):
    """The comparable part of a provider, for diff mode."""
    if not provider:
        return {}
    return dict(
        url=provider["url"],
        client_ids=sorted(provider["client_ids"]),
        thumbprints=sorted(provider["thumbprints"]),
        tags=dict(sorted(provider["tags"].items())),
    )


def predicted_arn(module, host_path):
    """ARN a new provider would get, from the caller's account; None when it cannot be read."""
    try:
        sts = module.client("sts", retry_decorator=AWSRetry.jittered_backoff())
        caller = sts.get_caller_identity(aws_retry=True)
        partition = caller["Arn"].split(":")[1]
        return f"arn:{partition}:iam::{caller['Account']}:oidc-provider/{host_path}"
    except (BotoCoreError, ClientError, KeyError, IndexError):
        return None


def desired_thumbprints(module, request):
    """Return (thumbprints to enforce or None, computed thumbprint or None)."""
    if request["thumbprints"] is not None:
        return request["thumbprints"], None
    if not request["compute_thumbprint"]:
        return None, None
    try:
        computed = compute_issuer_thumbprint(
            request["url"], validate_certs=module.params["validate_certs"], ca_path=module.params["ca_path"]
        )
    except OidcThumbprintError as e:
        module.fail_json(
            msg=f"url: cannot compute the thumbprint of {request['url']}: {e}. Set thumbprints, or "
            "compute_thumbprint=false to let IAM handle it",
            option="url",
        )
    return [computed], computed


def create_provider(module, client, request, thumbprints):
    tags = request["tags"] or {}
    after = dict(
        arn=None,
        url=request["url"],
        issuer_host_path=request["host_path"],
        client_ids=list(request["client_ids"]),
        thumbprints=list(thumbprints or []),
        tags=dict(tags),
        create_date=None,
    )
    if module.check_mode:
        after["arn"] = predicted_arn(module, request["host_path"])
        return after
    kwargs = dict(Url=request["url"], ClientIDList=request["client_ids"])
    if thumbprints:
        kwargs["ThumbprintList"] = thumbprints
    if tags:
        kwargs["Tags"] = ansible_dict_to_boto3_tag_list(tags)
    try:
        response = client.create_open_id_connect_provider(aws_retry=True, **kwargs)
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to create IAM OIDC provider for {request['url']}")
    after["arn"] = response["OpenIDConnectProviderArn"]
    return after


def thumbprint_update(module, existing, thumbprints, computed):
    """Return the thumbprint list to set on an existing provider, or None to leave it alone."""
    if computed is None:
        if thumbprints is not None and sorted(thumbprints) != sorted(existing["thumbprints"]):
            return list(thumbprints)
        return None
    if computed in existing["thumbprints"]:
        return None
    if existing["thumbprints"]:
        outcome = "the thumbprint list would be replaced" if module.check_mode else "replaced the thumbprint list"
        module.warn(
            f"Thumbprint mismatch for the IAM OIDC provider {existing['arn']}: it has "
            f"{', '.join(existing['thumbprints'])} but the issuer now presents a chain topped by a certificate with "
            f"thumbprint {computed}; {outcome}. IAM ignores thumbprints for issuers it can verify with a trusted "
            "root CA, so the mismatch only matters for other issuers."
        )
    return [computed]


def plan_update(module, request, existing, thumbprints, computed):
    """Work out the calls that bring an existing provider in line; return (plan, provider afterwards)."""
    plan = dict(
        add=[c for c in request["client_ids"] if c not in existing["client_ids"]],
        remove=[c for c in existing["client_ids"] if c not in request["client_ids"]],
        thumbprints=thumbprint_update(module, existing, thumbprints, computed),
        tag=dict(),
        untag=[],
    )
    if request["tags"] is not None:
        plan["tag"], plan["untag"] = compare_aws_tags(existing["tags"], request["tags"], request["purge_tags"])

    after = dict(existing)
    after["client_ids"] = [c for c in existing["client_ids"] if c not in plan["remove"]] + plan["add"]
    if plan["thumbprints"] is not None:
        after["thumbprints"] = plan["thumbprints"]
    after["tags"] = {k: v for k, v in existing["tags"].items() if k not in plan["untag"]}
    after["tags"].update(plan["tag"])
    return plan, after


def apply_update(module, client, arn, plan):
    try:
        for client_id in plan["add"]:
            client.add_client_id_to_open_id_connect_provider(
                OpenIDConnectProviderArn=arn, ClientID=client_id, aws_retry=True
            )
        for client_id in plan["remove"]:
            client.remove_client_id_from_open_id_connect_provider(
                OpenIDConnectProviderArn=arn, ClientID=client_id, aws_retry=True
            )
        if plan["thumbprints"] is not None:
            client.update_open_id_connect_provider_thumbprint(
                OpenIDConnectProviderArn=arn, ThumbprintList=plan["thumbprints"], aws_retry=True
            )
        if plan["untag"]:
            client.untag_open_id_connect_provider(OpenIDConnectProviderArn=arn, TagKeys=plan["untag"], aws_retry=True)
        if plan["tag"]:
            client.tag_open_id_connect_provider(
                OpenIDConnectProviderArn=arn, Tags=ansible_dict_to_boto3_tag_list(plan["tag"]), aws_retry=True
            )
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Failed to update IAM OIDC provider {arn}")


def ensure_present(module, client, request, existing):
    thumbprints, computed = desired_thumbprints(module, request)
    if existing is None:
        changed, after = True, create_provider(module, client, request, thumbprints)
    else:
        plan, after = plan_update(module, request, existing, thumbprints, computed)
        changed = any(value not in (None, [], {}) for value in plan.values())
        if changed and not module.check_mode:
            apply_update(module, client, existing["arn"], plan)
    result = dict(changed=changed, **after)
    if computed is not None:
        result["computed_thumbprint"] = computed
    result["diff"] = dict(before=diff_view(existing), after=diff_view(after))
    return result


def ensure_absent(module, client, request, existing):
    result = dict(
        changed=existing is not None,
        arn=existing["arn"] if existing else None,
        url=request["url"],
        issuer_host_path=request["host_path"],
        diff=dict(before=diff_view(existing), after={}),
    )
    if existing is None or module.check_mode:
        return result
    try:
        client.delete_open_id_connect_provider(OpenIDConnectProviderArn=existing["arn"], aws_retry=True)
    except is_boto3_error_code("NoSuchEntity"):
        result["changed"] = False
    except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Failed to delete IAM OIDC provider {existing['arn']}")
    return result


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    request = validated_request(module)
    client = module.client("iam", retry_decorator=AWSRetry.jittered_backoff())
    existing = find_provider(module, client, request["host_path"])
    if request["state"] == "absent":
        module.exit_json(**ensure_absent(module, client, request, existing))
    module.exit_json(**ensure_present(module, client, request, existing))


if __name__ == "__main__":
    main()
