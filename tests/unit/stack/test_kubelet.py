"""The stack's kubelet stand-in (tests/stack/kubelet.py) for the pods of Jobs.

Pure tests cover $(VAR) expansion, the image table, environment and volume
resolution, the atomic volume layout, mount planning, host mount points, CRI
logs and the status documents. The integration tests start a private control
plane on free loopback ports (etcd, kube-apiserver, kube-controller-manager
and kwok, from the binaries scripts/build-k8s.sh builds; certificates from
tests/stack/pki.py), run Jobs whose pods the stand-in runs as host processes,
and read the outcome back from the API server: pod and Job status, logs
through ``pods/log`` (kwok's kubelet server behind the node CONNECT proxy),
and the host left as it was.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import irsa_pod
import kubelet
import pytest
import yaml
from kubelet import (
    ContainerConfigError,
    ContainerRecord,
    FileEntry,
    HostPaths,
    ObjectSource,
    PodFailure,
    build_status,
    container_argv,
    container_env,
    expand,
    find_image,
    normalize_image,
    parse_cri_log,
    plan_mounts,
    pod_phase,
    volume_contents,
    write_atomic,
)
from kubernetes.client.exceptions import ApiException
from node_proxy import NodeProxy

REPO = Path(__file__).resolve().parents[3]


# ---------------------------------------------------------------------------------------------
# $(VAR) expansion
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$(A)", "alpha"),
        ("x-$(A)-$(B)-y", "x-alpha-beta-y"),
        ("$(MISSING)", "$(MISSING)"),
        ("$$(A)", "$(A)"),
        ("$$$(A)", "$alpha"),
        ("$$", "$"),
        ("$HOME", "$HOME"),
        ("$(A", "$(A"),
        ("tail$", "tail$"),
        ("$()", "$()"),
        ("100%$(B)", "100%beta"),
    ],
)
def test_expand_follows_kubernetes(text: str, expected: str) -> None:
    assert expand(text, {"A": "alpha"}, {"B": "beta"}) == expected


def test_expand_first_mapping_wins() -> None:
    assert expand("$(A)", {"A": "first"}, {"A": "second"}) == "first"


# ---------------------------------------------------------------------------------------------
# The image table and the command
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "repository", "reference"),
    [
        ("postgres:16", "docker.io/library/postgres", "16"),
        ("postgres", "docker.io/library/postgres", "latest"),
        ("amazon/aws-cli:2.17.0", "docker.io/amazon/aws-cli", "2.17.0"),
        ("docker.io/amazon/aws-cli", "docker.io/amazon/aws-cli", "latest"),
        ("index.docker.io/library/busybox:1.36", "docker.io/library/busybox", "1.36"),
        ("public.ecr.aws/aws-cli/aws-cli:latest", "public.ecr.aws/aws-cli/aws-cli", "latest"),
        ("public.ecr.aws/docker/library/postgres:16-alpine", "public.ecr.aws/docker/library/postgres", "16-alpine"),
        ("localhost:5000/team/tool:1", "localhost:5000/team/tool", "1"),
        ("postgres@sha256:abc", "docker.io/library/postgres", "@sha256:abc"),
    ],
)
def test_normalize_image(image: str, repository: str, reference: str) -> None:
    assert normalize_image(image) == (repository, reference)


def test_known_images_are_the_documented_ones() -> None:
    assert find_image("amazon/aws-cli:2.15.0").title == "AWS CLI"
    assert find_image("public.ecr.aws/aws-cli/aws-cli").title == "AWS CLI"
    assert find_image("postgres:16").title == "PostgreSQL"
    assert find_image("public.ecr.aws/docker/library/postgres:15").title == "PostgreSQL"
    assert find_image("busybox:1.36").title == "BusyBox"
    assert find_image("debian:12-slim").title == "Debian"
    assert find_image("nginx:1.27") is None
    assert find_image("ghcr.io/amazon/aws-cli") is None


def test_jdbc_probe_image_runs_the_checkouts_launcher() -> None:
    assert find_image("localhost/layered/jdbc-iam-probe:1").title == "JDBC IAM probe"
    spec = {"name": "probe", "image": "localhost/layered/jdbc-iam-probe", "args": ["--host", "db"]}
    assert container_argv(spec, {}) == ["jdbc-iam-probe", "--host", "db"]
    launcher = Path(kubelet.default_programs()["jdbc-iam-probe"])
    assert launcher == Path(__file__).resolve().parents[2] / "jdbc_probe" / "jdbc-iam-probe"
    assert os.access(launcher, os.X_OK)


def test_argv_uses_the_image_entrypoint_when_no_command() -> None:
    assert container_argv({"name": "c", "image": "amazon/aws-cli", "args": ["sts", "get-caller-identity"]}, {}) == [
        "aws",
        "sts",
        "get-caller-identity",
    ]
    assert container_argv({"name": "c", "image": "busybox"}, {}) == ["sh"]
    # command replaces the entrypoint and drops the image's CMD
    assert container_argv({"name": "c", "image": "debian", "command": ["echo", "$(X)"]}, {"X": "1"}) == ["echo", "1"]
    assert container_argv({"name": "c", "image": "busybox", "args": ["echo", "hi"]}, {}) == ["echo", "hi"]


def test_postgres_images_need_a_program_other_than_the_server() -> None:
    pg = {"name": "db", "image": "postgres:16"}
    for spec in (pg, {**pg, "args": ["postgres", "-c", "x=1"]}, {**pg, "args": ["-c", "fsync=off"]}):
        with pytest.raises(PodFailure) as info:
            container_argv(spec, {})
        assert info.value.reason == "CreateContainerError"
        assert "does not run" in info.value.message
    assert container_argv({**pg, "args": ["psql", "-c", "select 1"]}, {}) == ["psql", "-c", "select 1"]
    assert container_argv({**pg, "command": ["psql"], "args": ["-h", "$(H)"]}, {"H": "db"}) == ["psql", "-h", "db"]


def test_unknown_image_is_refused_clearly() -> None:
    with pytest.raises(PodFailure) as info:
        container_argv({"name": "web", "image": "nginx:1.27", "command": ["nginx"]}, {})
    assert info.value.reason == "ErrImagePull"
    assert info.value.container == "web"
    assert 'cannot run image "nginx:1.27"' in info.value.message
    assert "KNOWN_IMAGES" in info.value.message


# ---------------------------------------------------------------------------------------------
# The environment
# ---------------------------------------------------------------------------------------------

POD = {
    "metadata": {
        "name": "job-abc",
        "namespace": "apps",
        "uid": "1111-2222",
        "labels": {"app": "probe", "tier": "db"},
        "annotations": {"note": 'say "hi"'},
    },
    "spec": {"nodeName": "node-a", "serviceAccountName": "runner"},
}


def _objects(store: dict[tuple[str, str], dict]) -> ObjectSource:
    return ObjectSource(lambda kind, ns, name: store.get((kind, name)) if ns == "apps" else None)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


STORE = {
    ("ConfigMap", "settings"): {"data": {"DB_HOST": "db.local", "DB_PORT": "5432", "bad key": "x"}},
    ("Secret", "creds"): {"data": {"password": _b64("s3cret"), "user": _b64("app")}},
}


def test_env_sources_expansion_and_precedence() -> None:
    container = {
        "name": "c",
        "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}, {"secretRef": {"name": "creds"}}],
        "env": [
            {"name": "DB_HOST", "value": "override"},
            {"name": "URL", "value": "postgres://$(user)@$(CFG_DB_HOST):$(CFG_DB_PORT)/$(UNKNOWN)"},
            {"name": "ESCAPED", "value": "$$(user)"},
            {"name": "PASS", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
            {"name": "PORT", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "DB_PORT"}}},
            {"name": "OPT", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k", "optional": True}}},
            {"name": "OPT_KEY", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "no", "optional": True}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
            {"name": "HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}},
            {"name": "SVC", "value": "$(KUBERNETES_SERVICE_HOST)"},
        ],
    }
    env = container_env(
        POD,
        container,
        _objects(STORE),
        pod_ip="10.0.1.5",
        host_ip="10.0.1.1",
        services={"KUBERNETES_SERVICE_HOST": "10.96.0.1"},
    )
    assert env["CFG_DB_HOST"] == "db.local"
    assert "CFG_bad key" not in env
    assert env["DB_HOST"] == "override"
    assert env["URL"] == "postgres://app@db.local:5432/$(UNKNOWN)"
    assert env["ESCAPED"] == "$(user)"
    assert env["PASS"] == "s3cret"
    assert env["PORT"] == "5432"
    assert "OPT" not in env
    assert "OPT_KEY" not in env
    assert (env["POD"], env["NS"], env["UID"]) == ("job-abc", "apps", "1111-2222")
    assert (env["APP"], env["NOTE"], env["NODE"], env["SA"]) == ("probe", 'say "hi"', "node-a", "runner")
    assert (env["IP"], env["HOST"]) == ("10.0.1.5", "10.0.1.1")
    assert env["SVC"] == "10.96.0.1"
    assert env["KUBERNETES_SERVICE_HOST"] == "10.96.0.1"


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "X", "valueFrom": {"secretKeyRef": {"name": "absent", "key": "k"}}}, 'secret "absent" not found'),
        (
            {"name": "X", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "nope"}}},
            "couldn't find key nope in Secret apps/creds",
        ),
        ({"name": "X", "valueFrom": {"configMapKeyRef": {"name": "gone", "key": "k"}}}, 'configmap "gone" not found'),
        ({"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.hostname"}}}, "unsupported fieldRef"),
        ({"name": "X", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}}, "are supported"),
    ],
)
def test_env_errors_are_container_config_errors(entry: dict, message: str) -> None:
    with pytest.raises(ContainerConfigError, match=message):
        container_env(POD, {"name": "c", "env": [entry]}, _objects(STORE), pod_ip="", host_ip="")


def test_env_from_missing_is_an_error_unless_optional() -> None:
    container = {"name": "c", "envFrom": [{"secretRef": {"name": "absent"}}]}
    with pytest.raises(ContainerConfigError, match='secret "absent" not found'):
        container_env(POD, container, _objects(STORE), pod_ip="", host_ip="")
    container = {"name": "c", "envFrom": [{"secretRef": {"name": "absent", "optional": True}}]}
    assert container_env(POD, container, _objects(STORE), pod_ip="", host_ip="") == {}


def test_service_env_from_the_kubernetes_service() -> None:
    env = kubelet.service_env(
        {"spec": {"clusterIP": "10.96.0.1", "ports": [{"name": "https", "port": 443, "protocol": "TCP"}]}}
    )
    assert env == {
        "KUBERNETES_SERVICE_HOST": "10.96.0.1",
        "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443",
        "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "KUBERNETES_PORT_443_TCP_PORT": "443",
        "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
    }
    assert kubelet.service_env(None) == {}


# ---------------------------------------------------------------------------------------------
# Volumes
# ---------------------------------------------------------------------------------------------


def _pod_with_volumes(volumes: list[dict], **spec: Any) -> dict:
    return {"metadata": POD["metadata"], "spec": {**POD["spec"], "volumes": volumes, "containers": [], **spec}}


def test_volume_contents_layout_and_modes() -> None:
    tokens: list[tuple[str, int]] = []

    def token(audience: str, seconds: int) -> str:
        tokens.append((audience, seconds))
        return f"token-for-{audience or 'api'}"

    pod = _pod_with_volumes(
        [
            {"name": "cfg", "configMap": {"name": "settings", "items": [{"key": "DB_HOST", "path": "conf/host"}]}},
            {"name": "sec", "secret": {"secretName": "creds", "defaultMode": 0o400}},
            {"name": "opt", "secret": {"secretName": "absent", "optional": True}},
            {"name": "scratch", "emptyDir": {}},
            irsa_pod.volume(),
            {
                "name": "kube-api-access-x",
                "projected": {
                    "defaultMode": 0o644,
                    "sources": [
                        {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                        {
                            "configMap": {
                                "name": "settings",
                                "items": [{"key": "DB_PORT", "path": "port", "mode": 0o600}],
                            }
                        },
                        {
                            "downwardAPI": {
                                "items": [
                                    {"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}},
                                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
                                ]
                            }
                        },
                    ],
                },
            },
            {
                "name": "info",
                "downwardAPI": {"items": [{"path": "ann", "fieldRef": {"fieldPath": "metadata.annotations"}}]},
            },
        ]
    )
    contents = volume_contents(pod, _objects(STORE), token, pod_ip="10.0.0.1", host_ip="10.0.0.2")
    assert contents["cfg"].files["conf/host"].data == b"db.local"
    assert contents["cfg"].files["conf/host"].mode == 0o644
    assert {k: (v.data, v.mode) for k, v in contents["sec"].files.items()} == {
        "password": (b"s3cret", 0o400),
        "user": (b"app", 0o400),
    }
    assert contents["opt"].files == {}
    assert contents["scratch"].kind == "emptyDir"
    assert contents["aws-iam-token"].files["token"].data == b"token-for-sts.amazonaws.com"
    assert [(t.audience, t.expiration_seconds, t.path) for t in contents["aws-iam-token"].tokens] == [
        ("sts.amazonaws.com", 86400, "token")
    ]
    api = contents["kube-api-access-x"].files
    assert api["token"].data == b"token-for-api"
    assert (api["port"].data, api["port"].mode) == (b"5432", 0o600)
    assert api["namespace"].data == b"apps"
    assert api["labels"].data == b'app="probe"\ntier="db"'
    assert contents["info"].files["ann"].data == b'note="say \\"hi\\""'
    assert tokens == [("sts.amazonaws.com", 86400), ("", 3607)]


@pytest.mark.parametrize(
    ("volume", "error", "message"),
    [
        ({"configMap": {"name": "gone"}}, ContainerConfigError, 'configmap "gone" not found'),
        (
            {"configMap": {"name": "settings", "items": [{"key": "nope", "path": "p"}]}},
            ContainerConfigError,
            "non-existent key: nope",
        ),
        (
            {"persistentVolumeClaim": {"claimName": "data"}},
            PodFailure,
            "persistentVolumeClaim volumes are not supported",
        ),
        (
            {"configMap": {"name": "settings", "items": [{"key": "DB_HOST", "path": "../x"}]}},
            PodFailure,
            "must be relative",
        ),
    ],
)
def test_volume_errors(volume: dict, error: type[Exception], message: str) -> None:
    def no_token(audience: str, seconds: int) -> str:
        raise AssertionError("no token expected")

    with pytest.raises(error, match=message):
        volume_contents(_pod_with_volumes([{"name": "v", **volume}]), _objects(STORE), no_token, pod_ip="", host_ip="")


def test_token_of_a_pod_running_as_one_user_is_theirs() -> None:
    pod = _pod_with_volumes(
        [{"name": "t", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
        securityContext={"runAsUser": 1000},
        containers=[{"name": "a"}, {"name": "b", "securityContext": {"runAsUser": 1000}}],
    )
    entry = volume_contents(pod, _objects(STORE), lambda a, s: "tok", pod_ip="", host_ip="")["t"].files["token"]
    assert (entry.mode, entry.uid) == (0o600, 1000)
    pod["spec"]["securityContext"]["fsGroup"] = 2000
    entry = volume_contents(pod, _objects(STORE), lambda a, s: "tok", pod_ip="", host_ip="")["t"].files["token"]
    assert (entry.mode, entry.uid) == (0o644, None)


def test_write_atomic_layout_and_update(tmp_path: Path) -> None:
    target = tmp_path / "vol"
    write_atomic(target, {"a": FileEntry(b"one", 0o644), "dir/b": FileEntry(b"two", 0o400)})
    data_link = os.readlink(target / "..data")
    assert data_link.startswith("..") and (target / data_link).is_dir()
    assert os.readlink(target / "a") == "..data/a"
    assert os.readlink(target / "dir") == "..data/dir"
    assert (target / "a").read_bytes() == b"one"
    assert (target / "dir" / "b").read_bytes() == b"two"
    assert stat.S_IMODE((target / "dir" / "b").stat().st_mode) == 0o400
    assert stat.S_IMODE(target.stat().st_mode) == 0o755

    write_atomic(target, {"a": FileEntry(b"new", 0o644)})
    assert (target / "a").read_bytes() == b"new"
    assert not os.path.lexists(target / "dir")
    versions = [p.name for p in target.iterdir() if p.name.startswith("..") and p.name != "..data"]
    assert versions == [os.readlink(target / "..data")]


def test_plan_mounts_order_subpath_and_read_only(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg"
    write_atomic(cfg, {"app.ini": FileEntry(b"x=1", 0o644)})
    empty = tmp_path / "empty"
    empty.mkdir()
    sources = {"cfg": ("configMap", str(cfg)), "scratch": ("emptyDir", str(empty))}
    container = {
        "name": "c",
        "volumeMounts": [
            {"name": "cfg", "mountPath": "/opt/app/conf/app.ini", "subPath": "app.ini"},
            {"name": "scratch", "mountPath": "/opt/app/"},
            {"name": "scratch", "mountPath": "/data/$(POD)", "subPathExpr": "$(POD)"},
            {"name": "scratch", "mountPath": "/ro", "readOnly": True},
        ],
    }
    plans = plan_mounts(container, sources, {"POD": "p1"})
    assert [(p.target, p.read_only, p.is_file) for p in plans] == [
        ("/ro", True, False),
        ("/opt/app", False, False),
        ("/data/$(POD)", False, False),
        ("/opt/app/conf/app.ini", True, True),
    ]
    assert plans[3].source == os.path.realpath(cfg / "app.ini")
    assert plans[2].source == str(empty / "p1") and (empty / "p1").is_dir()
    with pytest.raises(PodFailure, match="leaves volume"):
        os.symlink("/etc", empty / "escape")
        plan_mounts(
            {"name": "c", "volumeMounts": [{"name": "scratch", "mountPath": "/x", "subPath": "escape"}]}, sources, {}
        )
    with pytest.raises(PodFailure, match="not a volume of the pod"):
        plan_mounts({"name": "c", "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, sources, {})


def test_host_paths_are_created_counted_and_removed(tmp_path: Path) -> None:
    registry = HostPaths(tmp_path / "registry")
    other_runner = HostPaths(tmp_path / "registry")
    me = f"{os.getpid()}:pod-a"
    (tmp_path / "exists").mkdir()
    new = str(tmp_path / "exists" / "new")
    first = registry.acquire(f"{new}/deep", False, me)
    assert first == [new, f"{new}/deep"]
    # another runner's pod finds the shared directory created for the first pod and holds it too
    second = other_runner.acquire(f"{new}/other.conf", True, f"{os.getpid()}:pod-b")
    assert second == [new, f"{new}/other.conf"]
    assert Path(f"{new}/other.conf").is_file()
    assert json.loads((tmp_path / "registry" / "host-paths.json").read_text())[new] == [me, f"{os.getpid()}:pod-b"]
    assert registry.release(first, me) == []
    assert not os.path.exists(f"{new}/deep")
    assert os.path.isdir(new)
    assert other_runner.release(second, f"{os.getpid()}:pod-b") == []
    assert not os.path.exists(new)
    assert (tmp_path / "exists").is_dir()
    # nothing held: the registry is gone too
    assert not (tmp_path / "registry").exists()


def test_host_paths_held_twice_by_one_pod(tmp_path: Path) -> None:
    registry = HostPaths(tmp_path / "registry")
    me = f"{os.getpid()}:pod"
    held = registry.acquire(str(tmp_path / "a" / "x"), False, me) + registry.acquire(
        str(tmp_path / "a" / "y"), False, me
    )
    assert held.count(str(tmp_path / "a")) == 2
    assert registry.release(held, me) == []
    assert not (tmp_path / "a").exists()


def test_host_paths_with_content_are_left(tmp_path: Path) -> None:
    registry = HostPaths(tmp_path / "registry")
    held = registry.acquire(str(tmp_path / "made"), False, "1:p")
    (tmp_path / "made" / "someone-elses-file").write_text("x")
    assert registry.release(held, "1:p") == [str(tmp_path / "made")]
    assert (tmp_path / "made" / "someone-elses-file").exists()


def test_host_paths_of_a_dead_runner_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    registry = HostPaths(tmp_path / "registry")
    registry.acquire(str(tmp_path / "left" / "behind"), False, f"{dead.pid}:pod")
    assert (tmp_path / "left" / "behind").is_dir()
    HostPaths(tmp_path / "registry").prune()
    assert not (tmp_path / "left").exists()
    assert not (tmp_path / "registry").exists()


# ---------------------------------------------------------------------------------------------
# Logs
# ---------------------------------------------------------------------------------------------


def test_cri_lines_and_parse() -> None:
    stamp = "2026-01-02T03:04:05.000000001Z"
    data = (
        kubelet.cri_lines("stdout", b"hello\n", False, stamp)
        + kubelet.cri_lines("stderr", b"part", False, stamp)
        + kubelet.cri_lines("stderr", b"ial\n", False, stamp)
        + kubelet.cri_lines("stdout", b"no newline", True, stamp)
    )
    assert data.decode().splitlines() == [
        f"{stamp} stdout F hello",
        f"{stamp} stderr P part",
        f"{stamp} stderr F ial",
        f"{stamp} stdout F no newline",
    ]
    assert parse_cri_log(data) == [("stdout", b"hello"), ("stderr", b"partial"), ("stdout", b"no newline")]
    assert kubelet.cri_timestamp(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456789Z"


def test_container_log_tail(tmp_path: Path) -> None:
    log = kubelet.ContainerLog(tmp_path / "c" / "0.log")
    read_fd, write_fd = os.pipe()
    with os.fdopen(write_fd, "wb") as out:
        out.write(b"".join(f"line {i}\n".encode() for i in range(100)) + b"last words")
    log.pump("stdout", os.fdopen(read_fd, "rb"))
    log.wait()
    log.close()
    tail = log.tail()
    assert tail.endswith("line 99\nlast words")
    assert "line 21\n" in tail and "line 20\n" not in tail
    assert stat.S_IMODE((tmp_path / "c" / "0.log").stat().st_mode) == 0o600
    assert len(parse_cri_log((tmp_path / "c" / "0.log").read_bytes())) == 101


# ---------------------------------------------------------------------------------------------
# Status documents
# ---------------------------------------------------------------------------------------------


def _rec(name: str, state: dict, *, init: bool = False, final: bool = False, ran: bool = True) -> ContainerRecord:
    return ContainerRecord(
        name,
        "docker.io/library/busybox:1.36",
        "docker.io/library/busybox@sha256:0",
        init=init,
        state=state,
        final=final,
        ran=ran,
    )


RUNNING = {"running": {"startedAt": "2026-01-01T00:00:00Z"}}


def _done(code: int) -> dict:
    return {"terminated": {"exitCode": code, "reason": "Completed" if code == 0 else "Error"}}


def test_pod_phase() -> None:
    waiting = {"waiting": {"reason": "ContainerCreating"}}
    assert pod_phase([], [_rec("c", waiting, ran=False)], False) == "Pending"
    assert pod_phase([_rec("i", RUNNING, init=True)], [_rec("c", waiting, ran=False)], False) == "Pending"
    assert pod_phase([_rec("i", _done(1), init=True, final=True)], [_rec("c", waiting, ran=False)], False) == "Failed"
    assert pod_phase([], [_rec("c", RUNNING), _rec("d", _done(0), final=True)], False) == "Running"
    # a container waiting to be restarted keeps the pod Running
    assert pod_phase([], [_rec("c", {"waiting": {"reason": "CrashLoopBackOff"}})], False) == "Running"
    assert pod_phase([], [_rec("c", _done(0), final=True), _rec("d", _done(0), final=True)], False) == "Succeeded"
    assert pod_phase([], [_rec("c", _done(0), final=True), _rec("d", _done(2), final=True)], False) == "Failed"
    assert pod_phase([], [_rec("c", RUNNING)], True) == "Failed"


def test_build_status_running_keeps_other_fields_and_transition_times() -> None:
    existing = {
        "phase": "Pending",
        "qosClass": "BestEffort",
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"},
            {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-01-01T00:00:01Z"},
            {"type": "DisruptionTarget", "status": "False", "lastTransitionTime": "2026-01-01T00:00:02Z"},
        ],
    }
    main = [_rec("c", RUNNING)]
    main[0].container_id = "host://42"
    status = build_status(
        existing,
        init=[],
        main=main,
        phase="Running",
        pod_ip="10.0.0.5",
        host_ip="10.0.0.1",
        start_time="2026-01-01T00:00:00Z",
        sandbox_ready=True,
        generation=1,
        now="2026-01-01T00:01:00Z",
    )
    assert status["phase"] == "Running"
    assert status["qosClass"] == "BestEffort"
    assert status["observedGeneration"] == 1
    assert (status["podIP"], status["podIPs"], status["hostIP"], status["hostIPs"]) == (
        "10.0.0.5",
        [{"ip": "10.0.0.5"}],
        "10.0.0.1",
        [{"ip": "10.0.0.1"}],
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert set(conditions) == {
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
        "DisruptionTarget",
    }
    assert all(
        conditions[t]["status"] == "True"
        for t in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
    )
    assert conditions["Initialized"]["lastTransitionTime"] == "2026-01-01T00:00:01Z"
    assert conditions["Ready"]["lastTransitionTime"] == "2026-01-01T00:01:00Z"
    assert conditions["DisruptionTarget"]["status"] == "False"
    (cs,) = status["containerStatuses"]
    assert cs == {
        "name": "c",
        "image": "docker.io/library/busybox:1.36",
        "imageID": "docker.io/library/busybox@sha256:0",
        "containerID": "host://42",
        "ready": True,
        "started": True,
        "restartCount": 0,
        "state": RUNNING,
        "lastState": {},
    }
    assert "initContainerStatuses" not in status


def test_build_status_pending_and_failed() -> None:
    init = [_rec("setup", {"waiting": {"reason": "PodInitializing"}}, init=True, ran=False)]
    main = [_rec("c", {"waiting": {"reason": "PodInitializing"}}, ran=False)]
    status = build_status(
        {},
        init=init,
        main=main,
        phase="Pending",
        pod_ip="",
        host_ip="10.0.0.1",
        start_time="2026-01-01T00:00:00Z",
        sandbox_ready=False,
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Initialized"] == {
        "type": "Initialized",
        "status": "False",
        "reason": "ContainersNotInitialized",
        "message": "containers with incomplete status: [setup]",
        "lastProbeTime": None,
        "lastTransitionTime": conditions["Initialized"]["lastTransitionTime"],
    }
    assert conditions["Ready"]["reason"] == "ContainersNotReady"
    assert conditions["PodScheduled"]["status"] == "True"
    assert "podIP" not in status
    assert status["initContainerStatuses"][0]["imageID"] == ""
    assert status["initContainerStatuses"][0]["state"] == {"waiting": {"reason": "PodInitializing"}}

    main = [_rec("c", _done(3), final=True)]
    status = build_status(
        status,
        init=[],
        main=main,
        phase="Failed",
        pod_ip="10.0.0.5",
        host_ip="10.0.0.1",
        start_time="2026-01-01T00:00:00Z",
        sandbox_ready=True,
        reason="DeadlineExceeded",
        message="too long",
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert (status["phase"], status["reason"], status["message"]) == ("Failed", "DeadlineExceeded", "too long")
    assert conditions["Ready"]["reason"] == "PodCompleted"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 3
    assert status["containerStatuses"][0]["ready"] is False


# ---------------------------------------------------------------------------------------------
# The private control plane
# ---------------------------------------------------------------------------------------------

NODE = "kubelet-test-node"
NODE_IP = "10.77.0.10"
NODE_HOSTNAME = "ip-10-77-0-10.eu-west-1.compute.internal"
POD_IP = "10.77.0.51"
NAMESERVER = "10.96.0.10"


def _bin_dirs() -> tuple[Path, Path]:
    out = subprocess.run(
        [str(REPO / "scripts/build-k8s.sh"), "--print-bin-dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    kwok = subprocess.run(
        [str(REPO / "scripts/build-k8s.sh"), "--print-kwok-dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return Path(out), Path(kwok)


def _kwok_crd_dir() -> Path | None:
    candidates = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        gomodcache = subprocess.run(
            ["go", "env", "GOMODCACHE"], capture_output=True, text=True, check=True
        ).stdout.strip()
        candidates.append(Path(gomodcache))
    candidates.append(Path.home() / "go/pkg/mod")
    for base in candidates:
        crd = base / "sigs.k8s.io/kwok@v0.8.0/kustomize/crd/bases"
        if (crd / "kwok.x-k8s.io_logs.yaml").exists():
            return crd
    return None


def _free_ports(count: int) -> list[int]:
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def _kubeconfig(path: Path, server: str, pki: Path, cert: str, key: str) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {"name": "local", "cluster": {"server": server, "certificate-authority": str(pki / "ca.crt")}}
                ],
                "users": [{"name": "u", "user": {"client-certificate": str(pki / cert), "client-key": str(pki / key)}}],
                "contexts": [{"name": "local", "context": {"cluster": "local", "user": "u"}}],
                "current-context": "local",
            }
        )
    )
    path.chmod(0o600)


POD_DELETE_STAGE = """
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: test-pod-delete
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
      - key: '.metadata.deletionTimestamp'
        operator: 'Exists'
  next:
    finalizers:
      empty: true
    delete: true
