"""Play Slack's side towards the bot: correctly signed requests in the payload shapes Slack sends.

:class:`SlackUser` acts as a person in Slack would (a slash command, a form submitted, a button
clicked, a DM written, the App Home opened) and posts what Slack would post to the bot's
``/slack/events``, signed with the app's signing secret.
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.parse
from typing import Any

from slack_sdk.signature import SignatureVerifier

from bot.sandbox.processes import HttpAnswer, http
from bot.sandbox.slack_rules import make_trigger_id


class SlackUser:
    """Plays Slack's side: sends signed requests to the bot as if a person acted in Slack.

    Args:
        bot_url: the bot's base URL; signing_secret: the app's signing secret.
        team_id: the workspace id put into payloads.
    """

    def __init__(self, bot_url: str, signing_secret: str, team_id: str = "T0STANDIN") -> None:
        self.events_url = f"{bot_url}/slack/events"
        self.verifier = SignatureVerifier(signing_secret)
        self.team_id = team_id

    def signed_headers(self, body: str, content_type: str, timestamp: int | None = None) -> dict[str, str]:
        ts = str(timestamp if timestamp is not None else int(time.time()))
        return {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.verifier.generate_signature(timestamp=ts, body=body),
        }

    def post(self, body: str, content_type: str, extra_headers: dict[str, str] | None = None) -> HttpAnswer:
        headers = {**self.signed_headers(body, content_type), **(extra_headers or {})}
        return http("POST", self.events_url, body.encode(), headers)

    def _user(self, user_id: str) -> dict[str, str]:
        return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": self.team_id}

    def slash_command(self, user_id: str, text: str, channel_id: str = "C0GENERAL1") -> tuple[HttpAnswer, str]:
        """``/iam-user <text>``; returns the answer and the trigger_id Slack would have issued."""
        form = self.command_payload(user_id, text, channel_id)
        return self.post(urllib.parse.urlencode(form), "application/x-www-form-urlencoded"), form["trigger_id"]

    def command_payload(self, user_id: str, text: str, channel_id: str = "C0GENERAL1") -> dict[str, str]:
        """The fields of ``/iam-user <text>`` (a form over HTTP, a JSON ``payload`` in Socket Mode),
        with a fresh ``trigger_id``."""
        trigger_id = make_trigger_id()
        return {
            "token": "legacy-verification-token-unused",
            "team_id": self.team_id,
            "team_domain": "standin",
            "channel_id": channel_id,
            "channel_name": "general",
            "user_id": user_id,
            "user_name": user_id.lower(),
            "command": "/iam-user",
            "text": text,
            "api_app_id": "A0IAMUSERBOT",
            "is_enterprise_install": "false",
            "response_url": "https://hooks.slack.invalid/commands/T0STANDIN/1/abc",
            "trigger_id": trigger_id,
        }

    def interaction(self, payload: dict[str, Any]) -> HttpAnswer:
        """An interactivity payload (form field ``payload`` holding JSON), as Slack sends them."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def view_submission(self, user_id: str, view: dict[str, Any], values: dict[str, Any]) -> HttpAnswer:
        """Submit ``view`` (as views.open returned it) with ``state.values``."""
        return self.interaction(self.view_submission_payload(user_id, view, values))

    def view_submission_payload(self, user_id: str, view: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """The interactivity payload of submitting ``view`` with ``state.values``."""
        submitted = {**view, "state": {"values": values}}
        return {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": "standin"},
            "user": self._user(user_id),
            "api_app_id": "A0IAMUSERBOT",
            "token": "legacy-verification-token-unused",
            "trigger_id": make_trigger_id(),
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
        }

    def block_action(
        self, user_id: str, action_id: str, value: str, *, channel: str, message_ts: str, block_id: str = "decision"
    ) -> HttpAnswer:
        """A button click on a channel message."""
        return self.interaction(
            {
                "type": "block_actions",
                "user": self._user(user_id),
                "api_app_id": "A0IAMUSERBOT",
                "token": "legacy-verification-token-unused",
                "container": {
                    "type": "message",
                    "message_ts": message_ts,
                    "channel_id": channel,
                    "is_ephemeral": False,
                },
                "trigger_id": make_trigger_id(),
                "team": {"id": self.team_id, "domain": "standin"},
                "is_enterprise_install": False,
                "channel": {"id": channel, "name": "iam-approvals"},
                "message": {"type": "message", "ts": message_ts, "text": "", "blocks": []},
                "state": {"values": {}},
                "response_url": "https://hooks.slack.invalid/actions/T0STANDIN/1/abc",
                "actions": [
                    {
                        "action_id": action_id,
                        "block_id": block_id,
                        "text": {"type": "plain_text", "text": action_id},
                        "value": value,
                        "type": "button",
                        "action_ts": f"{time.time():.6f}",
                    }
                ],
            }
        )

    def block_suggestion(self, user_id: str, view: dict[str, Any], action_id: str, query: str) -> HttpAnswer:
        """Typing ``query`` into an external select of ``view``."""
        return self.interaction(
            {
                "type": "block_suggestion",
                "user": self._user(user_id),
                "container": {"type": "view", "view_id": view.get("id", "V0")},
                "api_app_id": "A0IAMUSERBOT",
                "token": "legacy-verification-token-unused",
                "action_id": action_id,
                "block_id": action_id,
                "value": query,
                "team": {"id": self.team_id, "domain": "standin"},
                "view": view,
            }
        )

    def direct_message(self, user_id: str, channel: str, text: str, event_id: str | None = None) -> HttpAnswer:
        """A ``message.im`` event: ``user_id`` wrote ``text`` in their DM with the bot."""
        now = time.time()
        envelope = {
            "token": "legacy-verification-token-unused",
            "team_id": self.team_id,
            "api_app_id": "A0IAMUSERBOT",
            "type": "event_callback",
            "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(now),
            "authorizations": [{"team_id": self.team_id, "user_id": "UBOT00001", "is_bot": True}],
            "event": {
                "type": "message",
                "channel": channel,
                "channel_type": "im",
                "user": user_id,
                "text": text,
                "ts": f"{now:.6f}",
                "event_ts": f"{now:.6f}",
                "team": self.team_id,
                "client_msg_id": secrets.token_hex(8),
            },
        }
        return self.post(json.dumps(envelope), "application/json")

    def event_callback(
        self,
        event: dict[str, Any],
        *,
        event_id: str | None = None,
        retry_num: int | None = None,
        retry_reason: str = "http_timeout",
    ) -> HttpAnswer:
        """Any Events API ``event`` in Slack's envelope; ``retry_num`` sends it as Slack's retry.

        Slack repeats an unanswered event up to 3 times with the same ``event_id`` and the headers
        ``X-Slack-Retry-Num`` / ``X-Slack-Retry-Reason``.
        """
        envelope = {
            "token": "legacy-verification-token-unused",
            "team_id": self.team_id,
            "api_app_id": "A0IAMUSERBOT",
            "type": "event_callback",
            "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
            "event_time": int(time.time()),
            "authorizations": [{"team_id": self.team_id, "user_id": "UBOT00001", "is_bot": True}],
            "event": event,
        }
        extra = {}
        if retry_num is not None:
            extra = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": retry_reason}
        return self.post(json.dumps(envelope), "application/json", extra)

    def im_event(self, user_id: str, channel: str, text: str, **fields: Any) -> dict[str, Any]:
        """A ``message.im`` event body (for :meth:`event_callback`); ``fields`` add or override
        keys such as ``subtype``, ``bot_id`` or ``thread_ts``."""
        now = f"{time.time():.6f}"
        event = {
            "type": "message",
            "channel": channel,
            "channel_type": "im",
            "user": user_id,
            "text": text,
            "ts": now,
            "event_ts": now,
            "team": self.team_id,
            "client_msg_id": secrets.token_hex(8),
        }
        return {**event, **fields}

    def app_home_opened(self, user_id: str, *, tab: str = "home", event_id: str | None = None) -> HttpAnswer:
        """``user_id`` opened the app's Home (or Messages) tab."""
        event = {
            "type": "app_home_opened",
            "user": user_id,
            "channel": f"D{user_id}",
            "tab": tab,
            "event_ts": f"{time.time():.6f}",
        }
        return self.event_callback(event, event_id=event_id)

    def home_block_action(
        self, user_id: str, action_id: str, value: str, *, view: dict[str, Any], block_id: str
    ) -> HttpAnswer:
        """A button click in a published view (the App Home): container type ``view``, the full
        ``view``, and no ``channel``, ``message`` or ``response_url``, as Slack sends it."""
        return self.interaction(
            {
                "type": "block_actions",
                "user": self._user(user_id),
                "api_app_id": "A0IAMUSERBOT",
                "token": "legacy-verification-token-unused",
                "container": {"type": "view", "view_id": view.get("id", "V0")},
                "trigger_id": make_trigger_id(),
                "team": {"id": self.team_id, "domain": "standin"},
                "is_enterprise_install": False,
                "view": view,
                "state": {"values": {}},
                "actions": [
                    {
                        "action_id": action_id,
                        "block_id": block_id,
                        "text": {"type": "plain_text", "text": action_id},
                        "value": value,
                        "type": "button",
                        "action_ts": f"{time.time():.6f}",
                    }
                ],
            }
        )
