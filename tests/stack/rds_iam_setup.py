"""Install RDS IAM database authentication for a local PostgreSQL: PAM service, PAM program and pg_hba.conf.

    python tests/stack/rds_iam_setup.py install --dir DIR --service NAME --url URL --log FILE [--owner postgres]
    python tests/stack/rds_iam_setup.py hba [--service NAME]
    python tests/stack/rds_iam_setup.py uninstall --service NAME

``install`` copies ``rds_iam_pam.py`` into DIR, builds ``pam_authtok_exec.so`` there from
``pam_authtok_exec.c`` (needs a C compiler and the PAM headers, Debian's ``gcc`` and ``libpam0g-dev``) and
writes ``/etc/pam.d/NAME``::

    auth    required DIR/pam_authtok_exec.so /usr/bin/python3 -I DIR/rds_iam_pam.py --url URL --log FILE
    account required pam_permit.so

Without a compiler it falls back to ``pam_exec.so expose_authtok quiet``, which passes at most 511 bytes of
the password: enough for tokens of long-term IAM user keys, too short for tokens of temporary credentials.
FILE (the attempt log) is created for OWNER, the account PostgreSQL runs as.

``hba`` prints a ``pg_hba.conf`` with RDS's rules: members of ``rds_iam`` authenticate with PAM over TLS and
are rejected without it, everyone else uses SCRAM over TLS, local socket connections use peer. Without
``--service`` (no PAM service could be installed) members of ``rds_iam`` are rejected.

Standard library only; the stack runs it as root from ``scripts/stack.sh`` (``up_postgres``), the end-to-end
tests import it.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAM_PROGRAM = HERE / "rds_iam_pam.py"
SHIM_SOURCE = HERE / "pam_authtok_exec.c"
SHIM_NAME = "pam_authtok_exec.so"
PAM_DIR = Path("/etc/pam.d")
SYSTEM_PYTHON = "/usr/bin/python3"
_SERVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def _plain(value: str, what: str) -> str:
    """PAM splits module arguments on white space: refuse values that contain any."""
    if not value or any(c.isspace() for c in value) or any(c in value for c in "[]"):
        raise SystemExit(f"{what} must be non-empty without white space or brackets: {value!r}")
    return value


def check_service(name: str) -> str:
    if not _SERVICE_RE.fullmatch(name):
        raise SystemExit(f"PAM service name must match {_SERVICE_RE.pattern}: {name!r}")
    return name


def build_shim(target_dir: Path, compiler: str | None = None) -> Path | None:
    """Compile pam_authtok_exec.so into target_dir; None without a working compiler.

    The build is kept only while it was made from the current source (its SHA-256 is recorded next to it).
    """
    target = target_dir / SHIM_NAME
    stamp = target_dir / f"{SHIM_NAME}.source-sha256"
    digest = hashlib.sha256(SHIM_SOURCE.read_bytes()).hexdigest()
    if target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return target
    cc = compiler or shutil.which("cc") or shutil.which("gcc")
    if not cc:
        return None
    with tempfile.TemporaryDirectory() as work:
        built = Path(work) / SHIM_NAME
        result = subprocess.run(
            [cc, "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-o", str(built), str(SHIM_SOURCE), "-lpam"],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            sys.stderr.write(f"building {SHIM_NAME} failed:\n{result.stderr}")
            return None
        os.chmod(built, 0o755)
        # a new file under the old name: backends that loaded the previous build keep their mapping
        staged = target_dir / f".{SHIM_NAME}.new"
        shutil.copyfile(built, staged)
        os.chmod(staged, 0o755)
        os.replace(staged, target)
    stamp.write_text(digest + "\n")
    return target


def pam_service_text(program_dir: Path, verifier_url: str, log_file: Path, shim: Path | None) -> str:
    program = f"{SYSTEM_PYTHON} -I {_plain(str(program_dir / PAM_PROGRAM.name), 'program path')}"
    arguments = f"--url {_plain(verifier_url, 'verifier URL')} --log {_plain(str(log_file), 'log file')}"
    if shim is not None:
        module = f"{_plain(str(shim), 'module path')} {program} {arguments}"
    else:
        module = f"pam_exec.so expose_authtok quiet {program} {arguments}"
    return (
        "# layered.eks_rds local stack: RDS IAM database authentication of PostgreSQL logins (rds_iam members)\n"
        f"auth    required {module}\n"
        "account required pam_permit.so\n"
    )


def install(
    program_dir: Path,
    service: str,
    verifier_url: str,
    log_file: Path,
    *,
    owner: str | None = None,
    pam_dir: Path = PAM_DIR,
) -> Path | None:
    """Put the PAM program (and module) in program_dir and write pam_dir/service; returns the module or None
    when falling back to pam_exec."""
    check_service(service)
    program_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(program_dir, 0o755)
    shutil.copyfile(PAM_PROGRAM, program_dir / PAM_PROGRAM.name)
    os.chmod(program_dir / PAM_PROGRAM.name, 0o755)
    shim = build_shim(program_dir)
    if shim is None:
        sys.stderr.write(
            f"{SHIM_NAME} unavailable (no C compiler or PAM headers): using pam_exec, which cuts passwords to "
            "511 bytes, so tokens of temporary credentials will be refused\n"
        )
    text = pam_service_text(program_dir, verifier_url, log_file, shim)
    target = pam_dir / service
    if not target.exists() or target.read_text() != text:
        tmp = target.with_name(f".{service}.tmp")
        tmp.write_text(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    if not log_file.exists():
        log_file.touch(mode=0o600)
    if owner:
        entry = pwd.getpwnam(owner)
        os.chown(log_file, entry.pw_uid, entry.pw_gid)
    return shim


def uninstall(service: str, *, pam_dir: Path = PAM_DIR) -> bool:
    target = pam_dir / check_service(service)
    if target.exists():
        target.unlink()
        return True
    return False


def hba_text(service: str | None) -> str:
    lines = [
        "# RDS for PostgreSQL's rules: rds_iam members log in with an IAM token (PAM) over TLS only,",
        "# everyone else with a password over TLS; peer on the local socket.",
        "local   all all       peer",
    ]
    for network in ("0.0.0.0/0", "::/0"):
        if service:
            lines.append(f"hostssl all +rds_iam {network:<9} pam pamservice={check_service(service)}")
        else:
            lines.append(f"hostssl all +rds_iam {network:<9} reject")
    for network in ("0.0.0.0/0", "::/0"):
        lines.append(f"host    all +rds_iam {network:<9} reject")
    for network in ("0.0.0.0/0", "::/0"):
        lines.append(f"hostssl all all      {network:<9} scram-sha-256")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    setup = commands.add_parser("install")
    setup.add_argument("--dir", type=Path, required=True)
    setup.add_argument("--service", required=True)
    setup.add_argument("--url", required=True)
    setup.add_argument("--log", type=Path, required=True)
    setup.add_argument("--owner")
    hba = commands.add_parser("hba")
    hba.add_argument("--service")
    remove = commands.add_parser("uninstall")
    remove.add_argument("--service", required=True)
    args = parser.parse_args(argv)
    if args.command == "install":
        shim = install(args.dir, args.service, args.url, args.log, owner=args.owner)
        module = shim.name if shim else "pam_exec.so"
        print(f"PAM service {args.service}: {module}, attempts logged to {args.log}")
    elif args.command == "hba":
        sys.stdout.write(hba_text(args.service))
    elif uninstall(args.service):
        print(f"removed {PAM_DIR / args.service}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
