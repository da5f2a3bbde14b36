"""Two bot servers that share nothing but one DynamoDB table, as two hosts behind a load balancer.

Each is a real gunicorn process against moto server; Slack requests go to either. The table's
conditional writes are all that keeps them from deciding, or provisioning, twice.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from bot.domain.states import RequestStatus
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER, SECOND_APPROVER
from tests.support import wizard_driver as wiz
from tests.support.provisioning import (
    SECOND_RECIPIENT,
    TEMPLATE_USER,
    build_world,
    full_form,
    make_harness,
    reset_password_policy,
    revealed_credentials,
    user_state,
)

pytestmark = pytest.mark.e2e


def file_request(bot, slack, user_name: str) -> tuple[str, str]:
    """File a request through ``bot``'s wizard: (approval message ts, request id)."""
    answer, trigger_id = bot.user.slash_command(REQUESTER, "new")
    assert answer.status == 200
    view = slack.wait_for("views.open", lambda c: c.args.get("trigger_id") == trigger_id)[0].response["view"]
    filed = wiz.WizardRun(bot.user, REQUESTER, view).through(
        wiz.details([RECIPIENT], user_name, access=["programmatic"]), wiz.permissions(), wiz.tags(), wiz.review()
    )
    assert filed.status == 200 and not filed.body, filed.body
    call = slack.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == APPROVAL_CHANNEL and user_name in json.dumps(c.args.get("blocks")),
    )[-1]
    blocks = call.args["blocks"]
    blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
    return call.response["ts"], next(e["value"] for b in blocks if b["type"] == "actions" for e in b["elements"])


def wait_status(store, request_id: str, wanted: RequestStatus, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while (status := store.get_request(request_id).status) is not wanted:
        assert status is not RequestStatus.FAILED, store.get_request(request_id).error
        assert time.monotonic() < deadline, f"{request_id} is {status}, not {wanted}"
        time.sleep(0.2)


def test_twenty_concurrent_approvals_across_two_hosts_create_one_user(start_bot, slack, iam) -> None:
    first = start_bot(store="dynamodb")
    second = start_bot(store="dynamodb", table=first.env["DYNAMODB_TABLE"], signing_secret=first.signing_secret)
    ts, request_id = file_request(first, slack, "two.hosts")

    clicks = [(first if i % 2 else second, APPROVER if i % 3 else SECOND_APPROVER) for i in range(20)]

    def click(host_and_who):
        host, who = host_and_who
        return host.user.block_action(who, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(click, clicks))
    assert [a.status for a in answers] == [200] * 20  # ten from each host
    store = second.store()
    wait_status(store, request_id, RequestStatus.PROVISIONED)

    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["two.hosts"]
    assert len(iam.list_access_keys(UserName="two.hosts")["AccessKeyMetadata"]) == 1
    # Clicks are acked before they are handled: wait until every loser has been told, then count.
    losers = slack.wait_for(
        "chat.postEphemeral", lambda c: "already approved" in c.args.get("text", ""), count=19, timeout=30
    )
    assert len(losers) == 19
    events = [e.event for e in store.audit_events(request_id=request_id)]
    for once in ("approved", "provisioning_started", "provisioned", "link_issued"):
        assert events.count(once) == 1, once
    assert events.count("refused_decision") == 19
    assert len([c for c in slack.calls("chat.postEphemeral") if c.args.get("user") == RECIPIENT]) == 1


def test_a_host_dies_mid_provisioning_and_another_host_finishes(start_bot, slack, iam, moto_server) -> None:
    """Host A dies right after IAM created the access key (its secret lost with the process); A is
    then stopped for good. Host B, started on the same table, resumes from the journal: the lost
    key is replaced, and the user ends complete with exactly one key."""
    slack.add_user(SECOND_RECIPIENT, name="omar.newhire", email="omar.newhire@example.com")
    world = build_world(iam)
    try:
        dying = start_bot(store="dynamodb", IAM_USER_BOT_TEST_EXIT_AT_STEP="4:after")
        store = dying.store()
        request = store.create_request(REQUESTER, full_form(world))
        make_harness(moto_server, slack, dying.database_path, store=store).services.approvals.prepare_review(request)
        answer = dying.user.block_action(
            APPROVER, "approve_request", request.id, channel=APPROVAL_CHANNEL, message_ts="1.1"
        )
        assert answer.status == 200
        deadline = time.monotonic() + 60
        while "exiting at 4:after" not in dying.process.log_text():
            assert time.monotonic() < deadline, "host A never reached the crash point"
            time.sleep(0.2)
        dying.process.stop(kill=True)  # the whole host is gone, its replacement workers too
        assert store.get_request(request.id).status is RequestStatus.PROVISIONING

        other = start_bot(store="dynamodb", table=dying.env["DYNAMODB_TABLE"], signing_secret=dying.signing_secret)
        wait_status(store, request.id, RequestStatus.PROVISIONED, timeout=90)
        assert "resuming provisioning" in other.process.log_text()
        events = [e.event for e in store.audit_events(request_id=request.id)]
        assert events.count("provisioning_started") == 1 and events.count("provisioning_resumed") >= 1
        assert sorted(u["UserName"] for u in iam.list_users()["Users"]) == ["nina.newhire", TEMPLATE_USER]
        state = user_state(iam, "nina.newhire")
        assert len(state["access_keys"]) == 1 and state["login_profile"] and state["inline"]
        (creds,) = revealed_credentials(slack, store, RECIPIENT)
        assert creds["access_key_id"] == state["access_keys"][0]
    finally:
        reset_password_policy(iam)
