# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""ec2_security_group_peer_rules against the stack's extended moto server (fixtures in conftest.py)."""

from unittest import mock

import pytest
from _harness import fail, record_retrying_clients, succeed
from botocore.exceptions import ClientError

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.layered.eks_rds.plugins.modules import ec2_security_group_peer_rules as peer_rules

pytestmark = pytest.mark.usefixtures("moto_eks_env")

MISSING_GROUP = "sg-0123456789abcdef0"
POSTGRES = dict(protocol="tcp", from_port=5432, description="PostgreSQL from the metabase pods")
DNS = [
    dict(protocol="tcp", from_port=53, description="DNS (TCP) from the metabase pods"),
    dict(protocol="udp", from_port=53, description="DNS (UDP) from the metabase pods"),
]
WRITES = {
    "AuthorizeSecurityGroupIngress",
    "AuthorizeSecurityGroupEgress",
    "RevokeSecurityGroupIngress",
    "RevokeSecurityGroupEgress",
    "ModifySecurityGroupRules",
    "UpdateSecurityGroupRuleDescriptionsIngress",
    "UpdateSecurityGroupRuleDescriptionsEgress",
}


@pytest.fixture
def ec2(moto_eks_clients):
    return moto_eks_clients["ec2"]


@pytest.fixture
def groups(ec2, moto_eks_network):
    """A target group (the database's), the peer group (the pods'), and an unrelated group, in one VPC."""
    vpc_id = moto_eks_network["vpc_id"]

    def create(name):
        return ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc_id)["GroupId"]

    return dict(target=create("rds"), peer=create("pods"), other=create("other"))


@pytest.fixture
def run(run_eks_module):
    def _run(args, check_mode=False):
        return run_eks_module(peer_rules, args, check_mode=check_mode)

    return _run


class _RecordingClient:
    """Passes calls through to the module's client, recording each call's name and ``aws_retry``."""

    def __init__(self, client, calls):
        self._client = client
        self._calls = calls

    def __getattr__(self, name):
        attr = getattr(self._client, name)
        if name in ("get_paginator", "can_paginate") or not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._calls.append((name, kwargs.get("aws_retry")))
            return attr(*args, **kwargs)

        return call


@pytest.fixture
def api(monkeypatch):
    """What the module sends: ``operations`` every EC2 operation (paginated ones too), ``calls`` the direct calls."""
    recorded = dict(operations=[], calls=[])
    real_client = AnsibleAWSModule.client

    def client(self, service, *args, **kwargs):
        wrapped = real_client(self, service, *args, **kwargs)
        wrapped.client.meta.events.register(
            "before-call.ec2", lambda model, **_: recorded["operations"].append(model.name)
        )
        return _RecordingClient(wrapped, recorded["calls"])

    monkeypatch.setattr(AnsibleAWSModule, "client", client)
    return recorded


def writes(api):
    return [name for name in api["operations"] if name in WRITES]


def all_rules(ec2, group_id):
    """Every rule of the group, read back: ``{rule id: (direction, protocol, from, to, source, description)}``."""
    described = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [group_id]}])
    result = {}
    for item in described["SecurityGroupRules"]:
        direction = "egress" if item["IsEgress"] else "ingress"
        source = (item.get("ReferencedGroupInfo") or {}).get("GroupId") or item.get("CidrIpv4") or item.get("CidrIpv6")
        result[item["SecurityGroupRuleId"]] = (
            direction,
            item["IpProtocol"],
            item["FromPort"],
            item["ToPort"],
            source,
            item.get("Description"),
        )
    return result


def peer_rules_of(ec2, group_id, peer_group_id):
    """The rules of the group that reference the peer, read back, without IDs: a sorted list of tuples."""
    return sorted(rule[:4] + rule[5:] for rule in all_rules(ec2, group_id).values() if rule[4] == peer_group_id)


