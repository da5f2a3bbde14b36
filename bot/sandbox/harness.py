"""Run the whole bot on one machine with no Slack workspace and no AWS account.

Used by the end-to-end tests and the ``demo`` command: moto server stands in for IAM/STS, the
bundled :mod:`bot.sandbox.slack_standin` for the Slack Web API, the bot runs as a real server
process, and :class:`SlackUser` sends it correctly signed requests in Slack's payload shapes.
Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slack_sdk.signature import SignatureVerifier

from bot.sandbox.slack_standin import make_trigger_id

LOOPBACK = "127.0.0.1"
# Fixed, fake AWS credentials for moto: moto accepts any, and real ones must never be used here.
MOTO_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


class ExitedEarly(RuntimeError):
    """The process being waited for exited before its URL answered (a port taken meanwhile, say)."""


def wait_http(url: str, timeout: float, process: subprocess.Popen | None = None, *, need_ok: bool = False) -> None:
    """Poll ``url`` until it answers; raise ``RuntimeError`` after ``timeout`` s.

    Any HTTP status counts, unless ``need_ok``: then only a 2xx does, so that another server
    that grabbed the port first cannot pass for ours.

    Raises:
        ExitedEarly: ``process`` exited first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ExitedEarly(f"process exited with code {process.returncode} before {url} answered")
        try:
            with urllib.request.urlopen(url, timeout=1):  # noqa: S310 - loopback URL we built
                return
        except urllib.error.HTTPError:
            if not need_ok:
                return
            time.sleep(0.1)
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


