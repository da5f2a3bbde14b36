"""The Socket Mode connection of a serving process (``SLACK_APP_TOKEN`` set).

Slack refreshes Socket Mode connections from time to time: it sends ``disconnect``
(``refresh_requested``) and closes the old connection soon after. Envelopes keep coming on any
open connection and each must be acked within 3 s. slack_sdk's built-in client, which Bolt's
default adapter uses, closes the old connection before it reads the new one, and its reader holds
a lock in a 3 s blocking receive: every refresh left envelopes unacked for 3.1 s. The client for
``websockets`` opens the new connection, starts reading it, and only then closes the old one
(``benchmarks/socket_mode_refresh.py`` measures all of Bolt's adapters; BENCHMARKS.md has the
numbers), so this module uses Bolt's ``websockets`` adapter.

The client still closes the old connection the moment the new one's handshake is done, before
Slack can know of it: envelopes Slack sends on the old one in that moment were never read, so never
acked (a slash command then fails for the person who typed it). :class:`_DrainingClient` keeps
reading the old connection for ``DRAIN_SECONDS`` after the new one opens, then closes it; acks go
out on the new connection (Slack matches them by ``envelope_id``).

That adapter is asyncio: it runs here on an event loop in a daemon thread of its own, beside
gunicorn's threads. The bot's Bolt app is synchronous and a listener may take a while before it
acks (a form checked against IAM), so each envelope is dispatched in a thread pool and the event
loop stays free to read and ack the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from typing import Any

import websockets
from slack_bolt import App
from slack_bolt.adapter.socket_mode.async_internals import send_async_response
from slack_bolt.adapter.socket_mode.internals import run_bolt_app
from slack_bolt.adapter.socket_mode.websockets import SocketModeHandler
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.websockets import SocketModeClient
from slack_sdk.web.async_client import AsyncWebClient
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 15.0  # seconds for apps.connections.open and the websocket handshake at start
PING_INTERVAL = 10.0  # seconds between pings; a dead connection is replaced after about this long
DISPATCH_THREADS = 16  # envelopes handled at once (Bolt then runs listeners in its own pool)
DRAIN_SECONDS = 2.0  # how long the old connection is still read after a refresh opened the new one


class SocketModeError(Exception):
    """The connection could not be opened; the message is one line, without the token."""


class _DrainingClient(SocketModeClient):
    """slack_sdk's ``websockets`` client that reads the old connection a while after a refresh.

    ``connect`` (at start, on Slack's ``disconnect`` and when a connection died) opens the new
    connection and starts reading it as the parent's does, with the old one current (acks are
    sent on it) until then; the old one, instead of being closed at once, is read for
    ``DRAIN_SECONDS`` more (envelopes only: its ``disconnect`` asked for what is already done)
    and then closed. ``recv`` of ``websockets`` may be cancelled without losing a
    message, so the parent's reader of the old connection is cancelled and the drain goes on from
    where it stopped.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._drains: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        if self.wss_uri is None:
            self.wss_uri = await self.issue_new_wss_url()
        # The old session stays current (acks go out on it) until the new one is open.
        old, old_reader = self.current_session, self.message_receiver
        self.current_session = await websockets.connect(uri=self.wss_uri, ping_interval=self.ping_interval)
        self.auto_reconnect_enabled = self.default_auto_reconnect_enabled
        self.logger.info("A new Socket Mode session has been established")
        if self.current_session_monitor is not None:
            self.current_session_monitor.cancel()
        self.current_session_monitor = asyncio.ensure_future(self.monitor_current_session())
        self.message_receiver = asyncio.ensure_future(self.receive_messages())
        if old_reader is not None:
            old_reader.cancel()  # blocked in the old session's recv(): the drain reads on from there
        if old is not None:
            task = asyncio.ensure_future(self._drain(old))
            self._drains.add(task)
            task.add_done_callback(self._drains.discard)

    async def _drain(self, session: ClientConnection) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DRAIN_SECONDS
        try:
            while (left := deadline - loop.time()) > 0:
                try:
                    # In this task, not wait_for's own (3.11's wait_for can drop a result at timeout).
                    async with asyncio.timeout(left):
                        raw = await session.recv()
                except (TimeoutError, ConnectionClosed):
                    return
                text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
                try:
                    is_envelope = "envelope_id" in json.loads(text)
                except (ValueError, TypeError):
                    is_envelope = False
                if is_envelope:
                    await self.enqueue_message(text)
        finally:
            await session.close()
            self.logger.info("The old Socket Mode session has been drained and closed")


