"""The users' life after onboarding, end to end over real HTTP: the bot runs as a server process
(gunicorn) against moto server and the Slack stand-in, and every Slack request is signed and shaped
like Slack's.

Time: IAM's dates of a user (its keys' creation and last use) are moved back in the tests' moto
server (:func:`tests.support.lifecycle.age`), so a key made a moment ago is 80 days old to the bot
and a key a rotation makes afterwards is new, as in AWS; the lifecycle check runs every second
(``LIFECYCLE_CHECK_INTERVAL_SECONDS=1``). moto records a key's last use when a request signed with
it arrives (here STS).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.credentials.vault import b64url_decode, open_sealed
from bot.sandbox.processes import http
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER, STRANGER
from tests.support import wizard_driver as wiz
from tests.support.flow import approval_message, link_from_ephemeral, open_modal, wait_catalog
from tests.support.lifecycle import age, buttons_of, keys_of, load_user, removal_values, seed_user

NAME = "nina.newhire"


def lifecycle_bot(start_bot: Callable[..., Any], **env: str) -> Any:
    return start_bot(**{"LIFECYCLE_CHECK_INTERVAL_SECONDS": "1", **env})


def eventually(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the bot did not get there in time"
        time.sleep(0.2)


def has_login_profile(iam: Any, name: str) -> bool:
    try:
        iam.get_login_profile(UserName=name)
    except iam.exceptions.NoSuchEntityException:
        return False
    return True


def reveal(link: str) -> dict[str, Any]:
    page, key = link.split("#", 1)
    link_id = page.rsplit("/", 1)[1]
    answer = http("POST", page, headers={"X-Requested-With": "reveal"})
    assert answer.status == 200, answer.status
    sealed = answer.json()
    return json.loads(open_sealed(link_id, key, b64url_decode(sealed["iv"]), b64url_decode(sealed["ciphertext"])))


def audit_events(bot: Any) -> list[dict[str, Any]]:
    """The audit log as ``iam-user-bot audit --format json`` prints it (the audit export)."""
    env = {**bot.env, "DATABASE_PATH": str(bot.database_path)}
    run = subprocess.run(
        [sys.executable, "-m", "bot.cli", "audit", "--format", "json"], env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout)


def onboard(bot: Any, slack: Any, iam: Any) -> dict[str, Any]:
    """Nina's IAM user, made as people make it: the form, an approval, the one-time link revealed."""
    iam.create_group(GroupName="developers")
    view = open_modal(bot, slack, REQUESTER)
    wait_catalog(bot, slack, view, "developers")
    run = wiz.WizardRun(bot.user, REQUESTER, view)
    run.through(
        wiz.details([RECIPIENT], NAME, access=["console", "programmatic"]),
        wiz.permissions("groups", groups=["developers"]),
        wiz.tags(),
        wiz.review(),
    )
    ts, request_id = approval_message(slack)
    bot.user.block_action(APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    return reveal(link_from_ephemeral(slack, RECIPIENT))


def test_a_key_80_days_old_gets_one_notice_and_its_owner_rotates_it_from_slack(
    start_bot, slack, iam, moto_server
) -> None:
    bot = lifecycle_bot(start_bot)
    first = onboard(bot, slack, iam)
    old_key = first["access_key_id"]
    assert keys_of(iam, NAME) == {old_key: "Active"}

    age(moto_server.url, NAME, 80)
    (notice,) = slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{RECIPIENT}" and old_key in c.args.get("text", "")
    )
    time.sleep(3)  # three more checks: still one notice
    notices = [c for c in slack.calls("chat.postMessage") if old_key in c.args.get("text", "")]
    assert len(notices) == 1 and "80 days old" in notice.args["text"]
    (button,) = [b for b in buttons_of(notice.args) if b["action_id"] == "rotate_access_key"]
    ts = notice.response["ts"]

    # Anyone else's click is refused and changes nothing.
    bot.user.block_action(
        STRANGER,
        "rotate_access_key",
        button["value"],
        channel=f"D{RECIPIENT}",
        message_ts=ts,
        block_id="rotation_notice",
    )
    slack.wait_for("chat.postEphemeral", lambda c: c.args.get("user") == STRANGER and "Only" in c.args["text"])
    assert keys_of(iam, NAME) == {old_key: "Active"}

    # The owner's click: a new key in a one-time link; the old one works until the link is revealed.
    links_before = len([c for c in slack.calls("chat.postEphemeral") if c.args.get("user") == RECIPIENT])
    bot.user.block_action(
        RECIPIENT,
        "rotate_access_key",
        button["value"],
        channel=f"D{RECIPIENT}",
        message_ts=ts,
        block_id="rotation_notice",
    )
    slack.wait_for("chat.postEphemeral", lambda c: c.args.get("user") == RECIPIENT, count=links_before + 2)
    link = [
        e["url"]
        for c in slack.calls("chat.postEphemeral")
        if c.args.get("user") == RECIPIENT
        for e in buttons_of(c.args)
        if "/credentials/" in e.get("url", "")
    ][-1]
    assert len(keys_of(iam, NAME)) == 2 and keys_of(iam, NAME)[old_key] == "Active"
    revealed = reveal(link)
    new_key = revealed["access_key_id"]
    assert new_key != old_key and revealed["password"] is None

    eventually(lambda: keys_of(iam, NAME) == {old_key: "Inactive", new_key: "Active"})
    sts = moto_server.boto3_client(
        "sts", aws_access_key_id=new_key, aws_secret_access_key=revealed["secret_access_key"]
    )
    assert sts.get_caller_identity()["Arn"].endswith(f":user/iam-user-bot/{NAME}")
    slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == f"D{RECIPIENT}" and "done" in c.args["text"])

    # keys, by DM and by /iam-user keys: each key's id, status and age in days.
    bot.user.direct_message(RECIPIENT, f"D{RECIPIENT}", "keys")
    (reply,) = slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{RECIPIENT}" and "access keys" in c.args["text"]
    )
    assert f"`{old_key}` Inactive, 80 days old" in reply.args["text"]
    assert f"`{new_key}` Active, 0 days old" in reply.args["text"]
    answer, _ = bot.user.slash_command(RECIPIENT, "keys")
    assert answer.status == 200 and "direct messages" in answer.body.decode()
    slack.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == f"D{RECIPIENT}" and new_key in c.args["text"],
        count=2,
    )
    # The App Home: the same keys, the active one with Rotate.
    bot.user.app_home_opened(RECIPIENT)
    home = slack.wait_for(
        "views.publish", lambda c: c.args.get("user_id") == RECIPIENT and new_key in json.dumps(c.args)
    )
    published = home[-1].args["view"]
    view = json.loads(published) if isinstance(published, str) else published
    rotate = [b for b in buttons_of(view) if b["action_id"] == "rotate_access_key"]
    assert [b["value"] for b in rotate] == [f"{NAME}|{new_key}"]

    # All of it in the audit export.
    events = [e["event"] for e in audit_events(bot)]
    for event in (
        "rotation_notice_sent",
        "refused_rotation",
        "rotation_started",
        "rotation_delivered",
        "rotation_completed",
    ):
        assert event in events, event
    secret = revealed["secret_access_key"]
    assert secret not in json.dumps([c.args for c in slack.calls()]) and secret not in bot.process.log_text()


