# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import ipaddress
import itertools

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.layered.eks_rds.plugins.filter.subnet_plan import FilterModule, subnet_plan

REGION_ZONES = ["eu-west-1c", "eu-west-1a", "eu-west-1b"]


def plan(vpc_cidr="10.0.0.0/16", **kwargs):
    kwargs.setdefault("eks_cluster_name", "demo")
    return subnet_plan(vpc_cidr, **kwargs)


def rejected(option, vpc_cidr="10.0.0.0/16", **kwargs):
    with pytest.raises(AnsibleFilterError) as raised:
        plan(vpc_cidr, **kwargs)
    message = str(raised.value)
    assert message.startswith(f"{option}: "), message
    return message


def all_networks(result):
    return [ipaddress.ip_network(cidr) for cidrs in result["subnet_cidrs"].values() for cidr in cidrs]


def test_registered_as_subnet_plan():
    assert FilterModule().filters() == {"subnet_plan": subnet_plan}


# --------------------------------------------------------------------------- computed layout


def test_default_layout_for_two_zones():
    result = plan(region_zones=REGION_ZONES)

    assert result["vpc_cidr"] == "10.0.0.0/16"
    assert result["az_count"] == 2
    assert result["availability_zones"] == ["eu-west-1a", "eu-west-1b"]
    assert result["nat_availability_zones"] == ["eu-west-1a", "eu-west-1b"]
    assert result["tiers"] == ["eks_public", "eks_private", "rds_private"]
    assert result["public_tiers"] == ["eks_public"]
    assert result["subnet_cidrs"] == {
        "eks_public": ["10.0.128.0/20", "10.0.144.0/20"],
        "eks_private": ["10.0.0.0/18", "10.0.64.0/18"],
        "rds_private": ["10.0.160.0/20", "10.0.176.0/20"],
    }


def test_subnets_list_one_entry_per_tier_and_zone_in_order():
    result = plan(region_zones=REGION_ZONES)

    assert result["subnets"][:3] == [
        dict(tier="eks_public", az="eu-west-1a", index=0, cidr="10.0.128.0/20", public=True),
        dict(tier="eks_public", az="eu-west-1b", index=1, cidr="10.0.144.0/20", public=True),
        dict(tier="eks_private", az="eu-west-1a", index=0, cidr="10.0.0.0/18", public=False),
    ]
    assert len(result["subnets"]) == 6
    assert not any(subnet["public"] for subnet in result["subnets"] if subnet["tier"].endswith("_private"))


def test_rds_public_tier_takes_the_seventh_eighth():
    result = plan(rds_public_subnets=True, rds_public_allowed_cidrs=["203.0.113.0/24"])

    assert result["tiers"] == ["eks_public", "eks_private", "rds_private", "rds_public"]
    assert result["public_tiers"] == ["eks_public", "rds_public"]
    assert result["subnet_cidrs"]["rds_public"] == ["10.0.192.0/20", "10.0.208.0/20"]


def test_turning_rds_public_on_moves_no_other_subnet():
    without = plan()["subnet_cidrs"]
    with_public = plan(rds_public_subnets=True, rds_public_allowed_cidrs=["203.0.113.0/24"])["subnet_cidrs"]

    assert {tier: cidrs for tier, cidrs in with_public.items() if tier != "rds_public"} == without


# Every VPC size and zone count whose computed subnets fit in /28 (smaller ones:
# test_bad_vpc_cidr_names_the_variable).
FITTING = [
    (vpc_cidr, count)
    for vpc_cidr in ("10.0.0.0/16", "172.16.0.0/20", "192.168.0.0/24")
    for count in (2, 3, 4, 5, 6)
    if ipaddress.ip_network(vpc_cidr).prefixlen + 3 + (count - 1).bit_length() <= 28
]


