# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helpers shared by the collection's Amazon EKS modules.

Everything above the "waiters" section is pure: option validation, the
semantic comparison of add-on configuration values, the normalised state of a
cluster and the plan of the updates that take a cluster from its described
state to the desired one. The modules only sequence API calls and waiters.

A normalised state is a flat dict whose keys are module option names. In a
desired state, ``None`` means "not managed": the value is neither compared nor
sent.
"""

import contextlib
import copy
import ipaddress
import json
import math
import re
import time

with contextlib.suppress(ImportError):
    import botocore.exceptions
    import botocore.waiter

try:
    import yaml

    HAS_YAML = True
except ImportError:  # configuration values written as YAML by someone else are then compared as text
    HAS_YAML = False

from ansible.module_utils.common.dict_transformations import camel_dict_to_snake_dict

from ansible_collections.amazon.aws.plugins.module_utils.tagging import compare_aws_tags

LOG_TYPES = ("api", "audit", "authenticator", "controllerManager", "scheduler")
# EKS only moves forward along this list: CONFIG_MAP -> API_AND_CONFIG_MAP -> API.
AUTHENTICATION_MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")
# What EKS uses when a cluster was created through the API without an access configuration.
DEFAULT_AUTHENTICATION_MODE = "CONFIG_MAP"
RESOLVE_CONFLICTS = ("NONE", "OVERWRITE", "PRESERVE")
ENCRYPTED_RESOURCES = ("secrets",)

CLUSTER_NAME_MAX = 100
DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
MAX_TAGS = 50

_CLUSTER_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]*$")
_ADDON_NAME_RE = re.compile(r"^[0-9A-Za-z][A-Za-z0-9_-]*$")
_DNS1123_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ROLE_ARN_RE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
_KMS_KEY_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key/[A-Za-z0-9-]{1,128}$")
_KUBERNETES_VERSION_RE = re.compile(r"^(\d+)\.(\d+)$")
_SUBNET_ID_RE = re.compile(r"^subnet-[0-9a-f]{8,17}$")
_SECURITY_GROUP_ID_RE = re.compile(r"^sg-[0-9a-f]{8,17}$")

WAITER_DELAYS = dict(
    cluster_active=30,
    cluster_deleted=30,
    addon_active=10,
    addon_deleted=10,
    update_successful=15,
)

# DescribeUpdate has no waiter in botocore's EKS model; this one follows the same format.
UPDATE_WAITER_MODEL = {
    "version": 2,
    "waiters": {
        "UpdateSuccessful": {
            "delay": WAITER_DELAYS["update_successful"],
            "maxAttempts": 80,
            "operation": "DescribeUpdate",
            "acceptors": [
                {"state": "success", "matcher": "path", "argument": "update.status", "expected": "Successful"},
                {"state": "failure", "matcher": "path", "argument": "update.status", "expected": "Failed"},
                {"state": "failure", "matcher": "path", "argument": "update.status", "expected": "Cancelled"},
                {"state": "retry", "matcher": "error", "expected": "ThrottlingException"},
                {"state": "retry", "matcher": "error", "expected": "TooManyRequestsException"},
                {"state": "retry", "matcher": "error", "expected": "ServerException"},
            ],
        }
    },
}


class EksParameterError(ValueError):
    """Raised when a module option is unusable; the message starts with the option name."""

    def __init__(self, option, message):
        self.option = option
        super().__init__(f"{option}: {message}")


def _check(condition, option, message):
    if not condition:
        raise EksParameterError(option, message)


# --------------------------------------------------------------------------- validation


def validate_cluster_name(name, option="name"):
    _check(isinstance(name, str) and name, option, "must be a non-empty string")
    _check(len(name) <= CLUSTER_NAME_MAX, option, f"'{name}' is longer than {CLUSTER_NAME_MAX} characters")
    _check(
        _CLUSTER_NAME_RE.match(name),
        option,
        f"'{name}' is not a valid cluster name: it must start with a letter or digit and contain only "
        "letters, digits, hyphens and underscores",
    )
    return name


def validate_addon_name(name, option="name"):
    _check(isinstance(name, str) and name, option, "must be a non-empty string")
    _check(len(name) <= CLUSTER_NAME_MAX, option, f"'{name}' is longer than {CLUSTER_NAME_MAX} characters")
    _check(_ADDON_NAME_RE.match(name), option, f"'{name}' is not a valid add-on name")
    return name


def validate_dns1123_label(value, option):
    """A Kubernetes namespace: an RFC 1123 label (lower case, digits, '-'; at most 63 characters)."""
    _check(isinstance(value, str) and value, option, "must be a non-empty string")
    _check(len(value) <= DNS1123_LABEL_MAX, option, f"'{value}' is longer than {DNS1123_LABEL_MAX} characters")
    _check(
        _DNS1123_LABEL_RE.match(value),
        option,
        f"'{value}' is not a valid DNS-1123 label: use lower case letters, digits and '-', "
        "starting and ending with a letter or digit",
    )
    return value


def validate_dns1123_subdomain(value, option):
    """A Kubernetes object name such as a ServiceAccount: an RFC 1123 subdomain (at most 253 characters)."""
    _check(isinstance(value, str) and value, option, "must be a non-empty string")
    _check(
        len(value) <= DNS1123_SUBDOMAIN_MAX,
        option,
        f"'{value[:20]}...' is longer than {DNS1123_SUBDOMAIN_MAX} characters",
    )
    _check(
        _DNS1123_SUBDOMAIN_RE.match(value),
        option,
        f"'{value}' is not a valid DNS-1123 subdomain: use lower case letters, digits, '-' and '.', "
        "each dot-separated part starting and ending with a letter or digit",
    )
    return value


def validate_role_arn(value, option, allow_empty=False):
    if allow_empty and value == "":
        return value
    _check(
        isinstance(value, str) and _ROLE_ARN_RE.match(value),
        option,
        f"'{value}' is not an IAM role ARN (arn:aws:iam::<account>:role/<name>)",
    )
    return value


def validate_kms_key_arn(value, option):
    _check(
        isinstance(value, str) and _KMS_KEY_ARN_RE.match(value),
        option,
        f"'{value}' is not a KMS key ARN (arn:aws:kms:<region>:<account>:key/<key id>); "
        "aliases are not accepted because EKS reports the key ARN",
    )
    return value


def parse_kubernetes_version(value, option="version"):
    """'1.31' -> (1, 31)."""
    match = _KUBERNETES_VERSION_RE.match(value) if isinstance(value, str) else None
    _check(match, option, f"'{value}' is not a Kubernetes minor version such as 1.31")
    return int(match.group(1)), int(match.group(2))


def normalize_cidr(value, option):
    """A CIDR block in canonical form; host bits are cleared. Refuses /0 (the whole Internet)."""
    try:
        network = ipaddress.ip_network(str(value).strip(), strict=False)
    except ValueError:
        raise EksParameterError(option, f"'{value}' is not a valid CIDR block") from None
    _check(
        network.prefixlen > 0,
        option,
        f"'{value}' would open the public endpoint to the whole Internet; list the CIDR blocks that need access",
    )
    return str(network)


def validate_tags(tags, option="tags"):
    if tags is None:
        return None
    _check(len(tags) <= MAX_TAGS, option, f"at most {MAX_TAGS} tags are allowed")
    for raw_key, value in tags.items():
        key = str(raw_key)
        _check(key and len(key) <= TAG_KEY_MAX, option, f"tag key '{key}' must have 1 to {TAG_KEY_MAX} characters")
        _check(not key.lower().startswith("aws:"), option, f"tag key '{key}' uses the reserved prefix 'aws:'")
        _check(
            len(str(value)) <= TAG_VALUE_MAX,
            option,
            f"the value of tag '{key}' is longer than {TAG_VALUE_MAX} characters",
        )
    return {str(k): str(v) for k, v in tags.items()}


def validate_wait_timeout(value, option="wait_timeout"):
    _check(isinstance(value, int) and value > 0, option, "must be a positive number of seconds")
    return value


def validate_cluster_params(params):
    """Check the options of eks_cluster without any API call; return the normalised desired state.

    Raises EksParameterError naming the first offending option.
    """
    validate_cluster_name(params["name"])
    validate_wait_timeout(params["wait_timeout"])
    if params["state"] == "absent":
        return None

    parse_kubernetes_version(params["version"])
    validate_role_arn(params["role_arn"], "role_arn")

    subnets = params["subnets"] or []
    for subnet in subnets:
        _check(_SUBNET_ID_RE.match(str(subnet)), "subnets", f"'{subnet}' is not a subnet id (subnet-...)")
    _check(
        len(set(subnets)) >= 2,
        "subnets",
        "at least two different subnets, in two Availability Zones, are required",
    )
    security_groups = params["security_groups"]
    for group in security_groups or []:
        _check(
            _SECURITY_GROUP_ID_RE.match(str(group)),
            "security_groups",
            f"'{group}' is not a security group id (sg-...)",
        )
    _check(
        len(set(security_groups or [])) <= 5,
        "security_groups",
        "EKS accepts at most 5 security groups",
    )

    public = params["endpoint_public_access"]
    _check(
        params["endpoint_private_access"] or public,
        "endpoint_private_access",
        "at least one of endpoint_private_access and endpoint_public_access must be true",
    )
    cidrs = [normalize_cidr(cidr, "public_access_cidrs") for cidr in params["public_access_cidrs"] or []]
    if public:
        _check(
            cidrs,
            "public_access_cidrs",
            "required (and non-empty) when endpoint_public_access is true; list the CIDR blocks allowed to "
            "reach the public endpoint",
        )

    encryption = params["encryption_config"]
    key_arn = None
    if encryption is not None:
        key_arn = encryption.get("key_arn") or ""
        if key_arn:
            validate_kms_key_arn(key_arn, "encryption_config.key_arn")

    tags = validate_tags(params["tags"])

    return dict(
        name=params["name"],
        version=params["version"],
        role_arn=params["role_arn"],
        subnets=sorted(set(subnets)),
        security_groups=None if security_groups is None else sorted(set(security_groups)),
        endpoint_private_access=bool(params["endpoint_private_access"]),
        endpoint_public_access=bool(public),
        public_access_cidrs=sorted(set(cidrs)) if public else None,
        encryption_key_arn=key_arn,
        logging=[t for t in LOG_TYPES if t in (params["logging"] or [])],
        authentication_mode=params.get("authentication_mode"),
        tags=tags,
    )


def validate_addon_params(params):
    """Check the options of eks_addon without any API call; return the normalised desired state."""
    validate_cluster_name(params["cluster_name"], "cluster_name")
    validate_addon_name(params["name"])
    validate_wait_timeout(params["wait_timeout"])
    if params["state"] == "absent":
        return None
    configuration = None
    if params["configuration_values"] is not None:
        configuration = parse_configuration_values(params["configuration_values"])
    role_arn = params["service_account_role_arn"]
    if role_arn is not None:
        validate_role_arn(role_arn, "service_account_role_arn", allow_empty=True)
    associations = None
    if params["pod_identity_associations"] is not None:
        associations = []
        seen = set()
        for item in params["pod_identity_associations"]:
            account = validate_dns1123_subdomain(item["service_account"], "pod_identity_associations.service_account")
            validate_role_arn(item["role_arn"], "pod_identity_associations.role_arn")
            _check(
                account not in seen,
                "pod_identity_associations",
                f"service account '{account}' is listed more than once",
            )
            seen.add(account)
            associations.append(dict(service_account=account, role_arn=item["role_arn"]))
        associations.sort(key=lambda a: a["service_account"])
    return dict(
        cluster_name=params["cluster_name"],
        name=params["name"],
        addon_version=params["addon_version"],
        configuration_values=configuration,
        service_account_role_arn=role_arn,
        pod_identity_associations=associations,
        tags=validate_tags(params["tags"]),
    )


def validate_association_params(params):
    """Check the options of eks_pod_identity_association without any API call."""
    validate_cluster_name(params["cluster_name"], "cluster_name")
    validate_dns1123_label(params["namespace"], "namespace")
    validate_dns1123_subdomain(params["service_account"], "service_account")
    if params["state"] == "absent":
        return None
    validate_role_arn(params["role_arn"], "role_arn")
    target = params["target_role_arn"]
    if target is not None:
        validate_role_arn(target, "target_role_arn", allow_empty=True)
    return dict(
        cluster_name=params["cluster_name"],
        namespace=params["namespace"],
        service_account=params["service_account"],
        role_arn=params["role_arn"],
        target_role_arn=target,
        tags=validate_tags(params["tags"]),
    )


# --------------------------------------------------------------------------- configuration values (JSON)


def parse_configuration_values(value, option="configuration_values"):
    """The desired add-on configuration as a dict: from a dict, or from a JSON object in a string.

    An empty string means no configuration, like an empty dict.
    """
    if isinstance(value, dict):
        parsed = value
    elif isinstance(value, str):
        if not value.strip():
            return {}
        try:
            parsed = json.loads(value)
        except ValueError as e:
            raise EksParameterError(option, f"is not valid JSON ({e})") from None
    else:
        raise EksParameterError(option, f"must be a dict or a JSON object string, not {type(value).__name__}")
    _check(isinstance(parsed, dict), option, "must be a JSON object (a dict), not a list or a scalar")
    try:
        # Round trip so that the value is plain JSON data (no tuples, no non-string keys left unnoticed).
        return json.loads(json.dumps(parsed))
    except (TypeError, ValueError) as e:
        raise EksParameterError(option, f"cannot be expressed as JSON ({e})") from None


def described_configuration_values(text):
    """The configuration EKS describes (a JSON or YAML document, or nothing) as a dict.

    Returns the text itself when it cannot be parsed, so that it only ever compares equal to itself.
    """
    if text is None or not str(text).strip():
        return {}
    try:
        return json.loads(text)
    except ValueError:
        pass
    if HAS_YAML:
        with contextlib.suppress(yaml.YAMLError):
            parsed = yaml.safe_load(text)
            if isinstance(parsed, dict):
                return parsed
    return text


def json_equal(left, right):
    """Compare two parsed JSON documents by meaning: key order and formatting never matter.

    Unlike ``==`` in Python, true is not 1 and false is not 0; 1 and 1.0 are the same JSON number.
    """
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left is right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(json_equal(left[k], right[k]) for k in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(json_equal(a, b) for a, b in zip(left, right))
    return type(left) is type(right) and left == right


def compact_json(value):
    """The string sent to EKS: compact, with sorted keys, so that it is stable from run to run."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


