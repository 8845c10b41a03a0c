"""The VPC fabric's nftables compiler (tests/stack/fabric): snapshot, compile_ruleset and explain.

Snapshots come from two places: written by hand (pure tests of ``explain`` and of the generated text), and read
with ``snapshot()`` from moto, in a VPC shaped like the one roles/vpc builds (tiers, network ACL entries from the
role's own ``subnet_plan`` filter, a NAT gateway per zone) with the security groups roles/pod_security_groups
sets up. The kernel tests load the compiled ruleset into a router network namespace and open real connections
between endpoint namespaces: what the kernel lets through must be what ``explain`` says.
"""

from __future__ import annotations

import copy
import ctypes
import functools
import json
import os
import random
import re
import secrets
import selectors
import shutil
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import boto3
import moto_ext
import pytest
from fabric import nft
from fabric.policy import CLIENT_PORTS, Vpc
from moto import mock_aws

from ansible_collections.layered.eks_rds.plugins.filter.subnet_plan import subnet_plan

REGION = "eu-west-1"
ZONES = ["eu-west-1a", "eu-west-1b"]
PLAN = subnet_plan("10.0.0.0/16", 2, availability_zones=ZONES, eks_cluster_name="demo", nat_gateway_mode="per_az")
PG, HTTPS, DNS, APP, KUBELET = 5432, 443, 53, 8080, 10250

# Endpoints of the fabric: the same addresses in the hand-written and the moto snapshots.
HOSTS = {
    "pod_a": "10.0.0.10",  # pod security group, EKS private subnet of zone a
    "node_a1": "10.0.0.20",  # cluster security group, same subnet
    "node_a2": "10.0.0.21",  # cluster security group, same subnet
    "pod_b": "10.0.64.10",  # pod security group, EKS private subnet of zone b
    "dns": "10.0.64.53",  # CoreDNS behind the cluster security group, zone b
    "rds": "10.0.160.10",  # the RDS instance's interface, RDS private subnet of zone a
    "internet": "203.0.113.10",
    "far": "203.0.113.200",
}
TCP_PORTS = (DNS, HTTPS, PG, APP, KUBELET)
UDP_PORTS = (DNS,)
TIMEOUT = 0.8  # seconds before a connection attempt counts as dropped

_PROTOCOL = {"all": "-1", "tcp": "6", "udp": "17", "icmp": "1"}


# ---------------------------------------------------------------------------------------------- hand snapshots


def _tier_id(tier: str, az: str | None = None) -> str:
    return tier.replace("_", "-") + (f"-{az[-1]}" if az else "")


def _plan_entry(item: list[Any]) -> dict[str, Any]:
    """An entry of the role's plan ([number, protocol, action, cidr, icmp type, icmp code, from, to])."""
    number, protocol, action, cidr, icmp_type, icmp_code, low, high = item
    return {
        "rule": number,
        "action": action,
        "protocol": _PROTOCOL[protocol],
        "cidr": cidr,
        "from_port": low,
        "to_port": high,
        "icmp_type": icmp_type,
        "icmp_code": icmp_code,
    }


def _rule(protocol: str, port: int | None = None, **peer: str) -> dict[str, Any]:
    return {"protocol": protocol, "from_port": port, "to_port": port, "description": "", **peer}


def role_snapshot() -> dict[str, Any]:
    """roles/vpc + roles/pod_security_groups in miniature, written by hand, with readable ids."""
    subnets = {
        f"subnet-{_tier_id(s['tier'], s['az'])}": {"cidr": s["cidr"], "az": s["az"], "name": s["tier"]}
        for s in PLAN["subnets"]
    }
    acls = {
        f"acl-{_tier_id(tier)}": {
            "default": False,
            "subnets": [f"subnet-{_tier_id(tier, az)}" for az in ZONES],
            "ingress": [_plan_entry(item) for item in PLAN["nacl_entries"][tier]["ingress"]],
            "egress": [_plan_entry(item) for item in PLAN["nacl_entries"][tier]["egress"]],
        }
        for tier in PLAN["tiers"]
    }
    acls["acl-default"] = {"default": True, "subnets": [], "ingress": [], "egress": []}
    local = {"destination": "10.0.0.0/16", "target": "local", "state": "active"}
    tables = {
        "rtb-main": {"main": True, "subnets": [], "routes": [local]},
        "rtb-eks-public": {
            "main": False,
            "subnets": [f"subnet-eks-public-{az[-1]}" for az in ZONES],
            "routes": [local, {"destination": "0.0.0.0/0", "target": "igw-1", "state": "active"}],
        },
        "rtb-rds-private": {
            "main": False,
            "subnets": [f"subnet-rds-private-{az[-1]}" for az in ZONES],
            "routes": [local],
        },
    }
    nats = {}
    for az in ZONES:
        zone = az[-1]
        tables[f"rtb-eks-private-{zone}"] = {
            "main": False,
            "subnets": [f"subnet-eks-private-{zone}"],
            "routes": [local, {"destination": "0.0.0.0/0", "target": f"nat-{zone}", "state": "active"}],
        }
        nats[f"nat-{zone}"] = {
            "subnet": f"subnet-eks-public-{zone}",
            "state": "available",
            "connectivity": "public",
            "interfaces": [f"eni-nat-{zone}"],
            "private_ips": [f"10.0.{128 if zone == 'a' else 144}.5"],
        }

    def eni(name: str, subnet: str, groups: list[str]) -> dict[str, Any]:
        return {"subnet": subnet, "ips": [HOSTS[name]], "groups": groups, "type": "interface", "description": name}

    interfaces = {
        "eni-pod-a": eni("pod_a", "subnet-eks-private-a", ["sg-pod"]),
        "eni-node-a1": eni("node_a1", "subnet-eks-private-a", ["sg-cluster"]),
        "eni-node-a2": eni("node_a2", "subnet-eks-private-a", ["sg-cluster"]),
        "eni-pod-b": eni("pod_b", "subnet-eks-private-b", ["sg-pod"]),
        "eni-dns": eni("dns", "subnet-eks-private-b", ["sg-cluster"]),
        "eni-rds": eni("rds", "subnet-rds-private-a", ["sg-rds"]),
        "eni-nat-a": {"subnet": "subnet-eks-public-a", "ips": ["10.0.128.5"], "groups": [], "type": "nat_gateway"},
        "eni-nat-b": {"subnet": "subnet-eks-public-b", "ips": ["10.0.144.5"], "groups": [], "type": "nat_gateway"},
    }
    groups = {
        "sg-cluster": {
            "name": "eks-cluster-sg-demo",
            "ingress": [
                _rule("-1", group="sg-cluster"),
                _rule("tcp", DNS, group="sg-pod", description="DNS (tcp) from the app pods"),
                _rule("udp", DNS, group="sg-pod", description="DNS (udp) from the app pods"),
            ],
            "egress": [_rule("-1", cidr="0.0.0.0/0")],
        },
        "sg-pod": {
            "name": "demo-dev-pod-app",
            "ingress": [_rule("tcp", APP, group="sg-cluster", description="app port 8080 from the cluster")],
            "egress": [
                _rule("tcp", DNS, group="sg-cluster"),
                _rule("udp", DNS, group="sg-cluster"),
                _rule("tcp", PG, group="sg-rds", description="PostgreSQL to the RDS instance security group"),
                _rule("tcp", HTTPS, cidr="0.0.0.0/0", description="HTTPS to AWS STS through NAT (IRSA)"),
            ],
        },
        "sg-rds": {
            "name": "demo-dev-rds",
            "ingress": [_rule("tcp", PG, group="sg-pod", description="PostgreSQL from the app pods")],
            "egress": [],
        },
    }
    return {
        "vpc_id": "vpc-demo",
        "cidrs": ["10.0.0.0/16"],
        "subnets": subnets,
        "interfaces": interfaces,
        "security_groups": groups,
        "network_acls": acls,
        "route_tables": tables,
        "nat_gateways": nats,
        "internet_gateways": {"igw-1": {"attached": True}},
        "vpc_endpoints": {},
        "prefix_lists": {},
    }


