"""EKS add-ons, which stock moto does not implement.

Create/Describe/Update/Delete/ListAddons and DescribeAddonVersions over a small static catalogue.
Add-ons become ACTIVE at once and updates complete at once; ``podIdentityAssociations`` given to an
add-on become pod identity associations owned by it, in the add-on's namespace.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import yaml
from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.eks.exceptions import InvalidParameterException, ResourceInUseException, ResourceNotFoundException
from moto.eks.models import Cluster, EKSBackend
from moto.eks.responses import EKSResponse
from moto.eks.utils import validate_role_arn
from moto.moto_api._internal import mock_random as random

from . import pod_identity
from ._common import ext, get_cluster, paginate, param, patch, query_list, record_update

ADDON_ARN = "arn:{partition}:eks:{region}:{account_id}:addon/{cluster}/{addon}/{uuid}"
RESOLVE_CONFLICTS = ("OVERWRITE", "NONE", "PRESERVE")
CLUSTER_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")

URL_PATHS = (
    "{0}/clusters/(?P<name>[^/]+)/addons$",
    "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)$",
    "{0}/clusters/(?P<name>[^/]+)/addons/(?P<addonName>[^/]+)/update$",
    "{0}/addons/supported-versions$",
)


@dataclass(frozen=True)
class CatalogueEntry:
    name: str
    type: str
    namespace: str
    requires_iam_permissions: bool
    versions: dict[str, tuple[str, ...]]
    """Add-on version -> compatible cluster versions, newest add-on version first."""

    def default_version(self, cluster_version: str) -> str:
        """Newest version compatible with the cluster version, else the newest of all."""
        compatible = [v for v, cluster_versions in self.versions.items() if cluster_version in cluster_versions]
        return (compatible or list(self.versions))[0]

    def info(self, kubernetes_version: str | None) -> dict[str, Any] | None:
        """The ``AddonInfo`` of DescribeAddonVersions, None if no version fits ``kubernetes_version``."""
        versions = []
        for version, cluster_versions in self.versions.items():
            wanted = [cv for cv in cluster_versions if kubernetes_version in (None, cv)]
            if wanted:
                versions.append(
                    {
                        "addonVersion": version,
                        "architecture": ["amd64", "arm64"],
                        "computeTypes": ["ec2"],
                        "compatibilities": [
                            {
                                "clusterVersion": cv,
                                "platformVersions": ["*"],
                                "defaultVersion": self.default_version(cv) == version,
                            }
                            for cv in wanted
                        ],
                        "requiresConfiguration": False,
                        "requiresIamPermissions": self.requires_iam_permissions,
                    }
                )
        if not versions:
            return None
        return {
            "addonName": self.name,
            "type": self.type,
            "addonVersions": versions,
            "publisher": "eks",
            "owner": "aws",
            "defaultNamespace": self.namespace,
        }


CATALOGUE: dict[str, CatalogueEntry] = {
    entry.name: entry
    for entry in (
        CatalogueEntry(
            "vpc-cni",
            "networking",
            "kube-system",
            True,
            {"v1.19.2-eksbuild.1": CLUSTER_VERSIONS, "v1.18.6-eksbuild.1": CLUSTER_VERSIONS[:-1]},
        ),
        CatalogueEntry(
            "eks-pod-identity-agent",
            "security",
            "kube-system",
            False,
            {"v1.3.4-eksbuild.1": CLUSTER_VERSIONS, "v1.3.2-eksbuild.2": CLUSTER_VERSIONS[:-1]},
        ),
        CatalogueEntry(
            "coredns",
            "networking",
            "kube-system",
            False,
            {"v1.11.4-eksbuild.2": CLUSTER_VERSIONS, "v1.11.3-eksbuild.1": CLUSTER_VERSIONS[:-1]},
        ),
        CatalogueEntry(
            "kube-proxy",
            "networking",
            "kube-system",
            False,
            {
                "v1.33.0-eksbuild.2": ("1.33",),
                "v1.32.0-eksbuild.2": ("1.32",),
                "v1.31.3-eksbuild.2": ("1.31",),
                "v1.30.7-eksbuild.2": ("1.30",),
                "v1.29.10-eksbuild.3": ("1.29",),
            },
        ),
    )
}


@dataclass
class Addon:
    """Attribute names are the snake_case of the ``Addon`` shape."""

    addon_name: str
    cluster_name: str
    addon_version: str
    addon_arn: str
    namespace: str
    status: str = "ACTIVE"
    health: dict[str, list[Any]] = field(default_factory=lambda: {"issues": []})
    service_account_role_arn: str | None = None
    configuration_values: str | None = None
    resolve_conflicts: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    publisher: str = "eks"
    owner: str = "aws"
    pod_identity_associations: list[str] = field(default_factory=list)
    namespace_config: dict[str, str] | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime = field(default_factory=utcnow)

    @property
    def arn(self) -> str:
        return self.addon_arn


def _invalid(cluster: Cluster, addon_name: str, message: str) -> InvalidParameterException:
    return InvalidParameterException(clusterName=cluster.name, addonName=addon_name, message=message)


def _catalogue_entry(cluster: Cluster, addon_name: str) -> CatalogueEntry:
    try:
        return CATALOGUE[addon_name]
    except KeyError:
        raise _invalid(
            cluster, addon_name, f"Addon {addon_name} specified is not supported in {cluster.version} cluster version"
        ) from None


def _check_version(cluster: Cluster, entry: CatalogueEntry, addon_version: str) -> None:
    if addon_version not in entry.versions:
        raise _invalid(cluster, entry.name, f"Addon version specified is not supported: {addon_version}")


def _check_configuration_values(cluster: Cluster, addon_name: str, values: str) -> None:
    """EKS takes a JSON or YAML document whose top level is an object."""
    if not values:
        return
    try:
        parsed = json.loads(values)
    except ValueError:
        parsed = None
        if not values.lstrip().startswith(("{", "[")):  # not meant as JSON: try YAML
            with contextlib.suppress(yaml.YAMLError):
                parsed = yaml.safe_load(values)
        if parsed is None:
            raise _invalid(cluster, addon_name, "ConfigurationValue is not in valid JSON or YAML format.") from None
    if not isinstance(parsed, dict):
        raise _invalid(
            cluster,
            addon_name,
            "ConfigurationValue provided in request is not supported: Json schema validation failed with error:"
            " [$: must be an object]",
        )


def _check_role_and_conflicts(
    cluster: Cluster, addon_name: str, role_arn: str | None, resolve_conflicts: str | None
) -> None:
    if role_arn:
        validate_role_arn(role_arn)
    if resolve_conflicts is not None and resolve_conflicts not in RESOLVE_CONFLICTS:
        raise _invalid(cluster, addon_name, f"Invalid resolveConflicts value: {resolve_conflicts}")


def _check_pod_identities(
    cluster: Cluster, namespace: str, wanted: list[dict[str, str]], owner_arn: str | None = None
) -> dict[str, str]:
    """Service account -> role ARN, after checking the roles and that nobody but the add-on holds the account."""
    roles = {item["serviceAccount"]: item["roleArn"] for item in wanted}
    for service_account, role_arn in roles.items():
        validate_role_arn(role_arn)
        pod_identity.check_available(cluster, namespace, service_account, owner_arn=owner_arn)
    return roles


def _apply_pod_identities(backend: EKSBackend, cluster: Cluster, addon: Addon, roles: dict[str, str]) -> None:
    """Make the add-on's own associations exactly ``roles``."""
    associations = ext(cluster).associations
    owned = {a.service_account: a for a in associations.values() if a.owner_arn == addon.addon_arn}
    for service_account, association in owned.items():
        if service_account not in roles:
            del associations[association.association_id]
        elif association.role_arn != roles[service_account]:
            association.role_arn = roles[service_account]
            association.modified_at = utcnow()
    for service_account, role_arn in roles.items():
        if service_account not in owned:
            pod_identity.create_association(
                backend, cluster, addon.namespace, service_account, role_arn, owner_arn=addon.addon_arn
            )
    addon.pod_identity_associations = sorted(
        a.association_arn for a in associations.values() if a.owner_arn == addon.addon_arn
    )


