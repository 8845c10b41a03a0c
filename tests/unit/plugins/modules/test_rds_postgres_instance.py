# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

from unittest import mock

import boto3
import botocore.client
import botocore.exceptions
import botocore.parsers
import botocore.session
import pytest
from _harness import ModuleFail, clean_aws_env, fail_result, module_outcomes, patch_exits, record_retrying_clients
from ansible.module_utils import basic
from moto import mock_aws

from ansible_collections.layered.eks_rds.plugins.module_utils import rds_instance as helpers
from ansible_collections.layered.eks_rds.plugins.modules import rds_postgres_instance

REGION = "eu-west-1"
IDENTIFIER = "app-pg"
ALL_LOGS = ["iam-db-auth-error", "postgresql", "upgrade"]


@pytest.fixture(autouse=True)
def aws_env(monkeypatch, tmp_path):
    clean_aws_env(monkeypatch, tmp_path)


@pytest.fixture(autouse=True)
def module_exits(monkeypatch):
    patch_exits(monkeypatch)


@pytest.fixture
def warnings(monkeypatch):
    recorded = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda self, warning: recorded.append(warning))
    return recorded


# moto 5.2.5 does not implement DescribeDBEngineVersions; answer it the way RDS does for PostgreSQL.
ENGINE_VERSIONS = {
    "default": {"Engine": "postgres", "EngineVersion": "17.4", "DBParameterGroupFamily": "postgres17"},
    "17": {"Engine": "postgres", "EngineVersion": "17.4", "DBParameterGroupFamily": "postgres17"},
    "16": {"Engine": "postgres", "EngineVersion": "16.8", "DBParameterGroupFamily": "postgres16"},
}


@pytest.fixture
def engine_versions(monkeypatch):
    """Serve DescribeDBEngineVersions from a table (exportable log types set per test), record the calls."""
    real = botocore.client.BaseClient._make_api_call
    state = dict(exportable=list(ALL_LOGS), fail=None, calls=[])

    def fake(self, operation_name, api_params):
        if operation_name != "DescribeDBEngineVersions":
            return real(self, operation_name, api_params)
        state["calls"].append(dict(api_params))
        if state["fail"] == "unparsable":
            # What an endpoint without the action answers (an HTML error page).
            raise botocore.parsers.ResponseParserError("Unable to parse response, invalid XML received")
        if state["fail"]:
            raise botocore.exceptions.ClientError(
                {"Error": {"Code": state["fail"], "Message": "not allowed"}}, operation_name
            )
        version = api_params.get("EngineVersion")
        key = "default" if version is None else version.split(".")[0]
        entry = dict(ENGINE_VERSIONS[key])
        if version and "." in version:
            entry["EngineVersion"] = version
        entry["ExportableLogTypes"] = list(state["exportable"])
        return {"DBEngineVersions": [entry]}

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", fake)
    return state


succeed, fail = module_outcomes(rds_postgres_instance.main, diff=False)


@pytest.fixture
def network():
    """Inside mock_aws: a VPC with two subnets in two zones, a subnet group, a security group, a KMS key and
    a parameter group."""
    with mock_aws():
        ec2 = boto3.client("ec2", region_name=REGION)
        rds = boto3.client("rds", region_name=REGION)
        kms = boto3.client("kms", region_name=REGION)
        vpc_id = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc_id, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"{REGION}{zone}")["Subnet"][
                "SubnetId"
            ]
            for i, zone in enumerate("ab")
        ]
        rds.create_db_subnet_group(
            DBSubnetGroupName="app-pg-subnets", DBSubnetGroupDescription="app", SubnetIds=subnets
        )
        sg_id = ec2.create_security_group(GroupName="app-pg", Description="app", VpcId=vpc_id)["GroupId"]
        key_arn = kms.create_key(Description="app-pg")["KeyMetadata"]["Arn"]
        kms.create_alias(AliasName="alias/app-pg-rds", TargetKeyId=key_arn)
        other_key_arn = kms.create_key(Description="other")["KeyMetadata"]["Arn"]
        rds.create_db_parameter_group(
            DBParameterGroupName="app-pg-postgres17", DBParameterGroupFamily="postgres17", Description="app"
        )
        yield dict(
            rds=rds,
            vpc_id=vpc_id,
            subnets=subnets,
            sg_id=sg_id,
            key_arn=key_arn,
            other_key_arn=other_key_arn,
        )


