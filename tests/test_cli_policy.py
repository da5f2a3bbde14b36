"""``iam-user-bot policy NAME`` prints the bot-managed policy documents exactly as the bot creates them."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from bot.aws.steps import POLICY_DOCUMENT_NAMES
from bot.cli import main
from bot.domain.plan import BOT_POLICY_DESCRIPTIONS


@pytest.mark.parametrize("name", ["require-mfa", "self-manage-credentials"])
def test_policy_prints_the_document_the_bot_creates(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["policy", name]) == 0
    printed = json.loads(capsys.readouterr().out)
    shipped = json.loads(resources.files("bot").joinpath("policies", f"{name}.json").read_text())
    assert printed == shipped and printed["Version"] == "2012-10-17"
    assert POLICY_DOCUMENT_NAMES[name] == f"iam-user-bot-{name}" in BOT_POLICY_DESCRIPTIONS


def test_an_unknown_policy_name_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["policy", "admin"])
    assert stopped.value.code == 2 and "invalid choice" in capsys.readouterr().err
