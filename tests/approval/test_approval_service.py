"""The approval stage in-process: a real store (SQLite), IAM on moto server, Slack on the
stand-in, and a controllable clock. Covers what the HTTP tests cannot do cheaply: several
approvers, the approved-plan check at provisioning, and expiry on an injected clock."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot import logs
from bot.app import build_services
from bot.approval.expiry import PendingExpiry
from bot.aws.iam import IamGateway
from bot.config import load_settings
from bot.domain.models import AccessType, PermissionMode, RequestForm
from bot.domain.states import RequestStatus
from bot.services import Services
from bot.slack.messenger import make_web_client
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN, RECIPIENT, REQUESTER, SECOND_APPROVER, Clock

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY_ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
TTL = 72 * 3600


class HeldExecutor:
    """Stands in for the provisioning thread pool: keeps submitted work until the test runs it."""

    def __init__(self) -> None:
        self.jobs: list[Callable[[], Any]] = []

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        self.jobs.append(lambda: fn(*args))

    def run_all(self) -> None:
        jobs, self.jobs = self.jobs, []
        for job in jobs:
            job()

    def shutdown(self, wait: bool = False) -> None:
        pass


@pytest.fixture(autouse=True)
def own_log_context() -> Iterator[None]:
    """The bot binds request and Slack ids to the calling thread's log context; these tests
    call it from pytest's own thread, so give each test a context that is undone afterwards."""
    with logs.log_context(request_id="-", slack_user="-"):
        yield


@pytest.fixture
def world(moto_server, slack, iam, tmp_path: Path, clock: Clock) -> Iterator[tuple[Services, HeldExecutor]]:
    settings = load_settings(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret="unused-in-process",
        slack_api_url=slack.base_url,
        approval_channel_id=APPROVAL_CHANNEL,
        approver_user_ids=f"{APPROVER},{SECOND_APPROVER}",
        public_base_url="http://127.0.0.1:9",
        database_path=str(tmp_path / "bot.db"),
        pending_request_ttl_seconds=TTL,
    )
    gateway = IamGateway(moto_server.boto3_client("iam"), moto_server.boto3_client("sts"), sleep=lambda _s: None)
    store = SqliteStore(settings.database_path, clock=clock)
    executor = HeldExecutor()
    services = build_services(
        settings,
        store=store,
        iam=gateway,
        client=make_web_client(BOT_TOKEN, slack.base_url),
        executor=executor,  # type: ignore[arg-type]
    )
    yield services, executor
    services.close()
    store.close()


def file_request(bot: Services, **fields: Any) -> str:
    base: dict[str, Any] = {
        "recipients": (RECIPIENT,),
        "user_names": ("nina.newhire",),
        "access_types": frozenset({AccessType.PROGRAMMATIC}),
        "justification": "Nina joins the data platform team.",
    }
    base.update(fields)
    request = bot.store.create_request(REQUESTER, RequestForm(**base))
    bot.approvals.announce(request)
    return request.id


def events(bot: Services, request_id: str) -> list[str]:
    return [e.event for e in bot.store.audit_events(request_id=request_id)]


def latest_approval_blocks(slack, request_id: str) -> str:
    message = [m for m in slack.messages(APPROVAL_CHANNEL) if request_id in m.get("text", "") and m.get("blocks")][-1]
    return json.dumps(message["blocks"])


