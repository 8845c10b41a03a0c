"""What a VPC lets through, decided in Python from a snapshot (its shape: ``snapshot.py``).

The nftables compiler (``nft.py``) and ``explain`` both read a snapshot through ``Vpc``, so the routes they
use are the same; the matching of security group rules and network ACL entries is done twice, once here and
once by the kernel on the compiled ruleset, and the tests compare the two.

Semantics, for IPv4 between the interfaces of one VPC and the internet addresses behind the fabric's router:

* an *endpoint* is one private address of a network interface of the VPC (NAT gateway interfaces excluded:
  the router plays the NAT gateways); an *internet address* is one of ``internet_cidrs``; nothing else is routed;
* security groups are stateful and allow-only: a new connection from A to B is accepted when an egress rule of
  one of A's groups allows (B, protocol, port) and an ingress rule of one of B's groups allows (A, protocol,
  port); the internet side has no group; replies are never checked against security groups;
* network ACLs are stateless: every packet that crosses from one subnet to another passes the outbound entries
  of the first subnet's ACL and the inbound entries of the second's, in rule-number order, first match wins,
  anything unmatched is denied; packets inside one subnet pass no ACL;
* a packet from subnet S to D is routed by S's route table (explicit association, else the main table), longest
  prefix first: a VPC address needs a ``local`` route; an internet address needs an available public NAT gateway
  whose own subnet routes D to an internet gateway attached to the VPC. Blackhole routes drop what they match;
  direct internet gateway routes do not count (endpoints have no public address). Through a NAT gateway a packet
  also crosses the NAT gateway subnet's ACL: inbound from the endpoint and outbound to the internet, and for the
  replies inbound from the internet and outbound to the endpoint. The internet never opens a connection.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Callable, Optional

IPv4Address = ipaddress.IPv4Address
IPv4Network = ipaddress.IPv4Network

DEFAULT_INTERNET = ("203.0.113.0/24",)
# Source ports of the fabric's clients: Linux's default net.ipv4.ip_local_port_range.
CLIENT_PORTS = (32768, 60999)
ALL, ICMP, TCP, UDP = -1, 1, 6, 17
ECHO_REPLY, ECHO_REQUEST = 0, 8
_PROTOCOLS = {"-1": ALL, "all": ALL, "icmp": ICMP, "tcp": TCP, "udp": UDP, "icmpv6": 58}
_NAMES = {ICMP: "icmp", TCP: "tcp", UDP: "udp"}
PORTED = (TCP, UDP)

Ports = tuple[int, int]


def protocol_number(value: Any) -> int:
    """-1 (all), or an IP protocol number, from EC2's spelling ("tcp", "6", "-1", ...)."""
    text = str(value).strip().lower()
    if text in _PROTOCOLS:
        return _PROTOCOLS[text]
    if text.isdigit() and int(text) <= 255:
        return int(text)
    raise ValueError(f"unknown IP protocol {value!r}")


def protocol_name(number: int) -> str:
    return "all traffic" if number == ALL else _NAMES.get(number, f"protocol {number}")


def _ports(low: Any, high: Any) -> Ports | None:
    """A port range; None means every port (also for EC2's -1)."""
    low = None if low is None or int(low) < 0 else int(low)
    high = None if high is None or int(high) < 0 else int(high)
    if low is None and high is None:
        return None
    ports = (low or 0, 65535 if high is None else high)
    return None if ports == (0, 65535) else ports


def _any(value: Any) -> int:
    return -1 if value is None else int(value)


@dataclass(frozen=True)
class Match:
    """The traffic part of a security group rule or network ACL entry."""

    protocol: int
    ports: Ports | None = None  # tcp, udp: None = every port
    icmp_type: int = -1  # icmp: -1 = any
    icmp_code: int = -1

    @classmethod
    def of(cls, protocol: Any, from_port: Any = None, to_port: Any = None, icmp: tuple[Any, Any] | None = None):
        number = protocol_number(protocol)
        if number in PORTED:
            return cls(number, _ports(from_port, to_port))
        if number == ICMP:
            kind, code = icmp if icmp is not None else (from_port, to_port)
            return cls(number, None, _any(kind), _any(code))
        return cls(number)

    def covers(self, protocol: int, port: int | None, code: int | None) -> bool:
        """Whether it matches a packet (port: destination port, or the icmp type)."""
        if self.protocol == ALL:
            return True
        if self.protocol != protocol:
            return False
        if protocol in PORTED:
            return self.ports is None or self.ports[0] <= (port or 0) <= self.ports[1]
        if protocol == ICMP:
            return self.icmp_type in (-1, port) and self.icmp_code in (-1, code)
        return True

    def text(self) -> str:
        name = protocol_name(self.protocol)
        if self.protocol in PORTED:
            if self.ports is None:
                return f"{name} all ports"
            low, high = self.ports
            return f"{name} {low}" if low == high else f"{name} {low}-{high}"
        if self.protocol == ICMP:
            kind = "any type" if self.icmp_type == -1 else f"type {self.icmp_type}"
            return f"{name} {kind}" + ("" if self.icmp_code == -1 else f" code {self.icmp_code}")
        return name


