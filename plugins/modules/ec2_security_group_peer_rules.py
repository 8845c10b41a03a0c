#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

DOCUMENTATION = r"""
---
module: ec2_security_group_peer_rules
version_added: 0.1.0
short_description: Manage the rules of a security group that reference one other security group
description:
  - Manages, in a security group this task does not otherwise own (O(group_id)), only the rules whose source
    (ingress) or destination (egress) is one other security group (O(peer_group_id)). Every other rule of
    O(group_id) - CIDR rules, prefix-list rules, rules referencing other groups, the default egress rule - is
    never read for changes, modified or revoked.
  - Typical use is a role that owns a security group for its workload and must open a port of a group that
    belongs to another service, for example PostgreSQL on the RDS instance's security group or DNS on the EKS
    cluster security group, and close it again before deleting its own group (EC2 refuses to delete a group
    that other groups still reference).
  - A rule is identified by its direction, protocol and port range. With O(state=present), the rules referencing
    O(peer_group_id) become exactly O(rules) - missing ones are authorized, descriptions that differ are updated
    in place (C(ModifySecurityGroupRules)), and rules referencing O(peer_group_id) that are not listed are
    revoked. With O(state=absent), every rule of O(group_id) that references O(peer_group_id) is revoked.
  - All options are checked before any AWS API call is made.
author:
  - layered.eks_rds maintainers (@layered)
options:
  group_id:
    description:
      - ID of the security group whose rules are managed.
    type: str
    required: true
  peer_group_id:
    description:
      - ID of the security group the managed rules reference. Only rules of O(group_id) whose source or
        destination is this group are managed.
      - Must differ from O(group_id); self-referencing rules belong to whoever owns the group
        (for example M(amazon.aws.ec2_security_group)).
    type: str
    required: true
  rules:
    description:
      - With O(state=present), the rules of O(group_id) that reference O(peer_group_id), all of them. An empty list
        revokes every such rule.
      - Required with O(state=present); ignored with O(state=absent).
      - Two rules may not have the same O(rules[].direction), O(rules[].protocol) and port range.
    type: list
    elements: dict
    suboptions:
      direction:
        description:
          - V(ingress) allows traffic from O(peer_group_id) into O(group_id), V(egress) from O(group_id) to
            O(peer_group_id).
        type: str
        choices: [ ingress, egress ]
        default: ingress
      protocol:
        description:
          - IP protocol. V(all) is every protocol and every port (C(-1) in the EC2 API).
        type: str
        choices: [ tcp, udp, icmp, all ]
        required: true
      from_port:
        description:
          - With V(tcp) and V(udp), the first port of the range, 0 to 65535; required.
          - With V(icmp), the ICMP type, 0 to 255, or -1 (the default) for every type.
          - With V(all), must be omitted or -1.
        type: int
      to_port:
        description:
          - With V(tcp) and V(udp), the last port of the range, 0 to 65535, not lower than O(rules[].from_port);
            defaults to O(rules[].from_port).
          - With V(icmp), the ICMP code, 0 to 255, or -1 (the default) for every code. Must be -1 when
            O(rules[].from_port) is -1.
          - With V(all), must be omitted or -1.
        type: int
      description:
        description:
          - Description of the rule, 1 to 255 characters among C(a-z), C(A-Z), C(0-9), spaces and
            C(._-:/()#,@[]+=&;{}!$*) (what EC2 accepts).
          - A rule whose description differs is updated in place, keeping its rule ID.
        type: str
        required: true
  state:
    description:
      - V(present) makes the rules referencing O(peer_group_id) exactly O(rules); V(absent) revokes all of them.
    type: str
    choices: [ present, absent ]
    default: present
notes:
  - Both groups must be in the account and region of the connection. With O(state=present), the task fails when
    O(group_id) or O(peer_group_id) does not exist, except in check mode, which warns and predicts that every rule
    is added (the groups may be created by an earlier task of the same play). With O(state=absent), a missing
    group means there is nothing to revoke, so the task succeeds without a change.
  - A rule whose port range changes is revoked and authorized again (security group rules have no other way to
    change their ports); its rule ID changes.
  - When another writer authorizes the same rule between the module's read and its write
    (C(InvalidPermission.Duplicate)), the existing rule is kept and its description is corrected; a rule revoked
    by another writer in the same window counts as revoked.
  - Supports check mode, in which RV(rules) is the predicted result (with C(null) rule IDs for rules that would be
    added) and nothing is changed.
  - Supports diff mode; C(before) and C(after) list the managed rules, sorted, one readable line each.
  - "IAM permissions: C(ec2:DescribeSecurityGroups), C(ec2:DescribeSecurityGroupRules),
    C(ec2:AuthorizeSecurityGroupIngress), C(ec2:AuthorizeSecurityGroupEgress), C(ec2:RevokeSecurityGroupIngress),
    C(ec2:RevokeSecurityGroupEgress), C(ec2:ModifySecurityGroupRules)."
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Let the application pods reach PostgreSQL on the RDS instance's security group
  layered.eks_rds.ec2_security_group_peer_rules:
    group_id: sg-0123456789abcdef0   # the RDS instance's group
    peer_group_id: sg-0fedcba9876543210   # the pods' group
    rules:
      - protocol: tcp
        from_port: 5432
        description: PostgreSQL from the metabase pods

- name: Let the pods reach CoreDNS through the EKS cluster security group
  layered.eks_rds.ec2_security_group_peer_rules:
    group_id: "{{ cluster.resources_vpc_config.cluster_security_group_id }}"
    peer_group_id: sg-0fedcba9876543210
    rules:
      - protocol: tcp
        from_port: 53
        description: DNS (TCP) from the metabase pods
      - protocol: udp
        from_port: 53
        description: DNS (UDP) from the metabase pods
      - direction: egress
        protocol: tcp
        from_port: 1025
        to_port: 65535
        description: Kubelet and webhooks to the metabase pods

- name: Revoke what references the pods' group, before deleting that group
  layered.eks_rds.ec2_security_group_peer_rules:
    group_id: sg-0123456789abcdef0
    peer_group_id: sg-0fedcba9876543210
    state: absent
"""

