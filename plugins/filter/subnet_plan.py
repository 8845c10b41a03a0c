# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

import ipaddress
import math
import re

from ansible.errors import AnsibleFilterError

DOCUMENTATION = r"""
name: subnet_plan
version_added: 0.1.0
short_description: Plan and check the subnet tiers of an EKS + RDS VPC
description:
  - Checks the network input of the C(layered.eks_rds.vpc) role and computes the subnet CIDRs, one per
    tier and availability zone, and the network ACL entries of every tier.
  - Pure computation with Python's C(ipaddress); it makes no API call, so the role runs it before any.
  - Invalid input raises an error whose message starts with the name of the offending role variable
    (O(variable_prefix) followed by the option name, for example C(vpc_cidr) or C(vpc_subnet_cidrs.eks_public)).
  - "Tiers: C(eks_public) (load balancers, NAT gateways), C(eks_private) (nodes and pods), C(rds_private)
    (databases, no route to the internet) and, only when O(rds_public_subnets=true), C(rds_public)."
  - "Computed CIDRs (when a tier is not in O(subnet_cidrs)): the first half of the VPC range is split
    between the EKS private subnets; the EKS public, RDS private and RDS public subnets each get one
    eighth of the VPC range (the fifth, sixth and seventh eighths), split between the zones. Each tier
    is split into the next power of two of the zone count, so adding a zone within that power of two
    keeps the existing CIDRs. The RDS public slot is reserved even when the tier is off, so turning it
    on later moves nothing."
  - With the default C(10.0.0.0/16) and two zones, the EKS private subnets are C(/18) and the other
    tiers C(/20).
positional: az_count
options:
  _input:
    description: The IPv4 CIDR of the VPC (C(vpc_cidr)), between C(/16) and C(/28), without host bits.
    type: str
    required: true
  az_count:
    description:
      - Number of availability zones (C(vpc_az_count)), at least 2.
      - Ignored when O(availability_zones) is not empty.
    type: int
    default: 2
  availability_zones:
    description:
      - Explicit zone names (C(vpc_availability_zones)), at least 2, no duplicates.
      - When empty, the first O(az_count) zones of O(region_zones) (sorted by name) are used.
    type: list
    elements: str
    default: []
  region_zones:
    description:
      - The available zones of the region, as read by C(amazon.aws.aws_az_info).
      - When given, every name in O(availability_zones) must be one of them and there must be at least
        O(az_count) of them; the plan then lists its zones and its subnets.
      - When omitted, only the checks that need no API call are made and RV(_value.availability_zones)
        is the explicit list (possibly empty).
    type: list
    elements: str
  subnet_cidrs:
    description:
      - Explicit CIDRs per tier (C(vpc_subnet_cidrs)), one per zone in zone order, for any of the keys
        C(eks_public), C(eks_private), C(rds_private) and C(rds_public). Tiers left out (or C(null)) are
        computed.
      - Every subnet must be inside the VPC CIDR, between C(/16) and C(/28), without host bits, and no
        two subnets may overlap, computed ones included.
    type: dict
    default: {}
  rds_public_subnets:
    description: Whether the C(rds_public) tier exists (C(vpc_rds_public_subnets)).
    type: bool
    default: false
  rds_public_allowed_cidrs:
    description:
      - IPv4 CIDRs allowed to reach PostgreSQL in the RDS public subnets (C(vpc_rds_public_allowed_cidrs)).
      - Required (1 to 8 entries) when O(rds_public_subnets=true); never C(0.0.0.0/0) or any other C(/0).
    type: list
    elements: str
    default: []
  eks_cluster_name:
    description: Name of the EKS cluster that uses the subnets (C(vpc_eks_cluster_name)), a DNS-1123 label.
    type: str
    required: true
  nat_gateway_mode:
    description: C(per_az) (one NAT gateway per zone) or C(single) (one in the first zone).
    type: str
    default: per_az
    choices: [per_az, single]
  postgres_port:
    description: TCP port the RDS network ACLs open.
    type: int
    default: 5432
  variable_prefix:
    description: Prefix of the variable names used in error messages.
    type: str
    default: vpc_
notes:
  - "Network ACL entries use the list form of C(amazon.aws.ec2_vpc_nacl): C([rule_number, protocol, action,
    cidr, icmp_type, icmp_code, from_port, to_port])."
  - Every public network ACL and the EKS private one deny TCP 22, TCP 3389 and UDP 3389 from C(0.0.0.0/0)
    before any rule that allows C(0.0.0.0/0); no entry allows C(0.0.0.0/0) to those ports.
  - A network ACL holds at most 20 entries per direction by default; input that would need more is rejected.
author:
  - layered.eks_rds maintainers (@layered)
"""

