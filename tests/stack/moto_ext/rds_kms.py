"""RDS and KMS behaviour that stock moto (5.2.5) lacks, needed by the rds role and module.

* KMS: DisableKey, EnableKey, ScheduleKeyDeletion and CancelKeyDeletion accept a key ARN (moto indexes its keys
  by key id and fails with KeyError, an HTTP 500, on an ARN; amazon.aws.kms_key always passes the ARN).
* RDS DescribeDBParameterGroups with the name of a missing group fails with DBParameterGroupNotFound (moto returns
  an empty list, on which amazon.aws.rds_instance_param_group fails with IndexError instead of creating the group).
* RDS: a new DB parameter group of a postgres family lists engine-default parameters with DataType, ApplyType,
  IsModifiable, AllowedValues and Source (moto lists none, so amazon.aws.rds_instance_param_group reports every
  parameter as "not an available parameter" and sets nothing). Only a small catalog is modelled.
* RDS DescribeDBEngineVersions for postgres (moto: NotImplementedError, an HTTP 500), with DefaultOnly for the
  engine or the engine and major version combination, and ExportableLogTypes.
* RDS: every DB instance gets its own DbiResourceId (moto gives all of them db-M5ENSHXFPU6XHZ4G4ZEI5QIO2U).
* RDS: the Secrets Manager secret of ManageMasterUserPassword holds, as on RDS, ``{"username": <MasterUsername>,
  "password": <generated>}`` (moto stores ``admin`` and one fixed password for every instance).
"""

from __future__ import annotations

import functools
import json
import secrets
import string
from typing import Any

from moto.core.responses import ActionResult, PaginatedResult
from moto.kms.models import KmsBackend
from moto.moto_api._internal import mock_random as random
from moto.rds.exceptions import DBParameterGroupNotFoundError
from moto.rds.models import DBInstance, MasterUserSecret, RDSBackend
from moto.rds.responses import RDSResponse

# Engine defaults as RDS describes them in a new group (subset).
POSTGRES_PARAMETERS = (
    {
        "ParameterName": "rds.force_ssl",
        "Description": "Force SSL connections.",
        "Source": "engine-default",
        "ApplyType": "dynamic",
        "DataType": "boolean",
        "AllowedValues": "0,1",
        "IsModifiable": True,
        "ApplyMethod": "pending-reboot",
    },
    {
        "ParameterName": "log_connections",
        "Description": "Logs each successful connection.",
        "Source": "engine-default",
        "ApplyType": "dynamic",
        "DataType": "boolean",
        "AllowedValues": "0,1",
        "IsModifiable": True,
        "ApplyMethod": "pending-reboot",
    },
    {
        "ParameterName": "shared_preload_libraries",
        "Description": "Lists shared libraries to preload into server.",
        "Source": "engine-default",
        "ApplyType": "static",
        "DataType": "list",
        "IsModifiable": True,
        "ApplyMethod": "pending-reboot",
    },
)
# RDS for PostgreSQL 15 and later force TLS by default.
FORCE_SSL_DEFAULT_FROM_MAJOR = 15
POSTGRES_VERSIONS = {  # major: (default minor version, versions offered)
    "13": ("13.20", ["13.18", "13.20"]),
    "14": ("14.17", ["14.15", "14.17"]),
    "15": ("15.12", ["15.10", "15.12"]),
    "16": ("16.8", ["16.6", "16.8"]),
    "17": ("17.4", ["17.2", "17.4"]),
}
DEFAULT_POSTGRES_MAJOR = "17"
POSTGRES_LOG_TYPES = ["postgresql", "upgrade", "iam-db-auth-error"]
# RDS generates 28 printable ASCII characters other than '/', '@', '"' and space; quotes and backslashes are
# left out here too.
MASTER_PASSWORD_LENGTH = 28
MASTER_PASSWORD_ALPHABET = string.ascii_letters + string.digits + "!#$%&()*+,-.:;<=>?[]^_{|}~"


