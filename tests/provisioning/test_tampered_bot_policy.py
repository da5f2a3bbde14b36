"""An approved request that wants MFA meets a replaced ``iam-user-bot-require-mfa`` (an ``"*"``
document under the bot's name, tagged managed, as the bot's own credentials may create): the
request fails before any user is made, nothing is attached, and the approvers and the requester
are told why. Against moto server, through the real provisioning service."""

from __future__ import annotations

import json

from bot.domain.plan import MANAGED_TAG, MFA_POLICY_NAME, bot_policy_arn
from bot.domain.states import RequestStatus
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER
from tests.support.provisioning import (
    TEMPLATE_USER,
    build_world,
    file_and_approve,
    full_form,
    make_harness,
    reset_password_policy,
    revealed_credentials,
)

EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def test_a_replaced_bot_policy_fails_the_request_cleanly_and_says_so(moto_server, slack, iam, tmp_path) -> None:
    world = build_world(iam)
    try:
        arn = bot_policy_arn("123456789012", MFA_POLICY_NAME)
        iam.create_policy(
            PolicyName=MFA_POLICY_NAME,
            PolicyDocument=json.dumps(EVERYTHING),
            Tags=[{"Key": MANAGED_TAG, "Value": "true"}],
        )
        bot = make_harness(moto_server, slack, tmp_path / "bot.db")
        request = file_and_approve(bot, full_form(world), announce=True)  # the failure updates its message

        failed = bot.provisioning.provision(request.id)

        assert failed is not None and failed.status is RequestStatus.FAILED
        assert "PolicyDocumentChanged" in failed.error and MFA_POLICY_NAME in failed.error
        # Nothing was made or attached: no new user, the replaced policy attached to nobody (and
        # kept for the investigation: this request did not create it).
        assert [u["UserName"] for u in iam.list_users()["Users"]] == [TEMPLATE_USER]
        assert {"CreateUser", "AttachUserPolicy", "DeletePolicy"}.isdisjoint(bot.recorder.operations())
        assert iam.get_policy(PolicyArn=arn)["Policy"]["AttachmentCount"] == 0
        # The approvers' message, the approver who approved and the requester say what happened.
        board = [c.args for c in slack.calls("chat.update") if c.args.get("channel") == APPROVAL_CHANNEL]
        assert board and "does not hold the document this bot ships" in json.dumps(board[-1])
        for person in (REQUESTER, APPROVER):
            slack.wait_for(
                "chat.postMessage",
                lambda c, p=person: (
                    c.args.get("channel") == f"D{p}" and "does not hold the document this bot ships" in c.args["text"]
                ),
            )
        # No link went out.
        assert revealed_credentials(slack, bot.store, RECIPIENT) == []
    finally:
        reset_password_policy(iam)
