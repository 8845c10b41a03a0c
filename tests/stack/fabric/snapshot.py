"""Read, with EC2 describe calls, everything that decides which packets a VPC lets through.

The result is plain JSON-able data (tests also write it by hand)::

    {
      "vpc_id": "vpc-...",
      "cidrs": ["10.0.0.0/16"],
      "subnets": {"subnet-...": {"cidr": "10.0.0.0/18", "az": "eu-west-1a", "name": "..."}},
      "interfaces": {"eni-...": {"subnet": "subnet-...", "ips": ["10.0.0.10", ...],   # primary first
                                 "groups": ["sg-..."], "type": "interface", "description": "..."}},
      "security_groups": {"sg-...": {"name": "...", "vpc_id": "vpc-...",
                                     "ingress": [rule, ...], "egress": [rule, ...]}},
      "network_acls": {"acl-...": {"default": false, "subnets": ["subnet-..."],
                                   "ingress": [entry, ...], "egress": [entry, ...]}},
      "route_tables": {"rtb-...": {"main": false, "subnets": ["subnet-..."],
                                   "routes": [{"destination": "0.0.0.0/0", "target": "nat-...", "state": "active"}]}},
      "nat_gateways": {"nat-...": {"subnet": "subnet-...", "state": "available", "connectivity": "public",
                                   "interfaces": ["eni-..."], "private_ips": ["10.0.128.5"]}},
      "internet_gateways": {"igw-...": {"attached": true}},
      "vpc_endpoints": {"vpce-...": {"type": "Interface", "service": "...", "state": "available",
                                     "subnets": [...], "interfaces": ["eni-..."], "groups": [...],
                                     "route_tables": [...]}},
      "prefix_lists": {"pl-...": {"name": "...", "cidrs": ["..."]}},
    }

A security group rule has one peer, as in DescribeSecurityGroupRules: ``{"protocol": "tcp" | "udp" | "icmp" |
"-1" | "<number>", "from_port": int | None, "to_port": int | None, "description": str}`` plus exactly one of
``"cidr"``, ``"group"`` or ``"prefix_list"`` (for icmp, ``from_port`` is the type and ``to_port`` the code, -1 =
any). A network ACL entry is ``{"rule": 100, "action": "allow" | "deny", "protocol": "-1" | "6" | "17" | "1" |
..., "cidr": "...", "from_port": int | None, "to_port": int | None, "icmp_type": int | None, "icmp_code": int |
None}``. IPv6 ranges, routes and entries are left out: the fabric is IPv4 only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError


def _pages(client: Any, operation: str, key: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
    for page in client.get_paginator(operation).paginate(**kwargs):
        yield from page.get(key, [])


def _tag(resource: dict[str, Any], key: str) -> str:
    for tag in resource.get("Tags") or resource.get("TagSet") or []:
        if tag.get("Key") == key:
            return str(tag.get("Value", ""))
    return ""


def _sg_rules(permissions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rules = []
    for permission in permissions:
        base = {
            "protocol": str(permission.get("IpProtocol", "-1")),
            "from_port": permission.get("FromPort"),
            "to_port": permission.get("ToPort"),
        }
        for item in permission.get("IpRanges", []):
            rules.append({**base, "cidr": item["CidrIp"], "description": item.get("Description", "")})
        for item in permission.get("UserIdGroupPairs", []):
            rules.append({**base, "group": item["GroupId"], "description": item.get("Description", "")})
        for item in permission.get("PrefixListIds", []):
            rules.append({**base, "prefix_list": item["PrefixListId"], "description": item.get("Description", "")})
    return rules


def _security_group(group: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": group.get("GroupName", ""),
        "vpc_id": group.get("VpcId"),
        "ingress": _sg_rules(group.get("IpPermissions", [])),
        "egress": _sg_rules(group.get("IpPermissionsEgress", [])),
    }


def _acl_entry(entry: dict[str, Any]) -> dict[str, Any]:
    ports = entry.get("PortRange") or {}
    icmp = entry.get("IcmpTypeCode") or {}
    return {
        "rule": entry["RuleNumber"],
        "action": entry["RuleAction"],
        "protocol": str(entry.get("Protocol", "-1")),
        "cidr": entry["CidrBlock"],
        "from_port": ports.get("From"),
        "to_port": ports.get("To"),
        "icmp_type": icmp.get("Type"),
        "icmp_code": icmp.get("Code"),
    }


_ROUTE_TARGETS = (
    "GatewayId",
    "NatGatewayId",
    "NetworkInterfaceId",
    "InstanceId",
    "TransitGatewayId",
    "VpcPeeringConnectionId",
    "EgressOnlyInternetGatewayId",
    "CarrierGatewayId",
    "LocalGatewayId",
    "CoreNetworkArn",
)


def _route(route: dict[str, Any]) -> dict[str, Any] | None:
    if "DestinationCidrBlock" not in route and "DestinationPrefixListId" not in route:
        return None  # IPv6
    target = next((route[key] for key in _ROUTE_TARGETS if route.get(key)), "")
    return {
        "destination": route.get("DestinationCidrBlock"),
        "prefix_list": route.get("DestinationPrefixListId"),
        "target": target,
        "state": route.get("State", "active"),
    }


def _associated(association: dict[str, Any]) -> bool:
    return (association.get("AssociationState") or {}).get("State", "associated") == "associated"


def _prefix_list(ec2_client: Any, prefix_list_id: str) -> dict[str, Any]:
    try:
        described = ec2_client.describe_managed_prefix_lists(PrefixListIds=[prefix_list_id])["PrefixLists"]
        entries = list(_pages(ec2_client, "get_managed_prefix_list_entries", "Entries", PrefixListId=prefix_list_id))
    except ClientError:
        return {"name": "", "cidrs": []}  # unknown: matches nothing
    return {
        "name": described[0].get("PrefixListName", "") if described else "",
        "cidrs": sorted(entry["Cidr"] for entry in entries if ":" not in entry["Cidr"]),
    }


def snapshot(ec2_client: Any, vpc_id: str) -> dict[str, Any]:
    """Everything one VPC's packet filtering depends on, as plain data (shape: module docstring)."""
    vpc = ec2_client.describe_vpcs(VpcIds=[vpc_id])["Vpcs"][0]
    cidrs = [
        item["CidrBlock"]
        for item in vpc.get("CidrBlockAssociationSet", [])
        if (item.get("CidrBlockState") or {}).get("State", "associated") == "associated"
    ] or [vpc["CidrBlock"]]
    in_vpc = [{"Name": "vpc-id", "Values": [vpc_id]}]

    subnets = {
        subnet["SubnetId"]: {
            "cidr": subnet["CidrBlock"],
            "az": subnet.get("AvailabilityZone", ""),
            "name": _tag(subnet, "Name"),
        }
        for subnet in _pages(ec2_client, "describe_subnets", "Subnets", Filters=in_vpc)
    }

    interfaces = {}
    for eni in _pages(ec2_client, "describe_network_interfaces", "NetworkInterfaces", Filters=in_vpc):
        primary = eni.get("PrivateIpAddress")
        ips = [primary] if primary else []
        ips += [
            item["PrivateIpAddress"]
            for item in eni.get("PrivateIpAddresses", [])
            if item.get("PrivateIpAddress") and item["PrivateIpAddress"] not in ips
        ]
        interfaces[eni["NetworkInterfaceId"]] = {
            "subnet": eni.get("SubnetId"),
            "ips": ips,
            "groups": [group["GroupId"] for group in eni.get("Groups", [])],
            "type": eni.get("InterfaceType", "interface"),
            "description": eni.get("Description", ""),
        }

    security_groups = {
        group["GroupId"]: _security_group(group)
        for group in _pages(ec2_client, "describe_security_groups", "SecurityGroups", Filters=in_vpc)
    }
    referenced = sorted(
        {
            rule["group"]
            for group in security_groups.values()
            for rule in group["ingress"] + group["egress"]
            if "group" in rule
        }
        - security_groups.keys()
    )
    for group_id in referenced:  # groups of a peered VPC or another account; may be gone
        try:
            found = ec2_client.describe_security_groups(GroupIds=[group_id])["SecurityGroups"]
        except ClientError:
            continue
        for group in found:
            security_groups[group["GroupId"]] = _security_group(group)

    network_acls = {}
    for acl in _pages(ec2_client, "describe_network_acls", "NetworkAcls", Filters=in_vpc):
        entries = sorted(
            (entry for entry in acl.get("Entries", []) if "CidrBlock" in entry), key=lambda e: e["RuleNumber"]
        )
        network_acls[acl["NetworkAclId"]] = {
            "default": bool(acl.get("IsDefault")),
            "subnets": sorted(item["SubnetId"] for item in acl.get("Associations", []) if item.get("SubnetId")),
            "ingress": [_acl_entry(entry) for entry in entries if not entry["Egress"]],
            "egress": [_acl_entry(entry) for entry in entries if entry["Egress"]],
        }

    route_tables = {}
    for table in _pages(ec2_client, "describe_route_tables", "RouteTables", Filters=in_vpc):
        associations = [item for item in table.get("Associations", []) if _associated(item)]
        route_tables[table["RouteTableId"]] = {
            "main": any(item.get("Main") for item in associations),
            "subnets": sorted(item["SubnetId"] for item in associations if item.get("SubnetId")),
            "routes": [route for route in map(_route, table.get("Routes", [])) if route],
        }

    nat_gateways = {
        nat["NatGatewayId"]: {
            "subnet": nat.get("SubnetId"),
            "state": nat.get("State", ""),
            "connectivity": nat.get("ConnectivityType", "public"),
            "interfaces": [
                a["NetworkInterfaceId"] for a in nat.get("NatGatewayAddresses", []) if a.get("NetworkInterfaceId")
            ],
            "private_ips": [a["PrivateIp"] for a in nat.get("NatGatewayAddresses", []) if a.get("PrivateIp")],
        }
        for nat in _pages(ec2_client, "describe_nat_gateways", "NatGateways", Filter=in_vpc)
    }

    internet_gateways = {
        igw["InternetGatewayId"]: {
            "attached": any(
                item.get("VpcId") == vpc_id and item.get("State") in ("available", "attached")
                for item in igw.get("Attachments", [])
            )
        }
        for igw in _pages(
            ec2_client,
            "describe_internet_gateways",
            "InternetGateways",
            Filters=[{"Name": "attachment.vpc-id", "Values": [vpc_id]}],
        )
    }

    vpc_endpoints = {
        endpoint["VpcEndpointId"]: {
            "type": endpoint.get("VpcEndpointType", ""),
            "service": endpoint.get("ServiceName", ""),
            "state": endpoint.get("State", ""),
            "subnets": list(endpoint.get("SubnetIds", [])),
            "interfaces": list(endpoint.get("NetworkInterfaceIds", [])),
            "groups": [group["GroupId"] for group in endpoint.get("Groups", [])],
            "route_tables": list(endpoint.get("RouteTableIds", [])),
        }
        for endpoint in _pages(ec2_client, "describe_vpc_endpoints", "VpcEndpoints", Filters=in_vpc)
    }

    prefix_list_ids = sorted(
        {
            rule["prefix_list"]
            for group in security_groups.values()
            for rule in group["ingress"] + group["egress"]
            if "prefix_list" in rule
        }
    )
    prefix_lists = {pl: _prefix_list(ec2_client, pl) for pl in prefix_list_ids}

    return {
        "vpc_id": vpc_id,
        "cidrs": cidrs,
        "subnets": subnets,
        "interfaces": interfaces,
        "security_groups": security_groups,
        "network_acls": network_acls,
        "route_tables": route_tables,
        "nat_gateways": nat_gateways,
        "internet_gateways": internet_gateways,
        "vpc_endpoints": vpc_endpoints,
        "prefix_lists": prefix_lists,
    }
