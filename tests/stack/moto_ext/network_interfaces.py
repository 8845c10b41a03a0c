"""Network interface addresses and interface VPC endpoints as EC2 makes them.

Stock moto picks a random address of the subnet for a new network interface (it can be the
network address, a reserved one, or one already in use) and gives the interfaces of an
interface VPC endpoint a random ``10.x`` address outside the subnet, without the endpoint's
security groups. The local stack puts packets on these addresses, so:

* an interface created without an address gets the lowest free one of its subnet, skipping the
  five addresses AWS reserves (network, router, DNS, future use, broadcast);
* an explicit address that another interface of the subnet holds fails with
  ``InvalidIPAddress.InUse``; one outside the subnet (moto's own NAT gateways and load balancers
  pass random ``10.x`` addresses) is replaced by the lowest free one;
* secondary addresses requested by count come from the same allocator;
* an interface endpoint gets one requester-managed interface per subnet, with the endpoint's
  security groups and EC2's description ``VPC Endpoint Interface <id>``; ModifyVpcEndpoint
  keeps those interfaces' groups and subnets in step with the endpoint.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from moto.ec2.exceptions import EC2ClientError, InvalidParameterValueError
from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
from moto.ec2.models.vpcs import VPCBackend, VPCEndPoint

from ._common import patch

_orig: dict[str, Any] = {}


class InvalidIPAddressInUse(EC2ClientError):
    def __init__(self, address: str) -> None:
        super().__init__("InvalidIPAddress.InUse", f"The specified address is already in use: {address}")


# moto serializes an error with the protocol of the service its class's module names
InvalidIPAddressInUse.__module__ = EC2ClientError.__module__


def used_addresses(backend: Any, subnet_id: str) -> set[str]:
    """Every private address held by an interface of the subnet."""
    used: set[str] = set()
    for eni in backend.enis.values():
        if getattr(eni.subnet, "id", None) != subnet_id:
            continue
        used.update(item.get("PrivateIpAddress") for item in eni.private_ip_addresses if isinstance(item, dict))
        if eni.private_ip_address:
            used.add(eni.private_ip_address)
    return used


def free_address(cidr: str, used: set[str]) -> str:
    """The lowest address of ``cidr`` that AWS would hand out and nobody holds."""
    network = ipaddress.IPv4Network(cidr)
    reserved = {network.network_address + i for i in range(4)} | {network.broadcast_address}
    for address in network.hosts():
        if address not in reserved and str(address) not in used:
            return str(address)
    raise InvalidParameterValueError(f"The subnet {cidr} has no free addresses left for this request.")


def _inside(subnet: Any, address: str) -> bool:
    return ipaddress.IPv4Address(address) in ipaddress.IPv4Network(subnet.cidr_block)


def _check_address(address: str, used: set[str]) -> None:
    if address in used:
        raise InvalidIPAddressInUse(address)


def _create_network_interface(
    self: Any,
    subnet: Any,
    private_ip_address: str | list[str],
    private_ip_addresses: list[dict[str, Any]] | None = None,
    *args: Any,
    **kwargs: Any,
) -> Any:
    subnet_obj = self.get_subnet(subnet) if isinstance(subnet, str) else subnet
    used = used_addresses(self, subnet_obj.id)
    primary = private_ip_address
    if isinstance(primary, list):
        primary = primary[0] if primary else None
    if isinstance(primary, str) and primary and not _inside(subnet_obj, primary):
        primary = None
    explicit = [primary] if isinstance(primary, str) and primary else []
    explicit += [
        item["PrivateIpAddress"] if isinstance(item, dict) else item
        for item in private_ip_addresses or []
        if (item.get("PrivateIpAddress") if isinstance(item, dict) else item)
    ]
    for address in explicit:
        _check_address(address, used)
    if not explicit:
        primary = free_address(subnet_obj.cidr_block, used)
    count = kwargs.pop("secondary_ips_count", None)
    eni = _orig["create_network_interface"](self, subnet, primary, private_ip_addresses, *args, **kwargs)
    if count:
        _assign_private_ip_addresses(self, eni.id, None, int(count))
    return eni


def _assign_private_ip_addresses(
    self: Any, eni_id: str, private_ip_addresses: list[str] | None = None, secondary_ips_count: int | None = None
) -> Any:
    eni = self.get_network_interface(eni_id)
    used = used_addresses(self, eni.subnet.id)
    held = {item.get("PrivateIpAddress") for item in eni.private_ip_addresses}
    if private_ip_addresses:
        for address in private_ip_addresses:
            if address not in held:
                _check_address(address, used)
        return _orig["assign_private_ip_addresses"](self, eni_id, private_ip_addresses, None)
    for _ in range(int(secondary_ips_count or 0)):
        address = free_address(eni.subnet.cidr_block, used)
        used.add(address)
        eni.private_ip_addresses.append({"Primary": False, "PrivateIpAddress": address})
    return eni


def _endpoint_interface(backend: Any, endpoint: Any, subnet_id: str) -> Any:
    eni = backend.create_network_interface(
        subnet_id,
        None,
        group_ids=list(endpoint.security_group_ids),
        description=f"VPC Endpoint Interface {endpoint.id}",
    )
    eni.interface_type = "vpc_endpoint"
    eni.requester_managed = True
    return eni


def _create_vpc_endpoint(self: Any, vpc_id: str, service_name: str, endpoint_type: str | None, *args: Any, **kw: Any):
    if not (endpoint_type and endpoint_type.lower() == "interface"):
        return _orig["create_vpc_endpoint"](self, vpc_id, service_name, endpoint_type, *args, **kw)
    names = ("policy_document", "route_table_ids", "subnet_ids")
    kw.update(dict(zip(names, args)))
    subnet_ids = list(kw.pop("subnet_ids", None) or [])
    for subnet_id in subnet_ids:
        self.get_subnet(subnet_id)
    endpoint = _orig["create_vpc_endpoint"](self, vpc_id, service_name, endpoint_type, subnet_ids=None, **kw)
    endpoint.subnet_ids = subnet_ids
    endpoint.network_interface_ids = [_endpoint_interface(self, endpoint, s).id for s in subnet_ids]
    return endpoint


def _modify(self: VPCEndPoint, *args: Any, **kwargs: Any) -> None:
    _orig["modify"](self, *args, **kwargs)
    if not (self.vpc_endpoint_type and self.vpc_endpoint_type.lower() == "interface"):
        return
    backend = self.ec2_backend
    subnets = list(self.subnet_ids or [])
    kept = []
    for eni_id in self.network_interface_ids:
        eni = backend.enis.get(eni_id)
        if eni is None:
            continue
        if eni.subnet.id not in subnets:
            backend.enis.pop(eni_id, None)
            continue
        eni._group_set = [backend.get_security_group_from_id(g) for g in self.security_group_ids]
        kept.append(eni_id)
    have = {backend.enis[e].subnet.id for e in kept}
    kept += [_endpoint_interface(backend, self, s).id for s in subnets if s not in have]
    self.network_interface_ids = kept


def install() -> None:
    _orig["create_network_interface"] = patch(
        NetworkInterfaceBackend, "create_network_interface", _create_network_interface
    )
    _orig["assign_private_ip_addresses"] = patch(
        NetworkInterfaceBackend, "assign_private_ip_addresses", _assign_private_ip_addresses
    )
    _orig["create_vpc_endpoint"] = patch(VPCBackend, "create_vpc_endpoint", _create_vpc_endpoint)
    _orig["modify"] = patch(VPCEndPoint, "modify", _modify)
