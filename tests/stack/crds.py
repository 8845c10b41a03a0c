"""Install the custom resource definitions of tests/stack/crds into the local kube-apiserver.

EKS installs some definitions in every cluster (SecurityGroupPolicy); the local
stack installs the same ones so the roles meet the API they meet on EKS.
Applied server-side (idempotent), then waited for until Established.
The objects of tests/stack/cluster-objects (RBAC that EKS clusters come with)
are applied the same way.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import yaml
from kubernetes import config, dynamic

CRD_DIR = Path(__file__).parent / "crds"
OBJECT_DIR = Path(__file__).parent / "cluster-objects"
FIELD_MANAGER = "layered-eks-rds-stack"


def established(crd: dict) -> bool:
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Established" and c.get("status") == "True" for c in conditions)


def main(kubeconfig: str, *paths: str, timeout: float = 60.0) -> int:
    """Apply the CRDs of CRD_DIR and the objects of OBJECT_DIR, or only the CRD files given."""
    api = config.new_client_from_config(config_file=kubeconfig)
    crds = dynamic.DynamicClient(api).resources.get(
        api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition"
    )
    names = []
    for path in [Path(p) for p in paths] or sorted(CRD_DIR.glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        crds.server_side_apply(
            body=body, name=body["metadata"]["name"], field_manager=FIELD_MANAGER, force_conflicts=True
        )
        names.append(body["metadata"]["name"])
    deadline = time.monotonic() + timeout
    pending = list(names)
    while pending:
        pending = [n for n in pending if not established(crds.get(name=n).to_dict())]
        if not pending:
            break
        if time.monotonic() > deadline:
            print(f"not established after {timeout:.0f} s: {', '.join(pending)}", file=sys.stderr)
            return 1
        time.sleep(0.5)
    print(f"established: {', '.join(names)}")
    client = dynamic.DynamicClient(api)
    for path in [] if paths else sorted(OBJECT_DIR.glob("*.yaml")):
        for body in yaml.safe_load_all(path.read_text()):
            resource = client.resources.get(api_version=body["apiVersion"], kind=body["kind"])
            resource.server_side_apply(
                body=body,
                name=body["metadata"]["name"],
                namespace=body["metadata"].get("namespace"),
                field_manager=FIELD_MANAGER,
                force_conflicts=True,
            )
            print(f"applied: {body['kind']} {body['metadata']['name']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], *sys.argv[2:]))