# --------------------------------------------------------------------------- clusters


def _enabled_log_types(cluster):
    enabled = set()
    for entry in (cluster.get("logging") or {}).get("clusterLogging") or []:
        if entry.get("enabled"):
            enabled.update(entry.get("types") or [])
    return [t for t in LOG_TYPES if t in enabled]


def _secrets_key_arn(cluster):
    for entry in cluster.get("encryptionConfig") or []:
        if "secrets" in (entry.get("resources") or []):
            return (entry.get("provider") or {}).get("keyArn") or ""
    return ""


def current_cluster_state(cluster):
    """DescribeCluster's ``cluster`` in the shape of validate_cluster_params's result."""
    if not cluster:
        return {}
    vpc = cluster.get("resourcesVpcConfig") or {}
    public = bool(vpc.get("endpointPublicAccess"))
    return dict(
        name=cluster.get("name"),
        version=cluster.get("version"),
        role_arn=cluster.get("roleArn"),
        subnets=sorted(vpc.get("subnetIds") or []),
        security_groups=sorted(vpc.get("securityGroupIds") or []),
        endpoint_private_access=bool(vpc.get("endpointPrivateAccess")),
        endpoint_public_access=public,
        public_access_cidrs=sorted(vpc.get("publicAccessCidrs") or []) if public else None,
        encryption_key_arn=_secrets_key_arn(cluster),
        logging=_enabled_log_types(cluster),
        authentication_mode=(cluster.get("accessConfig") or {}).get("authenticationMode")
        or DEFAULT_AUTHENTICATION_MODE,
        tags=dict(cluster.get("tags") or {}),
    )