RETURN = r"""
rules:
  description:
    - The rules of O(group_id) that reference O(peer_group_id) after the task, sorted by direction, protocol and
      ports. Empty after O(state=absent).
  returned: always
  type: list
  elements: dict
  contains:
    security_group_rule_id:
      description: ID of the rule; C(null) in check mode for a rule that would be added.
      type: str
      sample: sgr-0123456789abcdef0
    direction:
      description: C(ingress) or C(egress).
      type: str
      sample: ingress
    protocol:
      description: C(tcp), C(udp), C(icmp), C(all), or the protocol EC2 reports for a rule made elsewhere.
      type: str
      sample: tcp
    from_port:
      description: First port (ICMP type for C(icmp)); -1 for every port or type.
      type: int
      sample: 5432
    to_port:
      description: Last port (ICMP code for C(icmp)); -1 for every port or code.
      type: int
      sample: 5432
    description:
      description: Description of the rule; C(null) for a rule made elsewhere without one.
      type: str
      sample: PostgreSQL from the metabase pods
  sample:
    - security_group_rule_id: sgr-0123456789abcdef0
      direction: ingress
      protocol: tcp
      from_port: 5432
      to_port: 5432
      description: PostgreSQL from the metabase pods
added:
  description: Rules authorized by the task (or that would be, in check mode); same fields as RV(rules).
  returned: always
  type: list
  elements: dict
  sample:
    - security_group_rule_id: sgr-0123456789abcdef0
      direction: ingress
      protocol: tcp
      from_port: 5432
      to_port: 5432
      description: PostgreSQL from the metabase pods
removed:
  description: Rules revoked by the task (or that would be, in check mode), as they were; same fields as RV(rules).
  returned: always
  type: list
  elements: dict
  sample:
    - security_group_rule_id: sgr-0fedcba9876543210
      direction: ingress
      protocol: tcp
      from_port: 3306
      to_port: 3306
      description: MySQL from the metabase pods
updated:
  description:
    - Rules whose description the task changed (or would change, in check mode), with their new description and
      the one they had in RV(updated[].previous_description); otherwise the same fields as RV(rules).
  returned: always
  type: list
  elements: dict
  contains:
    previous_description:
      description: The description before the task.
      type: str
      sample: PostgreSQL
  sample:
    - security_group_rule_id: sgr-0123456789abcdef0
      direction: ingress
      protocol: tcp
      from_port: 5432
      to_port: 5432
      description: PostgreSQL from the metabase pods
      previous_description: PostgreSQL
"""

import re

