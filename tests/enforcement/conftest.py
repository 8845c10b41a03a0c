"""Fixtures for the tests that prove the local stack enforces what AWS enforces.

They run against the running stack (``make up``) after ``site.yml -i inventories/local`` has
converged (``make test`` runs them right after the e2e step; alone, the session fixture runs
site.yml once when the cluster is missing). Every test reads its outcome back from a server:
the kube-apiserver (pod and Job status, logs), moto (network interfaces, STS) or PostgreSQL.
Tests that break a layer (revoke a rule, delete a NACL entry) put it back in a ``finally``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
STACK_DIR = Path(os.environ.get("LAYERED_STACK_DIR") or REPO / ".stack")
sys.path.insert(0, str(REPO / "tests" / "stack"))

CLUSTER = "eks-rds-local"
APP_NAMESPACE = "metabase"
APP_SA = "metabase"
DB_USER = "metabase"
PROBE_NAMESPACE = "layered-enforcement"


def read_endpoints() -> dict[str, Any]:
    path = STACK_DIR / "endpoints.json"
    if not path.exists():
        pytest.skip(f"the local stack is not running ({path} missing); run make up")
    return json.loads(path.read_text())


@pytest.fixture(scope="session")
def endpoints() -> dict[str, Any]:
    return read_endpoints()


@pytest.fixture(scope="session")
def aws(endpoints: dict[str, Any]) -> dict[str, Any]:
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=endpoints["aws_region"]
    )
    return {
        name: session.client(name, endpoint_url=endpoints["aws_endpoint_url"])
        for name in ("ec2", "eks", "rds", "iam", "sts", "secretsmanager")
    }


@pytest.fixture(scope="session")
def kube(endpoints: dict[str, Any]) -> Any:
    return k8s_config.new_client_from_config(config_file=endpoints["kubeconfig"])


@pytest.fixture(scope="session")
def core(kube: Any) -> k8s.CoreV1Api:
    return k8s.CoreV1Api(kube)


def agent_state() -> dict[str, Any]:
    return json.loads((STACK_DIR / "fabric" / "state.json").read_text())


def wait_agent_passes(passes: int = 2, timeout: float = 60) -> dict[str, Any]:
    """Wait until the agent has made ``passes`` full passes after now (so a change in moto is applied)."""
    start = agent_state()["generation"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = agent_state()
        if state["generation"] >= start + passes:
            return state
        time.sleep(0.3)
    raise AssertionError(f"the agent made no pass in {timeout} s; see {STACK_DIR}/logs/agent.log")


@pytest.fixture(scope="session")
def converged(aws: dict[str, Any], endpoints: dict[str, Any]) -> dict[str, Any]:
    """The environment site.yml builds; converge once if it is not there."""
    if CLUSTER not in aws["eks"].list_clusters()["clusters"]:
        env = {**os.environ, "LAYERED_STACK_DIR": str(STACK_DIR)}
        subprocess.run(["ansible-playbook", "site.yml", "-i", "inventories/local"], cwd=REPO, env=env, check=True)
    cluster = aws["eks"].describe_cluster(name=CLUSTER)["cluster"]
    vpc_id = cluster["resourcesVpcConfig"]["vpcId"]
    db = next(
        d
        for d in aws["rds"].describe_db_instances()["DBInstances"]
        if (d.get("DBSubnetGroup") or {}).get("VpcId") == vpc_id
    )
    subnets = aws["ec2"].describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    state = wait_agent_passes(2)
    return {"cluster": cluster, "vpc_id": vpc_id, "db": db, "subnets": subnets, "state": state}


@pytest.fixture(scope="session")
def probe_namespace(core: k8s.CoreV1Api) -> Iterator[str]:
    try:
        core.create_namespace({"metadata": {"name": PROBE_NAMESPACE}})
    except ApiException as exc:
        if exc.status != 409:
            raise
    yield PROBE_NAMESPACE
    core.delete_namespace(PROBE_NAMESPACE)


def superuser_connection(endpoints: dict[str, Any]) -> dict[str, Any]:
    """psycopg.connect() arguments of the stack's PostgreSQL superuser (TLS, autocommit)."""
    return {
        "host": endpoints["postgres_host"],
        "port": endpoints["postgres_port"],
        "user": endpoints["postgres_superuser"],
        "password": (STACK_DIR / "postgres.password").read_text().strip(),
        "dbname": "postgres",
        "sslmode": "verify-ca",
        "sslrootcert": endpoints["postgres_ca_file"],
        "autocommit": True,
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def decode_jwt(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