def _resolving_key_ids(method):
    @functools.wraps(method)
    def wrapper(self: KmsBackend, key_id: str, *args: Any, **kwargs: Any) -> Any:
        return method(self, self.get_key_id(key_id), *args, **kwargs)

    return wrapper


def _describe_db_parameter_groups(original):
    @functools.wraps(original)
    def wrapper(self: RDSBackend, kwargs: dict[str, Any]) -> Any:
        groups = original(self, kwargs)
        name = kwargs.get("db_parameter_group_name")
        if name and not groups:
            raise DBParameterGroupNotFoundError(name)
        return groups

    return wrapper


def _create_db_parameter_group(original):
    @functools.wraps(original)
    def wrapper(self: RDSBackend, kwargs: dict[str, Any]) -> Any:
        group = original(self, kwargs)
        family = group.family or ""
        if family.startswith("postgres"):
            major = family[len("postgres") :].split(".")[0]
            for parameter in POSTGRES_PARAMETERS:
                entry = dict(parameter)
                if entry["ParameterName"] == "rds.force_ssl":
                    forced = major.isdigit() and int(major) >= FORCE_SSL_DEFAULT_FROM_MAJOR
                    entry["ParameterValue"] = "1" if forced else "0"
                group.parameters[entry["ParameterName"]] = entry
        return group

    return wrapper


def _engine_versions(engine: str, version: str | None, default_only: bool) -> list[dict[str, Any]]:
    if engine != "postgres":
        return []
    majors = [version.split(".")[0]] if version else sorted(POSTGRES_VERSIONS, key=int)
    found = []
    for major in majors:
        if major not in POSTGRES_VERSIONS:
            continue
        default, offered = POSTGRES_VERSIONS[major]
        for candidate in offered:
            if version and "." in version and candidate != version:
                continue
            if default_only and candidate != default:
                continue
            if default_only and not version and major != DEFAULT_POSTGRES_MAJOR:
                continue
            found.append(
                {
                    "Engine": "postgres",
                    "EngineVersion": candidate,
                    "DBParameterGroupFamily": f"postgres{major}",
                    "DBEngineDescription": "PostgreSQL",
                    "DBEngineVersionDescription": f"PostgreSQL {candidate}",
                    "ExportableLogTypes": list(POSTGRES_LOG_TYPES),
                    "SupportsLogExportsToCloudwatchLogs": True,
                    "Status": "available",
                }
            )
    return found


def _describe_db_engine_versions(self: RDSResponse) -> ActionResult:
    params = self.params
    versions = _engine_versions(
        params.get("Engine") or "postgres",
        params.get("EngineVersion"),
        str(params.get("DefaultOnly", "false")).lower() == "true",
    )
    return PaginatedResult({"DBEngineVersions": versions})


def _db_instance_init(original):
    @functools.wraps(original)
    def wrapper(self: DBInstance, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        alphabet = string.ascii_uppercase + string.digits
        self.dbi_resource_id = "db-" + "".join(random.choice(alphabet) for _ in range(26))

    return wrapper


def _master_user_secret_string(self: MasterUserSecret) -> str:
    username = getattr(self.resource, "master_username", None) or "admin"
    password = "".join(secrets.choice(MASTER_PASSWORD_ALPHABET) for _ in range(MASTER_PASSWORD_LENGTH))
    return json.dumps({"username": username, "password": password})


@functools.cache  # patching twice would wrap the patched methods again
def install() -> None:
    for name in ("disable_key", "enable_key", "schedule_key_deletion", "cancel_key_deletion"):
        setattr(KmsBackend, name, _resolving_key_ids(getattr(KmsBackend, name)))
    RDSBackend.describe_db_parameter_groups = _describe_db_parameter_groups(RDSBackend.describe_db_parameter_groups)
    RDSBackend.create_db_parameter_group = _create_db_parameter_group(RDSBackend.create_db_parameter_group)
    RDSResponse.describe_db_engine_versions = _describe_db_engine_versions
    DBInstance.__init__ = _db_instance_init(DBInstance.__init__)
    MasterUserSecret._generate_secret_string = _master_user_secret_string
