# -*- coding: utf-8 -*-

# Copyright: (c) 2026, layered.eks_rds maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)

"""The exceptions a boto3 call raises for an AWS or transport error, for ``except`` clauses."""

import contextlib

with contextlib.suppress(ImportError):
    import botocore  # a missing botocore is reported by AnsibleAWSModule


def aws_errors():
    """``(ClientError, BotoCoreError)``; only called once botocore is known to be importable."""
    return (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)