def allowed(snap: dict[str, Any], src: str, dst: str, proto: str = "tcp", port: int | None = PG, **kw: Any) -> bool:
    ok, reasons = nft.explain(snap, HOSTS.get(src, src), HOSTS.get(dst, dst), proto, port, **kw)
    assert ok == all(reason.startswith("ok: ") for reason in reasons), reasons
    return ok


def reasons_of(snap: dict[str, Any], src: str, dst: str, proto: str = "tcp", port: int | None = PG) -> str:
    return "\n".join(nft.explain(snap, HOSTS.get(src, src), HOSTS.get(dst, dst), proto, port)[1])


def drop_entry(snap: dict[str, Any], acl: str, direction: str, rule: int) -> None:
    entries = snap["network_acls"][acl][direction]
    assert any(e["rule"] == rule for e in entries), f"{acl} {direction} has no rule {rule}"
    entries[:] = [e for e in entries if e["rule"] != rule]


# ---------------------------------------------------------------------------------------------- explain


def test_role_shaped_vpc_allows_what_the_roles_open() -> None:
    snap = role_snapshot()
    assert allowed(snap, "pod_a", "rds")
    assert allowed(snap, "pod_b", "rds")
    assert allowed(snap, "pod_a", "dns", "tcp", DNS)
    assert allowed(snap, "pod_a", "dns", "udp", DNS)
    assert allowed(snap, "pod_a", "internet", "tcp", HTTPS)
    assert allowed(snap, "pod_b", "far", "tcp", HTTPS)
    assert allowed(snap, "node_a1", "pod_a", "tcp", APP)
    assert allowed(snap, "node_a1", "dns", "icmp", 8)
    text = reasons_of(snap, "pod_a", "rds")
    assert "ok: security group sg-pod egress tcp 5432 to sg-rds (PostgreSQL to the RDS instance security group)" in text
    assert "ok: security group sg-rds ingress tcp 5432 from sg-pod (PostgreSQL from the app pods)" in text
    assert (
        "ok: request: acl-rds-private inbound rule 100: allow tcp 5432 from 10.0.0.0/18 (subnet-rds-private-a)" in text
    )
    assert "ok: reply: acl-rds-private outbound rule 100: allow tcp 1024-65535 to 10.0.0.0/18" in text


def test_role_shaped_vpc_drops_the_rest() -> None:
    snap = role_snapshot()
    assert not allowed(snap, "pod_a", "rds", "tcp", HTTPS)  # no egress rule
    assert not allowed(snap, "pod_a", "internet", "tcp", 80)
    assert not allowed(snap, "rds", "pod_a", "tcp", APP)  # RDS has no egress rule, and its ACL opens ephemeral only
    assert not allowed(snap, "pod_a", "pod_b", "tcp", APP)  # pods do not talk to pods
    assert not allowed(snap, "internet", "pod_a", "tcp", APP)  # nothing opens from the internet
    assert not allowed(snap, "pod_a", "dns", "icmp", 8)
    assert "no ingress rule allows it" in reasons_of(snap, "node_a1", "rds")
    assert "cannot open connections into the VPC" in reasons_of(snap, "internet", "pod_a", "tcp", APP)


def test_revoked_ingress_and_empty_group() -> None:
    snap = role_snapshot()
    snap["security_groups"]["sg-rds"]["ingress"] = []
    assert not allowed(snap, "pod_a", "rds")
    assert "drop: security groups sg-rds of eni-rds: no ingress rule allows it" in reasons_of(snap, "pod_a", "rds")

    snap = role_snapshot()
    snap["interfaces"]["eni-rds"]["groups"] = ["sg-other"]  # sg-rds now has no member: its references match nothing
    snap["security_groups"]["sg-other"] = {"name": "other", "ingress": [_rule("-1", cidr="0.0.0.0/0")], "egress": []}
    assert not allowed(snap, "pod_a", "rds")
    assert "no egress rule allows it" in reasons_of(snap, "pod_a", "rds")


def test_all_protocols_port_ranges_icmp_and_prefix_lists() -> None:
    snap = role_snapshot()
    snap["security_groups"]["sg-rds"]["ingress"] = [
        {"protocol": "6", "from_port": 5000, "to_port": 5500, "group": "sg-pod"},
        {"protocol": "icmp", "from_port": 8, "to_port": -1, "cidr": "10.0.0.0/18"},
    ]
    snap["security_groups"]["sg-pod"]["egress"] = [_rule("-1", prefix_list="pl-1")]
    snap["prefix_lists"] = {"pl-1": {"name": "rds", "cidrs": ["10.0.160.0/24"]}}
    snap["network_acls"]["acl-rds-private"]["ingress"].append(
        _plan_entry([400, "all", "allow", "10.0.0.0/16", None, None, None, None])
    )
    snap["network_acls"]["acl-rds-private"]["egress"].append(
        _plan_entry([400, "all", "allow", "10.0.0.0/16", None, None, None, None])
    )
    assert allowed(snap, "pod_a", "rds", "tcp", 5432)
    assert allowed(snap, "pod_a", "rds", "tcp", 5500)
    assert not allowed(snap, "pod_a", "rds", "tcp", 5501)
    assert not allowed(snap, "pod_a", "rds", "udp", 5432)
    assert allowed(snap, "pod_a", "rds", "icmp", 8)
    assert not allowed(snap, "pod_a", "rds", "icmp", 13)
    assert not allowed(snap, "pod_b", "rds", "icmp", 8)  # the icmp rule names zone a's subnet only
    assert not allowed(snap, "pod_a", "dns", "tcp", DNS)  # the prefix list does not cover the DNS server


def test_network_acl_first_match_in_rule_number_order() -> None:
    snap = role_snapshot()
    ingress = snap["network_acls"]["acl-rds-private"]["ingress"]
    # listed last, numbered first: a deny of zone a's subnet before the allow (rule 100)
    ingress.append(_plan_entry([50, "tcp", "deny", "10.0.0.0/24", None, None, 5432, 5432]))
    assert not allowed(snap, "pod_a", "rds")
    assert "drop: request: acl-rds-private inbound rule 50: deny tcp 5432 from 10.0.0.0/24" in reasons_of(
        snap, "pod_a", "rds"
    )
    assert allowed(snap, "pod_b", "rds")
    ingress[-1]["rule"] = 150  # after the allow: no effect
    assert allowed(snap, "pod_a", "rds")


