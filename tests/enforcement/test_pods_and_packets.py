"""Pods run, and their packets meet the security groups, network ACLs and routes read from moto."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import pytest
from conftest import APP_NAMESPACE, APP_SA, DB_USER, STACK_DIR, agent_state, unique, wait_agent_passes
from kubernetes import client as k8s
from probes import ca_configmap, classify, create_job, job_manifest, job_pod, psql_script, wait_job

TRUNK = "vpc.amazonaws.com/has-trunk-attached"
POD_ENI = "vpc.amazonaws.com/pod-eni"


def eks_private_cidrs(converged: dict[str, Any]) -> list[ipaddress.IPv4Network]:
    ids = set(converged["cluster"]["resourcesVpcConfig"]["subnetIds"])
    return [ipaddress.IPv4Network(s["CidrBlock"]) for s in converged["subnets"] if s["SubnetId"] in ids]


def in_any(address: str, cidrs: list[ipaddress.IPv4Network]) -> bool:
    return any(ipaddress.IPv4Address(address) in c for c in cidrs)


@pytest.fixture(scope="module")
def app(converged: dict[str, Any], core: k8s.CoreV1Api, kube: Any) -> dict[str, Any]:
    sa = core.read_namespaced_service_account(APP_SA, APP_NAMESPACE)
    policies = k8s.CustomObjectsApi(kube).list_namespaced_custom_object(
        "vpcresources.k8s.aws", "v1beta1", APP_NAMESPACE, "securitygrouppolicies"
    )["items"]
    assert policies, "site.yml made no SecurityGroupPolicy for the application"
    ca = (STACK_DIR / "pki" / "ca.crt").read_text()
    db = converged["db"]
    return {
        "role_arn": sa.metadata.annotations["eks.amazonaws.com/role-arn"],
        "pod_groups": policies[0]["spec"]["securityGroups"]["groupIds"],
        "ca": ca,
        "host": db["Endpoint"]["Address"],
        "port": db["Endpoint"]["Port"],
        "rds_groups": [g["VpcSecurityGroupId"] for g in db["VpcSecurityGroups"]],
        "ca_map": ca_configmap(core, APP_NAMESPACE, ca),
    }


def test_node_group_nodes_are_ready_in_the_eks_private_subnets(converged: dict[str, Any], core: k8s.CoreV1Api):
    nodes = [n for n in core.list_node().items if "layered.dev/node" in (n.metadata.annotations or {})]
    assert len(nodes) == 2  # the eks role's desired size
    cidrs = eks_private_cidrs(converged)
    for node in nodes:
        ready = {c.type: c.status for c in node.status.conditions or []}
        assert ready.get("Ready") == "True", node.metadata.name
        internal = next(a.address for a in node.status.addresses if a.type == "InternalIP")
        assert in_any(internal, cidrs), (internal, cidrs)
        labels = node.metadata.labels
        assert labels["node.kubernetes.io/instance-type"] == "m6i.large"
        assert labels["eks.amazonaws.com/nodegroup"] == "eks-rds-local-private"
        assert labels["type"] == "private"
        # the vpc-cni add-on of site.yml runs with ENABLE_POD_ENI=true
        assert labels[TRUNK] == "true"
        assert node.status.capacity[POD_ENI] == "9"


def test_deployment_pods_run_with_addresses_of_the_eks_private_subnets(
    converged: dict[str, Any], kube: Any, core: k8s.CoreV1Api, probe_namespace: str
):
    apps = k8s.AppsV1Api(kube)
    name = unique("web")
    labels = {"app": name}
    apps.create_namespaced_deployment(
        probe_namespace,
        {
            "metadata": {"name": name},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "web", "image": "registry.k8s.io/pause:3.10"}]},
                },
            },
        },
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        dep = apps.read_namespaced_deployment_status(name, probe_namespace)
        if (dep.status.ready_replicas or 0) == 2:
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"Deployment not ready: {dep.status}")
    pods = core.list_namespaced_pod(probe_namespace, label_selector=f"app={name}").items
    cidrs = eks_private_cidrs(converged)
    assert len(pods) == 2
    for pod in pods:
        assert pod.status.phase == "Running"
        assert in_any(pod.status.pod_ip, cidrs), pod.status.pod_ip
    apps.delete_namespaced_deployment(name, probe_namespace)


def test_job_pods_run_their_program_and_report_its_exit_code(kube: Any, probe_namespace: str, app: dict[str, Any]):
    ca_configmap(k8s.CoreV1Api(kube), probe_namespace, app["ca"])
    ok = create_job(
        kube,
        probe_namespace,
        job_manifest(
            unique("ok"),
            service_account="default",
            script="echo hello from $HOSTNAME",
            ca_configmap_name="layered-probe-ca",
        ),
    )
    bad = create_job(
        kube,
        probe_namespace,
        job_manifest(
            unique("bad"),
            service_account="default",
            script="echo failing; exit 3",
            ca_configmap_name="layered-probe-ca",
        ),
    )
    good, failed = wait_job(kube, probe_namespace, ok), wait_job(kube, probe_namespace, bad)
    assert good["phase"] == "Succeeded" and good["codes"]["probe"] == 0
    assert good["logs"]["probe"].startswith("hello from ")
    assert failed["phase"] == "Failed" and failed["codes"]["probe"] == 3
    assert "failing" in failed["logs"]["probe"]
    batch = k8s.BatchV1Api(kube)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conditions = {
            n: {c.type for c in (batch.read_namespaced_job_status(n, probe_namespace).status.conditions or [])}
            for n in (ok, bad)
        }
        if "Complete" in conditions[ok] and "Failed" in conditions[bad]:
            break
        time.sleep(0.5)
    assert "Complete" in conditions[ok] and "Failed" in conditions[bad], conditions


def app_probe(kube: Any, app: dict[str, Any], *, service_account: str = APP_SA, iam: bool = False) -> str:
    token_script = None
    script = psql_script(app["host"], app["port"], DB_USER)
    if iam:
        # the credentials come from STS (AssumeRoleWithWebIdentity) over the pod's network;
        # one attempt, and a bound on the whole call instead of the SDK's 60 s connect timeout
        token_script = (
            f"AWS_MAX_ATTEMPTS=1 timeout 20 aws rds generate-db-auth-token --hostname {app['host']} "
            f"--port {app['port']} --username {DB_USER} > /scratch/token"
        )
        script = psql_script(app["host"], app["port"], DB_USER, token_file="/scratch/token")
    return create_job(
        kube,
        APP_NAMESPACE,
        job_manifest(
            unique("probe"),
            service_account=service_account,
            script=script,
            ca_configmap_name=app["ca_map"],
            role_arn=app["role_arn"] if iam else None,
            token_script=token_script,
        ),
    )


def test_selected_pod_gets_a_branch_interface_and_logs_in_with_iam(
    kube: Any, core: k8s.CoreV1Api, aws: dict[str, Any], app: dict[str, Any], database_user: str
):
    result = wait_job(kube, APP_NAMESPACE, app_probe(kube, app, iam=True))
    pod = result["pod"]
    assert POD_ENI in (pod.metadata.annotations or {}), "the pod got no branch interface"
    eni_id = __import__("json").loads(pod.metadata.annotations[POD_ENI])[0]["eniId"]
    eni = aws["ec2"].describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
    assert eni["Description"] == "aws-k8s-branch-eni"
    assert sorted(g["GroupId"] for g in eni["Groups"]) == sorted(app["pod_groups"])
    assert eni["PrivateIpAddress"] == pod.status.pod_ip
    assert result["phase"] == "Succeeded", result["logs"]
    assert result["logs"]["probe"].strip() == DB_USER


def test_pod_without_policy_times_out(kube: Any, core: k8s.CoreV1Api, app: dict[str, Any]):
    name = unique("unselected")
    core.create_namespaced_service_account(APP_NAMESPACE, {"metadata": {"name": name}})
    try:
        result = wait_job(kube, APP_NAMESPACE, app_probe(kube, app, service_account=name))
    finally:
        core.delete_namespaced_service_account(name, APP_NAMESPACE)
    assert POD_ENI not in (result["pod"].metadata.annotations or {})
    assert result["phase"] == "Failed"
    assert classify(result["logs"]["probe"]) == "timeout", result["logs"]


def test_pod_created_before_its_policy_keeps_the_node_groups(
    kube: Any, core: k8s.CoreV1Api, app: dict[str, Any], probe_namespace: str
):
    custom = k8s.CustomObjectsApi(kube)
    sa = unique("late")
    core.create_namespaced_service_account(probe_namespace, {"metadata": {"name": sa, "labels": {"probe": sa}}})
    ca_configmap(core, probe_namespace, app["ca"])
    script = "sleep 3; " + psql_script(app["host"], app["port"], DB_USER)
    early = create_job(
        kube,
        probe_namespace,
        job_manifest(unique("early"), service_account=sa, script=script, ca_configmap_name="layered-probe-ca"),
    )
    job_pod(core, probe_namespace, early)
    policy = {
        "apiVersion": "vpcresources.k8s.aws/v1beta1",
        "kind": "SecurityGroupPolicy",
        "metadata": {"name": sa},
        "spec": {
            "serviceAccountSelector": {"matchLabels": {"probe": sa}},
            "securityGroups": {"groupIds": app["pod_groups"]},
        },
    }
    custom.create_namespaced_custom_object(
        "vpcresources.k8s.aws", "v1beta1", probe_namespace, "securitygrouppolicies", policy
    )
    late = create_job(
        kube,
        probe_namespace,
        job_manifest(unique("after"), service_account=sa, script=script, ca_configmap_name="layered-probe-ca"),
    )
    before, after = wait_job(kube, probe_namespace, early), wait_job(kube, probe_namespace, late)
    assert POD_ENI not in (before["pod"].metadata.annotations or {})
    assert classify(before["logs"]["probe"]) == "timeout", before["logs"]
    assert POD_ENI in (after["pod"].metadata.annotations or {})
    # it reaches the server, which refuses the made-up password
    assert classify(after["logs"]["probe"]) == "auth-failed", after["logs"]


def test_revoked_database_rule_makes_the_next_connection_time_out(kube: Any, aws: dict[str, Any], app: dict[str, Any]):
    ec2 = aws["ec2"]
    rds_group = app["rds_groups"][0]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [rds_group]}])[
        "SecurityGroupRules"
    ]
    rule = next(
        r
        for r in rules
        if not r["IsEgress"] and (r.get("ReferencedGroupInfo") or {}).get("GroupId") in app["pod_groups"]
    )
    permission = {
        "IpProtocol": rule["IpProtocol"],
        "FromPort": rule["FromPort"],
        "ToPort": rule["ToPort"],
        "UserIdGroupPairs": [
            {"GroupId": rule["ReferencedGroupInfo"]["GroupId"], "Description": rule.get("Description", "")}
        ],
    }
    ec2.revoke_security_group_ingress(GroupId=rds_group, SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
    try:
        wait_agent_passes(2)
        revoked = wait_job(kube, APP_NAMESPACE, app_probe(kube, app))
    finally:
        ec2.authorize_security_group_ingress(GroupId=rds_group, IpPermissions=[permission])
        wait_agent_passes(2)
    assert classify(revoked["logs"]["probe"]) == "timeout", revoked["logs"]
    restored = wait_job(kube, APP_NAMESPACE, app_probe(kube, app))
    assert classify(restored["logs"]["probe"]) == "auth-failed", restored["logs"]


def test_removed_nacl_entries_make_the_connection_time_out(
    kube: Any, aws: dict[str, Any], app: dict[str, Any], converged: dict[str, Any]
):
    """Without an inbound entry of the database subnets' ACL admitting tcp/5432, the SYN is dropped."""
    ec2 = aws["ec2"]
    db_subnets = [s["SubnetIdentifier"] for s in converged["db"]["DBSubnetGroup"]["Subnets"]]
    acl = ec2.describe_network_acls(Filters=[{"Name": "association.subnet-id", "Values": db_subnets[:1]}])[
        "NetworkAcls"
    ][0]
    # every allow entry that admits the database port (the ephemeral range admits it too)
    entries = [
        e
        for e in acl["Entries"]
        if not e["Egress"]
        and e["RuleAction"] == "allow"
        and e["Protocol"] in ("6", "-1")
        and e["RuleNumber"] < 32767
        and ("PortRange" not in e or e["PortRange"]["From"] <= app["port"] <= e["PortRange"]["To"])
    ]
    assert entries, acl["Entries"]
    for entry in entries:
        ec2.delete_network_acl_entry(NetworkAclId=acl["NetworkAclId"], RuleNumber=entry["RuleNumber"], Egress=False)
    try:
        wait_agent_passes(2)
        result = wait_job(kube, APP_NAMESPACE, app_probe(kube, app))
    finally:
        for entry in entries:
            extra = {"PortRange": entry["PortRange"]} if "PortRange" in entry else {}
            ec2.create_network_acl_entry(
                NetworkAclId=acl["NetworkAclId"],
                RuleNumber=entry["RuleNumber"],
                Egress=False,
                Protocol=entry["Protocol"],
                RuleAction=entry["RuleAction"],
                CidrBlock=entry["CidrBlock"],
                **extra,
            )
        wait_agent_passes(2)
    assert classify(result["logs"]["probe"]) == "timeout", result["logs"]
    restored = wait_job(kube, APP_NAMESPACE, app_probe(kube, app))
    assert classify(restored["logs"]["probe"]) == "auth-failed", restored["logs"]


