"""The db_user Job's SQL container script (roles/db_user/files/run.sh), run with a stand-in psql.

The stand-in records the user, password and arguments psql would get; the tests check that the
script reads the master user's credentials from the secret RDS writes (JSON, with its escapes),
deletes the file, never prints the password, and refuses a missing or incomplete secret.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "roles/db_user/files/run.sh"

FAKE_PSQL = """#!/bin/sh
printf '%s\\n' "$PGUSER" > "$RECORD.user"
printf '%s' "$PGPASSWORD" > "$RECORD.password"
printf '%s\\n' "$@" > "$RECORD.args"
echo "done|fake"
"""


def run(tmp_path: Path, secret: str | None) -> tuple[subprocess.CompletedProcess[str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    psql = bin_dir / "psql"
    psql.write_text(FAKE_PSQL)
    psql.chmod(psql.stat().st_mode | stat.S_IXUSR)
    secret_file = tmp_path / "secret.json"
    if secret is not None:
        secret_file.write_text(secret)
    env = {
        "PATH": f"{bin_dir}:/usr/bin:/bin",
        "DB_USER_SECRET_FILE": str(secret_file),
        "DB_USER_PLAN": "/plan.sql",
        "RECORD": str(tmp_path / "record"),
    }
    proc = subprocess.run(["sh", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=30, check=False)
    return proc, secret_file


@pytest.mark.parametrize(
    "password",
    [
        "plain-Password1",
        "back\\slash",
        "ends-with-backslash\\",
        "sym#$%^&*()_+=-[]{}|;:,.<>?~`!",
        'quote"inside',
        "single'quote",
        "slash/and\\/",
    ],
)
def test_reads_the_master_credentials_from_the_secret(tmp_path: Path, password: str) -> None:
    # RDS writes the secret as compact JSON; its escapes must be undone exactly
    secret = json.dumps({"username": "pgadmin", "password": password}, separators=(",", ":"))
    proc, secret_file = run(tmp_path, secret)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "record.user").read_text() == "pgadmin\n"
    assert (tmp_path / "record.password").read_text() == password
    assert (tmp_path / "record.args").read_text().split("\n")[-3:-1] == ["--file", "/plan.sql"]
    assert not secret_file.exists(), "the secret file must be deleted once read"
    assert password not in proc.stdout + proc.stderr
    assert proc.stdout == "done|fake\n"


def test_reads_a_secret_with_spaces_and_other_fields(tmp_path: Path) -> None:
    secret = json.dumps({"engine": "postgres", "username": "admin_user", "password": "p w", "port": 5432}, indent=1)
    # one line, as `aws ... --output text` prints a SecretString written on one line
    proc, _ = run(tmp_path, secret.replace("\n", " "))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "record.user").read_text() == "admin_user\n"
    assert (tmp_path / "record.password").read_text() == "p w"


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (None, "was not read"),
        ("", "was not read"),
        ('{"username":"pgadmin"}', "no username or password"),
        ('{"password":"x"}', "no username or password"),
    ],
)
def test_refuses_a_missing_or_incomplete_secret(tmp_path: Path, secret: str | None, message: str) -> None:
    proc, _ = run(tmp_path, secret)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert not (tmp_path / "record.user").exists(), "psql must not run"


def test_script_is_posix_sh() -> None:
    # the postgres images' /bin/sh is dash: no bashisms
    assert SCRIPT.read_text().startswith("#!/bin/sh\n")
    proc = subprocess.run(["sh", "-n", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert os.access(SCRIPT, os.X_OK)