def other_rules_of(ec2, group_id, peer_group_id):
    return {rule_id: rule for rule_id, rule in all_rules(ec2, group_id).items() if rule[4] != peer_group_id}


def authorize(ec2, group_id, peer_group_id, protocol="tcp", port=3306, description="MySQL", egress=False):
    permission = {"IpProtocol": protocol, "UserIdGroupPairs": [{"GroupId": peer_group_id, "Description": description}]}
    if protocol != "-1":
        permission.update(FromPort=port, ToPort=port)
    call = ec2.authorize_security_group_egress if egress else ec2.authorize_security_group_ingress
    return call(GroupId=group_id, IpPermissions=[permission])["SecurityGroupRules"][0]["SecurityGroupRuleId"]


def add_unrelated_rules(ec2, groups):
    """A CIDR rule, a rule from another group on the managed port, and an egress rule to another group."""
    ec2.authorize_security_group_ingress(
        GroupId=groups["target"],
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}
        ],
    )
    authorize(ec2, groups["target"], groups["other"], port=5432, description="PostgreSQL from the other app")
    authorize(ec2, groups["target"], groups["other"], protocol="-1", description="All to the other app", egress=True)


def args(groups, rules=None, **overrides):
    result = dict(group_id=groups["target"], peer_group_id=groups["peer"], rules=[POSTGRES] if rules is None else rules)
    result.update(overrides)
    return result


# ------------------------------------------------------------------ present


def test_adds_the_listed_rules(run, ec2, groups):
    result = succeed(run, args(groups))

    assert result["changed"] is True
    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == [
        ("ingress", "tcp", 5432, 5432, "PostgreSQL from the metabase pods")
    ]
    [added] = result["added"]
    assert added["security_group_rule_id"] in all_rules(ec2, groups["target"])
    assert added == dict(
        security_group_rule_id=added["security_group_rule_id"],
        direction="ingress",
        protocol="tcp",
        from_port=5432,
        to_port=5432,
        description="PostgreSQL from the metabase pods",
    )
    assert result["rules"] == [added]
    assert result["removed"] == []
    assert result["updated"] == []


def test_second_run_changes_nothing_and_writes_nothing(run, ec2, groups, api):
    rules = [POSTGRES, *DNS, dict(direction="egress", protocol="all", description="Everything to the pods")]
    first = succeed(run, args(groups, rules))
    api["operations"].clear()

    second = succeed(run, args(groups, rules))

    assert second["changed"] is False
    assert writes(api) == []
    assert second["rules"] == first["rules"]
    assert second["added"] == second["removed"] == second["updated"] == []
    assert second["diff"]["before"] == second["diff"]["after"]
    assert len(peer_rules_of(ec2, groups["target"], groups["peer"])) == 4


def test_every_api_call_opts_in_to_retries(run, groups, api):
    succeed(run, args(groups, [POSTGRES, dict(direction="egress", protocol="udp", from_port=53, description="DNS")]))
    succeed(run, args(groups, [dict(POSTGRES, description="PostgreSQL")]))
    succeed(run, args(groups, state="absent"))

    names = {name for name, _ in api["calls"]}
    assert {"describe_security_groups", "authorize_security_group_ingress", "authorize_security_group_egress"} <= names
    assert {"revoke_security_group_ingress", "revoke_security_group_egress", "modify_security_group_rules"} <= names
    assert all(retry is True for _, retry in api["calls"]), api["calls"]


def test_client_uses_jittered_backoff(run, groups, monkeypatch):
    calls, decorators = record_retrying_clients(monkeypatch, peer_rules)

    succeed(run, args(groups))

    assert calls == [("ec2", decorators[0])]