@pytest.fixture(scope="module")
def database_user(endpoints: dict[str, Any], converged: dict[str, Any]) -> str:
    """The application's IAM-authenticated user (the db_user role's job, made here by hand)."""
    import psycopg

    password = (STACK_DIR / "postgres.password").read_text().strip()
    with psycopg.connect(
        host=endpoints["postgres_host"],
        port=endpoints["postgres_port"],
        user=endpoints["postgres_superuser"],
        password=password,
        dbname="postgres",
        sslmode="verify-ca",
        sslrootcert=endpoints["postgres_ca_file"],
        autocommit=True,
    ) as conn:
        exists = conn.execute("select 1 from pg_roles where rolname = %s", (DB_USER,)).fetchone()
        if not exists:
            conn.execute(f'create role "{DB_USER}" login')
        conn.execute(f'grant rds_iam to "{DB_USER}"')
    return DB_USER


def test_agent_state_lists_the_fabric(converged: dict[str, Any]):
    state = wait_agent_passes(1)
    assert state["fabric"] is True
    assert any(e.startswith("db:") for e in state["endpoints"])
    assert any(e.startswith("dns:") for e in state["endpoints"])


def covers(rule: dict[str, Any], protocol: str, port: int) -> bool:
    if rule["IpProtocol"] == "-1":
        return True
    return rule["IpProtocol"] == protocol and rule["FromPort"] <= port <= rule["ToPort"]


