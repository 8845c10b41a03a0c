"""Start one container process of the local stack's kubelet stand-in (tests/stack/kubelet.py).

Run as root by the stand-in, never by hand::

    python -I -S kubelet_launcher.py SPEC_FD ERROR_FD

It reads a JSON specification from the inherited descriptor SPEC_FD, then, in
this order:

1. joins the pod's network namespace (``netns``: a name under ``/run/netns``
   or a path such as ``/proc/<pid>/ns/net``), when one is given;
2. enters new mount, UTS and IPC namespaces, makes every mount private (so
   nothing done here is seen by the host), and, inside a network namespace,
   mounts a fresh ``/sys`` and the files of ``/etc/netns/<name>`` over
   ``/etc`` as ``ip netns exec`` does;
3. bind-mounts the pod's volumes at their mount paths (``mounts``, shallowest
   first, read-only ones remounted read-only) and the generated
   ``/etc/resolv.conf`` and ``/etc/hosts``; the stand-in has created every
   mount point beforehand;
4. sets the host name (the pod's name), the groups and the user, changes to
   the working directory;
5. executes the program with exactly the environment of the specification
   (the program is looked up in that environment's ``PATH``).

Anything that fails before the program runs is written as JSON
``{"reason": ..., "message": ...}`` to ERROR_FD and the launcher exits with
status 128; ERROR_FD is closed on a successful exec, so the stand-in reads
nothing. Only the standard library is used, so the launcher runs with ``-I -S``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import json
import os
import sys

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
MNT_DETACH = 2

START_FAILED = 128

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


class LaunchError(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise LaunchError("StartError", f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, label: str = "") -> None:
    _check(
        _libc.mount(
            source.encode() if source is not None else None,
            target.encode(),
            fstype.encode() if fstype is not None else None,
            ctypes.c_ulong(flags),
            None,
        ),
        f"mount {label or source or ''} on {target}",
    )


def _bind(source: str, target: str, read_only: bool, label: str = "") -> None:
    _mount(source, target, None, MS_BIND | MS_REC, label)
    if read_only:
        # a read-only remount must repeat the flags the mount already has
        st = os.statvfs(target)
        keep = st.f_flag & (os.ST_NOSUID | os.ST_NODEV | os.ST_NOEXEC)
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY
        flags |= MS_NOSUID if keep & os.ST_NOSUID else 0
        flags |= MS_NODEV if keep & os.ST_NODEV else 0
        flags |= MS_NOEXEC if keep & os.ST_NOEXEC else 0
        _mount(None, target, None, flags, "(read-only)")


def _open_path(path: str, what: str) -> int:
    try:
        return os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError as exc:
        raise LaunchError("RunContainerError", f"{what}: {path}: {exc.strerror}") from exc


def _join_netns(netns: str) -> None:
    path = netns if netns.startswith("/") else os.path.join("/run/netns", netns)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise LaunchError("StartError", f"network namespace {netns}: {exc.strerror}") from exc
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns}")
    finally:
        os.close(fd)


def _netns_files(netns: str) -> None:
    """What ``ip netns exec`` does besides joining: a /sys of the namespace and /etc/netns/<name>."""
    if _libc.umount2(b"/sys", MNT_DETACH) == 0:
        with contextlib.suppress(LaunchError):
            _mount("sysfs", "/sys", "sysfs", 0)
    if netns.startswith("/"):
        return
    etc_dir = os.path.join("/etc/netns", netns)
    if not os.path.isdir(etc_dir):
        return
    for entry in sorted(os.listdir(etc_dir)):
        target = os.path.join("/etc", entry)
        if os.path.exists(target):
            _bind(os.path.join(etc_dir, entry), target, False)


def _isolate(spec: dict) -> None:
    netns = spec.get("netns")
    if netns:
        _join_netns(netns)
    _check(_libc.unshare(CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC), "unshare")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    if netns:
        _netns_files(netns)
    # every source is opened before anything is mounted: a mount (the pod's /tmp) may hide later sources
    mounts = [(m, _open_path(m["source"], m.get("volume", "?"))) for m in spec.get("mounts", [])]
    etc_files = [
        (target, _open_path(source, target))
        for target, source in (spec.get("etcFiles") or {}).items()
        # /etc/resolv.conf may be a symlink; the mount lands on what it points to
        if os.path.exists(target)
    ]
    for mount, fd in mounts:
        try:
            _bind(f"/proc/self/fd/{fd}", mount["target"], bool(mount.get("readOnly")), mount["source"])
        except LaunchError as exc:
            raise LaunchError("RunContainerError", f"volume {mount.get('volume', '?')}: {exc.message}") from exc
        finally:
            os.close(fd)
    for target, fd in etc_files:
        try:
            _bind(f"/proc/self/fd/{fd}", target, False, target)
        finally:
            os.close(fd)
    hostname = (spec.get("hostname") or "").encode()
    if hostname:
        _check(_libc.sethostname(hostname, len(hostname)), "sethostname")


def _become(spec: dict) -> None:
    uid, gid = spec.get("uid"), spec.get("gid")
    groups = spec.get("groups")
    try:
        if groups is not None or gid is not None or uid is not None:
            os.setgroups(list(groups or []))
        if gid is not None:
            os.setgid(int(gid))
        if uid is not None:
            os.setuid(int(uid))
    except OSError as exc:
        raise LaunchError("StartError", f"setting user {uid}/{gid}: {exc.strerror}") from exc
    cwd = spec.get("workingDir") or "/"
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise LaunchError("StartError", f"chdir to cwd ({cwd!r}) set in config.json failed: {exc.strerror}") from exc
    os.umask(0o022)


def _exec(spec: dict) -> None:
    argv = list(spec["argv"])
    env = dict(spec.get("env") or {})
    try:
        os.execvpe(argv[0], argv, env)
    except FileNotFoundError as exc:
        where = "" if "/" in argv[0] else " in $PATH"
        raise LaunchError(
            "StartError", f'exec: "{argv[0]}": executable file not found{where}{spec.get("notFoundHint", "")}'
        ) from exc
    except OSError as exc:
        raise LaunchError("StartError", f'exec: "{argv[0]}": {exc.strerror}') from exc


def main(argv: list[str]) -> int:
    spec_fd, error_fd = int(argv[1]), int(argv[2])
    with os.fdopen(spec_fd, "rb") as handle:
        spec = json.loads(handle.read())
    os.set_inheritable(error_fd, False)
    try:
        _isolate(spec)
        _become(spec)
        _exec(spec)
    except LaunchError as exc:
        os.write(error_fd, json.dumps({"reason": exc.reason, "message": exc.message}).encode())
        return START_FAILED
    except Exception as exc:  # whatever fails is reported as the container's start error
        os.write(error_fd, json.dumps({"reason": "StartError", "message": f"{type(exc).__name__}: {exc}"}).encode())
        return START_FAILED
    return START_FAILED  # not reached: exec replaced the process


if __name__ == "__main__":
    sys.exit(main(sys.argv))
