"""Modal submissions: the onboarding form and the deny reason."""

from __future__ import annotations

from slack_bolt import Ack, App

from bot import blocks
from bot.workflow import Workflow
from handlers import actions


def register(app: App, workflow: Workflow) -> None:
    def onboarding_submitted(ack: Ack, body: dict, view: dict) -> None:
        result, request = workflow.submit(body["user"]["id"], view["state"]["values"])
        if request is None:
            ack(response_action="errors", errors=result.errors)
            return
        ack()
        workflow.announce(request)

    def deny_reason_submitted(ack: Ack, body: dict, view: dict) -> None:
        reason = (view["state"]["values"].get("reason", {}).get("reason", {}).get("value") or "").strip()
        if not reason:
            ack(response_action="errors", errors={"reason": "Say why, so the requester knows what to change."})
            return
        ack()
        request_id, channel = blocks.parse_deny_metadata(view.get("private_metadata", ""))
        outcome = workflow.decide(request_id, body["user"]["id"], approve=False, reason=reason)
        if not outcome.ok:
            actions.tell(workflow, channel, body["user"]["id"], outcome.message)

    app.view(blocks.MODAL_CALLBACK_ID)(onboarding_submitted)
    app.view(blocks.DENY_CALLBACK_ID)(deny_reason_submitted)
