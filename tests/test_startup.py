"""Start-up failures an operator meets first end in one clear line, not a traceback."""

from __future__ import annotations

import pytest

from bot.sandbox.processes import BotProcess
from tests.conftest import bot_env


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"SLACK_BOT_TOKEN": "xoxb-not-the-installed-token"}, "start-up: Slack refused the bot token"),
        ({"SLACK_API_URL": "http://127.0.0.1:9/api/"}, "start-up: cannot reach Slack at http://127.0.0.1:9/api/"),
        ({"APPROVAL_CHANNEL_ID": ""}, "configuration: APPROVAL_CHANNEL_ID is invalid"),
    ],
    ids=["wrong token", "Slack unreachable", "bad configuration"],
)
@pytest.mark.e2e
def test_serve_stops_with_one_line_naming_the_problem(moto_server, slack, tmp_path, change, expected) -> None:
    # A working environment with one thing broken; two workers, as in production.
    env = {**bot_env(moto_server, slack, tmp_path / "bot.db", "signing-secret-0123", "http://127.0.0.1:1"), **change}
    broken = BotProcess(env=env, log_path=tmp_path / "broken.log", workers=2)
    with pytest.raises(RuntimeError) as failed:
        broken.start(timeout=30)
    log = broken.log_text()
    assert "exited with code" in str(failed.value), log
    assert expected in log
    assert "Traceback" not in log
    assert "Worker failed to boot" in log or "configuration:" in log
    assert env["SLACK_SIGNING_SECRET"] not in log