def test_changed_description_is_updated_in_place(run, ec2, groups, api):
    first = succeed(run, args(groups, [dict(POSTGRES, description="PostgreSQL")]))
    [rule_id] = [item["security_group_rule_id"] for item in first["rules"]]
    api["operations"].clear()

    result = succeed(run, args(groups))

    assert result["changed"] is True
    assert writes(api) == ["ModifySecurityGroupRules"]
    assert [rule_id] == [r for r, rule in all_rules(ec2, groups["target"]).items() if rule[4] == groups["peer"]]
    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == [
        ("ingress", "tcp", 5432, 5432, "PostgreSQL from the metabase pods")
    ]
    assert result["updated"] == [
        dict(first["rules"][0], description=POSTGRES["description"], previous_description="PostgreSQL")
    ]
    assert result["added"] == result["removed"] == []
    assert succeed(run, args(groups))["changed"] is False


def test_managed_rules_that_are_not_listed_are_revoked(run, ec2, groups):
    mysql = authorize(ec2, groups["target"], groups["peer"])
    ssh_out = authorize(ec2, groups["target"], groups["peer"], port=22, description="SSH", egress=True)

    result = succeed(run, args(groups))

    assert result["changed"] is True
    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == [
        ("ingress", "tcp", 5432, 5432, "PostgreSQL from the metabase pods")
    ]
    assert sorted(item["security_group_rule_id"] for item in result["removed"]) == sorted([mysql, ssh_out])
    assert {(item["direction"], item["from_port"], item["description"]) for item in result["removed"]} == {
        ("ingress", 3306, "MySQL"),
        ("egress", 22, "SSH"),
    }


def test_a_new_port_range_replaces_the_rule(run, ec2, groups):
    succeed(run, args(groups, [dict(protocol="tcp", from_port=8000, to_port=8080, description="HTTP")]))

    result = succeed(run, args(groups, [dict(protocol="tcp", from_port=8000, to_port=8090, description="HTTP")]))

    assert [(item["from_port"], item["to_port"]) for item in result["removed"]] == [(8000, 8080)]
    assert [(item["from_port"], item["to_port"]) for item in result["added"]] == [(8000, 8090)]
    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == [("ingress", "tcp", 8000, 8090, "HTTP")]


def test_icmp_and_all_rules_round_trip(run, ec2, groups):
    rules = [
        dict(protocol="icmp", from_port=8, description="Ping from the pods"),
        dict(protocol="icmp", from_port=3, to_port=4, description="Fragmentation needed"),
        dict(direction="egress", protocol="icmp", description="Any ICMP to the pods"),
        dict(direction="egress", protocol="all", from_port=-1, to_port=-1, description="Everything to the pods"),
    ]

    result = succeed(run, args(groups, rules))

    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == [
        ("egress", "-1", -1, -1, "Everything to the pods"),
        ("egress", "icmp", -1, -1, "Any ICMP to the pods"),
        ("ingress", "icmp", 3, 4, "Fragmentation needed"),
        ("ingress", "icmp", 8, -1, "Ping from the pods"),
    ]
    assert [(item["direction"], item["protocol"], item["from_port"], item["to_port"]) for item in result["rules"]] == [
        ("egress", "all", -1, -1),
        ("egress", "icmp", -1, -1),
        ("ingress", "icmp", 3, 4),
        ("ingress", "icmp", 8, -1),
    ]
    assert succeed(run, args(groups, rules))["changed"] is False


def test_empty_rule_list_revokes_every_managed_rule(run, ec2, groups):
    succeed(run, args(groups, DNS))

    result = succeed(run, args(groups, []))

    assert result["changed"] is True
    assert len(result["removed"]) == 2
    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == []


def test_unrelated_rules_are_untouched_by_present(run, ec2, groups):
    add_unrelated_rules(ec2, groups)
    authorize(ec2, groups["target"], groups["peer"])  # managed, not listed: revoked
    unrelated = other_rules_of(ec2, groups["target"], groups["peer"])
    # the default egress rule, the CIDR rule and the two rules referencing the other group
    assert len(unrelated) == 4

    succeed(run, args(groups, [POSTGRES, dict(direction="egress", protocol="all", description="All to the pods")]))

    assert other_rules_of(ec2, groups["target"], groups["peer"]) == unrelated