def logging_request(enabled_types):
    """The ``logging`` of CreateCluster / UpdateClusterConfig: every type, either enabled or disabled."""
    enabled = [t for t in LOG_TYPES if t in enabled_types]
    disabled = [t for t in LOG_TYPES if t not in enabled_types]
    entries = [dict(types=enabled, enabled=True), dict(types=disabled, enabled=False)]
    return dict(clusterLogging=[entry for entry in entries if entry["types"]])


def encryption_request(key_arn):
    return [dict(resources=list(ENCRYPTED_RESOURCES), provider=dict(keyArn=key_arn))]


def endpoint_request(desired):
    request = dict(
        endpointPublicAccess=desired["endpoint_public_access"],
        endpointPrivateAccess=desired["endpoint_private_access"],
    )
    if desired["endpoint_public_access"]:
        request["publicAccessCidrs"] = list(desired["public_access_cidrs"])
    return request


def create_cluster_request(desired):
    """Keyword arguments of CreateCluster."""
    vpc = dict(subnetIds=list(desired["subnets"]), securityGroupIds=list(desired["security_groups"] or []))
    vpc.update(endpoint_request(desired))
    request = dict(
        name=desired["name"],
        version=desired["version"],
        roleArn=desired["role_arn"],
        resourcesVpcConfig=vpc,
        logging=logging_request(desired["logging"]),
    )
    if desired["encryption_key_arn"]:
        request["encryptionConfig"] = encryption_request(desired["encryption_key_arn"])
    if desired["authentication_mode"]:
        request["accessConfig"] = dict(authenticationMode=desired["authentication_mode"])
    if desired["tags"]:
        request["tags"] = dict(desired["tags"])
    return request