from ansible_collections.amazon.aws.plugins.module_utils.botocore import (
    is_boto3_error_code,
    paginated_query_with_retries,
)
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.layered.eks_rds.plugins.module_utils.aws_errors import aws_errors

GROUP_ID = re.compile(r"^sg-[0-9a-f]{8,17}$")
# What EC2 accepts in a security group rule description.
DESCRIPTION = re.compile(r"^[a-zA-Z0-9. _\-:/()#,@\[\]+=&;{}!$*]{1,255}$")
DESCRIPTION_CHARACTERS = "a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*"
# IpProtocol as EC2 reports it (names, or numbers for some writers) -> this module's name.
PROTOCOLS = {"tcp": "tcp", "6": "tcp", "udp": "udp", "17": "udp", "icmp": "icmp", "1": "icmp", "-1": "all"}
RULE_NOT_FOUND = ("InvalidSecurityGroupRuleId.NotFound", "InvalidPermission.NotFound")

ARGUMENT_SPEC = dict(
    group_id=dict(type="str", required=True),
    peer_group_id=dict(type="str", required=True),
    rules=dict(
        type="list",
        elements="dict",
        options=dict(
            direction=dict(type="str", default="ingress", choices=["ingress", "egress"]),
            protocol=dict(type="str", required=True, choices=["tcp", "udp", "icmp", "all"]),
            from_port=dict(type="int"),
            to_port=dict(type="int"),
            description=dict(type="str", required=True),
        ),
    ),
    state=dict(type="str", default="present", choices=["present", "absent"]),
)


class PeerRuleParameterError(ValueError):
    def __init__(self, option, message):
        super().__init__(f"{option}: {message}")
        self.option = option


# --------------------------------------------------------------------------- validation


def _ports(rule, option):
    """``(from_port, to_port)`` of a rule option as EC2 stores them; raise PeerRuleParameterError when invalid."""
    protocol = rule["protocol"]
    from_port, to_port = rule.get("from_port"), rule.get("to_port")
    if protocol == "all":
        for name, value in (("from_port", from_port), ("to_port", to_port)):
            if value not in (None, -1):
                raise PeerRuleParameterError(
                    f"{option}.{name}", f"must be omitted or -1 with protocol=all (every port), got {value}"
                )
        return -1, -1
    if protocol == "icmp":
        from_port = -1 if from_port is None else from_port
        to_port = -1 if to_port is None else to_port
        for name, value, label in (("from_port", from_port, "ICMP type"), ("to_port", to_port, "ICMP code")):
            if not -1 <= value <= 255:
                raise PeerRuleParameterError(
                    f"{option}.{name}", f"is the {label} with protocol=icmp: 0 to 255, or -1 for all, got {value}"
                )
        if from_port == -1 and to_port != -1:
            raise PeerRuleParameterError(
                f"{option}.to_port", f"must be -1 when from_port is -1 (every ICMP type), got {to_port}"
            )
        return from_port, to_port
    if from_port is None:
        raise PeerRuleParameterError(f"{option}.from_port", f"is required with protocol={protocol}")
    to_port = from_port if to_port is None else to_port
    for name, value in (("from_port", from_port), ("to_port", to_port)):
        if not 0 <= value <= 65535:
            raise PeerRuleParameterError(f"{option}.{name}", f"must be between 0 and 65535, got {value}")
    if from_port > to_port:
        raise PeerRuleParameterError(f"{option}.to_port", f"{to_port} is lower than from_port {from_port}")
    return from_port, to_port


def _description(rule, option):
    description = rule.get("description")
    if not description:
        raise PeerRuleParameterError(f"{option}.description", "is required and may not be empty")
    if len(description) > 255:
        raise PeerRuleParameterError(
            f"{option}.description", f"is {len(description)} characters long; EC2 accepts at most 255"
        )
    if not DESCRIPTION.match(description):
        bad = sorted({c for c in description if not DESCRIPTION.match(c)})
        raise PeerRuleParameterError(
            f"{option}.description",
            f"contains {''.join(bad)!r}; EC2 accepts only {DESCRIPTION_CHARACTERS}",
        )
    return description


def validate_params(params):
    """Check what AnsibleModule cannot; return the desired rules (``rule`` dicts), or ``None`` with state=absent.

    Raises PeerRuleParameterError naming the option (``rules[<index>].<field>`` for a rule).
    """
    for name in ("group_id", "peer_group_id"):
        if not GROUP_ID.match(params[name] or ""):
            raise PeerRuleParameterError(name, f"{params[name]!r} is not a security group ID (sg-0123456789abcdef0)")
    if params["group_id"] == params["peer_group_id"]:
        raise PeerRuleParameterError(
            "peer_group_id",
            f"is the same group as group_id ({params['group_id']}); self-referencing rules belong to the group's "
            "owner (amazon.aws.ec2_security_group)",
        )
    if params["state"] == "absent":
        return None
    if params["rules"] is None:
        raise PeerRuleParameterError("rules", "is required with state=present (an empty list revokes every rule)")
    desired = []
    seen = {}
    for index, item in enumerate(params["rules"]):
        option = f"rules[{index}]"
        from_port, to_port = _ports(item, option)
        wanted = rule(item["direction"], item["protocol"], from_port, to_port, _description(item, option))
        key = rule_key(wanted)
        if key in seen:
            raise PeerRuleParameterError(
                option,
                f"{describe_rule(wanted, params['peer_group_id'], with_description=False)} is already rules"
                f"[{seen[key]}]; list each direction, protocol and port range once",
            )
        seen[key] = index
        desired.append(wanted)
    return desired


# --------------------------------------------------------------------------- rules


def rule(direction, protocol, from_port, to_port, description, *, rule_id=None):
    return dict(
        security_group_rule_id=rule_id,
        direction=direction,
        protocol=protocol,
        from_port=from_port,
        to_port=to_port,
        description=description,
    )


def rule_key(item):
    return (item["direction"], item["protocol"], item["from_port"], item["to_port"])


def sort_key(item):
    return (*rule_key(item), item["description"] or "", item["security_group_rule_id"] or "")


def sorted_rules(items):
    return sorted(items, key=sort_key)


def _port_value(value):
    return -1 if value is None else int(value)


def managed_rules(described, peer_group_id):
    """The described rules (DescribeSecurityGroupRules) that reference ``peer_group_id``, as ``rule`` dicts."""
    managed = []
    for item in described:
        if (item.get("ReferencedGroupInfo") or {}).get("GroupId") != peer_group_id:
            continue
        protocol = PROTOCOLS.get(str(item.get("IpProtocol")), str(item.get("IpProtocol")))
        from_port, to_port = _port_value(item.get("FromPort")), _port_value(item.get("ToPort"))
        if protocol == "all":
            from_port = to_port = -1
        direction = "egress" if item.get("IsEgress") else "ingress"
        managed.append(
            rule(direction, protocol, from_port, to_port, item.get("Description"), rule_id=item["SecurityGroupRuleId"])
        )
    return sorted_rules(managed)


def plan_changes(existing, desired):
    """``(to_add, to_remove, to_update)``; ``to_update`` holds the existing rules with the desired description."""
    wanted = {rule_key(item): item for item in desired}
    kept = set()
    to_remove, to_update = [], []
    for item in existing:
        key = rule_key(item)
        if key not in wanted or key in kept:
            to_remove.append(item)
            continue
        kept.add(key)
        description = wanted[key]["description"]
        if item["description"] != description:
            to_update.append(dict(item, description=description, previous_description=item["description"]))
    to_add = [item for key, item in wanted.items() if key not in kept]
    return sorted_rules(to_add), sorted_rules(to_remove), sorted_rules(to_update)


def predicted_rules(existing, to_add, to_remove, to_update):
    removed_ids = {item["security_group_rule_id"] for item in to_remove}
    updated = {item["security_group_rule_id"]: item["description"] for item in to_update}
    after = [
        dict(item, description=updated.get(item["security_group_rule_id"], item["description"]))
        for item in existing
        if item["security_group_rule_id"] not in removed_ids
    ]
    return sorted_rules(after + [dict(item) for item in to_add])


def _ports_text(item):
    protocol, from_port, to_port = item["protocol"], item["from_port"], item["to_port"]
    if protocol == "all":
        return "all traffic"
    if protocol == "icmp":
        if from_port == -1:
            return "icmp every type"
        return f"icmp type {from_port} " + ("every code" if to_port == -1 else f"code {to_port}")
    if from_port == -1:
        return f"{protocol} every port"
    return f"{protocol} {from_port}" if from_port == to_port else f"{protocol} {from_port}-{to_port}"


