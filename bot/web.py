"""The Flask app: Slack on ``POST /slack/events``, one-time links under ``/credentials/``, ``/healthz``.

Bolt verifies every Slack request's signature (``X-Slack-Signature``, 5-minute window) and
answers 401 to a forged or stale one. Bolt runs listeners in its thread pool and returns the
HTTP response as soon as a listener acks, so slow work after ``ack()`` never delays Slack.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib import resources

from flask import Flask, Response, jsonify, request
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler

import handlers
from bot.catalog import Catalog
from bot.config import Settings, load_settings
from bot.iam import IamGateway, make_clients
from bot.messenger import Messenger, make_web_client
from bot.store import SCHEMA_VERSION, Store
from bot.vault import SECRET_ID_PATTERN, b64url
from bot.workflow import Workflow

log = logging.getLogger(__name__)

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow, noarchive",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": CSP,
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
REVEAL_HEADER = ("X-Requested-With", "reveal")


@dataclass
class Bot:
    """Everything one serving process holds."""

    settings: Settings
    store: Store
    workflow: Workflow
    bolt: App
    flask: Flask


def build_bot(settings: Settings | None = None, *, start_background: bool = True) -> Bot:
    """Wire settings, store, IAM, Slack and the Flask app together.

    ``App(client=…)`` calls Slack's ``auth.test`` here, so Slack (or the stand-in) must answer.
    """
    settings = settings or load_settings()
    store = Store(settings.database_path)
    gateway = IamGateway(*make_clients())
    catalog = Catalog(gateway.load_catalog)
    client = make_web_client(settings.slack_bot_token.get_secret_value(), settings.slack_base_url)
    messenger = Messenger(client)
    workflow = Workflow(settings, store, gateway, catalog, messenger)
    signing = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    bolt = App(
        client=client, signing_secret=signing, process_before_response=False, raise_error_for_unhandled_request=False
    )
    handlers.register(bolt, workflow)
    if start_background:
        catalog.start()
        if settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            SocketModeHandler(bolt, settings.slack_app_token.get_secret_value()).connect()
    flask = create_flask(bolt, store)
    return Bot(settings=settings, store=store, workflow=workflow, bolt=bolt, flask=flask)


def create_flask(bolt: App, store: Store) -> Flask:
    """The HTTP routes. Every response carries :data:`SECURITY_HEADERS`."""
    app = Flask(__name__, static_folder="static", static_url_path="/static")
    slack_handler = SlackRequestHandler(bolt)
    page = resources.files("bot").joinpath("static/credentials.html").read_bytes()

    @app.after_request
    def secure(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.post("/slack/events")
    def slack_events() -> Response:
        return slack_handler.handle(request)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(ok=True, schema_version=SCHEMA_VERSION)

    @app.get("/favicon.ico")
    def favicon() -> tuple[str, int]:
        return "", 204

    @app.get("/credentials/<secret_id>")
    def credential_page(secret_id: str) -> Response:
        # The same bytes for every id: a link preview or a guesser learns nothing, consumes nothing.
        return Response(page, mimetype="text/html")

    @app.post("/credentials/<secret_id>")
    def credential_reveal(secret_id: str) -> tuple[Response, int]:
        name, value = REVEAL_HEADER
        if request.headers.get(name) != value or request.get_data():
            return jsonify(error="A reveal is a POST with no body and the header X-Requested-With: reveal."), 400
        claimed = store.claim_secret(secret_id) if SECRET_ID_PATTERN.match(secret_id) else None
        if claimed is None:
            return jsonify(
                error="gone",
                message="This link has already been used or has expired. Ask the bot in Slack for a new one.",
            ), 410
        nonce, ciphertext = claimed
        return jsonify(iv=b64url(nonce), ciphertext=b64url(ciphertext)), 200

    return app


def create_app() -> Flask:
    """WSGI entry point for gunicorn (``bot.web:create_app()``), one bot per worker process."""
    import sys

    from bot import logs
    from bot.config import ConfigError

    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(3) from None  # gunicorn's "worker failed to boot": the master stops too
    logs.configure(settings.log_format, settings.log_level)
    return build_bot(settings).flask
