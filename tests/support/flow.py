"""The main flow as people do it in Slack, over the stand-in and a real bot process: open the modal,
wait for the catalog, find the approval message, take the one-time link from the ephemeral DM."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.conftest import APPROVAL_CHANNEL, REQUESTER


def open_modal(bot, slack, user: str) -> dict[str, Any]:
    answer, trigger_id = bot.user.slash_command(user, "new")
    assert answer.status == 200
    call = slack.wait_for("views.open", lambda c: c.args.get("trigger_id") == trigger_id)[0]
    assert call.response["ok"], call.response
    return call.response["view"]


def wait_catalog(bot, slack, view: dict[str, Any], group: str) -> None:
    """The catalog loads in the background at start-up; wait until the options menu offers ``group``."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        answer = bot.user.block_suggestion(REQUESTER, view, "groups", group[:3])
        if answer.status == 200 and group in [o["value"] for o in answer.json().get("options", [])]:
            return
        time.sleep(0.2)
    raise AssertionError(f"group {group} never offered")


def approval_message(slack) -> tuple[str, str]:
    """(ts, request id) of the newest approval message."""
    call = slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == APPROVAL_CHANNEL)[-1]
    blocks = call.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert {b["action_id"] for b in buttons} == {"approve_request", "deny_request"}
    return call.response["ts"], buttons[0]["value"]


def all_text(calls) -> str:
    return json.dumps([{"method": c.method, "args": c.args} for c in calls])


def link_from_ephemeral(slack, recipient: str) -> str:
    call = slack.wait_for(
        "chat.postEphemeral",
        lambda c: c.args.get("user") == recipient and "credential" in json.dumps(c.args),
        timeout=60,
    )[-1]
    blocks = call.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    urls = [e["url"] for b in blocks if b["type"] == "actions" for e in b["elements"] if "url" in e]
    assert len(urls) == 1
    return urls[0]