def test_sensitive_group_needs_two_distinct_approvers(world, slack, iam) -> None:
    bot, executor = world
    iam.create_group(GroupName="platform-admins")
    iam.attach_group_policy(GroupName="platform-admins", PolicyArn=ADMIN_ARN)
    request_id = file_request(bot, groups=("platform-admins",))

    review = bot.store.get_review(request_id)
    assert review is not None and review.approvals_required == 2
    assert any("AdministratorAccess" in f.text and "platform-admins" in f.text for f in review.flags)
    posted = latest_approval_blocks(slack, request_id)
    assert "Needs 2 distinct approvers" in posted and "AdministratorAccess" in posted

    first = bot.approvals.decide(request_id, APPROVER, approve=True)
    assert first.ok and first.tell and "1 of 2" in first.message
    assert bot.store.get_request(request_id).status is RequestStatus.PENDING
    again = bot.approvals.decide(request_id, APPROVER, approve=True)
    assert not again.ok and "already approved" in again.message
    assert executor.jobs == [] and iam.list_users()["Users"] == []
    assert "Approvals* 1 of 2: <@U0APPROVE1>" in latest_approval_blocks(slack, request_id)

    second = bot.approvals.decide(request_id, SECOND_APPROVER, approve=True)
    assert second.ok
    request = bot.store.get_request(request_id)
    assert request.status is RequestStatus.APPROVED and request.decided_by == SECOND_APPROVER
    executor.run_all()
    assert bot.store.get_request(request_id).status is RequestStatus.PROVISIONED
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["nina.newhire"]
    assert [a.approver for a in bot.store.get_review(request_id).approvals] == [APPROVER, SECOND_APPROVER]
    log = events(bot, request_id)
    assert log.count("approval_recorded") == 1 and log.count("approved") == 1
    assert log.index("approval_recorded") < log.index("approved") < log.index("provisioned")
    refused = [e for e in bot.store.audit_events(request_id=request_id) if e.event == "refused_decision"]
    assert [(e.actor, e.detail["reason"]) for e in refused] == [(APPROVER, "already approved by this approver")]
    final = latest_approval_blocks(slack, request_id)
    assert "approve_request" not in final and "<@U0APPROVE1> and <@U0APPROVE2>" in final


def test_copy_source_changed_after_approval_refuses_provisioning(world, slack, iam) -> None:
    bot, executor = world
    iam.create_user(UserName="template.dev")
    iam.attach_user_policy(UserName="template.dev", PolicyArn=READ_ONLY_ARN)
    request_id = file_request(
        bot,
        permission_mode=PermissionMode.COPY_USER,
        copy_from_user="template.dev",
        permissions_boundary_arn=READ_ONLY_ARN,
    )
    review = bot.store.get_review(request_id)
    assert review.approvals_required == 1 and review.expansion.copy_source.user_name == "template.dev"
    assert "aws iam attach-user-policy --user-name nina.newhire --policy-arn " + READ_ONLY_ARN in (
        latest_approval_blocks(slack, request_id)
    )
    assert bot.approvals.decide(request_id, APPROVER, approve=True).ok
    fingerprint = bot.store.get_review(request_id).fingerprint
    assert fingerprint and len(fingerprint) == 64

    # Between the click and provisioning, someone gives the source user admin rights.
    iam.attach_user_policy(UserName="template.dev", PolicyArn=ADMIN_ARN)
    executor.run_all()

    request = bot.store.get_request(request_id)
    assert request.status is RequestStatus.FAILED
    assert "no longer what was approved" in request.error and "template.dev" in request.error
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["template.dev"]  # nothing created
    assert "plan_changed" in events(bot, request_id) and "step_done" not in events(bot, request_id)
    slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and "file" in c.args["text"])


def test_unchanged_copy_source_is_provisioned_as_approved(world, iam) -> None:
    bot, executor = world
    iam.create_user(UserName="template.dev")
    iam.attach_user_policy(UserName="template.dev", PolicyArn=READ_ONLY_ARN)
    iam.put_user_policy(
        UserName="template.dev",
        PolicyName="team-bucket",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
        ),
    )
    request_id = file_request(bot, permission_mode=PermissionMode.COPY_USER, copy_from_user="template.dev")
    assert bot.approvals.decide(request_id, APPROVER, approve=True).ok
    executor.run_all()
    assert bot.store.get_request(request_id).status is RequestStatus.PROVISIONED
    attached = iam.list_attached_user_policies(UserName="nina.newhire")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [READ_ONLY_ARN]
    assert iam.list_user_policies(UserName="nina.newhire")["PolicyNames"] == ["team-bucket"]


def test_inline_policy_document_change_is_caught(world, iam) -> None:
    bot, executor = world
    iam.create_user(UserName="template.dev")
    narrow = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    iam.put_user_policy(UserName="template.dev", PolicyName="team", PolicyDocument=json.dumps(narrow))
    request_id = file_request(bot, permission_mode=PermissionMode.COPY_USER, copy_from_user="template.dev")
    assert not bot.store.get_review(request_id).sensitive
    assert bot.approvals.decide(request_id, APPROVER, approve=True).ok
    broad = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    iam.put_user_policy(UserName="template.dev", PolicyName="team", PolicyDocument=json.dumps(broad))
    executor.run_all()
    request = bot.store.get_request(request_id)
    assert request.status is RequestStatus.FAILED and "no longer what was approved" in request.error
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["template.dev"]


