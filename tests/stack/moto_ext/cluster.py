"""Cluster-level behaviour of real EKS that stock moto lacks.

* CreateCluster validates the subnets (they must exist, share one VPC and span two AZs) and security groups,
  fills ``resourcesVpcConfig.vpcId``, defaults the endpoint access fields, and creates the cluster security
  group as a real EC2 security group; DeleteCluster deletes it again.
* UpdateClusterConfig merges into the existing configuration and returns an ``update`` (moto replaces the
  whole ``resourcesVpcConfig`` and returns the cluster).
* DescribeUpdate / ListUpdates for cluster, nodegroup and add-on updates.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError, InvalidSubnetIdError
from moto.ec2.models import EC2Backend, ec2_backends
from moto.ec2.models.security_groups import SecurityGroup
from moto.eks.exceptions import InvalidParameterException, ResourceNotFoundException
from moto.eks.models import Cluster, EKSBackend
from moto.eks.responses import EKSResponse
from moto.moto_api._internal import mock_random as random

from ._common import ext, get_cluster, paginate, param, patch, record_update, store_update
from .cluster_settings import update_access_config

CLUSTER_SG_DESCRIPTION = (
    "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes,"
    " as well as any managed workloads."
)
LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
ENDPOINT_DEFAULTS: dict[str, Any] = {
    "endpointPublicAccess": True,
    "endpointPrivateAccess": False,
    "publicAccessCidrs": ["0.0.0.0/0"],
}
NETWORK_KEYS = ("subnetIds", "securityGroupIds")
ONE_UPDATE_TYPE_MSG = "Only one type of update can be allowed."

_original: dict[str, Callable[..., Any]] = {}


def _ec2(backend: EKSBackend) -> EC2Backend:
    return ec2_backends[backend.account_id][backend.region_name]


def _vpc_of(ec2: EC2Backend, subnet_ids: list[str], security_group_ids: list[str]) -> str:
    """The VPC of the given subnets, after the checks EKS makes on subnets and security groups."""
    zones: set[str] = set()
    vpc_ids: set[str] = set()
    for subnet_id in subnet_ids:
        try:
            subnet = ec2.get_subnet(subnet_id)
        except InvalidSubnetIdError:
            raise InvalidParameterException(message=f"The subnet ID '{subnet_id}' does not exist") from None
        zones.add(subnet.availability_zone)
        vpc_ids.add(subnet.vpc_id)
    if len(vpc_ids) > 1:
        raise InvalidParameterException(message="Subnets specified must belong to the same VPC.")
    if len(zones) < 2:
        raise InvalidParameterException(message="Subnets specified must be in at least two different AZs")
    vpc_id = vpc_ids.pop()
    for group_id in security_group_ids:
        group = ec2.get_security_group_from_id(group_id)
        if group is None:
            raise InvalidParameterException(message=f"The security group '{group_id}' does not exist")
        if group.vpc_id != vpc_id:
            raise InvalidParameterException(message=f"Security group {group_id} is not in the VPC {vpc_id}.")
    return vpc_id


def _check_endpoint_access(config: dict[str, Any]) -> None:
    if not (config["endpointPublicAccess"] or config["endpointPrivateAccess"]):
        raise InvalidParameterException(
            message="Either endpointPublicAccess or endpointPrivateAccess must be enabled for the cluster."
        )


def _create_cluster_security_group(ec2: EC2Backend, cluster_name: str, vpc_id: str) -> SecurityGroup:
    name = f"eks-cluster-sg-{cluster_name}-{random.randint(0, 10**10 - 1):010d}"
    group = ec2.create_security_group(
        name=name,
        description=CLUSTER_SG_DESCRIPTION,
        vpc_id=vpc_id,
        tags={
            "Name": name,
            f"kubernetes.io/cluster/{cluster_name}": "owned",
            "aws:eks:cluster-name": cluster_name,
        },
    )
    # Everything from members of the group itself; the all-traffic egress rule comes with every VPC group.
    ec2.authorize_security_group_ingress(
        group_name_or_id=group.id,
        ip_protocol="-1",
        from_port=None,  # type: ignore[arg-type]
        to_port=None,  # type: ignore[arg-type]
        ip_ranges=[],
        source_groups=[{"GroupId": group.id}],
        vpc_id=vpc_id,
    )
    return group


def create_cluster(
    self: EKSBackend, name: str, role_arn: str, resources_vpc_config: dict[str, Any] | None, **kwargs: Any
) -> Cluster:
    create = _original["create_cluster"]
    if name in self.clusters:  # moto raises the ResourceInUseException
        return create(self, name=name, role_arn=role_arn, resources_vpc_config=resources_vpc_config, **kwargs)
    config = {**copy.deepcopy(ENDPOINT_DEFAULTS), "subnetIds": [], "securityGroupIds": []}
    config.update({k: v for k, v in (resources_vpc_config or {}).items() if v is not None})
    _check_endpoint_access(config)
    ec2 = _ec2(self)
    vpc_id = _vpc_of(ec2, config["subnetIds"], config["securityGroupIds"])
    cluster: Cluster = create(self, name=name, role_arn=role_arn, resources_vpc_config=config, **kwargs)
    group = _create_cluster_security_group(ec2, name, vpc_id)
    ext(cluster).security_group_id = group.id
    config.update(clusterSecurityGroupId=group.id, vpcId=vpc_id)
    return cluster


def delete_cluster(self: EKSBackend, name: str) -> Cluster:
    cluster: Cluster = _original["delete_cluster"](self, name=name)
    group_id = ext(cluster).security_group_id
    if group_id:
        with contextlib.suppress(InvalidSecurityGroupNotFoundError):  # already deleted through EC2
            _ec2(self).delete_security_group(group_id=group_id)
    cluster.status = "DELETING"
    return cluster


def _update_vpc_config(backend: EKSBackend, cluster: Cluster, requested: dict[str, Any]) -> dict[str, Any]:
    current = cluster.resources_vpc_config
    network = {k: requested[k] for k in NETWORK_KEYS if k in requested}
    endpoint = {k: requested[k] for k in ENDPOINT_DEFAULTS if k in requested}
    if network and endpoint:
        raise InvalidParameterException(clusterName=cluster.name, message=ONE_UPDATE_TYPE_MSG)
    if network:
        merged = {k: network.get(k, current.get(k) or []) for k in NETWORK_KEYS}
        if _vpc_of(_ec2(backend), merged["subnetIds"], merged["securityGroupIds"]) != current.get("vpcId"):
            raise InvalidParameterException(
                clusterName=cluster.name, message="Subnets specified must belong to the cluster VPC."
            )
        current.update(merged)
        params = [param("Subnets", merged["subnetIds"]), param("SecurityGroups", merged["securityGroupIds"])]
        return record_update(cluster, "VpcConfigUpdate", params)

    merged = {k: endpoint.get(k, current.get(k)) for k in ENDPOINT_DEFAULTS}
    _check_endpoint_access(merged)
    if all(merged[k] == current.get(k) for k in ENDPOINT_DEFAULTS):
        raise InvalidParameterException(
            clusterName=cluster.name,
            message=(
                "Cluster is already at the desired configuration with"
                f" endpointPrivateAccess: {str(merged['endpointPrivateAccess']).lower()} ,"
                f" endpointPublicAccess: {str(merged['endpointPublicAccess']).lower()},"
                f" and Public Endpoint Restrictions: [{', '.join(merged['publicAccessCidrs'])}]"
            ),
        )
    current.update(merged)
    params = [
        param("EndpointPublicAccess", merged["endpointPublicAccess"]),
        param("EndpointPrivateAccess", merged["endpointPrivateAccess"]),
        param("PublicAccessCidrs", merged["publicAccessCidrs"]),
    ]
    return record_update(cluster, "EndpointAccessUpdate", params)


def _enabled_log_types(logging: dict[str, Any]) -> set[str]:
    return {t for entry in logging.get("clusterLogging") or [] if entry.get("enabled") for t in entry["types"]}


def _update_logging(cluster: Cluster, logging: dict[str, Any]) -> dict[str, Any]:
    """EKS switches the listed log types on or off and leaves the others as they are."""
    before = _enabled_log_types(cluster.logging)
    enabled = set(before)
    for entry in logging.get("clusterLogging") or []:
        types = set(entry.get("types") or [])
        enabled = enabled | types if entry.get("enabled") else enabled - types
    if enabled == before:
        raise InvalidParameterException(
            clusterName=cluster.name, message="No changes needed for the logging config provided"
        )
    entries = [
        {"types": [t for t in LOG_TYPES if (t in enabled) == state], "enabled": state} for state in (True, False)
    ]
    cluster.logging = {"clusterLogging": [e for e in entries if e["types"]]}
    return record_update(cluster, "LoggingUpdate", [param("ClusterLogging", cluster.logging["clusterLogging"])])


def update_cluster_config(
    self: EKSBackend,
    name: str,
    resources_vpc_config: dict[str, Any] | None = None,
    logging: dict[str, Any] | None = None,
    client_request_token: str | None = None,
    kubernetes_network_config: dict[str, Any] | None = None,
    remote_network_config: dict[str, Any] | None = None,
    access_config: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Apply one kind of change and return the resulting ``Update`` (moto returned the cluster)."""
    cluster = get_cluster(self, name)
    vpc_config = {k: v for k, v in (resources_vpc_config or {}).items() if v is not None}
    changes = [c for c in (vpc_config, logging, kubernetes_network_config, remote_network_config, access_config) if c]
    if len(changes) != 1:
        message = ONE_UPDATE_TYPE_MSG if changes else "No changes were specified in the request."
        raise InvalidParameterException(clusterName=name, message=message)
    if vpc_config:
        return _update_vpc_config(self, cluster, vpc_config)
    if logging:
        return _update_logging(cluster, logging)
    if access_config:
        return update_access_config(cluster, access_config)
    if kubernetes_network_config:
        cluster.kubernetes_network_config = kubernetes_network_config
        return record_update(cluster, "ConfigUpdate", [param("KubernetesNetworkConfig", kubernetes_network_config)])
    cluster.remote_network_config = remote_network_config
    return record_update(cluster, "RemoteNetworkConfigUpdate", [param("RemoteNetworkConfig", remote_network_config)])