def test_rules_of_the_peer_group_itself_are_untouched(run, ec2, groups):
    back = authorize(ec2, groups["peer"], groups["target"], port=5432, description="Replies", egress=True)

    succeed(run, args(groups))
    succeed(run, args(groups, state="absent"))

    assert back in all_rules(ec2, groups["peer"])


def test_a_concurrent_writer_adding_the_same_rule_is_tolerated(run, ec2, groups, monkeypatch):
    authorize(ec2, groups["target"], groups["peer"], port=5432, description=POSTGRES["description"])
    real_read = peer_rules.PeerRules.read
    reads = []

    def stale_first_read(self):
        reads.append(self)
        return [] if len(reads) == 1 else real_read(self)

    monkeypatch.setattr(peer_rules.PeerRules, "read", stale_first_read)

    result = succeed(run, args(groups, [POSTGRES, dict(protocol="tcp", from_port=6432, description="PgBouncer")]))

    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == [
        ("ingress", "tcp", 5432, 5432, "PostgreSQL from the metabase pods"),
        ("ingress", "tcp", 6432, 6432, "PgBouncer"),
    ]
    assert [item["from_port"] for item in result["added"]] == [6432]
    assert [item["from_port"] for item in result["rules"]] == [5432, 6432]


# ------------------------------------------------------------------ absent


def test_absent_revokes_only_the_rules_referencing_the_peer(run, ec2, groups):
    add_unrelated_rules(ec2, groups)
    succeed(run, args(groups, [POSTGRES, *DNS, dict(direction="egress", protocol="all", description="All")]))
    unrelated = other_rules_of(ec2, groups["target"], groups["peer"])

    result = succeed(run, dict(group_id=groups["target"], peer_group_id=groups["peer"], state="absent"))

    assert result["changed"] is True
    assert len(result["removed"]) == 4
    assert result["rules"] == []
    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == []
    assert other_rules_of(ec2, groups["target"], groups["peer"]) == unrelated
    # nothing references the peer any more, so it can be deleted
    ec2.delete_security_group(GroupId=groups["peer"])


def test_absent_twice_changes_nothing(run, groups, api):
    succeed(run, args(groups))
    succeed(run, args(groups, state="absent"))
    api["operations"].clear()

    result = succeed(run, args(groups, state="absent"))

    assert result["changed"] is False
    assert result["removed"] == []
    assert writes(api) == []


def test_absent_ignores_the_rules_option(run, ec2, groups):
    succeed(run, args(groups, DNS))

    result = succeed(run, args(groups, [POSTGRES], state="absent"))

    assert len(result["removed"]) == 2
    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == []


@pytest.mark.parametrize("missing", ["group_id", "peer_group_id"])
def test_absent_with_a_group_that_no_longer_exists_is_no_change(run, groups, missing):
    result = succeed(run, args(groups, state="absent", **{missing: MISSING_GROUP}))

    assert result["changed"] is False
    assert result["rules"] == result["removed"] == []


def test_eks_cluster_security_group_keeps_its_own_rules(run, ec2, groups, moto_eks_cluster):
    cluster_group = moto_eks_cluster["resourcesVpcConfig"]["clusterSecurityGroupId"]
    eks_rules = all_rules(ec2, cluster_group)
    assert eks_rules  # EKS's self-referencing ingress and its egress
    cluster_args = dict(group_id=cluster_group, peer_group_id=groups["peer"])

    succeed(run, dict(cluster_args, rules=DNS))
    assert peer_rules_of(ec2, cluster_group, groups["peer"]) == [
        ("ingress", "tcp", 53, 53, "DNS (TCP) from the metabase pods"),
        ("ingress", "udp", 53, 53, "DNS (UDP) from the metabase pods"),
    ]
    assert other_rules_of(ec2, cluster_group, groups["peer"]) == eks_rules

    succeed(run, dict(cluster_args, state="absent"))
    assert all_rules(ec2, cluster_group) == eks_rules


