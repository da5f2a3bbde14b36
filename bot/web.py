"""The Flask app: Slack on ``POST /slack/events``, one-time links under ``/credentials/``, ``/healthz``.

Bolt verifies every Slack request's signature (``X-Slack-Signature``, 5-minute window) and
answers 401 to a forged or stale one. Bolt runs listeners in its thread pool and returns the
HTTP response as soon as a listener acks, so slow work after ``ack()`` never delays Slack.

One-time links (contract, "Credentials"): ``GET /credentials/<id>`` returns the same static
bytes for every id (valid, unknown, used or expired: no oracle, nothing consumed, so link
previews and mail scanners are harmless). ``POST /credentials/<id>`` with no body and exactly
``X-Requested-With: reveal`` (a header a cross-site form cannot send, so it doubles as the CSRF
guard) hands the ciphertext out once; anything else is 400, a used/expired/unknown id is 410.

Rate limit: reveal POSTs are limited per client address by Flask-Limiter (``REVEAL_RATE_LIMIT``,
default 10 a minute and 30 an hour). The limiter runs before the view, so a 429 consumes
nothing. Its storage is ``RATE_LIMIT_STORAGE_URI``, by default ``memory://``: counters live in
each worker process, so with N gunicorn workers a client can get up to N times the limit
(still small against 128-bit ids), and a restart forgets the counts; point it at a shared
store (``redis://…``, ``memcached://…``) for one global count. The client address is the TCP
peer unless ``TRUSTED_PROXY_COUNT`` > 0, in which case werkzeug's ``ProxyFix`` takes it from
that many ``X-Forwarded-For`` hops: set it to exactly the number of proxies you run, or
clients could forge their address.

Every response, ``/static`` included, carries :data:`SECURITY_HEADERS` (no caching, no referrer,
no indexing, a strict Content-Security-Policy with no inline script, no framing, nosniff).
"""

from __future__ import annotations

import logging
from importlib import resources

from flask import Flask, Response, jsonify, request
from flask_limiter import Limiter
from flask_limiter.errors import RateLimitExceeded
from flask_limiter.util import get_remote_address
from slack_bolt import App
from slack_bolt.adapter.flask import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from werkzeug.middleware.proxy_fix import ProxyFix

from bot.config import Settings
from bot.credentials.reveal import Reveals
from bot.credentials.vault import SECRET_ID_PATTERN, b64url

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
BAD_REVEAL_MESSAGE = "A reveal is a POST with no body and the header X-Requested-With: reveal."
GONE_MESSAGE = (
    "This link has already been used, was replaced by a newer one, or has expired, so nothing was shown. "
    "Look in your direct messages with the bot in Slack for a newer link; if there is none, ask an approver "
    "to re-issue the credentials. If you did not open this link yourself, tell the approvers at once."
)
# Largest body /slack/events reads. Slack's payloads (a 100-block view with its state) stay far
# below it; anything bigger is refused before it is read or parsed.
SLACK_BODY_LIMIT_BYTES = 2 * 1024 * 1024
INVALID_SIGNATURE_LOG = "refused a request on /slack/events: invalid or missing Slack signature"
RATE_LIMITED_MESSAGE = "Too many attempts from your address. Wait a minute and try again; nothing was used up."


def create_flask(bolt: App, reveals: Reveals, settings: Settings, schema_version: int = 0) -> Flask:
    """The HTTP routes. Every response carries :data:`SECURITY_HEADERS`.

    Args:
        bolt: the Slack app behind ``POST /slack/events``.
        reveals: hands out sealed secrets (:meth:`bot.credentials.reveal.Reveals.reveal`).
        schema_version: the store's schema version, shown by ``/healthz``.
        settings: ``TRUSTED_PROXY_COUNT``, ``REVEAL_RATE_LIMIT``, ``RATE_LIMIT_STORAGE_URI``.
    """
    app = Flask(__name__, static_folder="credentials/static", static_url_path="/static")
    if settings.trusted_proxy_count:
        hops = settings.trusted_proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    limiter = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.rate_limit_storage_uri,
        headers_enabled=True,
        strategy="fixed-window",  # supported by every storage Flask-Limiter offers
    )
    slack_handler = SlackRequestHandler(bolt)
    page = resources.files("bot.credentials").joinpath("static/credentials.html").read_bytes()

    @app.after_request
    def secure(response: Response) -> Response:
        # Set, not setdefault: Flask's static files come with their own Cache-Control.
        for name, value in SECURITY_HEADERS.items():
            response.headers[name] = value
        return response

    @app.errorhandler(RateLimitExceeded)
    def rate_limited(error: RateLimitExceeded) -> tuple[Response, int]:
        return jsonify(error="rate_limited", message=RATE_LIMITED_MESSAGE), 429

    signing = settings.slack_signing_secret
    verifier = SignatureVerifier(signing.get_secret_value()) if signing else None

    @app.post("/slack/events")
    @limiter.exempt
    def slack_events() -> Response | tuple[Response, int]:
        # The signature is checked here, before Bolt: Bolt parses the body first, so an unsigned
        # malformed body from anyone was a 500 with a traceback in the log. In Socket Mode
        # without a signing secret nothing may arrive here at all.
        request.max_content_length = SLACK_BODY_LIMIT_BYTES
        if verifier is None or not verifier.is_valid_request(request.get_data(), request.headers):
            log.info(INVALID_SIGNATURE_LOG)  # never the body: it may hold what someone typed
            return jsonify(error="invalid request"), 401
        return slack_handler.handle(request)

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify(ok=True, schema_version=schema_version)

    @app.get("/favicon.ico")
    def favicon() -> tuple[str, int]:
        return "", 204

    @app.get("/credentials/<secret_id>")
    def credential_page(secret_id: str) -> Response:
        # The same bytes for every id: a link preview or a guesser learns nothing, consumes nothing.
        return Response(page, mimetype="text/html")

    @app.post("/credentials/<secret_id>")
    @limiter.limit(settings.reveal_rate_limit)
    def credential_reveal(secret_id: str) -> tuple[Response, int]:
        name, value = REVEAL_HEADER
        if request.headers.get(name) != value or request.get_data():
            return jsonify(error="bad_request", message=BAD_REVEAL_MESSAGE), 400
        claimed = reveals.reveal(secret_id) if SECRET_ID_PATTERN.match(secret_id) else None
        if claimed is None:
            return jsonify(error="gone", message=GONE_MESSAGE), 410
        nonce, ciphertext = claimed
        return jsonify(iv=b64url(nonce), ciphertext=b64url(ciphertext)), 200

    return app
