"""The local stack's kubelet stand-in for the pods of Jobs.

In the stack, kwok keeps the fake nodes Ready and makes ordinary pods Running
without running anything. The pods of Jobs (label ``batch.kubernetes.io/job-name``)
must really run their program, so kwok leaves them alone and this module plays
the kubelet for them: it runs each container's command as a host process, with
the host's programs standing in for the ones the image carries (see
``KNOWN_IMAGES``), and reports to the API server what a kubelet reports.

``PodRunner(api_client, state_dir)`` is the library; its ``run(pod, ...)``
blocks, in the caller's thread, until the pod ends or is deleted:

* status through the ``pods/status`` subresource (read, change, replace with
  the resourceVersion read; conflicts are retried; written only when it
  changes): ``Pending`` with containers waiting in ``ContainerCreating``
  (``PodInitializing`` when there are init containers), then ``Running`` (conditions,
  pod/host IPs, start time, container states with ``host://<pid>`` IDs), then
  ``Succeeded`` or ``Failed`` with each container's exit code, reason and, for
  ``terminationMessagePolicy: FallbackToLogsOnError``, the tail of its log.
  Init containers run one after the other, then the containers together;
  ``restartPolicy`` ``OnFailure``/``Always`` restarts a container in the same
  pod with a short back-off; ``activeDeadlineSeconds`` ends the pod with
  reason ``DeadlineExceeded``. The Job controller reads these statuses as it
  reads a kubelet's;
* command and environment as the kubelet builds them (``$(VAR)`` expansion,
  ``env``/``envFrom`` from values, ConfigMaps, Secrets and the downward API,
  service variables of ``default/kubernetes``, ``extra_env`` for what the
  image would set; ``PATH`` with the image's host programs first, an empty
  ``HOME`` of the container's own, ``HOSTNAME``); ``runAsUser``,
  ``runAsGroup``, ``supplementalGroups``, ``fsGroup``, ``runAsNonRoot``; the
  image's entrypoint comes from ``KNOWN_IMAGES``, and a container whose image
  is not there is not run (pod ``Failed``, reason ``ErrImagePull``);
* volumes (``configMap``, ``secret``, ``downwardAPI``, ``emptyDir``,
  ``hostPath``, ``projected`` with ``serviceAccountToken`` from the
  TokenRequest API, bound to the pod) written under
  ``<state_dir>/pods/<uid>/volumes`` the way the kubelet's atomic writer lays
  them out (``..data`` symlink), and bind-mounted at their mount paths inside a
  private mount namespace of the pod's processes (kubelet_launcher.py), with
  generated ``/etc/resolv.conf`` and ``/etc/hosts``, in the pod's network
  namespace when one is given. Mount points missing on the host are
  created, counted across runners (``HostPaths``), and removed again when the
  last pod using them ends. Projected tokens are renewed at 80 % of their
  lifetime;
* logs in the CRI format at
  ``<state_dir>/logs/<namespace>_<pod>_<uid>/<container>/<restart>.log``,
  published to kwok's kubelet server through a ``Logs`` object
  (``kwok.x-k8s.io/v1alpha1``, owned by the pod), so that the API server's
  ``pods/log`` (``kubectl logs``, also ``--previous``) reads them; they stay
  after the pod ended, until ``forget()`` once it is deleted;
* deletion (deletionTimestamp, the pod gone, or ``stop()``): SIGTERM, at most
  ``max_grace_seconds``, SIGKILL, a last status if the pod is still there,
  volumes and mount points removed.

``Dispatcher``/``main()`` run the stand-in for one node by hand: they poll the
pods bound to the node that carry the Job label and run each in a thread, in
the host's network namespace unless told otherwise.

Not done: probes, lifecycle hooks, sidecar (restartable init) containers,
``terminationMessagePath`` files, ``resourceFieldRef``, volumes other than the
ones above, image pulls of any kind; ConfigMap and Secret volumes are written
once (projected tokens are renewed). ``kubectl logs -f`` does not end when the
container ends (kwok's server always takes the container for running).
"""

from __future__ import annotations

import argparse
import base64
import collections
import contextlib
import copy
import datetime
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import secrets as random_tokens
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

LOG = logging.getLogger("layered.stack.kubelet")