def test_a_deactivated_slack_account_leaves_no_active_credential_within_seconds(start_bot, slack, iam) -> None:
    bot = lifecycle_bot(start_bot, LIFECYCLE_CHECK_INTERVAL_SECONDS="3600")
    store = SqliteStore(bot.database_path)
    seed_user(store, iam, "nina.one", RECIPIENT)
    seed_user(store, iam, "nina.two", RECIPIENT, console=False)
    seed_user(store, iam, "rita.stays", REQUESTER)

    user = slack.deactivate_user(RECIPIENT)
    started = time.monotonic()
    assert (
        bot.user.event_callback({"type": "user_change", "user": user, "event_ts": f"{time.time():.6f}"}).status == 200
    )

    def all_off() -> bool:
        keys = [s for n in ("nina.one", "nina.two") for s in keys_of(iam, n).values()]
        return set(keys) == {"Inactive"} and not has_login_profile(iam, "nina.one")

    eventually(all_off, timeout=10)
    assert time.monotonic() - started < 10
    assert set(keys_of(iam, "rita.stays").values()) == {"Active"} and has_login_profile(iam, "rita.stays")
    assert iam.get_user(UserName="nina.one")["User"]["UserName"] == "nina.one"  # disabled, kept
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == APPROVAL_CHANNEL and RECIPIENT in c.args["text"]
    )
    audited = [e for e in audit_events(bot) if e["event"] == "owner_left_user_disabled"]
    assert sorted(e["detail"]["user_name"] for e in audited) == ["nina.one", "nina.two"]
    # The approvers' Home lists the owner who left.
    bot.user.app_home_opened(APPROVER)
    slack.wait_for(
        "views.publish", lambda c: c.args.get("user_id") == APPROVER and "Owners who left" in json.dumps(c.args)
    )


