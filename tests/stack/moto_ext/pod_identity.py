"""EKS Pod Identity associations, which stock moto does not implement.

Create/Describe/Update/Delete/ListPodIdentityAssociations, with EKS's rules: one association per
(namespace, service account) in a cluster, role ARNs validated, ids ``a-`` plus 17 lower-case
alphanumerics.  Add-ons create associations through ``create_association`` with themselves as owner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.eks.exceptions import InvalidParameterException, ResourceInUseException, ResourceNotFoundException
from moto.eks.models import Cluster, EKSBackend
from moto.eks.responses import EKSResponse
from moto.eks.utils import validate_role_arn
from moto.moto_api._internal import mock_random as random

from ._common import ext, get_cluster, paginate, patch

ASSOCIATION_ARN = "arn:{partition}:eks:{region}:{account_id}:podidentityassociation/{cluster}/{association_id}"
ASSOCIATION_ID_LENGTH = 19

URL_PATHS = (
    "{0}/clusters/(?P<name>[^/]+)/pod-identity-associations$",
    "{0}/clusters/(?P<name>[^/]+)/pod-identity-associations/(?P<associationId>[^/]+)$",
)


@dataclass
class PodIdentityAssociation:
    """Attribute names are the snake_case of the ``PodIdentityAssociation`` shape."""

    cluster_name: str
    namespace: str
    service_account: str
    role_arn: str
    association_id: str
    association_arn: str
    tags: dict[str, str] = field(default_factory=dict)
    disable_session_tags: bool = False
    target_role_arn: str | None = None
    external_id: str | None = None
    policy: str | None = None
    owner_arn: str | None = None
    created_at: datetime = field(default_factory=utcnow)
    modified_at: datetime = field(default_factory=utcnow)

    @property
    def arn(self) -> str:
        return self.association_arn

    def set_target_role(self, target_role_arn: str | None) -> None:
        """EKS hands out an external id for the role chaining to the target role."""
        self.target_role_arn = target_role_arn or None
        if not self.target_role_arn:
            self.external_id = None
        elif not self.external_id:
            self.external_id = str(random.uuid4())


def check_available(cluster: Cluster, namespace: str, service_account: str, owner_arn: str | None = None) -> None:
    """Raise if an association holds the service account, other than one owned by ``owner_arn`` if given."""
    for association in ext(cluster).associations.values():
        if owner_arn is not None and association.owner_arn == owner_arn:
            continue
        if (association.namespace, association.service_account) == (namespace, service_account):
            raise ResourceInUseException(
                clusterName=cluster.name, message=f"Association already exists: {association.association_id}"
            )


def create_association(
    backend: EKSBackend,
    cluster: Cluster,
    namespace: str,
    service_account: str,
    role_arn: str,
    tags: dict[str, str] | None = None,
    disable_session_tags: bool | None = None,
    target_role_arn: str | None = None,
    policy: str | None = None,
    owner_arn: str | None = None,
) -> PodIdentityAssociation:
    if not namespace or not service_account:
        raise InvalidParameterException(
            clusterName=cluster.name, message="namespace and serviceAccount must not be empty."
        )
    validate_role_arn(role_arn)
    if target_role_arn:
        validate_role_arn(target_role_arn)
    check_available(cluster, namespace, service_account)
    association_id = "a-" + random.get_random_string(17, lower_case=True)
    association = PodIdentityAssociation(
        cluster_name=cluster.name,
        namespace=namespace,
        service_account=service_account,
        role_arn=role_arn,
        association_id=association_id,
        association_arn=ASSOCIATION_ARN.format(
            partition=backend.partition,
            region=backend.region_name,
            account_id=backend.account_id,
            cluster=cluster.name,
            association_id=association_id,
        ),
        tags=dict(tags or {}),
        disable_session_tags=bool(disable_session_tags),
        policy=policy,
        owner_arn=owner_arn,
    )
    association.set_target_role(target_role_arn)
    ext(cluster).associations[association_id] = association
    return association


def _get_association(backend: EKSBackend, cluster_name: str, association_id: str) -> PodIdentityAssociation:
    cluster = get_cluster(backend, cluster_name)
    if len(association_id) != ASSOCIATION_ID_LENGTH:
        raise InvalidParameterException(
            clusterName=cluster_name,
            message=f"The parameter associationId should be {ASSOCIATION_ID_LENGTH} characters long.",
        )
    try:
        return ext(cluster).associations[association_id]
    except KeyError:
        raise ResourceNotFoundException(
            clusterName=cluster_name, message=f"No Pod Identity Association found with id: {association_id}"
        ) from None


def create_pod_identity_association(
    self: EKSBackend, cluster_name: str, namespace: str, service_account: str, role_arn: str, **kwargs: Any
) -> PodIdentityAssociation:
    cluster = get_cluster(self, cluster_name)
    return create_association(self, cluster, namespace, service_account, role_arn, **kwargs)


def describe_pod_identity_association(
    self: EKSBackend, cluster_name: str, association_id: str
) -> PodIdentityAssociation:
    return _get_association(self, cluster_name, association_id)


def update_pod_identity_association(
    self: EKSBackend,
    cluster_name: str,
    association_id: str,
    role_arn: str | None = None,
    disable_session_tags: bool | None = None,
    target_role_arn: str | None = None,
    policy: str | None = None,
) -> PodIdentityAssociation:
    association = _get_association(self, cluster_name, association_id)
    if role_arn:
        validate_role_arn(role_arn)
    if target_role_arn:
        validate_role_arn(target_role_arn)
    if role_arn:
        association.role_arn = role_arn
    if target_role_arn is not None:  # an empty string removes the target role
        association.set_target_role(target_role_arn)
    if disable_session_tags is not None:
        association.disable_session_tags = disable_session_tags
    if policy is not None:
        association.policy = policy or None
    association.modified_at = utcnow()
    return association


def delete_pod_identity_association(self: EKSBackend, cluster_name: str, association_id: str) -> PodIdentityAssociation:
    association = _get_association(self, cluster_name, association_id)
    del ext(self.clusters[cluster_name]).associations[association_id]
    return association


def list_pod_identity_associations(
    self: EKSBackend,
    cluster_name: str,
    namespace: str | None = None,
    service_account: str | None = None,
    max_results: int | None = None,
    next_token: str | None = None,
) -> tuple[list[PodIdentityAssociation], str | None]:
    associations = [
        a
        for a in ext(get_cluster(self, cluster_name)).associations.values()
        if namespace in (None, a.namespace) and service_account in (None, a.service_account)
    ]
    return paginate(associations, lambda a: a.association_id, max_results, next_token)


def _create_response(self: EKSResponse) -> ActionResult:
    association = self.eks_backend.create_pod_identity_association(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"),
        namespace=self._get_param("namespace"),
        service_account=self._get_param("serviceAccount"),
        role_arn=self._get_param("roleArn"),
        tags=self._get_param("tags"),
        disable_session_tags=self._get_param("disableSessionTags"),
        target_role_arn=self._get_param("targetRoleArn"),
        policy=self._get_param("policy"),
    )
    return ActionResult({"association": association})


def _describe_response(self: EKSResponse) -> ActionResult:
    association = self.eks_backend.describe_pod_identity_association(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"), association_id=self._get_param("associationId")
    )
    return ActionResult({"association": association})


def _update_response(self: EKSResponse) -> ActionResult:
    association = self.eks_backend.update_pod_identity_association(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"),
        association_id=self._get_param("associationId"),
        role_arn=self._get_param("roleArn"),
        disable_session_tags=self._get_param("disableSessionTags"),
        target_role_arn=self._get_param("targetRoleArn"),
        policy=self._get_param("policy"),
    )
    return ActionResult({"association": association})


def _delete_response(self: EKSResponse) -> ActionResult:
    association = self.eks_backend.delete_pod_identity_association(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"), association_id=self._get_param("associationId")
    )
    return ActionResult({"association": association})


def _list_response(self: EKSResponse) -> ActionResult:
    associations, next_token = self.eks_backend.list_pod_identity_associations(  # type: ignore[attr-defined]
        cluster_name=self._get_param("name"),
        namespace=self._get_param("namespace"),
        service_account=self._get_param("serviceAccount"),
        max_results=self._get_int_param("maxResults"),
        next_token=self._get_param("nextToken"),
    )
    return ActionResult({"associations": associations, "nextToken": next_token})


def install() -> None:
    for name, backend_method, response_method in (
        ("create_pod_identity_association", create_pod_identity_association, _create_response),
        ("describe_pod_identity_association", describe_pod_identity_association, _describe_response),
        ("update_pod_identity_association", update_pod_identity_association, _update_response),
        ("delete_pod_identity_association", delete_pod_identity_association, _delete_response),
        ("list_pod_identity_associations", list_pod_identity_associations, _list_response),
    ):
        patch(EKSBackend, name, backend_method)
        patch(EKSResponse, name, response_method)