"""


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager and kwok on free loopback ports."""

    def __init__(self, root: Path, bin_dir: Path, kwok_dir: Path, crd_dir: Path) -> None:
        self.root, self.bin_dir, self.kwok_dir, self.crd_dir = root, bin_dir, kwok_dir, crd_dir
        self.pki = root / "pki"
        self.procs: list[tuple[str, subprocess.Popen[bytes]]] = []
        etcd, etcd_peer, api, cm, kwok = _free_ports(5)
        self.etcd_port, self.etcd_peer, self.api_port, self.cm_port, self.kwok_port = etcd, etcd_peer, api, cm, kwok
        self.server = f"https://127.0.0.1:{api}"
        self.proxy = NodeProxy({kwok})

    def _start(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.root / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )
        log.close()
        self.procs.append((name, proc))

    def _wait(self, name: str, check: Callable[[], bool], seconds: float = 90) -> None:
        deadline = time.monotonic() + seconds
        proc = dict(self.procs).get(name)
        while time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                if check():
                    return
            if proc is not None and proc.poll() is not None:
                raise RuntimeError(f"{name} exited:\n{self.log_tail(name)}")
            time.sleep(0.3)
        raise RuntimeError(f"{name} not ready in {seconds}s:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 40) -> str:
        path = self.root / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def _get(self, url: str, *, client_cert: bool = True) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.pki / "ca.crt"))
        if client_cert:
            ctx.load_cert_chain(str(self.pki / "admin.crt"), str(self.pki / "admin.key"))
        with urllib.request.urlopen(url, context=ctx, timeout=3) as response:
            return response.status == 200

    def start(self) -> None:
        subprocess.run(
            [sys.executable, str(REPO / "tests/stack/pki.py"), str(self.pki)], check=True, capture_output=True
        )
        self.kubeconfig = self.root / "admin.kubeconfig"
        _kubeconfig(self.kubeconfig, self.server, self.pki, "admin.crt", "admin.key")
        cm_config = self.root / "cm.kubeconfig"
        _kubeconfig(cm_config, self.server, self.pki, "controller-manager.crt", "controller-manager.key")
        self.proxy.start()

        peer = f"http://127.0.0.1:{self.etcd_peer}"
        self._start("etcd", [
            str(self.bin_dir / "etcd"), "--name", "t", "--data-dir", str(self.root / "etcd"),
            "--listen-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--advertise-client-urls", f"http://127.0.0.1:{self.etcd_port}",
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", f"t={peer}",
            "--listen-metrics-urls", "", "--log-level", "warn",
        ])  # fmt: skip
        self._wait(
            "etcd", lambda: urllib.request.urlopen(f"http://127.0.0.1:{self.etcd_port}/health", timeout=2).status == 200
        )

        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # the API server reaches the nodes' kubelet port (kwok) through the node proxy
            "HTTPS_PROXY": self.proxy.url,
            "NO_PROXY": "127.0.0.1,localhost,10.96.0.0/16",
        }
        self._start("kube-apiserver", [
            str(self.bin_dir / "kube-apiserver"),
            "--etcd-servers", f"http://127.0.0.1:{self.etcd_port}",
            "--bind-address", "127.0.0.1", "--advertise-address", "127.0.0.1", "--secure-port", str(self.api_port),
            "--tls-cert-file", str(self.pki / "apiserver-chain.crt"),
            "--tls-private-key-file", str(self.pki / "apiserver.key"),
            "--client-ca-file", str(self.pki / "ca.crt"), "--authorization-mode", "RBAC",
            "--service-account-issuer", self.server,
            "--service-account-key-file", str(self.pki / "sa.pub"),
            "--service-account-signing-key-file", str(self.pki / "sa.key"),
            "--api-audiences", "https://kubernetes.default.svc,sts.amazonaws.com",
            "--service-cluster-ip-range", "10.96.0.0/16",
            "--kubelet-preferred-address-types", "InternalIP,Hostname",
            "--allow-privileged=true", "--profiling=false", "--enable-priority-and-fairness=false",
            "--cert-dir", str(self.pki),
        ], env)  # fmt: skip
        self._wait("kube-apiserver", lambda: self._get(f"{self.server}/readyz"), 120)

        self._start("kube-controller-manager", [
            str(self.bin_dir / "kube-controller-manager"),
            "--kubeconfig", str(cm_config), "--authentication-kubeconfig", str(cm_config),
            "--authorization-kubeconfig", str(cm_config),
            "--bind-address", "127.0.0.1", "--secure-port", str(self.cm_port), "--leader-elect=false",
            "--use-service-account-credentials=true",
            "--service-account-private-key-file", str(self.pki / "sa.key"), "--root-ca-file", str(self.pki / "ca.crt"),
            "--cluster-signing-cert-file", str(self.pki / "ca.crt"),
            "--cluster-signing-key-file", str(self.pki / "ca.key"),
            "--cluster-cidr", "10.244.0.0/16", "--service-cluster-ip-range", "10.96.0.0/16",
            "--cert-dir", str(self.root / "cm-serving"), "--profiling=false",
        ], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})  # fmt: skip
        self._wait(
            "kube-controller-manager",
            lambda: self._get(f"{self.server}/api/v1/namespaces/default/serviceaccounts/default"),
        )

        from kubernetes import client, config

        self.api_client = config.new_client_from_config(config_file=str(self.kubeconfig))
        self.core = client.CoreV1Api(self.api_client)
        self.batch = client.BatchV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        ext = client.ApiextensionsV1Api(self.api_client)
        for crd in ("logs",):
            ext.create_custom_resource_definition(
                yaml.safe_load((self.crd_dir / f"kwok.x-k8s.io_{crd}.yaml").read_text())
            )
        self._wait("kube-apiserver", lambda: self._crd_established("logs.kwok.x-k8s.io"))

        self.core.create_node(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE, "labels": {"type": "kwok"}}}
        )
        # kwok's node-initialize stage keeps the addresses only when both kinds are there
        addresses = [{"type": "InternalIP", "address": NODE_IP}, {"type": "Hostname", "address": NODE_HOSTNAME}]
        self.core.patch_node_status(NODE, {"status": {"addresses": addresses}})

        stages = self.root / "kwok-stages.yaml"
        stages.write_text(
            (self.kwok_dir / "stage/node/fast/node-initialize.yaml").read_text()
            + "\n---\n"
            + (self.kwok_dir / "stage/node/heartbeat/node-heartbeat.yaml").read_text()
            + "\n---\n"
            + POD_DELETE_STAGE
        )
        self._start("kwok", [
            str(self.kwok_dir / "bin/kwok"), "--kubeconfig", str(self.kubeconfig), "--config", str(stages),
            "--manage-single-node", NODE,
            "--node-port", str(self.kwok_port), "--server-address", f"127.0.0.1:{self.kwok_port}",
            "--enable-crds", "Logs",
        ], env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(self.root)})  # fmt: skip
        self._wait("kwok", self._node_ready)

    def _crd_established(self, name: str) -> bool:
        from kubernetes import client

        crd = client.ApiextensionsV1Api(self.api_client).read_custom_resource_definition(name)
        return any(c.type == "Established" and c.status == "True" for c in crd.status.conditions or [])

    def _node_ready(self) -> bool:
        node = self.core.read_node(NODE)
        ready = any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or [])
        addresses = [a.address for a in node.status.addresses or []]
        return ready and node.status.daemon_endpoints.kubelet_endpoint.port == self.kwok_port and NODE_IP in addresses

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for _, proc in reversed(self.procs):
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.proxy.close()