def permission(rule: dict[str, Any]) -> dict[str, Any]:
    """The IpPermissions entry that re-creates a rule read by DescribeSecurityGroupRules."""
    entry: dict[str, Any] = {"IpProtocol": rule["IpProtocol"]}
    if rule["IpProtocol"] != "-1":
        entry.update(FromPort=rule["FromPort"], ToPort=rule["ToPort"])
    extra = {"Description": rule["Description"]} if rule.get("Description") else {}
    if rule.get("ReferencedGroupInfo"):
        entry["UserIdGroupPairs"] = [{"GroupId": rule["ReferencedGroupInfo"]["GroupId"], **extra}]
    else:
        entry["IpRanges"] = [{"CidrIp": rule["CidrIpv4"], **extra}]
    return entry


class Revoked:
    """Revoke rules for the duration of a ``with`` block; put them back and wait for the agent after."""

    def __init__(self, ec2: Any, rules: list[dict[str, Any]]) -> None:
        self.ec2, self.rules = ec2, rules

    def __enter__(self) -> None:
        for rule in self.rules:
            revoke = (
                self.ec2.revoke_security_group_egress if rule["IsEgress"] else self.ec2.revoke_security_group_ingress
            )
            revoke(GroupId=rule["GroupId"], SecurityGroupRuleIds=[rule["SecurityGroupRuleId"]])
        wait_agent_passes(2)

    def __exit__(self, *exc: object) -> None:
        for rule in self.rules:
            grant = (
                self.ec2.authorize_security_group_egress
                if rule["IsEgress"]
                else self.ec2.authorize_security_group_ingress
            )
            grant(GroupId=rule["GroupId"], IpPermissions=[permission(rule)])
        wait_agent_passes(2)