# ------------------------------------------------------------------ check mode and diff


def test_check_mode_predicts_without_changing(run, ec2, groups, api):
    add_unrelated_rules(ec2, groups)
    succeed(run, args(groups, [dict(POSTGRES, description="PostgreSQL"), *DNS]))
    before = all_rules(ec2, groups["target"])
    api["operations"].clear()

    result = succeed(
        run, args(groups, [POSTGRES, dict(protocol="tcp", from_port=6432, description="PgBouncer")]), check_mode=True
    )

    assert result["changed"] is True
    assert writes(api) == []
    assert all_rules(ec2, groups["target"]) == before
    assert [(item["from_port"], item["security_group_rule_id"]) for item in result["added"]] == [(6432, None)]
    assert sorted((item["protocol"], item["from_port"]) for item in result["removed"]) == [("tcp", 53), ("udp", 53)]
    assert [(item["description"], item["previous_description"]) for item in result["updated"]] == [
        ("PostgreSQL from the metabase pods", "PostgreSQL")
    ]
    assert [(item["from_port"], item["description"]) for item in result["rules"]] == [
        (5432, "PostgreSQL from the metabase pods"),
        (6432, "PgBouncer"),
    ]

    applied = succeed(run, args(groups, [POSTGRES, dict(protocol="tcp", from_port=6432, description="PgBouncer")]))
    assert applied["diff"] == result["diff"]
    assert succeed(run, args(groups), check_mode=True)["changed"] is True


def test_check_mode_absent_changes_nothing(run, ec2, groups, api):
    succeed(run, args(groups, DNS))
    before = all_rules(ec2, groups["target"])
    api["operations"].clear()

    result = succeed(run, args(groups, state="absent"), check_mode=True)

    assert result["changed"] is True
    assert len(result["removed"]) == 2
    assert result["rules"] == []
    assert writes(api) == []
    assert all_rules(ec2, groups["target"]) == before


def test_check_mode_after_apply_reports_no_change(run, groups):
    succeed(run, args(groups, DNS))

    assert succeed(run, args(groups, DNS), check_mode=True)["changed"] is False


def test_diff_lists_the_managed_rules_readably(run, ec2, groups):
    add_unrelated_rules(ec2, groups)
    authorize(ec2, groups["target"], groups["peer"])
    peer = groups["peer"]
    rules = [
        dict(POSTGRES, description="PostgreSQL"),
        dict(direction="egress", protocol="tcp", from_port=1025, to_port=65535, description="Webhooks"),
        dict(protocol="icmp", from_port=3, to_port=4, description="Fragmentation needed"),
        dict(direction="egress", protocol="all", description="Everything"),
    ]

    result = succeed(run, args(groups, rules))

    assert result["diff"] == {
        "before": {"rules": [f"ingress tcp 3306 from {peer}: MySQL"]},
        "after": {
            "rules": [
                f"egress all traffic to {peer}: Everything",
                f"egress tcp 1025-65535 to {peer}: Webhooks",
                f"ingress icmp type 3 code 4 from {peer}: Fragmentation needed",
                f"ingress tcp 5432 from {peer}: PostgreSQL",
            ]
        },
    }

    updated = succeed(run, args(groups, [POSTGRES]))
    assert updated["diff"]["after"] == {"rules": [f"ingress tcp 5432 from {peer}: PostgreSQL from the metabase pods"]}


# ------------------------------------------------------------------ missing groups


@pytest.mark.parametrize("missing", ["group_id", "peer_group_id"])
def test_a_group_that_does_not_exist_fails_naming_it(run, ec2, groups, missing, api):
    result = fail(run, args(groups, **{missing: MISSING_GROUP}))

    assert result["msg"] == f"{missing}: security group {MISSING_GROUP} does not exist (InvalidGroup.NotFound)"
    assert result["option"] == missing
    assert writes(api) == []
    assert peer_rules_of(ec2, groups["target"], groups["peer"]) == []


