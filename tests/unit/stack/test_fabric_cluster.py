"""The agent's pure decisions: nodes, policy selection, admission patches, DNS answers."""

from __future__ import annotations

import json
import socket
import struct

import jsonpatch
import pytest
from fabric import cluster as plan
from fabric import listeners

AWS_NODE = {
    "spec": {
        "template": {
            "spec": {
                "containers": [
                    {"name": "aws-node", "env": [{"name": "ENABLE_POD_ENI", "value": "true"}]},
                    {"name": "aws-eks-nodeagent", "env": []},
                ]
            }
        }
    }
}


@pytest.mark.parametrize(
    ("addon", "daemonset", "expected"),
    [
        (None, None, False),
        ('{"env": {"ENABLE_POD_ENI": "true"}}', None, True),
        ('{"env": {"ENABLE_POD_ENI": "false"}}', None, False),
        ("not json", None, False),
        # what runs on the nodes wins over the add-on's settings
        ('{"env": {"ENABLE_POD_ENI": "false"}}', AWS_NODE, True),
        ('{"env": {"ENABLE_POD_ENI": "true"}}', {"spec": {"template": {"spec": {"containers": []}}}}, False),
    ],
)
def test_pod_eni_enabled(addon, daemonset, expected):
    assert plan.pod_eni_enabled(addon, daemonset) is expected


def test_pod_cidr_blocks_come_from_the_top_of_the_subnet():
    assert plan.pod_cidr("10.0.0.0/19", 0) == "10.0.31.224/27"
    assert plan.pod_cidr("10.0.0.0/19", 1) == "10.0.31.192/27"
    with pytest.raises(ValueError, match="too small"):
        plan.pod_cidr("10.0.0.0/28", 0)


def test_node_manifest_looks_like_an_eks_managed_node():
    node = plan.node_manifest(
        cluster="c",
        nodegroup={"nodegroupName": "c-private", "labels": {"type": "private", "team": "a"}},
        index=1,
        address="10.0.3.4",
        eni_id="eni-1",
        subnet={"AvailabilityZone": "eu-west-1b", "CidrBlock": "10.0.0.0/19"},
        instance_type="m6i.large",
        region="eu-west-1",
        trunk=True,
    )
    assert node["metadata"]["name"] == "ip-10-0-3-4.eu-west-1.compute.internal"
    labels = node["metadata"]["labels"]
    assert labels["eks.amazonaws.com/nodegroup"] == "c-private"
    assert labels["node.kubernetes.io/instance-type"] == "m6i.large"
    assert labels["topology.kubernetes.io/zone"] == "eu-west-1b"
    assert labels["team"] == "a"
    assert labels[plan.TRUNK_LABEL] == "true"
    assert node["metadata"]["annotations"][plan.KWOK_ANNOTATION] == "fake"
    assert node["spec"]["podCIDR"] == "10.0.31.192/27"
    assert node["status"]["addresses"][0] == {"type": "InternalIP", "address": "10.0.3.4"}
    assert node["status"]["capacity"][plan.POD_ENI] == "9"
    untrunked = plan.node_manifest(
        cluster="c",
        nodegroup={"nodegroupName": "c-private"},
        index=0,
        address="10.0.3.5",
        eni_id="eni-2",
        subnet={"AvailabilityZone": "eu-west-1a", "CidrBlock": "10.0.0.0/19"},
        instance_type="m6i.large",
        region="eu-west-1",
        trunk=False,
    )
    assert untrunked["metadata"]["labels"][plan.TRUNK_LABEL] == "false"
    assert plan.POD_ENI not in untrunked["status"]["capacity"]


def policy(groups, pod=None, sa=None):
    spec = {"securityGroups": {"groupIds": groups}}
    if pod is not None:
        spec["podSelector"] = pod
    if sa is not None:
        spec["serviceAccountSelector"] = sa
    return {"spec": spec}


