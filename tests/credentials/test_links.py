"""One-time link life, in process: expiry, re-issue, resend and the reuse alert.

Real IAM calls go to moto server, real Slack calls to the stand-in; the clock is controlled
so expiry needs no waiting. moto does not keep everything IAM does (design.md), so password
resets are asserted on the parameters boto3 really sent, recorded by an event hook (with the
password itself replaced by a flag: it must never reach test output).
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from bot.app import build_bot, build_services
from bot.aws.iam import IamGateway
from bot.config import Settings, load_settings
from bot.credentials.links import IssuedLink
from bot.credentials.vault import b64url_decode, open_sealed
from bot.domain.ids import link_digest
from bot.domain.models import AccessType, CreatedCredentials, RequestForm
from bot.services import Services
from bot.slack.messenger import make_web_client
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN, RECIPIENT, REQUESTER, STRANGER, Clock


@dataclass
class World:
    services: Services
    store: SqliteStore
    clock: Clock
    iam: Any
    slack: Any
    executor: ThreadPoolExecutor
    settings: Settings
    sent: list[dict[str, Any]] = field(default_factory=list)

    def calls_to(self, operation: str) -> list[dict[str, Any]]:
        return [c for c in self.sent if c["operation"] == operation]


@pytest.fixture
def world(moto_server, iam, slack, tmp_path: Path, clock: Clock):
    settings = load_settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret="unused-here",
        slack_api_url=slack.base_url,
        approval_channel_id=APPROVAL_CHANNEL,
        approver_user_ids=f"{APPROVER},{RECIPIENT}",  # the recipient is an approver too: still refused
        public_base_url="https://bot.example.com",
        credential_link_ttl_seconds=3600,
    )
    store = SqliteStore(tmp_path / "links.db", clock=clock)
    bot_iam = moto_server.boto3_client("iam")
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        safe = {k: v for k, v in params.items() if k not in {"Password", "NewPassword"}}
        sent.append({"operation": model.name, **safe, "has_password": "Password" in params})

    bot_iam.meta.events.register("provide-client-params.iam.*", record)
    gateway = IamGateway(bot_iam, moto_server.boto3_client("sts"), sleep=lambda _: None)
    executor = ThreadPoolExecutor(max_workers=1)  # FIFO: one no-op submit drains earlier work
    client = make_web_client(BOT_TOKEN, slack.base_url)
    services = build_services(settings, store=store, iam=gateway, client=client, executor=executor)
    yield World(services, store, clock, iam, slack, executor, settings, sent)
    executor.shutdown(wait=True)
    services.close()


def make_user(world: World, name: str) -> CreatedCredentials:
    """An IAM user with a login profile and an access key, as provisioning leaves it."""
    world.iam.create_user(UserName=name, Tags=[{"Key": "iam-user-bot:managed", "Value": "true"}])
    world.iam.create_login_profile(UserName=name, Password="Initial-Passw0rd!xyzXYZ", PasswordResetRequired=True)
    key = world.iam.create_access_key(UserName=name)["AccessKey"]
    return CreatedCredentials(
        user_name=name,
        console_url="https://123456789012.signin.aws.amazon.com/console",
        password="Initial-Passw0rd!xyzXYZ",
        access_key_id=key["AccessKeyId"],
        secret_access_key=key["SecretAccessKey"],
    )


def issue(world: World, name: str) -> tuple[CreatedCredentials, IssuedLink]:
    credentials = make_user(world, name)
    form = RequestForm(
        recipients=(RECIPIENT,),
        user_names=(name,),
        access_types=frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
        justification="test",
    )
    request = world.store.create_request(REQUESTER, form)
    issued = world.services.links.issue(request.id, RECIPIENT, credentials)
    world.services.links.deliver(request.id, RECIPIENT, name, credentials.console_url, issued)
    return credentials, issued


def blocks_of(call) -> list[dict[str, Any]]:
    blocks = call.args.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else blocks


def buttons(call) -> list[dict[str, Any]]:
    return [e for b in blocks_of(call) if b["type"] == "actions" for e in b["elements"]]


def newest_link(world: World) -> str:
    call = world.slack.wait_for("chat.postEphemeral", lambda c: c.args.get("user") == RECIPIENT)[-1]
    urls = [b["url"] for b in buttons(call) if "url" in b]
    assert len(urls) == 1
    return urls[0]


def reveal(world: World, link: str) -> dict[str, Any] | None:
    """Reveal as the browser does; the decrypted credentials, or None for a 410."""
    secret_id, key = link.rsplit("/", 1)[1].split("#", 1)
    claimed = world.services.reveals.reveal(secret_id)
    if claimed is None:
        return None
    return json.loads(open_sealed(secret_id, key, *claimed))


def key_ids(world: World, name: str) -> dict[str, str]:
    return {k["AccessKeyId"]: k["Status"] for k in world.iam.list_access_keys(UserName=name)["AccessKeyMetadata"]}


def test_delivery_puts_the_link_only_in_the_ephemeral_message(world: World) -> None:
    credentials, issued = issue(world, "dora.delivery")
    ephemeral = world.slack.wait_for("chat.postEphemeral", lambda c: c.args.get("user") == RECIPIENT)[-1]
    assert ephemeral.args["channel"] == f"D{RECIPIENT}"
    assert [b.get("url") for b in buttons(ephemeral)] == [issued.link]
    text = json.dumps(blocks_of(ephemeral))
    assert "dora.delivery" in text and credentials.console_url in text and "<!date^" in text
    assert issued.link not in ephemeral.args["text"]
    notice = world.slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == f"D{RECIPIENT}")[-1]
    assert [(b["action_id"], b["value"]) for b in buttons(notice)] == [("resend_credential_link", issued.secret_id)]
    slack_text = json.dumps([c.args for c in world.slack.calls()])
    leaks = [
        label
        for label, secret in (("password", credentials.password), ("secret access key", credentials.secret_access_key))
        if secret in slack_text
    ]
    assert leaks == []
    key = issued.link.split("#", 1)[1]
    assert [c.method for c in world.slack.calls() if key in json.dumps(c.args)] == ["chat.postEphemeral"]
    assert (ephemeral.args.get("unfurl_links"), ephemeral.args.get("unfurl_media")) == (False, False)
    row = world.store.secret_row(issued.secret_id)
    assert (row.notice_channel, row.access_key_id, row.console) == (f"D{RECIPIENT}", credentials.access_key_id, True)


def test_unopened_link_expires_key_deactivated_password_reset_everyone_told(world: World) -> None:
    credentials, issued = issue(world, "ed.expiry")
    assert world.services.link_expiry.expire_due() == []  # not due yet
    world.clock.advance(seconds=3601)
    # Two workers sweep at once: the compare-and-set lets exactly one do the work.
    barrier = threading.Barrier(2)
    results: list[list[str]] = []

    def sweep() -> None:
        barrier.wait()
        results.append(world.services.link_expiry.expire_due())

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results, key=len) == [[], [issued.secret_id]]
    row = world.store.secret_row(issued.secret_id)
    assert row.state == "expired" and row.expiry_done_at is not None
    assert key_ids(world, "ed.expiry") == {credentials.access_key_id: "Inactive"}
    resets = world.calls_to("UpdateLoginProfile")
    assert [(c["UserName"], c["PasswordResetRequired"], c["has_password"]) for c in resets] == [
        ("ed.expiry", True, True)
    ]
    assert reveal(world, issued.link) is None
    with world.store.transaction() as conn:
        assert conn.execute("SELECT ciphertext FROM secrets WHERE id = ?", (issued.secret_id,)).fetchone()[0] is None
    dms = {c.args["channel"] for c in world.slack.calls("chat.postMessage") if "expired" in c.args.get("text", "")}
    assert {f"D{RECIPIENT}", f"D{REQUESTER}"} <= dms
    note = world.slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == APPROVAL_CHANNEL)[-1]
    assert [(b["action_id"], b["value"]) for b in buttons(note)] == [("reissue_credentials", issued.secret_id)]
    notice = next(m for m in world.slack.messages(f"D{RECIPIENT}") if m["ts"] == row.notice_ts)
    assert "expired" in notice["text"] and "resend_credential_link" not in json.dumps(notice["blocks"])
    assert world.services.link_expiry.expire_due() == []
    events = [e.event for e in world.store.audit_events()]
    assert events.count("link_expired") == 1 and events.count("link_expiry_done") == 1

    # Re-issue: refused for a stranger and for the recipient (even though an approver), done by an approver.
    assert not world.services.reissues.rotate(issued.secret_id, STRANGER).ok
    assert not world.services.reissues.rotate(issued.secret_id, RECIPIENT).ok
    assert key_ids(world, "ed.expiry") == {credentials.access_key_id: "Inactive"}
    outcome = world.services.reissues.rotate(issued.secret_id, APPROVER)
    assert outcome.ok, outcome.message
    fresh = reveal(world, newest_link(world))
    assert fresh is not None and fresh["user_name"] == "ed.expiry"
    assert key_ids(world, "ed.expiry") == {fresh["access_key_id"]: "Active"}
    assert fresh["access_key_id"] != credentials.access_key_id and fresh["password"] != credentials.password
    assert world.calls_to("UpdateLoginProfile")[-1]["PasswordResetRequired"] is True
    assert not world.services.reissues.rotate(issued.secret_id, APPROVER).ok  # once per secret


def test_stale_expiry_claim_is_retaken_after_the_lease(world: World) -> None:
    _, issued = issue(world, "lena.lease")
    world.clock.advance(seconds=3601)
    assert world.store.claim_expiry(issued.secret_id, lease_seconds=300) is not None  # a worker that then died
    assert world.services.link_expiry.expire_due(lease_seconds=300) == []
    world.clock.advance(seconds=301)
    assert world.services.link_expiry.expire_due(lease_seconds=300) == [issued.secret_id]
    assert world.store.secret_row(issued.secret_id).expiry_done_at is not None


def test_send_a_new_link_mints_new_credentials_and_kills_the_old_link(world: World) -> None:
    credentials, issued = issue(world, "rhea.resend")
    assert not world.services.reissues.resend(issued.secret_id, STRANGER).ok
    assert world.store.secret_row(issued.secret_id).state == "sealed"
    outcome = world.services.reissues.resend(issued.secret_id, RECIPIENT)
    assert outcome.ok, outcome.message
    assert reveal(world, issued.link) is None  # the old link is dead
    new_link = newest_link(world)
    assert new_link != issued.link
    fresh = reveal(world, new_link)
    assert fresh is not None
    assert key_ids(world, "rhea.resend") == {fresh["access_key_id"]: "Active"}
    assert fresh["access_key_id"] != credentials.access_key_id
    assert fresh["password"] != credentials.password and len(fresh["password"]) >= 20
    reset = world.calls_to("UpdateLoginProfile")[-1]
    assert (reset["PasswordResetRequired"], reset["has_password"]) == (True, True)
    assert [c["AccessKeyId"] for c in world.calls_to("DeleteAccessKey")] == [credentials.access_key_id]
    # The old notice lost its button; once revealed, no more resends.
    old = world.store.secret_row(issued.secret_id)
    assert old.state == "superseded" and old.reissued_by == RECIPIENT
    old_notice = next(m for m in world.slack.messages(f"D{RECIPIENT}") if m["ts"] == old.notice_ts)
    assert "resend_credential_link" not in json.dumps(old_notice["blocks"])
    assert not world.services.reissues.resend(issued.secret_id, RECIPIENT).ok
    new_id = link_digest(new_link.rsplit("/", 1)[1].split("#")[0])
    assert world.store.secret_row(new_id).replaces == issued.secret_id
    refused = world.services.reissues.resend(new_id, RECIPIENT)
    assert not refused.ok and "already revealed" in refused.message
    events = [e.event for e in world.store.audit_events()]
    assert "credentials_rotated" in events and "link_reissued" in events and events.count("refused_resend") >= 2


def test_two_racing_resend_clicks_mint_credentials_once(world: World) -> None:
    _, issued = issue(world, "rita.race")
    barrier = threading.Barrier(2)
    outcomes = []

    def click() -> None:
        barrier.wait()
        outcomes.append(world.services.reissues.resend(issued.secret_id, RECIPIENT).ok)

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False, True]
    assert len(world.calls_to("CreateAccessKey")) == 1
    assert len(key_ids(world, "rita.race")) == 1


def test_second_reveal_attempt_alerts_once_and_approver_rotates(world: World) -> None:
    credentials, issued = issue(world, "ivan.intercept")
    first = reveal(world, issued.link)
    assert first is not None and first["access_key_id"] == credentials.access_key_id
    for _ in range(3):
        assert reveal(world, issued.link) is None
    alert = world.slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == APPROVAL_CHANNEL and "interception" in c.args["text"]
    )
    world.slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{RECIPIENT}" and "again" in c.args["text"]
    )
    world.executor.submit(lambda: None).result()  # drain the background work of the later attempts
    alerts = [
        c
        for c in world.slack.calls("chat.postMessage")
        if c.args.get("channel") == APPROVAL_CHANNEL and "interception" in c.args["text"]
    ]
    assert len(alerts) == 1
    assert [(b["action_id"], b["value"]) for b in buttons(alert[0])] == [("rotate_credentials", issued.secret_id)]
    assert [e.event for e in world.store.audit_events()].count("link_reuse_detected") == 1
    # The recipient's notice now says it was revealed, without the resend button.
    row = world.store.secret_row(issued.secret_id)
    notice = next(m for m in world.slack.messages(f"D{RECIPIENT}") if m["ts"] == row.notice_ts)
    assert "revealed" in notice["text"] and "resend_credential_link" not in json.dumps(notice["blocks"])

    # Rotation: the recipient may not, an approver may, once; the alert message loses its button.
    assert not world.services.reissues.rotate(issued.secret_id, RECIPIENT).ok
    alert_ts = alert[0].response["ts"]
    assert world.services.reissues.rotate(issued.secret_id, APPROVER, (APPROVAL_CHANNEL, alert_ts)).ok
    fresh = reveal(world, newest_link(world))
    assert fresh is not None and key_ids(world, "ivan.intercept") == {fresh["access_key_id"]: "Active"}
    updated = next(m for m in world.slack.messages(APPROVAL_CHANNEL) if m["ts"] == alert_ts)
    assert "rotate_credentials" not in json.dumps(updated["blocks"]) and APPROVER in updated["text"] + json.dumps(
        updated["blocks"]
    )
    assert credentials.access_key_id not in key_ids(world, "ivan.intercept")


def test_links_are_decryptable_only_with_their_fragment(world: World) -> None:
    credentials, issued = issue(world, "kim.key")
    secret_id, key = issued.link.rsplit("/", 1)[1].split("#", 1)
    assert issued.secret_id == link_digest(secret_id) != secret_id
    with world.store.transaction() as conn:
        nonce, ciphertext = conn.execute(
            "SELECT nonce, ciphertext FROM secrets WHERE id = ?", (issued.secret_id,)
        ).fetchone()
    assert len(b64url_decode(key)) == 32 and len(nonce) == 12
    assert json.loads(open_sealed(secret_id, key, nonce, ciphertext))["user_name"] == "kim.key"
    other_key = issue(world, "kim.other")[1].link.split("#", 1)[1]
    with pytest.raises(InvalidTag):
        open_sealed(secret_id, other_key, nonce, ciphertext)
    with pytest.raises(InvalidTag):  # the id is the associated data: a ciphertext is bound to its link
        open_sealed(secret_id[:-1] + ("A" if secret_id[-1] != "A" else "B"), key, nonce, ciphertext)
    plain = open_sealed(secret_id, key, nonce, ciphertext).decode()
    assert credentials.secret_access_key in plain  # the control: the fragment's key does open it


def test_console_url_uses_the_account_alias_when_there_is_one(world: World) -> None:
    assert world.services.iam.console_url() == "https://123456789012.signin.aws.amazon.com/console"
    world.iam.create_account_alias(AccountAlias="example-dev")
    try:
        assert world.services.iam.console_url() == "https://example-dev.signin.aws.amazon.com/console"
    finally:
        world.iam.delete_account_alias(AccountAlias="example-dev")


def test_build_bot_runs_the_link_expiry_job(moto_server, slack, tmp_path: Path, monkeypatch) -> None:
    for name, value in moto_server.client_env().items():
        monkeypatch.setenv(name, value)
    settings = load_settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret="unused-here",
        slack_api_url=slack.base_url,
        approval_channel_id=APPROVAL_CHANNEL,
        approver_user_ids=APPROVER,
        public_base_url="https://bot.example.com",
        database_path=tmp_path / "built.db",
    )
    bot = build_bot(settings)
    jobs = bot.services.jobs
    try:
        scheduler = jobs._scheduler
        assert scheduler is not None and scheduler.running
        job = scheduler.get_job("link_expiry")
        assert job is not None and job.args[0].work == bot.services.link_expiry.expire_due
    finally:
        bot.services.close()
    assert jobs._scheduler is None


def test_a_forged_link_id_is_cut_in_the_audit_log(world) -> None:
    forged = "<!channel>`*" + "B" * 4990
    for action in (world.services.reissues.resend, world.services.reissues.rotate):
        assert not action(forged, RECIPIENT).ok
    refusals = [e for e in world.store.audit_events() if e.event in ("refused_resend", "refused_rotate")]
    assert [e.event for e in refusals] == ["refused_resend", "refused_rotate"]
    assert all(len(str(e.detail["secret_id"])) <= 40 and "<!channel>" not in str(e.detail) for e in refusals)
