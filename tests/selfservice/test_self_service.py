"""Self-service over signed HTTP: DM words, the slash command's answers, and the App Home per role.

The bot runs as a real server process against moto server and the Slack stand-in; every Slack
request is signed. Assertions are on what Slack was sent and what the database holds.
"""

from __future__ import annotations

import json
import time
from typing import Any

from bot.domain.ids import link_digest
from bot.sandbox.processes import http
from bot.sandbox.slack_workspace import WORKSPACE_URL
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER, SECOND_APPROVER, STRANGER
from tests.support import wizard_driver as wiz
from tests.support.flow import approval_message, link_from_ephemeral, open_modal
from tests.support.wizard_driver import JUSTIFICATION

BOT_USER = "UBOT00001"  # the stand-in's bot user id


def dm_replies(slack, user: str) -> list[str]:
    """Texts the bot posted in its DM with ``user`` so far."""
    return [c.args.get("text", "") for c in slack.calls("chat.postMessage") if c.args.get("channel") == f"D{user}"]


def ask(bot, slack, user: str, text: str, followups: int = 0) -> str:
    """DM ``text`` to the bot as ``user``; return the bot's reply in that DM, once it and
    ``followups`` more messages (the whole CLI script of ``status <id>``) have arrived."""
    return ask_all(bot, slack, user, text, followups)[0]


def ask_all(bot, slack, user: str, text: str, followups: int) -> list[str]:
    """The reply and its follow-ups, exactly ``1 + followups`` messages."""
    before = len(dm_replies(slack, user))
    answer = bot.user.direct_message(user, f"D{user}", text)
    assert answer.status == 200
    slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == f"D{user}", count=before + 1 + followups)
    time.sleep(0.2)  # anything more would arrive now
    replies = dm_replies(slack, user)
    assert len(replies) == before + 1 + followups, replies[before:]
    return replies[before:]


def file_request(bot, slack, user_names: str = "nina.newhire") -> tuple[str, str]:
    """File a request from REQUESTER for RECIPIENT; returns (approval message ts, request id)
    once the requester has had the bot's "waiting for approval" DM."""
    run = wiz.WizardRun(bot.user, REQUESTER, open_modal(bot, slack, REQUESTER))
    answer = run.through(
        wiz.details([RECIPIENT], user_names, access=["programmatic"]), wiz.permissions(), wiz.tags(), wiz.review()
    )
    assert answer.status == 200 and not answer.body
    ts, request_id = approval_message(slack)
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and request_id in c.args["text"]
    )
    return ts, request_id


def home_of(bot, slack, user: str) -> dict[str, Any]:
    """Open ``user``'s App Home; return the view the bot published in answer."""
    since = time.time()
    assert bot.user.app_home_opened(user).status == 200
    call = slack.wait_for("views.publish", lambda c: c.args.get("user_id") == user and c.at >= since)[-1]
    assert call.ok, call.response
    return call.response["view"]


def buttons(view: dict[str, Any]) -> list[dict[str, Any]]:
    """Every button of a view, with the block_id it sits in."""
    found = []
    for block in view["blocks"]:
        elements = block.get("elements", []) if block["type"] == "actions" else [block.get("accessory") or {}]
        found += [{**e, "block_id": block.get("block_id")} for e in elements if e.get("type") == "button"]
    return found