def version_steps(current, desired):
    """Minor versions to go through, one update each: ('1.29', '1.31') -> ['1.30', '1.31'].

    Raises EksParameterError for a downgrade or a change of major version, which EKS cannot do.
    """
    cur = parse_kubernetes_version(current, "version")
    want = parse_kubernetes_version(desired, "version")
    if want == cur:
        return []
    _check(
        want > cur,
        "version",
        f"cannot downgrade the cluster from Kubernetes {current} to {desired}; EKS only upgrades",
    )
    _check(want[0] == cur[0], "version", f"cannot upgrade from Kubernetes {current} to {desired}")
    return [f"{want[0]}.{minor}" for minor in range(cur[1] + 1, want[1] + 1)]


def _step(kind, operation, description, **request):
    return dict(kind=kind, operation=operation, description=description, request=request)


def plan_cluster_updates(desired, current):
    """The updates that take the described cluster to the desired state, in the order to apply them.

    EKS accepts one kind of change per UpdateClusterConfig call and one minor version per
    UpdateClusterVersion call, and refuses a new update while one is in progress, so each step is a
    separate call to be applied (and waited for) one after another. Tags are not part of the plan.

    Raises EksParameterError for changes EKS cannot make in place.
    """
    name = current["name"]
    steps = []

    _check(
        desired["role_arn"] == current["role_arn"],
        "role_arn",
        f"the IAM role of cluster '{name}' cannot be changed (it is {current['role_arn']}); "
        "recreate the cluster to use another role",
    )

    want_key, have_key = desired["encryption_key_arn"], current["encryption_key_arn"]
    if want_key is not None and want_key != have_key:
        _check(
            not have_key or want_key,
            "encryption_config",
            f"secrets encryption of cluster '{name}' (KMS key {have_key}) cannot be removed once enabled",
        )
        _check(
            not have_key,
            "encryption_config.key_arn",
            f"cluster '{name}' already encrypts secrets with KMS key {have_key}; EKS cannot change the key",
        )

    mode_steps = []
    want_mode, have_mode = desired["authentication_mode"], current["authentication_mode"]
    if want_mode and want_mode != have_mode:
        have_rank, want_rank = AUTHENTICATION_MODES.index(have_mode), AUTHENTICATION_MODES.index(want_mode)
        _check(
            want_rank > have_rank,
            "authentication_mode",
            f"cannot change the authentication mode of cluster '{name}' from {have_mode} back to {want_mode}; "
            "EKS only moves from CONFIG_MAP to API_AND_CONFIG_MAP to API",
        )
        mode_steps = list(AUTHENTICATION_MODES[have_rank + 1 : want_rank + 1])

    upgrades = version_steps(current["version"], desired["version"])

    endpoint_keys = ("endpoint_private_access", "endpoint_public_access", "public_access_cidrs")
    if any(desired[k] != current[k] for k in endpoint_keys):
        steps.append(
            _step(
                "endpoint_access",
                "update_cluster_config",
                "endpoint access",
                resourcesVpcConfig=endpoint_request(desired),
            )
        )

    subnets_differ = desired["subnets"] != current["subnets"]
    groups_differ = desired["security_groups"] is not None and desired["security_groups"] != current["security_groups"]
    if subnets_differ or groups_differ:
        groups = current["security_groups"] if desired["security_groups"] is None else desired["security_groups"]
        steps.append(
            _step(
                "vpc_config",
                "update_cluster_config",
                "subnets and security groups",
                resourcesVpcConfig=dict(subnetIds=list(desired["subnets"]), securityGroupIds=list(groups)),
            )
        )

    if desired["logging"] != current["logging"]:
        steps.append(
            _step(
                "logging", "update_cluster_config", "control plane logging", logging=logging_request(desired["logging"])
            )
        )

    for mode in mode_steps:
        steps.append(
            _step(
                "access_config",
                "update_cluster_config",
                f"authentication mode {mode}",
                accessConfig=dict(authenticationMode=mode),
            )
        )

    if want_key and not have_key:
        steps.append(
            _step(
                "encryption",
                "associate_encryption_config",
                "secrets encryption",
                encryptionConfig=encryption_request(want_key),
            )
        )

    for version in upgrades:
        steps.append(_step("version", "update_cluster_version", f"Kubernetes version {version}", version=version))
    return steps


