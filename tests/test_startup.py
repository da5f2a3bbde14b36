"""Start-up failures an operator meets first end in one clear line, not a traceback.

``serve`` checks Slack and the database once before gunicorn starts a worker (bot.ops.startup),
so the line is the last and only one: no retry noise from the Slack SDK, no line per worker, no
"Worker failed to boot".
"""

from __future__ import annotations

import pytest

from bot.sandbox.processes import BotProcess
from tests.conftest import bot_env


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"SLACK_BOT_TOKEN": "xoxb-not-the-installed-token"},
            "start-up: Slack refused the bot token (invalid_auth); check SLACK_BOT_TOKEN",
        ),
        (
            {"SLACK_API_URL": "http://127.0.0.1:9/api/"},
            "start-up: cannot reach Slack at http://127.0.0.1:9/api/ (<urlopen error [Errno 111] Connection refused>);"
            " check SLACK_API_URL and outbound HTTPS",
        ),
        (
            {"SLACK_APP_TOKEN": "xapp-1-not-the-app-token"},
            "start-up: Slack refused the app-level token (invalid_auth); check SLACK_APP_TOKEN",
        ),
        ({"DATABASE_PATH": "/nonexistent-folder/bot.db"}, "start-up: cannot open the database at /nonexistent-folder"),
        (
            {"STORE": "dynamodb", "DYNAMODB_TABLE": "no-such-bot-table"},
            "start-up: DynamoDB table no-such-bot-table does not exist; create it with `iam-user-bot init-store`",
        ),
        ({"APPROVAL_CHANNEL_ID": ""}, "configuration: APPROVAL_CHANNEL_ID is invalid"),
    ],
    ids=["wrong token", "Slack unreachable", "wrong app token", "database", "missing table", "bad configuration"],
)
@pytest.mark.e2e
def test_serve_stops_with_one_line_naming_the_problem(moto_server, slack, tmp_path, change, expected) -> None:
    # A working environment with one thing broken; two workers, as in production.
    env = {**bot_env(moto_server, slack, tmp_path / "bot.db", "signing-secret-0123", "http://127.0.0.1:1"), **change}
    broken = BotProcess(env=env, log_path=tmp_path / "broken.log", workers=2)
    with pytest.raises(RuntimeError) as failed:
        broken.start(timeout=30)
    lines = broken.log_text().strip().splitlines()
    assert "exited with code" in str(failed.value), lines
    assert len(lines) == 1 and lines[0].startswith(expected), lines
    assert env["SLACK_SIGNING_SECRET"] not in lines[0] and "xapp-1-not" not in lines[0]