def _integration_prerequisites() -> tuple[Path, Path, Path]:
    if os.geteuid() != 0:
        pytest.skip("the kubelet stand-in mounts volumes in private mount namespaces: run as root")
    bin_dir, kwok_dir = _bin_dirs()
    missing = [
        str(p)
        for p in (
            bin_dir / "etcd",
            bin_dir / "kube-apiserver",
            bin_dir / "kube-controller-manager",
            kwok_dir / "bin/kwok",
        )
        if not os.access(p, os.X_OK)
    ]
    if missing:
        pytest.skip(f"control-plane binaries not built (scripts/build-k8s.sh): {', '.join(missing)}")
    crd_dir = _kwok_crd_dir()
    if crd_dir is None:
        pytest.skip("kwok v0.8.0 module source (its CRDs) not found in the Go module cache")
    return bin_dir, kwok_dir, crd_dir


@pytest.fixture(scope="module")
def plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    bin_dir, kwok_dir, crd_dir = _integration_prerequisites()
    cp = ControlPlane(tmp_path_factory.mktemp("control-plane"), bin_dir, kwok_dir, crd_dir)
    try:
        cp.start()
    except Exception:
        cp.stop()
        raise
    yield cp
    cp.stop()


@pytest.fixture(scope="module")
def node(plane: ControlPlane, tmp_path_factory: pytest.TempPathFactory) -> Iterator[kubelet.Dispatcher]:
    state = tmp_path_factory.mktemp("kubelet-state")
    runner = kubelet.PodRunner(plane.api_client, state, backoff=(0.5, 2.0), poll_seconds=0.5)
    dispatcher = kubelet.Dispatcher(
        runner,
        NODE,
        pod_ip=POD_IP,
        host_ip=NODE_IP,
        nameservers=[NAMESERVER],
        extra_env={"AWS_CA_BUNDLE": "/etc/ssl/certs/ca-certificates.crt"},
        interval=0.3,
    )
    dispatcher.start()
    yield dispatcher
    dispatcher.stop()
    assert dispatcher.errors == []
    assert runner.running() == []


