# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Trust policies and rds-db:connect policies for the IAM roles of Kubernetes workloads."""

import re

from ansible.errors import AnsibleFilterError

from ansible_collections.layered.eks_rds.plugins.module_utils.oidc import OidcParameterError, normalize_issuer_url

POLICY_VERSION = "2012-10-17"
DEFAULT_AUDIENCE = "sts.amazonaws.com"
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
MODES = ("irsa", "pod_identity")

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS1123_SUBDOMAIN_PART = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
PROVIDER_ARN = re.compile(r"^arn:(aws[a-z-]*):iam::([0-9]{12}):oidc-provider/(\S+)$")
DBI_RESOURCE_ID = re.compile(r"^db-[A-Z0-9]+$")
# PostgreSQL role names as RDS accepts them for IAM authentication (no IAM wildcard characters).
DB_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$.@-]{0,62}$")
REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-[0-9]+$")
ACCOUNT_ID = re.compile(r"^[0-9]{12}$")
PARTITION = re.compile(r"^aws(-[a-z]+)*$")
IAM_WILDCARDS = ("*", "?")


def _fail(variable, field, message):
    name = f"{variable}.{field}" if field else variable
    raise AnsibleFilterError(f"{name}: {message}")


def _text(variable, field, value):
    if not isinstance(value, str) or not value:
        _fail(variable, field, f"must be a non-empty string, got {value!r}")
    return value


def is_dns1123_label(value):
    """True for a Kubernetes DNS-1123 label (namespace names): lower-case alphanumerics and '-', at most 63."""
    return isinstance(value, str) and DNS1123_LABEL.match(value) is not None


def is_dns1123_subdomain(value):
    """True for a Kubernetes DNS-1123 subdomain (service account names), at most 253 characters."""
    if not isinstance(value, str) or not 0 < len(value) <= 253:
        return False
    return all(DNS1123_SUBDOMAIN_PART.match(part) for part in value.split("."))


def _workload(workload, variable):
    if not isinstance(workload, dict):
        _fail(variable, None, f"must be a dict with namespace and service_account, got {type(workload).__name__}")
    mode = workload.get("mode") or "irsa"
    if mode not in MODES:
        _fail(variable, "mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    namespace = workload.get("namespace")
    if not is_dns1123_label(namespace):
        _fail(
            variable,
            "namespace",
            f"{namespace!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            "starting and ending with a letter or digit, at most 63 characters)",
        )
    service_account = workload.get("service_account")
    if not is_dns1123_subdomain(service_account):
        _fail(
            variable,
            "service_account",
            f"{service_account!r} is not a DNS-1123 subdomain (lower-case letters, digits, '-' and '.', "
            "each part starting and ending with a letter or digit, at most 253 characters)",
        )
    return mode, namespace, service_account


def irsa_trust_policy(workload, provider_arn=None, issuer_url=None, audience=DEFAULT_AUDIENCE, variable="workload"):
    """Return the trust policy document of the role of ``workload`` (see DOCUMENTATION)."""
    mode, namespace, service_account = _workload(workload, variable)

    if mode == "pod_identity":
        return {
            "Version": POLICY_VERSION,
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
                    "Action": ["sts:AssumeRole", "sts:TagSession"],
                }
            ],
        }

    try:
        _url, host_path = normalize_issuer_url(issuer_url, option="issuer_url")
    except OidcParameterError as e:
        raise AnsibleFilterError(str(e)) from None
    match = PROVIDER_ARN.match(provider_arn) if isinstance(provider_arn, str) else None
    if match is None:
        raise AnsibleFilterError(
            f"provider_arn: {provider_arn!r} is not an IAM OIDC provider ARN "
            "(arn:<partition>:iam::<account>:oidc-provider/<issuer host path>)"
        )
    if match.group(3) != host_path:
        raise AnsibleFilterError(
            f"provider_arn: {provider_arn!r} is the provider of {match.group(3)!r}, not of the issuer {host_path!r}"
        )
    audience = _text("audience", None, audience)
    if any(wildcard in audience for wildcard in IAM_WILDCARDS):
        raise AnsibleFilterError(f"audience: {audience!r} must not contain the IAM wildcards * or ?")

    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{host_path}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{host_path}:aud": audience,
                    }
                },
            }
        ],
    }


def rds_db_user_arn(rds_connect, region=None, account_id=None, partition="aws", variable="rds_connect"):
    """Return ``arn:<partition>:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<db user>``."""
    if not isinstance(rds_connect, dict):
        _fail(variable, None, f"must be a dict with dbi_resource_id and db_user, got {type(rds_connect).__name__}")

    values = {
        "dbi_resource_id": rds_connect.get("dbi_resource_id"),
        "db_user": rds_connect.get("db_user"),
        "region": rds_connect.get("region") or region,
        "account_id": rds_connect.get("account_id") or account_id,
    }
    if values["account_id"] is not None and not isinstance(values["account_id"], str):
        values["account_id"] = str(values["account_id"])
    for field, value in values.items():
        _text(variable, field, value)
        if any(wildcard in value for wildcard in IAM_WILDCARDS):
            _fail(
                variable,
                field,
                f"{value!r} contains an IAM wildcard (* or ?); rds-db:connect is granted on exactly one "
                "DB instance and one database user",
            )

    if not DBI_RESOURCE_ID.match(values["dbi_resource_id"]):
        _fail(
            variable,
            "dbi_resource_id",
            f"{values['dbi_resource_id']!r} is not a DbiResourceId (db-<upper-case letters and digits>, the "
            "dbi_resource_id of rds_outputs); the instance identifier does not work in rds-db:connect policies",
        )
    if not DB_USER.match(values["db_user"]):
        _fail(
            variable,
            "db_user",
            f"{values['db_user']!r} must be a database user name: 1 to 63 letters, digits or _ $ . @ -, "
            "starting with a letter or _",
        )
    if not REGION.match(values["region"]):
        _fail(variable, "region", f"{values['region']!r} is not an AWS region name such as eu-west-1")
    if not ACCOUNT_ID.match(values["account_id"]):
        _fail(variable, "account_id", f"{values['account_id']!r} is not a 12-digit AWS account id")
    if not isinstance(partition, str) or not PARTITION.match(partition):
        raise AnsibleFilterError(f"partition: {partition!r} is not an AWS partition such as aws or aws-cn")

    return (
        f"arn:{partition}:rds-db:{values['region']}:{values['account_id']}:dbuser:"
        f"{values['dbi_resource_id']}/{values['db_user']}"
    )


def rds_connect_policy(rds_connect, region=None, account_id=None, partition="aws", variable="rds_connect"):
    """Return the policy allowing only rds-db:connect as one database user of one instance."""
    return {
        "Version": POLICY_VERSION,
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": rds_db_user_arn(rds_connect, region, account_id, partition, variable),
            }
        ],
    }


class FilterModule:
    """layered.eks_rds IAM policy filters for Kubernetes workloads."""

    def filters(self):
        return {
            "irsa_trust_policy": irsa_trust_policy,
            "rds_connect_policy": rds_connect_policy,
        }
