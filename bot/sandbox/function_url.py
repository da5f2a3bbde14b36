"""A local stand-in for an AWS Lambda function URL: HTTP in, payload format 2.0 events to a handler,
its answer back as HTTP; and a Lambda client whose asynchronous ``invoke`` runs the same handler.

Lets the tests (and anyone curious) drive :mod:`bot.serverless` with the real event shapes over
real HTTP, so every Slack-side helper the server tests use works unchanged. Listens on 127.0.0.1.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace
from typing import Any
from urllib.parse import urlsplit

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded")
FUNCTION_NAME = "iam-user-bot"
FUNCTION_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{FUNCTION_NAME}"


def context() -> SimpleNamespace:
    """What Bolt's adapter reads of a Lambda context object."""
    return SimpleNamespace(
        function_name=FUNCTION_NAME,
        invoked_function_arn=FUNCTION_ARN,
        aws_request_id=str(uuid.uuid4()),
        get_remaining_time_in_millis=lambda: 30_000,
    )


def function_url_event(
    method: str, target: str, headers: dict[str, str], body: bytes, source_ip: str
) -> dict[str, Any]:
    """A payload format 2.0 event as a Lambda function URL sends it: header names lower-cased,
    the body base64-encoded unless its content type is text and it decodes as UTF-8."""
    parts = urlsplit(target)
    lowered = {k.lower(): v for k, v in headers.items()}
    text = any(lowered.get("content-type", "").startswith(t) for t in TEXT_TYPES) or not body
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        text = False
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": parts.path,
        "rawQueryString": parts.query,
        "headers": lowered,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": "local.lambda-url.us-east-1.on.aws",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": parts.path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": "$default",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": body.decode("utf-8") if text else base64.b64encode(body).decode("ascii"),
        "isBase64Encoded": not text,
    }


class LocalLambda:
    """A Lambda client for the lazy listeners: ``invoke(InvocationType="Event")`` runs the handler
    on a thread of its own with the payload (``delay_seconds`` later), as Lambda runs an
    asynchronous invocation."""

    def __init__(self, handler: Handler, delay_seconds: float = 0.0) -> None:
        self.handler = handler
        self.delay_seconds = delay_seconds  # how late Lambda runs each invocation (its queue)
        self.invocations: list[dict[str, Any]] = []
        self._threads: list[threading.Thread] = []

    def _run_later(self, event: dict[str, Any]) -> None:
        time.sleep(self.delay_seconds)
        self.handler(event, context())

    def invoke(self, FunctionName: str, InvocationType: str = "Event", Payload: str = "{}") -> dict[str, Any]:
        event = json.loads(Payload)
        self.invocations.append(event)
        thread = threading.Thread(target=self._run_later, args=(event,), daemon=True)
        thread.start()
        self._threads.append(thread)
        return {"StatusCode": 202}

    def wait(self, timeout: float = 30) -> None:
        """Until every asynchronous invocation so far has returned."""
        for thread in list(self._threads):
            thread.join(timeout)


class FunctionUrl:
    """``handler`` behind a local HTTP server, as a function URL puts it (``url``)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        owner = self

        class Request(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                event = function_url_event(self.command, self.path, dict(self.headers), body, self.client_address[0])
                answer = owner.handler(event, context())
                payload = answer.get("body") or ""
                data = base64.b64decode(payload) if answer.get("isBase64Encoded") else str(payload).encode("utf-8")
                self.send_response(int(answer.get("statusCode", 200)))
                for name, value in (answer.get("headers") or {}).items():
                    self.send_header(name, str(value))
                for cookie in answer.get("cookies") or []:
                    self.send_header("Set-Cookie", cookie)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _serve

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Request)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> FunctionUrl:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