def describe_rule(item, peer_group_id, with_description=True):
    """One readable line: ``ingress tcp 5432 from sg-...: PostgreSQL``."""
    preposition = "to" if item["direction"] == "egress" else "from"
    text = f"{item['direction']} {_ports_text(item)} {preposition} {peer_group_id}"
    if with_description:
        text += f": {item['description']}" if item["description"] else " (no description)"
    return text


def diff_view(items, peer_group_id):
    return {"rules": [describe_rule(item, peer_group_id) for item in sorted_rules(items)]}


def ip_permission(item, peer_group_id):
    permission = dict(
        IpProtocol="-1" if item["protocol"] == "all" else item["protocol"],
        UserIdGroupPairs=[dict(GroupId=peer_group_id, Description=item["description"])],
    )
    if item["protocol"] != "all":
        permission.update(FromPort=item["from_port"], ToPort=item["to_port"])
    return permission


def modify_request(item, peer_group_id):
    return dict(
        SecurityGroupRuleId=item["security_group_rule_id"],
        SecurityGroupRule=dict(
            IpProtocol="-1" if item["protocol"] == "all" else item["protocol"],
            FromPort=item["from_port"],
            ToPort=item["to_port"],
            ReferencedGroupId=peer_group_id,
            Description=item["description"],
        ),
    )


# --------------------------------------------------------------------------- API


class PeerRules:
    """Reads and changes the rules of ``group_id`` that reference ``peer_group_id``."""

    def __init__(self, module, client):
        self.module = module
        self.client = client
        self.group_id = module.params["group_id"]
        self.peer_group_id = module.params["peer_group_id"]

    def describe_group(self, group_id):
        """The group as DescribeSecurityGroups returns it, or ``None`` when it does not exist."""
        try:
            groups = self.client.describe_security_groups(GroupIds=[group_id], aws_retry=True)["SecurityGroups"]
        except is_boto3_error_code("InvalidGroup.NotFound"):
            return None
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(e, msg=f"Failed to describe security group {group_id}")
        return groups[0] if groups else None

    def read(self):
        """The managed rules of the group, as DescribeSecurityGroupRules describes them."""
        try:
            described = paginated_query_with_retries(
                self.client,
                "describe_security_group_rules",
                retry_decorator=AWSRetry.jittered_backoff(),
                Filters=[dict(Name="group-id", Values=[self.group_id])],
            )["SecurityGroupRules"]
        except aws_errors() as e:
            self.module.fail_json_aws(e, msg=f"Failed to describe the rules of security group {self.group_id}")
        return managed_rules(described, self.peer_group_id)

    def _call(self, direction, action, **kwargs):
        method = getattr(self.client, f"{action}_security_group_{direction}")
        return method(GroupId=self.group_id, aws_retry=True, **kwargs)

    def revoke(self, items):
        for direction in ("ingress", "egress"):
            rule_ids = [item["security_group_rule_id"] for item in items if item["direction"] == direction]
            if not rule_ids:
                continue
            try:
                self._call(direction, "revoke", SecurityGroupRuleIds=rule_ids)
            except is_boto3_error_code(RULE_NOT_FOUND):
                # Another writer revoked one of them meanwhile; revoke the rest one by one.
                for rule_id in rule_ids:
                    self._revoke_one(direction, rule_id)
            except aws_errors() as e:  # pylint: disable=duplicate-except
                self.module.fail_json_aws(
                    e, msg=f"Failed to revoke {direction} rules {', '.join(rule_ids)} of security group {self.group_id}"
                )

    def _revoke_one(self, direction, rule_id):
        try:
            self._call(direction, "revoke", SecurityGroupRuleIds=[rule_id])
        except is_boto3_error_code(RULE_NOT_FOUND):
            pass
        except aws_errors() as e:  # pylint: disable=duplicate-except
            self.module.fail_json_aws(
                e, msg=f"Failed to revoke {direction} rule {rule_id} of security group {self.group_id}"
            )

    def authorize(self, items):
        """Authorize the rules; return those another writer authorized first (InvalidPermission.Duplicate)."""
        raced = []
        for direction in ("ingress", "egress"):
            batch = [item for item in items if item["direction"] == direction]
            if not batch:
                continue
            try:
                self._authorize(direction, batch)
            except is_boto3_error_code("InvalidPermission.Duplicate"):
                # EC2 refuses the whole request; add the rules one by one and keep the ones already there.
                for item in batch:
                    try:
                        self._authorize(direction, [item])
                    except is_boto3_error_code("InvalidPermission.Duplicate"):
                        raced.append(item)
                    except aws_errors() as e:  # pylint: disable=duplicate-except
                        self._fail_authorize(e, [item])
            except aws_errors() as e:  # pylint: disable=duplicate-except
                self._fail_authorize(e, batch)
        return raced

    def _authorize(self, direction, batch):
        self._call(direction, "authorize", IpPermissions=[ip_permission(item, self.peer_group_id) for item in batch])

    def _fail_authorize(self, error, batch):
        if is_boto3_error_code("InvalidGroup.NotFound", e=error):
            self.module.fail_json_aws(
                error,
                msg=f"Failed to authorize rules on security group {self.group_id}: it or peer group "
                f"{self.peer_group_id} does not exist",
            )
        lines = "; ".join(describe_rule(item, self.peer_group_id) for item in batch)
        self.module.fail_json_aws(error, msg=f"Failed to authorize on security group {self.group_id}: {lines}")

    def modify(self, items):
        if not items:
            return
        try:
            self.client.modify_security_group_rules(
                GroupId=self.group_id,
                SecurityGroupRules=[modify_request(item, self.peer_group_id) for item in items],
                aws_retry=True,
            )
        except aws_errors() as e:
            rule_ids = ", ".join(item["security_group_rule_id"] for item in items)
            self.module.fail_json_aws(
                e, msg=f"Failed to update the descriptions of rules {rule_ids} of security group {self.group_id}"
            )


