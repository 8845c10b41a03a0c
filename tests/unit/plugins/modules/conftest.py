# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures for running modules against the stack's extended moto server (tests/stack/moto_server.py).

Stock moto, in process, has no EKS add-ons, Pod Identity associations or cluster security group, so the
EKS module tests start the stack's launcher as a subprocess on a free loopback port, once per test module,
and point the modules at it through AWS_ENDPOINT_URL. Nothing here is autouse: the other module tests of
this directory are not affected.
"""

import socket
import uuid

import boto3
import botocore.session
import pytest
from _harness import ModuleFail, clean_aws_env, patch_exits, run_main
from moto_process import start_server, stop_server

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

MOTO_REGION = "eu-west-1"
MOTO_ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def moto_eks_endpoint(tmp_path_factory):
    """URL of an extended moto server, private to the test module."""
    proc, url = start_server(tmp_path_factory.mktemp("moto") / "server.log")
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def moto_eks_clients(moto_eks_endpoint):
    """boto3 clients on the server, for arranging and reading state back independently of the modules."""
    session = boto3.session.Session(
        aws_access_key_id="testing", aws_secret_access_key="testing", region_name=MOTO_REGION
    )
    return {name: session.client(name, endpoint_url=moto_eks_endpoint) for name in ("eks", "ec2")}


@pytest.fixture
def moto_eks_env(monkeypatch, tmp_path, moto_eks_endpoint):
    """Fake static credentials, the region, and AWS_ENDPOINT_URL on the server, for the module under test."""
    clean_aws_env(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_eks_endpoint)
    return moto_eks_endpoint


@pytest.fixture
def moto_eks_network(moto_eks_clients):
    """A fresh VPC with two subnets in two Availability Zones."""
    ec2 = moto_eks_clients["ec2"]
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = []
    for index, zone in enumerate(("a", "b")):
        subnet = ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"10.0.{index}.0/24", AvailabilityZone=f"{MOTO_REGION}{zone}"
        )
        subnets.append(subnet["Subnet"]["SubnetId"])
    return {"vpc_id": vpc_id, "subnet_ids": subnets}


@pytest.fixture
def moto_eks_cluster(moto_eks_clients, moto_eks_network):
    """A new cluster on Kubernetes 1.31, created directly (not by the module under test)."""
    name = f"c-{uuid.uuid4().hex[:8]}"
    return moto_eks_clients["eks"].create_cluster(
        name=name,
        version="1.31",
        roleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/eks-cluster",
        resourcesVpcConfig={"subnetIds": moto_eks_network["subnet_ids"]},
    )["cluster"]


@pytest.fixture
def run_eks_module(monkeypatch):
    """Run a module's main() in process: run(module, args) -> (failed, result)."""
    patch_exits(monkeypatch)

    def run(module, args, check_mode=False, diff=True):
        outcome = run_main(module.main, args, check_mode=check_mode, diff=diff)
        return isinstance(outcome, ModuleFail), outcome.result

    return run


@pytest.fixture
def no_clients(monkeypatch):
    """Make every way of creating an AWS client (or opening a connection) fail, and record the attempts.

    For the tests proving that bad input is rejected before any API call.
    """
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append((args, kwargs))
        raise AssertionError("an AWS client was created (or a connection made) before input validation finished")

    monkeypatch.setattr(AnsibleAWSModule, "client", refuse)
    monkeypatch.setattr(boto3.session.Session, "client", refuse)
    monkeypatch.setattr(botocore.session.Session, "create_client", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts
