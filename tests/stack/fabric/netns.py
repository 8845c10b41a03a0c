"""Network namespaces of the local VPC: one router namespace and one namespace per endpoint.

Every address that sends or receives packets in the local VPC (a pod, the database's network
interface, the DNS server, an interface VPC endpoint, the public AWS endpoint) lives in a
namespace of its own with that one address on ``eth0``. Its peer end sits in the router
namespace, which forwards between them and holds the nftables table that enforces security
groups, network ACLs and routes. Nothing is attached to the host's own interfaces: the only way
in or out of these namespaces is a socket that the stack's agent opens inside one of them.

Names: the router is ``<prefix>-vpc``; an endpoint is ``<prefix>-<8 hex of its address>``, and
its router-side interface ``<prefix><8 hex>``. ``teardown(prefix)`` removes every namespace with
the prefix (the veth pairs and nftables tables go with them).
"""

from __future__ import annotations

import ctypes
import hashlib
import ipaddress
import os
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
GATEWAY = "169.254.1.1"
NETNS_DIR = Path("/run/netns")
DEFAULT_PREFIX = "lr"

_libc = ctypes.CDLL(None, use_errno=True)


class NetnsError(RuntimeError):
    pass


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise NetnsError(f"ip {' '.join(args)}: {result.stderr.strip()}")
    return result


def router_name(prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-vpc"


def _tag(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:8]


def endpoint_name(address: str, prefix: str = DEFAULT_PREFIX) -> str:
    return f"{prefix}-{_tag(address)}"


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


def names(prefix: str = DEFAULT_PREFIX) -> list[str]:
    if not NETNS_DIR.is_dir():
        return []
    return sorted(p.name for p in NETNS_DIR.iterdir() if p.name.startswith(f"{prefix}-"))


def sysctl(ns: str, key: str, value: str) -> None:
    subprocess.run(
        ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}"],
        capture_output=True,
        text=True,
        check=True,
    )


def ensure_router(prefix: str = DEFAULT_PREFIX) -> str:
    name = router_name(prefix)
    if not exists(name):
        ip("netns", "add", name)
        ip("-n", name, "link", "set", "lo", "up")
        sysctl(name, "net.ipv4.ip_forward", "1")
        sysctl(name, "net.ipv4.conf.all.rp_filter", "0")
        sysctl(name, "net.ipv4.conf.default.rp_filter", "0")
    return name


def ensure_endpoint(address: str, prefix: str = DEFAULT_PREFIX) -> str:
    """A namespace holding ``address`` on eth0, routed through the router namespace."""
    ipaddress.IPv4Address(address)
    router = ensure_router(prefix)
    name = endpoint_name(address, prefix)
    link = f"{prefix}{_tag(address)}"
    if exists(name) and ip("-n", router, "link", "show", link, check=False).returncode == 0:
        return name
    teardown_endpoint(address, prefix)
    ip("netns", "add", name)
    ip("-n", router, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", name)
    ip("-n", name, "link", "set", "lo", "up")
    ip("-n", name, "addr", "add", f"{address}/32", "dev", "eth0")
    ip("-n", name, "link", "set", "eth0", "up")
    ip("-n", name, "route", "add", GATEWAY, "dev", "eth0", "scope", "link")
    ip("-n", name, "route", "add", "default", "via", GATEWAY, "dev", "eth0")
    # the router answers ARP for the gateway address on every endpoint link
    ip("-n", router, "addr", "add", f"{GATEWAY}/32", "dev", link)
    ip("-n", router, "link", "set", link, "up")
    ip("-n", router, "route", "replace", f"{address}/32", "dev", link)
    sysctl(router, f"net.ipv4.conf.{link}.rp_filter", "0")
    return name


def teardown_endpoint(address: str, prefix: str = DEFAULT_PREFIX) -> None:
    name = endpoint_name(address, prefix)
    if exists(name):
        ip("netns", "delete", name, check=False)
    router = router_name(prefix)
    if exists(router):
        ip("-n", router, "link", "delete", f"{prefix}{_tag(address)}", check=False)


def teardown(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Delete every namespace whose name starts with the prefix; return their names."""
    removed = []
    for name in names(prefix):
        ip("netns", "delete", name, check=False)
        removed.append(name)
    return removed


def run_in(ns: str, func: Callable[[], T]) -> T:
    """Call ``func`` on a thread that has entered namespace ``ns``.

    Sockets keep the namespace they were created in, so a listener made here accepts connections
    inside ``ns`` while the rest of the process (and its outgoing connections) stays on the host.
    """
    box: dict[str, object] = {}

    def target() -> None:
        try:
            fd = os.open(str(NETNS_DIR / ns), os.O_RDONLY)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise NetnsError(f"setns {ns}: {os.strerror(err)}")
            finally:
                os.close(fd)
            box["value"] = func()
        except BaseException as exc:  # handed back to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"netns-{ns}", daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def listen(ns: str, address: str, port: int, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A TCP (or UDP) socket bound to ``address:port`` inside namespace ``ns``."""

    def make() -> socket.socket:
        sock = socket.socket(socket.AF_INET, kind)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((address, port))
        if kind == socket.SOCK_STREAM:
            sock.listen(64)
        return sock

    return run_in(ns, make)
