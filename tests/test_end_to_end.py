"""The main job end to end: ``/iam-user new`` to a revealed credential, over real HTTP.

The bot runs as a real server process (gunicorn), boto3 in it talks HTTP to moto server, and
every Slack request is correctly signed and shaped like Slack's.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bot.credentials.vault import b64url_decode, open_sealed
from bot.sandbox.processes import http
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER, STRANGER
from tests.support import wizard_driver as wiz
from tests.support.flow import all_text, approval_message, link_from_ephemeral, open_modal, wait_catalog


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_new_user_end_to_end(start_bot, slack, iam, moto_server, tmp_path: Path, store: str) -> None:
    iam.create_group(GroupName="developers")
    iam.create_user(UserName="Existing.User")
    bot = start_bot(store=store)
    view = open_modal(bot, slack, REQUESTER)
    assert view["callback_id"] == "onboarding"
    wait_catalog(bot, slack, view, "developers")

    # Invalid input: a bad name, and a name that exists in IAM with other case. Nothing stored.
    run = wiz.WizardRun(bot.user, REQUESTER, view)
    bad = run.submit(wiz.details([RECIPIENT], "nina newhire", access=["console"]))
    assert bad.status == 200
    assert bad.json()["response_action"] == "errors"
    assert set(bad.json()["errors"]) == {"user_names"}
    dup = run.submit(wiz.details([RECIPIENT], "existing.user", access=["console"]))
    assert "already exists" in dup.json()["errors"]["user_names"]
    none_chosen = run.submit(wiz.details([RECIPIENT], "nina", access=[]))
    assert set(none_chosen.json()["errors"]) == {"access_types"}
    assert bot.store().requests_where() == []

    # A valid request goes details → permissions → tags → review, is stored as pending when the
    # review is submitted, and is posted for approval; the requester hears by DM.
    run.through(
        wiz.details([RECIPIENT], "nina.newhire", access=["console", "programmatic"]),
        wiz.permissions("groups", groups=["developers"]),
        wiz.tags("team=data platform"),
    )
    assert wiz.step_name(run.view) == "review"
    assert bot.store().requests_where() == []
    ok = run.submit(wiz.review())
    assert ok.status == 200 and not ok.body
    ts, request_id = approval_message(slack)
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and request_id in c.args["text"]
    )
    assert bot.store().get_request(request_id).status == "pending"

    # Someone outside APPROVER_USER_IDS clicks Approve: an ephemeral refusal, nothing changes.
    refused = bot.user.block_action(STRANGER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert refused.status == 200
    slack.wait_for("chat.postEphemeral", lambda c: c.args.get("user") == STRANGER)
    assert bot.store().get_request(request_id).status == "pending"
    assert iam.list_users()["Users"][0]["UserName"] == "Existing.User" and len(iam.list_users()["Users"]) == 1

    # The approver approves: the message loses its buttons and names the approver; IAM gets the user.
    approved = bot.user.block_action(APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    assert approved.status == 200
    link = link_from_ephemeral(slack, RECIPIENT)
    final = slack.wait_for(
        "chat.update", lambda c: c.args.get("ts") == ts and "created" in json.dumps(c.args.get("blocks")), timeout=30
    )[-1]
    final_blocks = json.dumps(final.args["blocks"])
    assert "approve_request" not in final_blocks and f"<@{APPROVER}>" in final_blocks
    assert bot.store().get_request(request_id).status == "provisioned"

    user = iam.get_user(UserName="nina.newhire")["User"]
    user_tags = {t["Key"]: t["Value"] for t in user["Tags"]}
    assert user_tags["iam-user-bot:request-id"] == request_id and user_tags["team"] == "data platform"
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="nina.newhire")["Groups"]] == ["developers"]
    assert iam.get_login_profile(UserName="nina.newhire")["LoginProfile"]["UserName"] == "nina.newhire"
    keys = iam.list_access_keys(UserName="nina.newhire")["AccessKeyMetadata"]
    assert len(keys) == 1

    # The link: GET reveals and consumes nothing; a POST without the header is refused.
    assert link.startswith(bot.url + "/credentials/")
    page_url, key = link.split("#", 1)
    secret_id = page_url.rsplit("/", 1)[1]
    page = http("GET", page_url, headers={"User-Agent": "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"})
    assert page.status == 200 and b"Reveal" in page.body
    assert (
        page.headers["cache-control"] == "no-store"
        and "frame-ancestors 'none'" in page.headers["content-security-policy"]
    )
    assert http("POST", page_url).status == 400
    revealed = http("POST", page_url, headers={"X-Requested-With": "reveal"})
    assert revealed.status == 200
    sealed = revealed.json()
    plain = json.loads(open_sealed(secret_id, key, b64url_decode(sealed["iv"]), b64url_decode(sealed["ciphertext"])))
    assert plain["user_name"] == "nina.newhire"
    assert plain["access_key_id"] == keys[0]["AccessKeyId"]
    assert plain["console_url"] == "https://123456789012.signin.aws.amazon.com/console"
    assert len(plain["password"]) >= 20 and "," not in plain["password"] and '"' not in plain["password"]
    assert http("POST", page_url, headers={"X-Requested-With": "reveal"}).status == 410

    # The revealed key really authenticates as the new user.
    sts = moto_server.boto3_client(
        "sts", aws_access_key_id=plain["access_key_id"], aws_secret_access_key=plain["secret_access_key"]
    )
    assert sts.get_caller_identity()["Arn"].endswith(":user/iam-user-bot/nina.newhire")

    # No secret in any Slack call, the bot's log, or the database file's bytes. The link (its
    # key, and its id, which alone could burn it) travels only in the recipient's ephemeral
    # message. Findings name the secret, never show it.
    secrets_found = {
        "password": plain["password"],
        "secret access key": plain["secret_access_key"],
        "link key": key,
        "link id": secret_id,
        "signing secret": bot.signing_secret,
    }
    slack_text = all_text(
        c for c in slack.calls() if not (c.method == "chat.postEphemeral" and c.args["user"] == RECIPIENT)
    )
    log_text = bot.process.log_text()
    assert "request filed" in log_text  # the log really was captured
    if store == "sqlite":
        # The database and its WAL and SHM files: the bot's user only.
        db_files = sorted(tmp_path.glob("bot.db*"))
        assert {p.name for p in db_files} >= {"bot.db", "bot.db-wal", "bot.db-shm"}
        assert {p.name: oct(p.stat().st_mode & 0o777) for p in db_files} == {p.name: "0o600" for p in db_files}
    stored = bot.stored_text()
    assert "nina.newhire" in stored  # the store's bytes really were read
    leaks = [
        f"{name} in {place}"
        for name, secret in secrets_found.items()
        for place, haystack in (("Slack", slack_text), ("log", log_text), ("database", stored))
        if secret in haystack
    ]
    recipient_text = all_text(slack.calls("chat.postEphemeral"))
    leaks += [
        f"{name} in the link message"
        for name in ("password", "secret access key")
        if secrets_found[name] in recipient_text
    ]
    assert leaks == []

    # The audit log holds every step, in order.
    events = [e.event for e in bot.store().audit_events(request_id=request_id)]
    for expected in ("filed", "approval_posted", "refused_decision", "approved", "provisioning_started", "provisioned"):
        assert expected in events
    assert events.index("approved") < events.index("provisioned") < events.index("link_revealed")

    # status by DM names the request and its state.
    bot.user.direct_message(REQUESTER, f"D{REQUESTER}", "status")
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and "done" in c.args.get("text", "")
    )


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_deny_changes_nothing_in_iam_and_tells_the_requester(start_bot, slack, iam, store: str) -> None:
    bot = start_bot(store=store)
    run = wiz.WizardRun(bot.user, REQUESTER, open_modal(bot, slack, REQUESTER))
    run.through(
        wiz.details([RECIPIENT], "nina.denied", access=["programmatic"]),
        wiz.permissions("groups"),
        wiz.tags(),
        wiz.review(),
    )
    ts, request_id = approval_message(slack)
    bot.user.block_action(APPROVER, "deny_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    modal = slack.wait_for("views.open", lambda c: c.args["view"]["callback_id"] == "deny_reason")[-1].response["view"]
    answer = bot.user.view_submission(
        APPROVER, modal, {"reason": {"reason": {"type": "plain_text_input", "value": "Use SSO"}}}
    )
    assert answer.status == 200
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and "Use SSO" in c.args["text"]
    )
    request = bot.store().get_request(request_id)
    assert request.status == "denied" and request.decided_by == APPROVER and request.reason == "Use SSO"
    assert iam.list_users()["Users"] == []
    # The late approve click loses: nothing created, the clicker is told who decided.
    bot.user.block_action(APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    note = slack.wait_for("chat.postEphemeral", lambda c: c.args.get("user") == APPROVER)[-1]
    assert "already denied" in note.args["text"]
    assert iam.list_users()["Users"] == []


@pytest.mark.parametrize("store", ["sqlite", "dynamodb"])
def test_forged_or_stale_requests_get_401_and_change_nothing(start_bot, slack, store: str) -> None:
    bot = start_bot(store=store)
    form = "command=%2Fiam-user&text=new&user_id=U0REQUEST1&trigger_id=1.2.3"
    forged = bot.user.signed_headers(form, "application/x-www-form-urlencoded")
    forged["X-Slack-Signature"] = "v0=" + "0" * 64
    assert http("POST", f"{bot.url}/slack/events", form.encode(), forged).status == 401
    stale = bot.user.signed_headers(form, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 600)
    assert http("POST", f"{bot.url}/slack/events", form.encode(), stale).status == 401
    unsigned = {"Content-Type": "application/x-www-form-urlencoded"}
    assert http("POST", f"{bot.url}/slack/events", form.encode(), unsigned).status == 401
    assert slack.calls("views.open") == []
    assert bot.store().audit_events() == []
