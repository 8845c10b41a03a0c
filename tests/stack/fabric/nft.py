"""Compile a VPC's security groups, network ACLs and routes into one nftables table for the fabric's router.

Every endpoint of the VPC (a pod, the database's interface, a DNS server, an interface VPC endpoint) sits in its
own network namespace with one address; the internet addresses sit behind the same router namespace, which
forwards every packet. ``compile_ruleset`` turns a ``snapshot`` into an ``nft -f`` script for that router::

    ip netns exec <router> nft -f - < script

The script replaces ``table inet <table>`` in one transaction (create if missing, delete, define), so loading it
again, or loading the script of a newer snapshot, is atomic and idempotent. Semantics: ``policy.py``; ``explain``
answers the same question in Python, with the reasons.

Layout of the table (every drop is counted; rules carry the security group rule or network ACL entry they come
from as their comment)::

    forward (hook forward, policy drop)
      IPv6 -> drop; ct invalid -> drop
      jump path ............................ routes and network ACLs, every packet of both directions
      ct established,related -> accept ..... security groups are stateful
      ct new -> goto new_connection ........ security groups, first packet only
    path:            ip saddr vmap @source            endpoint -> goto from_<subnet>; internet -> goto from_internet
    from_<subnet>:   ip daddr vmap @route_<subnet>    endpoint -> return (same subnet) | goto acls_<...>;
                                                      internet range -> goto acls_<...> through its NAT gateway
    from_internet:   ip daddr vmap @route_internet    endpoint -> goto to_<subnet>_from_internet
    to_<subnet>_from_internet: ip saddr vmap @back_<subnet>    internet range -> goto acls_<...> (back through NAT)
    acls_<...>:      jump <acl>_out / <acl>_in ...    the network ACLs the packet crosses, in order
    <acl>_in/_out:   entries in rule-number order     allow -> return, deny -> drop, then rule * -> drop
    new_connection:  ip saddr vmap @egress_of         endpoint -> goto egress_<groups> (internet -> drop)
    egress_<groups>: one rule per egress rule         match -> goto sg_ingress, else drop
    sg_ingress:      ip daddr vmap @ingress_of        endpoint -> goto ingress_<groups>; internet -> accept
    ingress_<groups>: one rule per ingress rule       match -> accept, else drop

Sets ``sg_<group>`` hold the addresses of the interfaces in a referenced security group, ``pl_<id>`` the CIDRs of
a managed prefix list, ``internet`` the internet ranges.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from .policy import (
    ALL,
    DEFAULT_INTERNET,
    ICMP,
    PORTED,
    Hop,
    IPv4Address,
    Match,
    SgRule,
    Vpc,
    explain,
    protocol_name,
)
from .snapshot import snapshot

__all__ = ["DEFAULT_INTERNET", "compile_ruleset", "explain", "snapshot"]

_COMMENT_MAX = 127  # nft refuses longer comments


def _comment(text: str) -> str:
    clean = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "'" if c == '"' else "?" for c in text)
    if len(clean) > _COMMENT_MAX:
        clean = clean[: _COMMENT_MAX - 3] + "..."
    return f'comment "{clean}"'


def _ident(*parts: str) -> str:
    """A chain, set or map name from AWS ids (letters, digits, '-', '_')."""
    return "_".join(re.sub(r"[^A-Za-z0-9-]", "-", part) for part in parts)


def _range(first: IPv4Address, last: IPv4Address) -> str:
    nets = list(ipaddress.summarize_address_range(first, last))
    return str(nets[0]) if len(nets) == 1 else f"{first}-{last}"


def _match(match: Match) -> str:
    if match.protocol == ALL:
        return ""
    name = protocol_name(match.protocol)
    if match.protocol in PORTED:
        if match.ports is None:
            return f"meta l4proto {name}"
        low, high = match.ports
        return f"{name} dport {low}" if low == high else f"{name} dport {low}-{high}"
    if match.protocol == ICMP:
        parts = ["meta l4proto icmp"]
        if match.icmp_type != -1:
            parts.append(f"icmp type {match.icmp_type}")
        if match.icmp_code != -1:
            parts.append(f"icmp code {match.icmp_code}")
        return " ".join(parts)
    return f"meta l4proto {match.protocol}"


def _rule(*parts: str) -> str:
    return " ".join(part for part in parts if part)


class _Compiler:
    def __init__(self, vpc: Vpc, table: str) -> None:
        self.vpc = vpc
        self.table = table
        self.sets: dict[str, list[str]] = {}
        self.maps: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}
        self.chains: dict[str, tuple[str, list[str]]] = {}

    # ------------------------------------------------------------------ building blocks

    def _chain(self, name: str, comment: str, rules: list[str]) -> str:
        self.chains.setdefault(name, (comment, rules))
        return name

    def _map(self, name: str, comment: str, elements: list[tuple[str, str, str]]) -> str:
        """elements: (key, comment, verdict)."""
        self.maps[name] = (comment, elements)
        return name

    def _group_set(self, group: str) -> str:
        name = _ident("sg", group)
        if name not in self.sets:
            label = self.vpc.group_names.get(group) or "not in the snapshot"
            members = sorted(self.vpc.group_ips(group))
            body = ["type ipv4_addr", _comment(f"addresses of the interfaces in {group} ({label})")]
            if members:
                body.append("elements = { " + ", ".join(map(str, members)) + " }")
            self.sets[name] = body
        return name

    def _prefix_list_set(self, prefix_list: str) -> str:
        name = _ident("pl", prefix_list)
        if name not in self.sets:
            nets = list(ipaddress.collapse_addresses(self.vpc.prefix_lists.get(prefix_list, [])))
            body = ["type ipv4_addr", "flags interval", _comment(f"CIDRs of the managed prefix list {prefix_list}")]
            if nets:
                body.append("elements = { " + ", ".join(map(str, nets)) + " }")
            self.sets[name] = body
        return name

    def _acl_chain(self, acl: str, egress: bool) -> str:
        way, field = ("out", "daddr") if egress else ("in", "saddr")
        name = _ident(acl, way)
        if name in self.chains:
            return name
        rules = []
        for entry in self.vpc.acl_entries.get(acl, {}).get(egress, []):
            verdict = "return" if entry.allow else "counter drop"
            rules.append(_rule(f"ip {field} {entry.cidr}", _match(entry.match), verdict, _comment(entry.text())))
        subnets = sorted(s for s in self.vpc.subnets if self.vpc.acl_of(s) == acl)
        rules.append(_rule("counter drop", _comment(f"{acl} {'outbound' if egress else 'inbound'} rule *: deny")))
        subnet_text = ", ".join(subnets) or "no subnet"
        return self._chain(name, f"network ACL {acl} {'outbound' if egress else 'inbound'} ({subnet_text})", rules)

    def _hops(self, hops: list[Hop]) -> str:
        """The verdict that runs the network ACLs a packet crosses, then returns to the forward chain."""
        if not hops:
            return "return"
        parts, rules, texts = [], [], []
        for acl, egress, subnet in hops:
            way = "out" if egress else "in"
            if acl is None:
                parts.append(f"none-{way}")
                rules.append(_rule("counter drop", _comment(f"{subnet} has no network ACL")))
                texts.append(f"no network ACL ({subnet})")
                continue
            parts.append(f"{acl}-{way}")
            rules.append(f"jump {self._acl_chain(acl, egress)}")
            texts.append(f"{acl} {'outbound' if egress else 'inbound'}")
        name = _ident("acls", *parts)
        return "goto " + self._chain(name, "network ACLs crossed: " + ", ".join(texts), rules)

    # ------------------------------------------------------------------ routes and network ACLs

    def _subnets_with_endpoints(self) -> list[str]:
        return sorted({endpoint.subnet for endpoint in self.vpc.endpoints.values()})

    def _from_subnet(self, subnet: str) -> str:
        vpc = self.vpc
        elements = []
        for ip, endpoint in sorted(vpc.endpoints.items()):
            ok, _reason = vpc.local_route(subnet, ip)
            if not ok:
                continue
            same = " (same subnet: no network ACL)" if endpoint.subnet == subnet else ""
            elements.append(
                (
                    str(ip),
                    f"{endpoint.interface} in {endpoint.subnet}{same}",
                    self._hops(vpc.crossing(subnet, endpoint.subnet)),
                )
            )
        for first, last, nat in vpc.internet_paths(subnet):
            hops = vpc.out_through_nat(subnet, vpc.nats[nat]["subnet"])
            elements.append((_range(first, last), f"internet through {nat}", self._hops(hops)))
        table, acl = vpc.table_of(subnet), vpc.acl_of(subnet)
        routes = self._map(
            _ident("route", subnet), f"where packets from {subnet} may go (route table {table})", elements
        )
        return self._chain(
            _ident("from", subnet),
            f"packets from {subnet} {vpc.subnets.get(subnet, '')}: route table {table}, network ACL {acl}",
            [
                f"ip daddr vmap @{routes}",
                _rule("counter drop", _comment(f"no usable route from {subnet} ({table})")),
            ],
        )

    def _to_subnet_from_internet(self, subnet: str) -> str | None:
        vpc = self.vpc
        elements = []
        for first, last, nat in vpc.internet_paths(subnet):
            hops = vpc.in_through_nat(vpc.nats[nat]["subnet"], subnet)
            elements.append((_range(first, last), f"replies through {nat}", self._hops(hops)))
        if not elements:
            return None
        table = vpc.table_of(subnet)
        back = self._map(_ident("back", subnet), f"internet ranges {subnet} reaches (route table {table})", elements)
        return self._chain(
            _ident("to", subnet, "from-internet"),
            f"internet packets to {subnet}: only where its route table sends them through a NAT gateway",
            [
                f"ip saddr vmap @{back}",
                _rule("counter drop", _comment(f"{subnet} ({table}) has no route back to this address")),
            ],
        )

    def _path(self) -> None:
        vpc = self.vpc
        sources = []
        from_chain = {subnet: self._from_subnet(subnet) for subnet in self._subnets_with_endpoints()}
        to_chain = {subnet: self._to_subnet_from_internet(subnet) for subnet in self._subnets_with_endpoints()}
        for ip, endpoint in sorted(vpc.endpoints.items()):
            sources.append(
                (str(ip), f"{endpoint.interface} in {endpoint.subnet}", f"goto {from_chain[endpoint.subnet]}")
            )
        inbound = [
            (str(ip), f"{endpoint.interface} in {endpoint.subnet}", f"goto {to_chain[endpoint.subnet]}")
            for ip, endpoint in sorted(vpc.endpoints.items())
            if to_chain[endpoint.subnet]
        ]
        route_internet = self._map("route_internet", "endpoints the internet may answer", inbound)
        from_internet = self._chain(
            "from_internet",
            "packets from the internet: replies to endpoints whose subnet routes through a NAT gateway",
            [
                f"ip daddr vmap @{route_internet}",
                _rule("counter drop", _comment("the internet reaches no other address")),
            ],
        )
        for net in vpc.internet:
            sources.append((str(net), "internet", f"goto {from_internet}"))
        source = self._map("source", "where a packet comes from", sources)
        self._chain(
            "path",
            "routes and network ACLs: returns when the packet may travel, drops it otherwise",
            [
                f"ip saddr vmap @{source}",
                _rule("counter drop", _comment("neither an interface address of the VPC nor an internet address")),
            ],
        )

    # ------------------------------------------------------------------ security groups

    def _peer(self, rule: SgRule, field: str) -> str:
        if rule.cidr is not None:
            return f"ip {field} {rule.cidr}"
        if rule.peer_group is not None:
            return f"ip {field} @{self._group_set(rule.peer_group)}"
        if rule.prefix_list is not None:
            return f"ip {field} @{self._prefix_list_set(rule.prefix_list)}"
        return ""

    def _groups_chain(self, groups: tuple[str, ...], egress: bool) -> str:
        way = "egress" if egress else "ingress"
        name = _ident(way, *groups) if groups else f"{way}_none"
        if name in self.chains:
            return name
        field, verdict = ("daddr", "goto sg_ingress") if egress else ("saddr", "accept")
        rules = [
            _rule(self._peer(rule, field), _match(rule.match), verdict, _comment(rule.text()))
            for rule in self.vpc.rules_of(groups, egress)
            if self._peer(rule, field)
        ]
        label = ", ".join(groups) or "no security group"
        rules.append(_rule("counter drop", _comment(f"no {way} rule of {label} allows it")))
        return self._chain(name, f"{way} rules of {label}", rules)

    def _security_groups(self) -> None:
        vpc = self.vpc
        egress, ingress = [], []
        for ip, endpoint in sorted(vpc.endpoints.items()):
            label = f"{endpoint.interface} ({', '.join(endpoint.groups) or 'no group'})"
            egress.append((str(ip), label, f"goto {self._groups_chain(endpoint.groups, True)}"))
            ingress.append((str(ip), label, f"goto {self._groups_chain(endpoint.groups, False)}"))
        egress_of = self._map("egress_of", "the egress rules of each endpoint's security groups", egress)
        ingress_of = self._map("ingress_of", "the ingress rules of each endpoint's security groups", ingress)
        self._chain(
            "new_connection",
            "security groups, first packet of a connection: egress of the source, then ingress of the destination",
            [
                _rule("ip saddr @internet counter drop", _comment("the internet cannot open connections into the VPC")),
                f"ip saddr vmap @{egress_of}",
                _rule("counter drop", _comment("source is not an endpoint")),
            ],
        )
        self._chain(
            "sg_ingress",
            "security groups of the destination",
            [
                _rule("ip daddr @internet accept", _comment("outside the VPC: no security group on that side")),
                f"ip daddr vmap @{ingress_of}",
                _rule("counter drop", _comment("destination is not an endpoint")),
            ],
        )

    # ------------------------------------------------------------------ text

    def text(self) -> str:
        vpc = self.vpc
        internet = ", ".join(map(str, vpc.internet))
        self.sets["internet"] = ["type ipv4_addr", "flags interval", _comment("internet addresses behind the router")]
        if vpc.internet:
            self.sets["internet"].append(f"elements = {{ {internet} }}")
        forward = [
            "type filter hook forward priority filter; policy drop;",
            _rule("meta nfproto != ipv4 counter drop", _comment("IPv4 only")),
            _rule("ct state invalid counter drop", _comment("not part of a valid connection")),
            _rule("jump path", _comment("routes and network ACLs: every packet, both directions")),
            _rule("ct state established,related accept", _comment("security groups are stateful")),
            _rule("ct state new goto new_connection", _comment("security groups: first packet of a connection")),
            _rule("counter drop", _comment("untracked")),
        ]
        self._chain("forward", "", forward)
        self._path()
        self._security_groups()

        t = self.table
        cidrs = ", ".join(map(str, vpc.cidrs))
        lines = [
            f"# nftables ruleset of {vpc.id} ({cidrs}): security groups, network ACLs and routes.",
            f"# Internet addresses: {internet or 'none'}. Replaces table inet {t} atomically: nft -f <this file>",
            f"table inet {t}",
            f"delete table inet {t}",
            f"table inet {t} {{",
            f"\t{_comment(f'{vpc.id}: security groups, network ACLs and routes')}",
        ]
        for name, body in sorted(self.sets.items()):
            lines.append(f"\tset {name} {{")
            lines += [f"\t\t{line}" for line in body]
            lines.append("\t}")
        for name, (comment, elements) in sorted(self.maps.items()):
            lines += [
                f"\tmap {name} {{",
                "\t\ttype ipv4_addr : verdict",
                "\t\tflags interval",
                f"\t\t{_comment(comment)}",
            ]
            if elements:
                lines.append("\t\telements = {")
                lines += [f"\t\t\t{key} {_comment(note)} : {verdict}," for key, note, verdict in elements]
                lines.append("\t\t}")
            lines.append("\t}")
        order = ["forward", "path", "new_connection", "sg_ingress"]
        for name in order + sorted(set(self.chains) - set(order)):
            comment, rules = self.chains[name]
            lines.append(f"\tchain {name} {{")
            if comment:
                lines.append(f"\t\t{_comment(comment)}")
            lines += [f"\t\t{rule}" for rule in rules]
            lines.append("\t}")
        lines.append("}")
        return "\n".join(lines) + "\n"


def compile_ruleset(
    snapshot: dict[str, Any], *, internet_cidrs: Iterable[str] = DEFAULT_INTERNET, table: str = "layered_vpc"
) -> str:
    """The ``nft -f`` script that makes the router namespace enforce the snapshot's VPC (layout: module docstring)."""
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{0,63}", table):
        raise ValueError(f"table {table!r}: letters, digits and '_' only, starting with a letter")
    return _Compiler(Vpc(snapshot, internet_cidrs), table).text()
