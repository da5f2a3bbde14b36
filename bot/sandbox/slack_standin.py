"""A local stand-in for the Slack Web API, for end-to-end tests and the ``demo`` command.

``SlackStandIn`` is a stdlib HTTP server that ``slack_sdk.WebClient(token=..., base_url=standin.base_url)``
(and therefore Bolt) can talk to. Unlike bolt-python's mock server, which answers ``{"ok": true}`` to
anything, it records every call with its parsed arguments and refuses what real Slack refuses: bad
tokens, stale or reused ``trigger_id``s, over-long modal titles, more than 50 message blocks, unknown
users and messages. Answers always use Slack's shapes: HTTP 200, ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``. It never touches the network beyond its own socket.
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

BOT_ID = "BSTANDIN1"
APP_ID = "ASTANDIN1"
WORKSPACE_URL = "https://standin.slack.invalid/"
MAX_MESSAGE_BLOCKS = 50  # chat.postMessage / chat.update: invalid_blocks above this
MAX_VIEW_BLOCKS = 100  # modal and Home views
MAX_VIEW_TEXT = 24  # modal title, submit and close
MAX_PRIVATE_METADATA = 3000
MAX_CALLBACK_ID = 255

_TRIGGER_RE = re.compile(r"(\d{1,16})\.(\d{1,20})\.([0-9a-f]{1,64})", re.ASCII)

Args = dict[str, Any]
Answer = dict[str, Any]


def make_trigger_id(issued_at: float | None = None) -> str:
    """Return a Slack-shaped trigger id ``"<issue ms>.<digits>.<hex>"`` issued at ``issued_at`` (default now).

    Real trigger ids are opaque; this one encodes its issue time so the stand-in can apply Slack's rule
    that a trigger is usable for about 3 s (``trigger_ttl``). Pass a past time to get a stale one.
    """
    issued_ms = int((time.time() if issued_at is None else issued_at) * 1000)
    return f"{issued_ms}.{secrets.randbelow(10**12):012d}.{secrets.token_hex(16)}"


@dataclass
class RecordedCall:
    """One Web API request as the stand-in saw it.

    ``args`` merges the query string and the body (JSON values keep their types; form and query values
    are the first value, as ``str``); ``token`` is taken out of ``args``. ``response`` is the answer sent.
    """

    method: str
    args: Args
    token: str | None
    at: float
    response: Answer

    @property
    def ok(self) -> bool:
        return bool(self.response.get("ok"))


class _SlackError(Exception):
    """Raised inside a method handler; becomes ``{"ok": false, "error": ..., **extra}``."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.answer: Answer = {"ok": False, "error": error, **extra}


def _invalid_arguments(messages: list[str]) -> _SlackError:
    return _SlackError("invalid_arguments", response_metadata={"messages": messages})


def _str(args: Args, key: str) -> str:
    value = args.get(key)
    return "" if value is None else str(value)


def _decode(value: Any) -> Any:
    """Slack takes structured arguments (blocks, view) as JSON values or as JSON-encoded strings."""
    if isinstance(value, str):
        try:
            return json.loads(value) if value else []
        except ValueError:
            return None
    return value


def _parse_blocks(value: Any) -> list[dict[str, Any]] | None:
    """Blocks as a list of dicts, each with a ``type``; ``None`` if malformed."""
    value = _decode(value)
    if isinstance(value, list) and all(isinstance(b, dict) and b.get("type") for b in value):
        return value
    return None


def _duplicate_block_ids(blocks: list[dict[str, Any]]) -> set[str]:
    ids = [str(b["block_id"]) for b in blocks if b.get("block_id")]
    return {i for i in ids if ids.count(i) > 1}


def _message_content(args: Args) -> tuple[str | None, list[dict[str, Any]] | None]:
    """Text and blocks of a chat.* call (``None`` when absent), checked the way Slack checks them."""
    text = None if args.get("text") is None else str(args["text"])
    blocks = None
    if "blocks" in args:
        blocks = _parse_blocks(args["blocks"])
        if blocks is None:
            raise _SlackError("invalid_blocks_format")
        problems = []
        if len(blocks) > MAX_MESSAGE_BLOCKS:
            problems.append(f"[ERROR] no more than {MAX_MESSAGE_BLOCKS} items allowed [json-pointer:/blocks]")
        for dup in sorted(_duplicate_block_ids(blocks)):
            problems.append(f"[ERROR] duplicate block_id {dup!r} [json-pointer:/blocks]")
        if problems:
            raise _SlackError("invalid_blocks", response_metadata={"messages": problems})
    if not text and not blocks:
        raise _SlackError("no_text")
    return text, blocks


