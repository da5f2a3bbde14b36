"""AWS Lambda entry point (``bot.serverless.handler``): Slack, the one-time link page and its reveal,
and the periodic jobs, all from one function.

- **Slack** (``POST /slack/events`` through a function URL or an HTTP API, payload format 2.0):
  Bolt's AWS Lambda adapter. Every listener acks in this invocation; its slow part is a lazy
  listener that Bolt runs as a second, asynchronous invocation of this same function (the
  function's role needs ``lambda:InvokeFunction`` on itself). The signature is checked before
  Bolt parses anything, as on the server. The copy of the request a lazy invocation carries is
  re-signed by this function with the signing secret when it is sent (:class:`SignedLazyRunner`),
  so Slack's 5-minute window counts from then, and the values of secret inputs (a custom password
  typed into the wizard) are taken out of it first: Lambda keeps asynchronous payloads in its
  own queue, and an operator's failure destination would keep them longer.
- **One-time links and /healthz** (every other path): the same Flask routes as the server
  (:func:`bot.web.create_flask`), through a WSGI bridge (apig-wsgi).
- **Periodic jobs**: an EventBridge Scheduler (or EventBridge rule) event runs every job once
  (:meth:`bot.ops.jobs.PeriodicJobs.run_all`): pending expiry, link expiry, resume of interrupted
  provisioning, the catalog refresh. Provisioning, App Home and progress refreshes and the work
  after a reveal run inline, in the invocation that asked for them.

The function is built once per container (the cold start) and reused while it stays warm. Keep the
state in DynamoDB (``STORE=dynamodb``): a container's disk is not shared and does not last.

Each container holds its own typeahead catalog (options must answer from memory within Slack's
3 s): the cold start loads it on a thread of its own, and an invocation that finds it older than
``CATALOG_REFRESH_SECONDS`` starts a reload the same way. A container Lambda freezes
between invocations finishes the reload when it is thawed. Decisions never read this catalog.

A provisioning lease taken here is never judged "gone" by another process's pid test (containers
share no process table): an invocation that dies mid-provisioning (a timeout) leaves its lease to
expire (:data:`bot.provisioning.lease.LEASE_SECONDS`), then the next scheduled run resumes it.
"""

from __future__ import annotations

import base64
import copy
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any
from urllib.parse import parse_qsl, urlencode

from apig_wsgi import make_lambda_handler
from slack_bolt.adapter.aws_lambda import SlackRequestHandler
from slack_bolt.adapter.aws_lambda.lazy_listener_runner import LambdaLazyListenerRunner
from slack_sdk.signature import SignatureVerifier

from bot import logs
from bot.app import build_bolt, build_services
from bot.aws.secrets import load_settings_from_environment
from bot.config import Settings
from bot.domain.risk import SECRET_FORM_FIELDS
from bot.provisioning.lease import Leases
from bot.storage import open_store
from bot.web import INVALID_SIGNATURE_LOG, SLACK_BODY_LIMIT_BYTES, create_flask

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
SCHEDULE_MARKER = "iam_user_bot"  # the template's schedule sends {"iam_user_bot": "periodic_jobs"}


