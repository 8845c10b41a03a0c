"""TagResource / UntagResource / ListTagsForResource for every EKS ARN, not only clusters.

moto only finds clusters by ARN; this also finds nodegroups, Fargate profiles, add-ons and pod
identity associations, and falls back to moto (and its not-found error) for anything else.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from moto.eks.models import EKSBackend

from ._common import ext, patch

_original: dict[str, Callable[..., Any]] = {}


def _resources(backend: EKSBackend) -> Iterator[tuple[str, Any]]:
    for cluster in backend.clusters.values():
        yield cluster.arn, cluster
        for nodegroup in cluster.nodegroups.values():
            yield nodegroup.arn, nodegroup
        for profile in cluster.fargate_profiles.values():
            yield profile.fargate_profile_arn, profile
        state = ext(cluster)
        for item in (*state.addons.values(), *state.associations.values()):
            yield item.arn, item


def _find(backend: EKSBackend, resource_arn: str) -> Any | None:
    return next((resource for arn, resource in _resources(backend) if arn == resource_arn), None)


def tag_resource(self: EKSBackend, resource_arn: str, tags: dict[str, str]) -> None:
    resource = _find(self, resource_arn)
    if resource is None:
        _original["tag_resource"](self, resource_arn, tags)  # raises moto's not-found error
        return
    resource.tags.update(tags)


def untag_resource(self: EKSBackend, resource_arn: str, tag_keys: list[str] | str) -> None:
    resource = _find(self, resource_arn)
    if resource is None:
        _original["untag_resource"](self, resource_arn, tag_keys)
        return
    for key in [tag_keys] if isinstance(tag_keys, str) else tag_keys:
        resource.tags.pop(key, None)


def list_tags_for_resource(self: EKSBackend, resource_arn: str) -> dict[str, str]:
    resource = _find(self, resource_arn)
    if resource is None:
        return _original["list_tags_for_resource"](self, resource_arn)
    return resource.tags  # type: ignore[no-any-return]


def install() -> None:
    for name, func in (
        ("tag_resource", tag_resource),
        ("untag_resource", untag_resource),
        ("list_tags_for_resource", list_tags_for_resource),
    ):
        previous = patch(EKSBackend, name, func)
        if previous is None:
            raise RuntimeError(f"moto's EKSBackend has no {name}")
        _original[name] = previous
