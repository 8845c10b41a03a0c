# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.layered.eks_rds.plugins.filter.irsa import (
    FilterModule,
    irsa_trust_policy,
    is_dns1123_label,
    is_dns1123_subdomain,
    rds_connect_policy,
    rds_db_user_arn,
)

ISSUER = "https://oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
HOST_PATH = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
PROVIDER = f"arn:aws:iam::123456789012:oidc-provider/{HOST_PATH}"
WORKLOAD = {"name": "metabase", "namespace": "metabase", "service_account": "metabase"}
DBI = "db-ABCDEFGHIJKLMNOPQRSTUVWXY0"
CONNECT = {"dbi_resource_id": DBI, "db_user": "metabase"}


def rejected(prefix, function, *args, **kwargs):
    with pytest.raises(AnsibleFilterError) as raised:
        function(*args, **kwargs)
    message = str(raised.value)
    assert message.startswith(f"{prefix}: "), message
    return message


def test_registered_filters():
    assert FilterModule().filters() == {
        "irsa_trust_policy": irsa_trust_policy,
        "rds_connect_policy": rds_connect_policy,
    }


# --------------------------------------------------------------------------- irsa_trust_policy


def test_irsa_trust_policy_is_exactly_one_federated_statement_on_sub_and_aud():
    assert irsa_trust_policy(WORKLOAD, PROVIDER, ISSUER) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": PROVIDER},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{HOST_PATH}:sub": "system:serviceaccount:metabase:metabase",
                        f"{HOST_PATH}:aud": "sts.amazonaws.com",
                    }
                },
            }
        ],
    }


def test_irsa_trust_policy_is_json_serialisable_and_has_no_wildcard():
    text = json.dumps(irsa_trust_policy(WORKLOAD, PROVIDER, ISSUER))
    assert "*" not in text
    assert "StringLike" not in text


def test_irsa_trust_policy_normalises_the_issuer_like_iam():
    issuer = "https://OIDC.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE/"
    statement = irsa_trust_policy(WORKLOAD, PROVIDER, issuer)["Statement"][0]
    assert sorted(statement["Condition"]["StringEquals"]) == [f"{HOST_PATH}:aud", f"{HOST_PATH}:sub"]


def test_irsa_trust_policy_keeps_a_port_in_the_host_path():
    provider = "arn:aws:iam::123456789012:oidc-provider/127.0.0.1:16443"
    conditions = irsa_trust_policy(WORKLOAD, provider, "https://127.0.0.1:16443")["Statement"][0]["Condition"]
    assert conditions == {
        "StringEquals": {
            "127.0.0.1:16443:sub": "system:serviceaccount:metabase:metabase",
            "127.0.0.1:16443:aud": "sts.amazonaws.com",
        }
    }


def test_irsa_trust_policy_for_a_dotted_service_account_and_explicit_mode():
    workload = {"namespace": "apps", "service_account": "reports.v2", "mode": "irsa"}
    statement = irsa_trust_policy(workload, provider_arn=PROVIDER, issuer_url=ISSUER)["Statement"][0]
    assert statement["Condition"]["StringEquals"][f"{HOST_PATH}:sub"] == "system:serviceaccount:apps:reports.v2"


def test_irsa_trust_policy_other_partition():
    provider = f"arn:aws-cn:iam::123456789012:oidc-provider/{HOST_PATH}"
    assert irsa_trust_policy(WORKLOAD, provider, ISSUER)["Statement"][0]["Principal"] == {"Federated": provider}


def test_pod_identity_trust_policy():
    workload = dict(WORKLOAD, mode="pod_identity")
    assert irsa_trust_policy(workload) == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "pods.eks.amazonaws.com"},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
            }
        ],
    }


def test_pod_identity_trust_policy_ignores_the_issuer():
    workload = dict(WORKLOAD, mode="pod_identity")
    assert irsa_trust_policy(workload, PROVIDER, "http://ignored") == irsa_trust_policy(workload)


@pytest.mark.parametrize(
    ("issuer", "fragment"),
    [
        ("http://oidc.example.com/id/1", "https"),
        ("oidc.example.com/id/1", "https://"),
        ("", "non-empty"),
        (None, "non-empty"),
        ("https://user@oidc.example.com/id/1", "user information"),
        ("https://oidc.example.com/id/1?x=1", "query string"),
        ("https://oidc.example.com/id/1#x", "fragment"),
    ],
)
def test_irsa_trust_policy_rejects_bad_issuers(issuer, fragment):
    message = rejected("issuer_url", irsa_trust_policy, WORKLOAD, PROVIDER, issuer)
    assert fragment in message


@pytest.mark.parametrize(
    "provider",
    [
        None,
        "",
        "arn:aws:iam::123456789012:role/metabase",
        "arn:aws:iam::12345:oidc-provider/" + HOST_PATH,
        "arn:aws:iam::123456789012:oidc-provider/",
    ],
)
def test_irsa_trust_policy_rejects_bad_provider_arns(provider):
    rejected("provider_arn", irsa_trust_policy, WORKLOAD, provider, ISSUER)


