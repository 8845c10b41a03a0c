"""State and helpers shared by the EKS extension modules.

Extension state (add-ons, pod identity associations, recorded updates, the
cluster security group id) hangs off moto's ``Cluster`` object, so it disappears
with the cluster on DeleteCluster and with the backend on a moto reset.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from moto.core.utils import utcnow
from moto.eks.exceptions import InvalidParameterException, ResourceNotFoundException
from moto.eks.models import CLUSTER_NOT_FOUND_MSG, Cluster, EKSBackend
from moto.eks.responses import EKSResponse
from moto.moto_api._internal import mock_random as random

if TYPE_CHECKING:
    from .addons import Addon
    from .pod_identity import PodIdentityAssociation

T = TypeVar("T")

DEFAULT_MAX_RESULTS = 100


@dataclass
class UpdateRecord:
    """An entry of DescribeUpdate, scoped to the cluster, one nodegroup or one add-on."""

    update: dict[str, Any]
    nodegroup_name: str | None = None
    addon_name: str | None = None


@dataclass
class ClusterExt:
    """Per-cluster state this extension adds to moto's ``Cluster``."""

    security_group_id: str | None = None
    addons: dict[str, Addon] = field(default_factory=dict)
    associations: dict[str, PodIdentityAssociation] = field(default_factory=dict)
    updates: dict[str, UpdateRecord] = field(default_factory=dict)


def ext(cluster: Cluster) -> ClusterExt:
    state: ClusterExt | None = getattr(cluster, "_moto_ext", None)
    if state is None:
        state = ClusterExt()
        cluster._moto_ext = state  # type: ignore[attr-defined]
    return state


def get_cluster(backend: EKSBackend, name: str) -> Cluster:
    try:
        return backend.clusters[name]
    except KeyError:
        raise ResourceNotFoundException(
            clusterName=name, message=CLUSTER_NOT_FOUND_MSG.format(clusterName=name)
        ) from None


def record_update(
    cluster: Cluster,
    update_type: str,
    params: list[dict[str, str]],
    nodegroup_name: str | None = None,
    addon_name: str | None = None,
) -> dict[str, Any]:
    """Create a completed ``Update`` (EKS applies nothing asynchronously here) and keep it for DescribeUpdate."""
    update = {
        "id": str(random.uuid4()),
        "status": "Successful",
        "type": update_type,
        "params": params,
        "createdAt": utcnow(),
        "errors": [],
    }
    store_update(cluster, update, nodegroup_name=nodegroup_name, addon_name=addon_name)
    return update


def store_update(
    cluster: Cluster, update: dict[str, Any], nodegroup_name: str | None = None, addon_name: str | None = None
) -> None:
    ext(cluster).updates[update["id"]] = UpdateRecord(update, nodegroup_name, addon_name)


def param(param_type: str, value: Any) -> dict[str, str]:
    """An ``UpdateParam``; EKS renders booleans in lower case and lists as JSON."""
    if isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, str):
        text = value
    else:
        text = json.dumps(value)
    return {"type": param_type, "value": text}


def paginate(
    items: Sequence[T], key: Callable[[T], str], max_results: int | None, next_token: str | None
) -> tuple[list[T], str | None]:
    """Page through ``items`` sorted by ``key``; the token is the key of the first item of the next page."""
    ordered = sorted(items, key=key)
    start = 0
    if next_token:
        keys = [key(item) for item in ordered]
        if next_token not in keys:
            raise InvalidParameterException(message="The nextToken provided is not valid.")
        start = keys.index(next_token)
    end = start + (max_results or DEFAULT_MAX_RESULTS)
    return ordered[start:end], (key(ordered[end]) if end < len(ordered) else None)


def patch(cls: type, name: str, func: Callable[..., Any]) -> Callable[..., Any] | None:
    """Set ``cls.name`` to ``func``; return what was there before (None if nothing)."""
    previous = cls.__dict__.get(name)
    setattr(cls, name, func)
    return previous


def query_list(response: EKSResponse, name: str) -> list[str]:
    """A repeated query string parameter (``?types=a&types=b``)."""
    values = response.querystring.get(name)
    return [v for v in values if isinstance(v, str)] if isinstance(values, list) else []
