"""Read back from RDS what no amazon.aws module reads.

    rds_readback.py parameters GROUP     -> {"found": bool, "parameters": {name: value}}
    rds_readback.py tagged KEY VALUE      -> {"instances": [...], "subnet_groups": [...], "parameter_groups": [...]}

"parameters" lists the values set in a DB parameter group (DescribeDBParameters, source "user").
"tagged" lists the DB instances, DB subnet groups and DB parameter groups carrying the tag KEY=VALUE.
Credentials, region and endpoint come from the standard AWS environment variables.
"""

import json
import sys

import boto3


def parameters(rds, group):
    try:
        pages = rds.get_paginator("describe_db_parameters").paginate(DBParameterGroupName=group)
        listed = [p for page in pages for p in page["Parameters"]]
    except rds.exceptions.DBParameterGroupNotFoundFault:
        return {"found": False, "parameters": {}}
    return {
        "found": True,
        "parameters": {p["ParameterName"]: p.get("ParameterValue") for p in listed if "ParameterValue" in p},
    }


def _tagged(rds, arns, key, value):
    found = []
    for name, arn in arns:
        tags = rds.list_tags_for_resource(ResourceName=arn)["TagList"]
        if {"Key": key, "Value": value} in tags:
            found.append(name)
    return sorted(found)


def tagged(rds, key, value):
    instances = [(db["DBInstanceIdentifier"], db["DBInstanceArn"]) for db in rds.describe_db_instances()["DBInstances"]]
    subnet_groups = [
        (group["DBSubnetGroupName"], group["DBSubnetGroupArn"])
        for group in rds.describe_db_subnet_groups()["DBSubnetGroups"]
    ]
    parameter_groups = [
        (group["DBParameterGroupName"], group["DBParameterGroupArn"])
        for group in rds.describe_db_parameter_groups()["DBParameterGroups"]
    ]
    return {
        "instances": _tagged(rds, instances, key, value),
        "subnet_groups": _tagged(rds, subnet_groups, key, value),
        "parameter_groups": _tagged(rds, parameter_groups, key, value),
    }


def main(argv):
    rds = boto3.client("rds")
    if argv[0] == "parameters":
        return parameters(rds, argv[1])
    if argv[0] == "tagged":
        return tagged(rds, argv[1], argv[2])
    raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1:])))
