#!/usr/bin/env python3
# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read back, with boto3 describe/list calls, what no Ansible module reads; print JSON.

  read_aws.py associations CLUSTER     Pod Identity associations of CLUSTER (described), [] if no cluster
  read_aws.py addon CLUSTER NAME       the add-on as DescribeAddon returns it, null if none
  read_aws.py cluster NAME             the cluster as DescribeCluster returns it, null if none
  read_aws.py oidc URL                 the IAM OIDC providers of URL (GetOpenIDConnectProvider + ARN)
  read_aws.py tagged KEY VALUE         names/ARNs of IAM roles, customer managed policies and OIDC
                                       providers tagged KEY=VALUE

Credentials, region and endpoint come from the environment (AWS_* variables).
"""

import json
import sys

import boto3
from botocore.exceptions import ClientError


def _missing(error):
    return error.response["Error"]["Code"] in ("ResourceNotFoundException", "NoSuchEntity")


def associations(cluster):
    eks = boto3.client("eks")
    try:
        pages = eks.get_paginator("list_pod_identity_associations").paginate(clusterName=cluster)
        summaries = [summary for page in pages for summary in page["associations"]]
    except ClientError as e:
        if _missing(e):
            return []
        raise
    return [
        eks.describe_pod_identity_association(clusterName=cluster, associationId=summary["associationId"])[
            "association"
        ]
        for summary in summaries
    ]


def addon(cluster, name):
    try:
        return boto3.client("eks").describe_addon(clusterName=cluster, addonName=name)["addon"]
    except ClientError as e:
        if _missing(e):
            return None
        raise


def cluster(name):
    try:
        return boto3.client("eks").describe_cluster(name=name)["cluster"]
    except ClientError as e:
        if _missing(e):
            return None
        raise


def _host_path(url):
    return url.split("://", 1)[-1].rstrip("/").lower()


def oidc(url):
    iam = boto3.client("iam")
    found = []
    for provider in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        arn = provider["Arn"]
        described = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
        if _host_path(described["Url"]) == _host_path(url):
            described.pop("ResponseMetadata", None)
            found.append(dict(described, Arn=arn))
    return found


def _tagged(tags, key, value):
    return any(tag["Key"] == key and tag["Value"] == value for tag in tags or [])


def tagged(key, value):
    iam = boto3.client("iam")
    roles = [
        role["RoleName"]
        for page in iam.get_paginator("list_roles").paginate()
        for role in page["Roles"]
        if _tagged(iam.list_role_tags(RoleName=role["RoleName"])["Tags"], key, value)
    ]
    policies = [
        policy["Arn"]
        for page in iam.get_paginator("list_policies").paginate(Scope="Local")
        for policy in page["Policies"]
        if _tagged(iam.list_policy_tags(PolicyArn=policy["Arn"])["Tags"], key, value)
    ]
    providers = [
        provider["Arn"]
        for provider in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]
        if _tagged(iam.get_open_id_connect_provider(OpenIDConnectProviderArn=provider["Arn"]).get("Tags"), key, value)
    ]
    return {"roles": roles, "policies": policies, "oidc_providers": providers}


def main(argv):
    commands = {"associations": associations, "addon": addon, "cluster": cluster, "oidc": oidc, "tagged": tagged}
    if len(argv) < 2 or argv[1] not in commands:
        sys.exit(__doc__)
    print(json.dumps(commands[argv[1]](*argv[2:]), default=str))


if __name__ == "__main__":
    main(sys.argv)
