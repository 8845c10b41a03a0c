# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from unittest import mock

import boto3
import pytest
from _harness import clean_aws_env, module_outcomes, patch_exits, record_retrying_clients
from moto import mock_aws

from ansible_collections.layered.eks_rds.plugins.modules import ec2_vpc_flow_log

REGION = "eu-west-1"
ACCOUNT = "123456789012"
GROUP = "/aws/vpc-flow-logs/app"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/app-vpc-flow-logs"
OTHER_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/other-vpc-flow-logs"
BUCKET = "app-flow-logs"


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    """Fake static credentials and a fixed region, nothing else from the machine."""
    clean_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)


@pytest.fixture(autouse=True)
def module_exits(monkeypatch):
    patch_exits(monkeypatch)


@pytest.fixture
def aws():
    with mock_aws():
        yield boto3.client("ec2", region_name=REGION)


@pytest.fixture
def vpc_id(aws):
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName=GROUP)
    return aws.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]


succeed, fail = module_outcomes(ec2_vpc_flow_log.main, diff=False)


def cwl_args(resource_id, **overrides):
    args = dict(
        resource_id=resource_id,
        log_group_name=GROUP,
        deliver_logs_permission_arn=ROLE_ARN,
        tags={"Project": "app", "Name": "app-flow-log"},
    )
    args.update(overrides)
    return args


def flow_logs(ec2, resource_id):
    return ec2.describe_flow_logs(Filters=[{"Name": "resource-id", "Values": [resource_id]}])["FlowLogs"]


def tags_of(flow_log):
    return {tag["Key"]: tag["Value"] for tag in flow_log.get("Tags", [])}


# --------------------------------------------------------------------------- present, CloudWatch Logs


def test_creates_a_flow_log_to_cloudwatch_logs(aws, vpc_id):
    result = succeed(cwl_args(vpc_id, max_aggregation_interval=60))

    assert result["changed"] is True
    assert result["replaced"] is False
    assert result["deleted_flow_log_ids"] == []
    [created] = flow_logs(aws, vpc_id)
    assert result["flow_log_id"] == created["FlowLogId"]
    assert created["TrafficType"] == "ALL"
    assert created["LogDestinationType"] == "cloud-watch-logs"
    assert created["LogGroupName"] == GROUP
    assert created["DeliverLogsPermissionArn"] == ROLE_ARN
    assert created["MaxAggregationInterval"] == 60
    assert tags_of(created) == {"Project": "app", "Name": "app-flow-log"}

    flow_log = result["flow_log"]
    assert flow_log["flow_log_id"] == created["FlowLogId"]
    assert flow_log["resource_id"] == vpc_id
    assert flow_log["traffic_type"] == "ALL"
    assert flow_log["log_group_name"] == GROUP
    assert flow_log["deliver_logs_permission_arn"] == ROLE_ARN
    assert flow_log["max_aggregation_interval"] == 60
    assert flow_log["tags"] == {"Project": "app", "Name": "app-flow-log"}
    assert isinstance(flow_log["creation_time"], str)
    assert result["diff"] == {"before": {}, "after": flow_log}


def test_second_run_changes_nothing(aws, vpc_id):
    first = succeed(cwl_args(vpc_id))
    second = succeed(cwl_args(vpc_id))

    assert second["changed"] is False
    assert second["flow_log_id"] == first["flow_log_id"]
    assert second["diff"]["before"] == second["diff"]["after"]
    assert len(flow_logs(aws, vpc_id)) == 1


def test_check_mode_predicts_creation_without_creating(aws, vpc_id):
    result = succeed(cwl_args(vpc_id, _ansible_check_mode=True))

    assert result["changed"] is True
    assert result["flow_log_id"] is None
    assert result["flow_log"]["resource_id"] == vpc_id
    assert result["flow_log"]["log_group_name"] == GROUP
    assert result["flow_log"]["tags"] == {"Project": "app", "Name": "app-flow-log"}
    assert result["diff"]["before"] == {}
    assert flow_logs(aws, vpc_id) == []