def test_policies_select_by_service_account_or_pod_labels_and_both_must_match():
    by_sa = policy(["sg-1"], sa={"matchLabels": {"app": "metabase"}})
    by_pod = policy(["sg-2"], pod={"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db"]}]})
    both = policy(["sg-3"], pod={"matchLabels": {"tier": "db"}}, sa={"matchLabels": {"app": "other"}})
    empty = policy(["sg-4"], pod={})
    assert plan.selected_groups([by_sa, by_pod, both], {"tier": "db"}, {"app": "metabase"}) == ["sg-1", "sg-2"]
    assert plan.selected_groups([by_sa, by_pod, both], {"tier": "web"}, {"app": "other"}) == []
    assert plan.selected_groups([empty, by_sa], {}, {}) == ["sg-4"]
    assert plan.selected_groups([policy(["sg-5"])], {"a": "b"}, {"c": "d"}) == []
    not_in = policy(["sg-6"], pod={"matchExpressions": [{"key": "x", "operator": "NotIn", "values": ["1"]}]})
    assert plan.selected_groups([not_in], {"x": "1"}, {}) == []
    assert plan.selected_groups([not_in], {"x": "2"}, {}) == ["sg-6"]


@pytest.mark.parametrize(
    "resources",
    [None, {}, {"limits": {"cpu": "1"}}, {"requests": {"memory": "1Gi"}, "limits": {"memory": "1Gi"}}],
)
def test_admission_patch_asks_one_branch_interface_on_the_first_container(resources):
    container = {"name": "app", "image": "x"}
    if resources is not None:
        container["resources"] = resources
    pod = {"spec": {"containers": [container, {"name": "side", "image": "y"}]}}
    patched = jsonpatch.apply_patch(pod, plan.pod_eni_patch(pod))
    first = patched["spec"]["containers"][0]["resources"]
    assert first["limits"][plan.POD_ENI] == "1" and first["requests"][plan.POD_ENI] == "1"
    assert "resources" not in patched["spec"]["containers"][1]
    assert plan.wants_branch_eni(patched) and not plan.wants_branch_eni(pod)
    for kind in ("limits", "requests"):
        for key, value in ((resources or {}).get(kind) or {}).items():
            assert first[kind][key] == value


def test_pod_eni_annotation_has_the_fields_of_the_vpc_resource_controller():
    value = json.loads(
        plan.pod_eni_annotation(
            {"NetworkInterfaceId": "eni-1", "PrivateIpAddress": "10.0.1.9", "MacAddress": "02:00"}, "10.0.0.0/19", 7
        )
    )
    assert value == [
        {"eniId": "eni-1", "ifAddress": "02:00", "privateIp": "10.0.1.9", "vlanId": 7, "subnetCidr": "10.0.0.0/19"}
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("db-1.aaaaaaaaaa.eu-west-1.rds.amazonaws.com", ["10.0.160.4"]),
        ("DB-1.aaaaaaaaaa.eu-west-1.rds.amazonaws.com.", ["10.0.160.4"]),
        ("other.aaaaaaaaaa.eu-west-1.rds.amazonaws.com", None),
        ("sts.eu-west-1.amazonaws.com", ["10.0.2.7"]),  # private DNS of the interface endpoint
        ("sts.amazonaws.com", ["203.0.113.10"]),  # the global name is not the endpoint's
        ("secretsmanager.eu-west-1.amazonaws.com", ["203.0.113.10"]),
        ("sts.us-east-1.amazonaws.com", None),
        ("example.com", None),
    ],
)
def test_resolver(name, expected):
    answer = plan.resolver(
        name,
        region="eu-west-1",
        databases={"db-1.aaaaaaaaaa.eu-west-1.rds.amazonaws.com": "10.0.160.4"},
        endpoints={"sts": ["10.0.2.7"]},
        internet_address="203.0.113.10",
    )
    assert answer == expected


def query(name: str, qtype: int = 1) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split("."))
    return struct.pack("!HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + struct.pack("!HH", qtype, 1)


def test_dns_answers_a_records_and_nxdomain():
    def resolve(name):
        return ["10.0.160.4"] if name == "db.example" else None

    reply = listeners.answer(query("db.example"), resolve)
    ident, flags, qd, an = struct.unpack("!HHHH", reply[:8])
    assert (ident, flags & 0xF, qd, an) == (0x1234, 0, 1, 1)
    assert flags & 0x8000 and flags & 0x0100  # a response, recursion desired kept
    assert socket.inet_ntoa(reply[-4:]) == "10.0.160.4"
    missing = listeners.answer(query("nope.example"), resolve)
    assert struct.unpack("!HH", missing[:4])[1] & 0xF == listeners.RCODE_NXDOMAIN
    aaaa = listeners.answer(query("db.example", qtype=28), resolve)
    assert struct.unpack("!HHHH", aaaa[:8])[3] == 0  # no AAAA record, no error
    with pytest.raises(ValueError):
        listeners.parse_question(b"\x00" * 5)
