"""Stand-in for pip's get-pip.py, for ansible-test's managed virtual environments.

ansible-test creates each sanity-test venv without pip and runs a cached
get-pip.py to bootstrap it; that script normally comes from a host this
project's machines cannot reach. This one does the same job with what they do
reach: Python's bundled ``ensurepip`` for a first pip, then a ``pip install``
from PyPI with the arguments ansible-test passes (pinned pip version included).
"""

import subprocess
import sys

GET_PIP_ONLY_OPTIONS = {"--no-setuptools", "--no-wheel"}


def main():
    args = [arg for arg in sys.argv[1:] if arg not in GET_PIP_ONLY_OPTIONS]
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--default-pip"], stdout=subprocess.DEVNULL)
    # the arguments are pip options and pinned requirements from ansible-test itself; no shell is involved
    subprocess.check_call([sys.executable, "-m", "pip", "install", *args])  # noqa: S603


if __name__ == "__main__":
    main()
