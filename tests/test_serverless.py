"""The AWS Lambda entry point (``bot.serverless``) with the real event shapes over real HTTP.

A local function URL (:class:`bot.sandbox.function_url.FunctionUrl`) turns each HTTP request into a
payload format 2.0 event for ``Function.handle``; the lazy listeners' asynchronous self-invocations
run the same function on another thread (:class:`LocalLambda`), as Lambda would. State is in a
DynamoDB table on moto server, IAM is moto server, Slack is the stand-in.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import unquote_plus

import pytest
from slack_sdk.signature import SignatureVerifier

from bot.credentials.vault import b64url_decode, open_sealed
from bot.domain.models import AccessType, RequestForm
from bot.domain.states import RequestStatus
from bot.sandbox.function_url import FunctionUrl, LocalLambda
from bot.sandbox.processes import http
from bot.sandbox.slack_user import SlackUser
from bot.serverless import Function, is_schedule
from bot.storage.dynamodb import DynamoStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN, RECIPIENT, REQUESTER, dynamodb_dump
from tests.support import wizard_driver as wiz
from tests.support.flow import all_text, approval_message, link_from_ephemeral, open_modal, wait_catalog
from tests.support.lambda_function import SIGNING_SECRET, Deployed, deploy
from tests.test_deploy_lambda_template import dynamodb_actions_of, runtime_dynamodb_actions

SCHEDULE_EVENT = {"iam_user_bot": "periodic_jobs"}


@pytest.fixture
def lazy_delay() -> float:
    """Seconds Lambda takes to run each asynchronous invocation (a test may override it)."""
    return 0.0


@pytest.fixture
def deployed(
    moto_server, slack, dynamodb_table: str, monkeypatch: pytest.MonkeyPatch, lazy_delay: float, tmp_path
) -> Iterator[Deployed]:
    # As in Lambda's code folder (read-only there): the function must write nothing where it runs.
    monkeypatch.chdir(tmp_path)
    with deploy(moto_server, slack, dynamodb_table, monkeypatch, lazy_delay, pending_request_ttl_seconds=3600) as it:
        yield it


def test_new_user_through_the_function_url_with_lazy_invocations(deployed: Deployed, slack, iam, moto_server) -> None:
    # Every DynamoDB call the function makes, to hold against the template's runtime policy.
    needed: set[str] = set()
    client = deployed.function.services.store.table.client
    client.meta.events.register(
        "provide-client-params.dynamodb.*",
        lambda params, model, **_: needed.update(dynamodb_actions_of(model.name, params)),
    )
    iam.create_group(GroupName="developers")
    view = open_modal(deployed, slack, REQUESTER)
    wait_catalog(deployed, slack, view, "developers")  # the cold start loads the catalog
    assert list(Path.cwd().iterdir()) == []  # kept in memory: no catalog file where the function runs
    run = wiz.WizardRun(deployed.user, REQUESTER, view)
    filed = run.through(
        wiz.details([RECIPIENT], "lena.lambda", access=["console", "programmatic"]),
        wiz.permissions("groups", groups=["developers"]),
        wiz.tags("team=serverless"),
        wiz.review(),
    )
    assert filed.status == 200 and not filed.body
    ts, request_id = approval_message(slack)

    approved = deployed.user.block_action(
        APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=ts
    )
    assert approved.status == 200
    link = link_from_ephemeral(slack, RECIPIENT)
    deployed.invoker.wait()
    # The approval's slow part (provisioning) ran in an asynchronous self-invocation, not in the
    # request Slack waited on: Bolt's lazy-only marker is on a re-invocation of this function.
    lazy = [e for e in deployed.invoker.invocations if e["headers"].get("x-slack-bolt-lazy-only") == "1"]
    assert any("approve_request" in e["body"] for e in lazy), lazy
    store = DynamoStore(deployed.table, client=moto_server.boto3_client("dynamodb"))
    assert store.get_request(request_id).status is RequestStatus.PROVISIONED
    assert [g["GroupName"] for g in iam.list_groups_for_user(UserName="lena.lambda")["Groups"]] == ["developers"]

    # The one-time link is served by the same function (Flask through the WSGI bridge).
    assert link.startswith(deployed.url + "/credentials/")
    page_url, key = link.split("#", 1)
    secret_id = page_url.rsplit("/", 1)[1]
    page = http("GET", page_url)
    assert page.status == 200 and b"Reveal" in page.body and page.headers["cache-control"] == "no-store"
    revealed = http("POST", page_url, headers={"X-Requested-With": "reveal"})
    assert revealed.status == 200, revealed.body
    sealed = revealed.json()
    plain = json.loads(open_sealed(secret_id, key, b64url_decode(sealed["iv"]), b64url_decode(sealed["ciphertext"])))
    assert plain["user_name"] == "lena.lambda"
    assert plain["access_key_id"] == iam.list_access_keys(UserName="lena.lambda")["AccessKeyMetadata"][0]["AccessKeyId"]
    assert http("POST", page_url, headers={"X-Requested-With": "reveal"}).status == 410
    assert http("GET", deployed.url + "/healthz").json()["ok"] is True

    # No secret in Slack (but the recipient's own link message), the table, or the lazy payloads.
    stored = dynamodb_dump(moto_server, deployed.table)
    assert "lena.lambda" in stored
    slack_text = all_text(
        c for c in slack.calls() if not (c.method == "chat.postEphemeral" and c.args["user"] == RECIPIENT)
    )
    lazy_text = json.dumps(deployed.invoker.invocations)
    for secret in (plain["password"], plain["secret_access_key"], key, secret_id):
        assert secret not in stored and secret not in slack_text and secret not in lazy_text
    events = [e.event for e in store.audit_events(request_id=request_id)]
    assert events.index("approved") < events.index("provisioned") < events.index("link_revealed")
    assert {"GetItem", "Query", "PutItem", "UpdateItem"} <= needed  # the recorder really recorded
    assert needed <= runtime_dynamodb_actions(), needed - runtime_dynamodb_actions()


def test_unsigned_or_stale_slack_requests_are_refused_before_bolt(deployed: Deployed, slack) -> None:
    body = "command=%2Fiam-user&text=new&user_id=" + REQUESTER + "&trigger_id=1.2.x"
    forged = http(
        "POST",
        deployed.url + "/slack/events",
        body.encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Signature": "v0=00"},
    )
    assert forged.status == 401
    old = deployed.user.signed_headers(body, "application/x-www-form-urlencoded", timestamp=int(time.time()) - 600)
    stale = http("POST", deployed.url + "/slack/events", body.encode(), old)
    assert stale.status == 401
    garbage = http("POST", deployed.url + "/slack/events", b"\xff\xfe{", {"Content-Type": "application/json"})
    assert garbage.status == 401
    # Invocations that are neither HTTP events nor the schedule (a hand-made test event): 400.
    for odd in ({}, {"rawPath": "/slack/events"}, {"requestContext": "x", "rawPath": "/healthz"}):
        assert deployed.invoke(odd)["statusCode"] == 400
    # A lazy-only marker does not get an unsigned request past the signature check.
    lazy_only = {"Content-Type": "application/x-www-form-urlencoded", "x-slack-bolt-lazy-only": "1"}
    assert http("POST", deployed.url + "/slack/events", body.encode(), lazy_only).status == 401
    time.sleep(0.3)
    assert [c.method for c in slack.calls() if c.method != "auth.test"] == []
    assert deployed.invoker.invocations == []


def test_a_scheduled_event_runs_the_periodic_jobs(deployed: Deployed, slack, iam, moto_server) -> None:
    # A request filed two hours ago under a one-hour limit, and a group created after the cold start.
    past = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    old_store = DynamoStore(deployed.table, clock=lambda: past, client=moto_server.boto3_client("dynamodb"))
    form = RequestForm(
        recipients=(RECIPIENT,), user_names=("old.request",), access_types=frozenset({AccessType.PROGRAMMATIC})
    )
    stale = old_store.create_request(REQUESTER, form)
    deployed.function.catalog_ready.wait(10)
    iam.create_group(GroupName="late-group")
    suggest = deployed.user.block_suggestion(REQUESTER, {"id": "V1", "callback_id": "onboarding"}, "groups", "late")
    assert "late-group" not in json.dumps(suggest.json())

    assert is_schedule(SCHEDULE_EVENT) and is_schedule({"detail-type": "Scheduled Event", "source": "aws.events"})
    answer = deployed.invoke(SCHEDULE_EVENT)
    assert answer["ok"] is True
    assert answer["jobs"] == [job.name for job in deployed.function.services.jobs.jobs]
    assert {"catalog_refresh", "resume_interrupted", "pending_expiry", "link_expiry", "lifecycle_check"} <= set(
        answer["jobs"]
    )

    store = DynamoStore(deployed.table, client=moto_server.boto3_client("dynamodb"))
    assert store.get_request(stale.id).status is RequestStatus.EXPIRED
    told = slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}")
    assert any(stale.id in c.args["text"] for c in told)
    suggest = deployed.user.block_suggestion(REQUESTER, {"id": "V1", "callback_id": "onboarding"}, "groups", "late")
    assert "late-group" in [o["value"] for o in suggest.json()["options"]]
    # Nothing but a schedule runs the jobs: an unknown event is not one.
    assert not is_schedule({"rawPath": "/healthz"}) and not is_schedule({"iam_user_bot": "other"})


def test_the_cold_start_reads_the_slack_secrets_from_secrets_manager(
    moto_server, slack, dynamodb_table: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``bot.serverless.handler`` as Lambda calls it: the environment the template sets (secrets
    only by reference), the function built on the first invocation and kept for the next."""
    import bot.serverless

    secret = moto_server.boto3_client("secretsmanager").create_secret(
        Name=f"iam-user-bot-{dynamodb_table}",
        SecretString=json.dumps({"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": SIGNING_SECRET}),
    )
    environment = {
        **moto_server.client_env(),
        "SLACK_SECRETS_FROM": f"secretsmanager:{secret['ARN']}",
        "SLACK_API_URL": slack.base_url,
        "APPROVAL_CHANNEL_ID": APPROVAL_CHANNEL,
        "APPROVER_USER_IDS": APPROVER,
        "PUBLIC_BASE_URL": "https://abc123.execute-api.us-east-1.amazonaws.com",
        "STORE": "dynamodb",
        "DYNAMODB_TABLE": dynamodb_table,
        "LOG_FORMAT": "json",
    }
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "DATABASE_PATH"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(bot.serverless, "_function", None)
    # Lambda's own asynchronous invoke, in-process (moto runs functions only under Docker).
    invoker = LocalLambda(bot.serverless.handler)
    monkeypatch.setattr(bot.serverless, "Function", lambda settings: Function(settings, lambda_client=invoker))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level  # the cold start configures logging (JSON)
    try:
        with FunctionUrl(bot.serverless.handler) as url:
            user = SlackUser(url.url, SIGNING_SECRET)
            answer, trigger_id = user.slash_command(REQUESTER, "new")
            assert answer.status == 200
            slack.wait_for("views.open", lambda c: c.args.get("trigger_id") == trigger_id)
            built = bot.serverless._function
            assert built is not None and built.settings.store == "dynamodb"
            assert http("GET", url.url + "/healthz").status == 200
            assert bot.serverless._function is built  # one build per container
    finally:
        invoker.wait()
        if bot.serverless._function is not None:
            bot.serverless._function.services.close()
        root.handlers[:] = handlers
        root.setLevel(level)