def _result(peer_group_id, before, after, *, added, removed, updated):
    changed = bool(added or removed or updated)
    return dict(
        changed=changed,
        rules=sorted_rules(after),
        added=sorted_rules(added),
        removed=sorted_rules(removed),
        updated=sorted_rules(updated),
        diff=dict(before=diff_view(before, peer_group_id), after=diff_view(after, peer_group_id)),
    )


def ensure_present(module, manager, desired):
    group = manager.describe_group(manager.group_id)
    missing = ["group_id"] if group is None else []
    if manager.describe_group(manager.peer_group_id) is None:
        missing.append("peer_group_id")
    if missing:
        text = "; ".join(f"{name}: security group {module.params[name]} does not exist" for name in missing)
        if not module.check_mode:
            module.fail_json(msg=f"{text} (InvalidGroup.NotFound)", option=missing[0])
        module.warn(f"{text}; outside check mode the task would fail")

    existing = manager.read() if group is not None else []
    to_add, to_remove, to_update = plan_changes(existing, desired)
    predicted = predicted_rules(existing, to_add, to_remove, to_update)
    if module.check_mode or not (to_add or to_remove or to_update):
        return _result(manager.peer_group_id, existing, predicted, added=to_add, removed=to_remove, updated=to_update)

    # Revoke first, so that a group near its rule quota has room for the new rules.
    manager.revoke(to_remove)
    raced = manager.authorize(to_add)
    if raced:
        current = {rule_key(item): item for item in manager.read()}
        raced_keys = {rule_key(item) for item in raced}
        to_add = [item for item in to_add if rule_key(item) not in raced_keys]
        for item in raced:
            found = current.get(rule_key(item))
            if found is not None and found["description"] != item["description"]:
                to_update.append(
                    dict(found, description=item["description"], previous_description=found["description"])
                )
    manager.modify(to_update)

    after = manager.read()
    by_key = {rule_key(item): item for item in after}
    added = [by_key.get(rule_key(item), item) for item in to_add]
    return _result(manager.peer_group_id, existing, after, added=added, removed=to_remove, updated=to_update)


def ensure_absent(module, manager):
    group = manager.describe_group(manager.group_id)
    existing = manager.read() if group is not None else []
    if existing and not module.check_mode:
        manager.revoke(existing)
    return _result(manager.peer_group_id, existing, [], added=[], removed=existing, updated=[])


def main():
    module = AnsibleAWSModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    try:
        desired = validate_params(module.params)
    except PeerRuleParameterError as e:
        module.fail_json(msg=str(e), option=e.option)

    client = module.client("ec2", retry_decorator=AWSRetry.jittered_backoff())
    manager = PeerRules(module, client)
    if module.params["state"] == "absent":
        result = ensure_absent(module, manager)
    else:
        result = ensure_present(module, manager, desired)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
