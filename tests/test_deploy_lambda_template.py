"""The Lambda deployment as code (deploy/iam-user-bot-lambda.yaml) agrees with the code it deploys.

It lints clean; its table is the one ``init-store`` defines and, deployed into moto's
CloudFormation, one the bot accepts; its handler, schedule input, environment and routes are the
ones the code reads; its runtime policy allows every DynamoDB call the function makes (recorded in
tests/test_serverless.py) and no IAM action, so the bot's IAM permissions stay the role template's
alone (its boundary Rule, its group narrowing: tests/test_deploy_template.py). moto's
CloudFormation leaves API Gateway v2, the scheduler and role policies as placeholders, so those are
checked from the template, not from a deployed stack.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import uuid
import zipfile
from pathlib import Path
from typing import Any

import pytest
from cfnlint.api import lint_file
from cfnlint.decode import cfn_yaml

from bot.config import Settings
from bot.serverless import is_schedule
from bot.storage.dynamodb import DynamoStore
from bot.storage.dynamodb.schema import create_table, definition
from bot.storage.dynamodb.table import TTL_ATTRIBUTE, Table
from bot.web import create_flask

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "iam-user-bot-lambda.yaml"
# DynamoDB actions a TransactWriteItems call needs, by the kind of its items.
TRANSACT_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
FLASK_VARIABLE = re.compile(r"<(?:[a-z]+:)?([a-z_]+)>")  # Flask's <path:filename> is API Gateway's {filename}


def template() -> dict[str, Any]:
    return cfn_yaml.load(str(TEMPLATE))


def resource(kind: str) -> list[dict[str, Any]]:
    return [r["Properties"] for r in template()["Resources"].values() if r["Type"] == kind]


def test_the_template_passes_cfn_lint() -> None:
    assert [str(m) for m in lint_file(TEMPLATE)] == []


def test_its_table_is_the_one_init_store_defines() -> None:
    (table,) = resource("AWS::DynamoDB::Table")
    wanted = definition("any")

    def by_name(items: list[dict[str, Any]], key: str) -> dict[str, Any]:
        return {item[key]: json.loads(json.dumps(item)) for item in items}

    assert table["BillingMode"] == wanted["BillingMode"]
    assert by_name(table["AttributeDefinitions"], "AttributeName") == by_name(
        wanted["AttributeDefinitions"], "AttributeName"
    )
    assert json.loads(json.dumps(table["KeySchema"])) == wanted["KeySchema"]
    assert by_name(table["GlobalSecondaryIndexes"], "IndexName") == by_name(
        wanted["GlobalSecondaryIndexes"], "IndexName"
    )
    assert table["SSESpecification"] == {"SSEEnabled": True}
    assert table["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert table["TimeToLiveSpecification"] == {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}
    assert template()["Resources"]["Table"]["DeletionPolicy"] == "Retain"


def test_its_handler_schedule_and_environment_are_what_the_code_reads() -> None:
    (function,) = resource("AWS::Lambda::Function")
    module, _, name = function["Handler"].rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))
    (schedule,) = resource("AWS::Scheduler::Schedule")
    assert is_schedule(json.loads(schedule["Target"]["Input"]))
    assert schedule["ScheduleExpression"] == "rate(1 minute)"
    variables = function["Environment"]["Variables"]
    fields = {name.upper() for name in Settings.model_fields}
    assert set(variables) <= fields, set(variables) - fields
    assert variables["STORE"] == "dynamodb" and variables["DYNAMODB_TABLE"] == {"Ref": "Table"}
    # No secret value in the function's configuration: only where to read them.
    assert not {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "CUSTOM_PASSWORD_SEALING_KEY"} & set(variables)


def test_its_routes_are_exactly_the_bots_http_paths(tmp_path: Path) -> None:
    from slack_bolt import App

    from bot.config import load_settings

    settings = load_settings(
        slack_bot_token="xoxb-unused-0000000000",
        slack_signing_secret="unused",
        approval_channel_id="C0APPROVALS",
        approver_user_ids="U0APPROVE1",
        public_base_url="https://bot.example.com",
    )
    bolt = App(token="xoxb-unused-0000000000", signing_secret="unused", token_verification_enabled=False)
    flask = create_flask(bolt, reveals=None, settings=settings)  # type: ignore[arg-type]
    served = {
        method + " " + FLASK_VARIABLE.sub(r"{\1}", rule.rule)
        for rule in flask.url_map.iter_rules()
        for method in rule.methods or ()
        if method in {"GET", "POST"}
    }
    routes = {route["RouteKey"] for route in resource("AWS::ApiGatewayV2::Route")}
    # Every route reaches a path the bot serves; the favicon is left to API Gateway's 404.
    assert routes == served - {"GET /favicon.ico"}


def policy_actions() -> dict[str, set[str]]:
    """Every action each IAM policy of the template allows, by resource name (inline policies of
    a role included; both arms of an ``Fn::If`` statement)."""

    def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
        found = []
        for statement in document["Statement"]:
            found += statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
        return found

    def actions(statement: dict[str, Any]) -> set[str]:
        action = statement.get("Action", statement.get("NotAction", []))
        return {action} if isinstance(action, str) else set(action)

    allowed: dict[str, set[str]] = {}
    for name, item in template()["Resources"].items():
        documents = [item["Properties"]["PolicyDocument"]] if "PolicyDocument" in item["Properties"] else []
        documents += [p["PolicyDocument"] for p in item["Properties"].get("Policies", [])]
        for document in documents:
            for statement in statements(document):
                assert "NotAction" not in statement, f"{name}: NotAction allows everything it does not name"
                if statement["Effect"] == "Allow":
                    allowed.setdefault(name, set()).update(actions(statement))
    return allowed


def test_it_adds_no_iam_permission_to_the_bots_role() -> None:
    # The function runs as the role stack's role, whose policy is `policy bot`'s (a boundary
    # required unless NoBoundary=true, group writes on the allowed groups only). An IAM action, or
    # a wildcard, added here would widen what the bot's credentials can do past that stack's Rules.
    (function,) = resource("AWS::Lambda::Function")
    assert function["Role"] == {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${RoleName}"}
    allowed = policy_actions()
    assert set(allowed) == {"RuntimePolicy", "SchedulerRole"}
    everything = set().union(*allowed.values())
    assert not [a for a in everything if a.lower().startswith(("iam:", "sts:")) or "*" in a], everything
    assert allowed["SchedulerRole"] == {"lambda:InvokeFunction"}


def runtime_dynamodb_actions() -> set[str]:
    """The DynamoDB actions the template's runtime policy allows the function (no prefix)."""
    (policy,) = resource("AWS::IAM::RolePolicy")
    return {
        action.removeprefix("dynamodb:")
        for statement in policy["PolicyDocument"]["Statement"]
        if isinstance(statement, dict) and statement.get("Sid") == "ReadAndWriteTheBotsTable"
        for action in statement["Action"]
    }


