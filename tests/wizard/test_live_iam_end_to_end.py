"""IAM changed by someone else while the bot runs (two workers, moto server, the Slack stand-in):
a source user created 5 s earlier is offered in the menu and copied; a name taken in another case
and a password too weak for a policy tightened after start are refused at the field before
anything is filed. The catalog the bot loaded at start knows none of these changes."""

from __future__ import annotations

import json
import time

from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER
from tests.support import wizard_driver as wiz
from tests.support.flow import approval_message, link_from_ephemeral, open_modal, wait_catalog

POLICY_DOC = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*",
                                                                  "Resource": "*"}]})  # fmt: skip
OFFERED_WITHIN_SECONDS = 10


def offered(bot, view, action_id: str, query: str) -> list[str]:
    answer = bot.user.block_suggestion(REQUESTER, view, action_id, query)
    assert answer.status == 200
    body = answer.json() or {}
    options = body.get("options") or [o for g in body.get("option_groups", []) for o in g["options"]]
    return [o["value"] for o in options]


def test_changes_made_in_iam_while_the_bot_runs_are_what_it_decides_on(start_bot, slack, iam) -> None:
    iam.create_group(GroupName="developers")
    for i in range(12):
        iam.create_user(UserName=f"late.staff{i:02d}")  # enough "late…" users for a search to find plenty
    bot = start_bot(workers=2)
    view = open_modal(bot, slack, REQUESTER)
    wait_catalog(bot, slack, view, "developers")

    # Someone else, in the console, while the bot runs.
    policy = iam.create_policy(PolicyName="late-read", PolicyDocument=POLICY_DOC)["Policy"]["Arn"]
    iam.create_user(UserName="late.template")
    iam.add_user_to_group(UserName="late.template", GroupName="developers")
    iam.attach_user_policy(UserName="late.template", PolicyArn=policy)
    iam.create_user(UserName="Gina.Ops")
    iam.update_account_password_policy(MinimumPasswordLength=30, AllowUsersToChangePassword=True)
    time.sleep(5)

    # Typed in part, the new source user is offered within 10 s (a search that finds little reads
    # the users again; both workers answer, the one that did not read takes the other's copy).
    started, in_a_row = time.monotonic(), 0
    while in_a_row < 6:  # six answers in a row: both workers offer it
        in_a_row = in_a_row + 1 if "late.template" in offered(bot, view, "copy_from_user", "late.t") else 0
        assert time.monotonic() - started < OFFERED_WITHIN_SECONDS, "the new user was not offered within 10 s"
        time.sleep(0.2)
    assert offered(bot, view, "copy_from_user", "Gina.Ops")[0] == "Gina.Ops"  # an exact name: at once

    run = wiz.WizardRun(bot.user, REQUESTER, view)
    taken = run.submit(wiz.details([RECIPIENT], "gina.ops", access=["programmatic"])).json()
    assert taken["response_action"] == "errors"
    assert "“gina.ops” already exists (spelled “Gina.Ops”)" in taken["errors"]["user_names"]
    weak = run.submit(
        wiz.details(
            [RECIPIENT],
            "nina.late",
            access=["console"],
            password_mode="custom",
            custom_password="Blue-Canyon-42-Orchard!",
        )
    ).json()
    assert weak["response_action"] == "errors" and "needs at least 30" in weak["errors"]["custom_password"]
    store = SqliteStore(bot.database_path)
    assert store.requests_where() == []

    # The new user copied: its group and the policy made after start.
    answer = run.through(
        wiz.details([RECIPIENT], "nina.late", access=["programmatic"]),
        wiz.permissions("copy_user", copy_from_user="late.template"),
        wiz.tags(),
        wiz.review(),
    )
    assert answer.status == 200 and not answer.body
    ts, request_id = approval_message(slack)
    bot.user.block_action(APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts)
    link_from_ephemeral(slack, RECIPIENT)
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="nina.late")["Groups"]] == ["developers"]
    assert [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName="nina.late")["AttachedPolicies"]] == [
        policy
    ]
    # The link is posted before the run's last compare-and-set: wait for it (a loaded machine is slow).
    deadline = time.monotonic() + 30
    while store.get_request(request_id).status != "provisioned" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert store.get_request(request_id).status == "provisioned"
