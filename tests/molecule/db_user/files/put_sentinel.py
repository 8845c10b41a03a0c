"""Give the master user of a DB instance a new password, in the secret RDS manages for it.

    python put_sentinel.py <instance identifier> <password>     (AWS_ENDPOINT_URL: the stack's moto)

Prints the master user's name. The stack's PostgreSQL follows the secret (tests/stack/rds_sync.py).
"""

from __future__ import annotations

import json
import sys

import boto3


def main() -> None:
    identifier, password = sys.argv[1], sys.argv[2]
    instance = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]
    user = instance["MasterUsername"]
    secrets = boto3.client("secretsmanager")
    secrets.put_secret_value(
        SecretId=instance["MasterUserSecret"]["SecretArn"],
        SecretString=json.dumps({"username": user, "password": password}),
    )
    print(user)


if __name__ == "__main__":
    main()