class MotoServer:
    """moto's HTTP server in a subprocess, with AWS managed policies loaded."""

    def __init__(self, log_path: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._log_path = log_path
        self._process: subprocess.Popen | None = None

    def start(self) -> MotoServer:
        env = {**os.environ, **MOTO_ENV, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true"}
        out = open(self._log_path, "wb") if self._log_path else subprocess.DEVNULL  # noqa: SIM115
        self._process = subprocess.Popen(  # noqa: S603 - fixed argv
            [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(self.port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wait_http(f"{self.url}/moto-api/", timeout=60, process=self._process)
        return self

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def client_env(self) -> dict[str, str]:
        """Environment that points boto3 at this server."""
        return {**MOTO_ENV, "AWS_ENDPOINT_URL": self.url}

    def boto3_client(self, service: str, **kwargs: Any) -> Any:
        """A boto3 client for ``service`` talking to this server (few retries: moto answers fast)."""
        import boto3
        from botocore.config import Config

        params: dict[str, Any] = {
            "endpoint_url": self.url,
            "region_name": MOTO_ENV["AWS_DEFAULT_REGION"],
            "aws_access_key_id": MOTO_ENV["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": MOTO_ENV["AWS_SECRET_ACCESS_KEY"],
            "config": Config(retries={"mode": "standard", "max_attempts": 2}),
        }
        params.update(kwargs)
        return boto3.client(service, **params)


@dataclass
class BotProcess:
    """``iam-user-bot serve`` in a subprocess, logging to ``log_path``."""

    env: dict[str, str]
    log_path: Path
    workers: int = 1
    port: int = field(default_factory=free_port)
    _process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self, timeout: float = 60, attempts: int = 3) -> BotProcess:
        """Start and wait for ``/healthz`` to answer 200.

        A port picked by :func:`free_port` can be taken by another process before gunicorn binds
        it; gunicorn then gives up and exits. Up to ``attempts`` ports are tried, and environment
        values naming the old URL (``PUBLIC_BASE_URL``) follow the new port.
        """
        for attempt in range(attempts):
            env = {**os.environ, **self.env, "PORT": str(self.port)}
            self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv
                [sys.executable, "-m", "bot.cli", "serve", "--host", LOOPBACK, "--workers", str(self.workers)],
                env=env,
                stdout=self._log,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_http(f"{self.url}/healthz", timeout=timeout, process=self._process, need_ok=True)
                return self
            except ExitedEarly:
                self._process = None
                self._log.close()
                if attempt == attempts - 1 or "Connection in use" not in self.log_text():
                    raise
                old = self.url
                self.port = free_port()
                self.env = {k: v.replace(old, self.url) for k, v in self.env.items()}
        raise AssertionError("unreachable")

    def stop(self, kill: bool = False) -> None:
        if self._process is None:
            return
        if kill:
            self._process.kill()
        else:
            self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None
        self._log.close()

    def __enter__(self) -> BotProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    @property
    def pid(self) -> int | None:
        """The gunicorn master's pid while running."""
        return self._process.pid if self._process else None


@dataclass
class HttpAnswer:
    """An HTTP answer: status, headers (lower-case names), body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


def http(method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None) -> HttpAnswer:
    """One HTTP request with urllib; 4xx/5xx are answers, not exceptions."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - loopback
            return HttpAnswer(answer.status, {k.lower(): v for k, v in answer.headers.items()}, answer.read())
    except urllib.error.HTTPError as error:
        return HttpAnswer(error.code, {k.lower(): v for k, v in error.headers.items()}, error.read())


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
        trigger_id = make_trigger_id()
        form = {
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
        return self.post(urllib.parse.urlencode(form), "application/x-www-form-urlencoded"), trigger_id

    def interaction(self, payload: dict[str, Any]) -> HttpAnswer:
        """An interactivity payload (form field ``payload`` holding JSON), as Slack sends them."""
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")

    def view_submission(self, user_id: str, view: dict[str, Any], values: dict[str, Any]) -> HttpAnswer:
        """Submit ``view`` (as views.open returned it) with ``state.values``."""
        submitted = {**view, "state": {"values": values}}
        return self.interaction(
            {
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
        )

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


Answers = dict[str, Any]


def _options_of(element: dict[str, Any]) -> list[dict[str, Any]]:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return options


def _option_for(element: dict[str, Any], wanted: str) -> dict[str, Any]:
    """The option of a static element whose value or text is ``wanted``."""
    for option in _options_of(element):
        if wanted in (option.get("value"), option.get("text", {}).get("text")):
            return {"value": option["value"], "text": option["text"]}
    raise AssertionError(f"no option {wanted!r} in {element.get('action_id')}")


class FormFiller:
    """Fills a view's input blocks the way a person would, by the contract's block_ids.

    ``answers`` maps block_id to a value: a string for text inputs and single selects, a list of
    strings for multi selects and checkboxes, Slack user ids for user selects. Options of static
    elements are matched by value or text; options of external selects are found by typing the
    text into the menu (``block_suggestion``) and taking the option with exactly that text, as
    outside checks do. Blocks without an answer are left empty.
    """

    def __init__(self, user: SlackUser, user_id: str) -> None:
        self.user = user
        self.user_id = user_id

    def _external(self, view: dict[str, Any], action_id: str, wanted: str) -> dict[str, Any]:
        answer = self.user.block_suggestion(self.user_id, view, action_id, wanted)
        body = answer.json() or {}
        options = list(body.get("options") or [])
        for group in body.get("option_groups") or []:
            options.extend(group.get("options") or [])
        for option in options:
            if option["text"]["text"] == wanted:
                return {"value": option["value"], "text": option["text"]}
        raise AssertionError(f"the {action_id} menu offers no option {wanted!r} (got {len(options)} options)")

    def values(self, view: dict[str, Any], answers: Answers) -> dict[str, Any]:
        """``view.state.values`` for ``view`` filled from ``answers``."""
        state: dict[str, Any] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                continue
            element = block["element"]
            kind, action_id = element["type"], element.get("action_id", block["block_id"])
            wanted = answers.get(block["block_id"])
            entry: dict[str, Any] = {"type": kind}
            many = list(wanted) if isinstance(wanted, list | tuple) else ([wanted] if wanted else [])
            if kind in ("plain_text_input", "email_text_input", "url_text_input", "number_input"):
                entry["value"] = wanted if wanted else None
            elif kind == "multi_users_select":
                entry["selected_users"] = many
            elif kind == "users_select":
                entry["selected_user"] = wanted
            elif kind in ("checkboxes", "multi_static_select"):
                entry["selected_options"] = [_option_for(element, w) for w in many]
            elif kind in ("radio_buttons", "static_select"):
                entry["selected_option"] = _option_for(element, wanted) if wanted else None
            elif kind == "multi_external_select":
                entry["selected_options"] = [self._external(view, action_id, w) for w in many]
            elif kind == "external_select":
                entry["selected_option"] = self._external(view, action_id, wanted) if wanted else None
            else:
                raise AssertionError(f"FormFiller cannot fill a {kind}")
            state[block["block_id"]] = {action_id: entry}
        return state

    def submit(self, view: dict[str, Any], answers: Answers, max_views: int = 8) -> tuple[HttpAnswer, list[dict]]:
        """Fill and submit ``view``, then every view the bot answers with (``update``/``push``).

        Returns the last answer (empty body when the modal closed, or ``response_action:
        errors``) and the views seen, in order.
        """
        seen = [view]
        for _ in range(max_views):
            answer = self.user.view_submission(self.user_id, view, self.values(view, answers))
            body = answer.json() if answer.body else None
            if not body or body.get("response_action") not in ("update", "push"):
                return answer, seen
            view = {**body["view"], "id": view.get("id", "V0"), "hash": view.get("hash", "")}
            seen.append(view)
        raise AssertionError(f"the modal did not close after {max_views} views")
