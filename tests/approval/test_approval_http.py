"""Approval as a security boundary, over signed HTTP against the real bot process (gunicorn).

Who may request, approve, deny, cancel and see status (each role × each action); 20 concurrent
approve clicks against two gunicorn workers; Slack's retried deliveries; expiry in the serving
process. Outcomes are read from moto (IAM), the Slack stand-in and the bot's database.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from bot.sandbox.slack_user import SlackUser
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER, SECOND_APPROVER, STRANGER
from tests.support import wizard_driver as wiz
from tests.support.flow import wait_catalog

APPROVER_GROUP = "S0APPROVERS"


def file_request(bot, slack, requester: str, user_name: str, groups: Sequence[str] = ()) -> tuple[str, str]:
    """File a request through the wizard; returns (approval message ts, request id)."""
    answer, trigger_id = bot.user.slash_command(requester, "new")
    assert answer.status == 200
    view = slack.wait_for("views.open", lambda c: c.args.get("trigger_id") == trigger_id)[0].response["view"]
    run = wiz.WizardRun(bot.user, requester, view)
    filed = run.through(
        wiz.details([RECIPIENT], user_name, access=["programmatic"]),
        wiz.permissions("groups", groups=groups),
        wiz.tags(),
        wiz.review(),
    )
    assert filed.status == 200 and not filed.body, filed.body
    call = slack.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == APPROVAL_CHANNEL and user_name in json.dumps(c.args.get("blocks")),
    )[-1]
    blocks = call.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    buttons = [e for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert {b["action_id"] for b in buttons} == {"approve_request", "deny_request"}
    return call.response["ts"], buttons[0]["value"]


def status_of(bot, request_id: str) -> str:
    return str(bot.store().get_request(request_id).status)


def audit(bot, request_id: str | None = None):
    return bot.store().audit_events(request_id=request_id)


def ephemeral_to(slack, user: str, needle: str) -> str:
    """Wait for an ephemeral note to ``user`` containing ``needle``; returns its text."""
    return slack.wait_for(
        "chat.postEphemeral", lambda c: c.args.get("user") == user and needle in c.args.get("text", "")
    )[-1].args["text"]


def dm_reply(slack, user: str, needle: str) -> str:
    return slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{user}" and needle in c.args.get("text", "")
    )[-1].args["text"]


def wait_status(bot, request_id: str, wanted: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if status_of(bot, request_id) == wanted:
            return
        time.sleep(0.1)
    raise AssertionError(f"{request_id} is {status_of(bot, request_id)}, not {wanted}")


def click(bot, who: str, action: str, request_id: str, ts: str):
    answer = bot.user.block_action(who, action, request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert answer.status == 200
    return answer


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_authorisation_matrix(start_bot, slack, iam, store: str) -> None:
    # Roles: the requester and a recipient are approvers too (by user group and by id), so the
    # refusals below come from the four-eyes rules, not from "not an approver".
    slack.add_usergroup(APPROVER_GROUP, [REQUESTER, SECOND_APPROVER])
    bot = start_bot(store=store, APPROVER_USER_IDS=f"{APPROVER},{RECIPIENT}", APPROVER_USERGROUP_ID=APPROVER_GROUP)
    refusals = {
        REQUESTER: "You filed this request",
        RECIPIENT: "You would receive credentials",
        STRANGER: "Only approvers",
    }

    # approve: everyone but the approver is refused (ephemeral, audited), then the approver wins.
    ts, approve_id = file_request(bot, slack, REQUESTER, "matrix.approve")
    for who, words in refusals.items():
        click(bot, who, "approve_request", approve_id, ts)
        ephemeral_to(slack, who, words)
    assert status_of(bot, approve_id) == "pending" and iam.list_users()["Users"] == []
    click(bot, SECOND_APPROVER, "approve_request", approve_id, ts)  # an approver through the user group
    wait_status(bot, approve_id, "provisioned")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["matrix.approve"]
    refused = [(e.actor, e.event) for e in audit(bot, approve_id) if e.event.startswith("refused")]
    assert sorted(refused) == sorted((who, "refused_decision") for who in refusals)

    # deny: refused clicks open no modal; a forged deny-modal submission by a refused person
    # changes nothing; the approver's reason reaches the requester.
    ts, deny_id = file_request(bot, slack, REQUESTER, "matrix.deny")
    for who, words in refusals.items():
        click(bot, who, "deny_request", deny_id, ts)
        ephemeral_to(slack, who, words)
    assert [c for c in slack.calls("views.open") if c.args["view"].get("callback_id") == "deny_reason"] == []
    click(bot, APPROVER, "deny_request", deny_id, ts)
    modal = slack.wait_for("views.open", lambda c: c.args["view"]["callback_id"] == "deny_reason")[-1].response["view"]
    reason = {"reason": {"reason": {"type": "plain_text_input", "value": "Use the shared role instead"}}}
    assert bot.user.view_submission(STRANGER, modal, reason).status == 200
    slack.wait_for(
        "chat.postEphemeral", lambda c: c.args.get("user") == STRANGER and "Only approvers" in c.args["text"], count=3
    )
    assert status_of(bot, deny_id) == "pending"
    empty = bot.user.view_submission(APPROVER, modal, {"reason": {"reason": {"type": "plain_text_input", "value": ""}}})
    assert set(empty.json()["errors"]) == {"reason"}
    assert bot.user.view_submission(APPROVER, modal, reason).status == 200
    dm_reply(slack, REQUESTER, "Use the shared role instead")
    wait_status(bot, deny_id, "denied")

    # cancel: only the requester, from their DM.
    ts, cancel_id = file_request(bot, slack, REQUESTER, "matrix.cancel")
    for who in (APPROVER, RECIPIENT, STRANGER):
        bot.user.direct_message(who, f"D{who}", f"cancel {cancel_id}")
        dm_reply(slack, who, f"You have no request `{cancel_id}`")
    assert status_of(bot, cancel_id) == "pending"

    # status: requester, approvers and recipients see the request; a stranger learns nothing.
    for who in (REQUESTER, APPROVER, RECIPIENT):
        bot.user.direct_message(who, f"D{who}", f"status {cancel_id}")
        dm_reply(slack, who, "matrix.cancel")
    bot.user.direct_message(STRANGER, f"D{STRANGER}", f"status {cancel_id}")
    assert "matrix.cancel" not in dm_reply(slack, STRANGER, "I know of no request")

    bot.user.direct_message(REQUESTER, f"D{REQUESTER}", f"cancel {cancel_id}")
    dm_reply(slack, REQUESTER, f"Cancelled request `{cancel_id}`")
    assert status_of(bot, cancel_id) == "cancelled"
    # Earlier updates of the message (while it was pending) may be all there is yet: wait for the
    # one that says it was cancelled, then check it has no buttons left.
    final = slack.wait_for(
        "chat.update",
        lambda c: c.args.get("ts") == ts and "Cancelled by the requester" in json.dumps(c.args.get("blocks")),
    )[-1]
    assert "approve_request" not in json.dumps(final.args["blocks"])
    cancel_refusals = [
        e.actor for e in audit(bot) if e.event == "refused_cancel" and e.detail.get("request_id") == cancel_id
    ]
    assert sorted(cancel_refusals) == sorted([APPROVER, RECIPIENT, STRANGER])
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["matrix.approve"]


def test_only_listed_people_may_request(start_bot, slack) -> None:
    slack.add_usergroup("S0REQUESTERS", [SECOND_APPROVER])
    bot = start_bot(REQUESTER_USER_IDS=REQUESTER, REQUESTER_USERGROUP_ID="S0REQUESTERS")
    answer, stranger_trigger = bot.user.slash_command(STRANGER, "new")
    assert answer.status == 200 and "not on the list of people who may request" in answer.body.decode()
    # The stranger replays a modal someone else opened: refused at submission too, nothing stored.
    opened, trigger = bot.user.slash_command(REQUESTER, "new")
    assert opened.status == 200
    view = slack.wait_for("views.open", lambda c: c.args.get("trigger_id") == trigger)[0].response["view"]
    forged = bot.user.view_submission(
        STRANGER, view, wiz.state(view, wiz.details([RECIPIENT], "sneaky", access=["programmatic"]))
    )
    assert forged.json()["response_action"] == "update"
    assert "not on the list of people who may request" in json.dumps(forged.json()["view"])
    assert bot.store().requests_where() == []
    assert [c for c in slack.calls("views.open") if c.args.get("trigger_id") == stranger_trigger] == []
    assert {e.actor for e in audit(bot) if e.event == "refused_request"} == {STRANGER}
    # A member of the requester user group may file.
    file_request(bot, slack, SECOND_APPROVER, "group.member")
    assert [r.requester for r in bot.store().requests_where()] == [SECOND_APPROVER]


def test_twenty_concurrent_approvals_on_two_workers_create_one_user(start_bot, slack, iam) -> None:
    bot = start_bot(workers=2)
    ts, request_id = file_request(bot, slack, REQUESTER, "race.winner")
    clickers = [APPROVER if i % 2 else SECOND_APPROVER for i in range(20)]
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda who: click(bot, who, "approve_request", request_id, ts), clickers))
    assert [a.status for a in answers] == [200] * 20
    wait_status(bot, request_id, "provisioned")

    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["race.winner"]
    assert len(iam.list_access_keys(UserName="race.winner")["AccessKeyMetadata"]) == 1
    # Clicks are acked before they are handled: wait until every loser has been told (each is
    # audited before it is told), then count.
    winner = bot.store().get_request(request_id).decided_by
    losers = slack.wait_for(
        "chat.postEphemeral",
        lambda c: f"already approved by <@{winner}>" in c.args.get("text", ""),
        count=19,
        timeout=30,
    )
    assert len(losers) == 19
    events = [e.event for e in audit(bot, request_id)]
    for once in ("approved", "provisioning_started", "provisioned", "link_issued"):
        assert events.count(once) == 1, once
    assert events.count("refused_decision") == 19
    deliveries = [c for c in slack.calls("chat.postEphemeral") if c.args.get("user") == RECIPIENT]
    assert len(deliveries) == 1
    assert bot.process.log_text().count("Booting worker") == 2  # two gunicorn worker processes served


class RetriedSlack(SlackUser):
    """Sends what :class:`SlackUser` sends, marked as Slack's retry number ``n``."""

    def __init__(self, user: SlackUser, n: int) -> None:
        self.__dict__.update(user.__dict__)
        self.n = n

    def post(self, body: str, content_type: str, extra_headers: dict[str, str] | None = None):
        retry = {"X-Slack-Retry-Num": str(self.n), "X-Slack-Retry-Reason": "http_timeout"}
        return super().post(body, content_type, {**(extra_headers or {}), **retry})


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_retried_deliveries_decide_once(start_bot, slack, iam, store: str) -> None:
    bot = start_bot(store=store)
    ts, request_id = file_request(bot, slack, REQUESTER, "retry.user")
    click(bot, APPROVER, "approve_request", request_id, ts)
    for n in (1, 2):
        answer = RetriedSlack(bot.user, n).block_action(
            APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts
        )
        assert answer.status == 200
    wait_status(bot, request_id, "provisioned")
    ephemeral_to(slack, APPROVER, "already approved")
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["retry.user"]
    events = [e.event for e in audit(bot, request_id)]
    assert events.count("approved") == 1 and events.count("provisioning_started") == 1

    # A DM command retried by the Events API (same event_id) runs once and is answered once.
    _, cancel_id = file_request(bot, slack, REQUESTER, "retry.cancel")
    bot.user.direct_message(REQUESTER, f"D{REQUESTER}", f"cancel {cancel_id}", event_id="Ev0RETRY0001")
    dm_reply(slack, REQUESTER, "Cancelled request")
    answer = RetriedSlack(bot.user, 1).direct_message(
        REQUESTER, f"D{REQUESTER}", f"cancel {cancel_id}", event_id="Ev0RETRY0001"
    )
    assert answer.status == 200
    time.sleep(0.5)  # give a wrongly processed retry time to answer
    replies = [
        c
        for c in slack.calls("chat.postMessage")
        if c.args.get("channel") == f"D{REQUESTER}"
        and c.args.get("text", "").startswith(("Cancelled request", "You have no request", "Request `"))
    ]
    assert len(replies) == 1
    assert [e.event for e in audit(bot, cancel_id)].count("cancelled") == 1
    assert [e.event for e in audit(bot, cancel_id)].count("refused_cancel") == 0


