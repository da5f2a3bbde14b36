"""``check`` names the "one of these" rules even when other variables are bad too.

Found by a first-time user: with a malformed variable and no approvers and no signing secret,
``check`` named only the malformed variable (pydantic skips the model-level rules once a field
fails), so fixing it revealed two more problems on the next run.
"""

from __future__ import annotations

import pytest

from bot.ops.check import check_configuration

VARIABLES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "APPROVAL_CHANNEL_ID",
    "APPROVER_USER_IDS",
    "APPROVER_USERGROUP_ID",
    "PUBLIC_BASE_URL",
)


@pytest.fixture
def environ(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-1-0000000000-qa")
    monkeypatch.setenv("PUBLIC_BASE_URL", "https://bot.example.com")
    return monkeypatch


def rendered(lines) -> list[str]:
    return [line.render() for line in lines]


def test_every_rule_across_variables_is_its_own_line_next_to_a_bad_variable(environ) -> None:
    environ.setenv("APPROVAL_CHANNEL_ID", "#approvals")  # a name, not an id: a field error
    lines, settings = check_configuration()
    assert settings is None
    text = rendered(lines)
    assert len(text) == 3, text
    assert any("APPROVAL_CHANNEL_ID is invalid" in line for line in text)
    approvers = [line for line in text if "APPROVER_USER_IDS or APPROVER_USERGROUP_ID must be set" in line]
    signing = [line for line in text if "SLACK_SIGNING_SECRET is required in HTTP mode" in line]
    assert len(approvers) == 1 and len(signing) == 1
    # Each line has its own fix, not one sentence covering both.
    assert "Signing Secret" not in approvers[0].split(" — fix: ")[1]
    assert "APPROVER" not in signing[0].split(" — fix: ")[1]


def test_both_rules_are_named_when_every_variable_is_well_formed(environ) -> None:
    environ.setenv("APPROVAL_CHANNEL_ID", "C0APPROVALS")
    text = rendered(check_configuration()[0])
    assert len(text) == 2, text
    assert all(line.startswith("FAIL configuration: ") for line in text)


def test_socket_mode_or_a_user_group_satisfy_the_rules(environ) -> None:
    environ.setenv("APPROVAL_CHANNEL_ID", "C0APPROVALS")
    environ.setenv("APPROVER_USERGROUP_ID", "S0APPROVERS")
    environ.setenv("SLACK_APP_TOKEN", "xapp-1-A0-0000-token")
    lines, settings = check_configuration()
    assert settings is not None and rendered(lines)[0].startswith("ok   configuration: Socket Mode")