# ---------------------------------------------------------------------------------------------
# Integration: Jobs run by the stand-in
# ---------------------------------------------------------------------------------------------

NS = "default"
# mount points of this session's pods that no host has: created for the pods, removed after them
RUN = uuid.uuid4().hex[:8]
ETC, OPT, SRV = (
    f"/etc/layered-kubelet-test-{RUN}",
    f"/opt/layered-kubelet-test-{RUN}",
    f"/srv/layered-kubelet-test-{RUN}",
)
SHARED = ("/var/run/secrets/eks.amazonaws.com", "/var/run/secrets/kubernetes.io")


def _held_by_others(path: str) -> bool:
    """Whether another runner on this host (the stack's) holds a shared mount point right now."""
    record = Path(kubelet.DEFAULT_HOST_PATHS_REGISTRY) / "host-paths.json"
    with contextlib.suppress(OSError, ValueError):
        holders = json.loads(record.read_text()).get(path, [])
        return any(not h.startswith(f"{os.getpid()}:") for h in holders)
    return False


@pytest.fixture(autouse=True)
def _host_left_as_found(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every integration test ends with the host's file system as it began (mount points removed)."""
    if "plane" not in request.fixturenames:
        yield
        return
    before = {p: os.path.lexists(p) for p in SHARED}
    yield

    def left() -> list[str]:
        out = [p for p in (ETC, OPT, SRV) if os.path.lexists(p)]
        return out + [p for p in SHARED if os.path.lexists(p) and not before[p] and not _held_by_others(p)]

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and left():
        time.sleep(0.2)
    assert left() == []
    record = Path(kubelet.DEFAULT_HOST_PATHS_REGISTRY) / "host-paths.json"
    if record.exists():
        holders = [h for hs in json.loads(record.read_text()).values() for h in hs]
        assert not [h for h in holders if h.startswith(f"{os.getpid()}:")]


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


def _job(plane: ControlPlane, name: str, containers: list[dict], **pod_spec: Any) -> dict:
    spec = {"nodeName": NODE, "restartPolicy": "Never", "containers": containers, **pod_spec}
    body = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"test": name}}, "spec": spec}},
    }
    return plane.batch.create_namespaced_job(NS, body).to_dict()