def text_of(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"])


def test_dm_words_answer_by_role_and_cancel_moves_only_the_requesters_own(start_bot, slack) -> None:
    bot = start_bot()
    ts, request_id = file_request(bot, slack)
    permalink = f"{WORKSPACE_URL}archives/{APPROVAL_CHANNEL}/p{ts.replace('.', '')}"

    # status, loosely typed: the requester's requests with the id, the state in words, the time.
    listing = ask(bot, slack, REQUESTER, "   STATUS  ")
    assert request_id in listing and "waiting for approval" in listing and "<!date^" in listing

    # status <id> in lower case, pasted in code marks: the request in full, with the approval link,
    # then the whole equivalent AWS CLI script in a message of its own.
    detail, script = ask_all(bot, slack, REQUESTER, f"Status   `{request_id.lower()}`", followups=1)
    assert request_id in detail and JUSTIFICATION in detail and permalink in detail
    assert "whole equivalent AWS CLI script follows" in detail
    assert f"Equivalent AWS CLI of `{request_id}`" in script and script.count("```") == 2
    assert "aws iam create-user --user-name nina.newhire" in script and "aws iam create-access-key" in script

    # The recipient sees their own IAM user and the state, not the justification.
    for_recipient = ask(bot, slack, RECIPIENT, f"status {request_id}")
    assert "nina.newhire" in for_recipient and "waiting for approval" in for_recipient
    assert JUSTIFICATION not in for_recipient and permalink not in for_recipient
    assert "nina.newhire" in ask(bot, slack, RECIPIENT, "status")

    # A stranger learns nothing, and the answer is the same as for an id that does not exist.
    for_stranger = ask(bot, slack, STRANGER, f"status {request_id}")
    assert "I know of no request" in for_stranger and "nina" not in for_stranger
    assert ask(bot, slack, STRANGER, "status R-22222222") == for_stranger.replace(request_id, "R-22222222")
    assert request_id not in ask(bot, slack, STRANGER, "status")
    assert "not a request id" in ask(bot, slack, STRANGER, "status banana")

    # pending: the approver's queue with a link to the approval message; nobody else's.
    queue = ask(bot, slack, APPROVER, "Pending")
    assert request_id in queue and permalink in queue and f"<@{REQUESTER}>" in queue
    refused = ask(bot, slack, REQUESTER, "pending")
    assert "Only approvers" in refused and request_id not in refused

    assert "cancel R-XXXXXXXX" in ask(bot, slack, STRANGER, "HELP")
    hint = ask(bot, slack, STRANGER, "good morning")
    assert "`status`" in hint and "`pending`" in hint

    # cancel: refused to anyone but the requester, without saying whether the request exists.
    not_yours = ask(bot, slack, APPROVER, f"cancel {request_id}")
    assert "You have no request" in not_yours
    store = SqliteStore(bot.database_path)
    assert store.get_request(request_id).status == "pending"
    assert request_id in ask(bot, slack, REQUESTER, "cancel")  # which one? lists the pending ones

    done = ask(bot, slack, REQUESTER, f"  cancel {request_id}. ")
    assert "Cancelled" in done and request_id in done
    request = store.get_request(request_id)
    assert request.status == "cancelled" and request.decided_by == REQUESTER
    # The approval message loses its buttons and says who cancelled.
    update = slack.wait_for("chat.update", lambda c: c.args.get("ts") == ts)[-1]
    assert "approve_request" not in json.dumps(update.args["blocks"]) and "Cancelled" in json.dumps(update.args)
    again = ask(bot, slack, REQUESTER, f"cancel {request_id}")
    assert "can no longer be cancelled" in again and "cancelled by the requester" in again
    events = [(e.event, e.actor) for e in store.audit_events(request_id=request_id)]
    assert ("cancelled", REQUESTER) in events and ("refused_cancel", REQUESTER) in events
    assert [e.actor for e in store.audit_events() if e.event == "refused_cancel"].count(APPROVER) == 1

    # After the change, status names who acted.
    after = ask(bot, slack, REQUESTER, f"status {request_id}", followups=1)
    assert "cancelled by the requester" in after and f"cancelled by <@{REQUESTER}>" in after


def test_each_event_is_answered_once_and_the_bots_own_messages_are_ignored(start_bot, slack) -> None:
    bot = start_bot()
    user = bot.user
    event = user.im_event(REQUESTER, f"D{REQUESTER}", "status")
    assert user.event_callback(event, event_id="EvFIRST0001").status == 200
    slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}")
    # Slack's retries of the same event (as after a timeout) get no second answer.
    for retry in (1, 2, 3):
        assert user.event_callback(event, event_id="EvFIRST0001", retry_num=retry).status == 200
    # Not questions: the bot's own post, another bot, an edit, a deletion, a channel message.
    ignored = [
        user.im_event(BOT_USER, f"D{REQUESTER}", "status"),
        user.im_event("U0OTHERBOT", f"D{REQUESTER}", "status", bot_id="B0OTHER", subtype="bot_message"),
        user.im_event(REQUESTER, f"D{REQUESTER}", "status", subtype="message_changed"),
        user.im_event(REQUESTER, f"D{REQUESTER}", "", subtype="message_deleted"),
        user.im_event(REQUESTER, "C0GENERAL1", "status", channel_type="channel"),
    ]
    for other in ignored:
        assert user.event_callback(other).status == 200
    # A retry whose first delivery never reached us is answered (once).
    late = user.im_event(REQUESTER, f"D{REQUESTER}", "help")
    assert user.event_callback(late, event_id="EvLATE00001", retry_num=1).status == 200
    assert user.event_callback(late, event_id="EvLATE00001", retry_num=2).status == 200
    slack.wait_for("chat.postMessage", lambda c: "iam-user-bot" in c.args.get("text", ""))
    # A question in a thread is answered in that thread.
    threaded = user.im_event(REQUESTER, f"D{REQUESTER}", "help", thread_ts="1700000000.000100")
    assert user.event_callback(threaded).status == 200
    slack.wait_for("chat.postMessage", lambda c: c.args.get("thread_ts") == "1700000000.000100")
    time.sleep(0.5)  # give any wrongly answered event time to show up
    replies = dm_replies(slack, REQUESTER)
    assert len(replies) == 3, replies
    assert sum("no IAM user requests" in r for r in replies) == 1
    assert [c.args["channel"] for c in slack.calls("chat.postMessage")] == [f"D{REQUESTER}"] * 3


