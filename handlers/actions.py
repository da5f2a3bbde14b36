"""Button clicks: approve, deny (opens the reason modal), the link button's no-op ack, the
one-time link actions: Send a new link (recipient), Rotate / Re-issue credentials (approvers);
the lifecycle's Rotate (a key's owner) and Disable (approvers, on the unused-credentials digest);
and choosing recipients in the request form, which suggests IAM user names."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from slack_bolt import Ack, App

from bot.approval.message import deny_reason_modal
from bot.credentials.messages import REISSUE_ACTION, RESEND_ACTION, ROTATE_ACTION
from bot.lifecycle.messages import DISABLE_ACTION
from bot.lifecycle.messages import ROTATE_ACTION as ROTATE_KEY_ACTION
from bot.slack.messenger import Messenger
from bot.wizard.draft import DETAILS
from bot.wizard.service import suggestion_view
from bot.wizard.views import read_metadata
from handlers import ack_only

if TYPE_CHECKING:
    from bot.services import Services

log = logging.getLogger(__name__)


def _where(body: dict) -> str | None:
    return (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")


def tell(messenger: Messenger, channel: str | None, user_id: str, message: str) -> None:
    """Tell the clicker why nothing happened: ephemeral where they clicked, by DM when the click
    came from a view (the App Home or a modal), which has no channel to post in."""
    if channel:
        messenger.ephemeral(channel, user_id, message)
    else:
        messenger.dm(user_id, message)


def register(app: App, services: Services) -> None:
    approvals, messenger = services.approvals, services.messenger

    def approve(body: dict, action: dict) -> None:
        user_id = body["user"]["id"]
        # Authorisation and the compare-and-set happen in decide, at click time: a double click,
        # a Slack retry or another worker's click loses there and only hears why.
        outcome = approvals.decide(action["value"], user_id, approve=True)
        if not outcome.ok or outcome.tell:
            tell(messenger, _where(body), user_id, outcome.message)

    def deny(ack: Ack, body: dict, action: dict) -> None:
        ack()
        user_id = body["user"]["id"]
        channel = _where(body)
        refusal = approvals.check_decider(action["value"], user_id, approve=False)
        if refusal is not None:
            tell(messenger, channel, user_id, refusal.message)
            return
        messenger.open_view(body["trigger_id"], deny_reason_modal(action["value"], channel), "deny reason")

    def link_clicked(ack: Ack) -> None:
        ack()  # a URL button still sends an action; the browser does the rest

    def recipients_chosen(body: dict, action: dict) -> None:
        """Suggest user names from the recipients' e-mail (``users.info``, scopes users:read and
        users:read.email), then ``views.update`` with the view's hash so a newer edit wins."""
        view = body.get("view") or {}
        if read_metadata(view.get("private_metadata")).get("step") != DETAILS:
            return
        recipients = list(dict.fromkeys(action.get("selected_users") or []))
        # Through the messenger's cache: the details view's submission checks the same users.
        infos = {user_id: messenger.user_info(user_id) for user_id in recipients}
        emails = {user_id: ((info or {}).get("profile") or {}).get("email") for user_id, info in infos.items()}
        suggested = suggestion_view(view, recipients, emails, services.catalog.user_names_lower())
        if suggested is None:
            return
        messenger.update_view(view["id"], suggested, view.get("hash"), "suggested names")

    app.action("recipients")(ack=ack_only, lazy=[recipients_chosen])
    app.action("approve_request")(ack=ack_only, lazy=[approve])
    # The deny modal must open within the click's trigger life (3 s, once): checked and opened at once.
    app.action("deny_request")(deny)
    app.action("open_credential_link")(link_clicked)
    register_link_actions(app, services)


def _message_ref(body: dict) -> tuple[str, str] | None:
    """``(channel, ts)`` of the (non-ephemeral) message whose button was clicked, if any."""
    container = body.get("container") or {}
    channel, ts = _where(body), container.get("message_ts") or (body.get("message") or {}).get("ts")
    return (channel, ts) if channel and ts and not container.get("is_ephemeral") else None


def register_link_actions(app: App, services: Services) -> None:
    """``resend_credential_link`` (recipient), ``rotate_credentials`` and ``reissue_credentials``
    (approvers, never the recipient); each button's value is a secret id. The ack comes first;
    IAM and Slack work follows in a lazy listener, and the clicker hears the outcome in an
    ephemeral message where they clicked (by DM when they clicked in the App Home)."""

    def resend(body: dict, action: dict) -> None:
        user_id = body["user"]["id"]
        outcome = services.reissues.resend(action.get("value") or "", user_id)
        tell(services.messenger, _where(body), user_id, outcome.message)

    def rotate(body: dict, action: dict) -> None:
        user_id = body["user"]["id"]
        outcome = services.reissues.rotate(action.get("value") or "", user_id, _message_ref(body))
        tell(services.messenger, _where(body), user_id, outcome.message)

    def rotate_key(body: dict, action: dict) -> None:
        """``rotate_access_key``: the key's owner only (checked against IAM at click time)."""
        user_id = body["user"]["id"]
        outcome = services.rotations.rotate(action.get("value") or "", user_id)
        tell(services.messenger, _where(body), user_id, outcome.message)

    def disable_user(body: dict, action: dict) -> None:
        """``disable_iam_user`` on the unused-credentials digest: approvers only."""
        user_id = body["user"]["id"]
        outcome = services.unused.disable(action.get("value") or "", user_id, _message_ref(body))
        tell(services.messenger, _where(body), user_id, outcome.message)

    app.action(RESEND_ACTION)(ack=ack_only, lazy=[resend])
    app.action(ROTATE_ACTION)(ack=ack_only, lazy=[rotate])
    app.action(REISSUE_ACTION)(ack=ack_only, lazy=[rotate])
    app.action(ROTATE_KEY_ACTION)(ack=ack_only, lazy=[rotate_key])
    app.action(DISABLE_ACTION)(ack=ack_only, lazy=[disable_user])
