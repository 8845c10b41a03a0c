"""Short-lived Jobs that run on the local stack's nodes and report what their packets met."""

from __future__ import annotations

import json
import time
from typing import Any

import irsa_pod
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

AWS_CLI_IMAGE = "public.ecr.aws/aws-cli/aws-cli:2.22.0"
PSQL_IMAGE = "public.ecr.aws/docker/library/postgres:16"


def rds_connect_policy(dbuser_arn: str) -> str:
    """An IAM policy document allowing only rds-db:connect as one database user (arn:...:dbuser:<id>/<user>)."""
    statement = {"Effect": "Allow", "Action": "rds-db:connect", "Resource": dbuser_arn}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def ca_configmap(core: k8s.CoreV1Api, namespace: str, ca_pem: str) -> str:
    name = "layered-probe-ca"
    body = {"metadata": {"name": name}, "data": {"ca.pem": ca_pem}}
    try:
        core.create_namespaced_config_map(namespace, body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        core.replace_namespaced_config_map(name, namespace, body)
    return name


def psql_script(host: str, port: int, user: str, *, token_file: str | None = None, sslmode: str = "verify-full") -> str:
    password = f'PGPASSWORD="$(cat {token_file})"' if token_file else "PGPASSWORD=not-a-token"
    conninfo = (
        f"host={host} port={port} dbname=postgres user={user} sslmode={sslmode} "
        "sslrootcert=/etc/rds/ca.pem connect_timeout=5"
    )
    return f'{password} psql "{conninfo}" -At -c "select current_user"'


def job_manifest(
    name: str,
    *,
    service_account: str,
    script: str,
    ca_configmap_name: str,
    role_arn: str | None = None,
    region: str = "eu-west-1",
    token_script: str | None = None,
    image: str = PSQL_IMAGE,
) -> dict[str, Any]:
    """A Job: optional init container that makes an IAM token with the AWS CLI, then ``script`` in ``image``."""
    volumes: list[dict[str, Any]] = [
        {"name": "rds-ca", "configMap": {"name": ca_configmap_name}},
        {"name": "work", "emptyDir": {}},
    ]
    mounts = [{"name": "rds-ca", "mountPath": "/etc/rds", "readOnly": True}, {"name": "work", "mountPath": "/scratch"}]
    env = [{"name": "AWS_REGION", "value": region}, {"name": "AWS_DEFAULT_REGION", "value": region}]
    if role_arn:
        # what the pod identity webhook adds for a ServiceAccount annotated with a role
        env += irsa_pod.env(role_arn)
        volumes.append(irsa_pod.volume())
        mounts.append(irsa_pod.mount())
    init = []
    if token_script:
        init.append(
            {
                "name": "token",
                "image": AWS_CLI_IMAGE,
                "command": ["sh", "-c", token_script],
                "env": env,
                "volumeMounts": mounts,
            }
        )
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": 0,
            "ttlSecondsAfterFinished": 600,
            "template": {
                "metadata": {"labels": {"app.kubernetes.io/part-of": "layered-enforcement"}},
                "spec": {
                    "serviceAccountName": service_account,
                    "restartPolicy": "Never",
                    "initContainers": init,
                    "containers": [
                        {
                            "name": "probe",
                            "image": image,
                            "command": ["sh", "-c", script],
                            "env": env,
                            "volumeMounts": mounts,
                        }
                    ],
                    "volumes": volumes,
                },
            },
        },
    }


def create_job(kube: Any, namespace: str, manifest: dict[str, Any]) -> str:
    k8s.BatchV1Api(kube).create_namespaced_job(namespace, manifest)
    return manifest["metadata"]["name"]


def job_pod(core: k8s.CoreV1Api, namespace: str, job: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pods = core.list_namespaced_pod(namespace, label_selector=f"batch.kubernetes.io/job-name={job}").items
        if pods:
            return pods[0]
        time.sleep(0.3)
    raise AssertionError(f"Job {namespace}/{job} made no pod in {timeout} s")


def wait_job(kube: Any, namespace: str, job: str, timeout: float = 120) -> dict[str, Any]:
    """Wait until the Job's pod ends; return its phase, exit codes, logs and the pod itself."""
    core = k8s.CoreV1Api(kube)
    deadline = time.monotonic() + timeout
    pod = job_pod(core, namespace, job)
    while time.monotonic() < deadline:
        pod = core.read_namespaced_pod(pod.metadata.name, namespace)
        if pod.status.phase in ("Succeeded", "Failed"):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"pod of Job {namespace}/{job} still {pod.status.phase} after {timeout} s")
    logs = {}
    for status in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or []):
        try:
            logs[status.name] = core.read_namespaced_pod_log(pod.metadata.name, namespace, container=status.name)
        except ApiException as exc:
            logs[status.name] = f"<no logs: {exc.status}>"
    codes = {
        s.name: (s.state.terminated.exit_code if s.state and s.state.terminated else None)
        for s in (pod.status.init_container_statuses or []) + (pod.status.container_statuses or [])
    }
    return {"phase": pod.status.phase, "codes": codes, "logs": logs, "pod": pod}


def classify(logs: str) -> str:
    """What a psql attempt met, from libpq's error text."""
    text = logs.lower()
    if "timeout expired" in text:
        return "timeout"
    if "pam authentication failed" in text or "password authentication failed" in text:
        return "auth-failed"
    if "no pg_hba.conf entry" in text or ("ssl" in text and "required" in text):
        return "tls-refused"
    if "could not translate host name" in text:
        return "dns-failed"
    return "other"
