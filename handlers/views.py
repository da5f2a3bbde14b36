"""Modal submissions: the request wizard's views (and its Back button), the removal form and the
deny reason."""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import Ack, App

from bot.approval.message import DENY_CALLBACK_ID, parse_deny_metadata
from bot.lifecycle.removal_form import REMOVAL_CALLBACK_ID
from bot.wizard.views import BACK_ACTION_ID, MODAL_CALLBACK_ID, message_view
from handlers import ack_only, actions

if TYPE_CHECKING:
    from bot.services import Services


def register(app: App, services: Services) -> None:
    """The wizard's submissions and Back button, and the deny-reason modal."""
    wizard, approvals = services.wizard, services.approvals

    def onboarding_submitted(ack: Ack, body: dict, view: dict) -> None:
        user_id = body["user"]["id"]
        decision = approvals.may_request(user_id)
        if not decision.allowed:
            ack(response_action="update", view=message_view(decision.reason))
            return
        answer = wizard.submit(user_id, view)
        if answer.errors:
            ack(response_action="errors", errors=answer.errors)
            return
        if answer.view is not None:
            ack(response_action="update", view=answer.view)
            return
        ack()

    def announce(body: dict, view: dict) -> None:
        """After the ack: post the request the submission filed (if it filed one) to the approvers."""
        request = wizard.filed_request(body["user"]["id"], view)
        if request is not None:
            approvals.announce(request)

    def back_clicked(body: dict, action: dict) -> None:
        view = body.get("view") or {}
        earlier = wizard.back(body["user"]["id"], view, action.get("value") or "")
        if earlier is None:
            return
        services.messenger.update_view(view["id"], earlier, view.get("hash"), "back")

    def deny_reason_submitted(ack: Ack, body: dict, view: dict) -> None:
        reason = (view["state"]["values"].get("reason", {}).get("reason", {}).get("value") or "").strip()
        if not reason:
            ack(response_action="errors", errors={"reason": "Say why, so the requester knows what to change."})
            return
        ack()

    def deny(body: dict, view: dict) -> None:
        reason = (view["state"]["values"].get("reason", {}).get("reason", {}).get("value") or "").strip()
        if not reason:
            return
        request_id, channel = parse_deny_metadata(view.get("private_metadata", ""))
        outcome = approvals.decide(request_id, body["user"]["id"], approve=False, reason=reason)
        if not outcome.ok:
            actions.tell(services.messenger, channel, body["user"]["id"], outcome.message)

    def removal_submitted(ack: Ack, body: dict, view: dict) -> None:
        """The removal form: checked at the field against IAM (the users' managed tags, at most 10
        reads in parallel), filed as a pending request before the ack; a retried submission of the
        same view files nothing more."""
        user_id = body["user"]["id"]
        decision = approvals.may_request(user_id)
        if not decision.allowed:
            ack(response_action="update", view=message_view(decision.reason))
            return
        checked = services.offboarding.check_form((view.get("state") or {}).get("values") or {})
        if isinstance(checked, dict):
            ack(response_action="errors", errors=checked)
            return
        if services.offboarding.first_submission(view):
            request = approvals.file(user_id, checked)
            services.offboarding.remember_filed(view, user_id, request.id)
        ack()

    def removal_announce(body: dict, view: dict) -> None:
        request = services.offboarding.filed_request(view, body["user"]["id"])
        if request is not None:
            approvals.announce(request)

    app.view(MODAL_CALLBACK_ID)(ack=onboarding_submitted, lazy=[announce])
    app.view(REMOVAL_CALLBACK_ID)(ack=removal_submitted, lazy=[removal_announce])
    app.action(BACK_ACTION_ID)(ack=ack_only, lazy=[back_clicked])
    app.view(DENY_CALLBACK_ID)(ack=deny_reason_submitted, lazy=[deny])