def after_cluster_state(desired, current, purge_tags=True):
    """The state the cluster is in once the plan and the tag changes are applied."""
    if not current:
        after = dict(desired)
        after["security_groups"] = after["security_groups"] or []
        after["encryption_key_arn"] = after["encryption_key_arn"] or ""
        after["authentication_mode"] = after["authentication_mode"] or DEFAULT_AUTHENTICATION_MODE
        after["tags"] = dict(after["tags"] or {})
        return after
    after = dict(current)
    for key, value in desired.items():
        if value is not None and key != "tags":
            after[key] = value
    if desired["encryption_key_arn"] == "":
        after["encryption_key_arn"] = current["encryption_key_arn"]
    after["tags"] = apply_tags(current["tags"], desired["tags"], purge_tags)
    return after


def predicted_cluster(cluster, after):
    """DescribeCluster's ``cluster`` as it is predicted to be in ``after`` (check mode)."""
    predicted = copy.deepcopy(cluster) if cluster else dict(status="CREATING")
    vpc = predicted.setdefault("resourcesVpcConfig", {})
    vpc.update(subnetIds=list(after["subnets"]), securityGroupIds=list(after["security_groups"]))
    vpc.update(endpointPublicAccess=after["endpoint_public_access"])
    vpc.update(endpointPrivateAccess=after["endpoint_private_access"])
    if after["endpoint_public_access"]:
        vpc["publicAccessCidrs"] = list(after["public_access_cidrs"])
    predicted.update(
        name=after["name"],
        version=after["version"],
        roleArn=after["role_arn"],
        logging=logging_request(after["logging"]),
        tags=dict(after["tags"]),
        accessConfig=dict(predicted.get("accessConfig") or {}, authenticationMode=after["authentication_mode"]),
    )
    if after["encryption_key_arn"]:
        predicted["encryptionConfig"] = encryption_request(after["encryption_key_arn"])
    return predicted