def _until(what: str, check: Callable[[], Any], seconds: float = 60, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


def _job_condition(plane: ControlPlane, name: str, seconds: float = 60) -> str:
    def done() -> str | None:
        job = plane.batch.read_namespaced_job_status(name, NS)
        for cond in job.status.conditions or []:
            if cond.type in ("Complete", "Failed") and cond.status == "True":
                return cond.type
        return None

    return _until(f"job {name} to finish", done, seconds)


def _pods(plane: ControlPlane, job: str) -> list[dict]:
    pods = plane.core.list_namespaced_pod(NS, label_selector=f"batch.kubernetes.io/job-name={job}")
    return [plane.api_client.sanitize_for_serialization(p) for p in pods.items]


def _pod(plane: ControlPlane, job: str) -> dict:
    return _until(f"a pod of job {job}", lambda: (_pods(plane, job) or [None])[0], 30)


def _describe(plane: ControlPlane, job: str) -> str:
    """The job's pods' container states and logs, for assertion messages."""
    out = []
    for pod in _pods(plane, job):
        status = pod.get("status", {})
        out.append(
            f"pod {pod['metadata']['name']}: {status.get('phase')} "
            f"{status.get('reason', '')} {status.get('message', '')}"
        )
        for cs in status.get("initContainerStatuses", []) + status.get("containerStatuses", []):
            out.append(f"  {cs['name']}: {json.dumps(cs.get('state'))}")
            with contextlib.suppress(Exception):
                out.append("  log: " + _log(plane, pod["metadata"]["name"], cs["name"]).replace("\n", "\n       "))
    return "\n".join(out)


class PhaseRecorder:
    """The phases a pod is seen in, polled from the API server."""

    def __init__(self, plane: ControlPlane, job: str) -> None:
        self.phases: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, args=(plane, job), daemon=True)
        self._thread.start()

    def _poll(self, plane: ControlPlane, job: str) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(Exception):
                for pod in _pods(plane, job):
                    phase = pod.get("status", {}).get("phase")
                    if phase and (not self.phases or self.phases[-1] != phase):
                        self.phases.append(phase)
            time.sleep(0.1)

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join()
        return self.phases


def _jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def _log(plane: ControlPlane, pod: str, container: str, **kwargs: Any) -> str:
    return plane.core.read_namespaced_pod_log(pod, NS, container=container, **kwargs)


def _lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


