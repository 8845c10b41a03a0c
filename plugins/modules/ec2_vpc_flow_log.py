#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_vpc_flow_log
version_added: 0.1.0
short_description: Create or delete an EC2 flow log for a VPC, a subnet or a network interface
description:
  - Makes sure a flow log captures the traffic of one VPC, subnet or network interface and delivers it to a
    CloudWatch Logs log group or an S3 bucket, or that no such flow log exists.
  - A flow log is identified by its resource (O(resource_id)), its traffic type (O(traffic_type)) and its
    destination (O(log_group_name) for CloudWatch Logs, O(log_destination) for S3). With O(state=present), an
    existing flow log with the same identity is kept, so running the module again changes nothing.
  - The other settings of a flow log (O(deliver_logs_permission_arn), O(max_aggregation_interval)) cannot be
    changed in place. When the existing flow log differs in one of them, the module deletes it and creates a new
    one with the requested settings, and returns RV(replaced=true). Flow records of the few seconds in between
    may be lost.
  - Tags can be changed in place.
  - All options are checked before any AWS API call is made.
author:
  - layered.eks_rds maintainers (@layered)
options:
  resource_id:
    description:
      - ID of the resource whose traffic is captured, matching O(resource_type)
        (C(vpc-...), C(subnet-...) or C(eni-...)).
    type: str
    required: true
  resource_type:
    description: Type of O(resource_id).
    type: str
    choices: [ VPC, Subnet, NetworkInterface ]
    default: VPC
  traffic_type:
    description:
      - Traffic to capture, C(ALL), only C(ACCEPT)ed or only C(REJECT)ed traffic.
      - With O(state=present) the default is C(ALL).
      - With O(state=absent), flow logs of any traffic type are deleted when it is not set.
    type: str
    choices: [ ALL, ACCEPT, REJECT ]
  log_destination_type:
    description: Where the flow log delivers its records.
    type: str
    choices: [ cloud-watch-logs, s3 ]
    default: cloud-watch-logs
  log_group_name:
    description:
      - Name of the CloudWatch Logs log group that receives the records.
      - Required with O(log_destination_type=cloud-watch-logs) and O(state=present); not allowed with C(s3).
      - With O(state=absent), only flow logs to this log group are deleted; when it is not set, flow logs of the
        resource to any log group are deleted.
    type: str
  deliver_logs_permission_arn:
    description:
      - ARN of the IAM role the flow logs service assumes to write to the log group. Its trust policy must allow
        C(vpc-flow-logs.amazonaws.com) and its permissions C(logs:CreateLogStream) and C(logs:PutLogEvents) on
        the log group.
      - Required with O(log_destination_type=cloud-watch-logs) and O(state=present); not used with C(s3) (the bucket
        policy grants the access).
      - Immutable; a different value replaces the flow log.
    type: str
  log_destination:
    description:
      - ARN of the S3 bucket, optionally followed by a folder, that receives the records, for example
        C(arn:aws:s3:::my-bucket/flow-logs/).
      - Required with O(log_destination_type=s3) and O(state=present); not allowed with C(cloud-watch-logs)
        (use O(log_group_name)).
      - With O(state=absent), only flow logs to this destination are deleted; when it is not set, flow logs of the
        resource to any bucket are deleted.
    type: str
  max_aggregation_interval:
    description:
      - Longest time, in seconds, during which a flow is captured before a record is written, 60 or 600.
      - Immutable; a different value replaces the flow log.
    type: int
    choices: [ 60, 600 ]
    default: 600
  state:
    description: Whether the flow log should exist.
    type: str
    choices: [ present, absent ]
    default: present
