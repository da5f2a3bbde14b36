"""Slack's side of Socket Mode on 127.0.0.1: websocket URLs, ``hello``, envelopes, acks, refreshes.

What the bot meets in Socket Mode, as far as Slack documents it: ``apps.connections.open`` (the
Web API stand-in answers it with :meth:`SocketModeServer.new_url`) hands out a one-time
``wss://`` URL (``ws://`` on loopback here); on connecting, the app gets ``{"type": "hello", …}``; then envelopes
``{"envelope_id", "type", "payload", "accepts_response_payload"}`` arrive, each to be acked with
``{"envelope_id", "payload"?}`` within Slack's 3 s; from time to time Slack asks for a new
connection with ``{"type": "disconnect", "reason": "refresh_requested"}`` and closes the old one
a little later. An app may hold up to 10 connections (:data:`MAX_CONNECTIONS`), and each envelope
goes to one of them.

The model here, written down so that tests can rely on it: an envelope goes to a *live*
connection (it got ``hello``, was not asked to go, and is open), round-robin among them; when
none is live (the app has not reconnected yet) it goes to the newest connection that was asked
to go but is still open, and when none is open at all it waits for the next one to become live.
Its clock starts when :meth:`SocketModeServer.send` is called, as Slack's 3 s start when a person
acts, so time without an open connection counts, and so does an envelope sent on a connection
the app stopped reading. The server closes a connection ``retire_after`` seconds after its
``disconnect`` if the app has not. Acks are matched by ``envelope_id`` on any connection.
``handshake_delay`` holds each new connection that long before it opens, like the network and
TLS round trips to Slack; ``hello_delay`` is the time from open to ``hello``, while Slack does not
yet send on the new connection (envelopes still go to the old one if it is open).
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.sync.server import Server, ServerConnection, serve

MAX_CONNECTIONS = 10  # Slack's limit of open Socket Mode connections per app
APP_ID = "A0IAMUSERBOT"


@dataclass
class Link:
    """One websocket connection as the server saw it (times from ``time.monotonic()``)."""

    id: int
    opened_at: float
    hello_at: float | None = None
    told_to_go_at: float | None = None  # when ``disconnect`` was sent
    closed_at: float | None = None
    closed_by: str | None = None  # "app" or "server"
    ws: ServerConnection | None = field(default=None, repr=False)

    @property
    def live(self) -> bool:
        """Open, greeted and not asked to go: may get new envelopes."""
        return self.hello_at is not None and self.told_to_go_at is None and self.closed_at is None


@dataclass
class Envelope:
    """One envelope: when Slack had it (``created_at``), where it went, and its ack."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    created_at: float
    sent_at: float | None = None
    link_id: int | None = None
    acked_at: float | None = None
    ack_link_id: int | None = None
    ack_payload: dict[str, Any] | None = None

    @property
    def ack_delay(self) -> float | None:
        """Seconds from ``created_at`` to the ack (None while unacked): what Slack's 3 s limit measures."""
        return None if self.acked_at is None else self.acked_at - self.created_at

    def message(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "envelope_id": self.envelope_id,
            "type": self.type,
            "payload": self.payload,
            "accepts_response_payload": self.accepts_response_payload,
        }
        if self.type == "events_api":
            out.update(retry_attempt=0, retry_reason="")
        return out