class InlineExecutor(Executor):
    """Runs what is submitted at once, in the caller's thread (a Lambda invocation has no later)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future


def is_schedule(event: dict[str, Any]) -> bool:
    """An EventBridge Scheduler invocation with the template's input, or an EventBridge rule's
    ``Scheduled Event``."""
    return event.get(SCHEDULE_MARKER) == "periodic_jobs" or event.get("detail-type") == "Scheduled Event"


def _raw_body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    return base64.b64decode(body) if event.get("isBase64Encoded") else body.encode("utf-8")


def scrub_secret_inputs(body: str) -> str:
    """``body`` (a Slack interactivity form body, ``payload=<json>``) with the values of secret
    inputs (:data:`bot.domain.risk.SECRET_FORM_FIELDS` block ids in ``view.state``) set to null;
    any other body unchanged."""
    fields = parse_qsl(body, keep_blank_values=True)
    if [name for name, _ in fields] != ["payload"]:
        return body
    try:
        payload = json.loads(fields[0][1])
        values = payload["view"]["state"]["values"]
    except (ValueError, KeyError, TypeError):
        return body
    if not isinstance(values, dict) or not SECRET_FORM_FIELDS & set(values):
        return body
    for block_id in SECRET_FORM_FIELDS & set(values):
        for element in values[block_id].values() if isinstance(values[block_id], dict) else ():
            if isinstance(element, dict) and "value" in element:
                element["value"] = None
    return urlencode({"payload": json.dumps(payload, separators=(",", ":"))})


class SignedLazyRunner(LambdaLazyListenerRunner):
    """Bolt's Lambda lazy-listener runner, sending a copy of the request that this function signed
    just now, with secret input values taken out (see the module docstring).

    Args:
        logger: Bolt's adapter logger; lambda_client: what ``invoke``s the function (boto3's
        Lambda client by default); signing_secret: ``SLACK_SIGNING_SECRET``.
    """

    def __init__(self, logger: logging.Logger, lambda_client: Any | None, signing_secret: str) -> None:
        super().__init__(logger, lambda_client)
        self._signer = SignatureVerifier(signing_secret)

    def start(self, function: Callable[..., None], request: Any) -> None:
        event = copy.deepcopy(request.context["lambda_request"])
        body = scrub_secret_inputs(_raw_body(event).decode("utf-8"))
        timestamp = str(int(time.time()))
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items() if str(k).lower() != "cookie"}
        headers["x-slack-request-timestamp"] = timestamp
        headers["x-slack-signature"] = self._signer.generate_signature(timestamp=timestamp, body=body)
        headers.pop("content-length", None)
        event.update(headers=headers, body=body, isBase64Encoded=False)
        request.context["lambda_request"] = event
        super().start(function, request)


class Function:
    """The function's state, built once per container.

    Args:
        settings: read from the environment when left out.
        lambda_client: what invokes this function again for lazy listeners (boto3's Lambda
            client by default; tests pass one that invokes in-process).
    """

    def __init__(self, settings: Settings | None = None, lambda_client: Any | None = None) -> None:
        self.settings = settings or load_settings_from_environment()
        inline = InlineExecutor()
        store = open_store(self.settings)
        leases = Leases(clock=store.clock, owner=f"lambda:{secrets.token_hex(8)}", is_gone=lambda _owner: False)
        self.services = build_services(
            self.settings, store=store, leases=leases, executor=inline, background=inline, share_catalog=False
        )
        self.bolt = build_bolt(self.services, process_before_response=True, listener_executor=inline)
        self.slack = SlackRequestHandler(self.bolt)
        secret = self.settings.slack_signing_secret
        if secret is not None:
            runner = SignedLazyRunner(self.slack.logger, lambda_client, secret.get_secret_value())
            self.bolt.listener_runner.lazy_listener_runner = runner
        flask = create_flask(self.bolt, self.services.reveals, self.settings, self.services.store.schema_version)
        self.web = make_lambda_handler(flask.wsgi_app, binary_support=True)
        self.verifier = SignatureVerifier(secret.get_secret_value()) if secret else None
        self.catalog_ready = threading.Event()  # set once the first catalog load has ended
        self._reload: threading.Thread | None = None
        self._reload_catalog_if_old()

    def handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        """One invocation: a schedule, a Slack request (or a lazy listener's re-invocation), or a
        request for the link page, a reveal or ``/healthz``."""
        if is_schedule(event):
            self.services.jobs.run_all()
            return {"ok": True, "jobs": [job.name for job in self.services.jobs.jobs]}
        self._reload_catalog_if_old()
        if not isinstance(event.get("requestContext"), dict) or not isinstance(event.get("headers") or {}, dict):
            # Not from a function URL or API Gateway (a hand-made test invocation): say so.
            log.info("ignored an invocation that is neither a schedule nor an HTTP event")
            answer = '{"error": "bad event"}'
            return {"statusCode": 400, "headers": {"Content-Type": "application/json"}, "body": answer}
        event = {**event, "headers": event.get("headers") or {}, "isBase64Encoded": bool(event.get("isBase64Encoded"))}
        path = event.get("rawPath") or event.get("path") or ""
        if path == EVENTS_PATH:
            refusal = self._refuse_unsigned(event)
            return refusal if refusal is not None else self.slack.handle(event, context)
        return self.web(event, context)

    def _reload_catalog_if_old(self) -> None:
        """Start a catalog reload on a thread of its own when the copy is missing or older than
        ``CATALOG_REFRESH_SECONDS`` and none is running; never waits for it."""
        age = time.time() - self.services.catalog.snapshot.loaded_at
        if age < self.settings.catalog_refresh_seconds or (self._reload is not None and self._reload.is_alive()):
            return

        def reload() -> None:
            try:
                self.services.typeahead.refresh()
            finally:
                self.catalog_ready.set()

        self._reload = threading.Thread(target=reload, name="catalog-reload", daemon=True)
        self._reload.start()

    def _refuse_unsigned(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """401 for a Slack request without a valid signature, before Bolt parses its body."""
        body = _raw_body(event)
        headers = {str(k).lower(): v for k, v in (event.get("headers") or {}).items()}
        if len(body) <= SLACK_BODY_LIMIT_BYTES and self.verifier and self.verifier.is_valid_request(body, headers):
            return None
        log.info(INVALID_SIGNATURE_LOG)
        return {
            "statusCode": 401,
            "headers": {"Content-Type": "application/json"},
            "body": '{"error": "invalid request"}',
        }


_function: Function | None = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The Lambda handler: builds the function on the first invocation of a container (the cold
    start: imports, settings, the store, ``auth.test``), then serves every invocation."""
    global _function
    if _function is None:
        settings = load_settings_from_environment()
        logs.configure(settings.log_format, settings.log_level)
        _function = Function(settings)
    return _function.handle(event, context)