@dataclass(frozen=True)
class SgRule:
    group: str
    egress: bool
    match: Match
    cidr: IPv4Network | None = None
    peer_group: str | None = None
    prefix_list: str | None = None
    description: str = ""

    def peer(self) -> str:
        return str(self.cidr) if self.cidr is not None else (self.peer_group or self.prefix_list or "?")

    def text(self) -> str:
        way = "egress" if self.egress else "ingress"
        side = "to" if self.egress else "from"
        note = f" ({self.description})" if self.description else ""
        return f"{self.group} {way} {self.match.text()} {side} {self.peer()}{note}"


@dataclass(frozen=True)
class AclEntry:
    acl: str
    egress: bool
    number: int
    allow: bool
    match: Match
    cidr: IPv4Network

    def text(self) -> str:
        way, side = ("outbound", "to") if self.egress else ("inbound", "from")
        action = "allow" if self.allow else "deny"
        return f"{self.acl} {way} rule {self.number}: {action} {self.match.text()} {side} {self.cidr}"


@dataclass(frozen=True)
class Route:
    table: str
    destination: IPv4Network
    target: str
    active: bool

    def text(self) -> str:
        return f"{self.table} {self.destination} -> {self.target}" + ("" if self.active else " (blackhole)")


@dataclass(frozen=True)
class Endpoint:
    ip: IPv4Address
    interface: str
    subnet: str
    groups: tuple[str, ...]


# A network ACL a packet crosses: (acl id or None, outbound?, subnet). Outbound entries match the packet's
# destination, inbound ones its source (the fabric does not translate addresses, so this also holds through the
# NAT gateways).
Hop = tuple[Optional[str], bool, str]
Step = Callable[[bool, str], None]


def _network(value: str) -> IPv4Network:
    return ipaddress.ip_network(value, strict=False)  # type: ignore[return-value]