EXAMPLES = r"""
- name: Check the input and plan the subnets without any API call
  ansible.builtin.set_fact:
    vpc_plan: >-
      {{ '10.0.0.0/16' | layered.eks_rds.subnet_plan(
           az_count=2, eks_cluster_name='demo', subnet_cidrs={}, rds_public_subnets=false) }}
  # vpc_plan.subnet_cidrs.eks_private == ['10.0.0.0/18', '10.0.64.0/18']

- name: Read the zones of the region
  amazon.aws.aws_az_info:
  register: zones

- name: Plan with the zone names, failing on unknown ones
  ansible.builtin.set_fact:
    vpc_plan: >-
      {{ '10.0.0.0/16' | layered.eks_rds.subnet_plan(
           availability_zones=['eu-west-1a', 'eu-west-1b'],
           region_zones=zones.availability_zones | selectattr('state', 'eq', 'available')
                        | map(attribute='zone_name') | list,
           eks_cluster_name='demo') }}
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    vpc_cidr:
      description: The VPC CIDR, normalised.
      type: str
      sample: 10.0.0.0/16
    az_count:
      description: Number of zones.
      type: int
      sample: 2
    availability_zones:
      description: Zone names in order; empty when they are not known yet (no O(region_zones) and no explicit list).
      type: list
      elements: str
      sample: [eu-west-1a, eu-west-1b]
    nat_availability_zones:
      description:
        - Zones that get a NAT gateway (all of them, or the first one in C(single) mode).
        - Empty when the zones are not known.
      type: list
      elements: str
      sample: [eu-west-1a, eu-west-1b]
    tiers:
      description: Tiers of the plan, in creation order.
      type: list
      elements: str
      sample: [eks_public, eks_private, rds_private]
    public_tiers:
      description: Tiers whose subnets route to the internet gateway.
      type: list
      elements: str
      sample: [eks_public]
    subnet_cidrs:
      description: CIDRs per tier, in zone order.
      type: dict
      sample: {eks_public: [10.0.128.0/20, 10.0.144.0/20], eks_private: [10.0.0.0/18, 10.0.64.0/18],
               rds_private: [10.0.160.0/20, 10.0.176.0/20]}
    subnets:
      description:
        - One entry per tier and zone (C(tier), C(az), C(index), C(cidr), C(public)).
        - Empty when the zones are not known.
      type: list
      elements: dict
      sample: [{tier: eks_public, az: eu-west-1a, index: 0, cidr: 10.0.128.0/20, public: true}]
    nacl_entries:
      description: C(ingress) and C(egress) entries per tier, in the list form of C(amazon.aws.ec2_vpc_nacl).
      type: dict
      sample: {rds_private: {ingress: [[100, tcp, allow, 10.0.0.0/18, null, null, 5432, 5432]],
               egress: [[100, tcp, allow, 10.0.0.0/18, null, null, 1024, 65535]]}}
"""

TIERS = ("eks_public", "eks_private", "rds_private", "rds_public")
PUBLIC_TIERS = ("eks_public", "rds_public")
NAT_GATEWAY_MODES = ("per_az", "single")
# AWS accepts VPC and subnet CIDRs from /16 to /28.
MIN_PREFIX = 16
MAX_PREFIX = 28
# Default quota of entries per direction in one network ACL.
MAX_NACL_ENTRIES = 20
MAX_RDS_PUBLIC_ALLOWED_CIDRS = 8
EPHEMERAL = (1024, 65535)
DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Ports never reachable from the internet, denied before any allow from 0.0.0.0/0.
INTERNET_DENIED = (("tcp", 22), ("tcp", 3389), ("udp", 3389))
ANYWHERE = "0.0.0.0/0"


class _Plan:
    def __init__(self, prefix):
        self.prefix = prefix

    def name(self, option):
        return f"{self.prefix}{option}"

    def fail(self, option, message):
        raise AnsibleFilterError(f"{self.name(option)}: {message}")


