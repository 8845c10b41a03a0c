"""Cluster settings that change through their own EKS calls: version, secrets encryption, access mode.

* ``UpdateClusterVersion`` moves one minor version forward at a time, as EKS does;
* ``AssociateEncryptionConfig`` adds envelope encryption of secrets to a cluster without it
  (EKS can never remove or replace it);
* ``accessConfig``: kept from CreateCluster (default ``CONFIG_MAP``), returned by DescribeCluster,
  and moved forward only (``CONFIG_MAP`` -> ``API_AND_CONFIG_MAP`` -> ``API``) by UpdateClusterConfig.

Each change is recorded as a completed ``Update`` that DescribeUpdate returns.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.eks.exceptions import InvalidParameterException, InvalidRequestException
from moto.eks.models import Cluster, EKSBackend
from moto.eks.responses import EKSResponse

from ._common import get_cluster, param, patch, record_update

AUTHENTICATION_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")

_original: dict[str, Callable[..., Any]] = {}


def access_config(cluster: Cluster) -> dict[str, Any]:
    """The cluster's ``accessConfig``, EKS's default for clusters created through the API."""
    config: dict[str, Any] | None = getattr(cluster, "access_config", None)
    if config is None:
        config = {"authenticationMode": "CONFIG_MAP", "bootstrapClusterCreatorAdminPermissions": True}
        cluster.access_config = config  # type: ignore[attr-defined]
    return config


def _minor(version: str) -> tuple[int, int]:
    try:
        major, minor = version.split(".")[:2]
        return int(major), int(minor)
    except ValueError:
        raise InvalidParameterException(message=f"Unsupported Kubernetes version {version}") from None


def update_cluster_version(self: EKSBackend, name: str, version: str) -> dict[str, Any]:
    cluster = get_cluster(self, name)
    current = _minor(cluster.version)
    wanted = _minor(version)
    if wanted == current:
        raise InvalidParameterException(clusterName=name, message=f"Cluster is already at version {version}")
    if wanted != (current[0], current[1] + 1):
        raise InvalidParameterException(
            clusterName=name,
            message=f"Unsupported Kubernetes minor version update from {cluster.version} to {version}",
        )
    cluster.version = version
    return record_update(
        cluster, "VersionUpdate", [param("Version", version), param("PlatformVersion", cluster.platformVersion)]
    )


def associate_encryption_config(self: EKSBackend, name: str, encryption_config: list[dict[str, Any]]) -> dict:
    cluster = get_cluster(self, name)
    if cluster.encryption_config:
        raise InvalidRequestException(clusterName=name, message="Encryption is already enabled on the cluster")
    if not encryption_config or not all(c.get("provider", {}).get("keyArn") for c in encryption_config):
        raise InvalidParameterException(clusterName=name, message="An encryption config with a key ARN is required")
    cluster.encryption_config = encryption_config
    return record_update(cluster, "AssociateEncryptionConfig", [param("EncryptionConfig", encryption_config)])


def update_access_config(cluster: Cluster, requested: dict[str, Any]) -> dict[str, Any]:
    config = access_config(cluster)
    current, wanted = config["authenticationMode"], requested.get("authenticationMode")
    if wanted not in AUTHENTICATION_MODES:
        raise InvalidParameterException(clusterName=cluster.name, message=f"Unsupported authentication mode {wanted}")
    if wanted == current:
        raise InvalidParameterException(
            clusterName=cluster.name, message="Cluster is already at the desired configuration"
        )
    if AUTHENTICATION_MODES.index(wanted) < AUTHENTICATION_MODES.index(current):
        raise InvalidParameterException(
            clusterName=cluster.name, message=f"Unsupported authentication mode update from {current} to {wanted}"
        )
    config["authenticationMode"] = wanted
    return record_update(cluster, "AccessConfigUpdate", [param("AuthenticationMode", wanted)])


def _create_cluster_response(self: EKSResponse) -> ActionResult:
    result: ActionResult = _original["create_cluster"](self)
    requested = self._get_param("accessConfig") or {}
    config = access_config(get_cluster(self.eks_backend, self._get_param("name")))
    if requested.get("authenticationMode"):
        config["authenticationMode"] = requested["authenticationMode"]
    if requested.get("bootstrapClusterCreatorAdminPermissions") is not None:
        config["bootstrapClusterCreatorAdminPermissions"] = requested["bootstrapClusterCreatorAdminPermissions"]
    return result


def _describe_cluster_response(self: EKSResponse) -> ActionResult:
    access_config(get_cluster(self.eks_backend, self._get_param("name")))
    return _original["describe_cluster"](self)


def _update_cluster_version_response(self: EKSResponse) -> ActionResult:
    update = update_cluster_version(self.eks_backend, self._get_param("name"), self._get_param("version"))
    return ActionResult({"update": update})


def _associate_encryption_config_response(self: EKSResponse) -> ActionResult:
    update = associate_encryption_config(self.eks_backend, self._get_param("name"), self._get_param("encryptionConfig"))
    return ActionResult({"update": update})


URL_PATHS = ("{0}/clusters/(?P<name>[^/]+)/encryption-config/associate$",)


def install() -> None:
    for name, func in (
        ("create_cluster", _create_cluster_response),
        ("describe_cluster", _describe_cluster_response),
    ):
        previous = patch(EKSResponse, name, func)
        if previous is None:
            raise RuntimeError(f"moto's EKSResponse has no {name}")
        _original[name] = previous
    patch(EKSResponse, "update_cluster_version", _update_cluster_version_response)
    patch(EKSResponse, "associate_encryption_config", _associate_encryption_config_response)
