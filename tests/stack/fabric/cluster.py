"""What the stack's agent decides about the cluster, as pure functions of what it read.

* the fake nodes of each EKS managed node group in moto (names, labels, addresses, podCIDR,
  capacity), trunk-attached only when the VPC CNI has ``ENABLE_POD_ENI=true``;
* which ``SecurityGroupPolicy`` objects select a pod (by its labels or its ServiceAccount's),
  and the admission patch that asks for a branch network interface;
* the ``vpc.amazonaws.com/pod-eni`` annotation of a pod with a branch interface;
* the A records the VPC's resolver answers.

Nothing here calls an API; ``agent.py`` reads, calls these, and writes.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
from collections.abc import Iterable, Mapping
from typing import Any

POD_ENI = "vpc.amazonaws.com/pod-eni"
TRUNK_LABEL = "vpc.amazonaws.com/has-trunk-attached"
JOB_LABEL = "batch.kubernetes.io/job-name"
POD_IP_ANNOTATION = "layered.dev/pod-ip"
NODE_ANNOTATION = "layered.dev/node"
KWOK_ANNOTATION = "kwok.x-k8s.io/node"
MAX_NODES_PER_GROUP = 3
# branch interfaces a trunk interface carries on the instance types EKS nodes use most
BRANCH_ENIS = 9
# cpu, memory, pods (max pods with the VPC CNI's default settings)
INSTANCE_CAPACITY = {
    "large": ("2", "8Gi", "29"),
    "xlarge": ("4", "16Gi", "58"),
    "2xlarge": ("8", "32Gi", "58"),
}


def truthy(value: Any) -> bool:
    return str(value).strip().lower() == "true"


def pod_eni_enabled(addon_configuration: str | None, daemonset: Mapping[str, Any] | None) -> bool:
    """Whether the VPC CNI runs with ENABLE_POD_ENI=true.

    The aws-node DaemonSet is what runs on the nodes, so its ``aws-node`` container's env decides
    when it exists; otherwise the vpc-cni add-on's configuration values do.
    """
    if daemonset:
        for container in daemonset.get("spec", {}).get("template", {}).get("spec", {}).get("containers", []):
            if container.get("name") == "aws-node":
                env = {e.get("name"): e.get("value") for e in container.get("env") or []}
                return truthy(env.get("ENABLE_POD_ENI"))
        return False
    if not addon_configuration:
        return False
    try:
        config = json.loads(addon_configuration)
    except ValueError:
        return False
    return isinstance(config, dict) and truthy((config.get("env") or {}).get("ENABLE_POD_ENI"))


def node_name(address: str, region: str) -> str:
    return f"ip-{address.replace('.', '-')}.{region}.compute.internal"


def pod_cidr(subnet_cidr: str, index: int) -> str:
    """A /27 for kwok's pod addresses, taken from the top of the subnet (interfaces fill it from the bottom)."""
    network = ipaddress.IPv4Network(subnet_cidr)
    size = 32
    start = int(network.broadcast_address) + 1 - size * (index + 1)
    # keep the bottom half of the subnet for network interfaces
    if network.prefixlen > 27 or start < int(network.network_address) + network.num_addresses // 2:
        raise ValueError(f"subnet {subnet_cidr} is too small for node {index}")
    return str(ipaddress.IPv4Network((start, 27)))


def instance_id(cluster: str, nodegroup: str, index: int) -> str:
    return "i-" + hashlib.sha256(f"{cluster}/{nodegroup}/{index}".encode()).hexdigest()[:17]


def node_manifest(
    *,
    cluster: str,
    nodegroup: Mapping[str, Any],
    index: int,
    address: str,
    eni_id: str,
    subnet: Mapping[str, Any],
    instance_type: str,
    region: str,
    trunk: bool,
) -> dict[str, Any]:
    """The Node object of the ``index``-th instance of a managed node group, as EKS registers it."""
    name = node_name(address, region)
    zone = subnet["AvailabilityZone"]
    labels = {
        **(nodegroup.get("labels") or {}),
        "eks.amazonaws.com/nodegroup": nodegroup["nodegroupName"],
        "eks.amazonaws.com/capacityType": nodegroup.get("capacityType") or "ON_DEMAND",
        "node.kubernetes.io/instance-type": instance_type,
        "beta.kubernetes.io/instance-type": instance_type,
        "topology.kubernetes.io/region": region,
        "topology.kubernetes.io/zone": zone,
        "failure-domain.beta.kubernetes.io/region": region,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
        "kubernetes.io/hostname": name,
        "type": (nodegroup.get("labels") or {}).get("type", "private"),
        TRUNK_LABEL: "true" if trunk else "false",
    }
    size = instance_type.split(".", 1)[-1]
    cpu, memory, pods = INSTANCE_CAPACITY.get(size, INSTANCE_CAPACITY["large"])
    capacity = {"cpu": cpu, "memory": memory, "pods": pods, "ephemeral-storage": "20Gi"}
    if trunk:
        capacity[POD_ENI] = str(BRANCH_ENIS)
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": labels,
            "annotations": {
                KWOK_ANNOTATION: "fake",
                NODE_ANNOTATION: json.dumps(
                    {"cluster": cluster, "nodegroup": nodegroup["nodegroupName"], "index": index, "eniId": eni_id},
                    sort_keys=True,
                ),
            },
        },
        "spec": {
            "providerID": f"aws:///{zone}/{instance_id(cluster, nodegroup['nodegroupName'], index)}",
            "podCIDR": pod_cidr(subnet["CidrBlock"], index),
            "podCIDRs": [pod_cidr(subnet["CidrBlock"], index)],
        },
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": address},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "capacity": capacity,
            "allocatable": dict(capacity),
        },
    }