def test_check_mode_on_a_resource_that_does_not_exist_yet_predicts_creation(aws):
    result = succeed(cwl_args("vpc-00000000000000000", _ansible_check_mode=True))

    assert result["changed"] is True
    assert result["flow_log_id"] is None


def test_check_mode_after_creation_reports_no_change(aws, vpc_id):
    created = succeed(cwl_args(vpc_id))
    result = succeed(cwl_args(vpc_id, _ansible_check_mode=True))

    assert result["changed"] is False
    assert result["flow_log_id"] == created["flow_log_id"]


@pytest.mark.parametrize(
    "overrides",
    [dict(max_aggregation_interval=60), dict(deliver_logs_permission_arn=OTHER_ROLE_ARN)],
    ids=["max_aggregation_interval", "deliver_logs_permission_arn"],
)
def test_immutable_difference_replaces_the_flow_log(aws, vpc_id, overrides):
    old = succeed(cwl_args(vpc_id))

    result = succeed(cwl_args(vpc_id, **overrides))

    assert result["changed"] is True
    assert result["replaced"] is True
    assert result["deleted_flow_log_ids"] == [old["flow_log_id"]]
    [current] = flow_logs(aws, vpc_id)
    assert current["FlowLogId"] == result["flow_log_id"] != old["flow_log_id"]
    assert current["MaxAggregationInterval"] == overrides.get("max_aggregation_interval", 600)
    assert current["DeliverLogsPermissionArn"] == overrides.get("deliver_logs_permission_arn", ROLE_ARN)
    assert result["diff"]["before"]["flow_log_id"] == old["flow_log_id"]
    assert result["diff"]["after"]["flow_log_id"] == current["FlowLogId"]


def test_check_mode_predicts_replacement_without_deleting(aws, vpc_id):
    old = succeed(cwl_args(vpc_id))

    result = succeed(cwl_args(vpc_id, max_aggregation_interval=60, _ansible_check_mode=True))

    assert result["changed"] is True
    assert result["replaced"] is True
    assert result["deleted_flow_log_ids"] == [old["flow_log_id"]]
    assert result["flow_log"]["max_aggregation_interval"] == 60
    assert [fl["FlowLogId"] for fl in flow_logs(aws, vpc_id)] == [old["flow_log_id"]]


def test_tags_are_updated_in_place(aws, vpc_id):
    old = succeed(cwl_args(vpc_id))

    result = succeed(cwl_args(vpc_id, tags={"Project": "app", "Owner": "team"}))

    assert result["changed"] is True
    assert result["replaced"] is False
    assert result["flow_log_id"] == old["flow_log_id"]
    [current] = flow_logs(aws, vpc_id)
    assert tags_of(current) == {"Project": "app", "Owner": "team"}
    assert result["flow_log"]["tags"] == {"Project": "app", "Owner": "team"}
    assert result["diff"]["before"]["tags"] == {"Project": "app", "Name": "app-flow-log"}


def test_purge_tags_false_keeps_other_tags(aws, vpc_id):
    succeed(cwl_args(vpc_id))

    result = succeed(cwl_args(vpc_id, tags={"Owner": "team"}, purge_tags=False))

    assert result["changed"] is True
    assert tags_of(flow_logs(aws, vpc_id)[0]) == {"Project": "app", "Name": "app-flow-log", "Owner": "team"}


def test_tags_omitted_leaves_tags_alone(aws, vpc_id):
    succeed(cwl_args(vpc_id))
    args = cwl_args(vpc_id)
    del args["tags"]

    result = succeed(args)

    assert result["changed"] is False
    assert tags_of(flow_logs(aws, vpc_id)[0]) == {"Project": "app", "Name": "app-flow-log"}


def test_check_mode_predicts_tag_changes_without_changing(aws, vpc_id):
    succeed(cwl_args(vpc_id))

    result = succeed(cwl_args(vpc_id, tags={"Owner": "team"}, _ansible_check_mode=True))

    assert result["changed"] is True
    assert result["flow_log"]["tags"] == {"Owner": "team"}
    assert tags_of(flow_logs(aws, vpc_id)[0]) == {"Project": "app", "Name": "app-flow-log"}