@pytest.mark.parametrize("vpc_cidr, count", FITTING)
def test_computed_subnets_are_disjoint_inside_the_vpc_and_large_enough(vpc_cidr, count):
    result = plan(vpc_cidr, az_count=count, rds_public_subnets=True, rds_public_allowed_cidrs=["198.51.100.0/24"])
    vpc = ipaddress.ip_network(vpc_cidr)
    networks = all_networks(result)

    assert len(networks) == 4 * count
    assert all(network.subnet_of(vpc) for network in networks)
    assert all(network.prefixlen <= 28 for network in networks)
    assert not any(a.overlaps(b) for a, b in itertools.combinations(networks, 2))
    assert all(len(cidrs) == count for cidrs in result["subnet_cidrs"].values())


def test_eks_private_subnets_are_the_largest():
    result = plan(az_count=3)
    prefix = {tier: ipaddress.ip_network(cidrs[0]).prefixlen for tier, cidrs in result["subnet_cidrs"].items()}

    assert prefix == {"eks_public": 21, "eks_private": 19, "rds_private": 21}


def test_adding_a_zone_within_the_power_of_two_keeps_the_cidrs():
    three = plan(az_count=3)["subnet_cidrs"]
    four = plan(az_count=4)["subnet_cidrs"]

    assert all(four[tier][:3] == three[tier] for tier in three)


def test_single_nat_gateway_mode_uses_the_first_zone():
    result = plan(nat_gateway_mode="single", availability_zones=["eu-west-1b", "eu-west-1c"], region_zones=REGION_ZONES)

    assert result["availability_zones"] == ["eu-west-1b", "eu-west-1c"]
    assert result["nat_availability_zones"] == ["eu-west-1b"]


def test_zones_unknown_without_region_zones_or_explicit_list():
    result = plan(az_count=3)

    assert result["availability_zones"] == []
    assert result["nat_availability_zones"] == []
    assert result["subnets"] == []
    assert result["az_count"] == 3


def test_explicit_zones_are_kept_in_order_without_region_zones():
    result = plan(availability_zones=["eu-west-1c", "eu-west-1a"], az_count=5)

    assert result["availability_zones"] == ["eu-west-1c", "eu-west-1a"]
    assert result["az_count"] == 2
    assert [subnet["az"] for subnet in result["subnets"][:2]] == ["eu-west-1c", "eu-west-1a"]


# --------------------------------------------------------------------------- explicit CIDRs


def test_explicit_cidrs_replace_the_computed_ones_per_tier():
    result = plan(
        subnet_cidrs=dict(eks_private=["10.0.0.0/19", "10.0.32.0/19"], rds_private=None),
    )

    assert result["subnet_cidrs"]["eks_private"] == ["10.0.0.0/19", "10.0.32.0/19"]
    # computed tiers that do not collide with the explicit ones are kept
    assert result["subnet_cidrs"]["rds_private"] == ["10.0.160.0/20", "10.0.176.0/20"]


def test_explicit_cidrs_for_every_tier_need_no_room_for_computed_ones():
    result = plan(
        "10.0.0.0/24",
        subnet_cidrs=dict(
            eks_public=["10.0.0.0/28", "10.0.0.16/28"],
            eks_private=["10.0.0.64/26", "10.0.0.128/26"],
            rds_private=["10.0.0.32/28", "10.0.0.48/28"],
        ),
    )

    assert result["subnet_cidrs"]["eks_public"] == ["10.0.0.0/28", "10.0.0.16/28"]