def base_args(network, **overrides):
    args = dict(
        db_instance_identifier=IDENTIFIER,
        engine_version="17",
        db_instance_class="db.t4g.micro",
        allocated_storage=20,
        db_subnet_group_name="app-pg-subnets",
        vpc_security_group_ids=[network["sg_id"]],
        db_parameter_group_name="app-pg-postgres17",
        kms_key_id=network["key_arn"],
        master_user_secret_kms_key_id=network["key_arn"],
        master_username="pgadmin",
        tags=dict(Project="eks-rds", Environment="test", Name=IDENTIFIER),
        region=REGION,
    )
    args.update(overrides)
    return args


def described(network, identifier=IDENTIFIER):
    return network["rds"].describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]


def instance_exists(network, identifier=IDENTIFIER):
    return any(db["DBInstanceIdentifier"] == identifier for db in network["rds"].describe_db_instances()["DBInstances"])


# --------------------------------------------------------------------------- create / idempotence


def test_create_with_secure_defaults(network, engine_versions):
    result = succeed(base_args(network))

    assert result["changed"] is True
    db = described(network)
    assert db["Engine"] == "postgres"
    assert db["MultiAZ"] is True
    assert db["IAMDatabaseAuthenticationEnabled"] is True
    assert db["PubliclyAccessible"] is False
    assert db["StorageEncrypted"] is True
    assert db["KmsKeyId"] == network["key_arn"]
    assert db["DeletionProtection"] is True
    assert db["BackupRetentionPeriod"] == 7
    assert db["StorageType"] == "gp3"
    assert db["CopyTagsToSnapshot"] is True
    assert sorted(db["EnabledCloudwatchLogsExports"]) == ALL_LOGS
    assert db["MasterUserSecret"]["SecretArn"].startswith(f"arn:aws:secretsmanager:{REGION}:")
    assert db["MasterUserSecret"]["KmsKeyId"] == network["key_arn"]
    assert [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]] == [network["sg_id"]]
    assert db["DBParameterGroups"][0]["DBParameterGroupName"] == "app-pg-postgres17"
    assert db["DBSubnetGroup"]["DBSubnetGroupName"] == "app-pg-subnets"

    assert result["endpoint_address"] == db["Endpoint"]["Address"]
    assert result["endpoint_port"] == 5432
    assert result["dbi_resource_id"] == db["DbiResourceId"]
    assert result["dbi_resource_id"].startswith("db-")
    assert result["db_instance_arn"] == db["DBInstanceArn"]
    assert result["master_user_secret_arn"] == db["MasterUserSecret"]["SecretArn"]
    assert result["kms_key_id"] == network["key_arn"]
    assert result["instance"]["iam_database_authentication_enabled"] is True
    assert result["instance"]["tags"] == dict(Project="eks-rds", Environment="test", Name=IDENTIFIER)
    assert result["diff"]["before"] == {}
    assert result["diff"]["after"]["multi_az"] is True