def test_both_missing_groups_are_named(run, groups):
    result = fail(run, args(groups, group_id=MISSING_GROUP, peer_group_id="sg-0fedcba987654321f"))

    assert result["msg"] == (
        f"group_id: security group {MISSING_GROUP} does not exist; "
        "peer_group_id: security group sg-0fedcba987654321f does not exist (InvalidGroup.NotFound)"
    )
    assert result["option"] == "group_id"


def test_check_mode_with_a_group_that_does_not_exist_warns_and_predicts(run, groups, api):
    result = succeed(run, args(groups, DNS, peer_group_id=MISSING_GROUP), check_mode=True)

    assert result["changed"] is True
    assert [item["security_group_rule_id"] for item in result["added"]] == [None, None]
    assert result["diff"]["before"] == {"rules": []}
    assert len(result["diff"]["after"]["rules"]) == 2
    assert result["warnings"] == [
        f"peer_group_id: security group {MISSING_GROUP} does not exist; outside check mode the task would fail"
    ]
    assert writes(api) == []


# ------------------------------------------------------------------ validation


def _rule(**overrides):
    return dict(dict(protocol="tcp", from_port=5432, description="PostgreSQL"), **overrides)


VALID = dict(group_id="sg-0123456789abcdef0", peer_group_id="sg-0fedcba987654321f")


@pytest.mark.parametrize(
    ("overrides", "option", "text"),
    [
        (dict(group_id="sg-12"), "group_id", "not a security group ID"),
        (dict(group_id="rds-sg"), "group_id", "not a security group ID"),
        (dict(peer_group_id="sg-0123456789ABCDEF0"), "peer_group_id", "not a security group ID"),
        (dict(peer_group_id=VALID["group_id"]), "peer_group_id", "same group as group_id"),
        (dict(rules=None), "rules", "required with state=present"),
        (dict(rules=[_rule(), _rule(from_port=70000)]), "rules[1].from_port", "between 0 and 65535"),
        (dict(rules=[_rule(to_port=65536)]), "rules[0].to_port", "between 0 and 65535"),
        (dict(rules=[_rule(from_port=-1)]), "rules[0].from_port", "between 0 and 65535"),
        (dict(rules=[_rule(from_port=6000, to_port=5000)]), "rules[0].to_port", "lower than from_port"),
        (dict(rules=[_rule(from_port=None)]), "rules[0].from_port", "required with protocol=tcp"),
        (dict(rules=[_rule(protocol="udp", from_port=None)]), "rules[0].from_port", "required with protocol=udp"),
        (dict(rules=[_rule(protocol="icmp", from_port=256)]), "rules[0].from_port", "ICMP type"),
        (dict(rules=[_rule(protocol="icmp", from_port=8, to_port=-2)]), "rules[0].to_port", "ICMP code"),
        (dict(rules=[_rule(protocol="icmp", from_port=-1, to_port=0)]), "rules[0].to_port", "must be -1"),
        (dict(rules=[_rule(protocol="all")]), "rules[0].from_port", "protocol=all"),
        (dict(rules=[_rule(protocol="all", from_port=None, to_port=0)]), "rules[0].to_port", "protocol=all"),
        (dict(rules=[_rule(description="")]), "rules[0].description", "may not be empty"),
        (dict(rules=[_rule(description="x" * 256)]), "rules[0].description", "at most 255"),
        (dict(rules=[_rule(description="Postgres from pods <prod>")]), "rules[0].description", "'<>'"),
        (dict(rules=[_rule(description="Postgres 'pods'")]), "rules[0].description", "EC2 accepts only"),
        (dict(rules=[_rule(description="Base de données")]), "rules[0].description", "'é'"),
        (
            dict(rules=[_rule(), _rule(protocol="udp"), _rule(to_port=5432, description="again")]),
            "rules[2]",
            "already rules[0]",
        ),
        (
            dict(rules=[_rule(protocol="icmp", from_port=None), _rule(protocol="icmp", from_port=-1, to_port=-1)]),
            "rules[1]",
            "already rules[0]",
        ),
    ],
)
def test_bad_input_fails_before_any_api_call(run, no_clients, overrides, option, text):
    result = fail(run, dict(dict(VALID, rules=[_rule()]), **overrides))

    assert result["msg"].startswith(f"{option}:"), result["msg"]
    assert result["option"] == option
    assert text in result["msg"]
    assert no_clients == []