def update_nodegroup_config(self: EKSBackend, cluster_name: str, nodegroup_name: str, **kwargs: Any) -> dict[str, Any]:
    """moto's implementation, plus keeping the update for DescribeUpdate."""
    update: dict[str, Any] = _original["update_nodegroup_config"](
        self, cluster_name=cluster_name, nodegroup_name=nodegroup_name, **kwargs
    )
    store_update(self.clusters[cluster_name], update, nodegroup_name=nodegroup_name)
    return update


def describe_update(
    self: EKSBackend, name: str, update_id: str, nodegroup_name: str | None, addon_name: str | None
) -> dict[str, Any]:
    record = ext(get_cluster(self, name)).updates.get(update_id)
    if record is None or (record.nodegroup_name, record.addon_name) != (nodegroup_name, addon_name):
        raise ResourceNotFoundException(
            clusterName=name,
            nodegroupName=nodegroup_name,
            addonName=addon_name,
            message=f"No update found for ID: {update_id}",
        )
    return record.update


def list_updates(
    self: EKSBackend,
    name: str,
    nodegroup_name: str | None,
    addon_name: str | None,
    max_results: int | None,
    next_token: str | None,
) -> tuple[list[str], str | None]:
    records = ext(get_cluster(self, name)).updates.values()
    ids = [r.update["id"] for r in records if (r.nodegroup_name, r.addon_name) == (nodegroup_name, addon_name)]
    return paginate(ids, str, max_results, next_token)


