"""The baseline for the slash-command benchmark: a Bolt app that only acks and opens a one-block modal.

Served by gunicorn with the same worker settings as the bot (``gunicorn 'benchmarks.bare_app:create_app()'``),
so the ratio bot/bare measures what the bot adds on top of Bolt, Flask and gunicorn.
"""

from __future__ import annotations

import os

from flask import Flask, request
from slack_bolt import Ack, App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk import WebClient

MODAL = {
    "type": "modal",
    "callback_id": "bare",
    "title": {"type": "plain_text", "text": "Bare"},
    "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "Hello"}}],
}


def create_app() -> Flask:
    client = WebClient(token=os.environ["SLACK_BOT_TOKEN"], base_url=os.environ["SLACK_API_URL"])
    bolt = App(client=client, signing_secret=os.environ["SLACK_SIGNING_SECRET"])

    @bolt.command("/iam-user")
    def open_modal(ack: Ack, command: dict, client: WebClient) -> None:
        ack()
        client.views_open(trigger_id=command["trigger_id"], view=MODAL)

    handler = SlackRequestHandler(bolt)
    app = Flask(__name__)
    app.add_url_rule("/slack/events", "events", lambda: handler.handle(request), methods=["POST"])
    app.add_url_rule("/healthz", "healthz", lambda: "ok")
    return app