class OldSignatures(SlackUser):
    """Signs every request as if Slack had sent it ``age`` seconds ago (still inside 5 minutes)."""

    def __init__(self, user: SlackUser, age: int) -> None:
        self.__dict__.update(user.__dict__)
        self.age = age

    def post(self, body: str, content_type: str, extra_headers: dict[str, str] | None = None):
        headers = self.signed_headers(body, content_type, timestamp=int(time.time()) - self.age)
        return http("POST", self.events_url, body.encode(), {**headers, **(extra_headers or {})})


@pytest.mark.parametrize("lazy_delay", [8.0])
def test_lazy_invocations_are_signed_when_sent_and_carry_no_custom_password(
    deployed: Deployed, slack, iam, moto_server, lazy_delay: float
) -> None:
    """Slack signed the submission 295 s before it arrived and Lambda runs the lazy part 8 s
    later: past Slack's 5 minutes for the original signature, inside them for the function's own.
    The custom password typed into the form is in no lazy payload, encoded or not."""
    password = "Corr3ct-Horse-Battery-Staple!42"
    sent_after = int(time.time())
    iam.create_group(GroupName="developers")
    view = open_modal(deployed, slack, REQUESTER)
    wait_catalog(deployed, slack, view, "developers")
    run = wiz.WizardRun(OldSignatures(deployed.user, 295), REQUESTER, view)
    filed = run.through(
        wiz.details([RECIPIENT], "carl.custom", access=["console"], password_mode="custom", custom_password=password),
        wiz.permissions("groups", groups=["developers"]),
        wiz.tags(),
        wiz.review(),
    )
    assert filed.status == 200 and not filed.body
    _, request_id = approval_message(slack)  # the announcement ran, 303 s after Slack's signature
    store = DynamoStore(deployed.table, client=moto_server.boto3_client("dynamodb"))
    assert store.get_request(request_id).approval_ts is not None
    deployed.invoker.wait()
    lazy = [e for e in deployed.invoker.invocations if e["headers"].get("x-slack-bolt-lazy-only") == "1"]
    assert lazy
    verifier = SignatureVerifier(SIGNING_SECRET)
    for event in lazy:
        body = event["body"]
        assert password not in unquote_plus(body) and password not in json.dumps(event)
        assert int(event["headers"]["x-slack-request-timestamp"]) >= sent_after  # signed when sent
        assert verifier.is_valid(
            body, event["headers"]["x-slack-request-timestamp"], event["headers"]["x-slack-signature"]
        )
    submitted = [e for e in lazy if '"custom_password"' in unquote_plus(e["body"])]
    assert submitted  # the submissions' payloads were there to be scrubbed
