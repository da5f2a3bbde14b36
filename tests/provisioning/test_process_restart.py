"""A real server process dies in the middle of provisioning; its replacement finishes the job.

The bot runs under gunicorn against moto server. The test-only exit hook
(``IAM_USER_BOT_TEST_EXIT_AT_STEP``) makes the worker ``os._exit`` right after a plan step's IAM
call and before the journal records it as done: the worst moment. gunicorn's master then starts
a new worker, whose start-up resumes the request from the journal (the dead worker's lease is
free because its process is gone). ``test_provisioning.py`` covers every step in-process.
"""

from __future__ import annotations

import time

import pytest

from bot.domain.states import RequestStatus
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER
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

pytestmark = pytest.mark.e2e  # every test here starts the bot or the demo as real processes


@pytest.mark.parametrize(("index", "what"), [(2, "user created"), (4, "access key created, its secret lost")])
def test_killed_worker_is_replaced_and_resumes_to_one_complete_user(
    start_bot, slack, iam, moto_server, index: int, what: str
) -> None:
    slack.add_user(SECOND_RECIPIENT, name="omar.newhire", email="omar.newhire@example.com")
    world = build_world(iam)
    try:
        bot = start_bot(IAM_USER_BOT_TEST_EXIT_AT_STEP=f"{index}:after")
        store = SqliteStore(bot.database_path)
        request = store.create_request(REQUESTER, full_form(world))
        # What announcing it would store: the review approvers judge (the click needs one).
        make_harness(moto_server, slack, bot.database_path).services.approvals.prepare_review(request)
        answer = bot.user.block_action(
            APPROVER, "approve_request", request.id, channel=APPROVAL_CHANNEL, message_ts="1.1"
        )
        assert answer.status == 200

        deadline = time.monotonic() + 90
        while store.get_request(request.id).status is not RequestStatus.PROVISIONED:
            assert time.monotonic() < deadline, f"not provisioned after a crash ({what})"
            assert store.get_request(request.id).status is not RequestStatus.FAILED, store.get_request(request.id).error
            time.sleep(0.2)

        log = bot.process.log_text()
        assert f"exiting at {index}:after" in log and "resuming provisioning" in log
        events = [e.event for e in store.audit_events(request_id=request.id)]
        assert events.count("provisioning_started") == 1 and events.count("provisioning_resumed") == 1
        assert sorted(u["UserName"] for u in iam.list_users()["Users"]) == ["nina.newhire", TEMPLATE_USER]
        state = user_state(iam, "nina.newhire")
        assert len(state["access_keys"]) == 1 and state["login_profile"] and state["inline"]
        journal = {
            row[0]: row[1:]
            for row in store.db.conn.execute(
                "SELECT step_index, state, attempts FROM journal WHERE request_id = ?", (request.id,)
            )
        }
        assert journal[index] == ("done", 2)  # the interrupted step ran once more
        (creds,) = revealed_credentials(slack, store, RECIPIENT)
        assert creds["access_key_id"] == state["access_keys"][0]
    finally:
        reset_password_policy(iam)