def backdate(bot, request_id: str, hours: float) -> None:
    """Make a request look filed ``hours`` ago (the bot process's clock cannot be moved)."""
    with sqlite3.connect(bot.database_path, timeout=15) as db:
        when = (datetime.now(UTC) - timedelta(hours=hours)).isoformat()
        db.execute("UPDATE requests SET created_at = ? WHERE id = ?", (when, request_id))


def test_pending_request_reminds_then_expires_in_the_serving_process(start_bot, slack, iam) -> None:
    bot = start_bot(workers=2, EXPIRY_CHECK_INTERVAL_SECONDS="0.2")
    ts, request_id = file_request(bot, slack, REQUESTER, "expiry.user")
    backdate(bot, request_id, 37)
    slack.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == APPROVAL_CHANNEL and ":alarm_clock:" in c.args.get("text", ""),
    )
    backdate(bot, request_id, 73)
    wait_status(bot, request_id, "expired")
    dm_reply(slack, REQUESTER, "expired")
    # Earlier updates of the message (while it was pending) may be all there is yet: wait for the
    # one that says it expired, then check it has no buttons left.
    final = slack.wait_for(
        "chat.update", lambda c: c.args.get("ts") == ts and "xpired" in json.dumps(c.args.get("blocks"))
    )[-1]
    assert "approve_request" not in json.dumps(final.args["blocks"])
    time.sleep(0.5)  # both workers sweep several more times
    reminders = [c for c in slack.calls("chat.postMessage") if ":alarm_clock:" in c.args.get("text", "")]
    assert len(reminders) == 1
    events = [e.event for e in audit(bot, request_id)]
    assert events.count("reminder_sent") == 1 and events.count("expired") == 1
    click(bot, APPROVER, "approve_request", request_id, ts)
    ephemeral_to(slack, APPROVER, "already expired")
    assert iam.list_users()["Users"] == []