def _network(plan, option, value, min_prefix=0, max_prefix=32):
    if not isinstance(value, str) or not value.strip():
        plan.fail(option, f"expected an IPv4 CIDR such as 10.0.0.0/16, got {value!r}")
    text = value.strip()
    if "/" not in text:
        plan.fail(option, f"{text!r} has no prefix length; write it as a CIDR such as {text}/32")
    try:
        network = ipaddress.ip_network(text, strict=False)
    except ValueError as e:
        plan.fail(option, f"{text!r} is not a valid CIDR ({e})")
    if network.version != 4:
        plan.fail(option, f"{text!r} is not an IPv4 CIDR; only IPv4 is supported")
    if str(network) != text:
        plan.fail(option, f"{text!r} has host bits set; the network is {network}")
    if not min_prefix <= network.prefixlen <= max_prefix:
        plan.fail(option, f"{text} has prefix /{network.prefixlen}; it must be between /{min_prefix} and /{max_prefix}")
    return network


def _zones(plan, az_count, availability_zones):
    if availability_zones:
        if not isinstance(availability_zones, (list, tuple)):
            plan.fail("availability_zones", f"expected a list of zone names, got {availability_zones!r}")
        names = []
        for zone in availability_zones:
            if not isinstance(zone, str) or not zone.strip():
                plan.fail("availability_zones", f"expected zone names such as eu-west-1a, got {zone!r}")
            names.append(zone.strip())
        duplicates = sorted({zone for zone in names if names.count(zone) > 1})
        if duplicates:
            plan.fail("availability_zones", f"lists {', '.join(duplicates)} more than once")
        if len(names) < 2:
            plan.fail("availability_zones", f"lists {len(names)} zone; at least 2 are required")
        return len(names), names
    if isinstance(az_count, bool) or not isinstance(az_count, int):
        plan.fail("az_count", f"expected an integer, got {az_count!r}")
    if az_count < 2:
        plan.fail("az_count", f"is {az_count}; at least 2 availability zones are required")
    return az_count, []


def _computed_cidrs(plan, vpc, count):
    """Subnets of every tier computed from the VPC range (see DOCUMENTATION)."""
    bits = max(1, math.ceil(math.log2(count)))
    small_prefix = vpc.prefixlen + 3 + bits
    if small_prefix > MAX_PREFIX:
        plan.fail(
            "cidr",
            f"{vpc} is too small to compute subnets for {count} availability zones (they would be "
            f"/{small_prefix}, smaller than /{MAX_PREFIX}); use a larger range or give {plan.name('subnet_cidrs')}",
        )
    halves = list(vpc.subnets(new_prefix=vpc.prefixlen + 1))
    eighths = list(vpc.subnets(new_prefix=vpc.prefixlen + 3))
    blocks = {
        "eks_private": halves[0].subnets(new_prefix=vpc.prefixlen + 1 + bits),
        "eks_public": eighths[4].subnets(new_prefix=small_prefix),
        "rds_private": eighths[5].subnets(new_prefix=small_prefix),
        "rds_public": eighths[6].subnets(new_prefix=small_prefix),
    }
    return {tier: [subnet for _index, subnet in zip(range(count), subnets)] for tier, subnets in blocks.items()}


def _explicit_cidrs(plan, vpc, count, subnet_cidrs, tiers):
    if subnet_cidrs is None:
        return {}
    if not isinstance(subnet_cidrs, dict):
        plan.fail("subnet_cidrs", f"expected a dict of tier: [CIDR, ...], got {subnet_cidrs!r}")
    explicit = {}
    for tier, cidrs in subnet_cidrs.items():
        option = f"subnet_cidrs.{tier}"
        if tier not in TIERS:
            plan.fail(option, f"unknown tier; the tiers are {', '.join(TIERS)}")
        if cidrs is None:
            continue
        if tier not in tiers:
            plan.fail(option, f"is set but {plan.name('rds_public_subnets')} is false")
        if not isinstance(cidrs, (list, tuple)):
            plan.fail(option, f"expected a list of CIDRs, one per availability zone, got {cidrs!r}")
        if len(cidrs) != count:
            plan.fail(option, f"lists {len(cidrs)} CIDRs for {count} availability zones; give exactly one per zone")
        networks = []
        for index, cidr in enumerate(cidrs):
            network = _network(plan, f"{option}[{index}]", cidr, MIN_PREFIX, MAX_PREFIX)
            if not network.subnet_of(vpc):
                plan.fail(f"{option}[{index}]", f"{network} is not inside {plan.name('cidr')} {vpc}")
            networks.append(network)
        explicit[tier] = networks
    return explicit


