"""Clients of the stack's moto launcher for the tests of the local stack's own code."""

from __future__ import annotations

from typing import Any

import boto3

REGION = "eu-west-1"


def aws_clients(url: str, *services: str, region: str = REGION) -> dict[str, Any]:
    """boto3 clients of ``services`` on ``url`` with moto's fake credentials."""
    session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    return {name: session.client(name, endpoint_url=url) for name in services}