def test_unreadable_request_cannot_be_approved(world, slack, iam) -> None:
    bot, executor = world
    request_id = file_request(bot, permission_mode=PermissionMode.COPY_USER, copy_from_user="gone.user")
    review = bot.store.get_review(request_id)
    assert review.expansion.error and review.flags[0].code == "unreadable"
    assert "approve_request" not in latest_approval_blocks(slack, request_id)
    outcome = bot.approvals.decide(request_id, APPROVER, approve=True)
    assert not outcome.ok and "could not be read" in outcome.message
    assert bot.store.get_request(request_id).status is RequestStatus.PENDING and executor.jobs == []
    assert bot.approvals.decide(request_id, APPROVER, approve=False, reason="Source user is gone").ok


def test_sweeper_reminds_once_at_half_life_then_expires(world, slack, clock: Clock) -> None:
    bot, executor = world
    request_id = file_request(bot)
    sweepers = [  # two workers
        PendingExpiry(bot.store, bot.board, bot.messenger, bot.people, bot.views, TTL) for _ in range(2)
    ]

    clock.advance(hours=35)
    assert [s.sweep().reminded for s in sweepers] == [[], []]
    clock.advance(hours=2)
    assert [s.sweep().reminded for s in sweepers] == [[request_id], []]
    reminders = [
        c
        for c in slack.calls("chat.postMessage")
        if c.args.get("channel") == APPROVAL_CHANNEL and ":alarm_clock:" in c.args["text"]
    ]
    assert (
        len(reminders) == 1
        and f"<@{APPROVER}>" in reminders[0].args["text"]
        and request_id in reminders[0].args["text"]
    )
    assert bot.store.get_review(request_id).reminded_at == clock.now
    clock.advance(hours=30)
    assert [s.sweep().reminded for s in sweepers] == [[], []]  # one reminder only

    clock.advance(hours=6)  # 73 h after filing
    reports = [s.sweep() for s in sweepers]
    assert [r.expired for r in reports] == [[request_id], []]
    request = bot.store.get_request(request_id)
    assert request.status is RequestStatus.EXPIRED
    assert "approve_request" not in latest_approval_blocks(slack, request_id)
    assert "Expired without a decision" in latest_approval_blocks(slack, request_id)
    slack.wait_for(
        "chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and "expired" in c.args["text"]
    )
    late = bot.approvals.decide(request_id, APPROVER, approve=True)
    assert not late.ok and "already expired" in late.message and executor.jobs == []
    assert events(bot, request_id).count("expired") == 1
    assert events(bot, request_id).count("reminder_sent") == 1


def test_a_request_whose_announcement_was_lost_is_announced_once_by_the_sweep(world, slack, clock: Clock) -> None:
    """The process (or Lambda's asynchronous invocation) that posts a filed request can die after
    the filing: the sweep posts it, once, however many processes sweep."""
    bot, _ = world
    form = RequestForm(
        recipients=(RECIPIENT,), user_names=("lost.announce",), access_types=frozenset({AccessType.PROGRAMMATIC})
    )
    lost = bot.store.create_request(REQUESTER, form)  # filed, never announced
    shown = file_request(bot, user_names=("shown.request",))  # announced as usual
    sweepers = [
        PendingExpiry(bot.store, bot.board, bot.messenger, bot.people, bot.views, TTL, bot.approvals.announce)
        for _ in range(2)
    ]
    assert [s.sweep().announced for s in sweepers] == [[], []]  # within the grace period: not yet
    clock.advance(seconds=121)
    assert [s.sweep().announced for s in sweepers] == [[lost.id], []]
    assert [s.sweep().announced for s in sweepers] == [[], []]  # once
    posted = [m for m in slack.messages(APPROVAL_CHANNEL) if lost.id in m.get("text", "")]
    assert len(posted) == 1 and "approve_request" in json.dumps(posted[0]["blocks"])
    assert bot.store.get_request(lost.id).approval_ts == posted[0]["ts"]
    assert events(bot, lost.id).count("announced_again") == 1
    assert "announced_again" not in events(bot, shown)
    slack.wait_for("chat.postMessage", lambda c: c.args.get("channel") == f"D{REQUESTER}" and lost.id in c.args["text"])


