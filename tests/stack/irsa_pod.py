"""What the amazon-eks-pod-identity-webhook adds to a pod whose ServiceAccount names an IAM role.

The local stack does not run the webhook, so whoever creates a pod that needs IRSA credentials
adds these itself: the environment of the AWS SDKs' web identity provider and the projected
ServiceAccount token for the ``sts.amazonaws.com`` audience.
"""

from __future__ import annotations

from typing import Any

TOKEN_DIR = "/var/run/secrets/eks.amazonaws.com/serviceaccount"
VOLUME = "aws-iam-token"


def env(role_arn: str) -> list[dict[str, str]]:
    return [
        {"name": "AWS_ROLE_ARN", "value": role_arn},
        {"name": "AWS_WEB_IDENTITY_TOKEN_FILE", "value": f"{TOKEN_DIR}/token"},
        {"name": "AWS_STS_REGIONAL_ENDPOINTS", "value": "regional"},
    ]


def volume() -> dict[str, Any]:
    token = {"audience": "sts.amazonaws.com", "expirationSeconds": 86400, "path": "token"}
    return {"name": VOLUME, "projected": {"sources": [{"serviceAccountToken": token}]}}


def mount() -> dict[str, Any]:
    return {"name": VOLUME, "mountPath": TOKEN_DIR, "readOnly": True}