def test_network_acls_apply_to_replies_and_not_inside_a_subnet() -> None:
    snap = role_snapshot()
    drop_entry(snap, "acl-rds-private", "egress", 100)  # replies to zone a's EKS subnet
    assert not allowed(snap, "pod_a", "rds")
    assert "drop: reply: acl-rds-private (subnet-rds-private-a) outbound rule *: deny" in reasons_of(
        snap, "pod_a", "rds"
    )
    assert allowed(snap, "pod_b", "rds")

    snap = role_snapshot()
    drop_entry(snap, "acl-eks-private", "ingress", 300)  # tcp replies from the internet
    assert not allowed(snap, "pod_a", "internet", "tcp", HTTPS)
    assert allowed(snap, "pod_a", "rds")  # replies from the VPC: rule 100

    snap = role_snapshot()
    snap["network_acls"]["acl-eks-private"].update(ingress=[], egress=[])
    assert allowed(snap, "node_a1", "node_a2", "tcp", KUBELET)
    assert allowed(snap, "node_a1", "pod_a", "tcp", APP)
    assert not allowed(snap, "node_a1", "dns", "tcp", DNS)
    assert "same subnet subnet-eks-private-a: no network ACL" in reasons_of(snap, "node_a1", "node_a2", "tcp", KUBELET)


def test_reply_ports_are_the_clients_ephemeral_range() -> None:
    snap = role_snapshot()
    entry = next(e for e in snap["network_acls"]["acl-eks-private"]["ingress"] if e["rule"] == 300)
    entry["from_port"] = 40000
    assert not allowed(snap, "pod_a", "internet", "tcp", HTTPS)  # some client ports would lose their replies
    assert allowed(snap, "pod_a", "internet", "tcp", HTTPS, sport=50000)
    assert not allowed(snap, "pod_a", "internet", "tcp", HTTPS, sport=33000)
    assert "ports 32768-39999" in reasons_of(snap, "pod_a", "internet", "tcp", HTTPS)


def test_nat_gateway_subnet_network_acl_is_crossed_both_ways() -> None:
    snap = role_snapshot()
    drop_entry(snap, "acl-eks-public", "ingress", 100)  # from the VPC: the pods' packets into the NAT subnet
    assert allowed(snap, "pod_a", "internet", "tcp", HTTPS)  # rule 210 (tcp 443 from anywhere) still lets them in
    drop_entry(snap, "acl-eks-public", "ingress", 210)
    assert not allowed(snap, "pod_a", "internet", "tcp", HTTPS)
    assert "drop: request: acl-eks-public (subnet-eks-public-a) inbound" in reasons_of(
        snap, "pod_a", "internet", "tcp", HTTPS
    )

    snap = role_snapshot()
    drop_entry(snap, "acl-eks-public", "ingress", 300)  # tcp replies from the internet into the NAT subnet
    assert not allowed(snap, "pod_a", "internet", "tcp", HTTPS)
    assert allowed(snap, "pod_a", "rds")


def test_routes() -> None:
    snap = role_snapshot()
    snap["route_tables"]["rtb-eks-private-a"]["routes"].pop()  # no default route in zone a
    assert not allowed(snap, "pod_a", "internet", "tcp", HTTPS)
    assert "drop: request: route: rtb-eks-private-a of subnet-eks-private-a has no route to 203.0.113.10" in reasons_of(
        snap, "pod_a", "internet", "tcp", HTTPS
    )
    assert allowed(snap, "pod_b", "internet", "tcp", HTTPS)

    snap = role_snapshot()
    snap["nat_gateways"]["nat-b"]["state"] = "deleted"
    assert not allowed(snap, "pod_b", "internet", "tcp", HTTPS)
    assert "the NAT gateway is deleted" in reasons_of(snap, "pod_b", "internet", "tcp", HTTPS)

    snap = role_snapshot()
    snap["internet_gateways"]["igw-1"]["attached"] = False
    assert not allowed(snap, "pod_a", "internet", "tcp", HTTPS)

    snap = role_snapshot()
    snap["route_tables"]["rtb-eks-private-a"]["routes"][1]["target"] = "igw-1"
    assert not allowed(snap, "pod_a", "internet", "tcp", HTTPS)
    assert "endpoints have no public address" in reasons_of(snap, "pod_a", "internet", "tcp", HTTPS)

    snap = role_snapshot()  # longest prefix first; a blackhole route drops what it matches
    snap["route_tables"]["rtb-eks-private-a"]["routes"].append(
        {"destination": "203.0.113.128/25", "target": "nat-gone", "state": "blackhole"}
    )
    assert allowed(snap, "pod_a", "internet", "tcp", HTTPS)
    assert not allowed(snap, "pod_a", "far", "tcp", HTTPS)
    assert "(blackhole) drops it" in reasons_of(snap, "pod_a", "far", "tcp", HTTPS)

    snap = role_snapshot()  # a more specific route inside the VPC that is not local
    snap["route_tables"]["rtb-eks-private-a"]["routes"].append({"destination": "10.0.160.0/20", "target": "eni-fw"})
    assert not allowed(snap, "pod_a", "rds")
    assert allowed(snap, "pod_b", "rds")


def test_default_network_acl_and_main_route_table() -> None:
    snap = role_snapshot()
    snap["network_acls"]["acl-rds-private"]["subnets"] = []  # back on the default ACL, which has no entries
    assert not allowed(snap, "pod_a", "rds")
    assert "acl-default (subnet-rds-private-a) inbound rule *: deny" in reasons_of(snap, "pod_a", "rds")
    snap = role_snapshot()
    snap["route_tables"]["rtb-rds-private"]["subnets"] = []  # the main table: local route only, as before
    assert allowed(snap, "pod_a", "rds")
    snap["route_tables"]["rtb-main"]["routes"] = []
    assert not allowed(snap, "pod_a", "rds")  # the RDS subnet cannot answer
    assert "drop: reply: route: rtb-main of subnet-rds-private-a has no route to 10.0.0.10" in reasons_of(
        snap, "pod_a", "rds"
    )


def test_addresses_outside_the_fabric_and_secondary_addresses() -> None:
    snap = role_snapshot()
    assert not allowed(snap, "pod_a", "10.0.99.99")  # no interface holds it
    assert not allowed(snap, "pod_a", "198.51.100.1", "tcp", HTTPS)  # not an internet address of the fabric
    assert allowed(snap, "pod_a", "198.51.100.1", "tcp", HTTPS, internet_cidrs=["198.51.100.0/24"])
    assert not allowed(snap, "pod_a", "10.0.128.5", "tcp", HTTPS)  # a NAT gateway's own interface is no endpoint
    snap["interfaces"]["eni-rds"]["ips"].append("10.0.160.11")
    assert allowed(snap, "pod_a", "10.0.160.11")
    assert "10.0.160.11" in nft.compile_ruleset(snap).split("set sg_sg-rds {")[1].split("}")[0]


def test_bad_input() -> None:
    snap = role_snapshot()
    with pytest.raises(ValueError, match="overlaps"):
        nft.compile_ruleset(snap, internet_cidrs=["10.0.0.0/8"])
    with pytest.raises(ValueError, match="table"):
        nft.compile_ruleset(snap, table="bad name")
    with pytest.raises(ValueError, match="needs a destination port"):
        nft.explain(snap, HOSTS["pod_a"], HOSTS["rds"], "tcp")
    snap["interfaces"]["eni-pod-b"]["ips"] = [HOSTS["pod_a"]]
    with pytest.raises(ValueError, match="belongs to"):
        nft.compile_ruleset(snap)