PROBE_SCRIPT = r"""
set -u
echo "hello from $(hostname)"
echo "aud_payload=$(cut -d. -f2 /var/run/secrets/eks.amazonaws.com/serviceaccount/token)"
echo "api_payload=$(cut -d. -f2 /var/run/secrets/kubernetes.io/serviceaccount/token)"
echo "namespace=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace)"
echo "ca=$(head -n 1 /var/run/secrets/kubernetes.io/serviceaccount/ca.crt)"
echo "config_host=$(cat $ETC/conf/host)"
echo "settings=$(cat $OPT/settings.ini)"
echo "secret_mode=$(stat -c %a "$(readlink -f $SRV/password)")"
echo "secret=$(cat $SRV/password)"
if touch $ETC/new 2>/dev/null; then echo "config_ro=no"; else echo "config_ro=yes"; fi
echo scratch > /scratch/file && echo "scratch=$(cat /scratch/file)"
echo "cwd=$(pwd)"
echo "env_url=$DB_URL"
echo "env_escaped=$ESCAPED"
echo "env_pass=$DB_PASSWORD"
echo "env_from=$CFG_host"
echo "env_pod=$POD_NAME/$POD_NAMESPACE/$POD_UID/$POD_IP/$NODE_NAME/$APP_LABEL"
echo "env_ca_bundle=$AWS_CA_BUNDLE"
echo "env_home=$HOME"
echo "home_empty=$( [ -z "$(ls -A "$HOME")" ] && echo yes || echo no )"
echo "env_k8s=$KUBERNETES_SERVICE_HOST"
echo "resolv=$(grep nameserver /etc/resolv.conf | tr '\n' ' ')"
echo "search=$(grep search /etc/resolv.conf)"
echo "hosts=$(grep "$POD_NAME" /etc/hosts)"
echo "args=$1 $2"
sleep 2
"""