@pytest.mark.parametrize(
    "overrides",
    [dict(rules=[_rule(protocol="gre")]), dict(rules=[_rule(direction="inbound")]), dict(state="gone")],
    ids=["protocol", "direction", "state"],
)
def test_bad_choices_are_rejected_before_any_api_call(run, no_clients, overrides):
    result = fail(run, dict(dict(VALID, rules=[_rule()]), **overrides))

    assert "value of" in result["msg"]
    assert no_clients == []


def test_the_whole_allowed_description_charset_is_accepted():
    allowed = "Az09 ._-:/()#,@[]+=&;{}!$*"
    params = dict(VALID, state="present", rules=[dict(_rule(description=allowed), direction="ingress")])

    [desired] = peer_rules.validate_params(params)

    assert desired["description"] == allowed


def test_defaults_of_a_rule():
    params = dict(
        VALID,
        state="present",
        rules=[
            dict(direction="ingress", protocol="tcp", from_port=5432, to_port=None, description="a"),
            dict(direction="egress", protocol="icmp", from_port=None, to_port=None, description="b"),
            dict(direction="egress", protocol="all", from_port=None, to_port=None, description="c"),
        ],
    )

    desired = peer_rules.validate_params(params)

    assert [(item["from_port"], item["to_port"]) for item in desired] == [(5432, 5432), (-1, -1), (-1, -1)]


# ------------------------------------------------------------------ duplicate race, without a server


def _duplicate():
    return ClientError({"Error": {"Code": "InvalidPermission.Duplicate", "Message": "exists"}}, "Authorize")


def test_authorize_falls_back_to_one_rule_at_a_time_on_duplicate():
    client = mock.Mock()
    client.authorize_security_group_ingress.side_effect = [_duplicate(), {}, _duplicate()]
    module = mock.Mock(params=dict(VALID))
    manager = peer_rules.PeerRules(module, client)
    first = peer_rules.rule("ingress", "tcp", 53, 53, "DNS (TCP)")
    second = peer_rules.rule("ingress", "udp", 53, 53, "DNS (UDP)")

    raced = manager.authorize([first, second])

    assert raced == [second]
    sent = [call.kwargs["IpPermissions"] for call in client.authorize_security_group_ingress.call_args_list]
    assert [len(permissions) for permissions in sent] == [2, 1, 1]
    assert all(call.kwargs["aws_retry"] is True for call in client.authorize_security_group_ingress.call_args_list)
    module.fail_json_aws.assert_not_called()


def test_a_raced_rule_with_another_description_is_corrected():
    module = mock.Mock(params=dict(VALID), check_mode=False)
    manager = mock.Mock(group_id=VALID["group_id"], peer_group_id=VALID["peer_group_id"])
    theirs = peer_rules.rule("ingress", "tcp", 5432, 5432, "Theirs", rule_id="sgr-0123456789abcdef0")
    ours = peer_rules.rule("ingress", "tcp", 5432, 5432, "Ours")
    manager.read.side_effect = [[], [theirs], [dict(theirs, description="Ours")]]
    manager.authorize.return_value = [ours]

    result = peer_rules.ensure_present(module, manager, [ours])

    [updates] = manager.modify.call_args.args
    assert updates == [dict(theirs, description="Ours", previous_description="Theirs")]
    assert result["added"] == []
    assert result["changed"] is True