# ---------------------------------------------------------------------------------------------- generated text


def test_script_replaces_one_table_atomically_and_is_deterministic() -> None:
    snap = role_snapshot()
    script = nft.compile_ruleset(snap, table="vpc_x")
    statements = [line for line in script.splitlines() if line and not line.startswith("#")]
    assert statements[:3] == ["table inet vpc_x", "delete table inet vpc_x", "table inet vpc_x {"]
    assert script.count("hook forward") == 1
    assert "type filter hook forward priority filter; policy drop;" in script
    assert "reject" not in script
    shuffled = json.loads(json.dumps(snap))
    for key in ("interfaces", "security_groups", "network_acls", "route_tables", "subnets"):
        items = list(shuffled[key].items())
        random.Random(7).shuffle(items)
        shuffled[key] = dict(items)
    assert nft.compile_ruleset(shuffled, table="vpc_x") == script


def test_script_names_the_rule_or_entry_behind_every_rule() -> None:
    script = nft.compile_ruleset(role_snapshot())
    assert (
        'ip saddr @sg_sg-pod tcp dport 5432 accept comment "sg-rds ingress tcp 5432 from sg-pod (PostgreSQL' in script
    )
    assert 'ip daddr 0.0.0.0/0 tcp dport 443 goto sg_ingress comment "sg-pod egress tcp 443 to 0.0.0.0/0' in script
    deny_ssh = 'tcp dport 22 counter drop comment "acl-eks-private inbound rule 110: deny tcp 22 from 0.0.0.0/0"'
    assert f"ip saddr 0.0.0.0/0 {deny_ssh}" in script
    assert 'counter drop comment "acl-rds-private outbound rule *: deny"' in script
    rules = [line.strip() for line in script.splitlines() if line.startswith("\t\t") and not line.startswith("\t\t\t")]
    verdicts = [
        line for line in rules if re.search(r" (drop|accept|return|goto sg_ingress)\b", line) and "policy" not in line
    ]
    assert len(verdicts) > 40
    for line in verdicts:
        assert 'comment "' in line, line


def test_script_routes_internet_ranges_by_longest_prefix() -> None:
    snap = role_snapshot()
    snap["route_tables"]["rtb-eks-private-a"]["routes"].append(
        {"destination": "203.0.113.128/25", "target": "nat-b", "state": "active"}
    )
    script = nft.compile_ruleset(snap)
    route_a = script.split("map route_subnet-eks-private-a {")[1].split("\t}")[0]
    assert '203.0.113.0/25 comment "internet through nat-a"' in route_a
    assert '203.0.113.128/25 comment "internet through nat-b"' in route_a
    assert allowed(snap, "pod_a", "far", "tcp", HTTPS)


def test_comments_are_quoted_safely() -> None:
    snap = role_snapshot()
    snap["security_groups"]["sg-rds"]["ingress"][0]["description"] = 'say "hi" \\ ' + "x" * 200
    script = nft.compile_ruleset(snap)
    line = next(line for line in script.splitlines() if "sg-rds ingress tcp 5432" in line)
    comment = line.split('comment "', 1)[1]
    assert comment.endswith('..."') and len(comment) <= 128 and '"' not in comment[:-1] and "\\" not in comment


# ---------------------------------------------------------------------------------------------- moto


@dataclass
class World:
    ec2: Any
    ids: dict[str, Any]

    def snap(self) -> dict[str, Any]:
        return nft.snapshot(self.ec2, self.ids["vpc"])


def _acl_kwargs(item: list[Any]) -> dict[str, Any]:
    number, protocol, action, cidr, icmp_type, icmp_code, low, high = item
    kwargs: dict[str, Any] = {
        "RuleNumber": number,
        "Protocol": _PROTOCOL[protocol],
        "RuleAction": action,
        "CidrBlock": cidr,
    }
    if low is not None:
        kwargs["PortRange"] = {"From": low, "To": high}
    if icmp_type is not None:
        kwargs["IcmpTypeCode"] = {"Type": icmp_type, "Code": icmp_code}
    return kwargs


def _associate_acl(ec2: Any, acl: str, subnet: str) -> None:
    current = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
    association = next(a for a in current[0]["Associations"] if a["SubnetId"] == subnet)
    ec2.replace_network_acl_association(AssociationId=association["NetworkAclAssociationId"], NetworkAclId=acl)


def _perm(protocol: str, port: int | None = None, *, group: str | None = None, cidr: str | None = None, note: str = ""):
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if port is not None:
        permission.update(FromPort=port, ToPort=port)
    if group:
        permission["UserIdGroupPairs"] = [{"GroupId": group, "Description": note}]
    if cidr:
        permission["IpRanges"] = [{"CidrIp": cidr, "Description": note}]
    return permission


def _revoke(ec2: Any, group: str, egress: bool, protocol: str, port: int, peer: str) -> None:
    """Revoke a rule as DescribeSecurityGroups shows it (moto matches the description too)."""
    found = ec2.describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    for permission in found["IpPermissionsEgress" if egress else "IpPermissions"]:
        if (permission["IpProtocol"], permission.get("FromPort")) != (protocol, port):
            continue
        pairs = [pair for pair in permission.get("UserIdGroupPairs", []) if pair["GroupId"] == peer]
        if pairs:
            revoke = ec2.revoke_security_group_egress if egress else ec2.revoke_security_group_ingress
            revoke(
                GroupId=group,
                IpPermissions=[{"IpProtocol": protocol, "FromPort": port, "ToPort": port, "UserIdGroupPairs": pairs}],
            )
            return
    raise AssertionError(f"{group} has no {protocol}/{port} rule for {peer}")


