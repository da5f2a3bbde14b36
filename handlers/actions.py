"""Button clicks: approve, deny (opens the reason modal), and the link button's no-op ack."""

from __future__ import annotations

import logging

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import blocks
from bot.workflow import Workflow

log = logging.getLogger(__name__)


def _where(body: dict) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def tell(workflow: Workflow, channel: str | None, user_id: str, message: str) -> None:
    """Tell the clicker why nothing happened: ephemeral where they clicked, by DM when the click
    came from a view (the App Home or a modal), which has no channel to post in."""
    if channel:
        workflow.messenger.ephemeral(channel, user_id, message)
    else:
        workflow.messenger.dm(user_id, message)


def register(app: App, workflow: Workflow) -> None:
    def approve(ack: Ack, body: dict, action: dict) -> None:
        ack()
        user_id = body["user"]["id"]
        outcome = workflow.decide(action["value"], user_id, approve=True)
        if not outcome.ok:
            tell(workflow, _where(body), user_id, outcome.message)

    def deny(ack: Ack, body: dict, action: dict, client: WebClient) -> None:
        ack()
        user_id = body["user"]["id"]
        channel = _where(body)
        refusal = workflow.check_decider(action["value"], user_id, approve=False)
        if refusal is not None:
            tell(workflow, channel, user_id, refusal.message)
            return
        try:
            client.views_open(trigger_id=body["trigger_id"], view=blocks.deny_reason_modal(action["value"], channel))
        except SlackApiError as error:
            log.warning(
                "views.open (deny reason) failed: %s", error.response.get("error"), extra={"slack_user": user_id}
            )

    def link_clicked(ack: Ack) -> None:
        ack()  # a URL button still sends an action; the browser does the rest

    app.action("approve_request")(approve)
    app.action("deny_request")(deny)
    app.action("open_credential_link")(link_clicked)
