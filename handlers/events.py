"""Events: direct messages to the bot (the self-service words), the App Home tab, and
``user_change`` (a member deactivated: their bot-made IAM users are disabled at once).

Both run as lazy listeners after the ack, so they may take their time. Slack repeats
an event it believes was missed (``X-Slack-Retry-Num``, same ``event_id``); each is answered
once (:meth:`bot.slack.retries.EventLedger.first_delivery`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from slack_bolt import App, BoltContext, BoltRequest

from handlers import ack_only

if TYPE_CHECKING:
    from bot.services import Services


def retry_num(request: BoltRequest) -> int | None:
    """The ``X-Slack-Retry-Num`` header as an int (1 to 3), or None on a first delivery."""
    values = request.headers.get("x-slack-retry-num") or []
    try:
        return int(values[0]) if values else None
    except ValueError:
        return None


def is_question(event: dict, bot_user_id: str | None) -> bool:
    """A plain message a person wrote in their DM with the bot, not an edit, join or bot post."""
    return (
        event.get("channel_type") == "im"
        and not event.get("subtype")  # message_changed, message_deleted, bot_message, file_share…
        and not event.get("bot_id")
        and bool(event.get("user"))
        and event.get("user") != bot_user_id
    )


def register(app: App, services: Services) -> None:
    desk, home, ledger = services.desk, services.home, services.events

    def direct_message(event: dict, body: dict, context: BoltContext, request: BoltRequest) -> None:
        if not is_question(event, context.bot_user_id):
            return
        if not ledger.first_delivery(body.get("event_id"), retry_num(request)):
            return  # Slack retried an event we already answered
        text = event.get("text") or ""
        answer = desk.reply(event["user"], text)
        # A question asked in a thread is answered in that thread. Not Bolt's say(): in a DM
        # thread it first looks up an assistant thread context (conversations.replies).
        services.messenger.post(event["channel"], answer, thread_ts=event.get("thread_ts"))
        for part in desk.followups(event["user"], text):
            services.messenger.post(event["channel"], part, thread_ts=event.get("thread_ts"))

    def home_opened(event: dict, body: dict, request: BoltRequest) -> None:
        if event.get("tab") != "home":
            return  # the Messages tab needs nothing from us
        if not ledger.first_delivery(body.get("event_id"), retry_num(request)):
            return
        # Through the same serial queue as change-driven refreshes, so an older view can
        # never be published after a newer one.
        home.refresh(event["user"])

    def user_changed(event: dict, body: dict, request: BoltRequest) -> None:
        """``user_change`` (scope ``users:read``): Slack sends it for every profile or status edit;
        only a deactivated account (``user.deleted: true``) matters."""
        user = event.get("user") or {}
        if user.get("deleted") is not True or not user.get("id"):
            return
        if not ledger.first_delivery(body.get("event_id"), retry_num(request)):
            return
        services.owners.departed(str(user["id"]), source="event")

    app.event("message")(ack=ack_only, lazy=[direct_message])
    app.event("app_home_opened")(ack=ack_only, lazy=[home_opened])
    app.event("user_change")(ack=ack_only, lazy=[user_changed])