notes:
  - The records use the default flow log format.
  - The destination is not checked by this module. When a CloudWatch Logs log group does not exist or the role
    cannot write to it, AWS accepts the flow log and reports the problem in RV(flow_log.deliver_logs_status)
    and RV(flow_log.deliver_logs_error_message); create the log group and the role first.
  - Supports check mode, in which RV(flow_log) is the flow log that would exist (with no RV(flow_log_id) when it
    would be created) and nothing is changed.
  - Supports diff mode; C(before) and C(after) are the flow log before and after the task (C({}) when there is none).
  - "IAM permissions: C(ec2:DescribeFlowLogs), C(ec2:CreateFlowLogs), C(ec2:DeleteFlowLogs), C(ec2:CreateTags),
    C(ec2:DeleteTags), and C(iam:PassRole) on O(deliver_logs_permission_arn)."
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.tags
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Send all the traffic of a VPC to CloudWatch Logs
  layered.eks_rds.ec2_vpc_flow_log:
    resource_id: vpc-0123456789abcdef0
    traffic_type: ALL
    log_group_name: /aws/vpc-flow-logs/app-prod
    deliver_logs_permission_arn: arn:aws:iam::123456789012:role/app-prod-vpc-flow-logs
    max_aggregation_interval: 60
    tags:
      Project: app
      Environment: prod
  register: app_flow_log

- name: Send the rejected traffic of a subnet to an S3 bucket
  layered.eks_rds.ec2_vpc_flow_log:
    resource_id: subnet-0123456789abcdef0
    resource_type: Subnet
    traffic_type: REJECT
    log_destination_type: s3
    log_destination: arn:aws:s3:::app-prod-flow-logs/rejected/

- name: Stop every flow log of the VPC to that log group
  layered.eks_rds.ec2_vpc_flow_log:
    resource_id: vpc-0123456789abcdef0
    log_group_name: /aws/vpc-flow-logs/app-prod
    state: absent
"""

RETURN = r"""
flow_log_id:
  description:
    - ID of the flow log.
    - C(null) when there is none (after O(state=absent), or in check mode when it would be created).
  returned: always
  type: str
  sample: fl-0123456789abcdef0
flow_log:
  description: The flow log after the task; C({}) when there is none.
  returned: always
  type: dict
  contains:
    flow_log_id:
      description: ID of the flow log.
      type: str
      sample: fl-0123456789abcdef0
    resource_id:
      description: ID of the captured resource.
      type: str
      sample: vpc-0123456789abcdef0
    traffic_type:
      description: Captured traffic.
      type: str
      sample: ALL
    log_destination_type:
      description: C(cloud-watch-logs) or C(s3).
      type: str
      sample: cloud-watch-logs
    log_group_name:
      description: Log group receiving the records (CloudWatch Logs).
      type: str
      sample: /aws/vpc-flow-logs/app-prod
    log_destination:
      description: ARN of the destination.
      type: str
      sample: arn:aws:logs:eu-west-1:123456789012:log-group:/aws/vpc-flow-logs/app-prod
    deliver_logs_permission_arn:
      description: Role used to deliver the records (CloudWatch Logs).
      type: str
      sample: arn:aws:iam::123456789012:role/app-prod-vpc-flow-logs
    max_aggregation_interval:
      description: Aggregation interval in seconds.
      type: int
      sample: 600
    log_format:
      description: Format of the records.
      type: str
      sample: "${version} ${account-id} ${interface-id} ${srcaddr} ${dstaddr} ${srcport} ${dstport} ${protocol}
        ${packets} ${bytes} ${start} ${end} ${action} ${log-status}"
    flow_log_status:
      description: C(ACTIVE) once created.
      type: str
      sample: ACTIVE
    deliver_logs_status:
      description: C(SUCCESS), or C(FAILED) when the records cannot be delivered.
      type: str
      sample: SUCCESS
    deliver_logs_error_message:
      description: Why the records cannot be delivered, when they cannot.
      type: str
      sample: Access error
    creation_time:
      description: When the flow log was created.
      type: str
      sample: "2026-01-01T12:00:00+00:00"
    tags:
      description: Tags of the flow log.
      type: dict
      sample: {Project: app}
replaced:
  description: Whether an existing flow log was deleted and created again because an immutable setting differed.
  returned: always
  type: bool
  sample: false
deleted_flow_log_ids:
  description: IDs of the flow logs deleted (or that would be deleted in check mode), replacements included.
  returned: always
  type: list
  elements: str
  sample: [fl-0123456789abcdef0]