def _check_overlaps(plan, cidrs, explicit):
    placed = []
    for tier, networks in cidrs.items():
        for index, network in enumerate(networks):
            where = f"subnet_cidrs.{tier}[{index}]"
            label = plan.name(where) if tier in explicit else f"the computed {tier}[{index}]"
            for other, other_label, other_where in placed:
                if network.overlaps(other):
                    option = where if tier in explicit else other_where
                    plan.fail(option, f"{network} ({label}) overlaps {other} ({other_label})")
            placed.append((network, label, where))


def _allowed_cidrs(plan, enabled, allowed):
    if allowed is None:
        allowed = []
    if not isinstance(allowed, (list, tuple)):
        plan.fail("rds_public_allowed_cidrs", f"expected a list of CIDRs, got {allowed!r}")
    if not enabled:
        return []
    if not allowed:
        plan.fail(
            "rds_public_allowed_cidrs",
            f"is empty but {plan.name('rds_public_subnets')} is true; list the CIDRs allowed to reach PostgreSQL",
        )
    if len(allowed) > MAX_RDS_PUBLIC_ALLOWED_CIDRS:
        plan.fail(
            "rds_public_allowed_cidrs",
            f"lists {len(allowed)} CIDRs; at most {MAX_RDS_PUBLIC_ALLOWED_CIDRS} fit in one network ACL",
        )
    networks = []
    for index, cidr in enumerate(allowed):
        option = f"rds_public_allowed_cidrs[{index}]"
        network = _network(plan, option, cidr)
        if network.prefixlen == 0:
            plan.fail(option, f"{network} opens PostgreSQL to the whole internet; list specific CIDRs")
        if network in networks:
            plan.fail(option, f"{network} is listed more than once")
        networks.append(network)
    return [str(network) for network in networks]


def _entry(number, protocol, action, cidr, ports=None):
    low, high = ports if ports else (None, None)
    return [number, protocol, action, str(cidr), None, None, low, high]


def _internet_denies(start):
    return [
        _entry(start + 10 * index, protocol, "deny", ANYWHERE, (port, port))
        for index, (protocol, port) in enumerate(INTERNET_DENIED)
    ]


def _nacl_entries(vpc, cidrs, allowed, postgres_port):
    """Least-privilege entries per tier (see the notes in DOCUMENTATION)."""
    port = (postgres_port, postgres_port)
    eks_private = cidrs["eks_private"]
    entries = {
        # Load balancers and NAT gateways: HTTP(S) in, return traffic in, the whole VPC in.
        "eks_public": {
            "ingress": [
                _entry(100, "all", "allow", vpc),
                *_internet_denies(110),
                _entry(200, "tcp", "allow", ANYWHERE, (80, 80)),
                _entry(210, "tcp", "allow", ANYWHERE, (443, 443)),
                _entry(300, "tcp", "allow", ANYWHERE, EPHEMERAL),
                _entry(310, "udp", "allow", ANYWHERE, EPHEMERAL),
            ],
            "egress": [_entry(100, "all", "allow", ANYWHERE)],
        },
        # Nodes and pods: the VPC in, return traffic of connections made through the NAT gateways.
        "eks_private": {
            "ingress": [
                _entry(100, "all", "allow", vpc),
                *_internet_denies(110),
                _entry(300, "tcp", "allow", ANYWHERE, EPHEMERAL),
                _entry(310, "udp", "allow", ANYWHERE, EPHEMERAL),
            ],
            "egress": [_entry(100, "all", "allow", ANYWHERE)],
        },
        # Databases: PostgreSQL from the EKS private subnets and the replies to them, nothing else.
        "rds_private": {
            "ingress": [_entry(100 + 10 * i, "tcp", "allow", cidr, port) for i, cidr in enumerate(eks_private)]
            + [_entry(200 + 10 * i, "tcp", "allow", cidr, EPHEMERAL) for i, cidr in enumerate(eks_private)],
            "egress": [_entry(100 + 10 * i, "tcp", "allow", cidr, EPHEMERAL) for i, cidr in enumerate(eks_private)],
        },
    }
    if "rds_public" in cidrs:
        entries["rds_public"] = {
            "ingress": _internet_denies(110)
            + [_entry(200 + 10 * i, "tcp", "allow", cidr, port) for i, cidr in enumerate(allowed)]
            + [_entry(300 + 10 * i, "tcp", "allow", cidr, EPHEMERAL) for i, cidr in enumerate(allowed)],
            "egress": [_entry(100 + 10 * i, "tcp", "allow", cidr, EPHEMERAL) for i, cidr in enumerate(allowed)],
        }
    return entries