def test_slash_command_answers_ephemerally_in_place(start_bot, slack) -> None:
    bot = start_bot()
    ts, request_id = file_request(bot, slack)

    def slash(user: str, text: str) -> str:
        answer, _ = bot.user.slash_command(user, text)
        assert answer.status == 200
        # Bolt answers ack(text=…) with the bare text; Slack shows that to the typist only.
        if answer.headers.get("content-type", "").startswith("application/json"):
            body = answer.json()
            assert body.get("response_type", "ephemeral") == "ephemeral"
            return body["text"]
        return answer.body.decode()

    assert request_id in slash(REQUESTER, "status") and "waiting for approval" in slash(REQUESTER, "STATUS")
    detail = slash(REQUESTER, f"status {request_id}")
    assert JUSTIFICATION in detail and f"p{ts.replace('.', '')}" in detail
    # The whole CLI script may be longer than an ack carries: it comes by DM.
    script = slack.wait_for(
        "chat.postMessage",
        lambda c: (
            c.args.get("channel") == f"D{REQUESTER}" and f"Equivalent AWS CLI of `{request_id}`" in c.args["text"]
        ),
    )
    assert len(script) == 1 and "aws iam create-user --user-name nina.newhire" in script[0].args["text"]
    assert "I know of no request" in slash(STRANGER, f"status {request_id}")
    assert "`/iam-user new`" in slash(STRANGER, "help")
    assert request_id in slash(APPROVER, "pending") and "Only approvers" in slash(STRANGER, "pending")
    assert "I don't know `frobnicate`" in slash(REQUESTER, "frobnicate")
    # No reply went anywhere else: slash answers are the ack.
    assert slack.calls("chat.postEphemeral") == []
    # cancel by slash: acknowledged in place, the outcome by DM, the request cancelled.
    assert "Cancelling" in slash(REQUESTER, f"cancel {request_id}")
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and "Cancelled" in c.args["text"]
    )
    assert SqliteStore(bot.database_path).get_request(request_id).status == "cancelled"