def cluster_diff_view(state):
    return dict(state) if state else {}


# --------------------------------------------------------------------------- tags


def apply_tags(current, desired, purge_tags=True):
    """The tags after applying ``desired`` (None: unmanaged) to ``current``."""
    current = dict(current or {})
    if desired is None:
        return current
    to_set, to_unset = compare_aws_tags(current, desired, purge_tags=purge_tags)
    after = {k: v for k, v in current.items() if k not in to_unset}
    after.update(to_set)
    return after


def tag_changes(current, desired, purge_tags=True):
    """(tags to set, keys to remove); both empty when ``desired`` is None (tags not managed)."""
    if desired is None:
        return {}, []
    to_set, to_unset = compare_aws_tags(dict(current or {}), desired, purge_tags=purge_tags)
    return to_set, sorted(to_unset)


def update_tags(module, client, arn, current, desired, *, purge_tags):
    """Apply tag changes to an EKS resource; return True when something changed."""
    to_set, to_unset = tag_changes(current, desired, purge_tags)
    if module.check_mode:
        return bool(to_set or to_unset)
    try:
        if to_unset:
            client.untag_resource(resourceArn=arn, tagKeys=to_unset, aws_retry=True)
        if to_set:
            client.tag_resource(resourceArn=arn, tags=to_set, aws_retry=True)
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed to update the tags of {arn}")
    return bool(to_set or to_unset)