def dynamodb_actions_of(operation: str, params: dict[str, Any]) -> set[str]:
    """The IAM actions one DynamoDB call needs (a transaction: one per kind of item in it)."""
    if operation == "TransactWriteItems":
        return {TRANSACT_ACTIONS[kind] for item in params["TransactItems"] for kind in item}
    return {operation}


@pytest.mark.e2e
def test_deployed_into_moto_its_table_is_accepted_by_init_store_and_the_store(moto_server) -> None:
    s3 = moto_server.boto3_client("s3")
    bucket = f"code-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("bot/__init__.py", "")
    s3.put_object(Bucket=bucket, Key="iam-user-bot.zip", Body=package.getvalue())
    role = f"iam-user-bot-{uuid.uuid4().hex[:6]}"
    moto_server.boto3_client("iam").create_role(RoleName=role, AssumeRolePolicyDocument="{}")
    secret = moto_server.boto3_client("secretsmanager").create_secret(Name=role, SecretString="{}")["ARN"]
    table_name = f"bot-table-{uuid.uuid4().hex[:8]}"
    parameters = {
        "RoleName": role,
        "FunctionName": role,
        "TableName": table_name,
        "CodeS3Bucket": bucket,
        "CodeS3Key": "iam-user-bot.zip",
        "SlackSecretArn": secret,
        "ApprovalChannelId": "C0APPROVALS",
        "ApproverUserIds": "U0APPROVE1",
    }
    cloudformation = moto_server.boto3_client("cloudformation")
    cloudformation.create_stack(
        StackName=role,
        TemplateBody=TEMPLATE.read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = cloudformation.describe_stacks(StackName=role)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    function = moto_server.boto3_client("lambda").get_function(FunctionName=role)["Configuration"]
    assert function["Handler"] == "bot.serverless.handler" and function["Runtime"] == "python3.12"
    assert function["Environment"]["Variables"]["SLACK_SECRETS_FROM"] == f"secretsmanager:{secret}"

    # The stack's table has the bot's keys: init-store accepts it (and only adds the META item).
    client = moto_server.boto3_client("dynamodb")
    done = create_table(Table(table_name, client))
    assert f"table {table_name} exists" in done
    assert DynamoStore(table_name, client=client).schema_version >= 1