def test_the_periodic_check_catches_a_deactivation_without_an_event(start_bot, slack, iam) -> None:
    bot = lifecycle_bot(start_bot)
    seed_user(SqliteStore(bot.database_path), iam, NAME, RECIPIENT)
    slack.deactivate_user(RECIPIENT)  # Slack's event never reaches the bot
    eventually(lambda: set(keys_of(iam, NAME).values()) == {"Inactive"} and not has_login_profile(iam, NAME))
    slack.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == APPROVAL_CHANNEL and "users.info" in json.dumps(c.args.get("blocks")),
    )


def test_enforcement_deactivates_a_key_past_its_age_and_tells_owner_and_approvers(
    start_bot, slack, iam, moto_server
) -> None:
    bot = lifecycle_bot(start_bot, KEY_ROTATION_ENFORCE="true")
    seed_user(SqliteStore(bot.database_path), iam, NAME, RECIPIENT)
    (key,) = keys_of(iam, NAME)
    age(moto_server.url, NAME, 91)
    eventually(lambda: keys_of(iam, NAME) == {key: "Inactive"})
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{RECIPIENT}" and "deactivated" in c.args["text"]
    )
    slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == APPROVAL_CHANNEL and key in c.args["text"])


def test_remove_delete_from_slack_leaves_no_trace_of_the_user_in_iam(start_bot, slack, iam, tmp_path: Path) -> None:
    # The users exist before the bot starts, so its first catalog load offers them.
    seed_user(SqliteStore(tmp_path / "bot.db"), iam, NAME, RECIPIENT)  # the database the bot will open
    load_user(iam, NAME)
    iam.create_user(UserName="admin.by.hand")
    bot = lifecycle_bot(start_bot, LIFECYCLE_CHECK_INTERVAL_SECONDS="3600")
    assert bot.database_path == tmp_path / "bot.db"

    answer, trigger_id = bot.user.slash_command(REQUESTER, "remove")
    assert answer.status == 200
    opened = slack.wait_for("views.open", lambda c: c.args.get("trigger_id") == trigger_id)[0]
    view = opened.response["view"]
    assert view["callback_id"] == "removal_request"
    assert {b["block_id"] for b in view["blocks"] if b["type"] == "input"} == {
        "remove_users",
        "remove_mode",
        "justification",
    }

    def offered() -> bool:
        found = bot.user.block_suggestion(REQUESTER, view, "remove_users", "nina")
        return found.status == 200 and NAME in [o["value"] for o in found.json().get("options", [])]

    eventually(offered)  # the catalog loads in the background at start-up

    refused = bot.user.view_submission(REQUESTER, view, removal_values(["admin.by.hand"], "delete"))
    assert (
        refused.json()["response_action"] == "errors"
        and "not created by this bot" in refused.json()["errors"]["remove_users"]
    )
    filed = bot.user.view_submission(REQUESTER, view, removal_values([NAME], "delete"))
    assert filed.status == 200 and not filed.body

    ts, request_id = approval_message(slack)
    # Slack delivering the same submission again files nothing more.
    assert bot.user.view_submission(REQUESTER, view, removal_values([NAME], "delete")).status == 200
    removals = [r.id for r in SqliteStore(bot.database_path).requests_where() if r.form.is_removal]
    assert removals == [request_id]
    time.sleep(1)  # the repeat's work after the ack has run: it posted no second approval message
    posted = [m for m in slack.messages(APPROVAL_CHANNEL) if request_id in json.dumps(m.get("blocks"))]
    assert [m["ts"] for m in posted] == [ts]
    message = next(m for m in slack.messages(APPROVAL_CHANNEL) if m["ts"] == ts)
    shown = json.dumps(message["blocks"])
    assert "IAM user removal" in shown and f"aws iam delete-user --user-name {NAME}" in shown
    assert "delete-service-specific-credential" in shown and "deactivate-mfa-device" in shown

    bot.user.block_action(APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    eventually(lambda: SqliteStore(bot.database_path).get_request(request_id).status == "provisioned", timeout=30)
    assert NAME not in [u["UserName"] for u in iam.list_users()["Users"]]
    assert iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    assert iam.get_group(GroupName="developers")["Users"] == []
    final = slack.wait_for(
        "chat.update", lambda c: c.args.get("ts") == ts and "deleted" in json.dumps(c.args.get("blocks"))
    )
    assert "IAM users deleted" in json.dumps(final[-1].args["blocks"])
    events = [e["event"] for e in audit_events(bot) if e.get("request_id") == request_id]
    assert events[0] == "filed" and "approved" in events and events[-1] == "provisioned"
    assert events.count("step_done") == 12
