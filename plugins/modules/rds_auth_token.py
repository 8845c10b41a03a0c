#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: rds_auth_token
version_added: 0.1.0
short_description: Generate an Amazon RDS IAM database authentication token
description:
  - Generates a short-lived password for connecting to an Amazon RDS (or Aurora) PostgreSQL database
    with IAM database authentication.
  - The token is a SigV4 presigned C(connect) request for the C(rds-db) service, signed locally by botocore
    with the credentials found through the usual chain (module options, environment variables, a profile,
    web identity such as IRSA or EKS Pod Identity, instance metadata). Signing makes no network call.
  - When O(db_instance_identifier) is given, the module first calls C(rds:DescribeDBInstances) to read the
    endpoint address and port of the instance and to check that IAM database authentication is enabled on it.
  - All options are validated before any AWS API call is made.
  - The module never changes anything, so it always reports C(changed=false).
author:
  - layered.eks_rds maintainers (@layered)
options:
  db_host:
    description:
      - Host name of the database endpoint, for example the C(Endpoint.Address) of an RDS instance or the
        writer or reader endpoint of an Aurora cluster.
      - A bare DNS name or IPv4 address, without a scheme (C(https://)), port, path or spaces.
      - The token is only valid for exactly this host name, so use the name clients connect to.
      - Mutually exclusive with O(db_instance_identifier); one of them is required.
    type: str
    aliases: [ host ]
  db_port:
    description:
      - TCP port of the database endpoint, between 1 and 65535.
      - Ignored when O(db_instance_identifier) is set; the port of the instance endpoint is used instead.
    type: int
    default: 5432
    aliases: [ port ]
  db_user:
    description:
      - Database user to sign the token for. In PostgreSQL this user must have been granted the C(rds_iam) role.
      - At most 63 characters from C([A-Za-z0-9_.-]).
    type: str
    required: true
    aliases: [ user ]
  db_name:
    description:
      - Database name placed in RV(connection_string). It is not part of the signed token.
    type: str
    default: postgres
    aliases: [ database ]
  db_instance_identifier:
    description:
      - Identifier of an RDS DB instance whose endpoint address and port are looked up with
        C(rds:DescribeDBInstances).
      - The module fails if the instance does not exist, has no endpoint yet, or does not have IAM database
        authentication enabled.
      - Mutually exclusive with O(db_host); one of them is required.
    type: str
  ssl_mode:
    description:
      - libpq C(sslmode) placed in RV(connection_string).
      - IAM database authentication requires TLS; the module warns when the chosen mode does not guarantee it.
    type: str
    choices: [ disable, allow, prefer, require, verify-ca, verify-full ]
    default: verify-full
  ssl_root_cert:
    description:
      - Path to the CA bundle (for example the RDS global bundle) placed in RV(connection_string) as
        C(sslrootcert).
      - The path is passed through as given and is not checked, since the connection may be made from
        another host or container.
    type: path
notes:
  - A token is valid for 15 minutes after it is signed (see RV(expires_at)). Generate a fresh one for each
    connection attempt and never cache it longer than that; an open connection stays open after the token expires.
  - The token is a password. Always set C(no_log=true) on the task that runs this module and on every task
    that uses the token, and keep it out of files, command lines and connection strings.
  - Signing requires the C(rds-db:connect) IAM permission on
    C(arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId or cluster resource id>/<db_user>);
    O(db_instance_identifier) additionally requires C(rds:DescribeDBInstances).
  - The token is signed for the region the module resolves (O(region), C(AWS_REGION), C(AWS_DEFAULT_REGION)
    or the profile); it must be the region of the database.
  - Supports check mode; the operation is read-only, so check mode generates and returns a real token.
  - Diff mode is not supported; there is no state to compare.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Generate a token for a known endpoint
  layered.eks_rds.rds_auth_token:
    db_host: app.abcdefghijkl.eu-west-1.rds.amazonaws.com
    db_user: app_user
    db_name: app
    region: eu-west-1
  register: app_db_auth
  no_log: true

- name: Look the endpoint up from the instance identifier
  layered.eks_rds.rds_auth_token:
    db_instance_identifier: app-postgres
    db_user: app_user
    db_name: app
    ssl_root_cert: /etc/ssl/certs/rds-global-bundle.pem
  register: app_db_auth
  no_log: true

- name: Run a query with community.postgresql, using the token as the password
  community.postgresql.postgresql_query:
    login_host: "{{ app_db_auth.host }}"
    login_port: "{{ app_db_auth.port }}"
    login_user: "{{ app_db_auth.user }}"
    login_password: "{{ app_db_auth.token }}"
    login_db: app
    ssl_mode: verify-full
    ca_cert: /etc/ssl/certs/rds-global-bundle.pem
    query: SELECT current_user
  no_log: true

- name: Hand the token to psql through PGPASSWORD, never on the command line
  ansible.builtin.command:
    argv:
      - psql
      - "{{ app_db_auth.connection_string }}"
      - --command=SELECT 1
  environment:
    PGPASSWORD: "{{ app_db_auth.token }}"
  changed_when: false
  no_log: true
"""

RETURN = r"""
token:
  description:
    - The authentication token, to be used as the database password.
    - It is a secret; run the task with C(no_log=true). The module does not mask it, so that it can be registered
      and passed on.
  returned: success
  type: str
  sample: "app.abcdefghijkl.eu-west-1.rds.amazonaws.com:5432/?Action=connect&DBUser=app_user\
    &X-Amz-Algorithm=AWS4-HMAC-SHA256\
    &X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20260101%2Feu-west-1%2Frds-db%2Faws4_request\
    &X-Amz-Date=20260101T120000Z&X-Amz-Expires=900&X-Amz-SignedHeaders=host\
    &X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
expires_at:
  description: When the token stops being accepted, in ISO 8601 UTC; 15 minutes after it was signed.
  returned: success
  type: str
  sample: "2026-01-01T12:15:00Z"
expires_in:
  description: Lifetime of the token in seconds, counted from the signing time.
  returned: success
  type: int
  sample: 900
host:
  description: Host name the token was signed for.
  returned: success
  type: str
  sample: app.abcdefghijkl.eu-west-1.rds.amazonaws.com
port:
  description: Port the token was signed for.
  returned: success
  type: int
  sample: 5432
user:
  description: Database user the token was signed for.
  returned: success
  type: str
  sample: app_user
region:
  description: AWS region the token was signed for.
  returned: success
  type: str
  sample: eu-west-1
connection_string:
  description:
    - libpq keyword/value connection string with C(host), C(port), C(dbname), C(user), C(sslmode) and, when
      O(ssl_root_cert) is set, C(sslrootcert). Values are quoted following libpq rules.
    - It does not contain the token; give the token to the client separately, for example through C(PGPASSWORD).
  returned: success
  type: str
  sample: "host=app.abcdefghijkl.eu-west-1.rds.amazonaws.com port=5432 dbname=app user=app_user \
    sslmode=verify-full sslrootcert=/etc/ssl/certs/rds-global-bundle.pem"
"""

import contextlib
import datetime

with contextlib.suppress(ImportError):
    import botocore  # a missing botocore is reported by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.layered.eks_rds.plugins.module_utils.rds_auth import (
    SSL_MODES,
    SSL_MODES_WITHOUT_TLS_GUARANTEE,
    RdsAuthParameterError,
    compute_expiry,
    format_utc,
    libpq_connection_string,
    token_lifetime,
    token_signing_time,
    validate_db_host,
    validate_db_instance_identifier,
    validate_db_name,
    validate_db_port,
    validate_db_user,
    validate_region,
)

ARGUMENT_SPEC = dict(
    db_host=dict(type="str", aliases=["host"]),
    db_port=dict(type="int", default=5432, aliases=["port"]),
    db_user=dict(type="str", required=True, aliases=["user"]),
    db_name=dict(type="str", default="postgres", aliases=["database"]),
    db_instance_identifier=dict(type="str"),
    ssl_mode=dict(type="str", default="verify-full", choices=list(SSL_MODES)),
    ssl_root_cert=dict(type="path"),
)


def validated_request(module):
    """Check every option (and the region) before any API call; fail naming the offending option."""
    params = module.params
    try:
        request = dict(
            user=validate_db_user(params["db_user"]),
            db_name=validate_db_name(params["db_name"]),
            instance=None,
            host=None,
            port=None,
        )
        if params["db_instance_identifier"] is not None:
            request["instance"] = validate_db_instance_identifier(params["db_instance_identifier"])
        else:
            request["host"] = validate_db_host(params["db_host"])
            request["port"] = validate_db_port(params["db_port"])
        region = module.region
        if not region:
            module.fail_json(
                msg="region: no AWS region could be determined; set the region option, the AWS_REGION or "
                "AWS_DEFAULT_REGION environment variable, or a region in the AWS profile",
                option="region",
            )
        request["region"] = validate_region(region)
    except RdsAuthParameterError as e:
        module.fail_json(msg=str(e), option=e.option)

    if params["ssl_mode"] in SSL_MODES_WITHOUT_TLS_GUARANTEE:
        module.warn(
            f"ssl_mode={params['ssl_mode']} does not guarantee TLS, but RDS only accepts IAM authentication "
            "tokens over TLS; use require, verify-ca or verify-full"
        )
    return request


def describe_instance_endpoint(module, client, identifier, region):
    """Return (address, port) of an RDS instance that has IAM database authentication enabled."""
    try:
        response = client.describe_db_instances(DBInstanceIdentifier=identifier, aws_retry=True)
    except is_boto3_error_code("DBInstanceNotFound"):
        module.fail_json(msg=f"db_instance_identifier: DB instance '{identifier}' was not found in region {region}")
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:  # pylint: disable=duplicate-except
        module.fail_json_aws(e, msg=f"Failed to describe DB instance '{identifier}'")

    instances = response.get("DBInstances") or []
    if not instances:
        module.fail_json(msg=f"db_instance_identifier: DB instance '{identifier}' was not found in region {region}")
    instance = instances[0]

    if not instance.get("IAMDatabaseAuthenticationEnabled"):
        module.fail_json(
            msg=f"IAM database authentication is not enabled on DB instance '{identifier}'; enable it "
            "(EnableIAMDatabaseAuthentication) before requesting an auth token"
        )
    endpoint = instance.get("Endpoint") or {}
    if not endpoint.get("Address") or not endpoint.get("Port"):
        module.fail_json(
            msg=f"DB instance '{identifier}' has no endpoint yet "
            f"(status: {instance.get('DBInstanceStatus', 'unknown')}); retry once it is available"
        )
    return endpoint["Address"], int(endpoint["Port"])


def generate_auth_token(module, client, request):
    """Sign the token locally and build the module result."""
    requested_at = datetime.datetime.now(datetime.timezone.utc)
    try:
        token = client.generate_db_auth_token(
            DBHostname=request["host"],
            Port=request["port"],
            DBUsername=request["user"],
            Region=request["region"],
        )
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg="Failed to generate an RDS IAM authentication token")

    # The token carries its own signing time; fall back to the moment just before
    # signing so that expires_at can only err on the early side.
    signed_at = token_signing_time(token) or requested_at
    lifetime = token_lifetime(token)
    params = module.params
    return dict(
        changed=False,
        token=token,
        expires_at=format_utc(compute_expiry(signed_at, lifetime)),
        expires_in=lifetime,
        host=request["host"],
        port=request["port"],
        user=request["user"],
        region=request["region"],
        connection_string=libpq_connection_string(
            host=request["host"],
            port=request["port"],
            dbname=request["db_name"],
            user=request["user"],
            sslmode=params["ssl_mode"],
            sslrootcert=params["ssl_root_cert"],
        ),
    )


def main():
    module = AnsibleAWSModule(
        argument_spec=ARGUMENT_SPEC,
        mutually_exclusive=[("db_host", "db_instance_identifier")],
        required_one_of=[("db_host", "db_instance_identifier")],
        supports_check_mode=True,
    )
    request = validated_request(module)
    client = module.client("rds", retry_decorator=AWSRetry.jittered_backoff())
    if request["instance"]:
        request["host"], request["port"] = describe_instance_endpoint(
            module, client, request["instance"], request["region"]
        )
    module.exit_json(**generate_auth_token(module, client, request))


if __name__ == "__main__":
    main()
