# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Print the EC2 flow logs matching the given filters as JSON (no collection has a flow log info module).

    describe_flow_logs.py [--resource-id vpc-...] [--log-group-name NAME] [--tag KEY=VALUE ...]

Credentials, region and endpoint come from the standard AWS environment variables.
"""

import argparse
import json

import boto3


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resource-id", action="append", default=[])
    parser.add_argument("--log-group-name", action="append", default=[])
    parser.add_argument("--tag", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    filters = []
    if args.resource_id:
        filters.append({"Name": "resource-id", "Values": args.resource_id})
    if args.log_group_name:
        filters.append({"Name": "log-group-name", "Values": args.log_group_name})
    for tag in args.tag:
        key, _, value = tag.partition("=")
        filters.append({"Name": f"tag:{key}", "Values": [value]})

    pages = boto3.client("ec2").get_paginator("describe_flow_logs").paginate(Filters=filters)
    flow_logs = [flow_log for page in pages for flow_log in page.get("FlowLogs", [])]
    for flow_log in flow_logs:
        flow_log["Tags"] = {tag["Key"]: tag["Value"] for tag in flow_log.get("Tags", [])}
    print(json.dumps(flow_logs, default=str, indent=2, sort_keys=True))


if __name__ == "__main__":
    main()
