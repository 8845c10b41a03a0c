"""Run the stack's local AWS endpoint: a moto server with the EKS extension of ``moto_ext``.

    python tests/stack/moto_server.py --host 127.0.0.1 --port 4566

All arguments go to moto's own server command line.  The process stays in the foreground and exits
with status 0 on SIGTERM or SIGINT.  AWS managed IAM policies (``arn:aws:iam::aws:policy/...``) are
loaded unless MOTO_IAM_LOAD_MANAGED_POLICIES is already set.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before anything imports moto's backends.
os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from moto import server
from moto_ext import install


def main(argv: list[str] | None = None) -> None:
    install()
    # moto's main() turns SIGTERM/SIGINT into a clean exit and serves until then.
    server.main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    main()
