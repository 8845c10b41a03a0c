"""Read back from EKS (and KMS tags) what no amazon.aws or community.aws module reads.

    eks_readback.py cluster NAME              -> {"found": bool, "cluster": {...}}
    eks_readback.py nodegroup CLUSTER NAME    -> {"found": bool, "nodegroup": {...}}
    eks_readback.py addon CLUSTER NAME        -> {"found": bool, "addon": {...}, "configuration": {...}}
    eks_readback.py tagged KEY VALUE          -> {"clusters": [...], "kms_keys": [...]}

"tagged" lists the EKS clusters and the KMS keys not pending deletion that carry the tag KEY=VALUE.
Credentials, region and endpoint come from the standard AWS environment variables.
"""

import json
import sys

import boto3


def _describe(call, key, **kwargs):
    try:
        return {"found": True, key: call(**kwargs)[key]}
    except boto3.client("eks").exceptions.ResourceNotFoundException:
        return {"found": False, key: {}}


def cluster(eks, name):
    return _describe(eks.describe_cluster, "cluster", name=name)


def nodegroup(eks, cluster_name, name):
    return _describe(eks.describe_nodegroup, "nodegroup", clusterName=cluster_name, nodegroupName=name)


def addon(eks, cluster_name, name):
    result = _describe(eks.describe_addon, "addon", clusterName=cluster_name, addonName=name)
    text = result["addon"].get("configurationValues") or "{}"
    result["configuration"] = json.loads(text)
    return result


def tagged(eks, key, value):
    clusters = [
        name
        for name in eks.list_clusters()["clusters"]
        if eks.describe_cluster(name=name)["cluster"].get("tags", {}).get(key) == value
    ]
    kms = boto3.client("kms")
    keys = []
    for page in kms.get_paginator("list_keys").paginate():
        for listed in page["Keys"]:
            if kms.describe_key(KeyId=listed["KeyId"])["KeyMetadata"]["KeyState"] == "PendingDeletion":
                continue
            tags = kms.list_resource_tags(KeyId=listed["KeyId"])["Tags"]
            if {"TagKey": key, "TagValue": value} in tags:
                keys.append(listed["KeyArn"])
    return {"clusters": sorted(clusters), "kms_keys": sorted(keys)}


def main(argv):
    eks = boto3.client("eks")
    commands = {
        "cluster": cluster,
        "nodegroup": nodegroup,
        "addon": addon,
        "tagged": tagged,
    }
    return commands[argv[0]](eks, *argv[1:])


if __name__ == "__main__":
    json.dump(main(sys.argv[1:]), sys.stdout, default=str)
