# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""Helpers of the aws_node_env module, usable without a Kubernetes API server.

Everything except ``retry_transient`` is pure: option validation, the merge of
the variables a run owns into a container's ``env`` list, the JSON patch that
applies it, the rollout status of a DaemonSet and the recognition of a
DaemonSet that the Amazon EKS ``vpc-cni`` add-on manages.

An env list is a list of Kubernetes ``EnvVar`` dicts. Its normal form keeps
``name`` and either ``valueFrom`` or ``value`` (``""`` when the API server left
an empty value out).
"""

import json
import random
import re
import time

try:
    from kubernetes.dynamic.exceptions import DynamicApiError
except ImportError:  # reported by AnsibleK8SModule, which requires the kubernetes library

    class DynamicApiError(Exception):
        """Stand-in so that ``except`` clauses stay valid; never raised."""

        status = None


ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ENV_NAME_RE = re.compile(ENV_NAME_PATTERN)

# Label the VPC resource controller puts on nodes whose trunk network interface is attached.
TRUNK_LABEL = "vpc.amazonaws.com/has-trunk-attached"

# Field manager name Amazon EKS uses for the server-side apply of its managed add-ons.
EKS_FIELD_MANAGER = "eks"

# Field manager name this collection patches with (visible in the DaemonSet's managedFields).
FIELD_MANAGER = "layered.eks_rds.aws_node_env"

# Answers worth another attempt with the same request: throttling and server-side failures.
RETRYABLE_STATUSES = (429, 500, 502, 503, 504)

CONTAINER_KINDS = {
    "env": ("containers", "container"),
    "init_env": ("initContainers", "init container"),
}


class EnvParameterError(Exception):
    """Bad module input; ``option`` names the option at fault."""

    def __init__(self, msg, option):
        super().__init__(msg)
        self.option = option


class EnvStateError(Exception):
    """The DaemonSet cannot be brought to the desired state (missing container, valueFrom entry, ...)."""


# ---------------------------------------------------------------------- input


def _type_name(value):
    return "null" if value is None else type(value).__name__


def _check_name(option, name):
    if not isinstance(name, str):
        raise EnvParameterError(
            f"{option}: variable names must be strings, got {_type_name(name)} {name!r}", option=option
        )
    if not ENV_NAME_RE.match(name):
        raise EnvParameterError(
            f"{option}: {name!r} is not a valid environment variable name (letters, digits and '_', "
            f"not starting with a digit: {ENV_NAME_PATTERN})",
            option=option,
        )


def validate_env_option(option, value, state):
    """Normalise one of the ``env`` / ``init_env`` options.

    With ``state=present``: a dict of names to string values, returned as a new dict (order kept).
    With ``state=absent``: a list of names, or a dict whose values are ignored; returned as a list
    of unique names. ``None`` (option omitted) is returned as ``None``.
    """
    if value is None:
        return None
    if state == "present":
        if not isinstance(value, dict):
            raise EnvParameterError(
                f"{option}: with state=present, give a dict of variable names to string values, "
                f"got {_type_name(value)}",
                option=option,
            )
        for name, item in value.items():
            _check_name(option, name)
            if isinstance(item, bool):
                raise EnvParameterError(
                    f"{option}.{name}: {str(item).lower()} is a boolean, environment values are strings; "
                    f'quote it in YAML ({name}: "{str(item).lower()}")',
                    option=option,
                )
            if not isinstance(item, str):
                raise EnvParameterError(
                    f"{option}.{name}: {item!r} is {_type_name(item)}, environment values are strings; "
                    f'quote it in YAML ({name}: "{item if item is not None else ""}")',
                    option=option,
                )
        return dict(value)
    if isinstance(value, dict):
        names = list(value)
    elif isinstance(value, list):
        names = value
    else:
        raise EnvParameterError(
            f"{option}: with state=absent, give a list of variable names, got {_type_name(value)}", option=option
        )
    unique = []
    for name in names:
        _check_name(option, name)
        if name not in unique:
            unique.append(name)
    return unique


def validate_params(params):
    """Check every option that needs more than the argument spec; no API call. Returns the desired state.

    The result maps ``env`` and ``init_env`` to their normalised values (``None`` when omitted).
    """
    for option in ("name", "namespace", "container", "init_container"):
        if not params.get(option):
            raise EnvParameterError(f"{option}: must not be empty", option=option)
    if params["wait_timeout"] < 0:
        raise EnvParameterError(
            f"wait_timeout: must be 0 or more seconds, got {params['wait_timeout']}", "wait_timeout"
        )
    if params["wait_for_trunk_nodes"] < 0:
        raise EnvParameterError(
            f"wait_for_trunk_nodes: must be 0 or more nodes, got {params['wait_for_trunk_nodes']}",
            option="wait_for_trunk_nodes",
        )
    state = params["state"]
    return {option: validate_env_option(option, params.get(option), state) for option in CONTAINER_KINDS}


# ---------------------------------------------------------------------- env lists


def normal_entry(entry):
    """An EnvVar in normal form: ``name`` and ``valueFrom``, or ``name`` and ``value`` ("" when left out)."""
    if entry.get("valueFrom") is not None:
        return {"name": entry.get("name"), "valueFrom": entry["valueFrom"]}
    return {"name": entry.get("name"), "value": entry.get("value") or ""}


def normal_env(env):
    return [normal_entry(entry) for entry in env or []]


def merge_env(current, set_values=None, remove=None, label="container"):
    """The env list with the owned variables set or removed; everything else is kept, in order.

    ``set_values`` (name -> value) replaces the first entry of each name in place, drops its later
    duplicates, and appends the names not present yet at the end, in the given order. ``remove``
    drops every entry of the given names. Entries of other names, ``valueFrom`` ones included, are
    returned untouched. An owned name held by a ``valueFrom`` entry raises ``EnvStateError``: a
    reference to a Secret, ConfigMap or field is never replaced or removed.
    """
    current = list(current or [])
    set_values = dict(set_values or {})
    remove = set(remove or ())
    owned = set(set_values) | remove
    from_refs = sorted({e.get("name") for e in current if e.get("name") in owned and e.get("valueFrom") is not None})
    if from_refs:
        raise EnvStateError(
            f"{label}: {', '.join(from_refs)} {'is' if len(from_refs) == 1 else 'are'} set with valueFrom "
            "(a reference to a Secret, ConfigMap or field), which this module never replaces or removes"
        )
    result = []
    placed = set()
    for entry in current:
        name = entry.get("name")
        if name in remove:
            continue
        if name in set_values:
            if name not in placed:
                placed.add(name)
                result.append({"name": name, "value": set_values[name]})
            continue
        result.append(entry)
    for name, value in set_values.items():
        if name not in placed:
            result.append({"name": name, "value": value})
    return result


def container_names(pod_spec, option):
    """Names of the containers (``env``) or init containers (``init_env``) of a pod spec, in order."""
    key, _kind = CONTAINER_KINDS[option]
    return [c.get("name") for c in pod_spec.get(key) or []]


def container_index(pod_spec, option, name, label):
    """Index of container ``name`` in the pod spec list of ``option`` (``env``: containers, ``init_env``: init)."""
    _key, kind = CONTAINER_KINDS[option]
    names = container_names(pod_spec, option)
    if name in names:
        return names.index(name)
    present = ", ".join(repr(n) for n in names) if names else "none"
    raise EnvStateError(f"{label} has no {kind} named {name!r}; its {kind}s: {present}")


def plan_changes(daemonset, desired, state, *, container, init_container, label):
    """What to change in ``daemonset`` (a dict) for the desired env options.

    Returns a dict with ``before`` and ``after`` (normal env lists per option, for the containers
    that exist or are targeted), ``changed`` and ``ops`` (JSON patch operations, without the
    resourceVersion test).
    """
    pod_spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    names = {"env": container, "init_env": init_container}
    before, after, ops = {}, {}, []
    for option, (key, kind) in CONTAINER_KINDS.items():
        wanted = desired.get(option)
        if wanted is None:
            # not managed by this run: reported when the container exists, never required
            present = container_names(pod_spec, option)
            if names[option] in present:
                env = normal_env(pod_spec[key][present.index(names[option])].get("env"))
                before[option] = env
                after[option] = env
            continue
        index = container_index(pod_spec, option, names[option], label)
        current = pod_spec[key][index].get("env") or []
        if state == "present":
            merged = merge_env(current, set_values=wanted, label=f"{label}, {kind} {names[option]!r}")
        else:
            merged = merge_env(current, remove=wanted, label=f"{label}, {kind} {names[option]!r}")
        before[option] = normal_env(current)
        after[option] = normal_env(merged)
        if after[option] != before[option]:
            path = f"/spec/template/spec/{key}/{index}"
            ops.append({"op": "test", "path": f"{path}/name", "value": names[option]})
            ops.append({"op": "add", "path": f"{path}/env", "value": merged})
    return {"before": before, "after": after, "changed": bool(ops), "ops": ops}


def patch_document(resource_version, ops):
    """The JSON patch: a test of the resourceVersion read (optimistic concurrency), then ``ops``."""
    return [{"op": "test", "path": "/metadata/resourceVersion", "value": resource_version}, *ops]


def container_env(daemonset, option, name):
    """Normal env list of the named container (``env``) or init container (``init_env``); None if absent."""
    key, _kind = CONTAINER_KINDS[option]
    pod_spec = ((daemonset.get("spec") or {}).get("template") or {}).get("spec") or {}
    for item in pod_spec.get(key) or []:
        if item.get("name") == name:
            return normal_env(item.get("env"))
    return None


# ---------------------------------------------------------------------- rollout


def rollout_status(daemonset):
    """Where the DaemonSet's rollout stands, as ``kubectl rollout status`` sees it.

    Done when the controller has observed the current generation and, for the RollingUpdate
    strategy, every desired pod is updated and available. ``pending`` lists what is missing.
    With the OnDelete strategy pods only change when deleted, so only the observed generation
    is waited for.
    """
    metadata = daemonset.get("metadata") or {}
    spec = daemonset.get("spec") or {}
    status = daemonset.get("status") or {}
    generation = metadata.get("generation") or 0
    observed = status.get("observedGeneration") or 0
    desired = status.get("desiredNumberScheduled") or 0
    updated = status.get("updatedNumberScheduled") or 0
    available = status.get("numberAvailable") or 0
    strategy = (spec.get("updateStrategy") or {}).get("type") or "RollingUpdate"
    pending = []
    if observed < generation:
        pending.append(f"observed generation {observed} of {generation}")
    if strategy != "OnDelete":
        if updated < desired:
            pending.append(f"{updated} of {desired} pods updated")
        if available < desired:
            pending.append(f"{available} of {desired} pods available")
    return {
        "done": not pending,
        "pending": pending,
        "generation": generation,
        "observed_generation": observed,
        "desired_number_scheduled": desired,
        "updated_number_scheduled": updated,
        "number_available": available,
        "update_strategy": strategy,
    }


def trunk_node_names(nodes):
    """Sorted names of the nodes (dicts) labelled ``vpc.amazonaws.com/has-trunk-attached=true``."""
    return sorted(
        n["metadata"]["name"]
        for n in nodes
        if ((n.get("metadata") or {}).get("labels") or {}).get(TRUNK_LABEL) == "true"
    )


# ---------------------------------------------------------------------- EKS add-on


def _keyed(fields, key, value):
    """The entry of a FieldsV1 list map whose ``k:{...}`` key has ``key`` equal to ``value``."""
    for field_key, item in (fields or {}).items():
        if not field_key.startswith("k:"):
            continue
        try:
            parsed = json.loads(field_key[2:])
        except ValueError:
            continue
        if isinstance(parsed, dict) and parsed.get(key) == value:
            return item if isinstance(item, dict) else {}
    return None


def eks_addon_fields(daemonset, container, init_container, names):
    """Whether the Amazon EKS add-on manages the DaemonSet, and which of ``names`` its fields hold.

    EKS installs and updates managed add-ons with server-side apply under the field manager
    ``eks``, so a DaemonSet created or adopted by the ``vpc-cni`` add-on has a
    ``metadata.managedFields`` entry with ``manager: eks``. Labels such as
    ``app.kubernetes.io/managed-by: Helm`` are not a sign of it: the VPC CNI that EKS preinstalls
    without an add-on carries them too.

    ``names`` maps ``env`` / ``init_env`` to the variable names of the run. Returns
    ``{"managed": bool, "env": [...], "init_env": [...]}``, the lists holding the names whose
    entries the ``eks`` manager owns in the container or init container.
    """
    entries = [
        m for m in (daemonset.get("metadata") or {}).get("managedFields") or [] if m.get("manager") == EKS_FIELD_MANAGER
    ]
    result = {"managed": bool(entries), "env": [], "init_env": []}
    containers = {"env": container, "init_env": init_container}
    for entry in entries:
        pod = ((entry.get("fieldsV1") or {}).get("f:spec") or {}).get("f:template") or {}
        pod = pod.get("f:spec") or {}
        for option, (key, _kind) in CONTAINER_KINDS.items():
            owned = _keyed(pod.get(f"f:{key}"), "name", containers[option])
            if owned is None:
                continue
            env_fields = owned.get("f:env")
            for name in names.get(option) or ():
                if _keyed(env_fields, "name", name) is not None and name not in result[option]:
                    result[option].append(name)
    return result


# ---------------------------------------------------------------------- time and retries


class Deadline:
    """The time left of a run's wait_timeout, shared by its waits."""

    def __init__(self, timeout, clock=None):
        self._clock = clock or time.monotonic
        self._end = self._clock() + timeout

    def remaining(self):
        return max(0.0, self._end - self._clock())


def jittered_delays(attempts=6, base=0.5, cap=10.0, uniform=random.uniform):
    """Full-jitter exponential backoff: ``attempts`` delays, each in [0, min(cap, base * 2**n)]."""
    for attempt in range(attempts):
        yield uniform(0, min(cap, base * 2**attempt))


def retry_after(error, cap=30.0):
    """Seconds a ``Retry-After`` header of ``error`` asks to wait (0 when absent or not a number)."""
    headers = getattr(error, "headers", None) or {}
    try:
        return min(cap, max(0.0, float(headers.get("Retry-After"))))
    except (TypeError, ValueError):
        return 0.0


def retry_transient(call, delays=None, sleep=None):
    """``call()``, again after a jittered delay while the API server answers 429 or 5xx.

    Other errors, and the last transient one once the delays run out, are raised.
    """
    delays = iter(jittered_delays() if delays is None else delays)
    sleep = sleep or time.sleep
    while True:
        try:
            return call()
        except DynamicApiError as e:
            if getattr(e, "status", None) not in RETRYABLE_STATUSES:
                raise
            delay = next(delays, None)
            if delay is None:
                raise
            sleep(max(delay, retry_after(e)))


def poll(check, deadline, interval=2.0, sleep=None):
    """Call ``check()`` (returning ``(done, value)``) until done or the deadline passes.

    Returns the last ``(done, value)``; ``check`` runs at least once, and the sleeps never
    overshoot the deadline.
    """
    sleep = sleep or time.sleep
    while True:
        done, value = check()
        remaining = deadline.remaining()
        if done or remaining <= 0:
            return done, value
        sleep(min(interval, remaining))
