"""Descriptions of security group rules that reference a group or a prefix list.

EC2's DescribeSecurityGroupRules returns the ``Description`` of every rule.
Stock moto (5.2.x) reads it only from a CIDR rule's range, so a rule that
references another security group is described without the description it
was authorized with (DescribeSecurityGroups still shows it).
"""

from __future__ import annotations

from moto.ec2.models.security_groups import SecurityGroupRule


def _description(self: SecurityGroupRule) -> str | None:
    for source in (self.ip_range, self.source_group):
        if source and source.get("Description"):
            return source["Description"]
    return None


def install() -> None:
    SecurityGroupRule.description = property(_description)  # type: ignore[assignment,method-assign]
