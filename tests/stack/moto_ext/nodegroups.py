"""Node group ``updateConfig``, which moto's CreateNodegroup drops.

EKS keeps the ``updateConfig`` given at creation and describes a default of
``{"maxUnavailable": 1}`` otherwise; community.aws.eks_nodegroup compares it on
every run. UpdateNodegroupConfig already changes it in stock moto.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.responses import ActionResult
from moto.eks.responses import EKSResponse

from ._common import get_cluster, patch

DEFAULT_UPDATE_CONFIG = {"maxUnavailable": 1}

_original: dict[str, Callable[..., Any]] = {}


def _create_nodegroup_response(self: EKSResponse) -> ActionResult:
    result: ActionResult = _original["create_nodegroup"](self)
    cluster = get_cluster(self.eks_backend, self._get_param("name"))
    nodegroup = cluster.nodegroups[self._get_param("nodegroupName")]
    nodegroup.update_config = self._get_param("updateConfig") or dict(DEFAULT_UPDATE_CONFIG)
    return result


def install() -> None:
    previous = patch(EKSResponse, "create_nodegroup", _create_nodegroup_response)
    if previous is None:
        raise RuntimeError("moto's EKSResponse has no create_nodegroup")
    _original["create_nodegroup"] = previous