def _update_cluster_config_response(self: EKSResponse) -> ActionResult:
    update = self.eks_backend.update_cluster_config(
        name=self._get_param("name"),
        resources_vpc_config=self._get_param("resourcesVpcConfig"),
        logging=self._get_param("logging"),
        client_request_token=self._get_param("clientRequestToken"),
        kubernetes_network_config=self._get_param("kubernetesNetworkConfig"),
        remote_network_config=self._get_param("remoteNetworkConfig"),
        access_config=self._get_param("accessConfig"),
    )
    return ActionResult({"update": update})


def _describe_update_response(self: EKSResponse) -> ActionResult:
    update = self.eks_backend.describe_update(  # type: ignore[attr-defined]
        name=self._get_param("name"),
        update_id=self._get_param("updateId"),
        nodegroup_name=self._get_param("nodegroupName"),
        addon_name=self._get_param("addonName"),
    )
    return ActionResult({"update": update})


def _list_updates_response(self: EKSResponse) -> ActionResult:
    ids, next_token = self.eks_backend.list_updates(  # type: ignore[attr-defined]
        name=self._get_param("name"),
        nodegroup_name=self._get_param("nodegroupName"),
        addon_name=self._get_param("addonName"),
        max_results=self._get_int_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    return ActionResult({"updateIds": ids, "nextToken": next_token})


URL_PATHS = (
    "{0}/clusters/(?P<name>[^/]+)/updates$",
    "{0}/clusters/(?P<name>[^/]+)/updates/(?P<updateId>[^/]+)$",
)


def install() -> None:
    for name, func in (
        ("create_cluster", create_cluster),
        ("delete_cluster", delete_cluster),
        ("update_nodegroup_config", update_nodegroup_config),
    ):
        previous = patch(EKSBackend, name, func)
        if previous is None:
            raise RuntimeError(f"moto's EKSBackend has no {name}")
        _original[name] = previous
    patch(EKSBackend, "update_cluster_config", update_cluster_config)
    patch(EKSBackend, "describe_update", describe_update)
    patch(EKSBackend, "list_updates", list_updates)
    patch(EKSResponse, "update_cluster_config", _update_cluster_config_response)
    patch(EKSResponse, "describe_update", _describe_update_response)
    patch(EKSResponse, "list_updates", _list_updates_response)