def test_cancel_only_by_the_requester_only_while_pending(world, slack) -> None:
    bot, _ = world
    request_id = file_request(bot)
    for who in (APPROVER, RECIPIENT):
        refused = bot.approvals.cancel(request_id, who)
        assert not refused.ok
    assert bot.store.get_request(request_id).status is RequestStatus.PENDING
    assert bot.desk.reply(REQUESTER, f"cancel {request_id.lower()}").startswith("Cancelled request")
    assert "approve_request" not in latest_approval_blocks(slack, request_id)
    assert "Cancelled by the requester" in latest_approval_blocks(slack, request_id)
    again = bot.approvals.cancel(request_id, REQUESTER)
    assert not again.ok and "cancelled by the requester" in again.message
    refused = [e.actor for e in bot.store.audit_events() if e.event == "refused_cancel"]
    assert refused == [APPROVER, RECIPIENT, REQUESTER]
    assert events(bot, request_id).count("cancelled") == 1
    late = bot.approvals.decide(request_id, APPROVER, approve=True)
    assert not late.ok and "already cancelled" in late.message


def test_concurrent_clicks_on_a_two_approver_request_approve_once(world, iam) -> None:
    bot, executor = world
    iam.create_group(GroupName="platform-admins")
    iam.attach_group_policy(GroupName="platform-admins", PolicyArn=ADMIN_ARN)
    request_id = file_request(bot, groups=("platform-admins",))
    clickers = [APPROVER, SECOND_APPROVER] * 10
    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(lambda who: bot.approvals.decide(request_id, who, approve=True), clickers))
    assert sum(o.ok for o in outcomes) == 2  # one "recorded", one "approved"
    assert len(executor.jobs) == 1  # provisioning scheduled exactly once
    review = bot.store.get_review(request_id)
    assert sorted(review.approvers) == sorted([APPROVER, SECOND_APPROVER])
    log = events(bot, request_id)
    assert log.count("approval_recorded") == 1 and log.count("approved") == 1
    assert log.count("refused_decision") == 18
    executor.run_all()
    assert bot.store.get_request(request_id).status is RequestStatus.PROVISIONED
    assert [u["UserName"] for u in iam.list_users()["Users"]] == ["nina.newhire"]


def test_sensitive_request_with_too_few_eligible_approvers_says_so(world, slack, iam) -> None:
    bot, _ = world
    bot.people.approver_ids = (APPROVER, RECIPIENT)
    iam.create_group(GroupName="platform-admins")
    iam.attach_group_policy(GroupName="platform-admins", PolicyArn=ADMIN_ARN)
    request_id = file_request(bot, groups=("platform-admins",))  # RECIPIENT may not decide on it
    review = bot.store.get_review(request_id)
    assert "too_few_approvers" in [f.code for f in review.flags]
    assert "only 1 approver(s) may decide" in latest_approval_blocks(slack, request_id)


def test_click_landing_while_the_message_is_posted_still_shows(world, slack, iam) -> None:
    bot, _ = world
    iam.create_group(GroupName="platform-admins")
    iam.attach_group_policy(GroupName="platform-admins", PolicyArn=ADMIN_ARN)
    request = bot.store.create_request(
        REQUESTER,
        RequestForm(
            recipients=(RECIPIENT,),
            user_names=("nina.newhire",),
            access_types=frozenset({AccessType.PROGRAMMATIC}),
            groups=("platform-admins",),
            justification="Nina joins the platform team.",
        ),
    )
    post = bot.messenger.post

    def post_then_click(channel: str, text: str, blocks=None):
        ts = post(channel, text, blocks)
        if channel == APPROVAL_CHANNEL:  # the approver clicks before the bot stored where it is
            assert bot.approvals.decide(request.id, APPROVER, approve=True).ok
        return ts

    bot.messenger.post = post_then_click  # type: ignore[method-assign]
    bot.approvals.announce(request)
    assert "Approvals* 1 of 2: <@U0APPROVE1>" in latest_approval_blocks(slack, request.id)