@pytest.mark.parametrize(
    "subnet_cidrs, option, fragment",
    [
        (dict(eks_public=["10.0.0.0/24"]), "vpc_subnet_cidrs.eks_public", "lists 1 CIDRs for 2 availability zones"),
        (dict(eks_public="10.0.0.0/24"), "vpc_subnet_cidrs.eks_public", "expected a list"),
        (dict(eks_public=["10.0.200.0/24", "10.1.0.0/24"]), "vpc_subnet_cidrs.eks_public[1]", "not inside vpc_cidr"),
        (dict(eks_public=["10.0.200.0/24", "10.0.201.1/24"]), "vpc_subnet_cidrs.eks_public[1]", "host bits"),
        (dict(eks_public=["10.0.200.0/24", "10.0.201.0/29"]), "vpc_subnet_cidrs.eks_public[1]", "between /16 and /28"),
        (dict(eks_public=["10.0.200.0/24", "nonsense"]), "vpc_subnet_cidrs.eks_public[1]", "no prefix length"),
        (dict(eks_public=["10.0.200.0/24", None]), "vpc_subnet_cidrs.eks_public[1]", "expected an IPv4 CIDR"),
        (dict(eks_public=["10.0.0.0/24", "10.0.201.0/24"]), "vpc_subnet_cidrs.eks_public[0]", "overlaps"),
        (dict(rds_private=["10.0.64.0/24", "10.0.202.0/24"]), "vpc_subnet_cidrs.rds_private[0]", "overlaps"),
        (
            dict(eks_public=["10.0.200.0/24", "10.0.201.0/24"], rds_private=["10.0.200.128/25", "10.0.202.0/24"]),
            "vpc_subnet_cidrs.rds_private[0]",
            "overlaps 10.0.200.0/24 (vpc_subnet_cidrs.eks_public[0])",
        ),
        (dict(eks_public=["10.0.200.0/24", "10.0.200.0/24"]), "vpc_subnet_cidrs.eks_public[1]", "overlaps"),
        (dict(rds_public=["10.0.200.0/24", "10.0.201.0/24"]), "vpc_subnet_cidrs.rds_public", "rds_public_subnets"),
        (dict(db=["10.0.200.0/24", "10.0.201.0/24"]), "vpc_subnet_cidrs.db", "unknown tier"),
        ("10.0.0.0/24", "vpc_subnet_cidrs", "expected a dict"),
    ],
)
def test_bad_explicit_cidrs_name_the_variable(subnet_cidrs, option, fragment):
    message = rejected(option, subnet_cidrs=subnet_cidrs)

    assert fragment in message


def test_computed_subnet_overlapping_an_explicit_one_names_the_explicit_one():
    # eks_public is placed first, explicit; the computed eks_private[0] then overlaps it.
    message = rejected("vpc_subnet_cidrs.eks_public[0]", subnet_cidrs=dict(eks_public=["10.0.1.0/24", "10.0.200.0/24"]))

    assert "the computed eks_private[0]" in message


# --------------------------------------------------------------------------- other checks


@pytest.mark.parametrize(
    "vpc_cidr, fragment",
    [
        ("10.0.0.0/33", "not a valid CIDR"),
        ("10.0.0.1/16", "host bits set; the network is 10.0.0.0/16"),
        ("10.0.0.0", "no prefix length"),
        ("fd00::/56", "not an IPv4 CIDR"),
        ("10.0.0.0/8", "between /16 and /28"),
        ("", "expected an IPv4 CIDR"),
        (None, "expected an IPv4 CIDR"),
        ("10.0.0.0/26", "too small to compute subnets for 2 availability zones"),
    ],
)
def test_bad_vpc_cidr_names_the_variable(vpc_cidr, fragment):
    assert fragment in rejected("vpc_cidr", vpc_cidr)


@pytest.mark.parametrize("az_count", [0, 1, -2, "2", True, None])
def test_bad_az_count_names_the_variable(az_count):
    rejected("vpc_az_count", az_count=az_count)


@pytest.mark.parametrize(
    "zones, fragment",
    [
        (["eu-west-1a"], "at least 2"),
        (["eu-west-1a", "eu-west-1a"], "more than once"),
        (["eu-west-1a", ""], "expected zone names"),
        ("eu-west-1a", "expected a list"),
    ],
)
def test_bad_zone_lists_name_the_variable(zones, fragment):
    assert fragment in rejected("vpc_availability_zones", availability_zones=zones)


