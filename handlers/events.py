"""Events: direct messages to the bot (``status``, ``help``) and the App Home tab."""

from __future__ import annotations

from slack_bolt import App
from slack_sdk import WebClient

from bot import blocks
from bot.workflow import Workflow


def register(app: App, workflow: Workflow) -> None:
    def direct_message(event: dict, body: dict, say) -> None:
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return  # edits, joins, bot posts: not questions for us
        if not workflow.first_delivery(body.get("event_id")):
            return  # Slack retried an event we already answered
        say(text=workflow.dm_reply(event["user"], event.get("text") or ""))

    def home_opened(event: dict, client: WebClient) -> None:
        if event.get("tab") != "home":
            return
        client.views_publish(
            user_id=event["user"],
            view=blocks.home_view(workflow.store.requests_where(requester=event["user"], limit=10)),
        )

    app.event("message")(direct_message)
    app.event("app_home_opened")(home_opened)