class SocketModeServer:
    """A Socket Mode endpoint on ``ws://host:port`` (see the module docstring for the model).

    Args:
        retire_after: seconds between ``disconnect`` and the server closing that connection.
        handshake_delay: seconds each new connection waits before it opens.
        hello_delay: seconds from a connection's opening to its ``hello`` (and to its first envelope).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        retire_after: float = 10.0,
        handshake_delay: float = 0.0,
        hello_delay: float = 0.0,
    ) -> None:
        self.host, self.port, self.retire_after, self.handshake_delay = host, port, retire_after, handshake_delay
        self.hello_delay = hello_delay
        self._cond = threading.Condition(threading.RLock())
        self._tickets: set[str] = set()
        self._links: list[Link] = []
        self._envelopes: dict[str, Envelope] = {}
        self._waiting: list[Envelope] = []
        self._next = 0
        self._server: Server | None = None
        self._thread: threading.Thread | None = None
        self._timers: list[threading.Timer] = []

    # -- life ----------------------------------------------------------------------------------

    def start(self) -> SocketModeServer:
        """Listen (port 0 picks a free port) in a daemon thread; returns self."""
        if self._server is None:
            self._server = serve(self._serve, self.host, self.port, process_request=self._admit)
            self.port = int(self._server.socket.getsockname()[1])
            self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Close every connection and stop listening; what was recorded is kept."""
        for timer in self._timers:
            timer.cancel()
        if self._server is not None:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._server = self._thread = None

    def __enter__(self) -> SocketModeServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- what apps.connections.open hands out ----------------------------------------------------

    def new_url(self) -> str:
        """A one-time websocket URL for one connection, as ``apps.connections.open`` answers."""
        ticket = secrets.token_hex(8)
        with self._cond:
            self._tickets.add(ticket)
        return f"ws://{self.host}:{self.port}/link/?ticket={ticket}&app_id={APP_ID}"

    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse a used or unknown ticket, and an 11th connection, before the websocket opens."""
        ticket = request.path.partition("ticket=")[2].split("&")[0]
        time.sleep(self.handshake_delay)
        with self._cond:
            if ticket not in self._tickets:
                return connection.respond(403, "unknown or used ticket\n")
            self._tickets.discard(ticket)
            if sum(1 for link in self._links if link.closed_at is None) >= MAX_CONNECTIONS:
                return connection.respond(429, "too many websockets\n")
        return None

    def _serve(self, ws: ServerConnection) -> None:
        with self._cond:
            link = Link(id=len(self._links) + 1, opened_at=time.monotonic(), ws=ws)
            self._links.append(link)
            open_links = sum(1 for other in self._links if other.closed_at is None)
        hello = {
            "type": "hello",
            "num_connections": open_links,
            "debug_info": {"host": "applink-standin", "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }
        try:
            time.sleep(self.hello_delay)
            ws.send(json.dumps(hello))
            with self._cond:
                link.hello_at = time.monotonic()
                self._cond.notify_all()
            self._flush()
            for raw in ws:
                self._received(link, raw)
        except ConnectionClosed:
            pass
        finally:
            with self._cond:
                if link.closed_at is None:
                    link.closed_at, link.closed_by = time.monotonic(), link.closed_by or "app"
                self._cond.notify_all()

    def _received(self, link: Link, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            return
        if not isinstance(message, dict) or "envelope_id" not in message:
            return
        with self._cond:
            envelope = self._envelopes.get(str(message["envelope_id"]))
            if envelope is not None and envelope.acked_at is None:
                envelope.acked_at, envelope.ack_link_id = time.monotonic(), link.id
                payload = message.get("payload")
                envelope.ack_payload = payload if isinstance(payload, dict) else None
            self._cond.notify_all()

    # -- what Slack does -------------------------------------------------------------------------

    def send(self, type_: str, payload: dict[str, Any], *, accepts_response_payload: bool = False) -> Envelope:
        """Hand an envelope to the app (``type_``: ``slash_commands``, ``interactive``, ``events_api``).

        It goes out at once on a live connection, else on the next one that becomes live.
        """
        envelope = Envelope(
            envelope_id=secrets.token_hex(12),
            type=type_,
            payload=payload,
            accepts_response_payload=accepts_response_payload,
            created_at=time.monotonic(),
        )
        with self._cond:
            self._envelopes[envelope.envelope_id] = envelope
            self._waiting.append(envelope)
        self._flush()
        return envelope

    def _flush(self) -> None:
        """Send waiting envelopes, round-robin over live connections."""
        while True:
            with self._cond:
                live = [link for link in self._links if link.live]
                going = [link for link in self._links if link.closed_at is None and link.told_to_go_at is not None]
                if not self._waiting or not (live or going):
                    return
                envelope = self._waiting.pop(0)
                if live:
                    link = live[self._next % len(live)]
                    self._next += 1
                else:
                    link = going[-1]
            try:
                assert link.ws is not None
                link.ws.send(json.dumps(envelope.message()))
            except ConnectionClosed:
                with self._cond:
                    self._waiting.insert(0, envelope)
                    link.closed_at, link.closed_by = link.closed_at or time.monotonic(), link.closed_by or "app"
                continue
            with self._cond:
                envelope.sent_at, envelope.link_id = time.monotonic(), link.id
                self._cond.notify_all()

    def refresh(self, reason: str = "refresh_requested") -> list[int]:
        """Ask every live connection to go (``disconnect``); close each ``retire_after`` s later.

        Returns the ids of the connections asked.
        """
        with self._cond:
            going = [link for link in self._links if link.live]
            for link in going:
                link.told_to_go_at = time.monotonic()
        for link in going:
            assert link.ws is not None
            message = {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-standin"}}
            try:
                link.ws.send(json.dumps(message))
            except ConnectionClosed:
                continue
            timer = threading.Timer(self.retire_after, self._close, args=(link,))
            timer.daemon = True
            self._timers.append(timer)
            timer.start()
        return [link.id for link in going]

    def _close(self, link: Link) -> None:
        with self._cond:
            if link.closed_at is not None or link.ws is None:
                return
            link.closed_by = "server"
        link.ws.close()

    # -- what tests read -------------------------------------------------------------------------

    def links(self) -> list[Link]:
        """Every connection so far, oldest first (copies)."""
        with self._cond:
            return [Link(**{**vars(link), "ws": None}) for link in self._links]

    def wait_live(self, count: int = 1, timeout: float = 10.0, *, newer_than: int = 0) -> list[Link]:
        """Block until ``count`` connections with an id above ``newer_than`` are live.

        Raises:
            AssertionError: on timeout, naming the connections seen.
        """
        with self._cond:
            if self._cond.wait_for(
                lambda: sum(1 for link in self._links if link.live and link.id > newer_than) >= count, timeout
            ):
                return [link for link in self.links() if link.live and link.id > newer_than]
        raise AssertionError(f"no {count} live Socket Mode connection(s) within {timeout} s: {self.links()}")

    def wait_acked(self, envelopes: Iterable[Envelope], timeout: float = 10.0) -> list[Envelope]:
        """Block until every one of ``envelopes`` is acked or ``timeout`` passes; return their current state."""
        ids = [e.envelope_id for e in envelopes]
        with self._cond:
            self._cond.wait_for(lambda: all(self._envelopes[i].acked_at is not None for i in ids), timeout)
            return [Envelope(**vars(self._envelopes[i])) for i in ids]


class SocketModeUser:
    """A person acting in Slack while the app is in Socket Mode: the same payloads as
    :class:`~bot.sandbox.slack_user.SlackUser` builds, handed to the app as envelopes."""

    def __init__(self, server: SocketModeServer, team_id: str = "T0STANDIN") -> None:
        from bot.sandbox.slack_user import SlackUser

        self.server = server
        self._payloads = SlackUser("http://127.0.0.1:9", "unused-in-socket-mode", team_id)

    def slash_command(self, user_id: str, text: str, channel_id: str = "C0GENERAL1") -> tuple[Envelope, str]:
        """``/iam-user <text>``: the envelope and the trigger_id Slack issued with it."""
        payload = self._payloads.command_payload(user_id, text, channel_id)
        return self.server.send("slash_commands", payload, accepts_response_payload=True), payload["trigger_id"]

    def view_submission(self, user_id: str, view: dict[str, Any], values: dict[str, Any]) -> Envelope:
        """Submit ``view`` with ``state.values``; the ack may carry a ``response_action``."""
        payload = self._payloads.view_submission_payload(user_id, view, values)
        return self.server.send("interactive", payload, accepts_response_payload=True)
