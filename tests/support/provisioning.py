"""Helpers for the provisioning tests: an IAM world on moto server, an in-process workflow
wired to it and to the Slack stand-in, a recorder of IAM calls, and a failure injector.

The recorder keeps each IAM call's operation name and parameters, minus ``Password`` (a secret
never lands in test data). The injector raises a ``ClientError`` from botocore's
``before-call.iam.<Operation>`` event on the n-th call of an operation.
"""

from __future__ import annotations

import contextlib
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from bot.app import build_services
from bot.aws.iam import IamGateway
from bot.config import load_settings
from bot.credentials.vault import open_sealed
from bot.domain.ids import link_digest
from bot.domain.models import AccessType, OnboardingRequest, PermissionMode, RequestForm, Tag
from bot.domain.plan import StepKind
from bot.domain.records import ApprovalVerdict
from bot.provisioning import runner
from bot.provisioning.lease import Leases
from bot.provisioning.service import Provisioning
from bot.services import Services
from bot.slack.messenger import make_web_client
from bot.storage.base import Store
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL, APPROVER, BOT_TOKEN, RECIPIENT, REQUESTER

SECOND_RECIPIENT = "U0NEWHIRE2"
TEMPLATE_USER = "template.user"
TEMPLATE_PATH = "/team/data/"
INLINE_POLICY = "scratch-bucket"
INLINE_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:PutObject", "Resource": "arn:aws:s3:::scratch/*"}],
}
READ_DOCUMENT = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}],
}
CHANGE_PASSWORD_ARN = "arn:aws:iam::aws:policy/IAMUserChangePassword"

OPERATION_OF = {
    StepKind.ENSURE_BOT_POLICY: "CreatePolicy",
    StepKind.CREATE_USER: "CreateUser",
    StepKind.CREATE_LOGIN_PROFILE: "CreateLoginProfile",
    StepKind.CREATE_ACCESS_KEY: "CreateAccessKey",
    StepKind.ADD_USER_TO_GROUP: "AddUserToGroup",
    StepKind.ATTACH_USER_POLICY: "AttachUserPolicy",
    StepKind.PUT_USER_POLICY: "PutUserPolicy",
}


@dataclass
class World:
    """What the IAM world holds before a request: a template user with a path, groups,
    policies, and a password policy that does not let users change their password."""

    team_read_arn: str
    boundary_arn: str


def build_world(iam: Any) -> World:
    iam.create_group(GroupName="developers")
    read = iam.create_policy(PolicyName="team-read", PolicyDocument=json.dumps(READ_DOCUMENT))["Policy"]["Arn"]
    boundary = iam.create_policy(PolicyName="dev-boundary", PolicyDocument=json.dumps(READ_DOCUMENT))["Policy"]["Arn"]
    iam.create_user(UserName=TEMPLATE_USER, Path=TEMPLATE_PATH)
    iam.add_user_to_group(UserName=TEMPLATE_USER, GroupName="developers")
    iam.attach_user_policy(UserName=TEMPLATE_USER, PolicyArn=read)
    iam.put_user_policy(UserName=TEMPLATE_USER, PolicyName=INLINE_POLICY, PolicyDocument=json.dumps(INLINE_DOCUMENT))
    iam.update_account_password_policy(MinimumPasswordLength=14, AllowUsersToChangePassword=False)
    return World(team_read_arn=read, boundary_arn=boundary)


def full_form(world: World, user_names: tuple[str, ...] = ("nina.newhire",)) -> RequestForm:
    """Every option: console and programmatic, copy from a user (groups, managed and inline
    policies), a boundary, tags, MFA required and self-managed credentials."""
    recipients = (RECIPIENT, SECOND_RECIPIENT)[: len(user_names)]
    return RequestForm(
        recipients=recipients,
        user_names=user_names,
        access_types=frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
        require_reset=True,
        permission_mode=PermissionMode.COPY_USER,
        copy_from_user=TEMPLATE_USER,
        permissions_boundary_arn=world.boundary_arn,
        tags=(Tag(key="team", value="data"),),
        mfa_required=True,
        self_manage_credentials=True,
        justification="Joins the data team.",
    )


@dataclass
class Recorder:
    """IAM calls as ``(operation, params)``; ``Password`` is dropped before anything is kept."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        self.calls.append((model.name, {k: v for k, v in params.items() if k != "Password"}))

    def params(self, operation: str) -> list[dict[str, Any]]:
        return [p for op, p in self.calls if op == operation]

    def operations(self) -> set[str]:
        return {op for op, _ in self.calls}


@dataclass
class FailOnCall:
    """Raise ``code`` (``AccessDenied`` unless told) on the ``nth`` (1-based) call of
    ``operation``, ``times`` times in a row."""

    operation: str
    nth: int
    code: str = "AccessDenied"
    times: int = 1
    seen: int = 0

    def __call__(self, model: Any, **_: Any) -> None:
        if model.name != self.operation:
            return
        self.seen += 1
        if self.nth <= self.seen < self.nth + self.times:
            raise ClientError(
                {"Error": {"Code": self.code, "Message": f"injected failure of {self.operation}"}},
                self.operation,
            )


# Every in-process bot a test builds; closed after the test (tests/conftest.py), so no thread of
# theirs outlives the Slack stand-in it talks to.
class SimulatedCrash(BaseException):
    """Stands for the process dying: not an ``Exception``, so nothing in the bot catches it or
    turns it into a failure."""


def crash_at(monkeypatch: pytest.MonkeyPatch, when: str) -> None:
    """Make the runner's test-only exit point (``TEST_EXIT_ENV``: ``<step index>:<before|after>``,
    ``sealed``, ``delivered``) raise :class:`SimulatedCrash` instead of ending the process."""

    def crash(_code: int) -> None:
        raise SimulatedCrash

    monkeypatch.setattr(runner, "hard_exit", crash)
    monkeypatch.setenv(runner.TEST_EXIT_ENV, when)


OPEN: list[Services] = []


@dataclass
class Harness:
    """An in-process bot: its services, store, gateway, and the recorder on its IAM client."""

    services: Services
    store: Store
    gateway: IamGateway
    recorder: Recorder

    @property
    def provisioning(self) -> Provisioning:
        return self.services.provisioning

    @property
    def leases(self) -> Leases:
        return self.services.provisioning.leases


def make_harness(
    moto_server: Any,
    slack: Any,
    db: Path,
    journal_owner: str | None = None,
    store: Store | None = None,
    background: Any | None = None,
    config: dict[str, Any] | None = None,
    **lease_kw: Any,
) -> Harness:
    """The services as one bot process would build them (``journal_owner`` names the process), on
    the SQLite file ``db`` or on ``store``; ``config`` overrides settings (``load_settings`` names)."""
    settings = load_settings(
        **{
            "slack_bot_token": BOT_TOKEN,
            "slack_signing_secret": "s" * 32,
            "slack_api_url": slack.base_url,
            "approval_channel_id": APPROVAL_CHANNEL,
            "approver_user_ids": APPROVER,
            "public_base_url": "http://127.0.0.1:9",
            "database_path": db,
            **(config or {}),
        }
    )
    client = moto_server.boto3_client("iam")
    recorder = Recorder()
    client.meta.events.register("before-parameter-build.iam", recorder)
    gateway = IamGateway(client, moto_server.boto3_client("sts"), sleep=lambda _seconds: None)
    store = store or SqliteStore(db)
    if journal_owner is not None:
        lease_kw["owner"] = journal_owner
    services = build_services(
        settings,
        store=store,
        iam=gateway,
        client=make_web_client(BOT_TOKEN, slack.base_url),
        leases=Leases(clock=store.clock, **lease_kw),
        executor=ThreadPoolExecutor(max_workers=1),
        background=background,
    )
    OPEN.append(services)
    return Harness(services, store, gateway, recorder)


def file_and_approve(bot: Harness, form: RequestForm, *, announce: bool = False) -> OnboardingRequest:
    """File ``form`` and approve it as the bot does: the review is read from IAM and the approval
    fixes its sealed fingerprint, so provisioning's approval and approved-plan checks pass.
    ``announce``: post the approvers' message first (which provisioning then updates)."""
    request = bot.store.create_request(REQUESTER, form)
    if announce:
        bot.services.approvals.announce(request)
    review = bot.services.approvals.prepare_review(request)
    result = bot.store.record_approval(request.id, APPROVER, bot.services.approvals.sealed_fingerprint(request, review))
    assert result.verdict is ApprovalVerdict.APPROVED and result.request is not None, result
    return result.request


def revealed_credentials(slack: Any, store: Store, recipient: str) -> list[dict[str, Any]]:
    """Every credential link sent to ``recipient``, revealed (this consumes them)."""
    revealed = []
    for call in slack.calls("chat.postEphemeral"):
        if call.args.get("user") != recipient:
            continue
        blocks = call.args["blocks"]
        blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
        for block in blocks:
            for element in block.get("elements", []) if block["type"] == "actions" else []:
                if "/credentials/" in element.get("url", ""):
                    page, key = element["url"].split("#", 1)
                    secret_id = page.rsplit("/", 1)[1]
                    claimed = store.claim_secret(link_digest(secret_id))
                    assert claimed is not None, "a delivered link must be revealable once"
                    revealed.append(json.loads(open_sealed(secret_id, key, *claimed)))
    return revealed


def user_state(iam: Any, user_name: str) -> dict[str, Any]:
    """What IAM holds for a user, in comparable form (no secrets)."""
    try:
        login = iam.get_login_profile(UserName=user_name)["LoginProfile"]["UserName"]
    except iam.exceptions.NoSuchEntityException:
        login = None
    return {
        "groups": sorted(g["GroupName"] for g in iam.list_groups_for_user(UserName=user_name)["Groups"]),
        "managed": sorted(
            p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=user_name)["AttachedPolicies"]
        ),
        "inline": sorted(iam.list_user_policies(UserName=user_name)["PolicyNames"]),
        "login_profile": login is not None,
        "access_keys": [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user_name)["AccessKeyMetadata"]],
        "tags": {t["Key"]: t["Value"] for t in iam.list_user_tags(UserName=user_name)["Tags"]},
    }


def reset_password_policy(iam: Any) -> None:
    with contextlib.suppress(iam.exceptions.NoSuchEntityException):
        iam.delete_account_password_policy()