class _Handler(SocketModeHandler):
    """Bolt's ``websockets`` adapter on :class:`_DrainingClient`, with the synchronous dispatch
    moved off the event loop.

    The parent's ``__init__`` is not called: it would build (and start the tasks of) a plain
    client; this sets the same attributes with the draining one.
    """

    def __init__(self, app: App, app_token: str, web_client: AsyncWebClient, pool: concurrent.futures.Executor) -> None:
        self.app, self.app_token = app, app_token
        self.client = _DrainingClient(
            app_token=app_token, logger=app.logger, web_client=web_client, ping_interval=PING_INTERVAL
        )
        self.client.socket_mode_request_listeners.append(self.handle)  # type: ignore[arg-type]
        self._pool = pool

    async def handle(self, client: AsyncBaseSocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.time()
        response = await asyncio.get_running_loop().run_in_executor(self._pool, run_bolt_app, self.app, req)
        await send_async_response(client, req, response, started)


class SocketModeConnection:
    """One process's Socket Mode connection for ``app``, kept open (and refreshed) until :meth:`close`.

    Args:
        app: the Bolt app whose listeners handle each envelope.
        app_token: the app-level token (``xapp-…``, scope ``connections:write``).
        base_url: the Web API base URL for ``apps.connections.open`` (``SLACK_API_URL``).
    """

    def __init__(self, app: App, app_token: str, base_url: str) -> None:
        self.app, self._token, self.base_url = app, app_token, base_url
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._handler: _Handler | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(DISPATCH_THREADS, thread_name_prefix="socket-mode")

    def start(self, timeout: float = CONNECT_TIMEOUT) -> None:
        """Open the connection; returns once Slack's websocket is connected.

        Raises:
            SocketModeError: Slack refused the app-level token, or could not be reached in ``timeout`` s.
        """
        loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=loop.run_forever, name="socket-mode-loop", daemon=True)
        self._thread.start()
        self._loop = loop
        future = asyncio.run_coroutine_threadsafe(self._connect(), loop)
        try:
            self._handler = future.result(timeout)
        except SlackApiError as error:
            self.close()
            code = error.response.get("error") if error.response is not None else "unknown"
            raise SocketModeError(f"Slack refused the app-level token ({code})") from None
        except TimeoutError:  # concurrent.futures' and asyncio's timeouts are this one since 3.11
            future.cancel()
            self.close()
            raise SocketModeError(f"cannot open a Socket Mode connection (no answer within {timeout:.0f} s)") from None
        except OSError as error:
            self.close()
            raise SocketModeError(f"cannot open a Socket Mode connection ({error})") from None
        except Exception as error:  # the websocket handshake refused (HTTP 4xx), a bad URL: one line
            self.close()
            raise SocketModeError(f"cannot open a Socket Mode connection ({type(error).__name__}: {error})") from None
        log.info("Socket Mode connection open")

    async def _connect(self) -> _Handler:
        # The client's tasks must be created on this loop: build it here, not in the caller's thread.
        client = AsyncWebClient(base_url=self.base_url, timeout=int(CONNECT_TIMEOUT))
        handler = _Handler(self.app, self._token, client, self._pool)
        try:
            await handler.connect_async()
        except BaseException:
            # The client's tasks already run: stop them, or they outlive the loop and spin.
            await handler.close_async()
            raise
        return handler

    def close(self, timeout: float = 5.0) -> None:
        """Close the connection, end its tasks and stop its thread (idempotent)."""
        loop, thread, handler = self._loop, self._thread, self._handler
        self._loop = self._thread = self._handler = None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(_shutdown(handler), loop).result(timeout)
        except Exception as error:  # already closed or broken: nothing left to do for it
            log.debug("Socket Mode close: %s", type(error).__name__)
        loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout)
        if not loop.is_running():
            loop.close()
        self._pool.shutdown(wait=False, cancel_futures=True)

    @property
    def connected(self) -> bool:
        """Whether the websocket is open right now."""
        loop, handler = self._loop, self._handler
        if loop is None or handler is None:
            return False
        future: Any = asyncio.run_coroutine_threadsafe(handler.client.is_connected(), loop)
        return bool(future.result(5))


async def _shutdown(handler: _Handler | None) -> None:
    """Close ``handler``'s client, then cancel and await every other task of this loop."""
    if handler is not None:
        await handler.close_async()
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