def group_rules(ec2: Any, groups: list[str]) -> list[dict[str, Any]]:
    return ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": groups}])["SecurityGroupRules"]


def test_dns_goes_through_the_cluster_security_group(
    kube: Any, aws: dict[str, Any], app: dict[str, Any], converged: dict[str, Any]
):
    """The resolver sits behind the cluster security group: without rules admitting the pod on 53, names fail.

    The application's policy also gives its pods the cluster security group, whose members admit each other
    on every port, so that rule goes too.
    """
    ec2 = aws["ec2"]
    cluster_sg = converged["cluster"]["resourcesVpcConfig"]["clusterSecurityGroupId"]
    rules = [
        r
        for r in group_rules(ec2, [cluster_sg])
        if not r["IsEgress"]
        and (covers(r, "udp", 53) or covers(r, "tcp", 53))
        and (r.get("ReferencedGroupInfo") or {}).get("GroupId") in app["pod_groups"]
    ]
    assert {r["IpProtocol"] for r in rules} >= {"tcp", "udp"}, rules
    with Revoked(ec2, rules):
        result = wait_job(kube, APP_NAMESPACE, app_probe(kube, app))
    assert classify(result["logs"]["probe"]) == "dns-failed", result["logs"]


def test_pod_security_groups_without_https_egress_get_no_credentials(
    kube: Any, aws: dict[str, Any], app: dict[str, Any], database_user: str
):
    """STS is reached through the NAT gateway on tcp/443: with no group of the pod allowing it, IRSA fails."""
    ec2 = aws["ec2"]
    rules = [
        r
        for r in group_rules(ec2, app["pod_groups"])
        if r["IsEgress"] and covers(r, "tcp", 443) and r.get("CidrIpv4") == "0.0.0.0/0"
    ]
    assert rules, "no group of the pod allows tcp/443 out"
    with Revoked(ec2, rules):
        result = wait_job(kube, APP_NAMESPACE, app_probe(kube, app, iam=True))
    assert result["phase"] == "Failed"
    # the token step never got credentials (killed by its time bound or the SDK's connect timeout)
    assert result["codes"]["token"] != 0, result
    assert result["codes"].get("probe") is None, result
    restored = wait_job(kube, APP_NAMESPACE, app_probe(kube, app, iam=True))
    assert restored["phase"] == "Succeeded", restored["logs"]


