"""The ``/iam-user`` slash command: ``new`` (or empty), ``remove``, ``status [id]``, ``pending``,
``cancel <id>``, ``keys``, ``help``.

Answers are the ack's text, which Slack shows ephemerally to the person who typed the command,
in place. Everything before an ack stays well under Slack's 3 s: database reads, the cached
approver list and at most one cached ``chat.getPermalink``. ``keys`` reads IAM (a few calls a
user), so its list follows by DM from a lazy listener, like ``cancel``'s outcome.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import Ack, App

from bot.lifecycle.removal_form import removal_modal
from bot.selfservice.commands import parse_command
from bot.slack.blocks import escape
from bot.wizard.views import onboarding_modal

if TYPE_CHECKING:
    from bot.services import Services

COMMAND = "/iam-user"


def register(app: App, services: Services) -> None:
    desk, messenger = services.desk, services.messenger

    def iam_user(ack: Ack, command: dict) -> None:
        text = command.get("text") or ""
        parsed = parse_command(text)
        user_id = command["user_id"]
        if parsed.verb in ("new", "", "remove"):
            decision = services.approvals.may_request(user_id)
            if not decision.allowed:
                ack(text=decision.reason)
                return
            ack()
            # A trigger_id lives 3 s and works once: open the modal before anything slow.
            if parsed.verb == "remove":
                messenger.open_view(command["trigger_id"], removal_modal(), "removal form")
            else:
                messenger.open_view(command["trigger_id"], onboarding_modal(), "request form")
            return
        if parsed.verb == "keys":
            ack(text="Reading your IAM users' access keys… the list follows in our direct messages.")
            return
        if parsed.verb == "cancel" and parsed.request_id is not None:
            # Cancelling updates the approval message: answer first, report the outcome by DM.
            ack(text=f"Cancelling `{parsed.request_id}`… I'll confirm in a direct message.")
            return
        if parsed.verb == "unknown":
            ack(text=f"I don't know `{escape(parsed.argument or '')}`. Try `/iam-user help`.")
            return
        ack(text=desk.reply(user_id, text, links=False))

    def after_ack(command: dict) -> None:
        """``cancel <id>`` (the move), ``keys`` (IAM reads) and the whole CLI script of
        ``status <id>`` (more than an ack may carry), after the ack; by DM."""
        user_id, text = command["user_id"], command.get("text") or ""
        parsed = parse_command(text)
        if parsed.verb == "cancel" and parsed.request_id is not None:
            messenger.dm(user_id, desk.cancel(user_id, parsed.request_id).message)
        elif parsed.verb == "keys":
            messenger.dm(user_id, desk.reply(user_id, "keys"))
        elif parsed.verb == "status":
            for part in desk.followups(user_id, text):
                messenger.dm(user_id, part)

    app.command(COMMAND)(ack=iam_user, lazy=[after_ack])