def test_irsa_trust_policy_rejects_the_provider_of_another_issuer():
    other = "arn:aws:iam::123456789012:oidc-provider/oidc.eks.eu-west-1.amazonaws.com/id/OTHER"
    message = rejected("provider_arn", irsa_trust_policy, WORKLOAD, other, ISSUER)
    assert "not of the issuer" in message


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("namespace", "Metabase"),
        ("namespace", "meta_base"),
        ("namespace", "-metabase"),
        ("namespace", "a" * 64),
        ("namespace", "meta.base"),
        ("namespace", ""),
        ("namespace", None),
        ("service_account", "Metabase"),
        ("service_account", "meta_base"),
        ("service_account", "metabase."),
        ("service_account", "meta..base"),
        ("service_account", "*"),
        ("service_account", "a" * 254),
        ("service_account", None),
    ],
)
def test_irsa_trust_policy_rejects_non_dns_names(field, value):
    workload = dict(WORKLOAD, **{field: value})
    message = rejected(
        f"irsa_workloads[0].{field}", irsa_trust_policy, workload, PROVIDER, ISSUER, variable="irsa_workloads[0]"
    )
    assert "DNS-1123" in message


@pytest.mark.parametrize("mode", ["pod-identity", "IRSA", "kube2iam"])
def test_irsa_trust_policy_rejects_unknown_modes(mode):
    rejected("workload.mode", irsa_trust_policy, dict(WORKLOAD, mode=mode), PROVIDER, ISSUER)


def test_irsa_trust_policy_rejects_a_non_dict_workload():
    rejected("workload", irsa_trust_policy, "metabase", PROVIDER, ISSUER)


@pytest.mark.parametrize("audience", ["", "*", "sts.*.com"])
def test_irsa_trust_policy_rejects_bad_audiences(audience):
    rejected("audience", irsa_trust_policy, WORKLOAD, PROVIDER, ISSUER, audience=audience)


def test_dns_helpers():
    assert is_dns1123_label("a")
    assert is_dns1123_label("a" * 63)
    assert not is_dns1123_label("a" * 64)
    assert is_dns1123_subdomain("a.b-c.d")
    assert is_dns1123_subdomain(".".join(["a" * 63] * 3) + "." + "a" * 61)
    assert not is_dns1123_subdomain("a" * 254)
    assert not is_dns1123_subdomain(42)


# --------------------------------------------------------------------------- rds_connect_policy


def test_rds_connect_policy_is_one_statement_on_one_db_user():
    assert rds_connect_policy(CONNECT, "eu-west-1", "123456789012") == {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "rds-db:connect",
                "Resource": f"arn:aws:rds-db:eu-west-1:123456789012:dbuser:{DBI}/metabase",
            }
        ],
    }


def test_rds_connect_policy_entry_values_win_over_the_defaults():
    entry = dict(CONNECT, region="us-east-2", account_id="210987654321")
    assert rds_db_user_arn(entry, region="eu-west-1", account_id="123456789012") == (
        f"arn:aws:rds-db:us-east-2:210987654321:dbuser:{DBI}/metabase"
    )


def test_rds_connect_policy_accepts_an_integer_account_id_and_other_partitions():
    assert rds_db_user_arn(CONNECT, "cn-north-1", 123456789012, partition="aws-cn") == (
        f"arn:aws-cn:rds-db:cn-north-1:123456789012:dbuser:{DBI}/metabase"
    )


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("dbi_resource_id", "*", "wildcard"),
        ("dbi_resource_id", "db-*", "wildcard"),
        ("dbi_resource_id", "db-ABC?", "wildcard"),
        ("db_user", "*", "wildcard"),
        ("db_user", "meta*", "wildcard"),
        ("region", "*", "wildcard"),
        ("account_id", "*", "wildcard"),
        ("dbi_resource_id", "metabase-db", "DbiResourceId"),
        ("dbi_resource_id", "db-abcdef", "DbiResourceId"),
        ("dbi_resource_id", "db-", "DbiResourceId"),
        ("dbi_resource_id", "", "non-empty"),
        ("dbi_resource_id", None, "non-empty"),
        ("db_user", "meta/base", "database user"),
        ("db_user", "1metabase", "database user"),
        ("db_user", "a" * 64, "database user"),
        ("db_user", "", "non-empty"),
        ("region", "Europe", "region"),
        ("account_id", "1234", "account id"),
    ],
)
def test_rds_connect_policy_rejects_bad_values(field, value, fragment):
    entry = {**CONNECT, "region": "eu-west-1", "account_id": "123456789012", field: value}
    message = rejected(
        f"irsa_workloads[0].rds_connect.{field}",
        rds_connect_policy,
        entry,
        variable="irsa_workloads[0].rds_connect",
    )
    assert fragment in message


def test_rds_connect_policy_requires_a_region_and_an_account():
    rejected("rds_connect.region", rds_connect_policy, CONNECT, account_id="123456789012")
    rejected("rds_connect.account_id", rds_connect_policy, CONNECT, "eu-west-1")


def test_rds_connect_policy_rejects_a_non_dict_and_a_bad_partition():
    rejected("rds_connect", rds_connect_policy, DBI, "eu-west-1", "123456789012")
    rejected("partition", rds_connect_policy, CONNECT, "eu-west-1", "123456789012", partition="*")