def build_role_vpc(ec2: Any) -> dict[str, Any]:
    """What roles/vpc (per_az NAT) and roles/pod_security_groups create, plus the endpoints' interfaces."""
    ids: dict[str, Any] = {"subnets": {}, "nats": {}, "tables": {}, "acls": {}, "enis": {}}
    vpc = ids["vpc"] = ec2.create_vpc(CidrBlock=PLAN["vpc_cidr"])["Vpc"]["VpcId"]
    for item in PLAN["subnets"]:
        tags = [
            {"Key": "Name", "Value": f"demo-dev-{item['tier']}-{item['az']}"},
            {"Key": "Tier", "Value": item["tier"]},
        ]
        subnet = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=item["cidr"],
            AvailabilityZone=item["az"],
            TagSpecifications=[{"ResourceType": "subnet", "Tags": tags}],
        )["Subnet"]["SubnetId"]
        ids["subnets"].setdefault(item["tier"], {})[item["az"]] = subnet
    subnets = ids["subnets"]
    igw = ids["igw"] = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
    ec2.attach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    for az in PLAN["nat_availability_zones"]:
        allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
        nat = ec2.create_nat_gateway(SubnetId=subnets["eks_public"][az], AllocationId=allocation)
        ids["nats"][az] = nat["NatGateway"]["NatGatewayId"]

    def table(name: str, tier: str, zones: list[str], routes: list[dict[str, str]]) -> str:
        rtb = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        for route in routes:
            ec2.create_route(RouteTableId=rtb, DestinationCidrBlock="0.0.0.0/0", **route)
        for az in zones:
            ec2.associate_route_table(RouteTableId=rtb, SubnetId=subnets[tier][az])
        ids["tables"][name] = rtb
        return rtb

    table("eks_public", "eks_public", ZONES, [{"GatewayId": igw}])
    for az in ZONES:
        table(f"eks_private-{az}", "eks_private", [az], [{"NatGatewayId": ids["nats"][az]}])
    table("rds_private", "rds_private", ZONES, [])

    for tier in PLAN["tiers"]:
        acl = ids["acls"][tier] = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
        for egress, key in ((False, "ingress"), (True, "egress")):
            for item in PLAN["nacl_entries"][tier][key]:
                ec2.create_network_acl_entry(NetworkAclId=acl, Egress=egress, **_acl_kwargs(item))
        for subnet in subnets[tier].values():
            _associate_acl(ec2, acl, subnet)
    in_vpc = [{"Name": "vpc-id", "Values": [vpc]}]
    default_acl = ec2.describe_network_acls(Filters=[*in_vpc, {"Name": "default", "Values": ["true"]}])["NetworkAcls"][
        0
    ]
    ids["acls"]["default"] = default_acl["NetworkAclId"]
    for entry in default_acl["Entries"]:  # the role empties the default ACL
        if entry["RuleNumber"] != 32767:
            ec2.delete_network_acl_entry(
                NetworkAclId=default_acl["NetworkAclId"], RuleNumber=entry["RuleNumber"], Egress=entry["Egress"]
            )
    default_sg = ec2.describe_security_groups(Filters=[*in_vpc, {"Name": "group-name", "Values": ["default"]}])
    ec2.revoke_security_group_egress(
        GroupId=default_sg["SecurityGroups"][0]["GroupId"], IpPermissions=[_perm("-1", cidr="0.0.0.0/0")]
    )

    def group(name: str, keep_egress: bool = False) -> str:
        gid = ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        if not keep_egress:  # the roles purge the default egress rule
            ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[_perm("-1", cidr="0.0.0.0/0")])
        return gid

    cluster = ids["sg_cluster"] = group("eks-cluster-sg-demo", keep_egress=True)  # as EKS makes it
    pod = ids["sg_pod"] = group("demo-dev-pod-app")
    rds = ids["sg_rds"] = group("demo-dev-rds")
    endpoint_sg = ids["sg_sts"] = group("demo-dev-sts-endpoint")
    ec2.authorize_security_group_ingress(GroupId=cluster, IpPermissions=[_perm("-1", group=cluster)])
    ec2.authorize_security_group_ingress(
        GroupId=pod,
        IpPermissions=[_perm("tcp", APP, group=cluster, note="app port 8080 from the cluster (kubelet probes)")],
    )
    ec2.authorize_security_group_egress(
        GroupId=pod,
        IpPermissions=[
            _perm("tcp", DNS, group=cluster, note="DNS (tcp) to CoreDNS behind the cluster or node security group"),
            _perm("udp", DNS, group=cluster, note="DNS (udp) to CoreDNS behind the cluster or node security group"),
            _perm("tcp", PG, group=rds, note="PostgreSQL to the RDS instance security group"),
            _perm("tcp", HTTPS, cidr="0.0.0.0/0", note="HTTPS to AWS STS through NAT (IRSA)"),
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=cluster,
        IpPermissions=[
            _perm("tcp", DNS, group=pod, note="DNS (tcp) from the app pods"),
            _perm("udp", DNS, group=pod, note="DNS (udp) from the app pods"),
        ],
    )
    ec2.authorize_security_group_ingress(
        GroupId=rds, IpPermissions=[_perm("tcp", PG, group=pod, note="PostgreSQL from the app pods")]
    )
    ec2.authorize_security_group_ingress(GroupId=endpoint_sg, IpPermissions=[_perm("tcp", HTTPS, group=pod)])

    placement = {
        "pod_a": ("eks_private", ZONES[0], pod),
        "node_a1": ("eks_private", ZONES[0], cluster),
        "node_a2": ("eks_private", ZONES[0], cluster),
        "pod_b": ("eks_private", ZONES[1], pod),
        "dns": ("eks_private", ZONES[1], cluster),
        "rds": ("rds_private", ZONES[0], rds),
    }
    for name, (tier, az, gid) in placement.items():
        eni = ec2.create_network_interface(
            SubnetId=subnets[tier][az], PrivateIpAddress=HOSTS[name], Groups=[gid], Description=name
        )
        ids["enis"][name] = eni["NetworkInterface"]["NetworkInterfaceId"]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc,
        ServiceName=f"com.amazonaws.{REGION}.sts",
        VpcEndpointType="Interface",
        SubnetIds=[subnets["eks_private"][az] for az in ZONES],
        SecurityGroupIds=[endpoint_sg],
    )
    ids["sts"] = endpoint["VpcEndpoint"]["VpcEndpointId"]
    return ids


@functools.cache
def _session() -> boto3.session.Session:
    return boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # a second less per test
    moto_ext.install()
    with mock_aws():
        ec2 = _session().client("ec2")
        yield World(ec2, build_role_vpc(ec2))


def test_snapshot_reads_the_role_shaped_vpc(world: World) -> None:
    snap = world.snap()
    ids = world.ids
    json.dumps(snap)  # plain data
    assert snap["cidrs"] == ["10.0.0.0/16"]
    assert {s["cidr"] for s in snap["subnets"].values()} == {s["cidr"] for s in PLAN["subnets"]}
    for tier in PLAN["tiers"]:
        acl = snap["network_acls"][ids["acls"][tier]]
        assert acl["subnets"] == sorted(ids["subnets"][tier].values())
        for key in ("ingress", "egress"):
            assert acl[key] == [_plan_entry(item) for item in PLAN["nacl_entries"][tier][key]]
    default_acl = snap["network_acls"][ids["acls"]["default"]]
    assert default_acl["default"] and not default_acl["subnets"]
    assert {e["action"] for e in default_acl["ingress"] + default_acl["egress"]} <= {"deny"}
    for az in ZONES:
        table = snap["route_tables"][ids["tables"][f"eks_private-{az}"]]
        assert table["subnets"] == [ids["subnets"]["eks_private"][az]]
        assert {"destination": "0.0.0.0/0", "prefix_list": None, "target": ids["nats"][az], "state": "active"} in table[
            "routes"
        ]
        nat = snap["nat_gateways"][ids["nats"][az]]
        assert nat["subnet"] == ids["subnets"]["eks_public"][az] and nat["state"] == "available"
        assert nat["interfaces"] and all(
            snap["interfaces"][eni]["subnet"] == nat["subnet"] for eni in nat["interfaces"]
        )
    assert [r["target"] for r in snap["route_tables"][ids["tables"]["rds_private"]]["routes"]] == ["local"]
    assert sum(t["main"] for t in snap["route_tables"].values()) == 1
    assert snap["internet_gateways"] == {ids["igw"]: {"attached": True}}
    assert snap["interfaces"][ids["enis"]["rds"]] == {
        "subnet": ids["subnets"]["rds_private"][ZONES[0]],
        "ips": [HOSTS["rds"]],
        "groups": [ids["sg_rds"]],
        "type": "interface",
        "description": "rds",
    }
    pod = snap["security_groups"][ids["sg_pod"]]
    assert {
        "protocol": "tcp",
        "from_port": PG,
        "to_port": PG,
        "group": ids["sg_rds"],
        "description": "PostgreSQL to the RDS instance security group",
    } in pod["egress"]
    assert {
        "protocol": "tcp",
        "from_port": HTTPS,
        "to_port": HTTPS,
        "cidr": "0.0.0.0/0",
        "description": "HTTPS to AWS STS through NAT (IRSA)",
    } in pod["egress"]
    assert len(pod["egress"]) == 4
    assert snap["security_groups"][ids["sg_rds"]]["egress"] == []
    endpoint = snap["vpc_endpoints"][ids["sts"]]
    assert (
        endpoint["type"] == "Interface" and endpoint["groups"] == [ids["sg_sts"]] and len(endpoint["interfaces"]) == 2
    )
    for eni in endpoint["interfaces"]:
        assert snap["interfaces"][eni]["groups"] == [ids["sg_sts"]]