def _get_addon(backend: EKSBackend, cluster_name: str, addon_name: str) -> tuple[Cluster, Addon]:
    cluster = get_cluster(backend, cluster_name)
    try:
        return cluster, ext(cluster).addons[addon_name]
    except KeyError:
        raise ResourceNotFoundException(
            clusterName=cluster_name,
            addonName=addon_name,
            message=f"No addon: {addon_name} found in cluster: {cluster_name}",
        ) from None


def create_addon(
    self: EKSBackend,
    cluster_name: str,
    addon_name: str,
    addon_version: str | None = None,
    service_account_role_arn: str | None = None,
    resolve_conflicts: str | None = None,
    tags: dict[str, str] | None = None,
    configuration_values: str | None = None,
    pod_identity_associations: list[dict[str, str]] | None = None,
    namespace_config: dict[str, str] | None = None,
) -> Addon:
    cluster = get_cluster(self, cluster_name)
    if addon_name in ext(cluster).addons:
        raise ResourceInUseException(clusterName=cluster_name, addonName=addon_name, message="Addon already exists.")
    entry = _catalogue_entry(cluster, addon_name)
    if addon_version:
        _check_version(cluster, entry, addon_version)
    _check_role_and_conflicts(cluster, addon_name, service_account_role_arn, resolve_conflicts)
    _check_configuration_values(cluster, addon_name, configuration_values or "")
    namespace = (namespace_config or {}).get("namespace") or entry.namespace
    roles = _check_pod_identities(cluster, namespace, pod_identity_associations or [])

    addon = Addon(
        addon_name=addon_name,
        cluster_name=cluster_name,
        addon_version=addon_version or entry.default_version(cluster.version),
        addon_arn=ADDON_ARN.format(
            partition=self.partition,
            region=self.region_name,
            account_id=self.account_id,
            cluster=cluster_name,
            addon=addon_name,
            uuid=random.uuid4(),
        ),
        namespace=namespace,
        service_account_role_arn=service_account_role_arn or None,
        configuration_values=configuration_values or None,
        resolve_conflicts=resolve_conflicts,
        tags=dict(tags or {}),
        namespace_config={"namespace": namespace} if namespace_config else None,
    )
    _apply_pod_identities(self, cluster, addon, roles)
    ext(cluster).addons[addon_name] = addon
    return addon


