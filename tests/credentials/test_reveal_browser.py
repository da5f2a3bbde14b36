"""The one-time link in a real browser (headless Chromium) against the real bot process.

The bot runs under gunicorn with two workers (``module_bot``), so the real headers and CSP
apply and "exactly one reveal" holds across processes. Secrets are sealed straight into the
bot's database with the bot's own sealing code, which keeps these tests to a few seconds; the
full Slack-to-link path is in test_end_to_end.py. Fake secrets are random per run, and checks
name what leaked, never print it.
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import string
import threading
from datetime import timedelta
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from bot.credentials.sealing import record_seal_key
from bot.credentials.vault import b64url_decode, credentials_plaintext, open_sealed, seal
from bot.domain.ids import link_digest
from bot.domain.models import AccessType, CreatedCredentials, RequestForm, utcnow
from bot.domain.records import NewSecret
from bot.domain.rules import PasswordPolicy, generate_password
from bot.domain.seal import RecordSeal
from bot.sandbox.processes import http
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, BOT_TOKEN, RECIPIENT, REQUESTER, STRANGER
from tests.support.csv_readers import CSV_HEADER, read_like_aws_configure_import, read_with_python_csv

REVEAL = {"X-Requested-With": "reveal"}
SLACKBOT = {"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"}
FIELDS = ("user_name", "console_url", "password", "access_key_id", "secret_access_key")


def fake_credentials(user_name: str, access_key_id: str | None = None) -> CreatedCredentials:
    upper = string.ascii_uppercase + string.digits
    alphabet = string.ascii_letters + string.digits + "/+"
    return CreatedCredentials(
        user_name=user_name,
        console_url="https://123456789012.signin.aws.amazon.com/console",
        password=generate_password(PasswordPolicy()),
        access_key_id=access_key_id or "AKIA" + "".join(secrets.choice(upper) for _ in range(16)),
        secret_access_key="".join(secrets.choice(alphabet) for _ in range(40)),
    )


def seed(bot, credentials: CreatedCredentials) -> tuple[str, str]:
    """Seal ``credentials`` into the running bot's database as provisioning would; ``(id, link)``."""
    store = SqliteStore(bot.database_path)
    form = RequestForm(
        recipients=(RECIPIENT,),
        user_names=(credentials.user_name,),
        access_types=frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
        justification="browser test",
    )
    request = store.create_request(REQUESTER, form)
    sealed = seal(credentials_plaintext(credentials))
    record = NewSecret(
        secret_id=link_digest(sealed.secret_id),
        request_id=request.id,
        recipient=RECIPIENT,
        user_name=credentials.user_name,
        nonce=sealed.nonce,
        ciphertext=sealed.ciphertext,
        expires_at=utcnow() + timedelta(hours=1),
        access_key_id=credentials.access_key_id,
        console=True,
    )
    # Sealed with the running bot's key, as its Links seal every record they write.
    store.put_secret(dataclasses.replace(record, seal=RecordSeal(record_seal_key(BOT_TOKEN)).link(record)))
    store.close()
    return sealed.secret_id, f"{bot.url}/credentials/{sealed.secret_id}#{sealed.key}"


def state(bot, link_id: str) -> str:
    return SqliteStore(bot.database_path).secret_row(link_digest(link_id)).state


def assert_csv_reads_right(csv_text: str, credentials: CreatedCredentials) -> None:
    """Python's csv reads every field back; ``aws configure import`` takes the right three."""
    rows = read_with_python_csv(csv_text)
    assert len(rows) == 1 and mismatches(rows[0], credentials) == [], "Python's csv misreads the file"
    imported = read_like_aws_configure_import(csv_text)
    expected = {k: getattr(credentials, k) for k in ("user_name", "access_key_id", "secret_access_key")}
    assert imported == [expected], "aws configure import would misread the file"


def reveal_in_browser(chromium, link: str):  # type: ignore[no-untyped-def]
    """Open ``link`` in a fresh context and click Reveal; returns ``(context, page)``."""
    context = chromium.new_context(accept_downloads=True)
    page = context.new_page()
    page.goto(link)
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        page.click("#reveal")
    assert answer.value.status == 200
    page.wait_for_selector("#credentials", state="visible")
    return context, page


def test_the_csv_of_odd_but_legal_values_reads_right_both_ways(module_bot, chromium) -> None:
    """A name starting with "-" and holding + = . @ _, a password with a space, quote-like and
    shell characters and Latin-1 letters: all legal, all read back exactly by both readers."""
    credentials = fake_credentials("-ana+ops=1.x_y@corp").model_copy(update={"password": "Pä ss#$'wörd 1!~ÿ`;"})
    _secret_id, link = seed(module_bot, credentials)
    context, page = reveal_in_browser(chromium, link)
    try:
        assert page.is_enabled("#download_csv") and page.locator("#csv_unsafe").is_hidden()
        with page.expect_download() as download:
            page.click("#download_csv")
        csv_text = Path(download.value.path()).read_text(encoding="utf-8")
        assert_csv_reads_right(csv_text, credentials)
    finally:
        context.close()