"""

import contextlib
import re

with contextlib.suppress(ImportError):
    import botocore  # a missing botocore is reported by AnsibleAWSModule

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.amazon.aws.plugins.module_utils.tagging import (
    ansible_dict_to_boto3_tag_list,
    boto3_tag_list_to_ansible_dict,
    boto3_tag_specifications,
    compare_aws_tags,
)

RESOURCE_PREFIXES = {"VPC": "vpc-", "Subnet": "subnet-", "NetworkInterface": "eni-"}
RESOURCE_ID = re.compile(r"^(vpc|subnet|eni)-[0-9a-f]{8,17}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
S3_ARN = re.compile(r"^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/.*)?$")
LOG_GROUP_NAME = re.compile(r"^[\w.\-/#]{1,512}$")
DEFAULT_TRAFFIC_TYPE = "ALL"
# Settings that CreateFlowLogs sets once and no API changes.
IMMUTABLE = ("DeliverLogsPermissionArn", "MaxAggregationInterval")

ARGUMENT_SPEC = dict(
    resource_id=dict(type="str", required=True),
    resource_type=dict(type="str", default="VPC", choices=list(RESOURCE_PREFIXES)),
    traffic_type=dict(type="str", choices=["ALL", "ACCEPT", "REJECT"]),
    log_destination_type=dict(type="str", default="cloud-watch-logs", choices=["cloud-watch-logs", "s3"]),
    log_group_name=dict(type="str"),
    deliver_logs_permission_arn=dict(type="str"),
    log_destination=dict(type="str"),
    max_aggregation_interval=dict(type="int", default=600, choices=[60, 600]),
    tags=dict(type="dict", aliases=["resource_tags"]),
    purge_tags=dict(type="bool", default=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
)


class FlowLogParameterError(ValueError):
    def __init__(self, option, message):
        super().__init__(f"{option}: {message}")
        self.option = option


def _validate_resource(params):
    resource_id = params["resource_id"]
    resource_type = params["resource_type"]
    prefix = RESOURCE_PREFIXES[resource_type]
    if not RESOURCE_ID.match(resource_id or ""):
        raise FlowLogParameterError("resource_id", f"{resource_id!r} is not a VPC, subnet or network interface ID")
    if not resource_id.startswith(prefix):
        raise FlowLogParameterError(
            "resource_id", f"{resource_id!r} does not match resource_type={resource_type} (expected {prefix}...)"
        )


def _validate_cloudwatch_destination(params, present):
    group = params["log_group_name"]
    if params["log_destination"] is not None:
        raise FlowLogParameterError(
            "log_destination", "is only used with log_destination_type=s3; use log_group_name for CloudWatch Logs"
        )
    if group is None and present:
        raise FlowLogParameterError("log_group_name", "is required with log_destination_type=cloud-watch-logs")
    if group is not None and not LOG_GROUP_NAME.match(group):
        raise FlowLogParameterError("log_group_name", f"{group!r} is not a valid log group name")
    role_arn = params["deliver_logs_permission_arn"]
    if role_arn is None and present:
        raise FlowLogParameterError(
            "deliver_logs_permission_arn", "is required with log_destination_type=cloud-watch-logs"
        )
    if role_arn is not None and not ROLE_ARN.match(role_arn):
        raise FlowLogParameterError(
            "deliver_logs_permission_arn",
            f"{role_arn!r} is not an IAM role ARN such as arn:aws:iam::123456789012:role/flow-logs",
        )


def _validate_s3_destination(params, present):
    destination = params["log_destination"]
    if params["log_group_name"] is not None:
        raise FlowLogParameterError(
            "log_group_name", "is only used with log_destination_type=cloud-watch-logs; use log_destination for S3"
        )
    if destination is None and present:
        raise FlowLogParameterError("log_destination", "is required with log_destination_type=s3")
    if destination is not None and not S3_ARN.match(destination):
        raise FlowLogParameterError(
            "log_destination", f"{destination!r} is not an S3 bucket ARN such as arn:aws:s3:::bucket/prefix/"
        )
    if params["deliver_logs_permission_arn"] is not None:
        raise FlowLogParameterError(
            "deliver_logs_permission_arn", "is only used with log_destination_type=cloud-watch-logs"
        )


def validate_params(params):
    """Check the options that AnsibleModule cannot; raise FlowLogParameterError naming the option."""
    _validate_resource(params)
    present = params["state"] == "present"
    if params["log_destination_type"] == "cloud-watch-logs":
        _validate_cloudwatch_destination(params, present)
    else:
        _validate_s3_destination(params, present)
    for key, value in (params["tags"] or {}).items():
        if not isinstance(value, str):
            raise FlowLogParameterError("tags", f"the value of {key!r} must be a string, got {value!r}")


def desired_flow_log(params):
    """The flow log the options describe, as DescribeFlowLogs would return it."""
    desired = dict(
        ResourceId=params["resource_id"],
        TrafficType=params["traffic_type"] or DEFAULT_TRAFFIC_TYPE,
        LogDestinationType=params["log_destination_type"],
        MaxAggregationInterval=params["max_aggregation_interval"],
    )
    if params["log_destination_type"] == "cloud-watch-logs":
        desired["LogGroupName"] = params["log_group_name"]
        desired["DeliverLogsPermissionArn"] = params["deliver_logs_permission_arn"]
    else:
        desired["LogDestination"] = params["log_destination"]
    return desired


def _same_s3_destination(a, b):
    return (a or "").rstrip("/") == (b or "").rstrip("/")


def matches(flow_log, params, traffic_type):
    """Whether an existing flow log has the identity the options select (resource, traffic type, destination)."""
    if flow_log.get("ResourceId") != params["resource_id"]:
        return False
    if traffic_type is not None and flow_log.get("TrafficType") != traffic_type:
        return False
    destination_type = flow_log.get("LogDestinationType", "cloud-watch-logs")
    if destination_type != params["log_destination_type"]:
        return False
    if destination_type == "cloud-watch-logs":
        group = params["log_group_name"]
        return group is None or flow_log.get("LogGroupName") == group
    destination = params["log_destination"]
    return destination is None or _same_s3_destination(flow_log.get("LogDestination"), destination)


def immutable_differences(existing, desired):
    return [key for key in IMMUTABLE if key in desired and existing.get(key) != desired[key]]


@AWSRetry.jittered_backoff()
def _describe_flow_log_pages(client, **kwargs):
    return client.get_paginator("describe_flow_logs").paginate(**kwargs).build_full_result()


def describe_flow_logs(module, client, resource_id):
    try:
        pages = _describe_flow_log_pages(client, Filters=[{"Name": "resource-id", "Values": [resource_id]}])
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to describe the flow logs of {resource_id}")
    return pages.get("FlowLogs", [])


def describe_flow_log(module, client, flow_log_id):
    try:
        response = client.describe_flow_logs(FlowLogIds=[flow_log_id], aws_retry=True)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to describe flow log {flow_log_id}")
    flow_logs = response.get("FlowLogs") or []
    return flow_logs[0] if flow_logs else None


def create_flow_log(module, client, desired, tags):
    request = dict(
        ResourceIds=[desired["ResourceId"]],
        ResourceType=module.params["resource_type"],
        TrafficType=desired["TrafficType"],
        LogDestinationType=desired["LogDestinationType"],
        MaxAggregationInterval=desired["MaxAggregationInterval"],
    )
    for key in ("LogGroupName", "DeliverLogsPermissionArn", "LogDestination"):
        if desired.get(key) is not None:
            request[key] = desired[key]
    if tags:
        request["TagSpecifications"] = boto3_tag_specifications(tags, types="vpc-flow-log")
    try:
        response = client.create_flow_logs(aws_retry=True, **request)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to create a flow log for {desired['ResourceId']}")
    for failure in response.get("Unsuccessful") or []:
        error = failure.get("Error") or {}
        module.fail_json(
            msg=f"Failed to create a flow log for {failure.get('ResourceId', desired['ResourceId'])}: "
            f"{error.get('Message', 'unknown error')} ({error.get('Code', 'no code')})"
        )
    flow_log_ids = response.get("FlowLogIds") or []
    if not flow_log_ids:
        module.fail_json(msg=f"Failed to create a flow log for {desired['ResourceId']}: AWS returned no flow log ID")
    created = describe_flow_log(module, client, flow_log_ids[0])
    if created is None:
        # Not listed yet (eventual consistency): report what was requested.
        created = dict(desired, FlowLogId=flow_log_ids[0], Tags=ansible_dict_to_boto3_tag_list(tags or {}))
    return created


def delete_flow_logs(module, client, flow_log_ids):
    if not flow_log_ids or module.check_mode:
        return
    try:
        response = client.delete_flow_logs(FlowLogIds=flow_log_ids, aws_retry=True)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to delete flow logs {', '.join(flow_log_ids)}")
    failures = [
        f"{failure.get('ResourceId')}: {(failure.get('Error') or {}).get('Message', 'unknown error')}"
        for failure in response.get("Unsuccessful") or []
    ]
    if failures:
        module.fail_json(msg=f"Failed to delete flow logs: {'; '.join(failures)}")


def ensure_tags(module, client, flow_log, tags, purge_tags):
    """Update the tags of an existing flow log; return the resulting tags and whether they changed."""
    current = boto3_tag_list_to_ansible_dict(flow_log.get("Tags") or [])
    if tags is None:
        return current, False
    to_set, to_unset = compare_aws_tags(current, tags, purge_tags)
    if not to_set and not to_unset:
        return current, False
    flow_log_id = flow_log["FlowLogId"]
    if not module.check_mode:
        try:
            if to_unset:
                client.delete_tags(Resources=[flow_log_id], Tags=[{"Key": key} for key in to_unset], aws_retry=True)
            if to_set:
                client.create_tags(Resources=[flow_log_id], Tags=ansible_dict_to_boto3_tag_list(to_set), aws_retry=True)
        except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
            module.fail_json_aws(e, msg=f"Failed to update the tags of flow log {flow_log_id}")
    result = {key: value for key, value in current.items() if key not in to_unset}
    result.update(to_set)
    return result, True


def to_result(flow_log, tags=None):
    if not flow_log:
        return {}
    result = camel_dict_to_snake_dict({key: value for key, value in flow_log.items() if key != "Tags"})
    result["tags"] = tags if tags is not None else boto3_tag_list_to_ansible_dict(flow_log.get("Tags") or [])
    creation_time = result.get("creation_time")
    if creation_time is not None and hasattr(creation_time, "isoformat"):
        result["creation_time"] = creation_time.isoformat()
    return result


def ensure_present(module, client, existing):
    params = module.params
    desired = desired_flow_log(params)
    current = existing[0] if existing else None
    before = to_result(current)
    replaced = False
    deleted = []

    if current is not None and immutable_differences(current, desired):
        replaced = True
        deleted = [current["FlowLogId"]]
        delete_flow_logs(module, client, deleted)
        current = None

    if current is None:
        tags = params["tags"] or {}
        if module.check_mode:
            after = to_result(dict(desired, FlowLogId=None), tags=dict(tags))
        else:
            after = to_result(create_flow_log(module, client, desired, tags))
        changed = True
    else:
        tags, changed = ensure_tags(module, client, current, params["tags"], params["purge_tags"])
        if changed and not module.check_mode:
            current = describe_flow_log(module, client, current["FlowLogId"]) or current
            tags = None
        after = to_result(current, tags=tags)

    return dict(
        changed=changed,
        flow_log=after,
        flow_log_id=after.get("flow_log_id"),
        replaced=replaced,
        deleted_flow_log_ids=deleted,
        diff=dict(before=before, after=after),
    )


def ensure_absent(module, client, existing):
    deleted = [flow_log["FlowLogId"] for flow_log in existing]
    delete_flow_logs(module, client, deleted)
    before = to_result(existing[0]) if len(existing) == 1 else {"flow_logs": [to_result(fl) for fl in existing]}
    return dict(
        changed=bool(deleted),
        flow_log={},
        flow_log_id=None,
        replaced=False,
        deleted_flow_log_ids=deleted,
        diff=dict(before=before if existing else {}, after={}),
    )


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    try:
        validate_params(params)
    except FlowLogParameterError as e:
        module.fail_json(msg=str(e), option=e.option)

    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    present = params["state"] == "present"
    traffic_type = (params["traffic_type"] or DEFAULT_TRAFFIC_TYPE) if present else params["traffic_type"]
    existing = [
        flow_log
        for flow_log in describe_flow_logs(module, client, params["resource_id"])
        if matches(flow_log, params, traffic_type)
    ]
    ensure = ensure_present if present else ensure_absent
    module.exit_json(**ensure(module, client, existing))


if __name__ == "__main__":
    main()