def test_home_per_role_and_refreshed_on_every_change(start_bot, slack, iam) -> None:
    bot = start_bot()
    ts, request_id = file_request(bot, slack)

    requester_home = home_of(bot, slack, REQUESTER)
    assert requester_home["type"] == "home"
    assert request_id in text_of(requester_home) and "waiting for approval" in text_of(requester_home)
    assert buttons(requester_home) == []  # not an approver: no queue, no buttons

    approver_home = home_of(bot, slack, APPROVER)
    decision = [b for b in buttons(approver_home) if b["value"] == request_id]
    assert {b["action_id"] for b in decision} == {"approve_request", "deny_request"}
    assert JUSTIFICATION in text_of(approver_home)
    assert f"p{ts.replace('.', '')}" in text_of(approver_home)  # the approval message's permalink

    stranger_home = home_of(bot, slack, STRANGER)
    assert request_id not in text_of(stranger_home) and "nina" not in text_of(stranger_home)
    assert buttons(stranger_home) == [] and "no IAM user requests" in text_of(stranger_home)

    recipient_home = home_of(bot, slack, RECIPIENT)
    assert "nina.newhire" in text_of(recipient_home) and JUSTIFICATION not in text_of(recipient_home)
    assert buttons(recipient_home) == []

    # The approver approves from the Home: the same path as the channel button.
    block_id = decision[0]["block_id"]
    since = time.time()
    clicked = bot.user.home_block_action(APPROVER, "approve_request", request_id, view=approver_home, block_id=block_id)
    assert clicked.status == 200
    link = link_from_ephemeral(slack, RECIPIENT)
    store = SqliteStore(bot.database_path)
    deadline = time.monotonic() + 30
    while store.get_request(request_id).status != "provisioned" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.get_request(request_id).decided_by == APPROVER
    assert iam.get_user(UserName="nina.newhire")["User"]["UserName"] == "nina.newhire"

    # Without opening anything, the recipient's Home was republished with the unopened link.
    sealed = store.sealed_secrets_for_recipient(RECIPIENT)
    assert len(sealed) == 1
    refreshed = slack.wait_for(
        "views.publish",
        lambda c: (
            c.args.get("user_id") == RECIPIENT
            and c.at >= since
            and "resend_credential_link" in json.dumps(c.args["view"])
        ),
        timeout=30,
    )[-1]
    resend = [b for b in buttons(refreshed.response["view"]) if b["action_id"] == "resend_credential_link"]
    assert [b["value"] for b in resend] == [sealed[0].id]
    # The button names the secret the recipient was sent, by the digest of its link id (the id
    # itself, which could burn the link, is in the link only).
    assert sealed[0].id == link_digest(link.split("#")[0].rsplit("/", 1)[1]) and sealed[0].id not in link
    # ...and the requester's and the approver's were republished too (no queue item left).
    for person in (REQUESTER, APPROVER, SECOND_APPROVER):
        slack.wait_for(
            "views.publish",
            lambda c, p=person: c.args.get("user_id") == p and c.at >= since,
        )
    assert all(b["value"] != request_id for b in buttons(home_of(bot, slack, APPROVER)))
    assert "done" in text_of(home_of(bot, slack, REQUESTER))

    # Once the link is used, the Home no longer offers a new one; it offers Rotate on the key the
    # recipient owns now, and nothing else.
    page_url = link.split("#", 1)[0]
    assert http("POST", page_url, headers={"X-Requested-With": "reveal"}).status == 200
    (key,) = iam.list_access_keys(UserName="nina.newhire")["AccessKeyMetadata"]
    assert [(b["action_id"], b["value"]) for b in buttons(home_of(bot, slack, RECIPIENT))] == [
        ("rotate_access_key", f"nina.newhire|{key['AccessKeyId']}")
    ]


def test_home_buttons_refuse_non_approvers_by_dm(start_bot, slack, iam) -> None:
    bot = start_bot()
    _, request_id = file_request(bot, slack)
    approver_home = home_of(bot, slack, APPROVER)
    block_id = next(b["block_id"] for b in buttons(approver_home) if b["value"] == request_id)

    # A stranger and the requester replay the Home's buttons: refused by DM (no channel to
    # post an ephemeral note in), audited, nothing changes.
    for person, action in ((STRANGER, "approve_request"), (STRANGER, "deny_request"), (REQUESTER, "approve_request")):
        before = len(dm_replies(slack, person))
        answer = bot.user.home_block_action(person, action, request_id, view=approver_home, block_id=block_id)
        assert answer.status == 200
        slack.wait_for("chat.postMessage", lambda c, p=person: c.args.get("channel") == f"D{p}", count=before + 1)
        note = dm_replies(slack, person)[-1]
        assert "Nothing was changed" in note or "someone else must decide" in note
    assert slack.calls("chat.postEphemeral") == []
    # No deny-reason modal for a refused deny.
    assert [c.args["view"]["callback_id"] for c in slack.calls("views.open")] == ["onboarding"]
    store = SqliteStore(bot.database_path)
    assert store.get_request(request_id).status == "pending"
    refusals = [e.actor for e in store.audit_events(request_id=request_id) if e.event == "refused_decision"]
    assert sorted(refusals) == sorted([STRANGER, STRANGER, REQUESTER])
    assert iam.list_users()["Users"] == []

    # An approver's Deny from the Home opens the reason modal; the deny lands, the Home refreshes.
    bot.user.home_block_action(APPROVER, "deny_request", request_id, view=approver_home, block_id=block_id)
    modal = slack.wait_for("views.open", lambda c: c.args["view"]["callback_id"] == "deny_reason")[-1].response["view"]
    submitted = bot.user.view_submission(
        APPROVER, modal, {"reason": {"reason": {"type": "plain_text_input", "value": "Use SSO"}}}
    )
    assert submitted.status == 200
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and "Use SSO" in c.args["text"]
    )
    assert store.get_request(request_id).status == "denied"
    # A late Approve click from a stale Home loses, and the approver hears why by DM.
    before = len(dm_replies(slack, SECOND_APPROVER))
    bot.user.home_block_action(SECOND_APPROVER, "approve_request", request_id, view=approver_home, block_id=block_id)
    slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == f"D{SECOND_APPROVER}", count=before + 1)
    assert "already denied" in dm_replies(slack, SECOND_APPROVER)[-1]
    assert iam.list_users()["Users"] == []
