"""Configuration: one clear line naming a missing or malformed variable, never a secret."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bot.config import ConfigError, load_settings

SECRET = "super-secret-signing-value-123"
BASE = {
    "SLACK_BOT_TOKEN": "xoxb-1-abc-0000000000",
    "SLACK_SIGNING_SECRET": SECRET,
    "APPROVAL_CHANNEL_ID": "C0APPROVALS",
    "APPROVER_USER_IDS": "U0APPROVE1, U0APPROVE2",
    "PUBLIC_BASE_URL": "https://bot.example.com",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch):
    for name in [*BASE, "SLACK_APP_TOKEN", "APPROVER_USERGROUP_ID", "DATABASE_PATH", "PORT"]:
        monkeypatch.delenv(name, raising=False)
    for name, value in BASE.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_valid_environment_is_read(env) -> None:
    settings = load_settings()
    assert settings.approver_user_ids == ("U0APPROVE1", "U0APPROVE2")
    assert settings.slack_base_url == "https://slack.com/api/"
    assert settings.credential_link_ttl_seconds == 86400
    assert settings.port == 3000
    assert not settings.socket_mode
    assert settings.credential_link("abc", "KEY") == "https://bot.example.com/credentials/abc#KEY"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("SLACK_BOT_TOKEN", None, "SLACK_BOT_TOKEN is required"),
        ("SLACK_BOT_TOKEN", "xoxp-user-token", "SLACK_BOT_TOKEN is invalid"),
        # Too short to be a real token, and to key the custom-password sealing (bot.credentials.sealing):
        # it used to pass here and then crash every worker at start-up.
        ("SLACK_BOT_TOKEN", "xoxb-made-up", "SLACK_BOT_TOKEN is invalid"),
        ("APPROVAL_CHANNEL_ID", None, "APPROVAL_CHANNEL_ID is required"),
        ("APPROVAL_CHANNEL_ID", "#approvals", "APPROVAL_CHANNEL_ID is invalid"),
        ("PUBLIC_BASE_URL", "not a url", "PUBLIC_BASE_URL is invalid"),
        ("PORT", "eighty", "PORT is invalid"),
        ("APPROVER_USER_IDS", "alice,bob", "APPROVER_USER_IDS is invalid"),
        ("APPROVER_USER_IDS", None, "APPROVER_USER_IDS or APPROVER_USERGROUP_ID must be set"),
        ("SLACK_SIGNING_SECRET", None, "SLACK_SIGNING_SECRET is required in HTTP mode"),
        # Left empty in bot.env (NAME=): it used to pass, and then every Slack request failed.
        ("SLACK_SIGNING_SECRET", "", "SLACK_SIGNING_SECRET is required in HTTP mode"),
        ("CREDENTIAL_LINK_TTL_SECONDS", "5", "CREDENTIAL_LINK_TTL_SECONDS is invalid"),
        # Accepted silently before (the bot logged at INFO); now refused like every other variable.
        ("LOG_LEVEL", "LOUD", "LOG_LEVEL is invalid: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or"),
        ("LOG_FORMAT", "xml", "LOG_FORMAT is invalid: Input should be 'text' or 'json'"),
        ("CUSTOM_PASSWORD_SEALING_KEY", "short-key", "CUSTOM_PASSWORD_SEALING_KEY is invalid"),
    ],
)
def test_bad_variable_is_named_in_one_line(env, name: str, value: str | None, expected: str) -> None:
    if value is None:
        env.delenv(name, raising=False)
    else:
        env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message
    assert SECRET not in message and "xoxp-user-token" not in message


def test_log_level_and_format_in_any_case(env) -> None:
    env.setenv("LOG_LEVEL", " debug")
    env.setenv("LOG_FORMAT", "JSON")
    settings = load_settings()
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")


@pytest.mark.parametrize("quote", ['"', "'"])
def test_one_pair_of_quotes_around_a_value_is_taken_off(env, quote: str) -> None:
    # bot.env quotes values with spaces so a shell can source it; docker run --env-file keeps the quotes.
    env.setenv("REVEAL_RATE_LIMIT", f"{quote}5 per minute; 20 per hour{quote}")
    env.setenv("APPROVAL_CHANNEL_ID", f"{quote}C0APPROVALS{quote}")
    settings = load_settings()
    assert settings.reveal_rate_limit == "5 per minute; 20 per hour"
    assert settings.approval_channel_id == "C0APPROVALS"


def test_unmatched_quotes_stay_and_are_refused(env) -> None:
    env.setenv("APPROVAL_CHANNEL_ID", '"C0APPROVALS')
    with pytest.raises(ConfigError, match="APPROVAL_CHANNEL_ID is invalid"):
        load_settings()


def test_socket_mode_needs_no_signing_secret(env) -> None:
    env.delenv("SLACK_SIGNING_SECRET")
    env.setenv("SLACK_APP_TOKEN", "xapp-1-abc")
    assert load_settings().socket_mode


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("change", "line"),
    [
        ({"SLACK_BOT_TOKEN": "wrong-shape-" + SECRET}, "SLACK_BOT_TOKEN is invalid: must be a bot token starting with"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL is invalid: Input should be 'DEBUG', 'INFO', 'WARNING', 'ERROR' or"),
    ],
    ids=["bot token", "log level"],
)
def test_serve_stops_with_one_line_naming_the_variable(tmp_path, change: dict[str, str], line: str) -> None:
    env = {"PATH": "/usr/bin:/bin", **BASE, **change}
    answer = subprocess.run(
        [sys.executable, "-m", "bot.cli", "serve"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert answer.returncode == 2
    lines = answer.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("configuration: " + line), lines
    assert SECRET not in answer.stdout + answer.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written, not even the database


def test_the_dedicated_sealing_key_is_what_the_built_services_seal_with(env, tmp_path) -> None:
    from bot.credentials.sealing import SealError, sealer_for, sealer_from_secrets

    key = "k" * 8 + "-dedicated-sealing-key-of-enough-length"
    env.setenv("CUSTOM_PASSWORD_SEALING_KEY", key)
    settings = load_settings()
    assert key not in repr(settings)
    sealing_key = settings.custom_password_sealing_key
    assert sealing_key is not None and sealing_key.get_secret_value() == key
    # What the running bot (app.py builds its sealer with sealer_for) seals opens under a
    # rotated Slack token with the same key, and not under the token alone.
    token = sealer_for(settings).seal("Pw-1234567!", "U0REQ")
    assert sealer_from_secrets("xoxb-rotated-token-000000", key).open(token, "U0REQ") == "Pw-1234567!"
    env.setenv("SLACK_BOT_TOKEN", "xoxb-rotated-token-000000")
    assert sealer_for(load_settings()).open(token, "U0REQ") == "Pw-1234567!"
    with pytest.raises(SealError):
        sealer_from_secrets(settings.slack_bot_token.get_secret_value()).open(token, "U0REQ")