def test_another_destination_is_another_flow_log(aws, vpc_id):
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/other")
    first = succeed(cwl_args(vpc_id))

    second = succeed(cwl_args(vpc_id, log_group_name="/other", traffic_type="REJECT"))

    assert second["changed"] is True
    assert second["replaced"] is False
    assert second["flow_log_id"] != first["flow_log_id"]
    assert len(flow_logs(aws, vpc_id)) == 2


def test_subnet_flow_log(aws, vpc_id):
    subnet_id = aws.create_subnet(VpcId=vpc_id, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]

    result = succeed(cwl_args(subnet_id, resource_type="Subnet", traffic_type="ACCEPT"))

    assert result["changed"] is True
    [created] = flow_logs(aws, subnet_id)
    assert created["TrafficType"] == "ACCEPT"


def test_missing_vpc_fails_clearly(aws, vpc_id):
    result = fail(cwl_args("vpc-0123456789abcdef0"))

    assert result["msg"].startswith("Failed to create a flow log for vpc-0123456789abcdef0")


# --------------------------------------------------------------------------- present, S3


def test_s3_flow_log_is_created_once(aws, vpc_id):
    boto3.client("s3", region_name=REGION).create_bucket(
        Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    args = dict(
        resource_id=vpc_id,
        log_destination_type="s3",
        log_destination=f"arn:aws:s3:::{BUCKET}",
        traffic_type="REJECT",
    )

    first = succeed(args)
    second = succeed(args)

    assert first["changed"] is True
    assert second["changed"] is False
    [created] = flow_logs(aws, vpc_id)
    assert created["LogDestinationType"] == "s3"
    assert created["LogDestination"] == f"arn:aws:s3:::{BUCKET}"
    assert first["flow_log"]["log_destination"] == f"arn:aws:s3:::{BUCKET}"


def test_s3_unsuccessful_creation_fails_with_the_reason(aws, vpc_id):
    result = fail(dict(resource_id=vpc_id, log_destination_type="s3", log_destination="arn:aws:s3:::missing-bucket"))

    assert result["msg"].startswith(f"Failed to create a flow log for {vpc_id}: ")
    assert "missing-bucket" in result["msg"]


# --------------------------------------------------------------------------- absent


def test_absent_deletes_the_flow_log_and_is_idempotent(aws, vpc_id):
    created = succeed(cwl_args(vpc_id))

    first = succeed(dict(resource_id=vpc_id, log_group_name=GROUP, state="absent"))
    second = succeed(dict(resource_id=vpc_id, log_group_name=GROUP, state="absent"))

    assert first["changed"] is True
    assert first["deleted_flow_log_ids"] == [created["flow_log_id"]]
    assert first["flow_log"] == {}
    assert first["flow_log_id"] is None
    assert first["diff"]["before"]["flow_log_id"] == created["flow_log_id"]
    assert first["diff"]["after"] == {}
    assert second["changed"] is False
    assert second["deleted_flow_log_ids"] == []
    assert flow_logs(aws, vpc_id) == []


def test_absent_in_check_mode_deletes_nothing(aws, vpc_id):
    created = succeed(cwl_args(vpc_id))

    result = succeed(dict(resource_id=vpc_id, state="absent", _ansible_check_mode=True))

    assert result["changed"] is True
    assert result["deleted_flow_log_ids"] == [created["flow_log_id"]]
    assert len(flow_logs(aws, vpc_id)) == 1


def test_absent_only_deletes_the_selected_traffic_type_and_destination(aws, vpc_id):
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/other")
    kept = succeed(cwl_args(vpc_id))
    removed = succeed(cwl_args(vpc_id, log_group_name="/other", traffic_type="REJECT"))

    none_removed = succeed(dict(resource_id=vpc_id, log_group_name=GROUP, traffic_type="REJECT", state="absent"))
    result = succeed(dict(resource_id=vpc_id, log_group_name="/other", state="absent"))

    assert none_removed["changed"] is False
    assert result["deleted_flow_log_ids"] == [removed["flow_log_id"]]
    assert [fl["FlowLogId"] for fl in flow_logs(aws, vpc_id)] == [kept["flow_log_id"]]


def test_absent_without_destination_deletes_every_flow_log_of_the_resource(aws, vpc_id):
    boto3.client("logs", region_name=REGION).create_log_group(logGroupName="/other")
    succeed(cwl_args(vpc_id))
    succeed(cwl_args(vpc_id, log_group_name="/other"))

    result = succeed(dict(resource_id=vpc_id, state="absent"))

    assert len(result["deleted_flow_log_ids"]) == 2
    assert len(result["diff"]["before"]["flow_logs"]) == 2
    assert flow_logs(aws, vpc_id) == []


# --------------------------------------------------------------------------- identity


def _flow_log(**overrides):
    flow_log = dict(
        FlowLogId="fl-0123456789abcdef0",
        ResourceId="vpc-0123456789abcdef0",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName=GROUP,
        DeliverLogsPermissionArn=ROLE_ARN,
        MaxAggregationInterval=600,
    )
    flow_log.update(overrides)
    return flow_log


def _params(**overrides):
    params = dict(
        resource_id="vpc-0123456789abcdef0",
        resource_type="VPC",
        traffic_type=None,
        log_destination_type="cloud-watch-logs",
        log_group_name=GROUP,
        deliver_logs_permission_arn=ROLE_ARN,
        log_destination=None,
        max_aggregation_interval=600,
        tags=None,
        purge_tags=True,
        state="present",
    )
    params.update(overrides)
    return params


@pytest.mark.parametrize(
    "flow_log_overrides, traffic_type, expected",
    [
        ({}, "ALL", True),
        ({}, None, True),
        (dict(TrafficType="REJECT"), "ALL", False),
        (dict(TrafficType="REJECT"), None, True),
        (dict(LogGroupName="/other"), "ALL", False),
        (dict(ResourceId="vpc-0000000000000000f"), "ALL", False),
        (dict(LogDestinationType="s3", LogGroupName=None, LogDestination="arn:aws:s3:::b"), "ALL", False),
        (dict(MaxAggregationInterval=60, DeliverLogsPermissionArn=OTHER_ROLE_ARN), "ALL", True),
    ],
)
def test_identity_is_resource_traffic_type_and_destination(flow_log_overrides, traffic_type, expected):
    assert ec2_vpc_flow_log.matches(_flow_log(**flow_log_overrides), _params(), traffic_type) is expected


def test_s3_destinations_match_with_or_without_trailing_slash():
    flow_log = _flow_log(LogDestinationType="s3", LogGroupName=None, LogDestination="arn:aws:s3:::b/logs/")
    params = _params(log_destination_type="s3", log_group_name=None, log_destination="arn:aws:s3:::b/logs")

    assert ec2_vpc_flow_log.matches(flow_log, params, "ALL") is True


def test_immutable_differences():
    desired = ec2_vpc_flow_log.desired_flow_log(_params(max_aggregation_interval=60))

    assert ec2_vpc_flow_log.immutable_differences(_flow_log(), desired) == ["MaxAggregationInterval"]
    assert ec2_vpc_flow_log.immutable_differences(_flow_log(MaxAggregationInterval=60), desired) == []


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "overrides, option",
    [
        (dict(resource_id="vpc_123"), "resource_id"),
        (dict(resource_id="sg-0123456789abcdef0"), "resource_id"),
        (dict(resource_id="subnet-0123456789abcdef0"), "resource_id"),
        (dict(resource_id="vpc-0123456789abcdef0", resource_type="NetworkInterface"), "resource_id"),
        (dict(log_group_name=None), "log_group_name"),
        (dict(log_group_name="bad group name"), "log_group_name"),
        (dict(deliver_logs_permission_arn=None), "deliver_logs_permission_arn"),
        (dict(deliver_logs_permission_arn="arn:aws:iam::123:user/x"), "deliver_logs_permission_arn"),
        (dict(log_destination="arn:aws:s3:::bucket"), "log_destination"),
        (dict(tags={"Count": 3}), "tags"),
    ],
)
def test_bad_cloudwatch_input_fails_before_any_api_call(no_clients, overrides, option):
    args = cwl_args("vpc-0123456789abcdef0")
    args.update(overrides)

    result = fail(args)

    assert result["msg"].startswith(f"{option}:"), result["msg"]
    assert result["option"] == option
    assert no_clients == []