def test_no_csv_is_offered_for_a_value_the_layout_cannot_carry(module_bot, chromium) -> None:
    """A comma in a user name (a request filed before the wizard refused it): the page shows the
    values but offers no file that either reader would get wrong, and says why."""
    credentials = fake_credentials("ana+ops=1,x.y@corp")
    _secret_id, link = seed(module_bot, credentials)
    context, page = reveal_in_browser(chromium, link)
    try:
        assert page.input_value("#user_name") == credentials.user_name
        assert page.is_disabled("#download_csv")
        assert "cannot carry" in page.inner_text("#csv_unsafe")
    finally:
        context.close()


def mismatches(got: dict[str, str | None], credentials: CreatedCredentials) -> list[str]:
    return [name for name in FIELDS if got.get(name) != getattr(credentials, name)]


def test_preview_consumes_nothing_reveal_shows_values_csv_imports_reload_is_gone(
    module_bot, module_slack, chromium, tmp_path: Path
) -> None:
    bot = module_bot
    credentials = fake_credentials("bria.browser")
    secret_id, link = seed(bot, credentials)

    # Slack's link expander (and anyone else) GETs the page: same bytes as any id, nothing consumed.
    preview = http("GET", link.split("#")[0], headers=SLACKBOT)
    other = http("GET", f"{bot.url}/credentials/{'A' * 24}", headers=SLACKBOT)
    assert preview.status == 200 and preview.body == other.body
    assert http("HEAD", link.split("#")[0], headers=SLACKBOT).status == 200
    assert state(bot, secret_id) == "sealed"

    context = chromium.new_context(accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=bot.url)
    page = context.new_page()
    csp_errors: list[str] = []
    page.on("console", lambda m: csp_errors.append(m.text) if "Content Security Policy" in m.text else None)
    try:
        page.goto(link)
        intro = page.inner_text("#intro")
        assert "shown only once" in intro
        assert state(bot, secret_id) == "sealed"  # loading the page (and its JS) consumed nothing

        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("#reveal")
        assert answer.value.status == 200
        page.wait_for_selector("#credentials", state="visible")
        shown = {name: page.input_value(f"#{name}") for name in FIELDS}
        assert mismatches(shown, credentials) == []
        for name in FIELDS:
            assert page.locator(f'button.copy[data-copy="{name}"]').count() == 1
        page.click('button.copy[data-copy="secret_access_key"]')
        copied = page.evaluate("navigator.clipboard.readText()")
        assert copied == credentials.secret_access_key, "the copy button did not copy the secret access key"
        words = page.inner_text("#credentials")
        for phrase in ("shown only once", "Console sign-in URL", "MFA", "up to a minute", "aws configure import"):
            assert phrase in words
        assert "#" not in page.url  # the key left the address bar after use

        with page.expect_download() as download:
            page.click("#download_csv")
        csv_text = Path(download.value.path()).read_text(encoding="utf-8")
        assert csv_text.splitlines()[0] == CSV_HEADER
        assert_csv_reads_right(csv_text, credentials)
        assert state(bot, secret_id) == "revealed"

        # A reload (or a second person) finds the link used up: 410, and the page says what to do.
        page.goto(link)  # the same document: only the fragment comes back...
        page.reload()  # ...so reload, as the recipient would
        with page.expect_response(lambda r: r.request.method == "POST") as again:
            page.click("#reveal")
        assert again.value.status == 410
        page.wait_for_function("document.getElementById('status').textContent.includes('re-issue')")
        assert page.locator("#credentials").is_hidden()
        assert csp_errors == []
    finally:
        context.close()

    # The second attempt raised the interception alert, once, after the 410 had been answered.
    alert = module_slack.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == APPROVAL_CHANNEL and "bria.browser" in c.args.get("text", ""),
    )
    assert "rotate_credentials" in json.dumps(alert[0].args["blocks"])
    module_slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{RECIPIENT}" and "bria.browser" in c.args["text"]
    )


