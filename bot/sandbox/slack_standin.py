"""Serve a fake Slack workspace as the Slack Web API on 127.0.0.1, checking tokens and recording every call.

``SlackStandIn`` is a stdlib HTTP server that ``slack_sdk.WebClient(token=..., base_url=standin.base_url)``
(and therefore Bolt) can talk to, for end-to-end tests and the ``demo`` command. Unlike bolt-python's
mock server, which answers ``{"ok": true}`` to anything, it records every call with its parsed arguments
and refuses what real Slack refuses: bad tokens here; stale or reused ``trigger_id``s, over-long modal
titles, more than 50 message blocks, unknown users and messages in the workspace
(:mod:`bot.sandbox.slack_workspace`, :mod:`bot.sandbox.slack_rules`). Answers always use Slack's shapes:
HTTP 200, ``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. It never touches the network beyond
its own socket.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from bot.sandbox.slack_rules import Answer, Args, _SlackError
from bot.sandbox.slack_workspace import SlackWorkspace

if TYPE_CHECKING:
    from bot.sandbox.socket_mode_server import SocketModeServer


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


class SlackStandIn(SlackWorkspace):
    """Fake Slack Web API on ``base_url`` (``http://127.0.0.1:<port>/api/``), with state and recorded calls.

    Methods: those of :class:`~bot.sandbox.slack_workspace.SlackWorkspace` (auth.test, conversations.open,
    chat.*, views.*, users.*, usergroups.users.list, apps.connections.open with ``app_token``); anything
    else answers ``unknown_method``. Requests must carry ``bot_token``
    (``Authorization: Bearer`` or a ``token`` argument). With ``socket_mode`` (a started
    :class:`~bot.sandbox.socket_mode_server.SocketModeServer`), ``apps.connections.open`` hands out
    its one-time websocket URLs, so an app can really connect in Socket Mode.
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
        socket_mode: SocketModeServer | None = None,
    ) -> None:
        self.bot_token, self.host, self.port = bot_token, host, port
        # Like Slack, every answer names the token's scopes in X-OAuth-Scopes (when ``scopes`` is given).
        self.scopes = None if scopes is None else list(scopes)
        # The app-level token (xapp-) that apps.connections.open takes, for Socket Mode set-ups.
        self.app_token = app_token
        self.socket_mode = socket_mode
        super().__init__(bot_user_id, team_id, trigger_ttl)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._calls: list[RecordedCall] = []
        self._failures: dict[str, list[str]] = {}

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

    def socket_mode_url(self) -> str:
        return self.socket_mode.new_url() if self.socket_mode is not None else super().socket_mode_url()

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