def test_create_never_sends_a_password(network, engine_versions, monkeypatch):
    real = botocore.client.BaseClient._make_api_call
    sent = []

    def spy(self, operation_name, api_params):
        sent.append((operation_name, dict(api_params)))
        return real(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    result = succeed(base_args(network))

    create = [params for name, params in sent if name == "CreateDBInstance"]
    assert len(create) == 1
    assert create[0]["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in create[0]
    assert "password" not in repr(result).lower().replace("manage_master_user_password", "")


def test_second_run_changes_nothing(network, engine_versions):
    succeed(base_args(network))
    calls_after_create = len(engine_versions["calls"])

    result = succeed(base_args(network))

    assert result["changed"] is False
    assert result["diff"]["before"] == result["diff"]["after"]
    # The log types are all enabled already, so their exportability is not looked up again.
    assert len(engine_versions["calls"]) == calls_after_create


def test_default_engine_version_comes_from_describe_db_engine_versions(network, engine_versions):
    args = base_args(network)
    del args["engine_version"]

    result = succeed(args)

    assert described(network)["EngineVersion"] == "17.4"
    assert dict(Engine="postgres", DefaultOnly=True) in engine_versions["calls"]
    # An existing instance with no engine_version option is not compared on the version.
    assert succeed(args)["changed"] is False
    assert result["instance"]["engine_version"] == "17.4"


@pytest.mark.parametrize("failure", ["AccessDenied", "unparsable"])
def test_pinned_engine_version_when_the_lookup_fails(network, engine_versions, warnings, failure):
    engine_versions["fail"] = failure
    args = base_args(network)
    del args["engine_version"]

    succeed(args)

    db = described(network)
    assert db["EngineVersion"] == helpers.DEFAULT_ENGINE_VERSION
    # Unknown exportability: every requested log type is exported.
    assert sorted(db["EnabledCloudwatchLogsExports"]) == ALL_LOGS
    assert any(w.startswith("engine_version:") for w in warnings)


def test_log_exports_are_filtered_to_what_the_version_exports(network, engine_versions, warnings):
    engine_versions["exportable"] = ["postgresql", "upgrade"]

    succeed(base_args(network))

    assert sorted(described(network)["EnabledCloudwatchLogsExports"]) == ["postgresql", "upgrade"]
    assert any("iam-db-auth-error" in w and w.startswith("enable_cloudwatch_logs_exports:") for w in warnings)
    # Idempotent with the filtered list.
    assert succeed(base_args(network))["changed"] is False


def test_single_az_instance_in_a_fixed_zone(network, engine_versions):
    succeed(base_args(network, multi_az=False, availability_zone=f"{REGION}b"))

    db = described(network)
    assert db["MultiAZ"] is False
    assert db["AvailabilityZone"] == f"{REGION}b"
    assert succeed(base_args(network, multi_az=False, availability_zone=f"{REGION}b"))["changed"] is False


# --------------------------------------------------------------------------- modify


def test_modify_backup_retention_and_deletion_protection(network, engine_versions):
    succeed(base_args(network))

    result = succeed(base_args(network, backup_retention_period=14, deletion_protection=False))

    assert result["changed"] is True
    db = described(network)
    assert db["BackupRetentionPeriod"] == 14
    assert db["DeletionProtection"] is False
    assert result["diff"]["before"]["backup_retention_period"] == 7
    assert result["diff"]["after"]["backup_retention_period"] == 14
    assert result["diff"]["before"]["deletion_protection"] is True
    assert result["diff"]["after"]["deletion_protection"] is False
    assert succeed(base_args(network, backup_retention_period=14, deletion_protection=False))["changed"] is False


def test_modify_sends_only_the_differences(network, engine_versions, monkeypatch):
    succeed(base_args(network))
    real = botocore.client.BaseClient._make_api_call
    sent = []

    def spy(self, operation_name, api_params):
        sent.append((operation_name, dict(api_params)))
        return real(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    succeed(base_args(network, db_instance_class="db.t4g.small", apply_immediately=True))

    modify = [params for name, params in sent if name == "ModifyDBInstance"]
    assert modify == [
        dict(DBInstanceIdentifier=IDENTIFIER, DBInstanceClass="db.t4g.small", ApplyImmediately=True),
    ]


def test_log_exports_and_iam_auth_are_reconciled(network, engine_versions):
    succeed(base_args(network))
    network["rds"].modify_db_instance(
        DBInstanceIdentifier=IDENTIFIER,
        EnableIAMDatabaseAuthentication=False,
        CloudwatchLogsExportConfiguration={"DisableLogTypes": ["upgrade"]},
        ApplyImmediately=True,
    )

    result = succeed(base_args(network))

    assert result["changed"] is True
    db = described(network)
    assert db["IAMDatabaseAuthenticationEnabled"] is True
    assert sorted(db["EnabledCloudwatchLogsExports"]) == ALL_LOGS


def test_smaller_storage_is_not_a_change(network, engine_versions):
    succeed(base_args(network, allocated_storage=50))

    assert succeed(base_args(network, allocated_storage=20))["changed"] is False
    assert described(network)["AllocatedStorage"] == 50


def test_tags_are_added_updated_and_purged(network, engine_versions):
    succeed(base_args(network, tags=dict(Project="eks-rds", Extra="1")))

    result = succeed(base_args(network, tags=dict(Project="other")))

    assert result["changed"] is True
    assert result["instance"]["tags"] == dict(Project="other")
    kept = succeed(base_args(network, tags=dict(Owner="team"), purge_tags=False))
    assert kept["instance"]["tags"] == dict(Project="other", Owner="team")


def test_existing_instance_with_another_kms_key_fails(network, engine_versions):
    succeed(base_args(network))

    result = fail(base_args(network, kms_key_id=network["other_key_arn"]))

    assert result["msg"].startswith("kms_key_id:")


def test_kms_key_given_as_alias_is_resolved_for_the_comparison(network, engine_versions):
    succeed(base_args(network))

    result = succeed(base_args(network, kms_key_id="alias/app-pg-rds"))

    assert result["changed"] is False


@pytest.mark.parametrize(
    "version, allow, message",
    [
        ("18", False, "allow_major_version_upgrade=true"),
        ("16", False, "cannot move it back"),
    ],
)
def test_engine_major_version_moves_are_guarded(network, engine_versions, version, allow, message):
    succeed(base_args(network))

    result = fail(base_args(network, engine_version=version, allow_major_version_upgrade=allow))

    assert result["msg"].startswith("engine_version:")
    assert message in result["msg"]


# --------------------------------------------------------------------------- check mode


def test_check_mode_predicts_a_creation_without_creating(network, engine_versions):
    result = succeed(base_args(network, _ansible_check_mode=True))

    assert result["changed"] is True
    assert not instance_exists(network)
    assert result["instance"]["db_instance_status"] == "creating"
    assert result["instance"]["multi_az"] is True
    assert result["instance"]["iam_database_authentication_enabled"] is True
    assert result["instance"]["publicly_accessible"] is False
    assert result["dbi_resource_id"] is None
    assert result["endpoint_address"] is None
    assert result["diff"]["after"]["deletion_protection"] is True


def test_check_mode_predicts_a_modification_without_making_it(network, engine_versions):
    succeed(base_args(network))

    result = succeed(base_args(network, backup_retention_period=3, _ansible_check_mode=True))

    assert result["changed"] is True
    assert result["instance"]["backup_retention_period"] == 3
    assert described(network)["BackupRetentionPeriod"] == 7


def test_check_mode_without_changes(network, engine_versions):
    succeed(base_args(network))

    assert succeed(base_args(network, _ansible_check_mode=True))["changed"] is False


# --------------------------------------------------------------------------- absent


def test_absent_refuses_a_protected_instance(network, engine_versions):
    succeed(base_args(network))

    result = fail(dict(db_instance_identifier=IDENTIFIER, state="absent", skip_final_snapshot=True, region=REGION))

    assert result["msg"].startswith("deletion_protection:")
    assert "deletion_protection=false" in result["msg"]
    assert instance_exists(network)


def test_absent_turns_protection_off_then_deletes(network, engine_versions, monkeypatch):
    succeed(base_args(network))
    real = botocore.client.BaseClient._make_api_call
    sent = []

    def spy(self, operation_name, api_params):
        sent.append(operation_name)
        return real(self, operation_name, api_params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", spy)
    args = dict(
        db_instance_identifier=IDENTIFIER,
        state="absent",
        deletion_protection=False,
        skip_final_snapshot=True,
        region=REGION,
    )

    result = succeed(args)

    assert result["changed"] is True
    assert result["db_instance_status"] == "deleted"
    assert result["diff"]["after"] == {}
    assert not instance_exists(network)
    assert sent.index("ModifyDBInstance") < sent.index("DeleteDBInstance")
    assert succeed(args)["changed"] is False


def test_absent_keeps_a_final_snapshot(network, engine_versions):
    succeed(base_args(network, deletion_protection=False))

    succeed(
        dict(
            db_instance_identifier=IDENTIFIER,
            state="absent",
            deletion_protection=False,
            final_snapshot_identifier="app-pg-final",
            region=REGION,
        )
    )

    snapshots = network["rds"].describe_db_snapshots(DBSnapshotIdentifier="app-pg-final")["DBSnapshots"]
    assert [s["DBInstanceIdentifier"] for s in snapshots] == [IDENTIFIER]


def test_absent_in_check_mode_deletes_nothing(network, engine_versions):
    succeed(base_args(network))

    result = succeed(
        dict(
            db_instance_identifier=IDENTIFIER,
            state="absent",
            deletion_protection=False,
            skip_final_snapshot=True,
            region=REGION,
            _ansible_check_mode=True,
        )
    )

    assert result["changed"] is True
    assert described(network)["DeletionProtection"] is True


# --------------------------------------------------------------------------- bad input


GOOD = dict(
    db_instance_identifier=IDENTIFIER,
    db_instance_class="db.t4g.micro",
    master_username="pgadmin",
    region=REGION,
)


@pytest.mark.parametrize(
    "overrides, option",
    [
        (dict(allocated_storage=10), "allocated_storage"),
        (dict(allocated_storage=100, max_allocated_storage=50), "max_allocated_storage"),
        (dict(availability_zone=f"{REGION}a"), "availability_zone"),
        (dict(db_instance_identifier="1-starts-with-digit"), "db_instance_identifier"),
        (dict(db_instance_identifier="double--hyphen"), "db_instance_identifier"),
        (dict(db_instance_class="t3.micro"), "db_instance_class"),
        (dict(engine_version="seventeen"), "engine_version"),
        (dict(backup_retention_period=0), "backup_retention_period"),
        (dict(backup_retention_period=36), "backup_retention_period"),
        (dict(master_username="rdsadmin"), "master_username"),
        (dict(master_username="9lives"), "master_username"),
        (dict(manage_master_user_password=False), "manage_master_user_password"),
        (dict(vpc_security_group_ids=["default"]), "vpc_security_group_ids"),
        (dict(preferred_backup_window="2am"), "preferred_backup_window"),
        (dict(preferred_maintenance_window="sunday"), "preferred_maintenance_window"),
        (dict(storage_encrypted=False, kms_key_id="alias/x"), "kms_key_id"),
        (dict(tags={"aws:owner": "x"}), "tags"),
        (dict(wait_timeout=0), "wait_timeout"),
        (dict(state="absent"), "final_snapshot_identifier"),
        (dict(state="absent", final_snapshot_identifier="bad_snapshot"), "final_snapshot_identifier"),
    ],
)
def test_bad_input_fails_before_any_api_call(no_clients, overrides, option):
    args = dict(GOOD)
    args.update(overrides)

    result = fail(args)

    assert result["msg"].startswith(f"{option}:"), result["msg"]
    assert result["option"] == option
    assert no_clients == []


def test_fixed_zone_with_multi_az_names_both_options(no_clients):
    result = fail(dict(GOOD, availability_zone=f"{REGION}a", multi_az=True))

    assert "availability_zone" in result["msg"] and "multi_az" in result["msg"]
    assert no_clients == []


@pytest.mark.parametrize(
    "overrides, option",
    [
        (dict(engine="mysql"), "engine"),
        (dict(storage_type="io1"), "storage_type"),
        (dict(enable_cloudwatch_logs_exports=["error"]), "enable_cloudwatch_logs_exports"),
        (dict(db_instance_class=None), "db_instance_class"),
        (dict(master_username=None), "master_username"),
    ],
)
def test_argument_spec_rejects_before_any_api_call(no_clients, overrides, option):
    args = {key: value for key, value in dict(GOOD, **overrides).items() if value is not None}

    result = fail(args)

    assert option in result["msg"]
    assert no_clients == []


# --------------------------------------------------------------------------- waiting (mocked client)


def _module(**params):
    module = mock.Mock()
    module.params = {name: spec.get("default") for name, spec in rds_postgres_instance.ARGUMENT_SPEC.items()}
    module.params.update(db_instance_identifier=IDENTIFIER, db_instance_class="db.t4g.micro", master_username="pg")
    module.params.update(params)
    module.check_mode = False
    module.fail_json.side_effect = fail_result
    module.fail_json_aws.side_effect = lambda e, msg=None, **kwargs: fail_result(msg=f"{msg}: {e}", **kwargs)
    return module


def _instance(status, **extra):
    instance = dict(
        DBInstanceIdentifier=IDENTIFIER,
        DBInstanceArn=f"arn:aws:rds:{REGION}:123456789012:db:{IDENTIFIER}",
        DBInstanceStatus=status,
        Engine="postgres",
        EngineVersion="17.4",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        StorageType="gp3",
        MultiAZ=True,
        StorageEncrypted=True,
        KmsKeyId="arn:aws:kms:eu-west-1:123456789012:key/0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b",
        MasterUsername="pg",
        MasterUserSecret=dict(SecretArn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-x"),
        IAMDatabaseAuthenticationEnabled=True,
        PubliclyAccessible=False,
        DeletionProtection=True,
        BackupRetentionPeriod=7,
        EnabledCloudwatchLogsExports=list(ALL_LOGS),
        CopyTagsToSnapshot=True,
        AutoMinorVersionUpgrade=True,
        VpcSecurityGroups=[],
        TagList=[],
    )
    instance.update(extra)
    return instance


def test_present_on_a_creating_instance_waits_then_compares():
    client = mock.Mock()
    client.describe_db_instances.return_value = {"DBInstances": [_instance("available")]}
    manager = rds_postgres_instance.PostgresInstance(_module(wait=True, wait_timeout=600), client)

    result = manager.ensure_present(_instance("creating"))

    client.get_waiter.assert_called_once_with("db_instance_available")
    client.get_waiter.return_value.wait.assert_called_once_with(
        DBInstanceIdentifier=IDENTIFIER, WaiterConfig=dict(Delay=15, MaxAttempts=40)
    )
    client.modify_db_instance.assert_not_called()
    client.create_db_instance.assert_not_called()
    assert result["changed"] is False


def test_present_on_a_creating_instance_without_wait_returns_at_once():
    client = mock.Mock()
    manager = rds_postgres_instance.PostgresInstance(_module(wait=False), client)

    result = manager.ensure_present(_instance("creating"))

    client.get_waiter.assert_not_called()
    assert result["changed"] is False


def test_a_needed_modification_on_a_creating_instance_without_wait_fails():
    client = mock.Mock()
    manager = rds_postgres_instance.PostgresInstance(_module(wait=False, backup_retention_period=9), client)

    with pytest.raises(ModuleFail) as raised:
        manager.ensure_present(_instance("creating"))

    assert "is creating and cannot be modified now" in raised.value.result["msg"]
    assert "backup_retention_period" in raised.value.result["msg"]
    client.modify_db_instance.assert_not_called()


def test_pending_modifications_count_as_made():
    client = mock.Mock()
    pending = dict(DBInstanceClass="db.t4g.small", BackupRetentionPeriod=9)
    manager = rds_postgres_instance.PostgresInstance(
        _module(db_instance_class="db.t4g.small", backup_retention_period=9), client
    )

    result = manager.ensure_present(_instance("available", PendingModifiedValues=pending))

    assert result["changed"] is False
    client.modify_db_instance.assert_not_called()


def test_waiter_timeout_is_reported():
    client = mock.Mock()
    client.get_waiter.return_value.wait.side_effect = botocore.exceptions.WaiterError(
        name="DBInstanceAvailable", reason="Max attempts exceeded", last_response={}
    )
    manager = rds_postgres_instance.PostgresInstance(_module(wait=True, wait_timeout=30), client)

    with pytest.raises(ModuleFail) as raised:
        manager.wait_for("db_instance_available")

    assert "within 30 seconds" in raised.value.result["msg"]


def test_calls_opt_in_to_retries():
    client = mock.Mock()
    client.describe_db_instances.return_value = {"DBInstances": [_instance("available")]}
    manager = rds_postgres_instance.PostgresInstance(_module(), client)

    manager.describe()

    client.describe_db_instances.assert_called_once_with(DBInstanceIdentifier=IDENTIFIER, aws_retry=True)


def test_module_client_uses_jittered_backoff(network, engine_versions, monkeypatch):
    calls, decorators = record_retrying_clients(monkeypatch, rds_postgres_instance)
    succeed(base_args(network))

    assert calls == [("rds", decorators[0])]


# --------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    "desired, current, move",
    [
        ("17", "17.4", "none"),
        ("17.4", "17.4", "none"),
        ("17.2", "17.4", "none"),
        ("17.6", "17.4", "minor"),
        ("18", "17.4", "major"),
        ("16", "17.4", "downgrade"),
        ("9.6", "9.6.24", "none"),
        ("11.22-rds.20240418", "11.22", "none"),
        (None, "17.4", "none"),
    ],
)
def test_engine_version_change(desired, current, move):
    assert helpers.engine_version_change(desired, current) == move


@pytest.mark.parametrize(
    "version, family",
    [("17", "postgres17"), ("16.4", "postgres16"), ("9.6.24", "postgres9.6"), ("x", None)],
)
def test_parameter_group_family(version, family):
    assert helpers.parameter_group_family(version) == family


def test_current_state_applies_pending_values():
    instance = _instance(
        "available",
        PendingModifiedValues=dict(
            MultiAZ=False,
            PendingCloudwatchLogsExports=dict(LogTypesToEnable=["x"], LogTypesToDisable=["upgrade"]),
        ),
    )

    state = helpers.current_state(instance)

    assert state["multi_az"] is False
    assert state["enable_cloudwatch_logs_exports"] == ["iam-db-auth-error", "postgresql", "x"]
    assert state["max_allocated_storage"] == 20
    assert state["manage_master_user_password"] is True


def test_compare_ignores_unmanaged_options_and_case():
    current = helpers.current_state(
        _instance("available", PreferredMaintenanceWindow="sun:03:00-sun:03:30", DBParameterGroups=[])
    )
    desired = dict(
        multi_az=None,
        preferred_maintenance_window="SUN:03:00-SUN:03:30",
        backup_retention_period=7,
        db_parameter_group_name="pg",
    )

    assert helpers.compare(desired, current) == {"db_parameter_group_name": (None, "pg")}


def test_tags_change():
    assert helpers.tags_change({"a": 1, "b": "2"}, {"b": "2", "c": "3", "aws:x": "y"}, True) == ({"a": "1"}, ["c"])
    assert helpers.tags_change({"a": "1"}, {"c": "3"}, False) == ({"a": "1"}, [])
    assert helpers.tags_change(None, {"c": "3"}, True) == ({}, [])


def test_log_exports_change():
    assert helpers.log_exports_change(["a", "b"], ["b", "c"]) == (["a"], ["c"])
    assert helpers.log_exports_change(None, ["b"]) == ([], [])


@pytest.mark.parametrize(
    "desired, current, same",
    [
        ("arn:aws:kms:eu-west-1:123456789012:key/abc", "arn:aws:kms:eu-west-1:123456789012:key/abc", True),
        (
            "0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b",
            "arn:aws:kms:eu-west-1:123456789012:key/0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b",
            True,
        ),
        (
            "arn:aws:kms:eu-west-1:123456789012:key/0b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b",
            "arn:aws:kms:eu-west-1:123456789012:key/1b8ae6c0-2c4e-4d3b-9a3e-7d9a1f0e1a2b",
            False,
        ),
        ("alias/app", "arn:aws:kms:eu-west-1:123456789012:key/abc", None),
    ],
)
def test_same_kms_key(desired, current, same):
    assert helpers.same_kms_key(desired, current) is same


@pytest.mark.parametrize("timeout, config", [(3600, (15, 240)), (20, (15, 2)), (5, (5, 1)), (1, (1, 1))])
def test_waiter_config(timeout, config):
    assert helpers.waiter_config(timeout) == dict(Delay=config[0], MaxAttempts=config[1])


def test_create_request_has_no_password_and_skips_unset_options():
    desired = helpers.desired_state(
        dict(
            db_instance_class="db.t4g.micro",
            engine_version="17",
            allocated_storage=None,
            storage_type="gp3",
            multi_az=True,
            master_username="pg",
            iam_database_authentication=True,
            publicly_accessible=False,
            storage_encrypted=True,
            deletion_protection=True,
            backup_retention_period=7,
            copy_tags_to_snapshot=True,
            auto_minor_version_upgrade=True,
            enable_cloudwatch_logs_exports=["postgresql"],
        )
    )

    request = helpers.create_request(IDENTIFIER, desired, {"Name": IDENTIFIER})

    assert request["ManageMasterUserPassword"] is True
    assert request["AllocatedStorage"] == 20
    assert request["EnableCloudwatchLogsExports"] == ["postgresql"]
    assert request["Tags"] == [{"Key": "Name", "Value": IDENTIFIER}]
    assert not {"MasterUserPassword", "KmsKeyId", "AvailabilityZone", "MaxAllocatedStorage"} & set(request)