def test_two_concurrent_reveals_get_exactly_one_200(module_bot) -> None:
    for n in range(4):
        secret_id, link = seed(module_bot, fake_credentials(f"cora.concurrent{n}"))
        url = link.split("#")[0]
        barrier = threading.Barrier(2)
        statuses: list[int] = []

        def post(url: str = url, barrier: threading.Barrier = barrier, statuses: list[int] = statuses) -> None:
            barrier.wait()
            statuses.append(http("POST", url, headers=REVEAL).status)

        threads = [threading.Thread(target=post) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(statuses) == [200, 410]
        assert state(module_bot, secret_id) == "revealed"


def test_database_holds_no_plaintext_and_nothing_that_decrypts_without_the_fragment(module_bot) -> None:
    credentials = fake_credentials("dana.database")
    secret_id, link = seed(module_bot, credentials)
    key = link.split("#", 1)[1]
    raw_key = b64url_decode(key)
    files = sorted(Path(module_bot.database_path).parent.glob("bot.db*"))
    data = b"".join(p.read_bytes() for p in files)
    text = data.decode("latin-1")
    leaks = [
        label
        for label, value in (
            ("password", credentials.password),
            ("secret access key", credentials.secret_access_key),
            ("link key (base64url)", key),
            ("link id", secret_id),
        )
        if value in text
    ]
    leaks += ["link key (raw bytes)"] if raw_key in data else []
    assert leaks == []

    with SqliteStore(module_bot.database_path).transaction() as conn:
        nonce, ciphertext = conn.execute(
            "SELECT nonce, ciphertext FROM secrets WHERE id = ?", (link_digest(secret_id),)
        ).fetchone()
    aad = secret_id.encode()
    assert json.loads(open_sealed(secret_id, key, nonce, ciphertext))["user_name"] == "dana.database"  # control
    # Nothing in the files works as the key: try every 32-byte window (and base64url words) on it.
    windows = {data[i : i + 32] for i in range(len(data) - 31)}
    opened = 0
    for candidate in windows:
        try:
            AESGCM(candidate).decrypt(nonce, ciphertext, aad)
            opened += 1
        except InvalidTag:
            pass
    assert opened == 0 and len(windows) > 1000

    # Once revealed, the ciphertext is gone from the row.
    assert http("POST", link.split("#")[0], headers=REVEAL).status == 200
    with SqliteStore(module_bot.database_path).transaction() as conn:
        row = conn.execute(
            "SELECT nonce, ciphertext, state FROM secrets WHERE id = ?", (link_digest(secret_id),)
        ).fetchone()
    assert row == (None, None, "revealed")


def test_send_a_new_link_button_in_slack_mints_new_credentials(module_bot, module_slack, iam) -> None:
    bot = module_bot
    iam.create_user(UserName="noel.newlink", Tags=[{"Key": "iam-user-bot:managed", "Value": "true"}])
    iam.create_login_profile(UserName="noel.newlink", Password="Old-Passw0rd!abcdefXYZ", PasswordResetRequired=True)
    old_key = iam.create_access_key(UserName="noel.newlink")["AccessKey"]
    credentials = fake_credentials("noel.newlink", old_key["AccessKeyId"])
    secret_id, old_link = seed(bot, credentials)
    # As provisioning tags it: the link's request and recipient (what a new link is checked against).
    store = SqliteStore(bot.database_path)
    row = store.secret_row(link_digest(secret_id))
    store.close()
    assert row is not None
    tags = {"iam-user-bot:request-id": row.request_id, "iam-user-bot:owner": RECIPIENT}
    iam.tag_user(UserName="noel.newlink", Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    # A stranger clicks it (say, in their App Home, which has no channel): refused by DM, nothing changes.
    refused = bot.user.home_block_action(
        STRANGER,
        "resend_credential_link",
        link_digest(secret_id),
        view={"id": "V0HOME", "type": "home"},
        block_id="links",
    )
    assert refused.status == 200
    module_slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{STRANGER}" and "Only" in c.args["text"]
    )
    assert state(bot, secret_id) == "sealed"

    clicked = bot.user.block_action(
        RECIPIENT, "resend_credential_link", link_digest(secret_id), channel=f"D{RECIPIENT}", message_ts="1.000002"
    )
    assert clicked.status == 200
    ephemeral = module_slack.wait_for(
        "chat.postEphemeral",
        lambda c: c.args.get("user") == RECIPIENT and "noel.newlink" in json.dumps(c.args.get("blocks")),
        timeout=30,
    )[-1]
    blocks = ephemeral.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    new_link = next(e["url"] for b in blocks if b["type"] == "actions" for e in b["elements"] if "url" in e)
    assert http("POST", old_link.split("#")[0], headers=REVEAL).status == 410
    answer = http("POST", new_link.split("#")[0], headers=REVEAL)
    assert answer.status == 200
    new_id, new_key = new_link.rsplit("/", 1)[1].split("#", 1)
    sealed = answer.json()
    fresh = json.loads(open_sealed(new_id, new_key, b64url_decode(sealed["iv"]), b64url_decode(sealed["ciphertext"])))
    keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName="noel.newlink")["AccessKeyMetadata"]]
    assert keys == [fresh["access_key_id"]] and fresh["access_key_id"] != old_key["AccessKeyId"]
    assert fresh["password"] != credentials.password and fresh["user_name"] == "noel.newlink"
    module_slack.wait_for(
        "chat.postEphemeral", lambda c: c.args.get("user") == RECIPIENT and "no longer work" in c.args.get("text", "")
    )