def test_job_runs_with_volumes_env_tokens_and_logs(
    plane: ControlPlane, node: kubelet.Dispatcher, tmp_path: Path
) -> None:
    name = _name("probe")
    plane.core.create_namespaced_config_map(
        NS, {"metadata": {"name": name}, "data": {"host": "db.example", "settings.ini": "[db]\nport=5432"}}
    )
    plane.core.create_namespaced_secret(NS, {"metadata": {"name": name}, "stringData": {"password": "s3cr3t"}})
    recorder = PhaseRecorder(plane, name)
    try:
        _job(
            plane,
            name,
            [
                {
                    "name": "probe",
                    "image": "public.ecr.aws/docker/library/busybox:1.36",
                    "command": ["sh", "-c", PROBE_SCRIPT, "probe"],
                    "args": ["$(POD_NAME)", "$$(POD_NAME)"],
                    "workingDir": "/scratch",
                    "env": [
                        {"name": "ETC", "value": ETC},
                        {"name": "OPT", "value": OPT},
                        {"name": "SRV", "value": SRV},
                        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                        {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                        {"name": "POD_UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
                        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                        {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                        {"name": "APP_LABEL", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['test']"}}},
                        {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": name, "key": "password"}}},
                        {"name": "DB_URL", "value": "postgres://app@$(CFG_host):5432/$(POD_NAMESPACE)"},
                        {"name": "ESCAPED", "value": "$$(POD_NAME)"},
                    ],
                    "envFrom": [{"configMapRef": {"name": name}, "prefix": "CFG_"}],
                    "volumeMounts": [
                        irsa_pod.mount(),
                        {"name": "config", "mountPath": ETC},
                        {
                            "name": "settings",
                            "mountPath": f"{OPT}/settings.ini",
                            "subPath": "settings.ini",
                        },
                        {"name": "secret", "mountPath": SRV},
                        {"name": "scratch", "mountPath": "/scratch"},
                    ],
                }
            ],
            volumes=[
                irsa_pod.volume(),
                {"name": "config", "configMap": {"name": name, "items": [{"key": "host", "path": "conf/host"}]}},
                {"name": "settings", "configMap": {"name": name}},
                {"name": "secret", "secret": {"secretName": name, "defaultMode": 0o440}},
                {"name": "scratch", "emptyDir": {}},
            ],
        )
        assert _job_condition(plane, name) == "Complete", _describe(plane, name)
    finally:
        phases = recorder.stop()
    assert phases[-1] == "Succeeded"
    assert "Running" in phases and phases.index("Running") < phases.index("Succeeded")

    pod = _pod(plane, name)
    meta, status = pod["metadata"], pod["status"]
    assert status["phase"] == "Succeeded"
    assert (status["podIP"], status["hostIP"]) == (POD_IP, NODE_IP)
    assert status["podIPs"] == [{"ip": POD_IP}] and status["hostIPs"] == [{"ip": NODE_IP}]
    assert status["startTime"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Initialized"] == "True" and conditions["PodScheduled"] == "True"
    assert conditions["Ready"] == "False" and conditions["ContainersReady"] == "False"
    (cs,) = status["containerStatuses"]
    assert cs["name"] == "probe"
    assert cs["image"] == "public.ecr.aws/docker/library/busybox:1.36"
    assert cs["imageID"].startswith("public.ecr.aws/docker/library/busybox@sha256:")
    assert cs["containerID"].startswith("host://")
    terminated = cs["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert terminated["startedAt"] and terminated["finishedAt"]

    out = _log(plane, meta["name"], "probe")
    values = _lines(out)
    assert f"hello from {meta['name']}" in out
    aud = _jwt_claims("x." + values["aud_payload"] + ".y")
    assert aud["aud"] == ["sts.amazonaws.com"]
    assert aud["kubernetes.io"]["pod"] == {"name": meta["name"], "uid": meta["uid"]}
    assert aud["kubernetes.io"]["serviceaccount"]["name"] == "default"
    assert aud["exp"] - aud["iat"] == 86400
    api = _jwt_claims("x." + values["api_payload"] + ".y")
    assert api["aud"] == ["https://kubernetes.default.svc", "sts.amazonaws.com"]
    assert api["kubernetes.io"]["pod"]["uid"] == meta["uid"]
    assert values["namespace"] == NS
    assert values["ca"] == "-----BEGIN CERTIFICATE-----"
    assert values["config_host"] == "db.example"
    assert values["settings"] == "[db]"
    assert values["secret_mode"] == "440"
    assert values["secret"] == "s3cr3t"
    assert values["config_ro"] == "yes"
    assert values["scratch"] == "scratch"
    assert values["cwd"] == "/scratch"
    assert values["env_url"] == f"postgres://app@db.example:5432/{NS}"
    assert values["env_escaped"] == "$(POD_NAME)"
    assert values["env_pass"] == "s3cr3t"
    assert values["env_from"] == "db.example"
    assert values["env_pod"] == f"{meta['name']}/{NS}/{meta['uid']}/{POD_IP}/{NODE}/{name}"
    assert values["env_ca_bundle"] == "/etc/ssl/certs/ca-certificates.crt"
    assert values["env_home"] == f"/tmp/layered-kubelet-{meta['uid']}-probe"
    assert values["home_empty"] == "yes"
    assert not os.path.exists(values["env_home"])
    assert values["env_k8s"] == "10.96.0.1"
    assert values["resolv"].strip() == f"nameserver {NAMESERVER}"
    assert values["search"] == "search default.svc.cluster.local svc.cluster.local cluster.local"
    assert values["hosts"] == f"{POD_IP}\t{meta['name']}"
    assert values["args"] == f"{meta['name']} $(POD_NAME)"
    # the secret's value went to the program, not to the stand-in's records
    state = node.runner.state_dir
    assert not (state / "pods" / meta["uid"]).exists()
    log_file = state / "logs" / f"{NS}_{meta['name']}_{meta['uid']}" / "probe" / "0.log"
    assert kubelet.parse_cri_log(log_file.read_bytes())[0] == ("stdout", f"hello from {meta['name']}".encode())
    # kwok knows where the logs are
    logs = plane.custom.get_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", NS, "logs", meta["name"])
    assert logs["spec"]["logs"] == [{"containers": ["probe"], "logsFile": str(log_file)}]
    assert logs["metadata"]["ownerReferences"][0]["uid"] == meta["uid"]


def test_failed_job_reports_exit_code_and_log_tail(
    plane: ControlPlane, node: kubelet.Dispatcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="layered.stack.kubelet")
    name = _name("fails")
    _job(
        plane,
        name,
        [
            {
                "name": "main",
                "image": "debian:12",
                "command": ["sh", "-c", "echo hello; echo 'psql: connection refused' >&2; exit 3"],
                "terminationMessagePolicy": "FallbackToLogsOnError",
            }
        ],
    )
    assert _job_condition(plane, name) == "Failed", _describe(plane, name)
    job = plane.batch.read_namespaced_job_status(name, NS)
    failed = next(c for c in job.status.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded"
    assert job.status.failed == 1
    pod = _pod(plane, name)
    assert pod["status"]["phase"] == "Failed"
    terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (3, "Error")
    # stdout and stderr are separate pipes, as under containerd: lines of one stream keep their
    # order, lines of the two streams interleave in the order they were read
    expected = ["hello", "psql: connection refused"]
    assert sorted(terminated["message"].split("\n")) == expected
    assert sorted(_log(plane, pod["metadata"]["name"], "main").splitlines()) == expected
    # the status is written when it changes, not on every turn of the loop
    writes = [
        r for r in caplog.records if "status written" in r.getMessage() and pod["metadata"]["name"] in r.getMessage()
    ]
    assert [w.getMessage().rsplit(": ", 1)[1] for w in writes] == ["Pending", "Running", "Failed"]


def test_restarts_count_against_the_backoff_limit(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    """OnFailure with backoffLimit 0: the Job controller fails the Job at the first restart and deletes the pod."""
    name = _name("restarts")
    _job(
        plane,
        name,
        [{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo run; exit 1"]}],
        restartPolicy="OnFailure",
    )
    pod = _pod(plane, name)
    assert _job_condition(plane, name) == "Failed", _describe(plane, name)
    job = plane.batch.read_namespaced_job_status(name, NS)
    assert next(c for c in job.status.conditions if c.type == "Failed").reason == "BackoffLimitExceeded"
    # the stand-in stopped the pod the Job controller deleted, and kwok removed it
    _until("the pod to be deleted", lambda: not _pods(plane, name), 30)
    _until("the run to end", lambda: (NS, pod["metadata"]["name"]) not in node.runner.running(), 20)


def test_on_failure_job_completes_after_a_restart(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("retry-ok")
    script = "if [ -f /work/marker ]; then echo second run; exit 0; fi; touch /work/marker; echo first run; exit 1"
    container = {
        "name": "main",
        "image": "busybox",
        "command": ["sh", "-c", script],
        "volumeMounts": [{"name": "work", "mountPath": "/work"}],
    }
    spec = {
        "nodeName": NODE,
        "restartPolicy": "OnFailure",
        "containers": [container],
        "volumes": [{"name": "work", "emptyDir": {}}],
    }
    plane.batch.create_namespaced_job(
        NS,
        {"metadata": {"name": name}, "spec": {"backoffLimit": 3, "template": {"spec": spec}}},
    )
    assert _job_condition(plane, name) == "Complete", _describe(plane, name)
    pod = _pod(plane, name)
    cs = pod["status"]["containerStatuses"][0]
    assert pod["status"]["phase"] == "Succeeded"
    assert cs["restartCount"] == 1
    assert cs["lastState"]["terminated"]["exitCode"] == 1
    assert cs["state"]["terminated"]["exitCode"] == 0
    assert _log(plane, pod["metadata"]["name"], "main") == "second run\n"
    assert _log(plane, pod["metadata"]["name"], "main", previous=True) == "first run\n"


def test_unknown_image_fails_clearly(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("nginx")
    _job(
        plane,
        name,
        [
            {"name": "web", "image": "nginx:1.27", "command": ["nginx"]},
            {"name": "ok", "image": "busybox", "command": ["true"]},
        ],
    )
    assert _job_condition(plane, name) == "Failed", _describe(plane, name)
    pod = _pod(plane, name)
    status = pod["status"]
    assert status["phase"] == "Failed"
    assert status["reason"] == "ErrImagePull"
    assert 'cannot run image "nginx:1.27"' in status["message"]
    web, ok = status["containerStatuses"]
    assert web["state"]["terminated"]["reason"] == "ErrImagePull"
    assert 'cannot run image "nginx:1.27"' in web["state"]["terminated"]["message"]
    assert ok["state"]["terminated"]["reason"] == "ContainerStatusUnknown"


def test_postgres_image_without_command_fails_clearly(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("pgserver")
    _job(plane, name, [{"name": "db", "image": "postgres:16"}])
    assert _job_condition(plane, name) == "Failed", _describe(plane, name)
    status = _pod(plane, name)["status"]
    assert status["reason"] == "CreateContainerError"
    assert "does not run" in status["containerStatuses"][0]["state"]["terminated"]["message"]


def test_psql_runs_for_a_postgres_image(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    if shutil.which("psql") is None:
        pytest.skip("psql (Debian's postgresql-client) is not installed")
    name = _name("psql")
    _job(
        plane,
        name,
        [{"name": "psql", "image": "public.ecr.aws/docker/library/postgres:16", "args": ["psql", "--version"]}],
    )
    assert _job_condition(plane, name) == "Complete", _describe(plane, name)
    assert _log(plane, _pod(plane, name)["metadata"]["name"], "psql").startswith("psql (PostgreSQL)")


def test_aws_cli_image_runs_the_host_aws(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    if not os.access(node.runner.programs["aws"], os.X_OK):
        pytest.skip(f"the AWS CLI is not installed in {kubelet.DEFAULT_AWSCLI_VENV}")
    name = _name("awscli")
    containers = [
        {"name": "version", "image": "amazon/aws-cli:2.17.0", "args": ["--version"]},
        # the host's AWS configuration stays out of the pod: HOME is the container's own
        {"name": "config", "image": "public.ecr.aws/aws-cli/aws-cli", "args": ["configure", "list"]},
    ]
    _job(plane, name, containers)
    assert _job_condition(plane, name) == "Complete", _describe(plane, name)
    pod = _pod(plane, name)["metadata"]["name"]
    assert _log(plane, pod, "version").startswith("aws-cli/")
    access_key = next(line for line in _log(plane, pod, "config").splitlines() if "access_key" in line)
    assert "<not set>" in access_key


def test_missing_program_is_a_start_error(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("noprog")
    _job(plane, name, [{"name": "c", "image": "debian", "command": ["no-such-program-here"]}])
    assert _job_condition(plane, name) == "Failed", _describe(plane, name)
    terminated = _pod(plane, name)["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (128, "StartError")
    assert 'exec: "no-such-program-here": executable file not found in $PATH' in terminated["message"]


def test_active_deadline_kills_the_pod(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("deadline")
    started = time.monotonic()
    _job(
        plane,
        name,
        [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}],
        activeDeadlineSeconds=3,
        terminationGracePeriodSeconds=1,
    )
    assert _job_condition(plane, name) == "Failed", _describe(plane, name)
    assert time.monotonic() - started < 30
    status = _pod(plane, name)["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    terminated = status["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] in (137, 143)


def test_init_containers_run_first_in_order(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("init")
    mount = [{"name": "work", "mountPath": "/work"}]
    _job(
        plane,
        name,
        [
            {
                "name": "main",
                "image": "busybox",
                "command": ["sh", "-c", "cat /work/order; pwd"],
                "workingDir": f"{OPT}/wd",
                "volumeMounts": mount,
            }
        ],
        initContainers=[
            {
                "name": "one",
                "image": "busybox",
                "command": ["sh", "-c", "echo one >> /work/order"],
                "volumeMounts": mount,
            },
            {
                "name": "two",
                "image": "busybox",
                "command": ["sh", "-c", "sleep 1; echo two >> /work/order"],
                "volumeMounts": mount,
            },
        ],
        volumes=[{"name": "work", "emptyDir": {}}],
    )
    assert _job_condition(plane, name) == "Complete", _describe(plane, name)
    pod = _pod(plane, name)
    assert [s["state"]["terminated"]["exitCode"] for s in pod["status"]["initContainerStatuses"]] == [0, 0]
    assert [s["ready"] for s in pod["status"]["initContainerStatuses"]] == [True, True]
    # the working directory did not exist: created for the container, removed after it
    assert _log(plane, pod["metadata"]["name"], "main") == f"one\ntwo\n{OPT}/wd\n"


def test_failing_init_container_fails_the_pod(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("initfail")
    _job(
        plane,
        name,
        [{"name": "main", "image": "busybox", "command": ["sh", "-c", "echo must not run"]}],
        initContainers=[{"name": "check", "image": "busybox", "command": ["sh", "-c", "exit 7"]}],
    )
    assert _job_condition(plane, name) == "Failed", _describe(plane, name)
    status = _pod(plane, name)["status"]
    assert status["phase"] == "Failed"
    assert status["initContainerStatuses"][0]["state"]["terminated"]["exitCode"] == 7
    assert "terminated" not in status["containerStatuses"][0]["state"] or (
        status["containerStatuses"][0]["state"]["terminated"]["reason"] == "ContainerStatusUnknown"
    )
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Initialized"]["status"] == "False"


def test_missing_configmap_waits_then_runs(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("later")
    _job(
        plane,
        name,
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["cat", f"{ETC}/value"],
                "volumeMounts": [{"name": "cfg", "mountPath": ETC}],
            }
        ],
        volumes=[{"name": "cfg", "configMap": {"name": name}}],
    )
    pod_name = _pod(plane, name)["metadata"]["name"]

    def failed_mount() -> bool:
        events = plane.core.list_namespaced_event(NS, field_selector=f"involvedObject.name={pod_name}").items
        return any(e.reason == "FailedMount" and f'configmap "{name}" not found' in e.message for e in events)

    _until("a FailedMount event", failed_mount, 30)
    pod = _pod(plane, name)
    assert pod["status"]["phase"] == "Pending"
    assert pod["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] == "ContainerCreating"
    plane.core.create_namespaced_config_map(NS, {"metadata": {"name": name}, "data": {"value": "arrived"}})
    assert _job_condition(plane, name) == "Complete", _describe(plane, name)
    assert _log(plane, pod_name, "c") == "arrived\n"


def test_deleting_the_job_stops_the_pod(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("stopme")
    script = "trap 'echo got TERM; exit 143' TERM; echo waiting; while true; do sleep 0.2; done"
    _job(
        plane,
        name,
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "cfg", "mountPath": f"{ETC}/deep/er"}],
            }
        ],
        volumes=[{"name": "cfg", "emptyDir": {}}],
        terminationGracePeriodSeconds=30,
    )
    pod = _until("the pod to run", lambda: (p := _pod(plane, name))["status"].get("phase") == "Running" and p, 30)
    pod_name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    pid = int(pod["status"]["containerStatuses"][0]["containerID"].removeprefix("host://"))
    assert os.path.isdir(f"{ETC}/deep/er")
    os.kill(pid, 0)
    plane.batch.delete_namespaced_job(name, NS, propagation_policy="Background")

    def process_gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    _until("the process to end", process_gone, 20)
    _until("the pod to be deleted", lambda: not any(p["metadata"]["uid"] == uid for p in _pods(plane, name)), 30)
    _until("the run to end", lambda: (NS, pod_name) not in node.runner.running(), 20)
    assert not os.path.exists(ETC)
    with pytest.raises(ApiException) as info:
        plane.custom.get_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", NS, "logs", pod_name)
    assert getattr(info.value, "status", None) == 404
    assert not (node.runner.state_dir / "logs" / f"{NS}_{pod_name}_{uid}").exists()


# ---------------------------------------------------------------------------------------------
# Integration: the runner used directly (bare pods)
# ---------------------------------------------------------------------------------------------


def _bare_pod(plane: ControlPlane, name: str, containers: list[dict], **spec: Any) -> dict:
    body = {
        "metadata": {"name": name, "namespace": NS},
        "spec": {"nodeName": NODE, "restartPolicy": "Never", "containers": containers, **spec},
    }
    plane.core.create_namespaced_pod(NS, body)
    return plane.api_client.sanitize_for_serialization(plane.core.read_namespaced_pod(name, NS))


def _run_in_thread(runner: kubelet.PodRunner, pod: dict, **kwargs: Any) -> threading.Thread:
    args = {"pod_ip": POD_IP, "host_ip": NODE_IP, "netns": None, "nameservers": [NAMESERVER], "extra_env": {}, **kwargs}
    thread = threading.Thread(target=runner.run, args=(pod,), kwargs=args, daemon=True)
    thread.start()
    return thread


def test_pod_runs_in_the_given_network_namespace(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "120"], start_new_session=True)
    try:
        netns = f"/proc/{holder.pid}/ns/net"
        _until("the namespace holder", lambda: os.readlink(netns) != os.readlink("/proc/self/ns/net"), 10, 0.05)
        pod = _bare_pod(
            plane,
            _name("netns"),
            [
                {
                    "name": "c",
                    "image": "busybox",
                    "command": ["sh", "-c", "ls /sys/class/net; readlink /proc/self/ns/net"],
                }
            ],
        )
        _run_in_thread(node.runner, pod, netns=netns).join(60)
        name = pod["metadata"]["name"]
        status = plane.core.read_namespaced_pod(name, NS).status
        assert status.phase == "Succeeded"
        assert _log(plane, name, "c").splitlines() == ["lo", os.readlink(netns)]
    finally:
        holder.kill()
        holder.wait()


def test_projected_tokens_are_renewed(plane: ControlPlane, tmp_path: Path) -> None:
    runner = kubelet.PodRunner(plane.api_client, tmp_path / "state", token_refresh_fraction=0.002, poll_seconds=0.5)
    token = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
    script = f'a=$(cat {token}); sleep 3; b=$(cat {token}); [ "$a" != "$b" ] && echo renewed'
    pod = _bare_pod(
        plane,
        _name("renew"),
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", script],
                "volumeMounts": [{"name": "t", "mountPath": "/var/run/secrets/eks.amazonaws.com/serviceaccount"}],
            }
        ],
        volumes=[
            {
                "name": "t",
                "projected": {
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": "sts.amazonaws.com",
                                "expirationSeconds": 600,
                                "path": "token",
                            }
                        }
                    ]
                },
            }
        ],
    )
    _run_in_thread(runner, pod).join(60)
    name = pod["metadata"]["name"]
    assert plane.core.read_namespaced_pod(name, NS).status.phase == "Succeeded"
    assert _log(plane, name, "c") == "renewed\n"
    assert not os.path.lexists("/var/run/secrets/eks.amazonaws.com")


def test_pod_runs_as_the_given_user(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("user")
    plane.core.create_namespaced_secret(NS, {"metadata": {"name": name}, "stringData": {"k": "v"}})
    script = f"id -u; id -g; id -G; cat {SRV}/k; echo; touch /tmp/ok && echo tmp-writable"
    pod = _bare_pod(
        plane,
        name,
        [
            {
                "name": "c",
                "image": "busybox",
                "command": ["sh", "-c", script],
                "securityContext": {"runAsUser": 1234},
                "volumeMounts": [{"name": "s", "mountPath": SRV}],
            }
        ],
        securityContext={"runAsGroup": 3000, "fsGroup": 2000, "supplementalGroups": [4000]},
        volumes=[{"name": "s", "secret": {"secretName": name, "defaultMode": 0o400}}],
    )
    _run_in_thread(node.runner, pod).join(60)
    status = plane.core.read_namespaced_pod(name, NS).status
    assert status.phase == "Succeeded", _log(plane, name, "c")
    lines = _log(plane, name, "c").splitlines()
    assert lines[0] == "1234"
    assert lines[1] == "3000"
    assert set(lines[2].split()) == {"3000", "4000", "2000"}
    assert lines[3] == "v"
    assert lines[4] == "tmp-writable"


def test_run_as_non_root_without_user_is_refused(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("nonroot")
    pod = _bare_pod(
        plane, name, [{"name": "c", "image": "busybox", "command": ["true"], "securityContext": {"runAsNonRoot": True}}]
    )
    thread = _run_in_thread(node.runner, pod)
    waiting = _until(
        "CreateContainerConfigError",
        lambda: (
            (s := plane.core.read_namespaced_pod(name, NS).status.container_statuses)
            and s[0].state.waiting
            and s[0].state.waiting.reason == "CreateContainerConfigError"
            and s[0].state.waiting
        ),
        30,
    )
    assert waiting.message == "container has runAsNonRoot and image will run as root"
    plane.core.delete_namespaced_pod(name, NS)
    thread.join(30)
    assert not thread.is_alive()


def test_finalize_deletion_deletes_the_terminating_pod(plane: ControlPlane, tmp_path: Path) -> None:
    """Without kwok's pod-delete stage (a node kwok does not manage), the stand-in deletes what it stopped."""
    runner = kubelet.PodRunner(plane.api_client, tmp_path / "state", finalize_deletion=True, poll_seconds=0.3)
    name = _name("finalize")
    pod = _bare_pod(plane, name, [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}], nodeName="unmanaged")
    thread = _run_in_thread(runner, pod)
    _until("the pod to run", lambda: plane.core.read_namespaced_pod(name, NS).status.phase == "Running", 30)
    plane.core.delete_namespaced_pod(name, NS, grace_period_seconds=30)
    thread.join(30)
    assert not thread.is_alive()
    with pytest.raises(ApiException) as info:
        plane.core.read_namespaced_pod(name, NS)
    assert info.value.status == 404


def test_stop_ends_a_running_pod(plane: ControlPlane, node: kubelet.Dispatcher) -> None:
    name = _name("stop")
    pod = _bare_pod(plane, name, [{"name": "c", "image": "busybox", "command": ["sleep", "300"]}])
    thread = _run_in_thread(node.runner, pod)
    running = _until(
        "the pod to run",
        lambda: (p := plane.core.read_namespaced_pod(name, NS)).status.phase == "Running" and p,
        30,
    )
    pid = int(running.status.container_statuses[0].container_id.removeprefix("host://"))
    assert node.runner.stop(NS, name) is True
    thread.join(30)
    assert not thread.is_alive()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    status = plane.core.read_namespaced_pod(name, NS).status
    assert status.phase == "Failed"
    assert status.container_statuses[0].state.terminated.exit_code in (137, 143)
    assert node.runner.stop(NS, name) is False
    plane.core.delete_namespaced_pod(name, NS)