LAUNCHER = Path(__file__).resolve().parent / "kubelet_launcher.py"
# the program of the stack's own test image localhost/layered/jdbc-iam-probe (`make jdbc-probe` builds its jar)
JDBC_IAM_PROBE = Path(__file__).resolve().parents[1] / "jdbc_probe" / "jdbc-iam-probe"
JOB_LABEL = "batch.kubernetes.io/job-name"
FIELD_MANAGER = "layered-stack-kubelet"
KWOK_GROUP, KWOK_VERSION, KWOK_LOGS = "kwok.x-k8s.io", "v1alpha1", "logs"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# where `make setup` installs the AWS CLI (its own virtualenv, apart from the project's)
# (as root outside root's home, so that containers running as other users can execute it)
DEFAULT_AWSCLI_VENV = (
    Path("/var/cache") if os.geteuid() == 0 else Path(os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache")))
) / "layered-eks-rds/awscli-venv"
# kubelet: FallbackToLogsOnError keeps the last 80 lines, at most 2 KiB
TERMINATION_LOG_LINES = 80
TERMINATION_LOG_BYTES = 2048
CRI_MAX_LINE = 16 * 1024
DEADLINE_MESSAGE = "Pod was active on the node longer than the specified deadline"


# --------------------------------------------------------------------------------------------------
# The images the stack can run
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageRule:
    """How the stack runs the containers of one image.

    ``entrypoint``/``cmd`` are the image's ENTRYPOINT and CMD, with the host's
    programs in place of the image's. ``server`` names the server an image's
    entrypoint starts when no other program is asked for (the postgres
    images): the stack does not run servers, so such containers need a
    command (or arguments naming another program, which the image's
    entrypoint script would run).
    """

    title: str
    repositories: tuple[str, ...]
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    server: str | None = None
    programs: tuple[str, ...] = ()


# The one table of images. Repositories are normalized (registry/path, no tag
# or digest); any tag or digest of them is accepted. To run another image,
# add it here with the programs it needs (installed on the host by `make setup`).
KNOWN_IMAGES: tuple[ImageRule, ...] = (
    ImageRule(
        title="AWS CLI",
        repositories=("docker.io/amazon/aws-cli", "public.ecr.aws/aws-cli/aws-cli"),
        entrypoint=("aws",),
        programs=("aws",),
    ),
    ImageRule(
        title="PostgreSQL",
        repositories=(
            "docker.io/library/postgres",
            "public.ecr.aws/docker/library/postgres",
            "mirror.gcr.io/library/postgres",
        ),
        cmd=("postgres",),
        server="postgres",
        programs=("psql", "pg_isready"),
    ),
    ImageRule(
        title="BusyBox",
        repositories=("docker.io/library/busybox", "public.ecr.aws/docker/library/busybox"),
        cmd=("sh",),
    ),
    ImageRule(
        title="Debian",
        repositories=("docker.io/library/debian", "public.ecr.aws/docker/library/debian"),
        cmd=("bash",),
    ),
    ImageRule(
        title="Ubuntu",
        repositories=(
            "docker.io/library/ubuntu",
            "public.ecr.aws/docker/library/ubuntu",
            "public.ecr.aws/ubuntu/ubuntu",
        ),
        cmd=("/bin/bash",),
    ),
    ImageRule(
        title="Alpine",
        repositories=("docker.io/library/alpine", "public.ecr.aws/docker/library/alpine"),
        cmd=("/bin/sh",),
    ),
    # the stack's own: a JVM that connects through the AWS Advanced JDBC Wrapper's IAM plugin (tests/jdbc_probe)
    ImageRule(
        title="JDBC IAM probe",
        repositories=("localhost/layered/jdbc-iam-probe",),
        entrypoint=("jdbc-iam-probe",),
        programs=("jdbc-iam-probe",),
    ),
)

_DOCKER_HUB_ALIASES = ("index.docker.io", "registry-1.docker.io", "registry.hub.docker.com")


def normalize_image(image: str) -> tuple[str, str]:
    """``(repository, reference)`` of an image name: ``postgres:16`` -> ``("docker.io/library/postgres", "16")``."""
    name, _, digest = image.partition("@")
    tag = ""
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    parts = name.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        registry, path = parts[0], "/".join(parts[1:])
    else:
        registry, path = "docker.io", name
    if registry in _DOCKER_HUB_ALIASES:
        registry = "docker.io"
    if registry == "docker.io" and "/" not in path:
        path = f"library/{path}"
    reference = f"@{digest}" if digest else (tag or "latest")
    return f"{registry}/{path}".lower(), reference


def find_image(image: str) -> ImageRule | None:
    repository, _ = normalize_image(image)
    for rule in KNOWN_IMAGES:
        if repository in rule.repositories:
            return rule
    return None


def image_status_names(image: str) -> tuple[str, str]:
    """``(image, imageID)`` as a kubelet reports them; the digest names the reference, not image content."""
    repository, reference = normalize_image(image)
    shown = f"{repository}{reference}" if reference.startswith("@") else f"{repository}:{reference}"
    digest = reference[1:] if reference.startswith("@") else "sha256:" + hashlib.sha256(shown.encode()).hexdigest()
    return shown, f"{repository}@{digest}"


class PodFailure(Exception):
    """The pod cannot run at all: it ends ``Failed`` with this reason and message."""

    def __init__(self, reason: str, message: str, container: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.container = container


class ContainerConfigError(Exception):
    """A container cannot start yet (a missing ConfigMap, Secret or key): retried, as a kubelet does."""


def container_argv(container: Mapping[str, Any], env: Mapping[str, str]) -> list[str]:
    """The program and arguments of a container, or ``PodFailure`` when the stack cannot run it."""
    name, image = container["name"], container.get("image", "")
    rule = find_image(image)
    if rule is None:
        known = ", ".join(r for rule in KNOWN_IMAGES for r in rule.repositories)
        raise PodFailure(
            "ErrImagePull",
            f'the local stack cannot run image "{image}": it runs only images whose programs it has on the host '
            f"({known}; see KNOWN_IMAGES in tests/stack/kubelet.py)",
            name,
        )
    command = [expand(c, env) for c in container.get("command") or []]
    args = [expand(a, env) for a in container.get("args") or []]
    if command:
        argv = command + args
    elif rule.server is not None:
        # the image's entrypoint script runs the server unless its arguments name another program
        argv = args or list(rule.cmd)
        if not argv or argv[0].startswith("-") or argv[0] == rule.server:
            raise PodFailure(
                "CreateContainerError",
                f'container "{name}": the {rule.title} image\'s default entrypoint starts the {rule.server} server, '
                "which the local stack does not run; give the container a command (for example psql)",
                name,
            )
    else:
        argv = list(rule.entrypoint) + (args if args else list(rule.cmd))
    if not argv:
        raise PodFailure("CreateContainerError", f'container "{name}": no command specified', name)
    return argv


# --------------------------------------------------------------------------------------------------
# $(VAR) expansion and the environment
# --------------------------------------------------------------------------------------------------


def expand(value: str, *mappings: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion: unknown references stay as written, ``$$`` is a literal ``$``."""
    out: list[str] = []
    checkpoint = 0
    cursor = 0
    length = len(value)
    while cursor < length:
        if value[cursor] == "$" and cursor + 1 < length:
            out.append(value[checkpoint:cursor])
            rest = value[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                close = rest.find(")", 1)
                if close >= 0:
                    name = rest[1:close]
                    for mapping in mappings:
                        if name in mapping:
                            out.append(mapping[name])
                            break
                    else:
                        out.append(f"$({name})")
                    advance = close + 1
                else:
                    out.append("$(")
                    advance = 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    out.append(value[checkpoint:])
    return "".join(out)


class ObjectSource:
    """ConfigMaps and Secrets of a namespace, read once per pod (``None`` when absent)."""

    def __init__(self, fetch: Callable[[str, str, str], dict | None]) -> None:
        self._fetch = fetch
        self._cache: dict[tuple[str, str, str], dict | None] = {}

    def get(self, kind: str, namespace: str, name: str) -> dict | None:
        key = (kind, namespace, name)
        if key not in self._cache:
            self._cache[key] = self._fetch(kind, namespace, name)
        return self._cache[key]

    def forget(self) -> None:
        self._cache.clear()

    def data(self, kind: str, namespace: str, name: str) -> dict[str, bytes] | None:
        """The keys of a ConfigMap (``data`` and ``binaryData``) or Secret, as bytes."""
        obj = self.get(kind, namespace, name)
        if obj is None:
            return None
        if kind == "Secret":
            return {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        out = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
        out.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
        return out


def _text(value: bytes) -> str:
    return value.decode("utf-8", "surrogateescape")


def format_map(values: Mapping[str, str]) -> str:
    """The downward API's rendering of labels/annotations: sorted ``key="value"`` lines."""
    return "\n".join(f"{k}={json.dumps(values[k], ensure_ascii=False)}" for k in sorted(values))


_FIELD_ITEM = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


def field_value(pod: Mapping[str, Any], path: str, pod_ip: str, host_ip: str, *, volume: bool = False) -> str:
    """A downward API ``fieldRef`` of the pod (``volume`` also allows whole label/annotation maps)."""
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {
        "metadata.name": meta.get("name", ""),
        "metadata.namespace": meta.get("namespace", ""),
        "metadata.uid": meta.get("uid", ""),
        "spec.nodeName": spec.get("nodeName", ""),
        "spec.serviceAccountName": spec.get("serviceAccountName", ""),
        "status.podIP": pod_ip,
        "status.podIPs": pod_ip,
        "status.hostIP": host_ip,
        "status.hostIPs": host_ip,
    }
    if path in simple:
        return simple[path]
    match = _FIELD_ITEM.match(path)
    if match:
        return (meta.get(match.group(1)) or {}).get(match.group(2), "")
    if volume and path in ("metadata.labels", "metadata.annotations"):
        return format_map(meta.get(path.split(".")[1]) or {})
    raise ContainerConfigError(f"unsupported fieldRef fieldPath {path!r}")


def service_env(service: Mapping[str, Any] | None) -> dict[str, str]:
    """The variables a kubelet derives from the ``default/kubernetes`` Service."""
    if not service:
        return {}
    spec = service.get("spec") or {}
    ip = spec.get("clusterIP")
    ports = spec.get("ports") or []
    if not ip or ip == "None" or not ports:
        return {}
    env = {"KUBERNETES_SERVICE_HOST": ip, "KUBERNETES_SERVICE_PORT": str(ports[0]["port"])}
    env["KUBERNETES_PORT"] = f"{ports[0].get('protocol', 'TCP').lower()}://{ip}:{ports[0]['port']}"
    for port in ports:
        proto = port.get("protocol", "TCP")
        if port.get("name"):
            env[f"KUBERNETES_SERVICE_PORT_{port['name'].upper().replace('-', '_')}"] = str(port["port"])
        prefix = f"KUBERNETES_PORT_{port['port']}_{proto}"
        env[prefix] = f"{proto.lower()}://{ip}:{port['port']}"
        env[f"{prefix}_PROTO"] = proto.lower()
        env[f"{prefix}_PORT"] = str(port["port"])
        env[f"{prefix}_ADDR"] = ip
    return env


def _referenced(objects: ObjectSource, kind: str, namespace: str, ref: Mapping[str, Any]) -> dict[str, bytes] | None:
    """The data of the ConfigMap or Secret ``ref`` names; None when it is missing and optional."""
    data = objects.data(kind, namespace, ref["name"])
    if data is None and not ref.get("optional"):
        raise ContainerConfigError(f'{kind.lower()} "{ref["name"]}" not found')
    return data


_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")


def container_env(
    pod: Mapping[str, Any],
    container: Mapping[str, Any],
    objects: ObjectSource,
    *,
    pod_ip: str,
    host_ip: str,
    services: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables the kubelet gives a container: ``envFrom``, then ``env`` (expanded), then service variables."""
    namespace = pod["metadata"]["namespace"]
    env: dict[str, str] = {}
    services = dict(services or {})
    for source in container.get("envFrom") or []:
        prefix = source.get("prefix", "")
        for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
            ref = source.get(key)
            if ref is None:
                continue
            data = _referenced(objects, kind, namespace, ref)
            if data is None:
                continue
            for name, value in data.items():
                if _ENV_NAME.match(prefix + name):
                    env[prefix + name] = _text(value)
    for item in container.get("env") or []:
        name = item["name"]
        if "valueFrom" not in item:
            env[name] = expand(item.get("value", ""), env, services)
            continue
        source = item["valueFrom"]
        if "fieldRef" in source:
            env[name] = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip, host_ip)
            continue
        for kind, key in (("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")):
            ref = source.get(key)
            if ref is None:
                continue
            data = _referenced(objects, kind, namespace, ref)
            if data is None:
                break
            if ref["key"] not in data:
                if ref.get("optional"):
                    break
                raise ContainerConfigError(f"couldn't find key {ref['key']} in {kind} {namespace}/{ref['name']}")
            env[name] = _text(data[ref["key"]])
            break
        else:
            raise ContainerConfigError(
                f"env {name}: only value, fieldRef, configMapKeyRef and secretKeyRef are supported"
            )
    for name, value in services.items():
        env.setdefault(name, value)
    return env


# --------------------------------------------------------------------------------------------------
# Volumes
# --------------------------------------------------------------------------------------------------

VOLUME_PLUGIN_DIRS = {
    "configMap": "kubernetes.io~configmap",
    "secret": "kubernetes.io~secret",
    "downwardAPI": "kubernetes.io~downward-api",
    "projected": "kubernetes.io~projected",
    "emptyDir": "kubernetes.io~empty-dir",
}
# the kubelet mounts these read-only whatever the volumeMount says
READ_ONLY_KINDS = ("configMap", "secret", "downwardAPI", "projected")
DEFAULT_MODE = 0o644


@dataclass
class FileEntry:
    data: bytes
    mode: int
    uid: int | None = None


@dataclass
class TokenSpec:
    """A projected service-account token: where it is, for whom, and when to renew it."""

    volume: str
    path: str
    audience: str
    expiration_seconds: int
    refresh_at: float = 0.0


@dataclass
class VolumeContent:
    name: str
    kind: str
    files: dict[str, FileEntry] = field(default_factory=dict)
    host_path: str | None = None
    tokens: list[TokenSpec] = field(default_factory=list)


def _check_relative(path: str) -> str:
    if not path or path.startswith("/") or ".." in path.split("/"):
        raise PodFailure("InvalidVolumePath", f"volume item path {path!r} must be relative and must not contain '..'")
    return path


def _key_files(
    data: Mapping[str, bytes] | None,
    items: list[dict] | None,
    mode: int,
    what: str,
    optional: bool,
) -> dict[str, FileEntry]:
    if data is None:
        if optional:
            return {}
        raise ContainerConfigError(f"{what} not found")
    if not items:
        return {_check_relative(k): FileEntry(v, mode) for k, v in data.items()}
    files = {}
    for item in items:
        if item["key"] not in data:
            if optional:
                continue
            raise ContainerConfigError(f"{what} references non-existent key: {item['key']}")
        files[_check_relative(item["path"])] = FileEntry(data[item["key"]], item.get("mode", mode))
    return files


def _downward_files(pod: Mapping[str, Any], items: list[dict], mode: int, pod_ip: str, host_ip: str) -> dict:
    files = {}
    for item in items or []:
        if "fieldRef" not in item:
            raise PodFailure("UnsupportedVolume", "downwardAPI: only fieldRef items are supported by the local stack")
        value = field_value(pod, item["fieldRef"]["fieldPath"], pod_ip, host_ip, volume=True)
        files[_check_relative(item["path"])] = FileEntry(value.encode(), item.get("mode", mode))
    return files


def volume_contents(
    pod: Mapping[str, Any],
    objects: ObjectSource,
    token: Callable[[str, int], str],
    *,
    pod_ip: str,
    host_ip: str,
) -> dict[str, VolumeContent]:
    """What each volume of the pod holds; ``token(audience, expirationSeconds)`` asks for a bound token."""
    namespace = pod["metadata"]["namespace"]
    spec = pod.get("spec") or {}
    contents: dict[str, VolumeContent] = {}
    for volume in spec.get("volumes") or []:
        name = volume["name"]
        kind = next((k for k in volume if k != "name"), "")
        source = volume.get(kind) or {}
        content = VolumeContent(name, kind)
        if kind == "configMap":
            what = f'configmap "{source.get("name")}"'
            data = objects.data("ConfigMap", namespace, source["name"])
            content.files = _key_files(
                data, source.get("items"), source.get("defaultMode", DEFAULT_MODE), what, bool(source.get("optional"))
            )
        elif kind == "secret":
            what = f'secret "{source.get("secretName")}"'
            data = objects.data("Secret", namespace, source["secretName"])
            content.files = _key_files(
                data, source.get("items"), source.get("defaultMode", DEFAULT_MODE), what, bool(source.get("optional"))
            )
        elif kind == "downwardAPI":
            content.files = _downward_files(
                pod, source.get("items"), source.get("defaultMode", DEFAULT_MODE), pod_ip, host_ip
            )
        elif kind == "projected":
            mode = source.get("defaultMode", DEFAULT_MODE)
            for part in source.get("sources") or []:
                if "serviceAccountToken" in part:
                    sat = part["serviceAccountToken"]
                    seconds = int(sat.get("expirationSeconds") or 3600)
                    path = _check_relative(sat["path"])
                    content.files[path] = FileEntry(token(sat.get("audience", ""), seconds).encode(), mode)
                    content.tokens.append(TokenSpec(name, path, sat.get("audience", ""), seconds))
                elif "configMap" in part:
                    ref = part["configMap"]
                    data = objects.data("ConfigMap", namespace, ref["name"])
                    what = f'configmap "{ref["name"]}"'
                    content.files.update(_key_files(data, ref.get("items"), mode, what, bool(ref.get("optional"))))
                elif "secret" in part:
                    ref = part["secret"]
                    data = objects.data("Secret", namespace, ref["name"])
                    what = f'secret "{ref["name"]}"'
                    content.files.update(_key_files(data, ref.get("items"), mode, what, bool(ref.get("optional"))))
                elif "downwardAPI" in part:
                    content.files.update(_downward_files(pod, part["downwardAPI"].get("items"), mode, pod_ip, host_ip))
                else:
                    raise PodFailure(
                        "UnsupportedVolume",
                        f'volume "{name}": projected source {next(iter(part), "?")} '
                        "is not supported by the local stack",
                    )
        elif kind == "emptyDir":
            pass
        elif kind == "hostPath":
            content.host_path = source["path"]
        else:
            raise PodFailure(
                "UnsupportedVolume", f'volume "{name}": {kind or "this"} volumes are not supported by the local stack'
            )
        contents[name] = content
    _assign_token_owner(pod, contents)
    return contents


def _assign_token_owner(pod: Mapping[str, Any], contents: dict[str, VolumeContent]) -> None:
    """kubelet: without fsGroup, a projected token of a pod that runs as one non-root user is 0600 and theirs."""
    spec = pod.get("spec") or {}
    pod_ctx = spec.get("securityContext") or {}
    if pod_ctx.get("fsGroup") is not None:
        return
    users = {
        (c.get("securityContext") or {}).get("runAsUser", pod_ctx.get("runAsUser"))
        for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])
    }
    if len(users) != 1:
        return
    (uid,) = users
    if not uid:
        return
    for content in contents.values():
        for token in content.tokens:
            entry = content.files[token.path]
            entry.mode, entry.uid = 0o600, int(uid)


def write_atomic(target: Path, files: Mapping[str, FileEntry], *, gid: int | None = None) -> None:
    """Write a volume as the kubelet's atomic writer does: ``..<timestamp>/`` dirs, ``..data`` and links to it.

    A new version replaces the old in one rename of ``..data``, so a program
    reading the mounted directory sees either the old or the new files.
    """
    target.mkdir(mode=0o755, exist_ok=True)
    os.chmod(target, 0o2755 if gid is not None else 0o755)
    if gid is not None:
        os.chown(target, -1, gid)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("..%Y_%m_%d_%H_%M_%S.") + random_tokens.token_hex(5)
    version = target / stamp
    version.mkdir(mode=0o755)
    for rel, entry in files.items():
        path = version / rel
        for parent in reversed(path.relative_to(version).parents[:-1]):
            sub = version / parent
            if not sub.exists():
                sub.mkdir(mode=0o755)
                if gid is not None:
                    os.chown(sub, -1, gid)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, entry.data)
            mode = entry.mode | (0o440 if gid is not None else 0)
            os.fchown(fd, entry.uid if entry.uid is not None else -1, gid if gid is not None else -1)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
    old = os.readlink(target / "..data") if (target / "..data").is_symlink() else None
    tmp = target / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(stamp, tmp)
    os.replace(tmp, target / "..data")
    top = {rel.split("/", 1)[0] for rel in files}
    for name in top:
        link = target / name
        if not os.path.lexists(link):
            os.symlink(f"..data/{name}", link)
    for entry_name in os.listdir(target):
        path = target / entry_name
        if entry_name.startswith(".."):
            if entry_name not in ("..data", stamp) and (entry_name == old or path.is_dir()) and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
        elif path.is_symlink() and entry_name not in top:
            path.unlink()


def volume_dir(pod_dir: Path, content: VolumeContent) -> Path:
    return pod_dir / "volumes" / VOLUME_PLUGIN_DIRS[content.kind] / content.name


@dataclass
class MountPlan:
    volume: str
    source: str
    target: str
    read_only: bool
    is_file: bool


def plan_mounts(
    container: Mapping[str, Any],
    sources: Mapping[str, tuple[str, str]],
    env: Mapping[str, str],
) -> list[MountPlan]:
    """Bind mounts for a container, shallowest first; ``sources`` maps a volume to (kind, host dir)."""
    plans = []
    for mount in container.get("volumeMounts") or []:
        name = mount["name"]
        if name not in sources:
            raise PodFailure("CreateContainerConfigError", f'volume "{name}" is not a volume of the pod')
        kind, root = sources[name]
        sub = mount.get("subPath") or ""
        if mount.get("subPathExpr"):
            sub = expand(mount["subPathExpr"], env)
        source = root
        if sub:
            _check_relative(sub)
            candidate = os.path.join(root, sub)
            if not os.path.lexists(candidate) and kind != "hostPath":
                os.makedirs(candidate, mode=0o755 if kind in READ_ONLY_KINDS else 0o777, exist_ok=True)
            elif not os.path.lexists(candidate):
                raise PodFailure("CreateContainerConfigError", f"hostPath subPath {candidate} does not exist")
            resolved = os.path.realpath(candidate)
            base = os.path.realpath(root)
            if resolved != base and not resolved.startswith(base + os.sep):
                raise PodFailure("CreateContainerConfigError", f"subPath {sub!r} leaves volume {name!r}")
            source = resolved
        target = os.path.normpath(mount["mountPath"])
        if not target.startswith("/"):
            raise PodFailure("CreateContainerConfigError", f"mountPath {mount['mountPath']!r} must be absolute")
        read_only = bool(mount.get("readOnly")) or kind in READ_ONLY_KINDS
        plans.append(MountPlan(name, source, target, read_only, os.path.isfile(source)))
    plans.sort(key=lambda p: p.target.count("/") if p.target != "/" else 0)
    return plans


# --------------------------------------------------------------------------------------------------
# Host mount points
# --------------------------------------------------------------------------------------------------


DEFAULT_HOST_PATHS_REGISTRY = "/run/layered-eks-rds-kubelet"


class HostPaths:
    """Mount points created on the host for pods, counted across processes, removed when no pod needs them.

    A directory made for one pod may be the mount point of another pod (of
    this runner or of another runner on the host, a test session next to the
    stack); removing it early would detach that pod's mount. So every path
    created here is listed with its holders (``<pid>:<pod uid>``, once per
    hold) in ``<registry>/host-paths.json``, under an exclusive lock on the
    registry directory. Only what did not exist is created, a path is removed
    when its last holder lets go, and only when it is empty. Holders whose
    process is gone (a runner killed) are dropped, and their paths removed, by
    the next runner that touches the registry. The registry removes itself
    when nothing is held.
    """

    def __init__(self, registry: str | os.PathLike[str] = DEFAULT_HOST_PATHS_REGISTRY) -> None:
        self.registry = Path(registry)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict[str, list[str]]]:
        while True:
            self.registry.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.registry, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.registry))
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # removed by its last user meanwhile: start again
        path = self.registry / "host-paths.json"
        try:
            try:
                paths: dict[str, list[str]] = json.loads(path.read_text())
            except FileNotFoundError:
                paths = {}
            self._prune(paths)
            yield paths
            if paths:
                tmp = path.with_suffix(".tmp")
                tmp.write_text(json.dumps(paths, indent=1, sort_keys=True))
                os.replace(tmp, path)
            else:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                with contextlib.suppress(OSError):
                    self.registry.rmdir()
        finally:
            os.close(fd)

    @staticmethod
    def _prune(paths: dict[str, list[str]]) -> None:
        alive: dict[str, bool] = {}
        for path in sorted(paths, key=lambda p: p.count("/"), reverse=True):
            kept = []
            for holder in paths[path]:
                pid = holder.split(":", 1)[0]
                if pid not in alive:
                    alive[pid] = _pid_alive(int(pid))
                if alive[pid]:
                    kept.append(holder)
            if kept:
                paths[path] = kept
            else:
                del paths[path]
                remove_if_empty(path)

    def acquire(self, target: str, is_file: bool, holder: str) -> list[str]:
        """Make ``target`` exist; return the paths the holder now holds (created now or by another pod)."""
        held = []
        with self._locked() as paths:
            current = "/"
            parts = [p for p in target.split("/") if p]
            for index, part in enumerate(parts):
                current = os.path.join(current, part)
                if os.path.lexists(current):
                    if current in paths:
                        paths[current].append(holder)
                        held.append(current)
                    continue
                if index == len(parts) - 1 and is_file:
                    os.close(os.open(current, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
                else:
                    os.mkdir(current, 0o755)
                paths[current] = [holder]
                held.append(current)
        return held

    def release(self, held: Iterable[str], holder: str) -> list[str]:
        """Drop the holder's holds; remove the paths nobody holds any more. Returns what was left in place."""
        left = []
        with self._locked() as paths:
            holds = collections.Counter(held)
            for path in sorted(holds, key=lambda p: p.count("/"), reverse=True):
                holders = paths.get(path, [])
                for _ in range(holds[path]):
                    if holder in holders:
                        holders.remove(holder)
                if holders:
                    continue
                paths.pop(path, None)
                if not remove_if_empty(path):
                    left.append(path)
        return left

    def prune(self) -> None:
        """Remove what runners that are gone left behind."""
        if self.registry.exists():
            with self._locked():
                pass


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_if_empty(path: str) -> bool:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        elif os.path.lexists(path):
            if os.path.getsize(path) != 0:
                return False
            os.unlink(path)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno in (errno.ENOTEMPTY, errno.EBUSY, errno.EEXIST):
            return False
        raise
    return True


# --------------------------------------------------------------------------------------------------
# Logs (CRI format, as read by kwok's kubelet server and `kubectl logs`)
# --------------------------------------------------------------------------------------------------


def cri_timestamp(ns: int | None = None) -> str:
    ns = time.time_ns() if ns is None else ns
    seconds, fraction = divmod(ns, 1_000_000_000)
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{fraction:09d}Z"


def cri_lines(stream: str, chunk: bytes, final: bool, stamp: str) -> bytes:
    """One read of a pipe as CRI log lines: full lines ``F``; a line cut at 16 KiB ``P`` (the rest follows)."""
    if chunk.endswith(b"\n"):
        return f"{stamp} {stream} F ".encode() + chunk
    tag = "F" if final else "P"
    return f"{stamp} {stream} {tag} ".encode() + chunk + b"\n"


def parse_cri_log(data: bytes) -> list[tuple[str, bytes]]:
    """``(stream, text)`` of each log line, partial lines joined."""
    out: list[tuple[str, bytes]] = []
    pending: dict[str, bytes] = {}
    for line in data.splitlines():
        parts = line.split(b" ", 3)
        if len(parts) < 3:
            continue
        stream, tag = parts[1].decode(), parts[2]
        text = parts[3] if len(parts) > 3 else b""
        pending[stream] = pending.get(stream, b"") + text
        if tag == b"F":
            out.append((stream, pending.pop(stream)))
    out.extend(pending.items())
    return out


class ContainerLog:
    """The log file of one container run, fed by its stdout and stderr pumps; keeps the tail in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - closed by close()
        os.chmod(path, 0o600)
        self._lock = threading.Lock()
        self._tail: collections.deque[bytes] = collections.deque(maxlen=TERMINATION_LOG_LINES)
        self._threads: list[threading.Thread] = []

    def pump(self, stream: str, pipe: Any) -> None:
        thread = threading.Thread(target=self._pump, args=(stream, pipe), daemon=True, name=f"log-{stream}")
        thread.start()
        self._threads.append(thread)

    def _pump(self, stream: str, pipe: Any) -> None:
        carry = b""
        with pipe:
            while True:
                chunk = pipe.readline(CRI_MAX_LINE)
                if not chunk:
                    break
                if chunk.endswith(b"\n") or len(chunk) >= CRI_MAX_LINE:
                    self._write(stream, chunk, final=False, carry=carry)
                    carry = b"" if chunk.endswith(b"\n") else carry + chunk
                else:
                    # the stream ended without a newline
                    self._write(stream, chunk, final=True, carry=carry)
                    carry = b""

    def _write(self, stream: str, chunk: bytes, *, final: bool, carry: bytes) -> None:
        with self._lock:
            self._file.write(cri_lines(stream, chunk, final, cri_timestamp()))
            self._file.flush()
            if chunk.endswith(b"\n") or final:
                self._tail.append((carry + chunk).rstrip(b"\n"))

    def wait(self, timeout: float = 5.0) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def tail(self) -> str:
        with self._lock:
            text = b"\n".join(self._tail)
        if len(text) > TERMINATION_LOG_BYTES:
            text = text[-TERMINATION_LOG_BYTES:]
        return _text(text)

    def close(self) -> None:
        with self._lock:
            self._file.close()


# --------------------------------------------------------------------------------------------------
# Status documents
# --------------------------------------------------------------------------------------------------


def rfc3339(ts: float | None = None) -> str:
    ts = time.time() if ts is None else ts
    return datetime.datetime.fromtimestamp(int(ts), datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ContainerRecord:
    """What the stand-in knows of one container; ``status()`` is its ``containerStatuses`` entry."""

    name: str
    image: str
    image_id: str
    init: bool = False
    restart_count: int = 0
    state: dict = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict = field(default_factory=dict)
    container_id: str | None = None
    volume_mounts: list[dict] = field(default_factory=list)
    # the container will not run again (it succeeded, or failed and may not restart)
    final: bool = False
    ran: bool = False

    @property
    def running(self) -> bool:
        return "running" in self.state

    @property
    def exit_code(self) -> int | None:
        return self.state.get("terminated", {}).get("exitCode")

    def status(self) -> dict:
        doc: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": self.image_id if self.ran else "",
            "ready": self.running if not self.init else bool(self.final and self.exit_code == 0),
            "restartCount": self.restart_count,
            "started": self.running,
            "state": copy.deepcopy(self.state),
            "lastState": copy.deepcopy(self.last_state),
        }
        if self.container_id:
            doc["containerID"] = self.container_id
        if self.volume_mounts:
            doc["volumeMounts"] = copy.deepcopy(self.volume_mounts)
        return doc


def _condition(kind: str, ok: bool, reason: str = "", message: str = "") -> dict:
    cond: dict[str, Any] = {"type": kind, "status": "True" if ok else "False"}
    if not ok and reason:
        cond["reason"] = reason
    if not ok and message:
        cond["message"] = message
    return cond


def pod_conditions(
    init: list[ContainerRecord], main: list[ContainerRecord], phase: str, sandbox_ready: bool
) -> list[dict]:
    """The conditions a kubelet owns, from the containers' records."""
    init_pending = [c.name for c in init if not (c.final and c.exit_code == 0)]
    initialized = _condition(
        "Initialized",
        not init_pending,
        "ContainersNotInitialized",
        f"containers with incomplete status: [{' '.join(init_pending)}]",
    )
    if phase in ("Succeeded", "Failed"):
        return [
            _condition("PodReadyToStartContainers", False),
            initialized,
            _condition("Ready", False, "PodCompleted"),
            _condition("ContainersReady", False, "PodCompleted"),
        ]
    not_ready = [c.name for c in main if not c.running]
    ready = not init_pending and not not_ready
    message = f"containers with unready status: [{' '.join(not_ready)}]"
    return [
        _condition("PodReadyToStartContainers", sandbox_ready),
        initialized,
        _condition("Ready", ready, "ContainersNotReady", message),
        _condition("ContainersReady", ready, "ContainersNotReady", message),
    ]


def merge_conditions(existing: list[dict] | None, desired: list[dict], now: str) -> list[dict]:
    """The kubelet's conditions over the existing ones: other owners' conditions kept, transition times kept."""
    old = {c.get("type"): c for c in existing or []}
    merged = []
    for wanted in desired:
        prev = old.get(wanted["type"])
        cond = dict(wanted, lastProbeTime=None)
        same = prev is not None and prev.get("status") == cond["status"]
        cond["lastTransitionTime"] = prev.get("lastTransitionTime") if same and prev.get("lastTransitionTime") else now
        merged.append(cond)
    owned = {c["type"] for c in desired}
    if "PodScheduled" not in old:
        merged.append({"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now})
    merged.extend(c for t, c in old.items() if t not in owned)
    order = ["PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled"]
    merged.sort(key=lambda c: order.index(c["type"]) if c["type"] in order else len(order))
    return merged


def pod_phase(init: list[ContainerRecord], main: list[ContainerRecord], failure: bool) -> str:
    """The phase from the records, as the kubelet's getPhase decides it."""
    if failure or any(c.final and c.exit_code != 0 for c in init):
        return "Failed"
    if all(c.final for c in init) and main and all(c.final for c in main):
        return "Succeeded" if all(c.exit_code == 0 for c in main) else "Failed"
    if not all(c.final for c in init) or not any(c.ran for c in main):
        return "Pending"
    return "Running"


def build_status(
    existing: Mapping[str, Any],
    *,
    init: list[ContainerRecord],
    main: list[ContainerRecord],
    phase: str,
    pod_ip: str,
    host_ip: str,
    start_time: str,
    sandbox_ready: bool,
    reason: str | None = None,
    message: str | None = None,
    generation: int | None = None,
    now: str | None = None,
) -> dict:
    """The pod's new ``status``: the kubelet's fields replaced, everything else of ``existing`` kept."""
    now = now or rfc3339()
    status = copy.deepcopy(dict(existing or {}))
    status["phase"] = phase
    status["conditions"] = merge_conditions(
        status.get("conditions"), pod_conditions(init, main, phase, sandbox_ready), now
    )
    status["hostIP"] = host_ip
    status["hostIPs"] = [{"ip": host_ip}]
    if pod_ip:
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
    status["startTime"] = start_time
    if generation is not None:
        status["observedGeneration"] = generation
    if init:
        status["initContainerStatuses"] = [c.status() for c in init]
    status["containerStatuses"] = [c.status() for c in main]
    for key, value in (("reason", reason), ("message", message)):
        if value:
            status[key] = value
        else:
            status.pop(key, None)
    return status


# --------------------------------------------------------------------------------------------------
# The API server
# --------------------------------------------------------------------------------------------------


class PodGone(Exception):
    """The pod (this uid) is no longer in the API server."""


class _AlreadyEnded(Exception):
    """The pod handed to ``run()`` had already ended: nothing to do."""


class Api:
    """The few calls the stand-in makes, on plain dicts."""

    def __init__(self, api_client: Any) -> None:
        from kubernetes import client

        self.client = api_client
        self.core = client.CoreV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.exception = client.exceptions.ApiException

    @staticmethod
    def _json(response: Any) -> dict:
        return json.loads(response.data or b"{}")

    def status_code(self, exc: BaseException) -> int | None:
        return getattr(exc, "status", None) if isinstance(exc, self.exception) else None

    def read_pod(self, namespace: str, name: str) -> dict | None:
        try:
            return self._json(self.core.read_namespaced_pod(name, namespace, _preload_content=False))
        except self.exception as exc:
            if exc.status == 404:
                return None
            raise

    def replace_pod_status(self, pod: dict) -> dict:
        meta = pod["metadata"]
        return self._json(
            self.core.replace_namespaced_pod_status(
                meta["name"], meta["namespace"], pod, field_manager=FIELD_MANAGER, _preload_content=False
            )
        )

    def delete_pod(self, namespace: str, name: str, uid: str) -> None:
        body = {"gracePeriodSeconds": 0, "preconditions": {"uid": uid}}
        try:
            self.core.delete_namespaced_pod(name, namespace, body=body, _preload_content=False)
        except self.exception as exc:
            if exc.status not in (404, 409):
                raise

    def read_object(self, kind: str, namespace: str, name: str) -> dict | None:
        read = self.core.read_namespaced_config_map if kind == "ConfigMap" else self.core.read_namespaced_secret
        try:
            return self._json(read(name, namespace, _preload_content=False))
        except self.exception as exc:
            if exc.status == 404:
                return None
            raise

    def read_service(self, namespace: str, name: str) -> dict | None:
        try:
            return self._json(self.core.read_namespaced_service(name, namespace, _preload_content=False))
        except self.exception as exc:
            if exc.status in (403, 404):
                return None
            raise

    def request_token(self, pod: Mapping[str, Any], audience: str, seconds: int) -> str:
        meta = pod["metadata"]
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [audience] if audience else [],
                "expirationSeconds": seconds,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": meta["name"], "uid": meta["uid"]},
            },
        }
        account = (pod.get("spec") or {}).get("serviceAccountName") or "default"
        response = self.core.create_namespaced_service_account_token(
            account, meta["namespace"], body, _preload_content=False
        )
        return self._json(response)["status"]["token"]

    def create_event(self, pod: Mapping[str, Any], kind: str, reason: str, message: str, field_path: str) -> None:
        meta = pod["metadata"]
        node = (pod.get("spec") or {}).get("nodeName", "")
        now = datetime.datetime.now(datetime.timezone.utc)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{random_tokens.token_hex(8)}", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
                **({"fieldPath": field_path} if field_path else {}),
            },
            "reason": reason,
            "message": message,
            "type": kind,
            "source": {"component": "kubelet", "host": node},
            "reportingComponent": "kubelet",
            "reportingInstance": node,
            "firstTimestamp": rfc3339(now.timestamp()),
            "lastTimestamp": rfc3339(now.timestamp()),
            "count": 1,
        }
        self.core.create_namespaced_event(meta["namespace"], event, _preload_content=False)

    def apply_logs(self, body: dict) -> bool:
        """Create or replace a kwok ``Logs`` object; False when the API server does not know the kind."""
        meta = body["metadata"]
        args = (KWOK_GROUP, KWOK_VERSION, meta["namespace"], KWOK_LOGS)
        try:
            self.custom.create_namespaced_custom_object(*args, body, _preload_content=False)
            return True
        except self.exception as exc:
            if exc.status == 404:
                return False
            if exc.status != 409:
                raise
        current = self._json(self.custom.get_namespaced_custom_object(*args, meta["name"], _preload_content=False))
        body = dict(body, metadata=dict(meta, resourceVersion=current["metadata"]["resourceVersion"]))
        self.custom.replace_namespaced_custom_object(*args, meta["name"], body, _preload_content=False)
        return True

    def delete_logs(self, namespace: str, name: str, pod_uid: str) -> None:
        """Delete the ``Logs`` object of the pod ``pod_uid`` (not one a newer pod of the same name owns)."""
        args = (KWOK_GROUP, KWOK_VERSION, namespace, KWOK_LOGS, name)
        try:
            current = self._json(self.custom.get_namespaced_custom_object(*args, _preload_content=False))
            owners = [o.get("uid") for o in current["metadata"].get("ownerReferences") or []]
            if pod_uid not in owners:
                return
            body = {"preconditions": {"uid": current["metadata"]["uid"]}}
            self.custom.delete_namespaced_custom_object(*args, body=body, _preload_content=False)
        except self.exception as exc:
            if exc.status not in (404, 409):
                raise


# --------------------------------------------------------------------------------------------------
# The runner
# --------------------------------------------------------------------------------------------------


@dataclass
class _Process:
    record: ContainerRecord
    proc: subprocess.Popen[bytes]
    log: ContainerLog
    started: float
    started_at: str


class PodRunner:
    """Runs the pods handed to ``run()``; one instance per node (or per stack).

    ``programs`` maps a program name to the host file that stands in for it
    (default: ``aws`` of the AWS CLI virtualenv, see ``DEFAULT_AWSCLI_VENV``);
    each is linked into ``<state_dir>/bin``, first on the containers' PATH.
    ``kwok_logs`` publishes each pod's log files to kwok through ``Logs``
    objects. ``finalize_deletion`` deletes a pod being deleted once its
    processes are gone, as a kubelet does; leave it off where something else
    (kwok's pod-delete stage) removes such pods.
    """

    def __init__(
        self,
        api_client: Any,
        state_dir: str | os.PathLike[str],
        *,
        programs: Mapping[str, str] | None = None,
        kwok_logs: bool = True,
        finalize_deletion: bool = False,
        max_grace_seconds: float = 5.0,
        backoff: tuple[float, float] = (1.0, 10.0),
        token_refresh_fraction: float = 0.8,
        poll_seconds: float = 1.0,
        cluster_domain: str = "cluster.local",
        python: str = sys.executable,
        host_paths: HostPaths | None = None,
    ) -> None:
        self.api = Api(api_client)
        self.host_paths = host_paths or HostPaths()
        self.state_dir = Path(state_dir).resolve()
        self.kwok_logs = kwok_logs
        self.finalize_deletion = finalize_deletion
        self.max_grace_seconds = max_grace_seconds
        self.backoff = backoff
        self.token_refresh_fraction = token_refresh_fraction
        self.poll_seconds = poll_seconds
        self.cluster_domain = cluster_domain
        self.python = python
        self._lock = threading.Lock()
        self._runs: dict[tuple[str, str], _PodRun] = {}
        for sub in ("", "pods", "logs"):
            (self.state_dir / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
            os.chmod(self.state_dir / sub, 0o700)
        self.programs = dict(programs if programs is not None else default_programs())
        for name, path in self.programs.items():
            if not os.access(path, os.X_OK):
                LOG.warning("host program %s for the stack's containers not found (%s)", name, path)
        self.recover()

    def path_for(self, image: str) -> str:
        """PATH of a container: the directories of its image's host programs first (the AWS CLI's virtualenv)."""
        rule = find_image(image)
        dirs = []
        for name in rule.programs if rule else ():
            where = self.programs.get(name)
            if where and os.path.dirname(where) not in dirs:
                dirs.append(os.path.dirname(where))
        return ":".join([*dirs, SYSTEM_PATH])

    # -- public API -----------------------------------------------------------------------------

    def run(
        self,
        pod: Mapping[str, Any] | Any,
        *,
        pod_ip: str,
        host_ip: str,
        netns: str | None,
        nameservers: list[str],
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """Run the pod until it ends or is deleted; returns when its processes are gone and it is cleaned up."""
        if not isinstance(pod, Mapping):
            pod = self.api.client.sanitize_for_serialization(pod)
        pod = copy.deepcopy(dict(pod))
        meta = pod["metadata"]
        key = (meta["namespace"], meta["name"])
        run = _PodRun(self, pod, pod_ip, host_ip, netns, list(nameservers), dict(extra_env or {}))
        with self._lock:
            if key in self._runs:
                raise RuntimeError(f"pod {key[0]}/{key[1]} is already running")
            self._runs[key] = run
        try:
            run.execute()
        finally:
            with self._lock:
                self._runs.pop(key, None)

    def stop(self, namespace: str, name: str) -> bool:
        """Stop a running pod (its deletion was seen); ``run()`` then returns. False if it is not running."""
        with self._lock:
            run = self._runs.get((namespace, name))
        if run is None:
            return False
        run.stop_requested.set()
        return True

    def running(self) -> list[tuple[str, str]]:
        with self._lock:
            return sorted(self._runs)

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop every pod (as on deletion) and wait for their ``run()`` to return."""
        with self._lock:
            runs = list(self._runs.values())
        for run in runs:
            run.stop_requested.set()
        deadline = time.monotonic() + timeout
        for run in runs:
            run.finished.wait(max(0.0, deadline - time.monotonic()))

    def forget(self, namespace: str, name: str, uid: str) -> None:
        """Remove what is kept of a pod after it ended (its log files) once it is deleted."""
        shutil.rmtree(self.state_dir / "logs" / f"{namespace}_{name}_{uid}", ignore_errors=True)

    def recover(self) -> None:
        """Remove mount points that runners killed earlier left, and their pods' directories."""
        self.host_paths.prune()
        with self._lock:
            running = {run.uid for run in self._runs.values()}
        for pod_dir in (self.state_dir / "pods").iterdir():
            if pod_dir.name not in running:
                shutil.rmtree(pod_dir, ignore_errors=True)


def default_programs() -> dict[str, str]:
    """The host programs that are not on the system PATH: the AWS CLI of its own virtualenv, the JDBC probe."""
    venv = Path(os.environ.get("LAYERED_AWSCLI_VENV", str(DEFAULT_AWSCLI_VENV)))
    return {"aws": str(venv / "bin" / "aws"), "jdbc-iam-probe": str(JDBC_IAM_PROBE)}


class _PodRun:
    """One pod on its way from Pending to its end."""

    def __init__(
        self,
        runner: PodRunner,
        pod: dict,
        pod_ip: str,
        host_ip: str,
        netns: str | None,
        nameservers: list[str],
        extra_env: dict[str, str],
    ) -> None:
        self.runner = runner
        self.api = runner.api
        self.pod = pod
        meta, spec = pod["metadata"], pod.get("spec") or {}
        self.namespace, self.name, self.uid = meta["namespace"], meta["name"], meta["uid"]
        self.spec = spec
        self.pod_ip, self.host_ip = pod_ip, host_ip
        self.netns, self.nameservers, self.extra_env = netns, nameservers, extra_env
        self.pod_dir = runner.state_dir / "pods" / self.uid
        self.log_dir = runner.state_dir / "logs" / f"{self.namespace}_{self.name}_{self.uid}"
        self.restart_policy = spec.get("restartPolicy", "Always")
        self.stop_requested = threading.Event()
        self.finished = threading.Event()
        self.objects = ObjectSource(self.api.read_object)
        # as the kubelet: containers not started yet wait in PodInitializing when there are init containers
        waiting = "PodInitializing" if spec.get("initContainers") else "ContainerCreating"
        self.init = [self._record(c, True, waiting) for c in spec.get("initContainers") or []]
        self.main = [self._record(c, False, waiting) for c in spec.get("containers") or []]
        self.containers = {c["name"]: c for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])}
        existing_start = (pod.get("status") or {}).get("startTime")
        self.start_time = existing_start or rfc3339()
        self.started_monotonic = time.monotonic() - max(0.0, time.time() - _parse_time(self.start_time))
        self.sandbox_ready = False
        self.failure: tuple[str, str] | None = None
        self.processes: dict[str, _Process] = {}
        self.next_start: dict[str, float] = {}
        self.held_paths: list[str] = []
        self.homes: set[Path] = set()
        self.holder = f"{os.getpid()}:{self.uid}"
        self.api_warned_at = -1e9
        self.volumes: dict[str, VolumeContent] = {}
        self.volume_sources: dict[str, tuple[str, str]] = {}
        self.tokens: list[TokenSpec] = []
        self.last_written: str | None = None
        self.next_poll = 0.0
        # the pod is ending (deadline, deletion, failure): no container restarts any more
        self.ending = False
        self.deleting = False
        self.gone = False
        self.mount_points: set[str] = set()
        self.logs_published = True
        self.services: dict[str, str] | None = None
        self.log_files: dict[str, list[str]] = {}

    # -- records and events ----------------------------------------------------------------------

    def _record(self, container: dict, init: bool, waiting: str) -> ContainerRecord:
        image, image_id = image_status_names(container.get("image", ""))
        mounts = [
            {
                "name": m["name"],
                "mountPath": m["mountPath"],
                **({"readOnly": True} if m.get("readOnly") else {}),
                **({"recursiveReadOnly": "Disabled"} if m.get("readOnly") else {}),
            }
            for m in container.get("volumeMounts") or []
        ]
        return ContainerRecord(
            container["name"],
            image,
            image_id,
            init=init,
            state={"waiting": {"reason": waiting}},
            volume_mounts=mounts,
        )

    def _event(self, reason: str, message: str, *, warning: bool = False, container: str | None = None) -> None:
        field_path = ""
        if container is not None:
            kind = "initContainers" if any(c.name == container for c in self.init) else "containers"
            field_path = f"spec.{kind}{{{container}}}"
        try:
            self.api.create_event(self.pod, "Warning" if warning else "Normal", reason, message, field_path)
        except Exception as exc:  # events are best effort
            LOG.debug("event %s for %s/%s not recorded: %s", reason, self.namespace, self.name, exc)

    # -- the main loop ---------------------------------------------------------------------------

    def execute(self) -> None:
        LOG.info("pod %s/%s (%s): starting", self.namespace, self.name, self.uid)
        try:
            self._prepare_dirs()
            self._write_status()
            self._validate()
            self._setup_volumes()
            self._loop()
        except PodGone:
            self.gone = True
            LOG.info("pod %s/%s is gone", self.namespace, self.name)
        except _AlreadyEnded:
            LOG.info("pod %s/%s has already ended", self.namespace, self.name)
        except PodFailure as exc:
            self._fail_pod(exc)
        finally:
            self.ending = True
            with contextlib.suppress(Exception):
                self._kill_all(0)
                self._reap(force=True)
            self._cleanup()
            self.finished.set()
            LOG.info("pod %s/%s: done", self.namespace, self.name)

    def _prepare_dirs(self) -> None:
        self.pod_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.pod_dir, 0o700)
        self.log_dir.mkdir(mode=0o700, exist_ok=True)

    def _validate(self) -> None:
        """Images and commands the stack cannot run fail the pod before anything runs."""
        failures = []
        for container in (self.spec.get("initContainers") or []) + (self.spec.get("containers") or []):
            if container.get("restartPolicy") == "Always":
                raise PodFailure(
                    "CreateContainerError",
                    f'init container "{container["name"]}": sidecar containers are not supported by the local stack',
                    container["name"],
                )
            try:
                container_argv(container, {})
            except PodFailure as exc:
                failures.append(exc)
        if failures:
            first = failures[0]
            for exc in failures:
                record = self._find(exc.container)
                if record is not None:
                    record.state = {"waiting": {"reason": exc.reason, "message": exc.message}}
            self._event("Failed", first.message, warning=True, container=first.container)
            raise PodFailure(first.reason, first.message, first.container)

    def _find(self, name: str | None) -> ContainerRecord | None:
        return next((c for c in self.init + self.main if c.name == name), None)

    def _setup_volumes(self) -> None:
        """Write the volumes; a missing ConfigMap or Secret keeps the pod in ContainerCreating, retried."""
        warned = ""
        while True:
            self._tolerant(self._check_pod)
            if self._interrupted():
                return
            try:
                self.objects.forget()
                self.volumes = volume_contents(
                    self.pod, self.objects, self._token, pod_ip=self.pod_ip, host_ip=self.host_ip
                )
                break
            except ContainerConfigError as exc:
                message = f"MountVolume.SetUp failed: {exc}"
                if message != warned:
                    self._event("FailedMount", message, warning=True)
                    warned = message
            except Exception as exc:
                if not self._transient(exc):
                    raise
                self._warn_api(exc)
            self._sleep(2.0)
        gid = (self.spec.get("securityContext") or {}).get("fsGroup")
        for content in self.volumes.values():
            if content.kind == "hostPath":
                path = content.host_path or "/"
                kind = ((self._volume_spec(content.name).get("hostPath") or {}).get("type")) or ""
                if not os.path.exists(path):
                    if kind == "DirectoryOrCreate":
                        self.held_paths += self.runner.host_paths.acquire(path, False, self.holder)
                    elif kind == "FileOrCreate":
                        self.held_paths += self.runner.host_paths.acquire(path, True, self.holder)
                    else:
                        raise PodFailure("CreateContainerConfigError", f"hostPath {path} does not exist")
                self.volume_sources[content.name] = ("hostPath", path)
                continue
            target = volume_dir(self.pod_dir, content)
            target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            if content.kind == "emptyDir":
                target.mkdir(mode=0o777, exist_ok=True)
                os.chmod(target, 0o2777 if gid is not None else 0o777)
                if gid is not None:
                    os.chown(target, -1, int(gid))
            else:
                write_atomic(target, content.files, gid=int(gid) if gid is not None else None)
            self.volume_sources[content.name] = (content.kind, str(target))
            now = time.monotonic()
            for token in content.tokens:
                token.refresh_at = now + token.expiration_seconds * self.runner.token_refresh_fraction
                self.tokens.append(token)
        self.sandbox_ready = True
        self._write_etc_files()

    def _volume_spec(self, name: str) -> dict:
        return next((v for v in self.spec.get("volumes") or [] if v["name"] == name), {})

    def _token(self, audience: str, seconds: int) -> str:
        try:
            return self.api.request_token(self.pod, audience, seconds)
        except self.api.exception as exc:
            if exc.status == 404:
                raise ContainerConfigError(
                    f'failed to fetch token: serviceaccounts "{self.spec.get("serviceAccountName", "default")}" '
                    "not found"
                ) from exc
            raise ContainerConfigError(f"failed to fetch token: {exc.reason}") from exc

    def _write_etc_files(self) -> None:
        dns_policy = self.spec.get("dnsPolicy", "ClusterFirst")
        dns_config = self.spec.get("dnsConfig") or {}
        lines = []
        if dns_policy in ("ClusterFirst", "ClusterFirstWithHostNet", "None"):
            servers, searches, options = [], [], []
            if dns_policy != "None":
                servers = list(self.nameservers)
                domain = self.runner.cluster_domain
                searches = [f"{self.namespace}.svc.{domain}", f"svc.{domain}", domain]
                options = ["ndots:5"]
            servers += dns_config.get("nameservers") or []
            searches += [s for s in dns_config.get("searches") or [] if s not in searches]
            for opt in dns_config.get("options") or []:
                options = [o for o in options if o.split(":")[0] != opt["name"]]
                options.append(f"{opt['name']}:{opt['value']}" if opt.get("value") else opt["name"])
            lines += [f"search {' '.join(searches)}"] if searches else []
            lines += [f"nameserver {s}" for s in servers]
            lines += [f"options {' '.join(options)}"] if options else []
        self.etc_files: dict[str, str] = {}
        if lines and (dns_policy == "None" or self.nameservers):
            resolv = self.pod_dir / "resolv.conf"
            resolv.write_text("\n".join(lines) + "\n")
            os.chmod(resolv, 0o644)
            self.etc_files["/etc/resolv.conf"] = str(resolv)
        hostname = self.spec.get("hostname") or self.name
        if self.spec.get("subdomain"):
            fqdn = f"{hostname}.{self.spec['subdomain']}.{self.namespace}.svc.{self.runner.cluster_domain}"
            names = f"{fqdn}\t{hostname}"
        else:
            names = hostname
        hosts = [
            "# Kubernetes-managed hosts file.",
            "127.0.0.1\tlocalhost",
            "::1\tlocalhost ip6-localhost ip6-loopback",
            "fe00::0\tip6-localnet",
            "fe00::0\tip6-mcastprefix",
            "fe00::1\tip6-allnodes",
            "fe00::2\tip6-allrouters",
        ]
        if self.pod_ip:
            hosts.append(f"{self.pod_ip}\t{names}")
        aliases = self.spec.get("hostAliases") or []
        if aliases:
            hosts.append("\n# Entries added by HostAliases.")
            hosts += [f"{a['ip']}\t{chr(9).join(a.get('hostnames') or [])}" for a in aliases]
        if not self.spec.get("hostNetwork"):
            path = self.pod_dir / "hosts"
            path.write_text("\n".join(hosts) + "\n")
            os.chmod(path, 0o644)
            self.etc_files["/etc/hosts"] = str(path)
        self.hostname = hostname[:63]

    def _loop(self) -> None:
        init_index = 0
        while True:
            self._tolerant(self._check_pod)
            if self._interrupted():
                self._terminate()
                return
            self._reap()
            if self._deadline_passed():
                self._event("DeadlineExceeded", DEADLINE_MESSAGE, warning=True)
                self._end_all(self._grace())
                self.failure = ("DeadlineExceeded", DEADLINE_MESSAGE)
                self._write_status()
                return
            now = time.monotonic()
            if init_index < len(self.init):
                record = self.init[init_index]
                if record.final:
                    if record.exit_code != 0:
                        self._write_status()
                        return
                    init_index += 1
                    continue
                if record.name not in self.processes and now >= self.next_start.get(record.name, 0.0):
                    self._start(record)
            else:
                for record in self.main:
                    due = now >= self.next_start.get(record.name, 0.0)
                    if due and not record.final and record.name not in self.processes:
                        self._start(record)
                if all(r.final for r in self.main):
                    self._write_status()
                    return
            self._refresh_tokens()
            self._tolerant(self._sync_status)
            self._sleep(0.1)

    # -- processes -----------------------------------------------------------------------------

    def _start(self, record: ContainerRecord) -> None:
        container = self.containers[record.name]
        try:
            env = self._environment(container)
            argv = container_argv(container, env)
            mounts = plan_mounts(container, self.volume_sources, env)
            cwd = container.get("workingDir") or ""
            user = self._user(container)
        except ContainerConfigError as exc:
            message = str(exc)
            if record.state.get("waiting", {}).get("message") != message:
                self._event("Failed", f"Error: {message}", warning=True, container=record.name)
            record.state = {"waiting": {"reason": "CreateContainerConfigError", "message": message}}
            self.next_start[record.name] = time.monotonic() + 2.0
            return
        self._hold_mount_points(mounts, cwd)
        full_env = {
            "PATH": self.runner.path_for(container.get("image", "")),
            "HOSTNAME": self.name,
            "HOME": self._home(record.name, user),
        }
        full_env.update(self.extra_env)
        full_env.update(env)
        spec = {
            "argv": argv,
            "env": full_env,
            "workingDir": cwd or "/",
            "netns": self.netns,
            "hostname": self.hostname,
            "mounts": [
                {"volume": m.volume, "source": m.source, "target": m.target, "readOnly": m.read_only} for m in mounts
            ],
            "etcFiles": self.etc_files,
            **user,
        }
        rule = find_image(container.get("image", ""))
        if rule and rule.programs and argv[0] in rule.programs:
            spec["notFoundHint"] = (
                f" (the local stack runs {rule.title} containers with the host's {argv[0]}; `make setup` installs it)"
            )
        restart = record.restart_count
        log = ContainerLog(self.log_dir / record.name / f"{restart}.log")
        self.log_files.setdefault(record.name, []).append(str(log.path))
        spec_r, spec_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            proc = subprocess.Popen(
                [self.runner.python, "-I", "-S", str(LAUNCHER), str(spec_r), str(err_w)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(spec_r, err_w),
                start_new_session=True,
                env={},
                cwd="/",
            )
        finally:
            os.close(spec_r)
            os.close(err_w)
        started_at = rfc3339()
        try:
            with os.fdopen(spec_w, "wb") as handle:
                handle.write(json.dumps(spec).encode())
        except BrokenPipeError:
            pass
        log.pump("stdout", proc.stdout)
        log.pump("stderr", proc.stderr)
        error = _read_launch_error(err_r)
        record.ran = True
        record.container_id = f"host://{proc.pid}"
        self._publish_logs()
        if error is not None:
            proc.wait()
            log.wait()
            log.close()
            self._event("Failed", f"Error: {error['message']}", warning=True, container=record.name)
            self._finish(record, 128, started_at, error.get("reason", "StartError"), error["message"])
            return
        record.state = {"running": {"startedAt": started_at}}
        self.processes[record.name] = _Process(record, proc, log, time.monotonic(), started_at)
        self._event(
            "Pulled", f'Container image "{container.get("image")}" already present on machine', container=record.name
        )
        self._event("Started", f"Started container {record.name}", container=record.name)
        LOG.info("pod %s/%s container %s: pid %d: %s", self.namespace, self.name, record.name, proc.pid, argv[0])

    def _home(self, container: str, user: Mapping[str, Any]) -> str:
        """An empty HOME of the container's own, so the host's (~/.aws, ~/.pgpass) stays out of the pod."""
        home = Path(tempfile.gettempdir()) / f"layered-kubelet-{self.uid}-{container}"
        home.mkdir(mode=0o700, exist_ok=True)
        os.chown(home, int(user.get("uid", 0)), int(user.get("gid", 0)))
        self.homes.add(home)
        return str(home)

    def _environment(self, container: dict) -> dict[str, str]:
        if self.services is None:
            try:
                self.services = service_env(self.api.read_service("default", "kubernetes"))
            except Exception:  # the service variables are a convenience
                self.services = {}
        self.objects.forget()
        return container_env(
            self.pod, container, self.objects, pod_ip=self.pod_ip, host_ip=self.host_ip, services=self.services
        )

    def _user(self, container: dict) -> dict:
        pod_ctx = self.spec.get("securityContext") or {}
        ctx = container.get("securityContext") or {}
        uid = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        gid = ctx.get("runAsGroup", pod_ctx.get("runAsGroup"))
        non_root = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
        if non_root and not uid:
            raise ContainerConfigError("container has runAsNonRoot and image will run as root")
        groups = list(pod_ctx.get("supplementalGroups") or [])
        if pod_ctx.get("fsGroup") is not None:
            groups.append(pod_ctx["fsGroup"])
        if uid is None and gid is None and not groups:
            return {}
        return {"uid": uid if uid is not None else 0, "gid": gid if gid is not None else 0, "groups": groups}

    def _hold_mount_points(self, mounts: list[MountPlan], cwd: str) -> None:
        """Create what is missing for the mounts (recorded), inside an outer mount's volume when nested."""
        for index, mount in enumerate(mounts):
            outer = None
            for other in mounts[:index]:
                if mount.target.startswith(other.target.rstrip("/") + "/") and not other.is_file:
                    outer = other
            if outer is not None:
                inner = os.path.join(outer.source, os.path.relpath(mount.target, outer.target))
                if not os.path.lexists(inner):
                    if mount.is_file:
                        os.makedirs(os.path.dirname(inner), exist_ok=True)
                        Path(inner).touch()
                    else:
                        os.makedirs(inner, exist_ok=True)
                continue
            if mount.target in self.mount_points:
                continue
            self.mount_points.add(mount.target)
            self.held_paths += self.runner.host_paths.acquire(mount.target, mount.is_file, self.holder)
        inside = any(cwd == m.target or cwd.startswith(m.target.rstrip("/") + "/") for m in mounts)
        if cwd and not inside and cwd not in self.mount_points and not os.path.exists(cwd):
            self.mount_points.add(cwd)
            self.held_paths += self.runner.host_paths.acquire(cwd, False, self.holder)

    def _reap(self, force: bool = False) -> None:
        for name, process in list(self.processes.items()):
            try:
                code = process.proc.wait(timeout=10) if force else process.proc.poll()
            except subprocess.TimeoutExpired:
                LOG.error("pod %s/%s: container %s does not die", self.namespace, self.name, name)
                continue
            if code is None:
                continue
            del self.processes[name]
            # the container's other processes go with its main process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.proc.pid, signal.SIGKILL)
            process.log.wait()
            process.log.close()
            exit_code = code if code >= 0 else 128 - code
            container = self.containers[name]
            message = ""
            if exit_code != 0 and container.get("terminationMessagePolicy") == "FallbackToLogsOnError":
                message = process.log.tail()
            reason = "Completed" if exit_code == 0 else "Error"
            self._finish(process.record, exit_code, process.started_at, reason, message)

    def _finish(self, record: ContainerRecord, exit_code: int, started_at: str, reason: str, message: str) -> None:
        terminated: dict[str, Any] = {
            "exitCode": exit_code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": rfc3339(),
        }
        if message:
            terminated["message"] = message
        if record.container_id:
            terminated["containerID"] = record.container_id
        record.state = {"terminated": terminated}
        restart = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and exit_code != 0)
        if record.init:
            restart = exit_code != 0 and self.restart_policy != "Never"
        if restart and not self.ending:
            delay = min(self.runner.backoff[0] * (2**record.restart_count), self.runner.backoff[1])
            self.next_start[record.name] = time.monotonic() + delay
            record.last_state = {"terminated": terminated}
            record.restart_count += 1
            record.state = {
                "waiting": {
                    "reason": "CrashLoopBackOff",
                    "message": f"back-off {delay:g}s restarting failed container={record.name} "
                    f"pod={self.name}_{self.namespace}({self.uid})",
                }
            }
            self._event("BackOff", "Back-off restarting failed container", warning=True, container=record.name)
        else:
            record.final = True

    def _grace(self) -> float:
        meta = self.pod.get("metadata") or {}
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = self.spec.get("terminationGracePeriodSeconds", 30)
        return max(0.0, min(float(grace), self.runner.max_grace_seconds))

    def _kill_all(self, grace: float) -> None:
        if not self.processes:
            return
        for name, process in self.processes.items():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.proc.pid, signal.SIGTERM)
            if grace:
                self._event("Killing", f"Stopping container {name}", container=name)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        for process in self.processes.values():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.proc.pid, signal.SIGKILL)

    def _end_all(self, grace: float) -> None:
        """Stop every process; containers that never ran are reported as the kubelet reports them."""
        self.ending = True
        self._kill_all(grace)
        self._reap(force=True)
        for record in self.init + self.main:
            if not record.final and "terminated" not in record.state:
                if "terminated" in record.last_state:
                    # waiting to be restarted: its last run is how it ended
                    record.state, record.last_state = record.last_state, {}
                else:
                    record.state = {
                        "terminated": {
                            "exitCode": 137,
                            "reason": "ContainerStatusUnknown",
                            "message": "The container could not be located when the pod was terminated",
                            "startedAt": None,
                            "finishedAt": rfc3339(),
                        }
                    }
            record.final = True

    def _terminate(self) -> None:
        """Deletion: stop the processes, then a last status if the pod is still there."""
        self.deleting = True
        self._end_all(self._grace())
        if self.gone:
            return
        try:
            self._write_status()
        except PodGone:
            self.gone = True
            return
        except self.api.exception as exc:
            LOG.info("pod %s/%s: last status not written: %s", self.namespace, self.name, exc.reason)
        if self.runner.finalize_deletion and self.deleting_in_api:
            self.api.delete_pod(self.namespace, self.name, self.uid)

    @property
    def deleting_in_api(self) -> bool:
        return bool((self.pod.get("metadata") or {}).get("deletionTimestamp"))

    def _interrupted(self) -> bool:
        return self.gone or self.deleting_in_api or self.stop_requested.is_set()

    def _deadline_passed(self) -> bool:
        deadline = self.spec.get("activeDeadlineSeconds")
        return deadline is not None and time.monotonic() - self.started_monotonic >= float(deadline)

    def _sleep(self, seconds: float) -> None:
        self.stop_requested.wait(seconds)

    # -- the API server ----------------------------------------------------------------------------

    def _check_pod(self) -> None:
        """Poll the pod (every ``poll_seconds``): deletion, or a new pod of the same name."""
        now = time.monotonic()
        if now < self.next_poll:
            return
        self.next_poll = now + self.runner.poll_seconds
        current = self.api.read_pod(self.namespace, self.name)
        if current is None or current["metadata"].get("uid") != self.uid:
            self.gone = True
            return
        self.pod["metadata"] = current["metadata"]

    def _transient(self, exc: BaseException) -> bool:
        """An API server briefly away or overloaded: the pod goes on, the call is made again later."""
        if isinstance(exc, self.api.exception):
            return exc.status in (None, 0, 429, 500, 502, 503, 504)
        return isinstance(exc, (OSError, urllib3.exceptions.HTTPError))

    def _warn_api(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now >= self.api_warned_at + 10:
            self.api_warned_at = now
            LOG.warning("pod %s/%s: API server unavailable, retrying: %s", self.namespace, self.name, exc)

    def _tolerant(self, call: Callable[[], None]) -> bool:
        try:
            call()
        except Exception as exc:
            if isinstance(exc, (PodGone, _AlreadyEnded)) or not self._transient(exc):
                raise
            self._warn_api(exc)
            return False
        return True

    def _write_status(self, timeout: float = 60.0) -> None:
        """The status, written whatever it takes within ``timeout`` (the pod's start and end must be seen)."""
        deadline = time.monotonic() + timeout
        while not self._tolerant(self._sync_status):
            if time.monotonic() > deadline:
                LOG.error("pod %s/%s: status not written within %.0f s", self.namespace, self.name, timeout)
                return
            time.sleep(1.0)

    def _sync_status(self) -> None:
        """Write the status when the kubelet's part of it changed; conflicts are retried on a fresh read."""
        phase = pod_phase(self.init, self.main, self.failure is not None)
        reason, message = self.failure or (None, None)
        records = [c.status() for c in self.init + self.main]
        fingerprint = json.dumps([phase, reason, message, self.sandbox_ready, records], sort_keys=True)
        if fingerprint == self.last_written:
            return
        for _ in range(10):
            current = self.api.read_pod(self.namespace, self.name)
            if current is None or current["metadata"].get("uid") != self.uid:
                raise PodGone
            self.pod["metadata"] = current["metadata"]
            existing = current.get("status") or {}
            if self.last_written is None and existing.get("phase") in ("Succeeded", "Failed"):
                raise _AlreadyEnded
            current["status"] = build_status(
                existing,
                init=self.init,
                main=self.main,
                phase=phase,
                pod_ip=self.pod_ip,
                host_ip=self.host_ip,
                start_time=self.start_time,
                sandbox_ready=self.sandbox_ready,
                reason=reason,
                message=message,
                generation=current["metadata"].get("generation"),
            )
            try:
                self.api.replace_pod_status(current)
            except self.api.exception as exc:
                if exc.status == 409:
                    continue
                if exc.status == 404:
                    raise PodGone from exc
                raise
            self.last_written = fingerprint
            LOG.debug("pod %s/%s: status written: %s", self.namespace, self.name, phase)
            return
        raise RuntimeError(f"pod {self.namespace}/{self.name}: status conflicts did not stop")

    def _fail_pod(self, exc: PodFailure) -> None:
        """The pod cannot run: containers that cannot start say why, the others were never run."""
        LOG.info("pod %s/%s failed: %s", self.namespace, self.name, exc.message)
        guilty = self._find(exc.container)
        if guilty is not None and not guilty.final and "terminated" not in guilty.state:
            guilty.state = {"waiting": {"reason": exc.reason, "message": exc.message}}
        for record in self.init + self.main:
            waiting = record.state.get("waiting") or {}
            if not record.final and waiting.get("reason") not in (None, "ContainerCreating", "PodInitializing"):
                record.state = {
                    "terminated": {
                        "exitCode": 128,
                        "reason": waiting["reason"],
                        "message": waiting.get("message", ""),
                        "startedAt": None,
                        "finishedAt": rfc3339(),
                    }
                }
                record.final = True
        self._end_all(0)
        self.failure = (exc.reason, exc.message)
        try:
            self._write_status()
        except PodGone:
            self.gone = True

    def _refresh_tokens(self) -> None:
        now = time.monotonic()
        due = [t for t in self.tokens if now >= t.refresh_at]
        if not due:
            return
        self.objects.forget()
        for volume in {t.volume for t in due}:
            content = self.volumes[volume]
            try:
                fresh = volume_contents(
                    {**self.pod, "spec": {**self.spec, "volumes": [self._volume_spec(volume)]}},
                    self.objects,
                    self._token,
                    pod_ip=self.pod_ip,
                    host_ip=self.host_ip,
                )[volume]
            except Exception as exc:
                if not isinstance(exc, (ContainerConfigError, PodFailure)) and not self._transient(exc):
                    raise
                LOG.warning("pod %s/%s: volume %s not renewed: %s", self.namespace, self.name, volume, exc)
                for token in content.tokens:
                    token.refresh_at = now + 10.0
                continue
            gid = (self.spec.get("securityContext") or {}).get("fsGroup")
            write_atomic(volume_dir(self.pod_dir, content), fresh.files, gid=int(gid) if gid is not None else None)
            for token in content.tokens:
                token.refresh_at = now + token.expiration_seconds * self.runner.token_refresh_fraction
            LOG.info("pod %s/%s: renewed the tokens of volume %s", self.namespace, self.name, volume)

    def _publish_logs(self) -> None:
        """Tell kwok's kubelet server where the current and previous log of each container are."""
        if not self.runner.kwok_logs or not self.logs_published:
            return
        entries = []
        for name, files in self.log_files.items():
            entry: dict[str, Any] = {"containers": [name], "logsFile": files[-1]}
            if len(files) > 1:
                entry["previousLogsFile"] = files[-2]
            entries.append(entry)
        body = {
            "apiVersion": f"{KWOK_GROUP}/{KWOK_VERSION}",
            "kind": "Logs",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER},
                "ownerReferences": [{"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}],
            },
            "spec": {"logs": entries},
        }
        try:
            self.logs_published = self.api.apply_logs(body)
        except Exception as exc:  # logs stay readable on disk
            LOG.warning("pod %s/%s: Logs object not written: %s", self.namespace, self.name, exc)

    # -- the end ---------------------------------------------------------------------------------

    def _cleanup(self) -> None:
        left = self.runner.host_paths.release(self.held_paths, self.holder)
        if left:
            LOG.warning("pod %s/%s: mount points not empty, left in place: %s", self.namespace, self.name, left)
        self.held_paths = []
        for home in self.homes:
            shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(self.pod_dir, ignore_errors=True)
        if self.gone or self.deleting:
            if self.runner.kwok_logs:
                with contextlib.suppress(Exception):
                    self.api.delete_logs(self.namespace, self.name, self.uid)
            if self.gone:
                self.runner.forget(self.namespace, self.name, self.uid)


def _read_launch_error(fd: int, timeout: float = 30.0) -> dict | None:
    """What the launcher reported before exec; None once exec closed the descriptor."""
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(fd)
    if not chunks:
        return None
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return {"reason": "StartError", "message": b"".join(chunks).decode(errors="replace")}


def _parse_time(value: str) -> float:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()


# --------------------------------------------------------------------------------------------------
# A node's dispatcher, for manual use (and the tests)
# --------------------------------------------------------------------------------------------------


class Dispatcher:
    """Polls the pods bound to ``node`` that match ``selector`` and runs each new one in a thread."""

    def __init__(
        self,
        runner: PodRunner,
        node: str,
        *,
        selector: str = JOB_LABEL,
        pod_ip: str = "127.0.0.1",
        host_ip: str = "127.0.0.1",
        nameservers: list[str] | None = None,
        extra_env: Mapping[str, str] | None = None,
        netns: str | None = None,
        interval: float = 0.5,
    ) -> None:
        self.runner, self.node, self.selector = runner, node, selector
        self.pod_ip, self.host_ip, self.netns = pod_ip, host_ip, netns
        self.nameservers = nameservers or []
        self.extra_env = dict(extra_env or {})
        self.interval = interval
        self._seen: dict[str, tuple[str, str]] = {}
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.errors: list[str] = []

    def poll_once(self) -> None:
        pods = self.runner.api._json(
            self.runner.api.core.list_pod_for_all_namespaces(
                field_selector=f"spec.nodeName={self.node}", label_selector=self.selector, _preload_content=False
            )
        )
        listed = set()
        for pod in pods.get("items") or []:
            uid = pod["metadata"]["uid"]
            listed.add(uid)
            if uid in self._seen:
                continue
            if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                continue
            if pod["metadata"].get("deletionTimestamp"):
                continue
            self._seen[uid] = (pod["metadata"]["namespace"], pod["metadata"]["name"])
            thread = threading.Thread(target=self._run, args=(pod,), daemon=True, name=f"pod-{pod['metadata']['name']}")
            thread.start()
            self._threads.append(thread)
        # pods deleted after they ended: their log files go too
        running = set(self.runner.running())
        for uid, (namespace, name) in list(self._seen.items()):
            if uid not in listed and (namespace, name) not in running:
                self.runner.forget(namespace, name, uid)
                del self._seen[uid]

    def _run(self, pod: dict) -> None:
        try:
            self.runner.run(
                pod,
                pod_ip=self.pod_ip,
                host_ip=self.host_ip,
                netns=self.netns,
                nameservers=self.nameservers,
                extra_env=self.extra_env,
            )
        except Exception as exc:  # one pod's trouble must not stop the others
            LOG.exception("pod %s/%s", pod["metadata"]["namespace"], pod["metadata"]["name"])
            self.errors.append(f"{pod['metadata']['name']}: {exc!r}")

    def serve(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # the API server may be briefly away
                LOG.warning("listing pods: %s", exc)
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.serve, daemon=True, name="dispatcher")
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        self.runner.shutdown(timeout)
        for thread in self._threads:
            thread.join(timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the pods of Jobs bound to a node as host processes.")
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--selector", default=JOB_LABEL, help="label selector of the pods to run")
    parser.add_argument("--pod-ip", default="127.0.0.1")
    parser.add_argument("--host-ip", default="127.0.0.1")
    parser.add_argument("--nameserver", action="append", default=[])
    parser.add_argument("--env", action="append", default=[], help="NAME=VALUE given to every container")
    parser.add_argument("--netns", help="network namespace of the pods (default: the host's)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from kubernetes import config

    api_client = config.new_client_from_config(config_file=args.kubeconfig)
    runner = PodRunner(api_client, args.state_dir)
    extra = dict(item.split("=", 1) for item in args.env)
    dispatcher = Dispatcher(
        runner,
        args.node,
        selector=args.selector,
        pod_ip=args.pod_ip,
        host_ip=args.host_ip,
        nameservers=args.nameserver,
        extra_env=extra,
        netns=args.netns,
    )
    signal.signal(signal.SIGTERM, lambda *_: dispatcher._stop.set())
    try:
        dispatcher.serve()
    except KeyboardInterrupt:
        pass
    finally:
        dispatcher.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