def test_unknown_zone_names_are_rejected_against_the_region():
    message = rejected(
        "vpc_availability_zones", availability_zones=["eu-west-1a", "eu-west-1z"], region_zones=REGION_ZONES
    )

    assert "eu-west-1z is not an available zone of the region" in message
    assert "eu-west-1a, eu-west-1b, eu-west-1c" in message


def test_more_zones_than_the_region_has():
    message = rejected("vpc_az_count", az_count=4, region_zones=REGION_ZONES)

    assert "the region has 3 available zones" in message


@pytest.mark.parametrize("name", ["Demo", "demo_cluster", "-demo", "demo-", "a" * 64, "", None, "demo.eks"])
def test_cluster_name_must_be_a_dns_1123_label(name):
    assert "DNS-1123" in rejected("vpc_eks_cluster_name", eks_cluster_name=name)


@pytest.mark.parametrize("name", ["a", "demo", "demo-eks-1", "1demo", "a" * 63])
def test_good_cluster_names(name):
    assert plan(eks_cluster_name=name)["tiers"]


@pytest.mark.parametrize(
    "allowed, option, fragment",
    [
        ([], "vpc_rds_public_allowed_cidrs", "is empty"),
        (None, "vpc_rds_public_allowed_cidrs", "is empty"),
        (["203.0.113.0/24", "0.0.0.0/0"], "vpc_rds_public_allowed_cidrs[1]", "whole internet"),
        (["128.0.0.0/0"], "vpc_rds_public_allowed_cidrs[0]", "host bits"),
        (["203.0.113.7"], "vpc_rds_public_allowed_cidrs[0]", "no prefix length"),
        (["203.0.113.0/24", "203.0.113.0/24"], "vpc_rds_public_allowed_cidrs[1]", "more than once"),
        (["2001:db8::/32"], "vpc_rds_public_allowed_cidrs[0]", "not an IPv4 CIDR"),
        ([f"198.51.100.{i}/32" for i in range(9)], "vpc_rds_public_allowed_cidrs", "at most 8"),
        ("203.0.113.0/24", "vpc_rds_public_allowed_cidrs", "expected a list"),
    ],
)
def test_rds_public_allowed_cidrs_are_required_and_never_the_internet(allowed, option, fragment):
    assert fragment in rejected(option, rds_public_subnets=True, rds_public_allowed_cidrs=allowed)


def test_allowed_cidrs_are_ignored_without_rds_public_subnets():
    result = plan(rds_public_allowed_cidrs=["0.0.0.0/0"])

    assert "rds_public" not in result["nacl_entries"]


def test_other_option_checks():
    assert "per_az, single" in rejected("vpc_nat_gateway_mode", nat_gateway_mode="zonal")
    assert "true or false" in rejected("vpc_rds_public_subnets", rds_public_subnets="yes")
    assert "between 1 and 65535" in rejected("vpc_postgres_port", postgres_port=70000)


def test_variable_prefix_is_configurable():
    with pytest.raises(AnsibleFilterError, match=r"^network_cidr: "):
        subnet_plan("10.0.0.0/33", eks_cluster_name="demo", variable_prefix="network_")


def test_too_many_zones_for_one_network_acl():
    message = rejected("vpc_az_count", az_count=11)

    assert "rds_private network ACL would need 22 ingress entries" in message


# --------------------------------------------------------------------------- network ACL entries


def test_rds_private_entries_allow_postgres_from_eks_private_only():
    entries = plan(postgres_port=6432)["nacl_entries"]["rds_private"]

    assert entries == {
        "ingress": [
            [100, "tcp", "allow", "10.0.0.0/18", None, None, 6432, 6432],
            [110, "tcp", "allow", "10.0.64.0/18", None, None, 6432, 6432],
            [200, "tcp", "allow", "10.0.0.0/18", None, None, 1024, 65535],
            [210, "tcp", "allow", "10.0.64.0/18", None, None, 1024, 65535],
        ],
        "egress": [
            [100, "tcp", "allow", "10.0.0.0/18", None, None, 1024, 65535],
            [110, "tcp", "allow", "10.0.64.0/18", None, None, 1024, 65535],
        ],
    }