# --------------------------------------------------------------------------- add-ons


def default_addon_version(addon_versions, cluster_version):
    """The version DescribeAddonVersions marks as default for the cluster version (else the first listed)."""
    compatible = []
    for addon in addon_versions or []:
        for version in addon.get("addonVersions") or []:
            for compatibility in version.get("compatibilities") or []:
                if compatibility.get("clusterVersion") != cluster_version:
                    continue
                if compatibility.get("defaultVersion"):
                    return version["addonVersion"]
                compatible.append(version["addonVersion"])
    return compatible[0] if compatible else None


def association_id_from_arn(arn):
    """arn:aws:eks:<region>:<account>:podidentityassociation/<cluster>/<id> -> <id>."""
    return str(arn).rsplit("/", 1)[-1]


def addon_changes(desired, addon, current_associations=None):
    """Fields of UpdateAddon that differ, as {field: (before, after)} in module option names.

    Raises EksParameterError for a change EKS cannot make in place.
    """
    changes = {}
    if desired["addon_version"] and desired["addon_version"] != addon.get("addonVersion"):
        changes["addon_version"] = (addon.get("addonVersion"), desired["addon_version"])
    if desired["configuration_values"] is not None:
        have = described_configuration_values(addon.get("configurationValues"))
        if not json_equal(desired["configuration_values"], have):
            changes["configuration_values"] = (have, desired["configuration_values"])
    if desired["service_account_role_arn"] is not None:
        have = addon.get("serviceAccountRoleArn") or ""
        want = desired["service_account_role_arn"]
        _check(
            want or not have,
            "service_account_role_arn",
            f"EKS cannot remove the IAM role ({have}) of the existing add-on '{addon.get('addonName')}'; "
            "delete the add-on (state=absent) and create it again without the role",
        )
        if want != have:
            changes["service_account_role_arn"] = (have, want)
    if desired["pod_identity_associations"] is not None:
        have = sorted(current_associations or [], key=lambda a: a["service_account"])
        if desired["pod_identity_associations"] != have:
            changes["pod_identity_associations"] = (have, desired["pod_identity_associations"])
    return changes


