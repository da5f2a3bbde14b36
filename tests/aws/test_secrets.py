"""``SLACK_SECRETS_FROM``: the bot's secrets read from Secrets Manager or SSM Parameter Store (moto
server), never printed, and each variable from one place only."""

from __future__ import annotations

import json
import uuid

import pytest

from bot.aws.secrets import load_settings_from_environment, read_secrets
from bot.config import ConfigError
from bot.ops.check import check_configuration

TOKEN = "xoxb-1234-5678-fromsecretsmanager"
SIGNING = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def environ(moto_server, monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name, value in moto_server.client_env().items():
        monkeypatch.setenv(name, value)
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "CUSTOM_PASSWORD_SEALING_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("APPROVAL_CHANNEL_ID", "C0APPROVALS")
    monkeypatch.setenv("APPROVER_USER_IDS", "U0APPROVE1")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bot.example.com")
    return monkeypatch


def new_secret(moto_server, text: str) -> str:
    name = f"iam-user-bot/{uuid.uuid4().hex[:8]}"
    return moto_server.boto3_client("secretsmanager").create_secret(Name=name, SecretString=text)["ARN"]


def test_secrets_manager_fills_the_secret_variables(environ, moto_server) -> None:
    arn = new_secret(moto_server, json.dumps({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SIGNING}))
    environ.setenv("SLACK_SECRETS_FROM", f"secretsmanager:{arn}")
    settings = load_settings_from_environment()
    assert settings.slack_bot_token.get_secret_value() == TOKEN
    assert settings.slack_signing_secret is not None and settings.slack_signing_secret.get_secret_value() == SIGNING
    assert TOKEN not in repr(settings) and SIGNING not in str(settings)
    lines, checked = check_configuration()
    assert [line.ok for line in lines] == [True] and checked is not None


def test_ssm_parameters_under_a_path_fill_the_secret_variables(environ, moto_server) -> None:
    path = f"/iam-user-bot/{uuid.uuid4().hex[:8]}"
    ssm = moto_server.boto3_client("ssm")
    ssm.put_parameter(Name=f"{path}/SLACK_BOT_TOKEN", Value=TOKEN, Type="SecureString")
    ssm.put_parameter(Name=f"{path}/SLACK_SIGNING_SECRET", Value=SIGNING, Type="SecureString")
    environ.setenv("SLACK_SECRETS_FROM", f"ssm:{path}")
    settings = load_settings_from_environment()
    assert settings.slack_bot_token.get_secret_value() == TOKEN
    assert settings.slack_signing_secret is not None and settings.slack_signing_secret.get_secret_value() == SIGNING


def test_ssm_parameters_that_are_not_secure_strings_are_refused_by_name(environ, moto_server) -> None:
    path = f"/iam-user-bot/{uuid.uuid4().hex[:8]}"
    ssm = moto_server.boto3_client("ssm")
    ssm.put_parameter(Name=f"{path}/SLACK_BOT_TOKEN", Value=TOKEN, Type="String")
    ssm.put_parameter(Name=f"{path}/SLACK_SIGNING_SECRET", Value=SIGNING, Type="SecureString")
    with pytest.raises(ConfigError) as raised:
        read_secrets(f"ssm:{path}")
    assert str(raised.value) == f"SLACK_SECRETS_FROM: {path}/SLACK_BOT_TOKEN must be SecureString parameters"


def test_a_variable_in_both_places_stops_start_up_naming_it(environ, moto_server) -> None:
    arn = new_secret(moto_server, json.dumps({"SLACK_BOT_TOKEN": TOKEN, "SLACK_SIGNING_SECRET": SIGNING}))
    environ.setenv("SLACK_SECRETS_FROM", f"secretsmanager:{arn}")
    environ.setenv("SLACK_BOT_TOKEN", "xoxb-another-token-000000")
    with pytest.raises(ConfigError) as raised:
        load_settings_from_environment()
    assert "SLACK_BOT_TOKEN set both" in str(raised.value)
    assert TOKEN not in str(raised.value) and "xoxb-another" not in str(raised.value)


@pytest.mark.parametrize(
    ("stored", "source", "expected"),
    [
        (None, "secretsmanager:iam-user-bot/no-such-secret", "(ResourceNotFoundException)"),
        ("xoxb-not-json-" + "9" * 20, None, "must hold a JSON object"),
        (json.dumps({"SLACK_BOT_TOKEN": TOKEN, "DATABASE_PATH": "/tmp/x.db"}), None, "holds 1 name(s) that are not"),
        # The token pasted as a key (the console's key/value editor): counted, never echoed.
        (json.dumps({TOKEN: "SLACK_BOT_TOKEN"}), None, "holds 1 name(s) that are not"),
        (None, "vault:secret/bot", "must be secretsmanager:"),
        (None, "ssm:relative/path", "must be secretsmanager:"),
    ],
)
def test_an_unreadable_or_wrong_source_is_one_line_without_values(
    environ, moto_server, stored: str | None, source: str | None, expected: str
) -> None:
    if stored is not None:
        source = f"secretsmanager:{new_secret(moto_server, stored)}"
    assert source is not None
    with pytest.raises(ConfigError) as raised:
        read_secrets(source)
    message = str(raised.value)
    assert expected in message and "\n" not in message
    assert TOKEN not in message and "xoxb-not-json" not in message
    environ.setenv("SLACK_SECRETS_FROM", source)
    lines, settings = check_configuration()
    assert settings is None and [line.ok for line in lines] == [False]
    assert TOKEN not in lines[0].render() and "xoxb-not-json" not in lines[0].render()
