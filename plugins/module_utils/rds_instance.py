# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Pure helpers for managing an Amazon RDS for PostgreSQL DB instance.

Nothing in here talks to AWS. These functions validate module options, turn
them into the normalised desired state of an instance, normalise what
``DescribeDBInstances`` returns into the same shape, compare the two and build
the ``CreateDBInstance`` / ``ModifyDBInstance`` requests, so that the module
only has to sequence API calls and waiters.

The normalised state is a flat dict whose keys are the module option names
(``backup_retention_period``, ``iam_database_authentication``, ...). A value of
``None`` in the desired state means "not managed": it is neither compared nor
sent.
"""

import math
import re

ENGINE = "postgres"
# Used when DescribeDBEngineVersions cannot say which version is the default.
# A major version only: RDS picks that major's default minor version.
DEFAULT_ENGINE_VERSION = "17"
DEFAULT_LOG_EXPORTS = ("postgresql", "upgrade", "iam-db-auth-error")
LOG_EXPORT_CHOICES = DEFAULT_LOG_EXPORTS
STORAGE_TYPES = ("gp2", "gp3")
# PostgreSQL on gp2/gp3 storage: 20 GiB to 64 TiB.
MIN_ALLOCATED_STORAGE = 20
MAX_ALLOCATED_STORAGE = 65536
MAX_BACKUP_RETENTION_DAYS = 35
WAITER_DELAY_SECONDS = 15
RESERVED_MASTER_USERNAMES = ("rdsadmin", "rds_superuser", "rds_iam", "rds_replication", "rds_password")

# States in which RDS is still working on the instance and rejects ModifyDBInstance / DeleteDBInstance.
TRANSITIONAL_STATUSES = (
    "creating",
    "modifying",
    "backing-up",
    "rebooting",
    "renaming",
    "resetting-master-credentials",
    "upgrading",
    "starting",
    "stopping",
    "maintenance",
    "configuring-enhanced-monitoring",
    "configuring-iam-database-auth",
    "configuring-log-exports",
    "converting-to-vpc",
    "moving-to-vpc",
)
# States in which ModifyDBInstance is accepted.
MODIFIABLE_STATUSES = ("available", "storage-optimization")

_DB_INSTANCE_IDENTIFIER_RE = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)")
_SNAPSHOT_IDENTIFIER_RE = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,254}(?<!-)")
_ENGINE_VERSION_RE = re.compile(r"[0-9]+(\.[0-9]+){0,2}(-rds\.[0-9]+)?")
_INSTANCE_CLASS_RE = re.compile(r"db\.[a-z][a-z0-9-]*\.[a-z0-9]+")
_MASTER_USERNAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,62}")
_SECURITY_GROUP_ID_RE = re.compile(r"sg-[0-9a-f]+")
_SUBNET_GROUP_NAME_RE = re.compile(r"[a-z0-9 ._-]{1,255}")
_PARAMETER_GROUP_NAME_RE = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,254}(?<!-)")
_HH_MM = r"([01][0-9]|2[0-3]):[0-5][0-9]"
_DAY = r"(mon|tue|wed|thu|fri|sat|sun)"
_BACKUP_WINDOW_RE = re.compile(rf"{_HH_MM}-{_HH_MM}")
_MAINTENANCE_WINDOW_RE = re.compile(rf"{_DAY}:{_HH_MM}-{_DAY}:{_HH_MM}", re.IGNORECASE)
_KMS_KEY_ARN_RE = re.compile(r"arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(?P<key_id>[A-Za-z0-9-]+)")
_KMS_KEY_ID_RE = re.compile(r"(mrk-)?[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}|mrk-[0-9a-f]{32}")

# Options compared with the described instance and the ModifyDBInstance parameter each one maps to.
MODIFIABLE_OPTIONS = (
    ("db_instance_class", "DBInstanceClass"),
    ("engine_version", "EngineVersion"),
    ("allocated_storage", "AllocatedStorage"),
    ("max_allocated_storage", "MaxAllocatedStorage"),
    ("storage_type", "StorageType"),
    ("multi_az", "MultiAZ"),
    ("db_subnet_group_name", "DBSubnetGroupName"),
    ("vpc_security_group_ids", "VpcSecurityGroupIds"),
    ("db_parameter_group_name", "DBParameterGroupName"),
    ("iam_database_authentication", "EnableIAMDatabaseAuthentication"),
    ("publicly_accessible", "PubliclyAccessible"),
    ("deletion_protection", "DeletionProtection"),
    ("backup_retention_period", "BackupRetentionPeriod"),
    ("preferred_backup_window", "PreferredBackupWindow"),
    ("preferred_maintenance_window", "PreferredMaintenanceWindow"),
    ("copy_tags_to_snapshot", "CopyTagsToSnapshot"),
    ("auto_minor_version_upgrade", "AutoMinorVersionUpgrade"),
)
CASE_INSENSITIVE_OPTIONS = (
    "db_subnet_group_name",
    "db_parameter_group_name",
    "preferred_backup_window",
    "preferred_maintenance_window",
)
# Options that only apply when the instance is created.
CREATE_ONLY_OPTIONS = ("engine", "availability_zone", "kms_key_id", "storage_encrypted", "master_username")
STATE_KEYS = (
    "engine",
    *(option for option, _api_name in MODIFIABLE_OPTIONS),
    "availability_zone",
    "storage_encrypted",
    "kms_key_id",
    "master_username",
    "manage_master_user_password",
    "master_user_secret_kms_key_id",
    "enable_cloudwatch_logs_exports",
    "tags",
)


class RdsInstanceParameterError(ValueError):
    """Raised when a module option is unusable; the message names the option."""

    def __init__(self, option, message):
        self.option = option
        super().__init__(f"{option}: {message}")


# --------------------------------------------------------------------------- validation


def _check(condition, option, message):
    if not condition:
        raise RdsInstanceParameterError(option, message)


def validate_params(params):
    """Check every option of the module, without any API call.

    Raises RdsInstanceParameterError naming the first offending option.
    """
    _validate_identity(params)
    _validate_storage(params)
    _validate_placement(params)
    _validate_credentials(params)
    _validate_operations(params)
    _validate_deletion(params)


def _validate_identity(params):
    identifier = params.get("db_instance_identifier")
    _check(
        identifier is not None and _DB_INSTANCE_IDENTIFIER_RE.fullmatch(str(identifier)),
        "db_instance_identifier",
        "must be 1 to 63 letters, digits or hyphens, start with a letter, and neither end with a hyphen nor "
        f"contain two consecutive hyphens, got {identifier!r}",
    )
    _check(
        params.get("engine", ENGINE) == ENGINE,
        "engine",
        f"only {ENGINE!r} is supported, got {params.get('engine')!r}",
    )
    version = params.get("engine_version")
    if version is not None:
        _check(
            _ENGINE_VERSION_RE.fullmatch(str(version)),
            "engine_version",
            f"must be a PostgreSQL version such as 17 or 16.4, got {version!r}",
        )
    instance_class = params.get("db_instance_class")
    if instance_class is not None:
        _check(
            _INSTANCE_CLASS_RE.fullmatch(str(instance_class)),
            "db_instance_class",
            f"must look like db.<family>.<size>, for example db.t4g.micro or db.r6g.large, got {instance_class!r}",
        )
    for key in params.get("tags") or {}:
        _check(
            not str(key).lower().startswith("aws:"),
            "tags",
            f"tag keys starting with 'aws:' are reserved, got {key!r}",
        )


def _validate_placement(params):
    if params.get("multi_az") and params.get("availability_zone"):
        raise RdsInstanceParameterError(
            "availability_zone",
            "availability_zone and multi_az=true are mutually exclusive: a Multi-AZ instance is placed by RDS "
            "across the zones of its subnet group; set multi_az=false to pin the instance to one zone",
        )
    for group_id in params.get("vpc_security_group_ids") or []:
        _check(
            _SECURITY_GROUP_ID_RE.fullmatch(str(group_id)),
            "vpc_security_group_ids",
            f"must be security group ids (sg-...), got {group_id!r}",
        )
    subnet_group = params.get("db_subnet_group_name")
    if subnet_group is not None:
        _check(
            _SUBNET_GROUP_NAME_RE.fullmatch(str(subnet_group)) and subnet_group != "default",
            "db_subnet_group_name",
            f"must be 1 to 255 lowercase letters, digits, spaces, '.', '_' or '-', and not 'default', "
            f"got {subnet_group!r}",
        )
    parameter_group = params.get("db_parameter_group_name")
    if parameter_group is not None:
        _check(
            _PARAMETER_GROUP_NAME_RE.fullmatch(str(parameter_group)),
            "db_parameter_group_name",
            f"must be letters, digits or hyphens, start with a letter, and neither end with a hyphen nor contain "
            f"two consecutive hyphens, got {parameter_group!r}",
        )


def _validate_credentials(params):
    username = params.get("master_username")
    if username is not None:
        _check(
            _MASTER_USERNAME_RE.fullmatch(str(username)) and str(username).lower() not in RESERVED_MASTER_USERNAMES,
            "master_username",
            "must be 1 to 63 letters, digits or underscores starting with a letter, and not a name reserved by "
            f"RDS ({', '.join(RESERVED_MASTER_USERNAMES)}), got {username!r}",
        )
    _check(
        params.get("manage_master_user_password", True) is True,
        "manage_master_user_password",
        "must be true: the master password is always generated and kept in AWS Secrets Manager by RDS; "
        "this module never takes a password",
    )
    if params.get("storage_encrypted") is False:
        _check(
            not params.get("kms_key_id"),
            "kms_key_id",
            "kms_key_id requires storage_encrypted=true (kms_key_id and storage_encrypted=false are mutually "
            "exclusive)",
        )


def _validate_operations(params):
    retention = params.get("backup_retention_period")
    if retention is not None:
        _check(
            1 <= retention <= MAX_BACKUP_RETENTION_DAYS,
            "backup_retention_period",
            f"must be between 1 and {MAX_BACKUP_RETENTION_DAYS} days (0 would turn automated backups off), "
            f"got {retention}",
        )
    backup_window = params.get("preferred_backup_window")
    if backup_window is not None:
        _check(
            _BACKUP_WINDOW_RE.fullmatch(str(backup_window)),
            "preferred_backup_window",
            f"must be hh24:mi-hh24:mi in UTC, for example 02:00-02:30, got {backup_window!r}",
        )
    maintenance_window = params.get("preferred_maintenance_window")
    if maintenance_window is not None:
        _check(
            _MAINTENANCE_WINDOW_RE.fullmatch(str(maintenance_window)),
            "preferred_maintenance_window",
            f"must be ddd:hh24:mi-ddd:hh24:mi in UTC, for example sun:03:00-sun:03:30, got {maintenance_window!r}",
        )
    for log_type in params.get("enable_cloudwatch_logs_exports") or []:
        _check(
            log_type in LOG_EXPORT_CHOICES,
            "enable_cloudwatch_logs_exports",
            f"PostgreSQL exports {', '.join(LOG_EXPORT_CHOICES)}; got {log_type!r}",
        )
    timeout = params.get("wait_timeout")
    if timeout is not None:
        _check(timeout >= 1, "wait_timeout", f"must be a positive number of seconds, got {timeout}")


def _validate_deletion(params):
    if params.get("state") != "absent" or params.get("skip_final_snapshot"):
        return
    snapshot = params.get("final_snapshot_identifier")
    _check(
        snapshot is not None,
        "final_snapshot_identifier",
        "is required with state=absent unless skip_final_snapshot=true",
    )
    _check(
        _SNAPSHOT_IDENTIFIER_RE.fullmatch(str(snapshot)),
        "final_snapshot_identifier",
        "must be 1 to 255 letters, digits or hyphens, start with a letter, and neither end with a hyphen nor "
        f"contain two consecutive hyphens, got {snapshot!r}",
    )


def _validate_storage(params):
    allocated = params.get("allocated_storage")
    if allocated is not None:
        _check(
            allocated >= MIN_ALLOCATED_STORAGE,
            "allocated_storage",
            f"must be at least {MIN_ALLOCATED_STORAGE} GiB, the PostgreSQL minimum for gp2/gp3 storage, "
            f"got {allocated}",
        )
        _check(
            allocated <= MAX_ALLOCATED_STORAGE,
            "allocated_storage",
            f"must be at most {MAX_ALLOCATED_STORAGE} GiB, got {allocated}",
        )
    maximum = params.get("max_allocated_storage")
    if maximum is not None:
        floor = allocated if allocated is not None else MIN_ALLOCATED_STORAGE
        _check(
            floor <= maximum <= MAX_ALLOCATED_STORAGE,
            "max_allocated_storage",
            f"must be between allocated_storage ({floor}) and {MAX_ALLOCATED_STORAGE} GiB, got {maximum}",
        )


# --------------------------------------------------------------------------- versions


def parse_version(version):
    """Return the numeric parts of an engine version ("16.4" -> (16, 4), "11.22-rds.20240418" -> (11, 22))."""
    if version is None:
        return ()
    base = str(version).split("-", 1)[0]
    parts = []
    for part in base.split("."):
        if not part.isdigit():
            break
        parts.append(int(part))
    return tuple(parts)


def major_version(version):
    parts = parse_version(version)
    return parts[0] if parts else None


def engine_version_change(desired, current):
    """Classify the move from the current to the desired engine version.

    Returns one of "none" (nothing to do: equal, desired is a prefix such as "17" for "17.2", or the desired minor
    is older than the current one, which auto minor version upgrades cause), "minor" (a newer minor of the same
    major), "major" (a newer major) or "downgrade" (an older major, which RDS cannot do).
    """
    if desired is None or current is None:
        return "none"
    want, have = parse_version(desired), parse_version(current)
    if not want or not have:
        return "none" if str(desired) == str(current) else "minor"
    if want[0] != have[0]:
        return "major" if want[0] > have[0] else "downgrade"
    if have[: len(want)] == want:
        return "none"
    return "minor" if want > have[: len(want)] else "none"


def parameter_group_family(version):
    """DB parameter group family of a PostgreSQL version ("16.4" -> "postgres16", "9.6.24" -> "postgres9.6")."""
    parts = parse_version(version)
    if not parts:
        return None
    if parts[0] < 10:
        return f"{ENGINE}{parts[0]}.{parts[1] if len(parts) > 1 else 0}"
    return f"{ENGINE}{parts[0]}"


# --------------------------------------------------------------------------- KMS keys


def kms_key_id_of(value):
    """Return the key id of a KMS key ARN or bare key id, or None for anything else (an alias)."""
    if not value:
        return None
    match = _KMS_KEY_ARN_RE.fullmatch(str(value))
    if match:
        return match.group("key_id")
    if _KMS_KEY_ID_RE.fullmatch(str(value)):
        return str(value)
    return None


def is_kms_alias(value):
    return bool(value) and ("alias/" in str(value))


def same_kms_key(desired, current):
    """True/False when the two references can be compared without an API call, None when one is an alias."""
    if desired == current:
        return True
    desired_id, current_id = kms_key_id_of(desired), kms_key_id_of(current)
    if desired_id is None or current_id is None:
        return None
    return desired_id == current_id


# --------------------------------------------------------------------------- desired / current state


def desired_state(params, engine_version=None, log_exports=None):
    """Normalised desired state from the module options.

    engine_version and log_exports, when given, replace the options of the same name (after a default version
    has been looked up, or the log types filtered to what the engine version can export).
    """
    version = engine_version if engine_version is not None else params.get("engine_version")
    exports = log_exports if log_exports is not None else params.get("enable_cloudwatch_logs_exports")
    security_groups = params.get("vpc_security_group_ids")
    maintenance_window = params.get("preferred_maintenance_window")
    return {
        "engine": ENGINE,
        "db_instance_class": params.get("db_instance_class"),
        "engine_version": None if version is None else str(version),
        "allocated_storage": params.get("allocated_storage"),
        "max_allocated_storage": params.get("max_allocated_storage"),
        "storage_type": params.get("storage_type"),
        "multi_az": params.get("multi_az"),
        "db_subnet_group_name": params.get("db_subnet_group_name"),
        "vpc_security_group_ids": None if security_groups is None else sorted(set(security_groups)),
        "db_parameter_group_name": params.get("db_parameter_group_name"),
        "iam_database_authentication": params.get("iam_database_authentication"),
        "publicly_accessible": params.get("publicly_accessible"),
        "deletion_protection": params.get("deletion_protection"),
        "backup_retention_period": params.get("backup_retention_period"),
        "preferred_backup_window": params.get("preferred_backup_window"),
        "preferred_maintenance_window": None if maintenance_window is None else maintenance_window.lower(),
        "copy_tags_to_snapshot": params.get("copy_tags_to_snapshot"),
        "auto_minor_version_upgrade": params.get("auto_minor_version_upgrade"),
        "availability_zone": params.get("availability_zone"),
        "storage_encrypted": params.get("storage_encrypted"),
        "kms_key_id": params.get("kms_key_id"),
        "master_username": params.get("master_username"),
        "manage_master_user_password": True,
        "master_user_secret_kms_key_id": params.get("master_user_secret_kms_key_id"),
        "enable_cloudwatch_logs_exports": None if exports is None else sorted(set(exports)),
        "tags": params.get("tags"),
    }


def current_state(instance, tags=None):
    """Normalised state of a DescribeDBInstances entry, with its pending modifications applied."""
    pending = instance.get("PendingModifiedValues") or {}
    exports = set(instance.get("EnabledCloudwatchLogsExports") or [])
    pending_exports = pending.get("PendingCloudwatchLogsExports") or {}
    exports |= set(pending_exports.get("LogTypesToEnable") or [])
    exports -= set(pending_exports.get("LogTypesToDisable") or [])
    parameter_groups = instance.get("DBParameterGroups") or []
    secret = instance.get("MasterUserSecret") or {}
    maintenance_window = instance.get("PreferredMaintenanceWindow")
    allocated = pending.get("AllocatedStorage", instance.get("AllocatedStorage"))
    maximum = instance.get("MaxAllocatedStorage")
    if tags is None:
        tags = {tag["Key"]: tag["Value"] for tag in instance.get("TagList") or []}
    return {
        "engine": instance.get("Engine"),
        "db_instance_class": pending.get("DBInstanceClass", instance.get("DBInstanceClass")),
        "engine_version": pending.get("EngineVersion", instance.get("EngineVersion")),
        "allocated_storage": allocated,
        # RDS leaves MaxAllocatedStorage out when storage autoscaling is off, which is the same as a
        # maximum equal to the allocated storage.
        "max_allocated_storage": maximum if maximum is not None else allocated,
        "storage_type": pending.get("StorageType", instance.get("StorageType")),
        "multi_az": pending.get("MultiAZ", instance.get("MultiAZ")),
        "db_subnet_group_name": pending.get(
            "DBSubnetGroupName", (instance.get("DBSubnetGroup") or {}).get("DBSubnetGroupName")
        ),
        "vpc_security_group_ids": sorted(
            group["VpcSecurityGroupId"]
            for group in instance.get("VpcSecurityGroups") or []
            if group.get("Status") not in ("removing", "inactive")
        ),
        "db_parameter_group_name": parameter_groups[0]["DBParameterGroupName"] if parameter_groups else None,
        "iam_database_authentication": pending.get(
            "IAMDatabaseAuthenticationEnabled", instance.get("IAMDatabaseAuthenticationEnabled", False)
        ),
        "publicly_accessible": instance.get("PubliclyAccessible"),
        "deletion_protection": instance.get("DeletionProtection"),
        "backup_retention_period": pending.get("BackupRetentionPeriod", instance.get("BackupRetentionPeriod")),
        "preferred_backup_window": instance.get("PreferredBackupWindow"),
        "preferred_maintenance_window": None if maintenance_window is None else maintenance_window.lower(),
        "copy_tags_to_snapshot": instance.get("CopyTagsToSnapshot"),
        "auto_minor_version_upgrade": instance.get("AutoMinorVersionUpgrade"),
        "availability_zone": instance.get("AvailabilityZone"),
        "storage_encrypted": instance.get("StorageEncrypted"),
        "kms_key_id": instance.get("KmsKeyId"),
        "master_username": instance.get("MasterUsername"),
        "manage_master_user_password": bool(secret.get("SecretArn")),
        "master_user_secret_kms_key_id": secret.get("KmsKeyId"),
        "enable_cloudwatch_logs_exports": sorted(exports),
        "tags": tags,
    }


# --------------------------------------------------------------------------- comparison


def _differs(option, desired, current):
    if option == "allocated_storage":
        # Storage only grows; autoscaling may have grown it past the configured size.
        return current is None or desired > current
    if option == "engine_version":
        return engine_version_change(desired, current) in ("minor", "major")
    if option in CASE_INSENSITIVE_OPTIONS:
        # RDS stores these names and windows in lowercase.
        return str(desired).lower() != str(current or "").lower()
    return desired != current


def compare(desired, current):
    """Return the options whose desired value differs from the current one, as {option: (current, desired)}.

    Only managed options (desired value not None) are compared. KMS keys, tags and the log exports are compared
    by their own helpers.
    """
    changes = {}
    for option, _api_name in MODIFIABLE_OPTIONS:
        want = desired.get(option)
        if want is None:
            continue
        have = current.get(option)
        if _differs(option, want, have):
            changes[option] = (have, want)
    return changes


def log_exports_change(desired, current):
    """Return (to_enable, to_disable) sorted lists, or ([], []) when the exports are not managed."""
    if desired is None:
        return [], []
    want, have = set(desired), set(current or [])
    return sorted(want - have), sorted(have - want)


def tags_change(desired, current, purge):
    """Return (to_set, to_remove): tags to add or update, tag keys to remove."""
    if desired is None:
        return {}, []
    current = current or {}
    to_set = {key: str(value) for key, value in desired.items() if current.get(key) != str(value)}
    to_remove = sorted(key for key in current if key not in desired and not key.lower().startswith("aws:"))
    return to_set, (to_remove if purge else [])


def modify_request(identifier, changes, *, exports_change, enable_managed_password, apply_immediately, params):
    """Build the ModifyDBInstance request, or None when there is nothing to modify."""
    request = {}
    api_names = dict(MODIFIABLE_OPTIONS)
    for option, (_have, want) in changes.items():
        request[api_names[option]] = want
        if option == "engine_version" and engine_version_change(want, changes[option][0]) == "major":
            request["AllowMajorVersionUpgrade"] = True
    to_enable, to_disable = exports_change
    if to_enable or to_disable:
        request["CloudwatchLogsExportConfiguration"] = {"EnableLogTypes": to_enable, "DisableLogTypes": to_disable}
    if enable_managed_password:
        request["ManageMasterUserPassword"] = True
        if params.get("master_user_secret_kms_key_id"):
            request["MasterUserSecretKmsKeyId"] = params["master_user_secret_kms_key_id"]
    if not request:
        return None
    request["DBInstanceIdentifier"] = identifier
    request["ApplyImmediately"] = bool(apply_immediately)
    return request


def create_request(identifier, desired, tags):
    """Build the CreateDBInstance request from the desired state."""
    request = {
        "DBInstanceIdentifier": identifier,
        "Engine": ENGINE,
        "EngineVersion": desired["engine_version"],
        "DBInstanceClass": desired["db_instance_class"],
        "AllocatedStorage": desired["allocated_storage"] or MIN_ALLOCATED_STORAGE,
        "StorageType": desired["storage_type"],
        "MultiAZ": desired["multi_az"],
        "MasterUsername": desired["master_username"],
        "ManageMasterUserPassword": True,
        "EnableIAMDatabaseAuthentication": desired["iam_database_authentication"],
        "PubliclyAccessible": desired["publicly_accessible"],
        "StorageEncrypted": desired["storage_encrypted"],
        "DeletionProtection": desired["deletion_protection"],
        "BackupRetentionPeriod": desired["backup_retention_period"],
        "CopyTagsToSnapshot": desired["copy_tags_to_snapshot"],
        "AutoMinorVersionUpgrade": desired["auto_minor_version_upgrade"],
    }
    optional = {
        "MaxAllocatedStorage": "max_allocated_storage",
        "AvailabilityZone": "availability_zone",
        "DBSubnetGroupName": "db_subnet_group_name",
        "VpcSecurityGroupIds": "vpc_security_group_ids",
        "DBParameterGroupName": "db_parameter_group_name",
        "KmsKeyId": "kms_key_id",
        "MasterUserSecretKmsKeyId": "master_user_secret_kms_key_id",
        "PreferredBackupWindow": "preferred_backup_window",
        "PreferredMaintenanceWindow": "preferred_maintenance_window",
        "EnableCloudwatchLogsExports": "enable_cloudwatch_logs_exports",
    }
    for api_name, option in optional.items():
        value = desired.get(option)
        if value is not None and value != []:
            request[api_name] = value
    if tags:
        request["Tags"] = [{"Key": key, "Value": str(value)} for key, value in sorted(tags.items())]
    return {key: value for key, value in request.items() if value is not None}


def predicted_state(desired, current):
    """The state the instance will have once the desired changes are made (for check mode and diffs).

    Tags are left to the caller, which knows whether they are purged.
    """
    if not current:
        return {key: desired.get(key) for key in STATE_KEYS if desired.get(key) is not None}
    after = dict(current)
    modifiable = dict(MODIFIABLE_OPTIONS)
    for key in STATE_KEYS:
        want = desired.get(key)
        if want is None or key == "tags" or key in CREATE_ONLY_OPTIONS:
            continue
        if key in modifiable and not _differs(key, want, current.get(key)):
            continue
        after[key] = want
    return after


def diff_view(state):
    """The part of a normalised state shown in a diff (never any secret; the module holds none)."""
    if not state:
        return {}
    return {key: state.get(key) for key in STATE_KEYS if state.get(key) is not None}


def waiter_config(timeout, delay=WAITER_DELAY_SECONDS):
    """WaiterConfig for botocore's RDS waiters that gives up after about timeout seconds."""
    delay = max(1, min(delay, int(timeout)))
    return {"Delay": delay, "MaxAttempts": max(1, math.ceil(int(timeout) / delay))}