def test_sts_interface_endpoint_carries_irsa_without_internet_egress(
    kube: Any, aws: dict[str, Any], app: dict[str, Any], converged: dict[str, Any], database_user: str
):
    """With an STS interface endpoint (private DNS), pods need tcp/443 only to the endpoint's group."""
    ec2 = aws["ec2"]
    vpc_id = converged["vpc_id"]
    subnets = converged["cluster"]["resourcesVpcConfig"]["subnetIds"]
    pod_sg = app["pod_groups"][0]
    endpoint_sg = ec2.create_security_group(
        GroupName=unique("sts-endpoint"), Description="STS endpoint of an enforcement test", VpcId=vpc_id
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=endpoint_sg,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": pod_sg}]}
        ],
    )
    to_endpoint = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": endpoint_sg}]}
    internet = [
        r
        for r in group_rules(ec2, app["pod_groups"])
        if r["IsEgress"] and covers(r, "tcp", 443) and r.get("CidrIpv4") == "0.0.0.0/0"
    ]
    endpoint = ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"com.amazonaws.{ec2.meta.region_name}.sts",
        VpcEndpointType="Interface",
        SubnetIds=subnets,
        SecurityGroupIds=[endpoint_sg],
        PrivateDnsEnabled=True,
    )["VpcEndpoint"]["VpcEndpointId"]
    try:
        ec2.authorize_security_group_egress(GroupId=pod_sg, IpPermissions=[to_endpoint])
        with Revoked(ec2, internet):
            through_endpoint = wait_job(kube, APP_NAMESPACE, app_probe(kube, app, iam=True))
            ec2.revoke_security_group_ingress(
                GroupId=endpoint_sg,
                IpPermissions=[
                    {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "UserIdGroupPairs": [{"GroupId": pod_sg}]}
                ],
            )
            wait_agent_passes(2)
            endpoint_closed = wait_job(kube, APP_NAMESPACE, app_probe(kube, app, iam=True))
    finally:
        ec2.revoke_security_group_egress(GroupId=pod_sg, IpPermissions=[to_endpoint])
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint])
        ec2.delete_security_group(GroupId=endpoint_sg)
        wait_agent_passes(2)
    state = agent_state()
    assert not any(e.startswith("aws:") and not e.startswith("aws:203.") for e in state["endpoints"]), state
    assert through_endpoint["phase"] == "Succeeded", through_endpoint["logs"]
    assert through_endpoint["logs"]["probe"].strip() == DB_USER
    assert endpoint_closed["phase"] == "Failed" and endpoint_closed["codes"]["token"] != 0, endpoint_closed


def test_nodes_are_trunk_attached_only_with_pod_eni_enabled(kube: Any, core: k8s.CoreV1Api, converged: dict[str, Any]):
    """An aws-node DaemonSet with ENABLE_POD_ENI=false (what runs wins over the add-on) untrunks the nodes."""
    apps = k8s.AppsV1Api(kube)
    labels = {"k8s-app": "aws-node"}
    daemonset = {
        "metadata": {"name": "aws-node", "namespace": "kube-system"},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": "aws-node",
                            "image": "602401143452.dkr.ecr.eu-west-1.amazonaws.com/amazon-k8s-cni:v1.19.0",
                            "env": [{"name": "ENABLE_POD_ENI", "value": "false"}],
                        }
                    ]
                },
            },
        },
    }

    def trunk_labels() -> set[str]:
        return {
            (n.metadata.labels or {}).get(TRUNK, "")
            for n in core.list_node().items
            if "layered.dev/node" in (n.metadata.annotations or {})
        }

    apps.create_namespaced_daemon_set("kube-system", daemonset)
    try:
        wait_agent_passes(2)
        untrunked = trunk_labels()
    finally:
        apps.delete_namespaced_daemon_set("aws-node", "kube-system")
        wait_agent_passes(2)
    assert untrunked == {"false"}
    assert trunk_labels() == {"true"}