def _check_nacl_sizes(plan, entries, zones_option):
    for tier, rules in entries.items():
        for direction, rule_list in rules.items():
            if len(rule_list) > MAX_NACL_ENTRIES:
                option = "rds_public_allowed_cidrs" if tier == "rds_public" else zones_option
                plan.fail(
                    option,
                    f"the {tier} network ACL would need {len(rule_list)} {direction} entries, "
                    f"more than the {MAX_NACL_ENTRIES} a network ACL holds",
                )


def _resolve_zones(plan, count, names, region_zones):
    if region_zones is None:
        return names
    if not isinstance(region_zones, (list, tuple)):
        plan.fail("availability_zones", f"the zones of the region must be a list, got {region_zones!r}")
    known = sorted({str(zone) for zone in region_zones})
    if names:
        unknown = [zone for zone in names if zone not in known]
        if unknown:
            verb = "is not an available zone" if len(unknown) == 1 else "are not available zones"
            plan.fail(
                "availability_zones",
                f"{', '.join(unknown)} {verb} of the region; available: {', '.join(known) or 'none'}",
            )
        return names
    if len(known) < count:
        plan.fail("az_count", f"is {count} but the region has {len(known)} available zones ({', '.join(known)})")
    return known[:count]


def subnet_plan(
    vpc_cidr,
    az_count=2,
    *,
    availability_zones=None,
    region_zones=None,
    subnet_cidrs=None,
    rds_public_subnets=False,
    rds_public_allowed_cidrs=None,
    eks_cluster_name=None,
    nat_gateway_mode="per_az",
    postgres_port=5432,
    variable_prefix="vpc_",
):
    """Check the VPC role's network input and plan its subnets and network ACLs (see DOCUMENTATION)."""
    plan = _Plan(variable_prefix)
    vpc = _network(plan, "cidr", vpc_cidr, MIN_PREFIX, MAX_PREFIX)
    count, names = _zones(plan, az_count, availability_zones)
    zones_option = "availability_zones" if names else "az_count"

    if not isinstance(eks_cluster_name, str) or not DNS1123_LABEL.match(eks_cluster_name):
        plan.fail(
            "eks_cluster_name",
            f"{eks_cluster_name!r} is not a DNS-1123 label (1 to 63 lowercase letters, digits and '-', "
            "starting and ending with a letter or digit)",
        )
    if nat_gateway_mode not in NAT_GATEWAY_MODES:
        plan.fail("nat_gateway_mode", f"{nat_gateway_mode!r} is not one of {', '.join(NAT_GATEWAY_MODES)}")
    if not isinstance(rds_public_subnets, bool):
        plan.fail("rds_public_subnets", f"expected true or false, got {rds_public_subnets!r}")
    if isinstance(postgres_port, bool) or not isinstance(postgres_port, int) or not 1 <= postgres_port <= 65535:
        plan.fail("postgres_port", f"expected a TCP port between 1 and 65535, got {postgres_port!r}")

    tiers = [tier for tier in TIERS if tier != "rds_public" or rds_public_subnets]
    allowed = _allowed_cidrs(plan, rds_public_subnets, rds_public_allowed_cidrs)
    explicit = _explicit_cidrs(plan, vpc, count, subnet_cidrs, tiers)
    computed = None
    cidrs = {}
    for tier in tiers:
        if tier in explicit:
            cidrs[tier] = explicit[tier]
        else:
            computed = computed or _computed_cidrs(plan, vpc, count)
            cidrs[tier] = computed[tier]
    _check_overlaps(plan, cidrs, explicit)

    entries = _nacl_entries(vpc, cidrs, allowed, postgres_port)
    _check_nacl_sizes(plan, entries, zones_option)

    zones = _resolve_zones(plan, count, names, region_zones)
    nat_zones = list(zones) if nat_gateway_mode == "per_az" else list(zones[:1])
    subnets = [
        dict(tier=tier, az=zone, index=index, cidr=str(cidrs[tier][index]), public=tier in PUBLIC_TIERS)
        for tier in tiers
        for index, zone in enumerate(zones)
    ]
    return dict(
        vpc_cidr=str(vpc),
        az_count=count,
        availability_zones=list(zones),
        nat_availability_zones=nat_zones,
        tiers=tiers,
        public_tiers=[tier for tier in tiers if tier in PUBLIC_TIERS],
        subnet_cidrs={tier: [str(network) for network in networks] for tier, networks in cidrs.items()},
        subnets=subnets,
        nacl_entries=entries,
    )


class FilterModule:
    """layered.eks_rds network planning filters."""

    def filters(self):
        return {"subnet_plan": subnet_plan}
