"""The JDBC path Metabase takes to its application database with IAM authentication, run for real.

Metabase (v0.58+, ``MB_DB_AWS_IAM=true``) connects through the AWS Advanced JDBC Wrapper's ``iam`` plugin over
pgjdbc; the plugin signs an RDS IAM token with the AWS SDK v2 for each new physical connection, with credentials
from the SDK's default chain (web identity under IRSA), and keeps it for ``iamExpiration`` seconds. The JVM
probe of ``tests/jdbc_probe`` (``make jdbc-probe``) does the same and reports each step as a JSON line. It runs
as a Job pod (image ``localhost/layered/jdbc-iam-probe``) on the enforced path: the pod's own network namespace
and security groups, the RDS endpoint name from the stack's resolver, STS behind the stack's AWS endpoint with
the stack's CA as the JVM's trust store, TLS to PostgreSQL verified against the same CA (``sslmode=verify-full``),
and the token checked by moto through PAM.

The module makes what it uses and removes it after: a namespace and ServiceAccount selected by a
SecurityGroupPolicy with the application's pod security groups, an IAM role trusted through the cluster's OIDC
provider for that ServiceAccount only, allowed ``rds-db:connect`` as a login role of its own (a member of
``rds_iam``), and a lifetime of that role's tokens shortened to ``TOKEN_LIFETIME`` seconds in moto.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from conftest import APP_NAMESPACE, REPO, STACK_DIR, superuser_connection, unique
from kubernetes import client as k8s
from probes import ca_configmap, create_job, job_manifest, rds_connect_policy, wait_job

PROBE_IMAGE = "localhost/layered/jdbc-iam-probe"
PROBE_JAR = REPO / "tests" / "jdbc_probe" / "target" / "jdbc-iam-probe.jar"
MAX_TOKEN_AGE_PATH = "/moto-api/layered/rds-iam-auth/max-token-age"
# what the stack accepts for the probe's login role instead of AWS's 900 s
TOKEN_LIFETIME = 20
# the wrapper's cache of a token: below the lifetime, as the default 870 s is below 900 s
IAM_EXPIRATION = 10


def max_token_age(endpoints: dict[str, Any], user: str, seconds: int | None) -> None:
    body = json.dumps({"user": user, "seconds": seconds}).encode()
    request = urllib.request.Request(
        endpoints["aws_endpoint_url"] + MAX_TOKEN_AGE_PATH,
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def moto_has_max_token_age(endpoints: dict[str, Any]) -> bool:
    try:
        with urllib.request.urlopen(endpoints["aws_endpoint_url"] + MAX_TOKEN_AGE_PATH, timeout=10):
            return True
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


def superuser(endpoints: dict[str, Any], statement: str) -> None:
    with psycopg.connect(**superuser_connection(endpoints)) as conn:
        conn.execute(statement)


def trust_policy(provider_arn: str, issuer_host: str, namespace: str, service_account: str) -> str:
    """What the irsa role writes: this provider, this ServiceAccount, the STS audience."""
    condition = {
        f"{issuer_host}:sub": f"system:serviceaccount:{namespace}:{service_account}",
        f"{issuer_host}:aud": "sts.amazonaws.com",
    }
    statement = {
        "Effect": "Allow",
        "Principal": {"Federated": provider_arn},
        "Action": "sts:AssumeRoleWithWebIdentity",
        "Condition": {"StringEquals": condition},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


@pytest.fixture(scope="module")
def jdbc_setup(
    converged: dict[str, Any], core: k8s.CoreV1Api, kube: Any, aws: dict[str, Any], endpoints: dict[str, Any]
) -> Iterator[dict[str, Any]]:
    if not PROBE_JAR.exists():
        pytest.skip(f"{PROBE_JAR} is missing; run make jdbc-probe")
    if not moto_has_max_token_age(endpoints):
        pytest.skip("the running moto predates max-token-age; restart the stack (make down up)")
    db = converged["db"]
    region, account = endpoints["aws_region"], converged["cluster"]["arn"].split(":")[4]
    issuer_host = endpoints["sa_issuer"].removeprefix("https://")
    provider_arn = next(
        p["Arn"]
        for p in aws["iam"].list_open_id_connect_providers()["OpenIDConnectProviderList"]
        if p["Arn"].endswith(f"oidc-provider/{issuer_host}")
    )
    app_policy = k8s.CustomObjectsApi(kube).list_namespaced_custom_object(
        "vpcresources.k8s.aws", "v1beta1", APP_NAMESPACE, "securitygrouppolicies"
    )["items"]
    assert app_policy, "site.yml made no SecurityGroupPolicy for the application"

    name = unique("layered-jdbc")
    user = name.replace("-", "_")
    service_account = "metabase"
    iam, custom = aws["iam"], k8s.CustomObjectsApi(kube)
    done: list[Any] = []
    try:
        core.create_namespace({"metadata": {"name": name}})
        done.append(lambda: core.delete_namespace(name))
        core.create_namespaced_service_account(
            name, {"metadata": {"name": service_account, "labels": {"layered.dev/probe": name}}}
        )
        custom.create_namespaced_custom_object(
            "vpcresources.k8s.aws",
            "v1beta1",
            name,
            "securitygrouppolicies",
            {
                "apiVersion": "vpcresources.k8s.aws/v1beta1",
                "kind": "SecurityGroupPolicy",
                "metadata": {"name": "jdbc-probe"},
                "spec": {
                    "serviceAccountSelector": {"matchLabels": {"layered.dev/probe": name}},
                    "securityGroups": app_policy[0]["spec"]["securityGroups"],
                },
            },
        )
        ca_map = ca_configmap(core, name, (STACK_DIR / "pki" / "ca.crt").read_text())

        superuser(endpoints, f'create role "{user}" login in role rds_iam')
        done.append(lambda: superuser(endpoints, f'drop role "{user}"'))

        role_arn = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=trust_policy(provider_arn, issuer_host, name, service_account)
        )["Role"]["Arn"]
        done.append(lambda: iam.delete_role(RoleName=name))
        dbuser = f"arn:aws:rds-db:{region}:{account}:dbuser:{db['DbiResourceId']}/{user}"
        iam.put_role_policy(
            RoleName=name,
            PolicyName="connect",
            PolicyDocument=rds_connect_policy(dbuser),
        )
        done.append(lambda: iam.delete_role_policy(RoleName=name, PolicyName="connect"))

        max_token_age(endpoints, user, TOKEN_LIFETIME)
        done.append(lambda: max_token_age(endpoints, user, None))
        yield {
            "namespace": name,
            "service_account": service_account,
            "ca_map": ca_map,
            "role_arn": role_arn,
            "role_name": name,
            "user": user,
            "host": db["Endpoint"]["Address"],
            "port": db["Endpoint"]["Port"],
            "auth_log": Path(endpoints["postgres_data_dir"]).parent / "rds-iam-auth.log",
        }
    finally:
        for undo in reversed(done):
            undo()


def auth_log_lines(setup: dict[str, Any]) -> list[str]:
    """What the stack's PAM program logged about the probe's login role."""
    marker = f'user="{setup["user"]}"'
    return [line for line in setup["auth_log"].read_text().splitlines() if marker in line]


@pytest.fixture(scope="module")
def probe(jdbc_setup: dict[str, Any], kube: Any) -> dict[str, Any]:
    """One run of the probe; its JSON lines by event (``iam-connect`` by connection number)."""
    setup = jdbc_setup
    command = (
        f"exec jdbc-iam-probe --host {setup['host']} --port {setup['port']} --user {setup['user']} "
        f"--sslrootcert /etc/rds/ca.pem --iam-expiration {IAM_EXPIRATION} --token-lifetime {TOKEN_LIFETIME}"
    )
    job = create_job(
        kube,
        setup["namespace"],
        job_manifest(
            unique("jdbc"),
            service_account=setup["service_account"],
            script=command,
            ca_configmap_name=setup["ca_map"],
            role_arn=setup["role_arn"],
            image=PROBE_IMAGE,
        ),
    )
    result = wait_job(kube, setup["namespace"], job, timeout=TOKEN_LIFETIME + 150)
    for status in result["pod"].status.container_statuses or []:
        terminated = status.state.terminated if status.state else None
        if terminated is not None and terminated.reason == "ErrImagePull":
            pytest.skip(f"the running agent predates the {PROBE_IMAGE} image; restart the stack (make down up)")
    output = result["logs"]["probe"]
    assert result["phase"] == "Succeeded", output
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    events: dict[str, Any] = {}
    for line in lines:
        if line["event"] == "iam-connect":
            events.setdefault("iam-connect", {})[line["n"]] = line
        else:
            events[line["event"]] = line
    assert "error" not in events, output
    return {"events": events, "output": output, "log": auth_log_lines(setup)}


def test_wrapper_logs_in_with_web_identity_credentials_over_verified_tls(probe, jdbc_setup):
    events, user = probe["events"], jdbc_setup["user"]
    identity = events["identity"]
    assert identity["ok"] is True, probe["output"]
    assert f":assumed-role/{jdbc_setup['role_name']}/" in identity["arn"]
    first = events["iam-connect"][1]
    assert first["ok"] is True, probe["output"]
    assert (first["current_user"], first["ssl"]) == (user, True)
    assert [t["source"] for t in first["tokens"]] == ["new"]
    assert first["failed_attempts"] == 0
    assert "sslmode=verify-full" in events["start"]["url"]
    # the server's side: the token of the pod's role, checked by moto
    allowed = [line for line in probe["log"] if 'result="allowed"' in line]
    assert allowed, probe["log"]
    assert 'principal="arn:aws:sts::' in allowed[0] and f":assumed-role/{jdbc_setup['role_name']}/" in allowed[0]


def test_wrapper_reuses_its_token_within_iam_expiration(probe):
    first, second = probe["events"]["iam-connect"][1], probe["events"]["iam-connect"][2]
    assert second["ok"] is True, probe["output"]
    assert [t["source"] for t in second["tokens"]] == ["cached"]
    assert second["tokens"][0]["id"] == first["tokens"][0]["id"]


def test_connection_after_the_first_token_expired_is_made_with_a_new_token(probe, jdbc_setup):
    events = probe["events"]
    first_id = events["iam-connect"][1]["tokens"][0]["id"]
    # negative control: the first token, now older than the lifetime the server accepts, is refused
    static = events["static-token"]
    assert static["token"]["id"] == first_id
    assert static["age_seconds"] > TOKEN_LIFETIME
    assert static["ok"] is False, probe["output"]
    assert static["sqlstate"] == "28000"  # invalid_authorization_specification: how PostgreSQL fails PAM
    assert f'PAM authentication failed for user "{jdbc_setup["user"]}"' in static["message"]
    # the wrapper signed a new token for the next connection instead of trying the expired one first
    third = events["iam-connect"][3]
    assert third["ok"] is True, probe["output"]
    assert third["current_user"] == jdbc_setup["user"]
    assert [t["source"] for t in third["tokens"]] == ["new"], probe["output"]
    assert third["tokens"][0]["id"] != first_id
    assert third["failed_attempts"] == 0, probe["output"]
    # and the server refused exactly one login of the role, the static token's, as expired
    denied = [line for line in probe["log"] if 'result="denied"' in line]
    assert len(denied) == 1, denied
    assert 'reason="expired: ' in denied[0]
