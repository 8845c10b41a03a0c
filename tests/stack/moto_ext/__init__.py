"""EKS behaviour that stock moto (5.2.x) lacks, for the local AWS endpoint of the test stack.

The collection's EKS, IAM, RDS and KMS code reads and writes things moto's EKS model does not have, so against stock
moto it either fails with NotImplementedError or sees values that real EKS never returns.
``install()`` extends moto in place, before the server (or a ``mock_aws`` context) starts:

* ``cluster``: a real EC2 cluster security group (``resourcesVpcConfig.clusterSecurityGroupId``) and
  ``vpcId``, EKS's endpoint access defaults, UpdateClusterConfig that merges and returns an ``update``,
  DescribeUpdate and ListUpdates;
* ``cluster_settings``: UpdateClusterVersion (one minor at a time), AssociateEncryptionConfig,
  and ``accessConfig`` on create, describe and UpdateClusterConfig;
* ``addons``: Create/Describe/Update/Delete/ListAddons and DescribeAddonVersions;
* ``pod_identity``: Create/Describe/Update/Delete/ListPodIdentityAssociations;
* ``tagging``: tags on nodegroups, Fargate profiles, add-ons and pod identity associations;
* ``nodegroups``: ``updateConfig`` kept from CreateNodegroup (default ``maxUnavailable: 1``);
* ``iam_oidc``: Add/RemoveClientID on IAM OIDC providers;
* ``ec2_rules``: DescribeSecurityGroupRules returns the description of rules that reference a group;
* ``network_interfaces``: unique in-subnet addresses for new network interfaces, and interface VPC
  endpoints whose interfaces carry the endpoint's security groups;
* ``rds_kms``: KMS key state calls by ARN, DBParameterGroupNotFound, engine-default parameters of
  new postgres parameter groups, DescribeDBEngineVersions for postgres, one DbiResourceId per instance, and
  a managed master user secret holding the instance's MasterUsername and a generated password;
* ``rds_iam_auth``: ``POST /moto-api/layered/rds-iam-auth`` verifies RDS IAM database authentication tokens
  (SigV4 signature, expiry, DB user, endpoint and the ``rds-db:connect`` policies) for the stack's PostgreSQL;
  ``/moto-api/layered/rds-iam-auth/max-token-age`` shortens the token lifetime accepted for one login role;
* ``web_identity``: STS AssumeRoleWithWebIdentity checks the token (issuer registered as an IAM OIDC provider,
  signature against the issuer's JWKS over HTTPS or from S3, audience, expiry) and the role's trust policy.

Request and response shapes follow botocore's EKS service model; moto serializes the objects.
"""

from __future__ import annotations

import functools

from moto.eks import urls as eks_urls
from moto.eks.responses import EKSResponse

from . import (
    addons,
    cluster,
    cluster_settings,
    ec2_rules,
    iam_oidc,
    network_interfaces,
    nodegroups,
    pod_identity,
    rds_iam_auth,
    rds_kms,
    tagging,
    web_identity,
)

__all__ = ["install"]

_MODULES = [
    cluster,
    cluster_settings,
    nodegroups,
    addons,
    pod_identity,
    tagging,
    iam_oidc,
    rds_kms,
    rds_iam_auth,
    ec2_rules,
    network_interfaces,
    web_identity,
]


@functools.cache  # patching twice would wrap the patched methods again
def install() -> None:
    """Patch moto's backends, responses and URL table; calling it again does nothing."""
    for module in _MODULES:
        module.install()
    for path in (*cluster.URL_PATHS, *cluster_settings.URL_PATHS, *addons.URL_PATHS, *pod_identity.URL_PATHS):
        eks_urls.url_paths.setdefault(path, EKSResponse.dispatch)