@pytest.mark.parametrize(
    "overrides, option",
    [
        (dict(log_destination=None), "log_destination"),
        (dict(log_destination="s3://bucket/prefix"), "log_destination"),
        (dict(log_group_name=GROUP), "log_group_name"),
        (dict(deliver_logs_permission_arn=ROLE_ARN), "deliver_logs_permission_arn"),
    ],
)
def test_bad_s3_input_fails_before_any_api_call(no_clients, overrides, option):
    args = dict(
        resource_id="vpc-0123456789abcdef0",
        log_destination_type="s3",
        log_destination=f"arn:aws:s3:::{BUCKET}",
    )
    args.update(overrides)

    result = fail(args)

    assert result["msg"].startswith(f"{option}:"), result["msg"]
    assert no_clients == []


@pytest.mark.parametrize(
    "overrides, option",
    [
        (dict(traffic_type="SOME"), "traffic_type"),
        (dict(max_aggregation_interval=300), "max_aggregation_interval"),
        (dict(resource_type="Vpc"), "resource_type"),
        (dict(log_destination_type="kinesis"), "log_destination_type"),
        (dict(state="gone"), "state"),
    ],
)
def test_choices_are_enforced_before_any_api_call(no_clients, overrides, option):
    result = fail(cwl_args("vpc-0123456789abcdef0", **overrides))

    assert option in result["msg"]
    assert no_clients == []


