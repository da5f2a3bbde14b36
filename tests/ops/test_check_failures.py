"""``check`` names the right fix for each way AWS can fail, and writes nothing while the
configuration is broken.

The AWS failures are real botocore errors: a closed port for an unreachable endpoint, boto3 with
no credentials anywhere, and AWS's own refusals (botocore's Stubber answering as STS and IAM do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bot.aws.selfcheck import Failure, check_client, classify
from bot.ops.check_aws import check_aws
from tests.ops.test_check_and_policies import run_check

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens on loopback here
NO_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "",
    "AWS_SECRET_ACCESS_KEY": "",
    "AWS_SESSION_TOKEN": "",
    "AWS_PROFILE": "",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
    "AWS_WEB_IDENTITY_TOKEN_FILE": "",
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance role to find on this machine either
}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """No shared config or credentials files, a region, fake keys (tests take them away or break them)."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return monkeypatch


def stubbed(service: str, error_code: str, status: int = 403) -> Any:
    client = boto3.client(service, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stub = Stubber(client)
    operation = "get_caller_identity" if service == "sts" else "simulate_principal_policy"
    stub.add_client_error(operation, error_code, f"{error_code} from AWS", http_status_code=status)
    stub.activate()
    return client


def test_an_unreachable_endpoint_asks_for_the_network_not_for_credentials(aws_env) -> None:
    aws_env.setenv("AWS_ENDPOINT_URL", CLOSED)
    (line,) = check_aws(check_client)
    assert not line.ok
    assert line.detail.startswith(f'cannot reach AWS: Could not connect to the endpoint URL: "{CLOSED}/"')
    assert "reach AWS over HTTPS" in line.fix and "AWS_ENDPOINT_URL" in line.fix
    assert "credentials" not in line.fix


def test_missing_credentials_ask_for_credentials(aws_env) -> None:
    for name, value in NO_CREDENTIALS.items():
        aws_env.setenv(name, value) if value else aws_env.delenv(name, raising=False)
    aws_env.setenv("AWS_ENDPOINT_URL", CLOSED)  # never reached: signing fails first
    (line,) = check_aws(check_client)
    assert line.detail == "no AWS credentials: Unable to locate credentials"
    assert line.fix.startswith("configure AWS credentials (AWS_PROFILE")


@pytest.mark.parametrize(
    ("code", "words", "fix"),
    [
        ("InvalidClientTokenId", "AWS refused the credentials", "unknown, disabled or expired"),
        ("ExpiredToken", "AWS refused the credentials", "renew the session"),
        ("AccessDenied", "AWS denied sts:GetCallerIdentity", "explicit deny"),
    ],
)
def test_aws_refusals_are_told_apart(code: str, words: str, fix: str) -> None:
    (line,) = check_aws(lambda service: stubbed(service, code))
    assert line.detail.startswith(f"{words}: An error occurred ({code})") and fix in line.fix
    assert "configure AWS credentials" not in line.fix


def test_an_unreachable_iam_endpoint_is_not_called_a_refusal(aws_env) -> None:
    # STS answers (the bot's identity), IAM does not: a VPC with an STS endpoint and no route to IAM.
    sts = boto3.client("sts", region_name="us-east-1")
    stub = Stubber(sts)
    stub.add_response("get_caller_identity", {"Arn": "arn:aws:iam::123456789012:user/bot", "Account": "123456789012"})
    stub.activate()
    aws_env.setenv("AWS_ENDPOINT_URL", CLOSED)
    lines = check_aws(lambda service: sts if service == "sts" else check_client(service))
    assert [line.ok for line in lines] == [True, False]
    assert lines[1].detail.startswith("cannot reach IAM: Could not connect") and "reach AWS over HTTPS" in lines[1].fix


def test_classify_reads_the_error_not_its_text() -> None:
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError, ProfileNotFound

    assert classify(EndpointConnectionError(endpoint_url="https://sts.amazonaws.com")) is Failure.UNREACHABLE
    assert classify(NoCredentialsError()) is Failure.NO_CREDENTIALS
    assert classify(ProfileNotFound(profile="nope")) is Failure.NO_CREDENTIALS
    assert classify(ValueError("x")) is Failure.OTHER


@pytest.mark.e2e
def test_the_command_names_the_network_for_an_unreachable_endpoint(moto_server, slack, tmp_path) -> None:
    from tests.ops.test_check_every_problem import env_for

    env = env_for(moto_server, slack, tmp_path, AWS_ENDPOINT_URL=CLOSED)
    result = run_check(env)
    (line,) = [line for line in result.stdout.splitlines() if line.startswith("FAIL aws identity")]
    assert "cannot reach AWS" in line and "fix: let the bot reach AWS over HTTPS" in line
    assert "configure AWS credentials" not in result.stdout


@pytest.mark.e2e
def test_no_database_file_is_created_while_the_configuration_is_broken(tmp_path) -> None:
    # Nothing configured at all, in an empty folder: every variable fails, and the folder stays empty.
    result = run_check({"AWS_ENDPOINT_URL": CLOSED, "AWS_EC2_METADATA_DISABLED": "true"}, cwd=tmp_path)
    assert result.returncode == 1
    assert "skip database: iam-user-bot.db does not exist yet; created once the configuration is valid" in (
        result.stdout.splitlines()
    )
    assert "FAIL configuration: SLACK_BOT_TOKEN is required but not set" in result.stdout
    assert list(tmp_path.iterdir()) == []


def test_a_database_folder_that_cannot_hold_the_file_fails_even_with_a_broken_configuration(tmp_path) -> None:
    from bot.ops.check import check_database

    line = check_database(tmp_path / "missing" / "bot.db", configured=False)
    assert not line.ok and "is not a folder the bot can write to" in line.detail
    existing = tmp_path / "bot.db"
    existing.write_bytes(b"")
    assert check_database(existing, configured=False).render() == (
        f"skip database: {existing} exists; opened once the configuration is valid"
    )
    assert existing.read_bytes() == b""
