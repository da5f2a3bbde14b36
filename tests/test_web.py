"""The reveal endpoint in process (Flask's test client): headers, no oracle, CSRF guard,
rate limit and the trusted-proxy setting. The browser tests run the same app under gunicorn."""

from __future__ import annotations

import json
import logging
import re
import time
from concurrent.futures import Executor, Future
from datetime import timedelta
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path

import pytest
from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.signature import SignatureVerifier

from bot.app import build_services
from bot.aws.iam import IamGateway
from bot.config import load_settings
from bot.domain.ids import link_digest
from bot.domain.models import AccessType, CreatedCredentials, RequestForm
from bot.services import Services
from bot.storage.sqlite import SqliteStore
from bot.web import SLACK_BODY_LIMIT_BYTES, create_flask
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER, Clock
from tests.support.provisioning import OPEN

REVEAL = {"X-Requested-With": "reveal"}
SLACKBOT = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}


class Deferred(Executor):
    """Keeps submitted work instead of running it: the HTTP answer must not wait for Slack or IAM."""

    def __init__(self) -> None:
        self.jobs: list[tuple[object, tuple]] = []

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[override]
        self.jobs.append((fn, args))
        return Future()


def make_app(tmp_path: Path, **overrides: object):
    settings = load_settings(
        slack_bot_token="xoxb-unused-0000",
        slack_signing_secret="unused",
        approval_channel_id=APPROVAL_CHANNEL,
        approver_user_ids=APPROVER,
        public_base_url="https://bot.example.com",
        **overrides,
    )
    clock = Clock()
    store = SqliteStore(tmp_path / "web.db", clock=clock)
    client = WebClient(token="xoxb-unused-0000", base_url="http://127.0.0.1:9/")  # never called here
    services = build_services(settings, store=store, iam=IamGateway(None, None), client=client, executor=Deferred())
    OPEN.append(services)
    bolt = App(client=client, signing_secret="unused", token_verification_enabled=False)
    app = create_flask(bolt, services.reveals, settings)
    return app, store, services, clock


def seal_one(store: SqliteStore, services: Services) -> tuple[str, str]:
    """One sealed link: ``(link id, link)``; the store knows it as ``link_digest(link id)``."""
    form = RequestForm(
        recipients=(RECIPIENT,), user_names=("wes.web",), access_types=frozenset({AccessType.PROGRAMMATIC})
    )
    request = store.create_request(REQUESTER, form)
    issued = services.links.issue(
        request.id,
        RECIPIENT,
        CreatedCredentials(user_name="wes.web", access_key_id="AKIAEXAMPLE", secret_access_key="x" * 40),
    )
    link_id = issued.link.rsplit("/", 1)[1].split("#", 1)[0]
    assert issued.secret_id == link_digest(link_id)
    return link_id, issued.link


@pytest.fixture
def web(tmp_path: Path):
    return make_app(tmp_path, reveal_rate_limit="1000 per minute")


