"""The ``/iam-user`` slash command: ``new`` (or empty), ``status [id]``, ``help``."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.workflow import Workflow

log = logging.getLogger(__name__)
COMMAND = "/iam-user"


def register(app: App, workflow: Workflow) -> None:
    def iam_user(ack: Ack, command: dict, client: WebClient) -> None:
        words = (command.get("text") or "").split()
        verb = words[0].lower() if words else "new"
        user_id = command["user_id"]
        if verb == "new":
            decision = workflow.may_request(user_id)
            if not decision.allowed:
                ack(text=decision.reason)
                return
            ack()
            # A trigger_id lives 3 s and works once: open the modal before anything slow.
            try:
                client.views_open(trigger_id=command["trigger_id"], view=blocks.onboarding_modal())
            except SlackApiError as error:
                log.warning("views.open failed: %s", error.response.get("error"), extra={"slack_user": user_id})
            return
        if verb == "status":
            ack(text=workflow.status_text(user_id, words[1] if len(words) > 1 else None))
            return
        if verb == "help":
            ack(text=blocks.HELP_TEXT)
            return
        ack(text=f"I don't know `{verb}`.\n{blocks.HELP_TEXT}")

    app.command(COMMAND)(iam_user)