def test_sensitive_group_needs_two_distinct_approvers_over_http(start_bot, slack, iam) -> None:
    iam.create_group(GroupName="platform-admins")
    iam.attach_group_policy(GroupName="platform-admins", PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    bot = start_bot()
    opened, trigger_id = bot.user.slash_command(REQUESTER, "new")
    assert opened.status == 200
    view = slack.wait_for("views.open", lambda c: c.args.get("trigger_id") == trigger_id)[0].response["view"]
    wait_catalog(bot, slack, view, "platform-admins")
    ts, request_id = file_request(bot, slack, REQUESTER, "two.keys", groups=["platform-admins"])
    posted = json.dumps(slack.messages(APPROVAL_CHANNEL)[-1]["blocks"])
    assert "Needs 2 distinct approvers" in posted and "AdministratorAccess" in posted

    click(bot, APPROVER, "approve_request", request_id, ts)
    ephemeral_to(slack, APPROVER, "recorded (1 of 2)")
    slack.wait_for("chat.update", lambda c: c.args.get("ts") == ts and "1 of 2" in json.dumps(c.args["blocks"]))
    click(bot, APPROVER, "approve_request", request_id, ts)
    ephemeral_to(slack, APPROVER, "You already approved")
    assert status_of(bot, request_id) == "pending" and iam.list_users()["Users"] == []

    click(bot, SECOND_APPROVER, "approve_request", request_id, ts)
    wait_status(bot, request_id, "provisioned")
    groups = iam.list_groups_for_user(UserName="two.keys")["Groups"]
    assert [g["GroupName"] for g in groups] == ["platform-admins"]
    final = slack.wait_for(
        "chat.update", lambda c: c.args.get("ts") == ts and "created" in json.dumps(c.args["blocks"])
    )
    body = json.dumps(final[-1].args["blocks"])
    assert "approve_request" not in body and f"<@{APPROVER}> and <@{SECOND_APPROVER}>" in body
