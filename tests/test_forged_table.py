"""The security review's finding (issues 14/17), replayed as it was found: someone with a DynamoDB
client on the bot's table and nothing else (no IAM permission, no Slack approval) writes a request,
flips it to ``provisioning`` and stores a plan attaching AdministratorAccess; the every-minute
schedule then runs the AWS Lambda function's periodic jobs. Before the approval seal the bot
created the user, attached the policy and sent the attacker a one-time link; now it creates
nothing, tells the approvers' channel, and audits the refusal.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from bot.domain.models import AccessType, PermissionMode, RequestForm
from bot.domain.plan import build_plan
from bot.domain.states import RequestStatus
from bot.provisioning.guard import AUDIT_EVENT
from bot.sandbox.function_url import context
from bot.serverless import Function
from bot.storage.dynamodb import DynamoStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, STRANGER
from tests.support.lambda_function import deploy

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


@pytest.fixture
def function(moto_server, slack, dynamodb_table: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Function]:
    """The bot as deployed on AWS Lambda, on ``dynamodb_table`` (as tests/test_serverless.py builds it)."""
    with deploy(moto_server, slack, dynamodb_table, monkeypatch) as deployed:
        yield deployed.function


def test_a_request_and_plan_forged_in_the_table_create_nothing_at_the_next_schedule(
    function: Function, moto_server, slack, iam, dynamodb_table: str
) -> None:
    # The attacker: a DynamoDB client on the table (PowerUserAccess, AmazonDynamoDBFullAccess…).
    attacker_db = moto_server.boto3_client("dynamodb")
    store = DynamoStore(dynamodb_table, client=attacker_db)
    form = RequestForm(
        recipients=(STRANGER,),
        user_names=("svc-backup",),
        access_types=frozenset({AccessType.PROGRAMMATIC}),
        permission_mode=PermissionMode.POLICIES,
        policy_arns=(ADMIN_ARN,),
        justification="forged",
    )
    forged = store.create_request(STRANGER, form)
    attacker_db.update_item(
        TableName=dynamodb_table,
        Key={"pk": {"S": f"REQ#{forged.id}"}, "sk": {"S": "REQ"}},
        UpdateExpression="SET #s = :p, gsi2pk = :g, decided_by = :a",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":p": {"S": "provisioning"},
            ":g": {"S": "STATUS#provisioning"},
            ":a": {"S": APPROVER},
        },
    )
    request = store.get_request(forged.id)
    assert request is not None and request.status is RequestStatus.PROVISIONING
    store.save_plan(forged.id, build_plan(request, APPROVER, account_id="123456789012"), None)

    function.handle({"iam_user_bot": "periodic_jobs"}, context())  # the every-minute schedule

    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_user(UserName="svc-backup")
    ephemeral = [c for c in slack.calls("chat.postEphemeral") if c.args.get("user") == STRANGER]
    assert ephemeral == [] and "/credentials/" not in json.dumps([c.args for c in slack.calls()])
    assert store.get_request(forged.id).status is RequestStatus.FAILED  # type: ignore[union-attr]
    audited = [e.event for e in store.audit_events(request_id=forged.id)]
    assert AUDIT_EVENT in audited and "approved" not in audited and "step_started" not in audited
    posts = [c.args["text"] for c in slack.calls("chat.postMessage") if c.args.get("channel") == APPROVAL_CHANNEL]
    assert [p for p in posts if forged.id in p and "tampered" in p] == posts and len(posts) == 1