def addon_update_request(changes):
    """Keyword arguments of UpdateAddon (besides the names and resolveConflicts) for ``changes``."""
    request = {}
    if "addon_version" in changes:
        request["addonVersion"] = changes["addon_version"][1]
    if "configuration_values" in changes:
        request["configurationValues"] = compact_json(changes["configuration_values"][1])
    if "service_account_role_arn" in changes:
        request["serviceAccountRoleArn"] = changes["service_account_role_arn"][1]
    if "pod_identity_associations" in changes:
        request["podIdentityAssociations"] = [
            dict(serviceAccount=a["service_account"], roleArn=a["role_arn"])
            for a in changes["pod_identity_associations"][1]
        ]
    return request


# --------------------------------------------------------------------------- results


def snake_result(resource):
    """A described EKS resource in snake_case; tag keys are left as they are."""
    if not resource:
        return {}
    return camel_dict_to_snake_dict(resource, ignore_list=["tags"])


# --------------------------------------------------------------------------- waiters


class Deadline:
    """The time left of a module run's wait_timeout, shared by the waiters of one run."""

    def __init__(self, timeout, clock=time.monotonic):
        self._clock = clock
        self._end = clock() + timeout

    def remaining(self):
        return max(0.0, self._end - self._clock())


def waiter_config(remaining, delay):
    """WaiterConfig that gives up after about ``remaining`` seconds; at least one attempt is made."""
    remaining = math.floor(remaining)
    delay = max(1, min(int(delay), remaining or 1))
    return dict(Delay=delay, MaxAttempts=1 + remaining // delay)


def get_waiter(client, name):
    """botocore's EKS waiter ``name`` (cluster_active, addon_deleted, ...) or update_successful."""
    raw = getattr(client, "client", client)  # amazon.aws's RetryingBotoClientWrapper keeps the client here
    if name == "update_successful":
        model = botocore.waiter.WaiterModel(UPDATE_WAITER_MODEL)
        return botocore.waiter.create_waiter_with_client("UpdateSuccessful", model, raw)
    return raw.get_waiter(name)


def wait(module, client, waiter_name, deadline, description, **params):
    """Run waiter ``waiter_name`` within the time left; fail the module with ``description`` on error or timeout."""
    remaining = deadline.remaining()
    config = waiter_config(remaining, WAITER_DELAYS[waiter_name])
    try:
        get_waiter(client, waiter_name).wait(WaiterConfig=config, **params)
    except botocore.exceptions.WaiterError as e:
        detail = ""
        last = e.last_response or {}
        update = last.get("update") or {}
        if update.get("errors"):
            detail = "; ".join(
                f"{err.get('errorCode')}: {err.get('errorMessage')}"
                for err in update["errors"]
                if isinstance(err, dict)
            )
        if "Max attempts exceeded" in str(e):
            module.fail_json_aws(
                e, msg=f"Timed out after about {int(remaining)} seconds (wait_timeout) waiting for {description}"
            )
        module.fail_json_aws(e, msg=f"Failed waiting for {description}" + (f" ({detail})" if detail else ""))
    except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError) as e:
        module.fail_json_aws(e, msg=f"Failed waiting for {description}")