class Vpc:
    """A snapshot, indexed for the questions the compiler and ``explain`` ask."""

    def __init__(self, snapshot: dict[str, Any], internet_cidrs: Iterable[str] = DEFAULT_INTERNET) -> None:
        self.id = snapshot.get("vpc_id", "vpc")
        self.cidrs = [_network(cidr) for cidr in snapshot.get("cidrs", [])]
        self.internet = list(ipaddress.collapse_addresses(_network(cidr) for cidr in internet_cidrs))
        for net in self.internet:
            for cidr in self.cidrs:
                if net.overlaps(cidr):
                    raise ValueError(f"internet range {net} overlaps the VPC's {cidr}")
        self.subnets = {sid: _network(s["cidr"]) for sid, s in snapshot.get("subnets", {}).items()}
        self.nats = {nid: dict(n) for nid, n in snapshot.get("nat_gateways", {}).items()}
        self.igws = {gid: bool(g.get("attached", True)) for gid, g in snapshot.get("internet_gateways", {}).items()}
        self.prefix_lists = {
            pid: [_network(cidr) for cidr in p.get("cidrs", [])] for pid, p in snapshot.get("prefix_lists", {}).items()
        }

        nat_interfaces = {eni for n in self.nats.values() for eni in n.get("interfaces", [])}
        nat_ips = {ip for n in self.nats.values() for ip in n.get("private_ips", [])}
        self.endpoints: dict[IPv4Address, Endpoint] = {}
        for eni_id, eni in sorted(snapshot.get("interfaces", {}).items()):
            if eni_id in nat_interfaces or eni.get("type") == "nat_gateway":
                continue
            subnet = eni["subnet"]
            for text in eni.get("ips", []):
                if text in nat_ips:
                    continue
                ip = IPv4Address(text)
                if ip in self.endpoints:
                    raise ValueError(f"{ip} belongs to {self.endpoints[ip].interface} and {eni_id}")
                if subnet in self.subnets and ip not in self.subnets[subnet]:
                    raise ValueError(f"{ip} of {eni_id} is outside its subnet {subnet} {self.subnets[subnet]}")
                self.endpoints[ip] = Endpoint(ip, eni_id, subnet, tuple(sorted(eni.get("groups", []))))

        self.members: dict[str, frozenset[IPv4Address]] = {}
        for endpoint in self.endpoints.values():
            for group in endpoint.groups:
                self.members[group] = self.members.get(group, frozenset()) | {endpoint.ip}

        self.group_names = {gid: g.get("name", "") for gid, g in snapshot.get("security_groups", {}).items()}
        self.sg_rules: dict[str, dict[bool, list[SgRule]]] = {}
        for gid, group in snapshot.get("security_groups", {}).items():
            self.sg_rules[gid] = {
                egress: [self._sg_rule(gid, egress, rule) for rule in group.get(key, [])]
                for egress, key in ((False, "ingress"), (True, "egress"))
            }

        self.acl_of_subnet: dict[str, str] = {}
        self.default_acl = None
        self.acl_entries: dict[str, dict[bool, list[AclEntry]]] = {}
        for aid, acl in sorted(snapshot.get("network_acls", {}).items()):
            if acl.get("default"):
                self.default_acl = aid
            for subnet in acl.get("subnets", []):
                self.acl_of_subnet[subnet] = aid
            self.acl_entries[aid] = {
                egress: sorted(
                    (self._acl_entry(aid, egress, entry) for entry in acl.get(key, [])), key=lambda e: e.number
                )
                for egress, key in ((False, "ingress"), (True, "egress"))
            }

        self.table_of_subnet: dict[str, str] = {}
        self.main_table = None
        self.routes: dict[str, list[Route]] = {}
        for tid, table in sorted(snapshot.get("route_tables", {}).items()):
            if table.get("main"):
                self.main_table = tid
            for subnet in table.get("subnets", []):
                self.table_of_subnet[subnet] = tid
            self.routes[tid] = [
                Route(tid, _network(route["destination"]), route.get("target", ""), route.get("state") != "blackhole")
                for route in table.get("routes", [])
                if route.get("destination")  # prefix list destinations (gateway endpoints) are not modelled
            ]

    # ------------------------------------------------------------------ parsing

    @staticmethod
    def _sg_rule(group: str, egress: bool, rule: dict[str, Any]) -> SgRule:
        return SgRule(
            group=group,
            egress=egress,
            match=Match.of(rule.get("protocol", "-1"), rule.get("from_port"), rule.get("to_port")),
            cidr=_network(rule["cidr"]) if rule.get("cidr") else None,
            peer_group=rule.get("group"),
            prefix_list=rule.get("prefix_list"),
            description=rule.get("description") or "",
        )

    @staticmethod
    def _acl_entry(acl: str, egress: bool, entry: dict[str, Any]) -> AclEntry:
        return AclEntry(
            acl=acl,
            egress=egress,
            number=int(entry["rule"]),
            allow=str(entry.get("action", "deny")).lower() == "allow",
            match=Match.of(
                entry.get("protocol", "-1"),
                entry.get("from_port"),
                entry.get("to_port"),
                (entry.get("icmp_type"), entry.get("icmp_code")),
            ),
            cidr=_network(entry["cidr"]),
        )

    # ------------------------------------------------------------------ lookups

    def endpoint(self, ip: IPv4Address) -> Endpoint | None:
        return self.endpoints.get(ip)

    def is_internet(self, ip: IPv4Address) -> bool:
        return any(ip in net for net in self.internet)

    def table_of(self, subnet: str) -> str | None:
        return self.table_of_subnet.get(subnet, self.main_table)

    def acl_of(self, subnet: str) -> str | None:
        return self.acl_of_subnet.get(subnet, self.default_acl)

    def lookup(self, table: str | None, ip: IPv4Address) -> Route | None:
        """The longest-prefix route of ``table`` for ``ip`` (a blackhole route is returned: it drops)."""
        best = None
        for route in self.routes.get(table or "", []):
            if ip in route.destination and (best is None or route.destination.prefixlen > best.destination.prefixlen):
                best = route
        return best

    def group_ips(self, group: str) -> frozenset[IPv4Address]:
        return self.members.get(group, frozenset())

    def peer_covers(self, rule: SgRule, ip: IPv4Address) -> bool:
        if rule.cidr is not None:
            return ip in rule.cidr
        if rule.peer_group is not None:
            return ip in self.group_ips(rule.peer_group)
        if rule.prefix_list is not None:
            return any(ip in net for net in self.prefix_lists.get(rule.prefix_list, []))
        return False

    def rules_of(self, groups: Iterable[str], egress: bool) -> list[SgRule]:
        return [rule for group in groups for rule in self.sg_rules.get(group, {}).get(egress, [])]

    def sg_allows(self, endpoint: Endpoint, egress: bool, peer: IPv4Address, protocol: int, port, code):
        """The first rule of the endpoint's groups that lets the connection out (egress) or in, or None."""
        for rule in self.rules_of(endpoint.groups, egress):
            if rule.match.covers(protocol, port, code) and self.peer_covers(rule, peer):
                return rule
        return None

    def acl_verdicts(self, acl: str, egress: bool, remote: IPv4Address, protocol: int, ports: Ports | None, code):
        """[(ports, first matching entry or None = the final deny)], split over the range ``ports`` for tcp and udp.

        For other protocols there is one item; for icmp ``ports`` is (type, type) and ``code`` the code.
        """
        entries = [e for e in self.acl_entries.get(acl, {}).get(egress, []) if remote in e.cidr]
        if protocol not in PORTED or ports is None:
            kind = ports[0] if ports else None
            first = next((e for e in entries if e.match.covers(protocol, kind, code)), None)
            return [(ports, first)]
        low, high = ports
        cuts = {low, high + 1}
        for entry in entries:
            if entry.match.ports is not None:
                cuts |= {p for p in (entry.match.ports[0], entry.match.ports[1] + 1) if low < p <= high}
        points = sorted(cuts)
        verdicts: list[tuple[Ports, AclEntry | None]] = []
        for start, stop in zip(points, points[1:]):
            first = next((e for e in entries if e.match.covers(protocol, start, code)), None)
            if verdicts and verdicts[-1][1] == first:
                verdicts[-1] = ((verdicts[-1][0][0], stop - 1), first)
            else:
                verdicts.append(((start, stop - 1), first))
        return verdicts

    # ------------------------------------------------------------------ paths

    def crossing(self, first: str, second: str) -> list[Hop]:
        if first == second:
            return []
        return [(self.acl_of(first), True, first), (self.acl_of(second), False, second)]

    def out_through_nat(self, subnet: str, nat_subnet: str) -> list[Hop]:
        return [*self.crossing(subnet, nat_subnet), (self.acl_of(nat_subnet), True, nat_subnet)]

    def in_through_nat(self, nat_subnet: str, subnet: str) -> list[Hop]:
        return [(self.acl_of(nat_subnet), False, nat_subnet), *self.crossing(nat_subnet, subnet)]

    def local_route(self, subnet: str, ip: IPv4Address) -> tuple[bool, str]:
        table = self.table_of(subnet)
        route = self.lookup(table, ip)
        if table is None:
            return False, f"route: {subnet} has no route table"
        if route is None:
            return False, f"route: {table} of {subnet} has no route to {ip}"
        if not route.active:
            return False, f"route: {route.text()} drops it"
        if route.target != "local":
            return False, f"route: {route.text()} does not deliver inside the VPC (only a local route does)"
        return True, f"route: {subnet} reaches {ip} by {route.text()}"

    def nat_path(self, subnet: str, ip: IPv4Address) -> tuple[str | None, list[tuple[bool, str]]]:
        """The NAT gateway that takes ``subnet``'s packets to the internet address ``ip``, or None and why."""
        table = self.table_of(subnet)
        if table is None:
            return None, [(False, f"route: {subnet} has no route table")]
        route = self.lookup(table, ip)
        if route is None:
            return None, [(False, f"route: {table} of {subnet} has no route to {ip}")]
        if not route.active:
            return None, [(False, f"route: {route.text()} drops it")]
        if route.target.startswith("igw-"):
            return None, [(False, f"route: {route.text()} is unusable: endpoints have no public address")]
        if not route.target.startswith("nat-"):
            return None, [(False, f"route: {route.text()} does not lead to the internet")]
        nat = self.nats.get(route.target)
        if nat is None:
            return None, [(False, f"route: {route.text()}: no such NAT gateway")]
        if nat.get("state") != "available":
            return None, [(False, f"route: {route.text()}: the NAT gateway is {nat.get('state')}")]
        if nat.get("connectivity", "public") != "public":
            return None, [(False, f"route: {route.text()}: a private NAT gateway does not reach the internet")]
        nat_subnet = nat.get("subnet") or ""
        nat_table = self.table_of(nat_subnet)
        onward = self.lookup(nat_table, ip)
        where = f"NAT gateway {route.target} in {nat_subnet}"
        reasons = [(True, f"route: {subnet} reaches {ip} by {route.text()}")]
        if onward is None:
            return None, [*reasons, (False, f"route: {where}: {nat_table} has no route to {ip}")]
        if not onward.active:
            return None, [*reasons, (False, f"route: {where}: {onward.text()} drops it")]
        if not onward.target.startswith("igw-"):
            return None, [*reasons, (False, f"route: {where}: {onward.text()} is not an internet gateway")]
        if not self.igws.get(onward.target, False):
            return None, [*reasons, (False, f"route: {where}: {onward.target} is not attached to {self.id}")]
        return route.target, [*reasons, (True, f"route: {where} sends it on by {onward.text()}")]

    def path(self, src: IPv4Address, dst: IPv4Address) -> tuple[list[Hop] | None, list[tuple[bool, str]]]:
        """Route check of one packet and the network ACLs it crosses (None: not forwarded)."""
        a, b = self.endpoint(src), self.endpoint(dst)
        if a is not None and b is not None:
            ok, reason = self.local_route(a.subnet, dst)
            if not ok:
                return None, [(False, reason)]
            same = [(True, f"same subnet {a.subnet}: no network ACL")] if a.subnet == b.subnet else []
            return self.crossing(a.subnet, b.subnet), [(True, reason), *same]
        if a is not None and self.is_internet(dst):
            nat, reasons = self.nat_path(a.subnet, dst)
            if nat is None:
                return None, reasons
            return self.out_through_nat(a.subnet, self.nats[nat]["subnet"]), reasons
        if b is not None and self.is_internet(src):
            nat, reasons = self.nat_path(b.subnet, src)
            if nat is None:
                return None, reasons
            return self.in_through_nat(self.nats[nat]["subnet"], b.subnet), reasons
        return None, [(False, f"no path from {src} to {dst} in the fabric")]

    def internet_paths(self, subnet: str) -> list[tuple[IPv4Address, IPv4Address, str]]:
        """[(first, last, NAT gateway)]: the internet ranges ``subnet`` reaches, split where routes differ."""
        cuts: set[int] = set()
        for routes in self.routes.values():
            for route in routes:
                cuts |= {int(route.destination.network_address), int(route.destination.broadcast_address) + 1}
        found: list[tuple[int, int, str]] = []
        for net in self.internet:
            low, high = int(net.network_address), int(net.broadcast_address)
            points = sorted({low, high + 1} | {p for p in cuts if low < p <= high})
            for start, stop in zip(points, points[1:]):
                nat, _reasons = self.nat_path(subnet, IPv4Address(start))
                if nat is None:
                    continue
                if found and found[-1][2] == nat and found[-1][1] + 1 == start:
                    found[-1] = (found[-1][0], stop - 1, nat)
                else:
                    found.append((start, stop - 1, nat))
        return [(IPv4Address(low), IPv4Address(high), nat) for low, high, nat in found]

    # ------------------------------------------------------------------ explain

    def _acls(self, step: Step, label: str, hops, src, dst, protocol: int, ports: Ports | None, code) -> None:
        allowed: list[Ports | None] = [ports]
        for acl, egress, subnet in hops:
            if acl is None:
                step(False, f"{label}: {subnet} has no network ACL")
                return
            remote = dst if egress else src
            way = "outbound" if egress else "inbound"
            passed: list[Ports | None] = []
            for wanted in allowed:
                for span, entry in self.acl_verdicts(acl, egress, remote, protocol, wanted, code):
                    part = f" ports {span[0]}-{span[1]}" if protocol in PORTED and span != ports and span else ""
                    if entry is None:
                        step(False, f"{label}{part}: {acl} ({subnet}) {way} rule *: deny (no entry matches)")
                    else:
                        step(entry.allow, f"{label}{part}: {entry.text()} ({subnet})")
                        if entry.allow:
                            passed.append(span)
            allowed = passed
            if not allowed:
                return

    def _packet(self, step: Step, label: str, src, dst, protocol: int, ports: Ports | None, code) -> None:
        hops, reasons = self.path(src, dst)
        for ok, reason in reasons:
            step(ok, f"{label}: {reason}")
        if hops is not None:
            self._acls(step, label, hops, src, dst, protocol, ports, code)

    def explain(self, src, dst, protocol, port=None, *, sport=None, icmp_code=0) -> tuple[bool, list[str]]:
        src, dst = IPv4Address(str(src)), IPv4Address(str(dst))
        number = protocol_number(protocol)
        if number == ALL:
            raise ValueError("explain needs one protocol, not -1")
        if number in PORTED and port is None:
            raise ValueError(f"{protocol_name(number)} needs a destination port")
        reasons: list[str] = []
        verdict = [True]

        def step(ok: bool, text: str) -> None:
            reasons.append(("ok: " if ok else "drop: ") + text)
            verdict[0] = verdict[0] and ok

        a, b = self.endpoint(src), self.endpoint(dst)
        for ip, endpoint in ((src, a), (dst, b)):
            if endpoint is None and not self.is_internet(ip):
                step(False, f"{ip} is neither an interface address of {self.id} nor an internet address")
        if not verdict[0]:
            return False, reasons
        if a is None:
            step(False, f"{src} is on the internet: it cannot open connections into the VPC (no public addresses)")
            return False, reasons

        what = f"{protocol_name(number)} {src} -> {dst}" + (f" port {port}" if port is not None else "")
        where = f"{b.interface} in {b.subnet}" if b is not None else "the internet"
        step(True, f"{what}: from {a.interface} in {a.subnet} to {where}")
        request_ports = (int(port), int(port)) if port is not None else None
        self._packet(step, "request", src, dst, number, request_ports, icmp_code)
        if number in PORTED:
            reply = (int(sport), int(sport)) if sport is not None else CLIENT_PORTS
            self._packet(step, "reply", dst, src, number, reply, None)
        elif number == ICMP and port == ECHO_REQUEST:
            self._packet(step, "reply", dst, src, number, (ECHO_REPLY, ECHO_REPLY), 0)
        elif number != ICMP:
            self._packet(step, "reply", dst, src, number, None, None)

        kind = int(port) if port is not None else None
        code = icmp_code if number == ICMP else None
        if not a.groups:
            step(False, f"security groups: {a.interface} has none, so nothing leaves it")
        else:
            rule = self.sg_allows(a, True, dst, number, kind, code)
            if rule is not None:
                step(True, f"security group {rule.text()}")
            else:
                step(False, f"security groups {', '.join(a.groups)} of {a.interface}: no egress rule allows it")
        if b is None:
            step(True, f"security groups: {dst} is outside the VPC, only the VPC side's rules apply")
        elif not b.groups:
            step(False, f"security groups: {b.interface} has none, so nothing reaches it")
        else:
            rule = self.sg_allows(b, False, src, number, kind, code)
            if rule is not None:
                step(True, f"security group {rule.text()}")
            else:
                step(False, f"security groups {', '.join(b.groups)} of {b.interface}: no ingress rule allows it")
        return verdict[0], reasons


def explain(
    snapshot: dict[str, Any],
    src: str,
    dst: str,
    proto: Any,
    port: int | None = None,
    *,
    sport: int | None = None,
    icmp_code: int = 0,
    internet_cidrs: Iterable[str] = DEFAULT_INTERNET,
) -> tuple[bool, list[str]]:
    """Whether a new connection from ``src`` to ``dst`` would work, and every check that decides it.

    ``proto``: "tcp", "udp", "icmp" or a protocol number; ``port``: the destination port (icmp: the type, with
    ``icmp_code``). The replies are checked too: for tcp and udp they go to ``sport``, or to every port of the
    clients' ephemeral range (``CLIENT_PORTS``) when it is None, and pass only if all of them would. Each reason
    starts with ``ok:`` or ``drop:``; the connection works when none is a ``drop:``.
    """
    return Vpc(snapshot, internet_cidrs).explain(src, dst, proto, port, sport=sport, icmp_code=icmp_code)