# ---------------------------------------------------------------- label selectors
def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A Kubernetes LabelSelector; an empty selector matches everything."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def policy_selects(policy: Mapping[str, Any], pod_labels: Mapping[str, str], sa_labels: Mapping[str, str]) -> bool:
    """Whether a SecurityGroupPolicy selects a pod: each selector it sets must match."""
    spec = policy.get("spec") or {}
    selectors = [
        (spec.get("podSelector"), pod_labels),
        (spec.get("serviceAccountSelector"), sa_labels),
    ]
    given = [(s, labels) for s, labels in selectors if s is not None]
    return bool(given) and all(selector_matches(s, labels) for s, labels in given)


def selected_groups(
    policies: Iterable[Mapping[str, Any]], pod_labels: Mapping[str, str], sa_labels: Mapping[str, str]
) -> list[str]:
    groups: list[str] = []
    for policy in policies:
        if policy_selects(policy, pod_labels, sa_labels):
            for group in (policy.get("spec") or {}).get("securityGroups", {}).get("groupIds") or []:
                if group not in groups:
                    groups.append(group)
    return groups


def pod_eni_patch(pod: Mapping[str, Any]) -> list[dict[str, Any]]:
    """JSON patch asking, on the pod's first container, for one branch network interface."""
    containers = (pod.get("spec") or {}).get("containers") or []
    if not containers:
        return []
    resources = containers[0].get("resources") or {}
    ops: list[dict[str, Any]] = []
    if not containers[0].get("resources"):
        ops.append({"op": "add", "path": "/spec/containers/0/resources", "value": {}})
    for kind in ("limits", "requests"):
        if not resources.get(kind):
            ops.append({"op": "add", "path": f"/spec/containers/0/resources/{kind}", "value": {POD_ENI: "1"}})
        else:
            key = POD_ENI.replace("~", "~0").replace("/", "~1")
            ops.append({"op": "add", "path": f"/spec/containers/0/resources/{kind}/{key}", "value": "1"})
    return ops


def wants_branch_eni(pod: Mapping[str, Any]) -> bool:
    for container in (pod.get("spec") or {}).get("containers") or []:
        if POD_ENI in ((container.get("resources") or {}).get("requests") or {}):
            return True
    return False


def pod_eni_annotation(eni: Mapping[str, Any], subnet_cidr: str, vlan_id: int) -> str:
    return json.dumps(
        [
            {
                "eniId": eni["NetworkInterfaceId"],
                "ifAddress": eni.get("MacAddress", ""),
                "privateIp": eni["PrivateIpAddress"],
                "vlanId": vlan_id,
                "subnetCidr": subnet_cidr,
            }
        ]
    )


# ---------------------------------------------------------------- DNS
def aws_service(name: str, region: str) -> tuple[str, bool] | None:
    """The service of an AWS API host name and whether the name is regional.

    ``sts.eu-west-1.amazonaws.com`` -> ``("sts", True)``; ``sts.amazonaws.com`` -> ``("sts", False)``.
    """
    name = name.rstrip(".").lower()
    if not name.endswith(".amazonaws.com") or name.endswith(".rds.amazonaws.com"):
        return None
    parts = name[: -len(".amazonaws.com")].split(".")
    if len(parts) == 1:
        return parts[0], False
    if len(parts) == 2 and parts[1] == region:
        return parts[0], True
    return None


def resolver(
    name: str,
    *,
    region: str,
    databases: Mapping[str, str],
    endpoints: Mapping[str, list[str]],
    internet_address: str,
) -> list[str] | None:
    """A records for ``name``: database endpoints, AWS APIs (private DNS of interface endpoints first)."""
    name = name.rstrip(".").lower()
    if name in databases:
        return [databases[name]]
    found = aws_service(name, region)
    if found is None:
        return None
    service, regional = found
    # an interface endpoint's private DNS answers for the regional name only
    if regional and endpoints.get(service):
        return list(endpoints[service])
    return [internet_address]