def test_absent_needs_no_destination_or_role(aws, vpc_id):
    result = succeed(dict(resource_id=vpc_id, state="absent"))

    assert result["changed"] is False


# --------------------------------------------------------------------------- retries


def test_module_client_uses_jittered_backoff(aws, vpc_id, monkeypatch):
    calls, decorators = record_retrying_clients(monkeypatch, ec2_vpc_flow_log)
    succeed(cwl_args(vpc_id))

    assert calls == [("ec2", decorators[0])]


def test_api_calls_opt_in_to_retries():
    client = mock.Mock()
    client.delete_flow_logs.return_value = {"Unsuccessful": []}
    client.create_flow_logs.return_value = {"FlowLogIds": ["fl-0123456789abcdef0"], "Unsuccessful": []}
    client.describe_flow_logs.return_value = {"FlowLogs": [_flow_log()]}
    module = mock.Mock(check_mode=False, params=_params())
    desired = ec2_vpc_flow_log.desired_flow_log(_params())

    ec2_vpc_flow_log.create_flow_log(module, client, desired, {"Project": "app"})
    ec2_vpc_flow_log.delete_flow_logs(module, client, ["fl-0123456789abcdef0"])
    ec2_vpc_flow_log.ensure_tags(module, client, _flow_log(Tags=[{"Key": "Old", "Value": "1"}]), {"New": "2"}, True)

    assert client.create_flow_logs.call_args.kwargs["aws_retry"] is True
    assert client.create_flow_logs.call_args.kwargs["TagSpecifications"] == [
        {"ResourceType": "vpc-flow-log", "Tags": [{"Key": "Project", "Value": "app"}]}
    ]
    assert client.describe_flow_logs.call_args.kwargs["aws_retry"] is True
    assert client.delete_flow_logs.call_args.kwargs == {"FlowLogIds": ["fl-0123456789abcdef0"], "aws_retry": True}
    assert client.delete_tags.call_args.kwargs["aws_retry"] is True
    assert client.create_tags.call_args.kwargs["aws_retry"] is True
