# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Fixtures for running modules against the stack's extended moto server (tests/stack/moto_server.py).

Stock moto, in process, has no EKS add-ons, Pod Identity associations or cluster security group, so the
EKS module tests start the stack's launcher as a subprocess on a free loopback port, once per test module,
and point the modules at it through AWS_ENDPOINT_URL. Nothing here is autouse: the other module tests of
this directory are not affected.
"""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import boto3
import botocore.session
import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

LAUNCHER = Path(__file__).resolve().parents[3] / "stack" / "moto_server.py"
MOTO_REGION = "eu-west-1"
MOTO_ACCOUNT = "123456789012"
STARTUP_TIMEOUT = 60

# Everything that could point boto3 elsewhere than the server, or at other credentials.
_AWS_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_URL",
    "EC2_URL",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_EKS",
    "AWS_ENDPOINT_URL_EC2",
    "AWS_CA_BUNDLE",
)


class ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class ModuleFail(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def _exit_json(self, **kwargs):
    raise ModuleExit(kwargs)


def _fail_json(self, msg=None, **kwargs):
    kwargs["msg"] = msg
    kwargs["failed"] = True
    raise ModuleFail(kwargs)


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_server(log_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTO_", "AWS_"))}
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, str(LAUNCHER), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"moto server exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2) as response:
                if response.status == 200:
                    return proc, endpoint
        except OSError:
            time.sleep(0.2)
    proc.kill()
    proc.wait()
    pytest.fail(f"moto server did not answer on {endpoint}:\n{log_path.read_text()}")


def _stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise


@pytest.fixture(scope="module")
def moto_eks_endpoint(tmp_path_factory):
    """URL of an extended moto server, private to the test module."""
    proc, url = _start_server(tmp_path_factory.mktemp("moto") / "server.log")
    yield url
    _stop_server(proc)


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
    for name in _AWS_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", MOTO_REGION)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_eks_endpoint)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
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
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)

    def run(module, args, check_mode=False, diff=True):
        args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
        with patch_module_args(args), pytest.raises((ModuleExit, ModuleFail)) as raised:
            module.main()
        return isinstance(raised.value, ModuleFail), raised.value.result

    return run


@pytest.fixture
def eks_no_clients(monkeypatch):
    """Make every way of creating an AWS client fail, and record the attempts."""
    attempts = []

    def refuse(*args, **kwargs):
        attempts.append((args, kwargs))
        raise AssertionError("an AWS client was created before input validation finished")

    monkeypatch.setattr(AnsibleAWSModule, "client", refuse)
    monkeypatch.setattr(boto3.session.Session, "client", refuse)
    monkeypatch.setattr(botocore.session.Session, "create_client", refuse)
    return attempts