def assert_secure(response) -> None:
    headers = response.headers
    assert headers["Cache-Control"] == "no-store"
    assert headers["Referrer-Policy"] == "no-referrer"
    assert "noindex" in headers["X-Robots-Tag"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    csp = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert csp["default-src"] == "'none'" and csp["script-src"] == "'self'" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in headers["Content-Security-Policy"]


def test_every_response_carries_the_security_headers(web) -> None:
    app, store, services, _ = web
    secret_id, _ = seal_one(store, services)
    client = app.test_client()
    for response in (
        client.get(f"/credentials/{secret_id}"),
        client.get("/static/reveal.js"),
        client.get("/static/reveal.css"),
        client.get("/healthz"),
        client.get("/nowhere"),
        client.post(f"/credentials/{secret_id}"),
        client.post("/credentials/unknown-id-unknown-id", headers=REVEAL),
        client.post(f"/credentials/{secret_id}", headers=REVEAL),
    ):
        assert_secure(response)
    assert client.get("/static/reveal.js").mimetype in {"text/javascript", "application/javascript"}


def test_get_is_the_same_for_every_id_and_consumes_nothing(web) -> None:
    app, store, services, clock = web
    client = app.test_client()
    live, _ = seal_one(store, services)
    used, _ = seal_one(store, services)
    expired, _ = seal_one(store, services)
    assert client.post(f"/credentials/{used}", headers=REVEAL).status_code == 200
    clock.now += timedelta(days=2)
    pages = {
        client.get(f"/credentials/{sid}", headers=SLACKBOT).data
        for sid in (live, used, expired, "x" * 24, "not-even-an-id")
    }
    assert len(pages) == 1 and b"Reveal" in pages.pop()
    client.head(f"/credentials/{live}")
    clock.now -= timedelta(days=2)
    assert store.secret_row(link_digest(live)).state == "sealed"
    assert client.post(f"/credentials/{live}", headers=REVEAL).status_code == 200


def test_only_an_exact_reveal_post_hands_out_and_only_once(web) -> None:
    app, store, services, _ = web
    client = app.test_client()
    secret_id, _ = seal_one(store, services)
    for kwargs in (
        {},
        {"headers": {"X-Requested-With": "XMLHttpRequest"}},
        {"headers": REVEAL, "data": b"x"},
        {"headers": {"Content-Type": "application/x-www-form-urlencoded"}, "data": b"a=1"},
    ):
        answer = client.post(f"/credentials/{secret_id}", **kwargs)
        assert answer.status_code == 400, kwargs
    assert store.secret_row(link_digest(secret_id)).state == "sealed"
    ok = client.post(f"/credentials/{secret_id}", headers=REVEAL)
    assert ok.status_code == 200 and set(ok.json) == {"iv", "ciphertext"}
    assert all(re.fullmatch(r"[A-Za-z0-9_-]+", v) for v in ok.json.values())
    gone = client.post(f"/credentials/{secret_id}", headers=REVEAL)
    assert gone.status_code == 410 and "re-issue" in gone.json["message"]
    unknown = client.post("/credentials/AAAAAAAAAAAAAAAAAAAAAAAA", headers=REVEAL)
    assert (unknown.status_code, unknown.json) == (410, gone.json)
    # The follow-up work (notice update, reuse check) was queued, not done before answering.
    queued = [(fn.__name__, args[0].__name__, args[1]) for fn, args in services.reveals.executor.jobs]
    assert queued == [
        ("_logged", "_after_reveal", link_digest(secret_id)),
        ("_logged", "_after_refused", link_digest(secret_id)),
        ("_logged", "_after_refused", link_digest("AAAAAAAAAAAAAAAAAAAAAAAA")),
    ]


def test_rate_limit_answers_429_per_client_and_consumes_nothing(tmp_path: Path) -> None:
    app, store, services, _ = make_app(tmp_path, reveal_rate_limit="3 per minute")
    client = app.test_client()
    secret_id, _ = seal_one(store, services)
    here = {"REMOTE_ADDR": "198.51.100.7"}
    for _ in range(3):
        assert (
            client.post("/credentials/AAAAAAAAAAAAAAAAAAAAAAAA", headers=REVEAL, environ_base=here).status_code == 410
        )
    limited = client.post(f"/credentials/{secret_id}", headers=REVEAL, environ_base=here)
    assert limited.status_code == 429 and "Retry-After" in limited.headers
    assert_secure(limited)
    assert store.secret_row(link_digest(secret_id)).state == "sealed"
    # Without a trusted proxy, X-Forwarded-For is the client's own claim and is ignored.
    spoofed = client.post(
        f"/credentials/{secret_id}", headers={**REVEAL, "X-Forwarded-For": "203.0.113.9"}, environ_base=here
    )
    assert spoofed.status_code == 429
    # The page itself is never limited, and another client is not affected.
    assert client.get(f"/credentials/{secret_id}", environ_base=here).status_code == 200
    other = client.post(f"/credentials/{secret_id}", headers=REVEAL, environ_base={"REMOTE_ADDR": "198.51.100.8"})
    assert other.status_code == 200


def test_trusted_proxy_count_takes_the_client_from_x_forwarded_for(tmp_path: Path) -> None:
    app, *_ = make_app(tmp_path, reveal_rate_limit="2 per minute", trusted_proxy_count=1)
    client = app.test_client()
    proxy = {"REMOTE_ADDR": "10.0.0.1"}
    for _ in range(2):
        answer = client.post(
            "/credentials/AAAAAAAAAAAAAAAAAAAAAAAA",
            headers={**REVEAL, "X-Forwarded-For": "198.51.100.7"},
            environ_base=proxy,
        )
        assert answer.status_code == 410
    blocked = client.post(
        "/credentials/AAAAAAAAAAAAAAAAAAAAAAAA",
        headers={**REVEAL, "X-Forwarded-For": "198.51.100.7"},
        environ_base=proxy,
    )
    assert blocked.status_code == 429
    # Behind one proxy, the address the proxy saw is the client; a forged extra hop does not help.
    forged = client.post(
        "/credentials/AAAAAAAAAAAAAAAAAAAAAAAA",
        headers={**REVEAL, "X-Forwarded-For": "1.2.3.4, 198.51.100.7"},
        environ_base=proxy,
    )
    assert forged.status_code == 429
    other = client.post(
        "/credentials/AAAAAAAAAAAAAAAAAAAAAAAA",
        headers={**REVEAL, "X-Forwarded-For": "198.51.100.8"},
        environ_base=proxy,
    )
    assert other.status_code == 410


class _Inline(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        self.problems += [f"{name} on <{tag}>" for name in names if name.startswith("on") or name == "style"]
        if tag == "style":
            self.problems.append("<style> element")


def test_the_page_has_no_inline_script_or_style() -> None:
    parser = _Inline()
    parser.feed(resources.files("bot.credentials").joinpath("static/credentials.html").read_text())
    assert parser.problems == []


def test_slack_events_refuses_unsigned_or_oversized_bodies_before_parsing_them(web, caplog) -> None:
    # Bolt parses the body before it checks the signature: an unsigned, malformed body from
    # anyone on the internet was a 500 with an ERROR traceback in the log, and a body of any
    # size was read and parsed first.
    app, _, _, _ = web
    client = app.test_client()
    with caplog.at_level(logging.INFO):
        for content_type, body in (("application/json", b"x"), ("application/x-www-form-urlencoded", b"payload=%7B")):
            answer = client.post("/slack/events", data=body, headers={"Content-Type": content_type})
            assert answer.status_code == 401 and answer.get_json() == {"error": "invalid request"}
            assert_secure(answer)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    huge = client.post(
        "/slack/events", data=b"{" + b" " * SLACK_BODY_LIMIT_BYTES + b"}", content_type="application/json"
    )
    assert huge.status_code == 413

    # A correctly signed request still reaches Bolt (url_verification answers its challenge).
    body = json.dumps({"type": "url_verification", "challenge": "c-123", "token": "legacy"})
    timestamp = str(int(time.time()))
    signature = SignatureVerifier("unused").generate_signature(timestamp=timestamp, body=body)
    signed = client.post(
        "/slack/events",
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-Slack-Request-Timestamp": timestamp,
            "X-Slack-Signature": signature,
        },
    )
    assert signed.status_code == 200 and signed.get_json() == {"challenge": "c-123"}


def test_what_a_copy_of_the_database_holds_can_neither_reveal_nor_burn_a_link(web) -> None:
    """README: a stolen database cannot burn or read a link. The copy's ids are digests."""
    app, store, services, _ = web
    client = app.test_client()
    link_id, _ = seal_one(store, services)
    (stored_id,) = [row[0] for row in store.db.conn.execute("SELECT id FROM secrets")]
    assert stored_id == link_digest(link_id) and link_id not in stored_id
    assert client.post(f"/credentials/{stored_id}", headers=REVEAL).status_code == 410
    assert store.secret_row(stored_id).state == "sealed"
    assert client.post(f"/credentials/{link_id}", headers=REVEAL).status_code == 200
