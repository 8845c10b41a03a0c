#!/usr/bin/python3
"""PAM program of the stack's PostgreSQL: a login of an ``rds_iam`` member succeeds when its password is an
RDS IAM authentication token that the stack's moto server accepts for that role.

PostgreSQL's backend runs it (as the ``postgres`` OS user) for ``pam`` lines of ``pg_hba.conf``, through
``pam_exec.so expose_authtok`` or ``pam_authtok_exec.so`` (see ``rds_iam_setup.py``)::

    auth required pam_authtok_exec.so /usr/bin/python3 -I rds_iam_pam.py --url URL --log FILE

The token arrives on standard input (optionally NUL- or newline-terminated), the login role in ``PAM_USER`` and
the client address in ``PAM_RHOST``. It is posted as JSON to ``URL`` (moto's ``/moto-api/layered/rds-iam-auth``,
see ``moto_ext/rds_iam_auth.py``); the exit status is 0 only when the answer is ``{"allowed": true, ...}``.
Each attempt appends one line to ``FILE``: time, user, client, allowed or denied, reason, principal; the token
is never written anywhere. Python's standard library only, so the system python3 can run it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import sys
import urllib.error
import urllib.request
from typing import Any, BinaryIO

MAX_TOKEN_BYTES = 16384
DEFAULT_TIMEOUT = 10.0


def read_token(stream: BinaryIO) -> str:
    """The password PAM wrote: up to MAX_TOKEN_BYTES, without a trailing NUL or line break."""
    data = stream.read(MAX_TOKEN_BYTES + 1)
    if len(data) > MAX_TOKEN_BYTES:
        raise ValueError(f"the password is longer than {MAX_TOKEN_BYTES} bytes")
    data = data.split(b"\0", 1)[0].rstrip(b"\r\n")
    return data.decode("utf-8", errors="replace")


def ask(url: str, token: str, user: str, client: str, timeout: float) -> dict[str, Any]:
    """The verifier's decision; a failure to get one is a denial whose reason names the failure, not the token."""
    body = json.dumps({"token": token, "user": user, "client": client}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never a proxy
    try:
        with opener.open(request, timeout=timeout) as response:
            answer = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as error:
        try:
            answer = json.loads(error.read().decode("utf-8"))
        except ValueError:
            answer = {}
        return {"allowed": False, "reason": f"verifier answered HTTP {error.code}: {answer.get('reason', '')}"}
    except (OSError, ValueError) as error:
        return {"allowed": False, "reason": f"verifier unreachable or unreadable: {type(error).__name__}"}
    if not isinstance(answer, dict):
        return {"allowed": False, "reason": "verifier answer is not a JSON object"}
    return answer


def log_attempt(path: str | None, user: str, client: str, answer: dict[str, Any]) -> None:
    if not path:
        return
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    fields = {
        "user": user,
        "client": client,
        "result": "allowed" if answer.get("allowed") is True else "denied",
        "reason": str(answer.get("reason", "")),
        "principal": str(answer.get("principal", "")),
        "instance": str(answer.get("instance", "")),
    }
    line = stamp + " " + " ".join(f"{key}={json.dumps(value)}" for key, value in fields.items()) + "\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as handle:
            handle.write(line)
    except OSError:
        pass  # a log that cannot be written does not change the decision


def main(argv: list[str] | None = None, stdin: BinaryIO | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the verifier, http://127.0.0.1:<moto port>/moto-api/...")
    parser.add_argument("--log", help="file that gets one line per attempt")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    args = parser.parse_args(argv)
    user = os.environ.get("PAM_USER", "")
    client = os.environ.get("PAM_RHOST", "")
    pam_type = os.environ.get("PAM_TYPE", "auth")
    if pam_type != "auth":
        answer: dict[str, Any] = {"allowed": False, "reason": f"only the auth stack is handled, not {pam_type}"}
    elif not user:
        answer = {"allowed": False, "reason": "PAM_USER is not set"}
    else:
        try:
            token = read_token(stdin or sys.stdin.buffer)
        except (OSError, ValueError) as error:
            answer = {"allowed": False, "reason": f"unreadable password: {error}"}
        else:
            if token:
                answer = ask(args.url, token, user, client, args.timeout)
            else:
                answer = {"allowed": False, "reason": "empty password"}
    log_attempt(args.log, user, client, answer)
    return 0 if answer.get("allowed") is True else 1


if __name__ == "__main__":
    sys.exit(main())
