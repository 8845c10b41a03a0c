"""Run a module's ``main()`` in process, with a clean AWS environment.

Shared by the module tests of this directory (pytest puts it on ``sys.path``):
``exit_json``/``fail_json`` raise ``ModuleExit``/``ModuleFail`` carrying the result,
and the AWS environment is reduced to fixed static credentials, with no profile,
region, endpoint override or metadata service leaking in from the machine.
"""

import os

import boto3
import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

AWS_ENV_VARS = (
    "AWS_ACCESS_KEY_ID",
    "AWS_ACCESS_KEY",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SECRET_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_URL",
    "AWS_CA_BUNDLE",
    "ANSIBLE_DEBUG_BOTOCORE_LOGS",
)


class ModuleExit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


class ModuleFail(Exception):
    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def _exit_json(self, **kwargs):
    raise ModuleExit(kwargs)


def fail_result(msg=None, **kwargs):
    """Raise ``ModuleFail`` as ``fail_json(msg=..., **kwargs)`` would end the module."""
    kwargs["msg"] = msg
    kwargs["failed"] = True
    raise ModuleFail(kwargs)


def _fail_json(self, msg=None, **kwargs):
    fail_result(msg, **kwargs)


def clean_aws_env(monkeypatch, tmp_path, access_key="testing", secret_key="testing"):
    """Static credentials from the environment and nothing else (every AWS_ENDPOINT_URL* removed too)."""
    for name in (*AWS_ENV_VARS, *(n for n in os.environ if n.startswith("AWS_ENDPOINT_URL"))):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "missing-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "missing-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)


def patch_exits(monkeypatch):
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", _exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", _fail_json)


def run_main(main, args, check_mode=False, diff=True):
    """Run ``main()`` with ``args``; return the raised ``ModuleExit`` or ``ModuleFail``.

    ``_ansible_check_mode``/``_ansible_diff`` given in ``args`` win over the keyword arguments.
    """
    args = {"_ansible_check_mode": check_mode, "_ansible_diff": diff, **args}
    with patch_module_args(args), pytest.raises((ModuleExit, ModuleFail)) as raised:
        main()
    return raised.value


def record_retrying_clients(monkeypatch, module):
    """Record the clients ``module`` creates and the jittered-backoff decorators it builds.

    Returns ``(calls, decorators)``: ``calls`` lists ``(service, retry_decorator)`` for each
    ``AnsibleAWSModule.client`` call, ``decorators`` what ``AWSRetry.jittered_backoff`` returned.
    """
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    real_backoff = module.AWSRetry.jittered_backoff
    decorators = []

    def recording_backoff(*args, **kwargs):
        decorator = real_backoff(*args, **kwargs)
        decorators.append(decorator)
        return decorator

    real_client = AnsibleAWSModule.client
    calls = []

    def spy(self, service, retry_decorator=None, **kwargs):
        calls.append((service, retry_decorator))
        return real_client(self, service, retry_decorator=retry_decorator, **kwargs)

    monkeypatch.setattr(module.AWSRetry, "jittered_backoff", recording_backoff)
    monkeypatch.setattr(AnsibleAWSModule, "client", spy)
    return calls, decorators


def module_outcomes(main, diff=True):
    """``(succeed, fail)`` for a module's ``main``: each runs it with ``args`` (and ``check_mode``),
    asserts it exited or failed, and returns its result."""

    def succeed_(args, check_mode=False):
        outcome = run_main(main, args, check_mode=check_mode, diff=diff)
        assert isinstance(outcome, ModuleExit), outcome.result.get("msg")
        return outcome.result

    def fail_(args, check_mode=False):
        outcome = run_main(main, args, check_mode=check_mode, diff=diff)
        assert isinstance(outcome, ModuleFail), outcome.result
        return outcome.result

    return succeed_, fail_


def succeed(run, args, check_mode=False):
    """``run(args)`` (a ``(failed, result)`` runner) must succeed; return its result."""
    failed, result = run(args, check_mode=check_mode)
    assert not failed, result["msg"]
    return result


def fail(run, args, check_mode=False):
    """``run(args)`` (a ``(failed, result)`` runner) must fail; return its result."""
    failed, result = run(args, check_mode=check_mode)
    assert failed, result
    return result