def test_explain_on_the_moto_snapshot(world: World) -> None:
    snap = world.snap()
    assert allowed(snap, "pod_a", "rds")
    assert allowed(snap, "pod_b", "internet", "tcp", HTTPS)
    assert allowed(snap, "pod_a", "dns", "udp", DNS)
    assert not allowed(snap, "pod_a", "rds", "tcp", HTTPS)
    vpc = Vpc(snap)
    sts = [ip for ip, e in vpc.endpoints.items() if e.groups == (world.ids["sg_sts"],)]
    assert len(sts) == 2  # the interface endpoint's addresses are endpoints of the fabric
    for ip in sts:
        assert allowed(snap, "pod_a", str(ip), "tcp", HTTPS)
        assert not allowed(snap, "node_a1", str(ip), "tcp", HTTPS)
    nat_ips = {ip for n in snap["nat_gateways"].values() for ip in n["private_ips"]}
    assert nat_ips and not nat_ips & {str(ip) for ip in vpc.endpoints}
    _revoke(world.ec2, world.ids["sg_rds"], False, "tcp", PG, world.ids["sg_pod"])
    assert not allowed(world.snap(), "pod_a", "rds")


class _PagedClient:
    """A client whose paginators return the real answer one item per page."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.pages: dict[str, int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def get_paginator(self, operation: str) -> Any:
        outer = self

        class Paginator:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                answer = outer.client.get_paginator(operation).paginate(**kwargs).build_full_result()
                key = next(k for k, v in answer.items() if isinstance(v, list))
                for item in answer[key]:
                    outer.pages[operation] = outer.pages.get(operation, 0) + 1
                    yield {key: [item]}

        return Paginator()


def test_snapshot_reads_every_page(world: World) -> None:
    paged = _PagedClient(world.ec2)
    assert nft.snapshot(paged, world.ids["vpc"]) == world.snap()
    assert paged.pages["describe_network_interfaces"] > 1 and paged.pages["describe_subnets"] == 6


# ---------------------------------------------------------------------------------------------- kernel

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)

needs_kernel = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
    reason="kernel tests need root and the nft and ip commands (apt-get install nftables iproute2)",
)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def _checksum(data: bytes) -> int:
    data += b"\0" * (len(data) % 2)
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


@dataclass
class Fabric:
    """One router namespace and one namespace per host, each host listening on TCP_PORTS and UDP_PORTS."""

    hosts: dict[str, str]
    prefix: str = field(default_factory=lambda: f"ltest-{secrets.token_hex(3)}")
    namespaces: dict[str, str] = field(default_factory=dict)
    servers: list[socket.socket] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    icmp_ids: Iterator[int] = field(default_factory=lambda: iter(range(1000, 65000)))

    @property
    def router(self) -> str:
        return f"{self.prefix}-r"

    def in_netns(self, namespace: str, make: Callable[[], Any]) -> Any:
        """Call ``make`` on a thread moved into ``namespace``: sockets it creates live there."""
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                fd = os.open(f"/run/netns/{namespace}", os.O_RDONLY)
                try:
                    if _libc.setns(fd, _CLONE_NEWNET) != 0:
                        raise OSError(ctypes.get_errno(), f"setns {namespace}")
                finally:
                    os.close(fd)
                result["value"] = make()
            except BaseException as error:  # handed to the caller
                result["error"] = error

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()
        if "error" in result:
            raise result["error"]
        return result["value"]

    def up(self) -> None:
        _ip("netns", "add", self.router)
        self.namespaces["router"] = self.router
        _ip("-n", self.router, "link", "set", "lo", "up")
        subprocess.run(["ip", "netns", "exec", self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1"], check=True)
        _ip("-n", self.router, "route", "add", "blackhole", "default")
        for index, (name, address) in enumerate(self.hosts.items()):
            namespace = self.namespaces[name] = f"{self.prefix}-{index}"
            veth = f"v{index}"
            _ip("netns", "add", namespace)
            _ip("-n", self.router, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _ip("-n", self.router, "addr", "add", "169.254.0.1/32", "dev", veth)
            _ip("-n", self.router, "link", "set", veth, "up")
            _ip("-n", self.router, "route", "add", f"{address}/32", "dev", veth)
            _ip("-n", namespace, "link", "set", "lo", "up")
            _ip("-n", namespace, "addr", "add", f"{address}/32", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", namespace, "route", "add", "169.254.0.1/32", "dev", "eth0")
            _ip("-n", namespace, "route", "add", "default", "via", "169.254.0.1", "dev", "eth0")
            for port in TCP_PORTS:
                self.servers.append(self._listen(namespace, socket.SOCK_STREAM, port))
            for port in UDP_PORTS:
                self.servers.append(self._listen(namespace, socket.SOCK_DGRAM, port))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _listen(self, namespace: str, kind: int, port: int) -> socket.socket:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET, kind)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("0.0.0.0", port))
            if kind == socket.SOCK_STREAM:
                sock.listen(256)
            sock.setblocking(False)
            return sock

        return self.in_netns(namespace, make)

    def _serve(self) -> None:
        with selectors.DefaultSelector() as selector:
            for sock in self.servers:
                selector.register(sock, selectors.EVENT_READ)
            while not self.stop.is_set():
                for key, _ in selector.select(timeout=0.1):
                    sock: socket.socket = key.fileobj  # type: ignore[assignment]
                    try:
                        if sock.type == socket.SOCK_STREAM:
                            sock.accept()[0].close()
                        else:
                            data, peer = sock.recvfrom(2048)
                            sock.sendto(data, peer)
                    except OSError:
                        continue

    def down(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        for sock in self.servers:
            sock.close()
        for namespace in self.namespaces.values():
            subprocess.run(["ip", "netns", "del", namespace], check=False, capture_output=True)

    def leftovers(self) -> list[str]:
        listed = subprocess.run(["ip", "netns", "list"], check=True, capture_output=True, text=True).stdout
        return [line.split()[0] for line in listed.splitlines() if line.startswith(self.prefix)]

    def nft(self, *args: str, script: str | None = None) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.router, "nft", *args],
            input=script,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def load(self, snap: dict[str, Any]) -> str:
        script = nft.compile_ruleset(snap)
        self.nft("-f", "-", script=script)
        return script

    # ------------------------------------------------------------------ probes

    def probe(self, src: str, dst: str, proto: str, port: int) -> str:
        """'open' (answered), 'timeout' (dropped) or what else happened."""
        address = self.hosts.get(dst, dst)
        if proto == "icmp":
            return self._ping(src, address)
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        sock = self.in_netns(self.namespaces[src], lambda: socket.socket(socket.AF_INET, kind))
        sock.settimeout(TIMEOUT)
        try:
            if proto == "tcp":
                sock.connect((address, port))
            else:
                sock.sendto(b"probe", (address, port))
                sock.recvfrom(2048)
        except TimeoutError:
            return "timeout"
        except ConnectionRefusedError:
            return "refused"
        except OSError as error:
            return f"error {error}"
        finally:
            sock.close()
        return "open"

    def _ping(self, src: str, address: str) -> str:
        ident = next(self.icmp_ids)
        sock = self.in_netns(
            self.namespaces[src], lambda: socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        )
        header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
        payload = b"fabric"
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
        deadline = time.monotonic() + TIMEOUT
        try:
            sock.sendto(packet, (address, 0))
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                data, peer = sock.recvfrom(2048)
                start = (data[0] & 0x0F) * 4
                kind, _code, _sum, got, _seq = struct.unpack("!BBHHH", data[start : start + 8])
                if peer[0] == address and kind == 0 and got == ident:
                    return "open"
        except TimeoutError:
            pass
        finally:
            sock.close()
        return "timeout"

    def probe_all(self, probes: list[tuple[str, str, str, int]]) -> list[str]:
        with ThreadPoolExecutor(max_workers=min(512, max(1, len(probes)))) as pool:
            return list(pool.map(lambda p: self.probe(*p), probes))


@pytest.fixture(scope="module")
def fabric() -> Iterator[Fabric]:
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        pytest.skip("kernel tests need root and the nft and ip commands (apt-get install nftables iproute2)")
    built = Fabric(dict(HOSTS))
    try:
        built.up()
        yield built
    finally:
        built.down()
        assert built.leftovers() == []


def expect(fabric: Fabric, snap: dict[str, Any], cases: list[tuple[str, str, str, int, bool]]) -> None:
    """Each case (src, dst, proto, port, allowed): explain says so and the kernel does it."""
    outcomes = fabric.probe_all([(src, dst, proto, port) for src, dst, proto, port, _ in cases])
    report = []
    for (src, dst, proto, port, want), outcome in zip(cases, outcomes):
        said, reasons = nft.explain(snap, HOSTS[src], HOSTS[dst], proto, port)
        kernel = {"open": True, "timeout": False}.get(outcome)
        if said != want or kernel != want:
            report.append(f"{src} -> {dst} {proto}/{port}: wanted {want}, explain {said}, kernel {outcome}: {reasons}")
    assert not report, "\n".join(report)


@needs_kernel
def test_kernel_allowed_paths_connect_and_the_rest_times_out(fabric: Fabric, world: World) -> None:
    snap = world.snap()
    fabric.load(snap)
    expect(
        fabric,
        snap,
        [
            ("pod_a", "rds", "tcp", PG, True),
            ("pod_b", "rds", "tcp", PG, True),
            ("pod_a", "internet", "tcp", HTTPS, True),
            ("pod_b", "far", "tcp", HTTPS, True),
            ("pod_a", "dns", "tcp", DNS, True),
            ("pod_a", "dns", "udp", DNS, True),
            ("node_a1", "pod_a", "tcp", APP, True),
            ("node_a1", "dns", "icmp", 8, True),
            ("pod_a", "rds", "tcp", HTTPS, False),
            ("pod_a", "internet", "tcp", 53, False),
            ("rds", "pod_a", "tcp", APP, False),
            ("pod_a", "pod_b", "tcp", APP, False),
            ("internet", "pod_a", "tcp", APP, False),
            ("pod_a", "dns", "icmp", 8, False),
        ],
    )


@needs_kernel
def test_kernel_revoked_rds_ingress_times_out(fabric: Fabric, world: World) -> None:
    _revoke(world.ec2, world.ids["sg_rds"], False, "tcp", PG, world.ids["sg_pod"])
    snap = world.snap()
    fabric.load(snap)
    expect(
        fabric,
        snap,
        [("pod_a", "rds", "tcp", PG, False), ("pod_b", "rds", "tcp", PG, False), ("pod_a", "dns", "tcp", DNS, True)],
    )
    assert "no ingress rule allows it" in reasons_of(snap, "pod_a", "rds")
    counters = fabric.nft("list", "chain", "inet", "layered_vpc", f"ingress_{world.ids['sg_rds']}")
    assert re.search(r"counter packets [1-9]\d* bytes \d+ drop", counters), counters


@needs_kernel
def test_kernel_network_acl_entry_removed_times_out(fabric: Fabric, world: World) -> None:
    # rules 100 (PostgreSQL) and 200 (ephemeral, which covers 5432 too) let zone a's EKS subnet in; 110 and 210 zone b's
    for rule in (100, 200):
        world.ec2.delete_network_acl_entry(NetworkAclId=world.ids["acls"]["rds_private"], RuleNumber=rule, Egress=False)
    snap = world.snap()
    fabric.load(snap)
    expect(fabric, snap, [("pod_a", "rds", "tcp", PG, False), ("pod_b", "rds", "tcp", PG, True)])


@needs_kernel
def test_kernel_reply_direction_network_acls(fabric: Fabric, world: World) -> None:
    acls = world.ids["acls"]
    world.ec2.delete_network_acl_entry(NetworkAclId=acls["rds_private"], RuleNumber=100, Egress=True)
    snap = world.snap()
    fabric.load(snap)
    # the SYN gets through, the SYN-ACK does not: counted by the RDS ACL's outbound final deny
    expect(fabric, snap, [("pod_a", "rds", "tcp", PG, False), ("pod_b", "rds", "tcp", PG, True)])
    counters = fabric.nft("list", "chain", "inet", "layered_vpc", f"{acls['rds_private']}_out")
    assert re.search(r"counter packets [1-9]\d* bytes \d+ drop comment \"\S+ outbound rule \*: deny\"", counters), (
        counters
    )

    world.ec2.create_network_acl_entry(
        NetworkAclId=acls["rds_private"], Egress=True, **_acl_kwargs(PLAN["nacl_entries"]["rds_private"]["egress"][0])
    )
    world.ec2.delete_network_acl_entry(
        NetworkAclId=acls["eks_private"], RuleNumber=300, Egress=False
    )  # tcp replies from the internet
    snap = world.snap()
    fabric.load(snap)
    expect(
        fabric,
        snap,
        [
            ("pod_a", "internet", "tcp", HTTPS, False),
            ("pod_b", "internet", "tcp", HTTPS, False),
            ("pod_a", "rds", "tcp", PG, True),  # replies from inside the VPC: rule 100
            ("pod_a", "dns", "udp", DNS, True),
        ],
    )


@needs_kernel
def test_kernel_nat_gateway_subnet_network_acl_both_ways(fabric: Fabric, world: World) -> None:
    public = world.ids["acls"]["eks_public"]
    # into the NAT gateway's subnet from the pods: rule 100 (the VPC) and rule 210 (tcp 443 from anywhere)
    for rule in (100, 210):
        world.ec2.delete_network_acl_entry(NetworkAclId=public, RuleNumber=rule, Egress=False)
    snap = world.snap()
    fabric.load(snap)
    expect(fabric, snap, [("pod_a", "internet", "tcp", HTTPS, False), ("pod_b", "internet", "tcp", HTTPS, False)])

    for item in PLAN["nacl_entries"]["eks_public"]["ingress"]:
        if item[0] in (100, 210):
            world.ec2.create_network_acl_entry(NetworkAclId=public, Egress=False, **_acl_kwargs(item))
    world.ec2.delete_network_acl_entry(NetworkAclId=public, RuleNumber=300, Egress=False)  # the replies coming back
    snap = world.snap()
    fabric.load(snap)
    expect(fabric, snap, [("pod_a", "internet", "tcp", HTTPS, False), ("pod_a", "rds", "tcp", PG, True)])


@needs_kernel
def test_kernel_no_route_to_the_internet_times_out(fabric: Fabric, world: World) -> None:
    world.ec2.delete_route(
        RouteTableId=world.ids["tables"][f"eks_private-{ZONES[0]}"], DestinationCidrBlock="0.0.0.0/0"
    )
    snap = world.snap()
    fabric.load(snap)
    expect(
        fabric,
        snap,
        [
            ("pod_a", "internet", "tcp", HTTPS, False),
            ("pod_b", "internet", "tcp", HTTPS, True),
            ("pod_a", "rds", "tcp", PG, True),
        ],
    )

    world.ec2.delete_nat_gateway(NatGatewayId=world.ids["nats"][ZONES[1]])
    snap = world.snap()
    fabric.load(snap)
    expect(fabric, snap, [("pod_b", "internet", "tcp", HTTPS, False), ("pod_b", "far", "tcp", HTTPS, False)])
    assert "the NAT gateway is deleted" in reasons_of(snap, "pod_b", "internet", "tcp", HTTPS)


@needs_kernel
def test_kernel_same_subnet_traffic_ignores_network_acls(fabric: Fabric, world: World) -> None:
    # the EKS private subnets fall back to the default network ACL, which the role left without entries
    for subnet in world.ids["subnets"]["eks_private"].values():
        _associate_acl(world.ec2, world.ids["acls"]["default"], subnet)
    snap = world.snap()
    fabric.load(snap)
    expect(
        fabric,
        snap,
        [
            ("node_a1", "node_a2", "tcp", KUBELET, True),
            ("node_a1", "pod_a", "tcp", APP, True),
            ("node_a2", "node_a1", "icmp", 8, True),
            ("node_a1", "dns", "tcp", DNS, False),
            ("pod_a", "rds", "tcp", PG, False),
        ],
    )


@needs_kernel
def test_kernel_udp_dns(fabric: Fabric, world: World) -> None:
    snap = world.snap()
    fabric.load(snap)
    expect(
        fabric,
        snap,
        [("pod_a", "dns", "udp", DNS, True), ("pod_b", "dns", "udp", DNS, True), ("rds", "dns", "udp", DNS, False)],
    )
    _revoke(world.ec2, world.ids["sg_cluster"], False, "udp", DNS, world.ids["sg_pod"])
    snap = world.snap()
    fabric.load(snap)
    expect(
        fabric,
        snap,
        [("pod_a", "dns", "udp", DNS, False), ("pod_b", "dns", "udp", DNS, False), ("pod_a", "dns", "tcp", DNS, True)],
    )


@needs_kernel
def test_kernel_matches_explain_for_every_pair(fabric: Fabric, world: World) -> None:
    checks = [("tcp", port) for port in TCP_PORTS] + [("udp", port) for port in UDP_PORTS] + [("icmp", 8)]
    for change in (None, "open the pods to each other and to anywhere"):
        if change:
            # 0.0.0.0/0 on the pods' ingress: still nothing from the internet (no public address, NAT answers only)
            world.ec2.authorize_security_group_ingress(
                GroupId=world.ids["sg_pod"],
                IpPermissions=[_perm("-1", group=world.ids["sg_pod"]), _perm("tcp", APP, cidr="0.0.0.0/0")],
            )
            world.ec2.authorize_security_group_egress(
                GroupId=world.ids["sg_pod"], IpPermissions=[_perm("-1", group=world.ids["sg_pod"])]
            )
        snap = world.snap()
        fabric.load(snap)
        probes = [(src, dst, proto, port) for src in HOSTS for dst in HOSTS if src != dst for proto, port in checks]
        outcomes = fabric.probe_all(probes)
        mismatches = []
        opened = 0
        for (src, dst, proto, port), outcome in zip(probes, outcomes):
            said, reasons = nft.explain(snap, HOSTS[src], HOSTS[dst], proto, port)
            opened += outcome == "open"
            if outcome != ("open" if said else "timeout"):
                mismatches.append(f"{src} -> {dst} {proto}/{port}: kernel {outcome}, explain {said}: {reasons}")
        assert not mismatches, "\n".join(mismatches)
        assert opened >= 10


@needs_kernel
def test_kernel_hand_written_snapshot_route_prefixes_and_rule_order(fabric: Fabric) -> None:
    snap = role_snapshot()
    tables = snap["route_tables"]
    tables["rtb-eks-private-a"]["routes"][1]["destination"] = "203.0.113.0/25"
    tables["rtb-eks-private-b"]["routes"].append(
        {"destination": "203.0.113.192/26", "target": "nat-gone", "state": "blackhole"}
    )
    # listed last but numbered first: zone a's first /24 is denied PostgreSQL before rule 100 allows it
    snap["network_acls"]["acl-rds-private"]["ingress"].append(
        _plan_entry([50, "tcp", "deny", "10.0.0.0/24", None, None, PG, PG])
    )
    fabric.load(snap)
    expect(
        fabric,
        snap,
        [
            ("pod_a", "internet", "tcp", HTTPS, True),
            ("pod_a", "far", "tcp", HTTPS, False),
            ("pod_b", "internet", "tcp", HTTPS, True),
            ("pod_b", "far", "tcp", HTTPS, False),
            ("pod_a", "rds", "tcp", PG, False),
            ("pod_b", "rds", "tcp", PG, True),
        ],
    )


@needs_kernel
def test_kernel_reload_is_atomic_and_idempotent(fabric: Fabric) -> None:
    snap = role_snapshot()
    fabric.nft(
        "-f",
        "-",
        script="table inet other {\n chain c {\n  type filter hook forward priority 10; policy accept;\n }\n}\n",
    )
    try:
        script = fabric.load(snap)
        first = fabric.nft("list", "table", "inet", "layered_vpc")
        fabric.nft("-f", "-", script=script)
        assert fabric.nft("list", "table", "inet", "layered_vpc") == first
        tables = fabric.nft("list", "tables").split()
        assert tables.count("layered_vpc") == 1 and "other" in tables
        broken = copy.deepcopy(snap)
        broken["security_groups"]["sg-rds"]["ingress"] = []
        fabric.load(broken)
        expect(fabric, broken, [("pod_a", "rds", "tcp", PG, False)])
        fabric.load(snap)
        expect(fabric, snap, [("pod_a", "rds", "tcp", PG, True)])
    finally:
        fabric.nft("delete", "table", "inet", "other")


@needs_kernel
def test_kernel_client_ports_are_the_range_explain_assumes(fabric: Fabric) -> None:
    namespace = fabric.namespaces["pod_a"]
    done = subprocess.run(
        ["ip", "netns", "exec", namespace, "sysctl", "-n", "net.ipv4.ip_local_port_range"],
        check=True,
        capture_output=True,
        text=True,
    )
    assert tuple(map(int, done.stdout.split())) == CLIENT_PORTS