def _view_arg(args: Args) -> dict[str, Any]:
    view = _decode(args.get("view"))
    if not isinstance(view, dict):
        raise _invalid_arguments(["[ERROR] missing or malformed required field: view [json-pointer:/view]"])
    return view


def _check_view(view: dict[str, Any], kind: str) -> None:
    """Raise ``invalid_arguments`` with Slack-style messages for the limits of modal/Home views."""
    problems: list[str] = []

    def need(condition: bool, message: str, pointer: str = "") -> None:
        if not condition:
            problems.append(f"[ERROR] {message} [json-pointer:/view{pointer}]")

    need(view.get("type") == kind, f'must be "{kind}"', "/type")
    if kind == "modal":
        need(isinstance(view.get("title"), dict), "missing required field: title", "/title")
        for key in ("title", "submit", "close"):
            text = view[key].get("text") if isinstance(view.get(key), dict) else ""
            ok = key not in view or (isinstance(text, str) and 0 < len(text) <= MAX_VIEW_TEXT)
            need(ok, f"must be between 1 and {MAX_VIEW_TEXT} characters", f"/{key}/text")
    blocks = _parse_blocks(view.get("blocks"))
    need(blocks is not None, "blocks must be a list of objects with a type", "/blocks")
    blocks = blocks or []
    need(0 < len(blocks) <= MAX_VIEW_BLOCKS, f"must hold between 1 and {MAX_VIEW_BLOCKS} blocks", "/blocks")
    for dup in sorted(_duplicate_block_ids(blocks)):
        need(False, f"duplicate block_id {dup!r}", "/blocks")
    if kind == "modal" and any(b.get("type") == "input" for b in blocks):
        need("submit" in view, "must provide a submit property when using input blocks")
    for key, limit in (("private_metadata", MAX_PRIVATE_METADATA), ("callback_id", MAX_CALLBACK_ID)):
        need(len(str(view.get(key, ""))) <= limit, f"must be no more than {limit} characters", f"/{key}")
    if problems:
        raise _invalid_arguments(problems)


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a client that hangs up mid-request must not keep the process alive
    request_queue_size = 128  # the default backlog of 5 drops bursts of connects; clients then stall ~1 s
    standin: SlackStandIn


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self._serve()

    do_GET = do_POST  # slack_sdk always POSTs, but curl and other clients may GET with a query string

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the bot's and the tests' output share stderr; a line per request would drown them

    def _serve(self) -> None:
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = self.server.standin._handle(
            url.path, url.query, self.headers.get("Content-Type", ""), self.headers.get("Authorization"), body
        )
        data = json.dumps(answer).encode()
        self.send_response(200)  # Slack reports API errors in the body, with HTTP 200
        self.send_header("Content-Type", "application/json; charset=utf-8")
        if self.server.standin.scopes is not None:
            self.send_header("X-OAuth-Scopes", ",".join(self.server.standin.scopes))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class SlackStandIn:
    """Fake Slack Web API on ``base_url`` (``http://127.0.0.1:<port>/api/``), with state and recorded calls.

    Methods: auth.test, conversations.open, chat.postMessage, chat.update, chat.postEphemeral,
    chat.getPermalink, views.open/update/push/publish, users.info, users.lookupByEmail,
    usergroups.users.list, apps.connections.open (with ``app_token``); anything else answers
    ``unknown_method``. Requests must carry ``bot_token``
    (``Authorization: Bearer`` or a ``token`` argument). Users other than the bot exist only after
    ``add_user``. Channel ids must start with C, D or G; a user id is not accepted as a channel, and
    conversations.open gives the DM ``"D" + user_id``. Message ts are unique across channels, increasing.
    """

    def __init__(
        self,
        bot_token: str = "xoxb-standin",  # noqa: S107 - a fake token for a fake server
        host: str = "127.0.0.1",
        port: int = 0,
        bot_user_id: str = "UBOT00001",
        team_id: str = "T0STANDIN",
        trigger_ttl: float = 3.0,
        scopes: Sequence[str] | None = None,
        app_token: str | None = None,
    ) -> None:
        self.bot_token, self.host, self.port = bot_token, host, port
        # Like Slack, every answer names the token's scopes in X-OAuth-Scopes (when ``scopes`` is given).
        self.scopes = None if scopes is None else list(scopes)
        # The app-level token (xapp-) that apps.connections.open takes, for Socket Mode set-ups.
        self.app_token = app_token
        self.bot_user_id, self.team_id, self.trigger_ttl = bot_user_id, team_id, trigger_ttl
        # RLock: wait_for's predicate runs under the lock and may itself call calls() or messages().
        self._cond = threading.Condition(threading.RLock())
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._calls: list[RecordedCall] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._usergroups: dict[str, list[str]] = {}
        self._not_in_channel: set[str] = set()
        self._failures: dict[str, list[str]] = {}
        self._last_ts_us = 0
        self._view_seq = 0
        self._init_state()
        self._add_user(bot_user_id, "iam-user-bot", "", "iam-user-bot", is_bot=True)
        self._methods: dict[str, Callable[[Args], Answer]] = {
            "auth.test": self._auth_test,
            "conversations.open": self._conversations_open,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.getPermalink": self._chat_get_permalink,
            "views.open": self._views_open,
            "views.push": self._views_open,  # no view stack is kept, so push behaves like open
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "users.info": lambda a: {"ok": True, "user": self._user(_str(a, "user"))},
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.users.list": self._usergroups_users_list,
            "apps.connections.open": lambda a: {"ok": True, "url": "wss://wss.standin.slack.invalid/link/"},
        }

    def _init_state(self) -> None:
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}  # channel -> ts -> message
        self._views: dict[str, dict[str, Any]] = {}
        self._external_ids: dict[str, str] = {}
        self._home_views: dict[str, str] = {}  # user -> view id
        self._used_triggers: set[str] = set()

    def start(self) -> SlackStandIn:
        """Bind (port 0 picks a free port) and serve in a daemon thread; returns self."""
        if self._server is None:
            self._server = _Server((self.host, self.port), _Handler)
            self._server.standin = self
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port; state and recorded calls are kept."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> SlackStandIn:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://host:port/api/``; the trailing slash matters, slack_sdk joins method names onto it."""
        if self._server is None:
            raise RuntimeError("SlackStandIn is not started")
        return f"http://{self.host}:{self.port}/api/"

    def add_user(
        self, user_id: str, *, name: str, email: str, real_name: str | None = None, is_bot: bool = False
    ) -> None:
        """Make ``user_id`` known to users.info, users.lookupByEmail, conversations.open, postEphemeral."""
        with self._cond:
            self._add_user(user_id, name, email, real_name or name, is_bot=is_bot)

    def add_usergroup(self, usergroup_id: str, user_ids: list[str]) -> None:
        """Members of ``usergroup_id`` (an ``S...`` id) as usergroups.users.list answers them."""
        with self._cond:
            self._usergroups[usergroup_id] = list(user_ids)

    def set_not_in_channel(self, channel_id: str) -> None:
        """Posting (or posting ephemerally) to ``channel_id`` answers ``not_in_channel`` from now on."""
        with self._cond:
            self._not_in_channel.add(channel_id)

    def fail_next(self, method: str, error: str) -> None:
        """Answer the next call of ``method`` (after the auth check) with ``error``; calls queue up."""
        with self._cond:
            self._failures.setdefault(method, []).append(error)

    def reset(self) -> None:
        """Forget calls, messages, views, used triggers and pending failures; keep users, groups, channels."""
        with self._cond:
            self._calls.clear()
            self._failures.clear()
            self._init_state()

    def calls(self, method: str | None = None) -> list[RecordedCall]:
        """Calls so far (of ``method`` only, if given), oldest first, failed ones included."""
        with self._cond:
            return [c for c in self._calls if method is None or c.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        """Non-ephemeral messages of ``channel`` as they are now (after chat.update): ts, text, blocks, ..."""
        with self._cond:
            return copy.deepcopy(list(self._messages.get(channel, {}).values()))

    def wait_for(
        self,
        method: str,
        predicate: Callable[[RecordedCall], bool] | None = None,
        timeout: float = 10.0,
        count: int = 1,
    ) -> list[RecordedCall]:
        """Block until at least ``count`` calls of ``method`` match ``predicate``; return all matches.

        Waiting is needed because Bolt runs listeners after the ack, so the bot's calls land after its
        HTTP response. Failed calls count too (filter on ``call.ok``); ``predicate`` runs under the
        stand-in's lock. On timeout, raise AssertionError naming ``method`` and every call seen so far.
        """

        def matching() -> list[RecordedCall]:
            return [c for c in self._calls if c.method == method and (predicate is None or predicate(c))]

        with self._cond:
            if self._cond.wait_for(lambda: len(matching()) >= count, timeout):
                return matching()
            seen = [f"{c.method}:{'ok' if c.ok else c.response.get('error')}" for c in self._calls]
            found = len(matching())
        raise AssertionError(
            f"timed out after {timeout}s waiting for {count} matching {method} call(s), found {found}; "
            f"calls seen so far: {', '.join(seen) or 'none'}"
        )

    def _handle(self, path: str, query: str, content_type: str, authorization: str | None, body: bytes) -> Answer:
        method = path.removeprefix("/api/")
        args: Args = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        malformed = False
        media_type = content_type.split(";")[0].strip().lower()
        if media_type == "application/json":
            try:
                parsed = json.loads(body or b"{}")
                malformed = not isinstance(parsed, dict)
                args.update(parsed if isinstance(parsed, dict) else {})
            except ValueError:
                malformed = True
        elif body and media_type in ("", "application/x-www-form-urlencoded"):
            form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
            args.update({k: v[0] for k, v in form.items()})
        token = args.pop("token", None)
        if authorization and authorization.lower().startswith("bearer "):
            token = authorization[7:].strip()
        with self._cond:
            answer = self._answer(method, args, token, malformed)
            answer = copy.deepcopy(answer)  # never hand out references into the stand-in's state
            self._calls.append(RecordedCall(method, copy.deepcopy(args), token, time.time(), answer))
            self._cond.notify_all()
        return answer

    def _answer(self, method: str, args: Args, token: str | None, malformed: bool) -> Answer:
        handler = self._methods.get(method)
        try:
            if handler is None:
                raise _SlackError("unknown_method")
            # apps.connections.open takes the app-level token; every other method the bot token.
            wanted = self.app_token if method == "apps.connections.open" else self.bot_token
            if token and token in (self.bot_token, self.app_token) and token != wanted:
                raise _SlackError("not_allowed_token_type")
            if malformed or not token or token != wanted:
                raise _SlackError("invalid_json" if malformed else "invalid_auth" if token else "not_authed")
            if self._failures.get(method):
                raise _SlackError(self._failures[method].pop(0))
            return handler(args)
        except _SlackError as exc:
            return exc.answer
        except Exception as exc:  # a stand-in bug must show up in the test, not as a hung client
            return {"ok": False, "error": "internal_error", "standin_exception": repr(exc)}

    def _add_user(self, user_id: str, name: str, email: str, real_name: str, *, is_bot: bool) -> None:
        profile = {"real_name": real_name, "display_name": name}
        if email:  # bots have no email in Slack's profiles
            profile["email"] = email
        user = {"id": user_id, "team_id": self.team_id, "name": name, "real_name": real_name}
        self._users[user_id] = user | {"deleted": False, "is_bot": is_bot, "profile": profile}

    def _user(self, user_id: str) -> dict[str, Any]:
        if user_id not in self._users:
            raise _SlackError("user_not_found")
        return self._users[user_id]

    def _next_ts(self) -> str:
        # Integer microseconds: floats near 1.7e9 cannot hold six decimals reliably.
        self._last_ts_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        return f"{self._last_ts_us // 1_000_000}.{self._last_ts_us % 1_000_000:06d}"

    def _channel(self, args: Args) -> str:
        channel = _str(args, "channel")
        if not channel or channel[0] not in "CDG":
            raise _SlackError("channel_not_found")
        if channel in self._not_in_channel:
            raise _SlackError("not_in_channel")
        return channel

    def _auth_test(self, args: Args) -> Answer:
        answer = {"ok": True, "url": WORKSPACE_URL, "team": "Stand-in", "user": "iam-user-bot"}
        return answer | {"team_id": self.team_id, "user_id": self.bot_user_id, "bot_id": BOT_ID}

    def _conversations_open(self, args: Args) -> Answer:
        users = [u.strip() for u in _str(args, "users").split(",") if u.strip()]
        if not users:
            raise _SlackError("users_list_not_supplied")
        if len(users) > 1:
            raise _SlackError("not_supported_by_standin")  # group DMs are not needed by the bot
        self._user(users[0])
        return {"ok": True, "channel": {"id": f"D{users[0]}"}}

    def _chat_post_message(self, args: Args) -> Answer:
        channel = self._channel(args)
        text, blocks = _message_content(args)
        message = {"type": "message", "ts": self._next_ts(), "text": text or "", "blocks": blocks or []}
        message |= {"user": self.bot_user_id, "bot_id": BOT_ID, "team": self.team_id}
        if args.get("thread_ts"):
            message["thread_ts"] = _str(args, "thread_ts")
        self._messages.setdefault(channel, {})[message["ts"]] = message
        return {"ok": True, "channel": channel, "ts": message["ts"], "message": message}

    def _chat_update(self, args: Args) -> Answer:
        channel, ts = self._channel(args), _str(args, "ts")
        message = self._messages.get(channel, {}).get(ts)
        if message is None:  # also what Slack answers for an ephemeral message's ts
            raise _SlackError("message_not_found")
        text, blocks = _message_content(args)
        # Like Slack, fields left out keep their old value.
        if text is not None:
            message["text"] = text
        if blocks is not None:
            message["blocks"] = blocks
        message["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"ok": True, "channel": channel, "ts": ts, "text": message["text"], "message": message}

    def _chat_post_ephemeral(self, args: Args) -> Answer:
        self._channel(args)
        if _str(args, "user") not in self._users:
            raise _SlackError("user_not_in_channel")
        _message_content(args)
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_get_permalink(self, args: Args) -> Answer:
        channel, ts = _str(args, "channel"), _str(args, "message_ts")
        if ts not in self._messages.get(channel, {}):
            raise _SlackError("message_not_found")
        permalink = f"{WORKSPACE_URL}archives/{channel}/p{ts.replace('.', '')}"
        return {"ok": True, "channel": channel, "permalink": permalink}

    def _take_trigger(self, args: Args) -> str:
        trigger_id = _str(args, "trigger_id")
        match = _TRIGGER_RE.fullmatch(trigger_id)
        if match is None:
            raise _SlackError("invalid_trigger_id")
        if trigger_id in self._used_triggers:
            raise _SlackError("exchanged_trigger_id")
        if time.time() - int(match.group(1)) / 1000 > self.trigger_ttl:
            raise _SlackError("expired_trigger_id")
        return trigger_id

    def _save_view(self, view: dict[str, Any], old: dict[str, Any] | None, hash_: str) -> Answer:
        if old is not None and hash_ and hash_ != old["hash"]:
            raise _SlackError("hash_conflict")
        external_id = _str(view, "external_id")
        owner = self._external_ids.get(external_id)
        if external_id and owner is not None and (old is None or owner != old["id"]):
            raise _SlackError("duplicate_external_id")
        if old is None:
            self._view_seq += 1
            view_id = f"V{self._view_seq:010d}"
        else:
            view_id = old["id"]
        saved = {"private_metadata": "", "callback_id": "", "external_id": "", **view, "id": view_id}
        saved |= {"team_id": self.team_id, "app_id": APP_ID, "bot_id": BOT_ID, "root_view_id": view_id}
        saved |= {"hash": f"{int(time.time())}.{secrets.token_hex(4)}", "state": {"values": {}}}
        self._views[view_id] = saved
        if external_id:
            self._external_ids[external_id] = view_id
        return {"ok": True, "view": saved}

    def _views_open(self, args: Args) -> Answer:
        trigger_id = self._take_trigger(args)
        view = _view_arg(args)
        _check_view(view, "modal")
        answer = self._save_view(view, None, "")
        # Only a successful exchange spends the trigger, so a caller may fix its view and retry in time.
        self._used_triggers.add(trigger_id)
        return answer

    def _views_update(self, args: Args) -> Answer:
        view_id, external_id = _str(args, "view_id"), _str(args, "external_id")
        if not view_id and not external_id:
            raise _invalid_arguments(["[ERROR] either view_id or external_id is required"])
        old = self._views.get(view_id or self._external_ids.get(external_id, ""))
        if old is None:
            raise _SlackError("not_found")
        view = _view_arg(args)
        _check_view(view, old["type"])
        return self._save_view(view, old, _str(args, "hash"))

    def _views_publish(self, args: Args) -> Answer:
        user_id = _str(args, "user_id")
        self._user(user_id)
        view = _view_arg(args)
        _check_view(view, "home")
        answer = self._save_view(view, self._views.get(self._home_views.get(user_id, "")), _str(args, "hash"))
        self._home_views[user_id] = answer["view"]["id"]
        return answer

    def _users_lookup_by_email(self, args: Args) -> Answer:
        email = _str(args, "email").lower()
        for user in self._users.values():
            if email and user["profile"].get("email", "").lower() == email:
                return {"ok": True, "user": user}
        raise _SlackError("users_not_found")  # sic: Slack's error for this method is plural

    def _usergroups_users_list(self, args: Args) -> Answer:
        usergroup = _str(args, "usergroup")
        if usergroup not in self._usergroups:
            raise _SlackError("no_such_subteam")
        return {"ok": True, "users": list(self._usergroups[usergroup])}
