"""Owners who leave and credentials nobody uses, in process (moto server, the Slack stand-in, a
user's IAM dates moved back in the tests' moto server).

moto never reports a password's last use; the sandbox's moto server records one when a test posts
a console sign-in (:mod:`bot.sandbox.moto_iam`), which ``GetUser``/``ListUsers`` then report. A key
counts as used when a request signed with it reaches moto (here an STS call).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.domain.lifecycle import OWNER_LEFT, UNUSED_CREDENTIAL
from bot.lifecycle.messages import DISABLE_ACTION
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, STRANGER
from tests.lifecycle.conftest import Life
from tests.support.lifecycle import buttons_of, console_sign_in

OWNER_GONE = "U0LEAVER01"


def active_credentials(life: Life, name: str) -> list[str]:
    keys = [k for k, status in life.keys(name).items() if status == "Active"]
    try:
        life.iam.get_login_profile(UserName=name)
        return [*keys, "console password"]
    except life.iam.exceptions.NoSuchEntityException:
        return keys


def test_an_owner_leaving_disables_exactly_their_users(life: Life) -> None:
    life.slack.add_user(OWNER_GONE, name="lee.leaver", email="lee@example.com")
    life.user("lee.one", OWNER_GONE)
    life.user("lee.two", OWNER_GONE, console=False)
    life.user("nina.stays", RECIPIENT)
    life.iam.create_user(UserName="lee.by.hand", Tags=[{"Key": "iam-user-bot:owner", "Value": OWNER_GONE}])

    results = life.services.owners.departed(OWNER_GONE, source="event")

    assert sorted(results) == ["lee.one", "lee.two"]  # only the bot's users of theirs, as the store and tags agree
    assert active_credentials(life, "lee.one") == [] and active_credentials(life, "lee.two") == []
    assert life.iam.get_user(UserName="lee.one")["User"]["UserName"] == "lee.one"  # kept
    assert len(active_credentials(life, "nina.stays")) == 2
    (told,) = [p for p in life.posts() if OWNER_GONE in p["text"]]
    assert "lee.one" in str(told["blocks"]) and "lee.two" in str(told["blocks"])
    audited = [e for e in life.store.audit_events() if e.event == "owner_left_user_disabled"]
    assert sorted(e.detail["user_name"] for e in audited) == ["lee.one", "lee.two"]
    assert all(e.detail["source"] == "event" for e in audited)

    # The event again (a retry, or the periodic check after it): nothing more to switch off, no new message.
    life.services.owners.departed(OWNER_GONE, source="event")
    assert len([p for p in life.posts() if OWNER_GONE in p["text"]]) == 1
    finding = life.store.get_finding(OWNER_LEFT, OWNER_GONE)
    assert finding is not None and sorted(finding.detail["user_names"]) == ["lee.one", "lee.two"]  # type: ignore[arg-type]


def test_the_periodic_check_catches_a_deactivation_whose_event_never_came(life: Life) -> None:
    life.slack.add_user(OWNER_GONE, name="lee.leaver", email="lee@example.com")
    life.user("lee.one", OWNER_GONE)
    life.user("nina.stays", RECIPIENT)
    assert life.services.lifecycle_check.run().owners_left == []
    life.slack.deactivate_user(OWNER_GONE)

    assert life.services.lifecycle_check.run().owners_left == [OWNER_GONE]

    assert active_credentials(life, "lee.one") == []
    assert len(active_credentials(life, "nina.stays")) == 2
    assert [e.detail["source"] for e in life.store.audit_events() if e.event == "owner_left_user_disabled"] == ["check"]
    # Someone switches a key back on by hand: the next check switches it off again and says so.
    (key,) = life.keys("lee.one")
    life.iam.update_access_key(UserName="lee.one", AccessKeyId=key, Status="Active")
    life.services.lifecycle_check.run()
    assert life.keys("lee.one") == {key: "Inactive"}
    assert len([p for p in life.posts() if OWNER_GONE in p["text"]]) == 2


def test_unused_credentials_go_to_the_approvers_once_with_disable(life: Life) -> None:
    life.user("idle.user", RECIPIENT)  # a password and a key, never used
    life.user("busy.user", RECIPIENT, key=False)
    secret = life.iam.create_access_key(UserName="busy.user")["AccessKey"]
    life.moto.boto3_client(  # moto records this use of the key, now
        "sts", aws_access_key_id=secret["AccessKeyId"], aws_secret_access_key=secret["SecretAccessKey"]
    ).get_caller_identity()
    for name in ("idle.user", "busy.user"):
        life.age(name, 6)
    assert life.services.lifecycle_check.run().unused == []  # 6 days: nothing to report yet
    for name in ("idle.user", "busy.user"):
        life.age(name, 44)  # 50 days: the key was last used 50 days ago
    console_sign_in(life.moto.url, "busy.user", datetime.now(UTC) - timedelta(days=5))  # its password is in use

    report = life.services.lifecycle_check.run()

    (idle_key,) = life.keys("idle.user")
    found = sorted(s.split("/")[:2] for s in report.unused)  # type: ignore[misc]
    assert found == sorted([["idle.user", "password"], ["idle.user", idle_key], ["busy.user", secret["AccessKeyId"]]])
    (digest,) = [p for p in life.posts() if "unused" in p["text"]]
    disable = {b["value"] for b in buttons_of(digest) if b["action_id"] == DISABLE_ACTION}
    assert disable == {"idle.user", "busy.user"}
    text = str(digest["blocks"])
    assert "never used since made" in text and "last used" in text and "(50 days)" in text
    assert life.services.lifecycle_check.run().unused == []  # reported once
    assert len([p for p in life.posts() if "unused" in p["text"]]) == 1
    assert len(life.store.open_findings(UNUSED_CREDENTIAL)) == 3


def test_disable_is_for_approvers_only_and_audited(life: Life) -> None:
    life.user("idle.user", RECIPIENT)
    refused = life.services.unused.disable("idle.user", STRANGER, (APPROVAL_CHANNEL, "1.000001"))
    assert not refused.ok and len(active_credentials(life, "idle.user")) == 2
    assert life.events("refused_disable") == ["refused_disable"]

    done = life.services.unused.disable("idle.user", APPROVER, (APPROVAL_CHANNEL, "1.000001"))

    assert done.ok and active_credentials(life, "idle.user") == []
    (audited,) = [e for e in life.store.audit_events() if e.event == "user_disabled"]
    assert audited.actor == APPROVER and audited.detail["login_profile_deleted"] is True
    (note,) = [p for p in life.posts() if p.get("thread_ts") == "1.000001"]
    assert f"<@{APPROVER}> disabled `idle.user`" in note["text"]