def test_eks_entries():
    entries = plan()["nacl_entries"]
    denies = [
        [110, "tcp", "deny", "0.0.0.0/0", None, None, 22, 22],
        [120, "tcp", "deny", "0.0.0.0/0", None, None, 3389, 3389],
        [130, "udp", "deny", "0.0.0.0/0", None, None, 3389, 3389],
    ]

    assert entries["eks_public"]["ingress"] == [
        [100, "all", "allow", "10.0.0.0/16", None, None, None, None],
        *denies,
        [200, "tcp", "allow", "0.0.0.0/0", None, None, 80, 80],
        [210, "tcp", "allow", "0.0.0.0/0", None, None, 443, 443],
        [300, "tcp", "allow", "0.0.0.0/0", None, None, 1024, 65535],
        [310, "udp", "allow", "0.0.0.0/0", None, None, 1024, 65535],
    ]
    assert entries["eks_private"]["ingress"] == [
        [100, "all", "allow", "10.0.0.0/16", None, None, None, None],
        *denies,
        [300, "tcp", "allow", "0.0.0.0/0", None, None, 1024, 65535],
        [310, "udp", "allow", "0.0.0.0/0", None, None, 1024, 65535],
    ]
    for tier in ("eks_public", "eks_private"):
        assert entries[tier]["egress"] == [[100, "all", "allow", "0.0.0.0/0", None, None, None, None]]


def test_rds_public_entries_allow_postgres_from_the_allowed_cidrs_only():
    entries = plan(rds_public_subnets=True, rds_public_allowed_cidrs=["203.0.113.0/24", "198.51.100.7/32"])
    rds_public = entries["nacl_entries"]["rds_public"]

    assert rds_public["ingress"][3:] == [
        [200, "tcp", "allow", "203.0.113.0/24", None, None, 5432, 5432],
        [210, "tcp", "allow", "198.51.100.7/32", None, None, 5432, 5432],
        [300, "tcp", "allow", "203.0.113.0/24", None, None, 1024, 65535],
        [310, "tcp", "allow", "198.51.100.7/32", None, None, 1024, 65535],
    ]
    assert rds_public["egress"] == [
        [100, "tcp", "allow", "203.0.113.0/24", None, None, 1024, 65535],
        [110, "tcp", "allow", "198.51.100.7/32", None, None, 1024, 65535],
    ]


def _first_match_from_the_internet(entries, protocol, port):
    for entry in sorted(entries, key=lambda e: e[0]):
        _number, entry_protocol, action, cidr, _t, _c, low, high = entry
        if cidr != "0.0.0.0/0":
            continue
        if entry_protocol == "all" or (entry_protocol == protocol and low <= port <= high):
            return action
    return "deny"


@pytest.mark.parametrize("count", [2, 3, 6])
def test_no_entry_lets_the_internet_reach_ssh_or_rdp(count):
    result = plan(az_count=count, rds_public_subnets=True, rds_public_allowed_cidrs=["203.0.113.0/24"])

    for tier, rules in result["nacl_entries"].items():
        for protocol, port in itertools.product(("tcp", "udp"), (22, 3389)):
            assert _first_match_from_the_internet(rules["ingress"], protocol, port) == "deny", (tier, protocol, port)


@pytest.mark.parametrize("count", [2, 6, 10])
def test_rule_numbers_are_unique_and_within_the_quota(count):
    result = plan("10.0.0.0/16", az_count=count, rds_public_subnets=True, rds_public_allowed_cidrs=["203.0.113.0/24"])

    for rules in result["nacl_entries"].values():
        for direction in ("ingress", "egress"):
            numbers = [entry[0] for entry in rules[direction]]
            assert len(numbers) == len(set(numbers)) <= 20
            assert all(1 <= number <= 32766 for number in numbers)
