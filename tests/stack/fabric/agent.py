"""The local stack's agent: what EKS, the VPC and RDS do that moto and a bare control plane don't.

    python tests/stack/fabric/agent.py --stack-dir .stack --moto-url http://127.0.0.1:4566 ...

Every second after a change (at most every ``--max-interval`` seconds while nothing changes) it reads
moto and the kube-apiserver and makes the world agree:

* nodes: every EKS managed node group in moto gets fake nodes in the local cluster (kwok keeps
  them Ready), each with a network interface in moto (the cluster security group) and an
  address in its EKS private subnet; nodes are trunk-attached only when the VPC CNI has
  ``ENABLE_POD_ENI=true``;
* security groups for pods: an admission webhook asks a branch network interface for each pod a
  ``SecurityGroupPolicy`` selects when the pod is created; the pod then gets a branch interface
  in moto with exactly the policy's groups and the ``vpc.amazonaws.com/pod-eni`` annotation;
* the VPC on packets: every endpoint that talks (Job pods, the database, the resolver, interface
  endpoints, the public AWS endpoint) lives in a network namespace with its address; the router
  namespace enforces the security groups, network ACLs and routes read from moto (``nft.py``);
* Job pods run for real (``kubelet.py``), in their namespace, with the resolver and the stack's
  CA as their image's trust store;
* the database: the local PostgreSQL answers on the RDS instance's address and port, and its
  master user is the one RDS keeps in Secrets Manager (``rds_sync.py``).

After each pass it writes ``<stack-dir>/fabric/state.json`` (generation, time, what was applied),
so tests can wait until a change in moto has reached the kernel. SIGTERM removes every namespace
it made, and with them the veth pairs and the nftables table.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import http.server
import json
import logging
import shutil
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import pki  # noqa: E402

from fabric import cluster as plan  # noqa: E402
from fabric import listeners, netns  # noqa: E402

log = logging.getLogger("fabric.agent")

INTERNET_ADDRESS = "203.0.113.10"
INTERNET_CIDRS = ("203.0.113.0/24",)
WEBHOOK_NAME = "layered-vpc-resource-webhook"
NODE_ENI_TAG = "layered:node"
DB_ENI_TAG = "layered:rds"
POD_TAG = "layered:pod-uid"
BRANCH_DESCRIPTION = "aws-k8s-branch-eni"


class Agent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.region = args.region
        self.stack_dir = Path(args.stack_dir)
        self.state_dir = self.stack_dir / "fabric"
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.pki_dir = self.stack_dir / "pki"
        self.prefix = args.prefix
        session = boto3.session.Session(
            aws_access_key_id="testing", aws_secret_access_key="testing", region_name=self.region
        )
        cfg = BotoConfig(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30)
        self.ec2 = session.client("ec2", endpoint_url=args.moto_url, config=cfg)
        self.eks = session.client("eks", endpoint_url=args.moto_url, config=cfg)
        self.rds = session.client("rds", endpoint_url=args.moto_url, config=cfg)
        api_client = k8s_config.new_client_from_config(config_file=args.kubeconfig)
        self.core = k8s.CoreV1Api(api_client)
        self.apps = k8s.AppsV1Api(api_client)
        self.custom = k8s.CustomObjectsApi(api_client)
        self.admission = k8s.AdmissionregistrationV1Api(api_client)
        self.api_client = api_client
        self.fabric = args.fabric and netns_usable()
        self.generation = 0
        self.stopping = threading.Event()
        self.listeners: dict[str, Any] = {}
        self.runners: dict[str, threading.Thread] = {}
        self.ran: dict[str, tuple[str, str]] = {}  # uid -> (namespace, name) of pods run here
        self.runner = None
        self.nft_text = ""
        self.last_rds_sync: tuple[Any, ...] = ()
        self.lock = threading.Lock()
        self.dns: dict[str, Any] = {"databases": {}, "endpoints": {}}
        self.aws_tls = self._aws_tls_context()
        self.trust_store = self._trust_store()

    # ------------------------------------------------------------ setup
    def _aws_tls_context(self) -> ssl.SSLContext:
        ca = pki.ensure_ca(self.pki_dir)
        names = ("amazonaws.com", "*.amazonaws.com", f"*.{self.region}.amazonaws.com")
        pki.ensure_leaf(self.pki_dir, "aws-endpoint", ca, "*.amazonaws.com", server_names=names)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.pki_dir / "aws-endpoint.crt", self.pki_dir / "aws-endpoint.key")
        return context

    def _trust_store(self) -> Path:
        """The stack's CA where a pod's volumes cannot hide it (they may be mounted over the checkout)."""
        digest = hashlib.sha256(str(self.stack_dir.resolve()).encode()).hexdigest()[:12]
        directory = Path("/run/layered-eks-rds") / digest if self.fabric else self.state_dir
        directory.mkdir(mode=0o755, parents=True, exist_ok=True)
        bundle = directory / "ca-bundle.pem"
        bundle.write_bytes((self.pki_dir / "ca.crt").read_bytes())
        bundle.chmod(0o644)
        return bundle

    def start_webhook(self) -> None:
        ca = pki.ensure_ca(self.pki_dir)
        pki.ensure_leaf(self.pki_dir, "vpc-webhook", ca, "vpc-resource-webhook", server_ips=("127.0.0.1",))
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                review = json.loads(self.rfile.read(length) or b"{}")
                body = json.dumps(agent.admit(review)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, fmt: str, *a: Any) -> None:
                log.debug("webhook: " + fmt, *a)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.args.webhook_port), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.pki_dir / "vpc-webhook.crt", self.pki_dir / "vpc-webhook.key")
        server.socket = context.wrap_socket(server.socket, server_side=True)
        threading.Thread(target=server.serve_forever, name="webhook", daemon=True).start()
        self.register_webhook()

    def register_webhook(self) -> None:
        ca_bundle = base64.b64encode((self.pki_dir / "ca.crt").read_bytes()).decode()
        body = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK_NAME},
            "webhooks": [
                {
                    "name": "mpod.vpc.k8s.aws",
                    "admissionReviewVersions": ["v1"],
                    "sideEffects": "None",
                    "failurePolicy": "Fail",
                    "timeoutSeconds": 10,
                    "clientConfig": {
                        "url": f"https://127.0.0.1:{self.args.webhook_port}/mutate-v1-pod",
                        "caBundle": ca_bundle,
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                            "scope": "Namespaced",
                        }
                    ],
                    "namespaceSelector": {
                        "matchExpressions": [
                            {"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": ["kube-system"]}
                        ]
                    },
                }
            ],
        }
        try:
            self.admission.create_mutating_webhook_configuration(body)
        except ApiException as exc:
            if exc.status != 409:
                raise
            self.admission.replace_mutating_webhook_configuration(
                WEBHOOK_NAME,
                {**body, "metadata": {**body["metadata"], "resourceVersion": self._webhook_version()}},
            )

    def _webhook_version(self) -> str:
        return self.admission.read_mutating_webhook_configuration(WEBHOOK_NAME).metadata.resource_version

    # ------------------------------------------------------------ admission
    def admit(self, review: dict[str, Any]) -> dict[str, Any]:
        request = review.get("request") or {}
        response: dict[str, Any] = {"uid": request.get("uid"), "allowed": True}
        pod = request.get("object") or {}
        try:
            patch = self.branch_patch(pod, request.get("namespace") or "")
        except ApiException as exc:
            log.warning("webhook: cannot read policies: %s", exc.reason)
            patch = []
        if patch:
            response["patchType"] = "JSONPatch"
            response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
        return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}

    def branch_patch(self, pod: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
        """The resource request the VPC resource controller's webhook adds to a selected pod."""
        spec = pod.get("spec") or {}
        if spec.get("hostNetwork") or plan.wants_branch_eni(pod):
            return []
        groups = self.policy_groups(namespace, pod)
        if not groups:
            return []
        log.info("admission: %s/%s selected for groups %s", namespace, pod["metadata"].get("name") or "", groups)
        return plan.pod_eni_patch(pod)

    def policy_groups(self, namespace: str, pod: dict[str, Any]) -> list[str]:
        try:
            policies = self.custom.list_namespaced_custom_object(
                "vpcresources.k8s.aws", "v1beta1", namespace, "securitygrouppolicies"
            )["items"]
        except ApiException as exc:
            if exc.status == 404:
                return []
            raise
        if not policies:
            return []
        sa_name = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        try:
            sa_labels = self.core.read_namespaced_service_account(sa_name, namespace).metadata.labels or {}
        except ApiException:
            sa_labels = {}
        pod_labels = (pod.get("metadata") or {}).get("labels") or {}
        return plan.selected_groups(policies, pod_labels, sa_labels)

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        self.start_webhook()
        if self.fabric:
            try:
                from kubelet import PodRunner
            except ImportError as exc:
                log.warning("Job pods will not run: %s", exc)
            else:
                self.runner = PodRunner(self.api_client, self.state_dir / "kubelet")
        interval, last = self.args.interval, None
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                summary = self.reconcile()
                self.generation += 1
                self.write_state(summary)
                # a quiet world is polled less often (up to --max-interval); any change resets it
                quiet = summary == last and not self.runners
                interval = min(interval * 2, self.args.max_interval) if quiet else self.args.interval
                last = summary
            except (ClientError, BotoCoreError, ApiException, OSError, netns.NetnsError) as exc:
                log.warning("pass failed: %s", exc)
            except Exception:  # the agent outlives a bug in one pass; the log has the traceback
                log.exception("pass failed")
            self.stopping.wait(max(0.0, interval - (time.monotonic() - started)))

    def write_state(self, summary: dict[str, Any]) -> None:
        state = {"generation": self.generation, "time": time.time(), "fabric": self.fabric, **summary}
        tmp = self.state_dir / "state.json.tmp"
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True))
        tmp.replace(self.state_dir / "state.json")

    def reconcile(self) -> dict[str, Any]:
        clusters = self.read_clusters()
        vpc_id = next((c["vpc_id"] for c in clusters if c["nodegroups"]), None)
        if vpc_id is None:
            vpc_id = next((c["vpc_id"] for c in clusters), None)
        nodes = self.sync_nodes(clusters)
        pods = self.core.list_pod_for_all_namespaces().items
        self.sync_branch_enis(pods, nodes)
        seen = ",".join(sorted(f"{p.metadata.uid}/{p.metadata.resource_version}" for p in pods))
        summary: dict[str, Any] = {
            "vpc_id": vpc_id,
            "nodes": sorted(nodes),
            "pods_fingerprint": hashlib.sha256(seen.encode()).hexdigest()[:16],
        }
        databases = self.read_databases(vpc_id)
        summary["databases"] = {d["address"]: d["ip"] for d in databases}
        if self.fabric:
            summary.update(self.sync_fabric(vpc_id, nodes, databases, pods))
        self.sync_rds_users(databases)
        return summary

    # ------------------------------------------------------------ clusters and nodes
    def read_clusters(self) -> list[dict[str, Any]]:
        out = []
        for name in self.eks.list_clusters()["clusters"]:
            cluster = self.eks.describe_cluster(name=name)["cluster"]
            vpc = cluster.get("resourcesVpcConfig") or {}
            groups = []
            for ng in self.eks.list_nodegroups(clusterName=name)["nodegroups"]:
                groups.append(self.eks.describe_nodegroup(clusterName=name, nodegroupName=ng)["nodegroup"])
            addon_config = None
            with contextlib.suppress(ClientError):
                addon = self.eks.describe_addon(clusterName=name, addonName="vpc-cni")["addon"]
                addon_config = addon.get("configurationValues")
            out.append(
                {
                    "name": name,
                    "created": cluster.get("createdAt"),
                    "vpc_id": vpc.get("vpcId"),
                    "cluster_sg": vpc.get("clusterSecurityGroupId"),
                    "nodegroups": groups,
                    "vpc_cni": addon_config,
                }
            )
        out.sort(key=lambda c: str(c["created"]), reverse=True)
        return out

    def aws_node(self) -> dict[str, Any] | None:
        try:
            ds = self.apps.read_namespaced_daemon_set("aws-node", "kube-system")
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise
        return self.api_client.sanitize_for_serialization(ds)

    def instance_type(self, nodegroup: dict[str, Any]) -> str:
        """The launch template's instance type when it names one (EKS then has no instanceTypes), else the group's."""
        template = nodegroup.get("launchTemplate") or {}
        if template.get("id"):
            with contextlib.suppress(ClientError):
                versions = self.ec2.describe_launch_template_versions(
                    LaunchTemplateId=template["id"], Versions=[str(template.get("version") or "$Latest")]
                )["LaunchTemplateVersions"]
                if versions and versions[0]["LaunchTemplateData"].get("InstanceType"):
                    return versions[0]["LaunchTemplateData"]["InstanceType"]
        if nodegroup.get("instanceTypes"):
            return nodegroup["instanceTypes"][0]
        return "m5.large"

    def node_enis(self) -> dict[str, dict[str, Any]]:
        enis = self.ec2.describe_network_interfaces(Filters=[{"Name": "tag-key", "Values": [NODE_ENI_TAG]}])
        out = {}
        for eni in enis["NetworkInterfaces"]:
            tags = {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}
            out[tags[NODE_ENI_TAG]] = eni
        return out

    def sync_nodes(self, clusters: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Create, update and delete the fake nodes; return them by name with their interface."""
        trunk_ds = self.aws_node()
        enis = self.node_enis()
        wanted: dict[str, dict[str, Any]] = {}
        for c in clusters:
            trunk = plan.pod_eni_enabled(c["vpc_cni"], trunk_ds)
            for ng in c["nodegroups"]:
                if ng.get("status") not in (None, "ACTIVE", "UPDATING", "CREATING"):
                    continue
                subnets = self.ec2.describe_subnets(SubnetIds=ng["subnets"])["Subnets"] if ng["subnets"] else []
                subnets.sort(key=lambda s: ng["subnets"].index(s["SubnetId"]))
                count = min(int((ng.get("scalingConfig") or {}).get("desiredSize") or 1), plan.MAX_NODES_PER_GROUP)
                itype = self.instance_type(ng)
                for index in range(count if subnets else 0):
                    subnet = subnets[index % len(subnets)]
                    key = f"{c['name']}/{ng['nodegroupName']}/{index}"
                    eni = enis.pop(key, None) or self.create_node_eni(key, subnet, c["cluster_sg"])
                    manifest = plan.node_manifest(
                        cluster=c["name"],
                        nodegroup=ng,
                        index=index,
                        address=eni["PrivateIpAddress"],
                        eni_id=eni["NetworkInterfaceId"],
                        subnet=subnet,
                        instance_type=itype,
                        region=self.region,
                        trunk=trunk,
                    )
                    wanted[manifest["metadata"]["name"]] = {"manifest": manifest, "eni": eni, "subnet": subnet}
        for key, eni in enis.items():
            log.info("deleting the interface of node %s", key)
            with contextlib.suppress(ClientError):
                self.ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
        existing = {
            n.metadata.name: n
            for n in self.core.list_node().items
            if plan.NODE_ANNOTATION in (n.metadata.annotations or {})
        }
        for name in existing:
            if name not in wanted:
                log.info("deleting node %s", name)
                with contextlib.suppress(ApiException):
                    self.core.delete_node(name)
        for name, item in wanted.items():
            self.apply_node(item["manifest"], existing.get(name))
        return wanted

    def create_node_eni(self, key: str, subnet: dict[str, Any], cluster_sg: str | None) -> dict[str, Any]:
        log.info("creating the interface of node %s in %s", key, subnet["SubnetId"])
        return self.ec2.create_network_interface(
            SubnetId=subnet["SubnetId"],
            Groups=[cluster_sg] if cluster_sg else [],
            Description=f"Local EKS node {key}",
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": NODE_ENI_TAG, "Value": key}]}],
        )["NetworkInterface"]

    def apply_node(self, manifest: dict[str, Any], current: Any) -> None:
        name = manifest["metadata"]["name"]
        status = manifest.pop("status")
        if current is None:
            log.info("creating node %s", name)
            self.core.create_node(manifest)
        else:
            labels = current.metadata.labels or {}
            if any(labels.get(k) != v for k, v in manifest["metadata"]["labels"].items()):
                self.core.patch_node(name, {"metadata": {"labels": manifest["metadata"]["labels"]}})
        node = self.core.read_node_status(name)
        capacity = node.status.capacity or {}
        addresses = [a.address for a in node.status.addresses or []]
        want_capacity = status["capacity"]
        if (
            any(capacity.get(k) != v for k, v in want_capacity.items())
            or (plan.POD_ENI in capacity and plan.POD_ENI not in want_capacity)
            or status["addresses"][0]["address"] not in addresses
        ):
            patch = {"status": {**status}}
            if plan.POD_ENI in capacity and plan.POD_ENI not in want_capacity:
                patch["status"]["capacity"] = {**want_capacity, plan.POD_ENI: None}
                patch["status"]["allocatable"] = {**want_capacity, plan.POD_ENI: None}
            self.core.patch_node_status(name, patch)

    # ------------------------------------------------------------ branch interfaces
    def pod_enis(self) -> dict[str, dict[str, Any]]:
        enis = self.ec2.describe_network_interfaces(Filters=[{"Name": "tag-key", "Values": [POD_TAG]}])
        out = {}
        for eni in enis["NetworkInterfaces"]:
            tags = {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}
            out[tags[POD_TAG]] = eni
        return out

    def sync_branch_enis(self, pods: list[Any], nodes: dict[str, dict[str, Any]]) -> None:
        enis = self.pod_enis()
        alive = set()
        for pod in pods:
            uid = pod.metadata.uid
            alive.add(uid)
            if pod.metadata.deletion_timestamp or pod.spec.node_name not in nodes:
                continue
            raw = self.api_client.sanitize_for_serialization(pod)
            if not plan.wants_branch_eni(raw):
                continue
            annotations = pod.metadata.annotations or {}
            if plan.POD_ENI in annotations and uid in enis:
                continue
            node = nodes[pod.spec.node_name]
            if node["manifest"]["metadata"]["labels"].get(plan.TRUNK_LABEL) != "true":
                continue
            eni = enis.get(uid)
            if eni is None:
                groups = self.policy_groups(pod.metadata.namespace, raw)
                if not groups:
                    log.info("pod %s/%s: no policy selects it any more", pod.metadata.namespace, pod.metadata.name)
                    continue
                eni = self.ec2.create_network_interface(
                    SubnetId=node["subnet"]["SubnetId"],
                    Groups=groups,
                    Description=BRANCH_DESCRIPTION,
                    TagSpecifications=[
                        {
                            "ResourceType": "network-interface",
                            "Tags": [
                                {"Key": POD_TAG, "Value": uid},
                                {
                                    "Key": "vpcresources.k8s.aws/trunk-eni-id",
                                    "Value": node["eni"]["NetworkInterfaceId"],
                                },
                            ],
                        }
                    ],
                )["NetworkInterface"]
                enis[uid] = eni
                log.info(
                    "pod %s/%s: branch interface %s %s groups %s",
                    pod.metadata.namespace,
                    pod.metadata.name,
                    eni["NetworkInterfaceId"],
                    eni["PrivateIpAddress"],
                    groups,
                )
            vlan = int(hashlib.sha256(uid.encode()).hexdigest()[:4], 16) % 4000 + 1
            self.core.patch_namespaced_pod(
                pod.metadata.name,
                pod.metadata.namespace,
                {
                    "metadata": {
                        "annotations": {
                            plan.POD_ENI: plan.pod_eni_annotation(eni, node["subnet"]["CidrBlock"], vlan),
                            plan.POD_IP_ANNOTATION: eni["PrivateIpAddress"],
                        }
                    }
                },
            )
        for uid, eni in enis.items():
            if uid not in alive:
                log.info("deleting branch interface %s of a deleted pod", eni["NetworkInterfaceId"])
                with contextlib.suppress(ClientError):
                    self.ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])

    # ------------------------------------------------------------ the database
    def read_databases(self, vpc_id: str | None) -> list[dict[str, Any]]:
        """Available RDS instances of the VPC, each with an interface in moto (its security groups).

        Interfaces of instances that are gone, or not in the VPC, are deleted.
        """
        out: list[dict[str, Any]] = []
        if vpc_id is not None:
            out = self._databases_of(vpc_id)
        keep = {d["eni_id"] for d in out}
        stale = self.ec2.describe_network_interfaces(Filters=[{"Name": "tag-key", "Values": [DB_ENI_TAG]}])
        for eni in stale["NetworkInterfaces"]:
            if eni["NetworkInterfaceId"] not in keep:
                log.info("deleting the interface %s of a database that is gone", eni["NetworkInterfaceId"])
                with contextlib.suppress(ClientError):
                    self.ec2.delete_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"])
        return out

    def _databases_of(self, vpc_id: str) -> list[dict[str, Any]]:
        out = []
        for db in self.rds.describe_db_instances()["DBInstances"]:
            group = db.get("DBSubnetGroup") or {}
            if group.get("VpcId") != vpc_id or not db.get("Endpoint"):
                continue
            subnets = [s["SubnetIdentifier"] for s in group.get("Subnets") or []]
            if not subnets:
                continue
            key = db["DBInstanceIdentifier"]
            groups = [g["VpcSecurityGroupId"] for g in db.get("VpcSecurityGroups") or []]
            eni = self.database_eni(key, subnets, groups, db)
            out.append(
                {
                    "id": db["DBInstanceIdentifier"],
                    "address": db["Endpoint"]["Address"].lower(),
                    "port": int(db["Endpoint"]["Port"]),
                    "ip": eni["PrivateIpAddress"],
                    "eni_id": eni["NetworkInterfaceId"],
                    "instance": db,
                }
            )
        return out

    def database_eni(self, key: str, subnets: list[str], groups: list[str], db: dict[str, Any]) -> dict[str, Any]:
        found = self.ec2.describe_network_interfaces(Filters=[{"Name": f"tag:{DB_ENI_TAG}", "Values": [key]}])
        for eni in found["NetworkInterfaces"]:
            have = sorted(g["GroupId"] for g in eni["Groups"])
            if have != sorted(groups):
                self.ec2.modify_network_interface_attribute(NetworkInterfaceId=eni["NetworkInterfaceId"], Groups=groups)
            return eni
        subnet = subnets[0]
        zone = db.get("AvailabilityZone")
        if zone:
            described = self.ec2.describe_subnets(SubnetIds=subnets)["Subnets"]
            subnet = next((s["SubnetId"] for s in described if s["AvailabilityZone"] == zone), subnet)
        log.info("creating the network interface of %s", key)
        return self.ec2.create_network_interface(
            SubnetId=subnet,
            Groups=groups,
            Description="RDSNetworkInterface",
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": [{"Key": DB_ENI_TAG, "Value": key}]}],
        )["NetworkInterface"]

    def sync_rds_users(self, databases: list[dict[str, Any]]) -> None:
        # an instance created again under the same identifier has another resource id and secret
        marker = tuple(
            sorted(
                (
                    d["id"],
                    d["instance"].get("MasterUsername"),
                    d["instance"].get("DbiResourceId"),
                    (d["instance"].get("MasterUserSecret") or {}).get("SecretArn"),
                )
                for d in databases
            )
        )
        if not databases or marker == self.last_rds_sync:
            self.last_rds_sync = marker if databases else ()
            return
        try:
            import rds_sync
        except ImportError:
            return
        try:
            moto_url, params, region = rds_sync.stack_settings(self.stack_dir)
            changes = rds_sync.sync_once(moto_url, params, [region])
        except Exception as exc:  # a failed sync is retried on the next pass
            log.warning("database users: %s", exc)
            return
        for change in changes:
            log.info("database users: %s", change)
        self.last_rds_sync = marker

    # ------------------------------------------------------------ packets
    def sync_fabric(
        self, vpc_id: str | None, nodes: dict[str, dict[str, Any]], databases: list[dict[str, Any]], pods: list[Any]
    ) -> dict[str, Any]:
        from fabric import nft

        wanted: dict[str, Any] = {}
        if vpc_id is None:
            self.close_listeners(set())
            return {"endpoints": []}
        # the public AWS endpoint, reached through the NAT gateways
        wanted[f"aws:{INTERNET_ADDRESS}:443"] = ("tls", INTERNET_ADDRESS, 443, ("127.0.0.1", self.args.moto_port))
        # interface VPC endpoints (their private DNS answers for the regional names)
        endpoints: dict[str, list[str]] = {}
        for ep in self.ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]:
            if ep.get("VpcEndpointType") != "Interface" or ep.get("State", "available") != "available":
                continue
            service = ep["ServiceName"].rsplit(".", 1)[-1]
            ids = ep.get("NetworkInterfaceIds") or []
            if not ids:
                continue
            enis = self.ec2.describe_network_interfaces(NetworkInterfaceIds=ids)["NetworkInterfaces"]
            ips = [e["PrivateIpAddress"] for e in enis]
            if ep.get("PrivateDnsEnabled"):
                endpoints.setdefault(service, []).extend(ips)
            for address in ips:
                wanted[f"aws:{address}:443"] = ("tls", address, 443, ("127.0.0.1", self.args.moto_port))
        # the database
        for db in databases:
            wanted[f"db:{db['ip']}:{db['port']}"] = ("tcp", db["ip"], db["port"], ("127.0.0.1", self.args.pg_port))
        # the resolver, on the first node (CoreDNS runs on the nodes, behind the cluster security group)
        dns_ip = self.ensure_resolver_address(nodes)
        if dns_ip:
            wanted[f"dns:{dns_ip}:53"] = ("dns", dns_ip, 53, None)
        with self.lock:
            self.dns = {"databases": {d["address"]: d["ip"] for d in databases}, "endpoints": endpoints}
        self.open_listeners(wanted)
        self.close_listeners(set(wanted))
        # pods that really run
        pod_ips = self.sync_job_pods(pods, nodes, dns_ip)
        # the rules, from moto, into the router namespace
        snap = nft.snapshot(self.ec2, vpc_id)
        text = nft.compile_ruleset(snap, internet_cidrs=INTERNET_CIDRS)
        if text != self.nft_text:
            router = netns.ensure_router(self.prefix)
            result = subprocess.run(
                ["ip", "netns", "exec", router, "nft", "-f", "-"],
                input=text,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise netns.NetnsError(f"nft: {result.stderr.strip()}")
            (self.state_dir / "ruleset.nft").write_text(text)
            self.nft_text = text
            log.info("rules applied (%d lines)", text.count("\n"))
        return {
            "endpoints": sorted(wanted),
            "resolver": dns_ip,
            "pods": pod_ips,
            "ruleset_sha256": hashlib.sha256(text.encode()).hexdigest(),
        }

    def ensure_resolver_address(self, nodes: dict[str, dict[str, Any]]) -> str | None:
        if not nodes:
            return None
        first = nodes[sorted(nodes)[0]]
        eni = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[first["eni"]["NetworkInterfaceId"]])[
            "NetworkInterfaces"
        ][0]
        secondary = [a["PrivateIpAddress"] for a in eni["PrivateIpAddresses"] if not a.get("Primary")]
        tags = {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}
        if tags.get("layered:resolver") in secondary:
            return tags["layered:resolver"]
        before = set(secondary)
        eni = self.ec2.assign_private_ip_addresses(
            NetworkInterfaceId=eni["NetworkInterfaceId"], SecondaryPrivateIpAddressCount=1
        )
        now = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[first["eni"]["NetworkInterfaceId"]])[
            "NetworkInterfaces"
        ][0]
        address = next(
            a["PrivateIpAddress"]
            for a in now["PrivateIpAddresses"]
            if a["PrivateIpAddress"] not in before and not a.get("Primary")
        )
        self.ec2.create_tags(
            Resources=[now["NetworkInterfaceId"]], Tags=[{"Key": "layered:resolver", "Value": address}]
        )
        return address

    def resolve(self, name: str) -> list[str] | None:
        with self.lock:
            dns = dict(self.dns)
        return plan.resolver(
            name,
            region=self.region,
            databases=dns["databases"],
            endpoints=dns["endpoints"],
            internet_address=INTERNET_ADDRESS,
        )

    def open_listeners(self, wanted: dict[str, Any]) -> None:
        for key, (kind, address, port, upstream) in wanted.items():
            if key in self.listeners:
                continue
            ns = netns.ensure_endpoint(address, self.prefix)
            if kind == "dns":
                udp = netns.listen(ns, address, port, kind=__import__("socket").SOCK_DGRAM)
                tcp = netns.listen(ns, address, port)
                self.listeners[key] = listeners.DnsServer(udp, tcp, self.resolve, key)
            else:
                sock = netns.listen(ns, address, port)
                tls = self.aws_tls if kind == "tls" else None
                self.listeners[key] = listeners.Forwarder(sock, upstream, key, tls=tls)
            log.info("listening on %s", key)

    def close_listeners(self, keep: set[str]) -> None:
        for key in list(self.listeners):
            if key in keep:
                continue
            self.listeners.pop(key).close()
            address = key.split(":")[1]
            if not any(k.split(":")[1] == address for k in self.listeners):
                netns.teardown_endpoint(address, self.prefix)
            log.info("closed %s", key)

    # ------------------------------------------------------------ Job pods
    def sync_job_pods(self, pods: list[Any], nodes: dict[str, dict[str, Any]], dns_ip: str | None) -> dict[str, str]:
        running: dict[str, str] = {}
        if self.runner is None:
            return running
        for pod in pods:
            labels = pod.metadata.labels or {}
            uid = pod.metadata.uid
            if plan.JOB_LABEL not in labels or pod.spec.node_name not in nodes:
                continue
            if uid in self.runners:
                running[f"{pod.metadata.namespace}/{pod.metadata.name}"] = pod.metadata.annotations.get(
                    plan.POD_IP_ANNOTATION, ""
                )
                continue
            if pod.metadata.deletion_timestamp or (pod.status.phase in ("Succeeded", "Failed")):
                continue
            raw = self.api_client.sanitize_for_serialization(pod)
            annotations = pod.metadata.annotations or {}
            if plan.wants_branch_eni(raw):
                address = annotations.get(plan.POD_IP_ANNOTATION)
                if not address:
                    continue  # waiting for the branch interface
            else:
                address = annotations.get(plan.POD_IP_ANNOTATION) or self.assign_pod_address(pod, nodes)
            node = nodes[pod.spec.node_name]
            self.start_runner(pod, raw, address, node, dns_ip)
        # pods that are gone: their runner stops itself; their logs go with them
        for uid, thread in list(self.runners.items()):
            if not thread.is_alive():
                self.runners.pop(uid)
        present = {pod.metadata.uid for pod in pods}
        for uid, (namespace, name) in list(self.ran.items()):
            if uid not in present and uid not in self.runners:
                self.runner.forget(namespace, name, uid)
                self.ran.pop(uid)
        return running

    def assign_pod_address(self, pod: Any, nodes: dict[str, dict[str, Any]]) -> str:
        """A secondary address of the node's interface (the node's security groups), as the VPC CNI does."""
        eni_id = nodes[pod.spec.node_name]["eni"]["NetworkInterfaceId"]
        before = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
        held = {a["PrivateIpAddress"] for a in before["PrivateIpAddresses"]}
        self.ec2.assign_private_ip_addresses(NetworkInterfaceId=eni_id, SecondaryPrivateIpAddressCount=1)
        after = self.ec2.describe_network_interfaces(NetworkInterfaceIds=[eni_id])["NetworkInterfaces"][0]
        address = next(a["PrivateIpAddress"] for a in after["PrivateIpAddresses"] if a["PrivateIpAddress"] not in held)
        self.core.patch_namespaced_pod(
            pod.metadata.name,
            pod.metadata.namespace,
            {"metadata": {"annotations": {plan.POD_IP_ANNOTATION: address}}},
        )
        return address

    def release_pod_address(self, pod: Any, address: str) -> None:
        for eni in self.node_enis().values():
            if any(a["PrivateIpAddress"] == address for a in eni["PrivateIpAddresses"] if not a.get("Primary")):
                with contextlib.suppress(ClientError):
                    self.ec2.unassign_private_ip_addresses(
                        NetworkInterfaceId=eni["NetworkInterfaceId"], PrivateIpAddresses=[address]
                    )

    def start_runner(self, pod: Any, raw: dict[str, Any], address: str, node: dict[str, Any], dns_ip: str | None):
        ns = netns.ensure_endpoint(address, self.prefix)
        uid = pod.metadata.uid
        # the image's trust store: the stack's CA signs the AWS endpoints' certificates
        extra_env = {"AWS_CA_BUNDLE": str(self.trust_store)}
        branch = plan.wants_branch_eni(raw)

        def target() -> None:
            try:
                self.runner.run(
                    raw,
                    pod_ip=address,
                    host_ip=node["eni"]["PrivateIpAddress"],
                    netns=ns,
                    nameservers=[dns_ip] if dns_ip else [],
                    extra_env=extra_env,
                )
            except Exception:
                log.exception("pod %s/%s", pod.metadata.namespace, pod.metadata.name)
            finally:
                netns.teardown_endpoint(address, self.prefix)
                if not branch:
                    self.release_pod_address(pod, address)

        log.info("running pod %s/%s at %s", pod.metadata.namespace, pod.metadata.name, address)
        thread = threading.Thread(target=target, name=f"pod-{pod.metadata.name}", daemon=True)
        self.runners[uid] = thread
        self.ran[uid] = (pod.metadata.namespace, pod.metadata.name)
        thread.start()

    # ------------------------------------------------------------ stop
    def stop(self) -> None:
        self.stopping.set()
        if self.runner is not None:
            self.runner.shutdown(timeout=8)
        for listener in self.listeners.values():
            listener.close()
        if self.fabric:
            shutil.rmtree(self.trust_store.parent, ignore_errors=True)
            with contextlib.suppress(OSError):
                self.trust_store.parent.parent.rmdir()
            removed = netns.teardown(self.prefix)
            log.info("removed namespaces: %s", ", ".join(removed) or "none")


def netns_usable() -> bool:
    try:
        return subprocess.run(["ip", "netns", "list"], capture_output=True, check=False).returncode == 0 and (
            subprocess.run(["nft", "--version"], capture_output=True, check=False).returncode == 0
        )
    except FileNotFoundError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-dir")
    parser.add_argument("--kubeconfig")
    parser.add_argument("--moto-url")
    parser.add_argument("--moto-port", type=int)
    parser.add_argument("--pg-port", type=int)
    parser.add_argument("--region", default="eu-west-1")
    parser.add_argument("--webhook-port", type=int, default=16444)
    parser.add_argument("--prefix", default=netns.DEFAULT_PREFIX)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between passes after a change")
    parser.add_argument("--max-interval", type=float, default=4.0, help="seconds between passes when nothing changes")
    parser.add_argument("--no-fabric", dest="fabric", action="store_false", help="no namespaces, rules or pods")
    parser.add_argument("--cleanup", action="store_true", help="remove the namespaces and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.cleanup:
        print("removed:", " ".join(netns.teardown(args.prefix)) or "nothing")
        return
    missing = [o for o in ("stack_dir", "kubeconfig", "moto_url", "moto_port", "pg_port") if getattr(args, o) is None]
    if missing:
        parser.error("required: " + ", ".join("--" + m.replace("_", "-") for m in missing))
    agent = Agent(args)

    def on_signal(signum: int, _frame: Any) -> None:
        agent.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        agent.run()
    finally:
        agent.stop()


if __name__ == "__main__":
    main()
