#!/usr/bin/env python3
# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read back the rules of security groups with DescribeSecurityGroupRules; print JSON.

  sg_rules.py GROUP_ID [GROUP_ID ...]

Prints {group_id: [rule, ...]}, each rule as
{direction, protocol, from_port, to_port, peer, description}, where peer is the
referenced group id, the CIDR or the prefix list, sorted. A group that does not
exist maps to null. Credentials, region and endpoint come from the environment.
"""

import json
import sys

import boto3
from botocore.exceptions import ClientError


def rules(ec2, group_id):
    try:
        pages = ec2.get_paginator("describe_security_group_rules").paginate(
            Filters=[{"Name": "group-id", "Values": [group_id]}]
        )
        found = [rule for page in pages for rule in page["SecurityGroupRules"]]
    except ClientError as error:
        if error.response["Error"]["Code"].startswith("InvalidGroup"):
            return None
        raise
    if not found:
        # a group always has rules or not; tell "no rules" from "no group"
        try:
            ec2.describe_security_groups(GroupIds=[group_id])
        except ClientError as error:
            if error.response["Error"]["Code"].startswith("InvalidGroup"):
                return None
            raise
    out = []
    for rule in found:
        peer = (
            (rule.get("ReferencedGroupInfo") or {}).get("GroupId")
            or rule.get("CidrIpv4")
            or rule.get("CidrIpv6")
            or rule.get("PrefixListId")
        )
        out.append(
            {
                "direction": "egress" if rule["IsEgress"] else "ingress",
                "protocol": rule["IpProtocol"],
                "from_port": rule.get("FromPort"),
                "to_port": rule.get("ToPort"),
                "peer": peer,
                "description": rule.get("Description", ""),
            }
        )
    return sorted(out, key=lambda r: (r["direction"], r["protocol"], r["from_port"] or 0, r["peer"] or ""))


def main(group_ids):
    ec2 = boto3.client("ec2")
    print(json.dumps({group_id: rules(ec2, group_id) for group_id in group_ids}))


if __name__ == "__main__":
    main(sys.argv[1:])
