"""``iam-user-bot check`` reports every problem in one run, one line each, each with its fix.

Driven as a real command against moto server and Slack stand-ins that name the token's scopes
(``X-OAuth-Scopes``) and take an app-level token, as Slack does.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.sandbox.slack_standin import SlackStandIn
from bot.slack.manifest import load_template
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN, REQUESTER
from tests.ops.test_check_and_policies import run_check

APP_TOKEN = "xapp-1-A0STANDIN-0000-standintoken"
NEEDED = load_template()["oauth_config"]["scopes"]["bot"]


@pytest.fixture
def scoped_slack() -> Iterator[SlackStandIn]:
    """A stand-in whose token lacks users:read.email and has one scope the bot does not use."""
    scopes = [s for s in NEEDED if s != "users:read.email"] + ["channels:history"]
    with SlackStandIn(bot_token=BOT_TOKEN, scopes=scopes, app_token=APP_TOKEN) as standin:
        standin.add_user(APPROVER, name="alex.approver", email="alex@example.com")
        standin.add_user(REQUESTER, name="rita.requester", email="rita@example.com")
        standin.add_usergroup("S0APPROVERS", [APPROVER])
        yield standin


def env_for(moto_server, slack: SlackStandIn, tmp_path, **changes: str) -> dict[str, str]:
    env = {
        **moto_server.client_env(),
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": "a-signing-secret-for-the-check-test",
        "SLACK_API_URL": slack.base_url,
        "APPROVAL_CHANNEL_ID": APPROVAL_CHANNEL,
        "APPROVER_USER_IDS": APPROVER,
        "PUBLIC_BASE_URL": "https://bot.example.com",
        "DATABASE_PATH": str(tmp_path / "check.db"),
    }
    env.update(changes)
    return {k: v for k, v in env.items() if v != ""}


def lines_of(output: str) -> dict[str, list[str]]:
    by_name: dict[str, list[str]] = {}
    for line in output.splitlines():
        by_name.setdefault(line[5:].split(":")[0], []).append(line)
    return by_name


def test_every_bad_variable_is_its_own_line_and_the_other_checks_still_run(moto_server, scoped_slack, tmp_path):
    env = env_for(
        moto_server,
        scoped_slack,
        tmp_path,
        APPROVAL_CHANNEL_ID="general",  # a name, not an id
        CREDENTIAL_LINK_TTL_SECONDS="5",  # below the minimum
        PUBLIC_BASE_URL="",  # missing
        APPROVER_USER_IDS=f"{APPROVER},U0NOBODY01",  # valid, but one is not in the workspace
    )
    result = run_check(env)
    assert result.returncode == 1
    lines = lines_of(result.stdout)
    config = lines["configuration"]
    assert len(config) == 3, result.stdout
    for variable, fix in (
        ("APPROVAL_CHANNEL_ID", "Channel ID"),
        ("CREDENTIAL_LINK_TTL_SECONDS", "Configuration table"),
        ("PUBLIC_BASE_URL", "https://"),
    ):
        line = next(line for line in config if variable in line)
        assert line.startswith("FAIL configuration: ") and " — fix: " in line and fix in line.split(" — fix: ")[1]
    # Slack (the token itself is fine), the people and AWS are still checked; the database is not
    # created while the configuration is broken.
    assert lines["database"] == [f"skip database: {tmp_path / 'check.db'} does not exist yet; created once the "
                                 "configuration is valid"]  # fmt: skip
    assert not (tmp_path / "check.db").exists()
    assert lines["slack people"][0].startswith("FAIL slack people: U0NOBODY01: users.info answered user_not_found")
    assert lines["slack"][0].startswith("ok")
    assert lines["slack scopes"][0].startswith("FAIL")
    assert lines["aws identity"][0].startswith("ok") and lines["iam permissions"][0].startswith("ok")
    assert "a-signing-secret" not in result.stdout + result.stderr


def test_scopes_people_socket_mode_and_the_public_url_each_get_a_line_with_the_fix(
    moto_server, scoped_slack, tmp_path
) -> None:
    env = env_for(
        moto_server,
        scoped_slack,
        tmp_path,
        APPROVER_USER_IDS=f"{APPROVER},U0NOBODY01",
        APPROVER_USERGROUP_ID="S0NOSUCH01",
        PUBLIC_BASE_URL="http://bot.example.com",
        SLACK_APP_TOKEN="xapp-1-not-the-right-app-token",
    )
    result = run_check(env)
    assert result.returncode == 1
    lines = lines_of(result.stdout)
    scopes = lines["slack scopes"][0]
    assert scopes.startswith("FAIL slack scopes: the bot token lacks users:read.email — fix: ")
    assert "iam-user-bot manifest" in scopes and "reinstall" in scopes
    people = lines["slack people"][0]
    assert people.startswith("FAIL") and "U0NOBODY01: users.info answered user_not_found" in people
    assert "S0NOSUCH01: usergroups.users.list answered no_such_subteam" in people and "fix:" in people
    assert APPROVER not in people.split(" — fix: ")[0]  # the real approver is fine
    socket = lines["slack socket mode"][0]
    assert socket.startswith("FAIL slack socket mode: apps.connections.open answered invalid_auth — fix: ")
    assert lines["public url"][0].startswith("FAIL public url: http://bot.example.com")
    failures = [line for line in result.stdout.splitlines() if line.startswith("FAIL")]
    assert failures and all(" — fix: " in line for line in failures)
    assert "not-the-right-app-token" not in result.stdout + result.stderr


def test_a_healthy_socket_mode_set_up_passes_and_notes_unneeded_scopes(moto_server, scoped_slack, tmp_path) -> None:
    scoped_slack.scopes = [*NEEDED, "channels:history"]
    env = env_for(
        moto_server,
        scoped_slack,
        tmp_path,
        SLACK_APP_TOKEN=APP_TOKEN,
        SLACK_SIGNING_SECRET="",
        APPROVER_USERGROUP_ID="S0APPROVERS",
        REQUESTER_USER_IDS=REQUESTER,
    )
    result = run_check(env)
    assert result.returncode == 0, result.stdout
    lines = lines_of(result.stdout)
    assert "also granted, not needed: channels:history" in lines["slack scopes"][0]
    assert lines["slack socket mode"][0].startswith("ok")
    assert lines["slack people"][0] == "ok   slack people: 2 user id(s) and user group(s) found in the workspace"