def describe_addon(self: EKSBackend, cluster_name: str, addon_name: str) -> Addon:
    return _get_addon(self, cluster_name, addon_name)[1]


def update_addon(
    self: EKSBackend,
    cluster_name: str,
    addon_name: str,
    addon_version: str | None = None,
    service_account_role_arn: str | None = None,
    resolve_conflicts: str | None = None,
    configuration_values: str | None = None,
    pod_identity_associations: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Validate everything, then apply; empty strings clear the role and the configuration values."""
    cluster, addon = _get_addon(self, cluster_name, addon_name)
    if addon_version:
        _check_version(cluster, CATALOGUE[addon_name], addon_version)
    _check_role_and_conflicts(cluster, addon_name, service_account_role_arn, resolve_conflicts)
    if configuration_values is not None:
        _check_configuration_values(cluster, addon_name, configuration_values)
    roles = None
    if pod_identity_associations is not None:
        roles = _check_pod_identities(cluster, addon.namespace, pod_identity_associations, addon.addon_arn)

    params = []
    if addon_version:
        addon.addon_version = addon_version
        params.append(param("AddonVersion", addon_version))
    if service_account_role_arn is not None:
        addon.service_account_role_arn = service_account_role_arn or None
        params.append(param("ServiceAccountRoleArn", service_account_role_arn))
    if resolve_conflicts is not None:
        addon.resolve_conflicts = resolve_conflicts
        params.append(param("ResolveConflicts", resolve_conflicts))
    if configuration_values is not None:
        addon.configuration_values = configuration_values or None
        params.append(param("ConfigurationValues", configuration_values))
    if roles is not None:
        _apply_pod_identities(self, cluster, addon, roles)
        params.append(param("PodIdentityAssociations", addon.pod_identity_associations))
    addon.modified_at = utcnow()
    return record_update(cluster, "AddonUpdate", params, addon_name=addon_name)


def delete_addon(self: EKSBackend, cluster_name: str, addon_name: str, preserve: bool = False) -> Addon:
    """``preserve`` only concerns the add-on's Kubernetes objects, which do not exist here."""
    cluster, addon = _get_addon(self, cluster_name, addon_name)
    owned = addon.pod_identity_associations
    _apply_pod_identities(self, cluster, addon, {})  # EKS deletes the add-on's associations with it
    addon.pod_identity_associations = owned
    del ext(cluster).addons[addon_name]
    addon.status = "DELETING"
    return addon


def list_addons(
    self: EKSBackend, cluster_name: str, max_results: int | None = None, next_token: str | None = None
) -> tuple[list[str], str | None]:
    return paginate(list(ext(get_cluster(self, cluster_name)).addons), str, max_results, next_token)


def describe_addon_versions(
    self: EKSBackend,
    kubernetes_version: str | None = None,
    addon_name: str | None = None,
    types: list[str] | None = None,
    publishers: list[str] | None = None,
    owners: list[str] | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    infos = [
        info
        for entry in CATALOGUE.values()
        if addon_name in (None, entry.name)
        and (info := entry.info(kubernetes_version)) is not None
        and (not types or info["type"] in types)
        and (not publishers or info["publisher"] in publishers)
        and (not owners or info["owner"] in owners)
    ]
    return paginate(infos, lambda info: info["addonName"], max_results, next_token)


def _create_response(self: EKSResponse) -> ActionResult:
    addon = self.eks_backend.create_addon(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"),
        addon_name=self._get_param("addonName"),
        addon_version=self._get_param("addonVersion"),
        service_account_role_arn=self._get_param("serviceAccountRoleArn"),
        resolve_conflicts=self._get_param("resolveConflicts"),
        tags=self._get_param("tags"),
        configuration_values=self._get_param("configurationValues"),
        pod_identity_associations=self._get_param("podIdentityAssociations"),
        namespace_config=self._get_param("namespaceConfig"),
    )
    return ActionResult({"addon": addon})


def _describe_response(self: EKSResponse) -> ActionResult:
    addon = self.eks_backend.describe_addon(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"), addon_name=self._get_param("addonName")
    )
    return ActionResult({"addon": addon})


def _update_response(self: EKSResponse) -> ActionResult:
    update = self.eks_backend.update_addon(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"),
        addon_name=self._get_param("addonName"),
        addon_version=self._get_param("addonVersion"),
        service_account_role_arn=self._get_param("serviceAccountRoleArn"),
        resolve_conflicts=self._get_param("resolveConflicts"),
        configuration_values=self._get_param("configurationValues"),
        pod_identity_associations=self._get_param("podIdentityAssociations"),
    )
    return ActionResult({"update": update})


def _delete_response(self: EKSResponse) -> ActionResult:
    addon = self.eks_backend.delete_addon(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"),
        addon_name=self._get_param("addonName"),
        preserve=str(self._get_param("preserve", "false")).lower() == "true",
    )
    return ActionResult({"addon": addon})


def _list_response(self: EKSResponse) -> ActionResult:
    names, next_token = self.eks_backend.list_addons(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"),
        max_results=self._get_int_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    return ActionResult({"addons": names, "nextToken": next_token})


def _describe_versions_response(self: EKSResponse) -> ActionResult:
    infos, next_token = self.eks_backend.describe_addon_versions(  # type: ignore[attr-defined]
        kubernetes_version=self._get_param("kubernetesVersion"),
        addon_name=self._get_param("addonName"),
        types=query_list(self, "types"),
        publishers=query_list(self, "publishers"),
        owners=query_list(self, "owners"),
        max_results=self._get_int_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    return ActionResult({"addons": infos, "nextToken": next_token})


def install() -> None:
    for name, backend_method, response_method in (
        ("create_addon", create_addon, _create_response),
        ("describe_addon", describe_addon, _describe_response),
        ("update_addon", update_addon, _update_response),
        ("delete_addon", delete_addon, _delete_response),
        ("list_addons", list_addons, _list_response),
        ("describe_addon_versions", describe_addon_versions, _describe_versions_response),
    ):
        patch(EKSBackend, name, backend_method)
        patch(EKSResponse, name, response_method)
