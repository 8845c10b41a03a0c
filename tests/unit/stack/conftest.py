"""Fixtures shared by the tests of the local stack's own code."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from moto_process import start_server, stop_server


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The stack's moto launcher on a free loopback port, for the tests of one module."""
    proc, url = start_server(tmp_path_factory.mktemp("moto") / "server.log")
    yield url
    stop_server(proc)
