"""Provisioning against moto server: every option really provisioned, a failure at any step
leaves nothing behind, a crash at any step resumes to exactly one complete user.

The workflow runs in-process (fast), talks HTTP to moto server and the Slack stand-in. A crash
is the test-only exit hook of :mod:`bot.provisioning.runner` with ``hard_exit`` swapped for an
exception that, like a killed process, skips every ``except Exception`` and ``finally`` that
matters (it is a ``BaseException``). ``test_process_restart.py`` kills a real server process.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from bot.aws.removal import Remover
from bot.credentials.vault import open_sealed
from bot.domain.ids import link_digest
from bot.domain.models import AccessType, PermissionMode, RequestForm
from bot.domain.plan import MANAGED_TAG, MFA_POLICY_NAME, SELF_MANAGE_POLICY_NAME, StepKind, bot_policy_arn
from bot.domain.states import RequestEvent, RequestStatus, StepState
from bot.ops.jobs import Job, PeriodicJobs
from bot.provisioning import runner as provisioning
from tests.conftest import APPROVER, RECIPIENT, REQUESTER
from tests.support.provisioning import (
    CHANGE_PASSWORD_ARN,
    INLINE_DOCUMENT,
    INLINE_POLICY,
    OPERATION_OF,
    READ_DOCUMENT,
    SECOND_RECIPIENT,
    TEMPLATE_USER,
    FailOnCall,
    build_world,
    file_and_approve,
    full_form,
    make_harness,
    reset_password_policy,
    revealed_credentials,
    user_state,
)

ACCOUNT = "123456789012"
MFA_ARN = bot_policy_arn(ACCOUNT, MFA_POLICY_NAME)
SELF_ARN = bot_policy_arn(ACCOUNT, SELF_MANAGE_POLICY_NAME)
# The full plan for one user: 2 bot policies, user, login profile, key, 1 group, 4 managed
# policies (copied, MFA, self-manage, IAMUserChangePassword), 1 inline policy.
FULL_PLAN_STEPS = 11


class SimulatedCrash(BaseException):
    """Stands for the process dying: not an ``Exception``, so no handler turns it into a failure."""


@pytest.fixture
def world(iam, slack):
    slack.add_user(SECOND_RECIPIENT, name="omar.newhire", email="omar.newhire@example.com")
    built = build_world(iam)
    yield built
    reset_password_policy(iam)


def expected_state(world) -> dict[str, Any]:
    return {
        "groups": ["developers"],
        "managed": sorted([world.team_read_arn, MFA_ARN, SELF_ARN, CHANGE_PASSWORD_ARN]),
        "inline": [INLINE_POLICY],
        "login_profile": True,
    }


def local_policies(iam) -> set[str]:
    return {p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]}


def test_full_plan_provisions_every_option(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world))

    done = bot.provisioning.provision(request.id)

    assert done is not None and done.status is RequestStatus.PROVISIONED
    state = user_state(iam, "nina.newhire")
    assert {k: state[k] for k in expected_state(world)} == expected_state(world)
    assert len(state["access_keys"]) == 1
    assert state["tags"] == {
        "team": "data",
        "iam-user-bot:managed": "true",
        "iam-user-bot:owner": RECIPIENT,
        "iam-user-bot:request-id": request.id,
        "iam-user-bot:requested-by": REQUESTER,
        "iam-user-bot:approved-by": APPROVER,
    }
    copied = iam.get_user_policy(UserName="nina.newhire", PolicyName=INLINE_POLICY)["PolicyDocument"]
    assert copied == INLINE_DOCUMENT
    # The bot-managed policies exist once, tagged, with the documents shipped in the package.
    for arn, file in ((MFA_ARN, "require-mfa.json"), (SELF_ARN, "self-manage-credentials.json")):
        policy = iam.get_policy(PolicyArn=arn)["Policy"]
        assert {t["Key"]: t["Value"] for t in policy["Tags"]}[MANAGED_TAG] == "true"
        document = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]
        from importlib import resources

        shipped = json.loads(resources.files("bot").joinpath("policies", file).read_text())
        assert document["Document"] == shipped
    # moto drops boundaries and may not keep PasswordResetRequired: assert what the bot sent.
    (create_user,) = bot.recorder.params("CreateUser")
    assert create_user["PermissionsBoundary"] == world.boundary_arn
    (login,) = bot.recorder.params("CreateLoginProfile")
    assert login == {"UserName": "nina.newhire", "PasswordResetRequired": True}
    # Names of what is copied came from the API (the template user has a path), not from ARNs.
    assert {"ListGroupsForUser", "ListAttachedUserPolicies", "ListUserPolicies", "GetUserPolicy"} <= (
        bot.recorder.operations()
    )
    assert not [op for op, _ in bot.recorder.calls if op.startswith("Delete")]

    # The recipient gets one link; it reveals the user's real access key id and a password.
    (creds,) = revealed_credentials(slack, bot.store, RECIPIENT)
    assert creds["user_name"] == "nina.newhire" and creds["access_key_id"] == state["access_keys"][0]
    assert creds["console_url"] == f"https://{ACCOUNT}.signin.aws.amazon.com/console"
    # No secret in the journal, the stored plan, the audit log or the recorded IAM calls.
    db_text = b"".join(p.read_bytes() for p in tmp_path.glob("bot.db*")).decode("latin-1")
    recorded = json.dumps(bot.recorder.calls, default=str)
    leaks = [
        f"{label} in {place}"
        for label in ("password", "secret_access_key")
        for place, text in (("database", db_text), ("recorded calls", recorded))
        if creds[label] in text
    ]
    assert leaks == []
    journal = bot.store.journal(request.id)
    assert len(journal) == FULL_PLAN_STEPS and {e.state for e in journal.values()} == {StepState.DONE}
    assert journal[4].detail["access_key_id"] == state["access_keys"][0]


@pytest.mark.parametrize("index", range(FULL_PLAN_STEPS))
def test_failure_at_any_step_leaves_no_trace(moto_server, slack, iam, world, tmp_path, index) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world))
    steps = bot.provisioning.provisioner.prepare(request).steps
    assert len(steps) == FULL_PLAN_STEPS
    kind = steps[index].kind
    nth = sum(1 for s in steps[: index + 1] if OPERATION_OF[s.kind] == OPERATION_OF[kind])
    bot.gateway.iam.meta.events.register(f"before-call.iam.{OPERATION_OF[kind]}", FailOnCall(OPERATION_OF[kind], nth))

    failed = bot.provisioning.provision(request.id)

    assert failed is not None and failed.status is RequestStatus.FAILED
    assert "AccessDenied" in failed.error and "injected failure" in failed.error
    # Nothing this request made is left: no user, no bot policy; what existed before is intact.
    assert [u["UserName"] for u in iam.list_users()["Users"]] == [TEMPLATE_USER]
    assert local_policies(iam) == {"team-read", "dev-boundary"}
    assert iam.list_user_policies(UserName=TEMPLATE_USER)["PolicyNames"] == [INLINE_POLICY]
    entries = bot.store.journal(request.id)
    assert entries[index].state == StepState.FAILED
    assert all(entries[i].state == StepState.DONE for i in range(index))
    assert max(entries) == index  # nothing ran after the failure
    events = [e.event for e in bot.store.audit_events(request_id=request.id)]
    assert "failed" in events and "step_failed" in events
    if kind is not StepKind.ENSURE_BOT_POLICY:
        assert "rolled_back" in events
    # The requester and the approver hear what IAM said; no link went out.
    for person in (REQUESTER, APPROVER):
        slack.wait_for(
            "chat.postMessage",
            lambda c, p=person: c.args.get("channel") == f"D{p}" and "AccessDenied" in c.args["text"],
        )
    assert revealed_credentials(slack, bot.store, RECIPIENT) == []


def test_users_of_a_request_fail_together(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world, ("nina.newhire", "omar.newhire")))
    # The second user's inline policy fails: the last step of the plan.
    bot.gateway.iam.meta.events.register("before-call.iam.PutUserPolicy", FailOnCall("PutUserPolicy", 2))

    failed = bot.provisioning.provision(request.id)

    assert failed.status is RequestStatus.FAILED
    assert [u["UserName"] for u in iam.list_users()["Users"]] == [TEMPLATE_USER]
    rolled = [e.detail for e in bot.store.audit_events(request_id=request.id) if e.event == "rolled_back"]
    assert {d["user_name"] for d in rolled if d.get("deleted") and "user_name" in d} == {"nina.newhire", "omar.newhire"}


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("index", range(FULL_PLAN_STEPS))
def test_crash_at_any_step_resumes_to_one_complete_user(
    moto_server, slack, iam, world, tmp_path, monkeypatch, index, phase
) -> None:
    def crash(_code: int) -> None:
        raise SimulatedCrash

    monkeypatch.setattr(provisioning, "hard_exit", crash)
    monkeypatch.setenv(provisioning.TEST_EXIT_ENV, f"{index}:{phase}")
    first = make_harness(moto_server, slack, tmp_path / "bot.db", journal_owner="host:1:first")
    request = file_and_approve(first, full_form(world))
    with pytest.raises(SimulatedCrash):
        first.provisioning.provision(request.id)
    assert first.store.get_request(request.id).status is RequestStatus.PROVISIONING

    # A new process starts (the hook stays set: it fires only on a step's first attempt).
    second = make_harness(
        moto_server, slack, tmp_path / "bot.db", journal_owner="host:2:second", is_gone=lambda o: o == "host:1:first"
    )
    assert second.provisioning.resume_interrupted() == [request.id]

    assert second.store.get_request(request.id).status is RequestStatus.PROVISIONED
    assert sorted(u["UserName"] for u in iam.list_users()["Users"]) == sorted([TEMPLATE_USER, "nina.newhire"])
    state = user_state(iam, "nina.newhire")
    assert {k: state[k] for k in expected_state(world)} == expected_state(world)
    assert len(state["access_keys"]) == 1
    assert state["tags"]["iam-user-bot:request-id"] == request.id
    assert local_policies(iam) == {"team-read", "dev-boundary", MFA_POLICY_NAME, SELF_MANAGE_POLICY_NAME}
    # Exactly one link, and it holds the key that exists (a key made before the crash is gone).
    (creds,) = revealed_credentials(slack, second.store, RECIPIENT)
    assert creds["access_key_id"] == state["access_keys"][0] and creds["password"]
    # A resumed login profile gets a new password with the same reset flag.
    sent = second.recorder.params("CreateLoginProfile") + second.recorder.params("UpdateLoginProfile")
    assert sent and all(p["PasswordResetRequired"] is True for p in sent)
    assert second.provisioning.resume_interrupted() == []  # nothing left to do


def test_journal_failure_found_at_restart_is_rolled_back(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db", journal_owner="host:1:first")
    request = file_and_approve(bot, full_form(world))
    bot.gateway.iam.meta.events.register("before-call.iam.PutUserPolicy", FailOnCall("PutUserPolicy", 1))
    # The process dies right after journaling the failure, before any rollback.
    bot.provisioning.provisioner.rollback = lambda *_a: (_ for _ in ()).throw(SimulatedCrash())  # type: ignore[method-assign]
    with pytest.raises(SimulatedCrash):
        bot.provisioning.provision(request.id)
    assert "nina.newhire" in [u["UserName"] for u in iam.list_users()["Users"]]

    second = make_harness(
        moto_server, slack, tmp_path / "bot.db", journal_owner="host:2:b", is_gone=lambda o: o == "host:1:first"
    )
    assert second.provisioning.resume_interrupted() == [request.id]
    assert second.store.get_request(request.id).status is RequestStatus.FAILED
    assert [u["UserName"] for u in iam.list_users()["Users"]] == [TEMPLATE_USER]
    assert local_policies(iam) == {"team-read", "dev-boundary"}


def test_approved_but_never_started_is_provisioned_at_start(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world))
    assert bot.provisioning.resume_interrupted() == [request.id]
    assert bot.store.get_request(request.id).status is RequestStatus.PROVISIONED


def test_live_lease_is_not_taken_and_one_of_many_starters_wins(moto_server, slack, iam, world, tmp_path) -> None:
    first = make_harness(moto_server, slack, tmp_path / "bot.db", journal_owner="host:1:live")
    request = file_and_approve(first, full_form(world))
    moved = first.store.move_request(
        request.id, RequestEvent.PROVISIONING_STARTED, actor=None, lease=first.leases.lease()
    )
    assert moved is not None
    # The owner still runs: nobody else may take the request.
    other = make_harness(moto_server, slack, tmp_path / "bot.db", journal_owner="host:2:x", is_gone=lambda o: False)
    assert other.provisioning.resume_interrupted() == []
    assert iam.list_users()["Users"][0]["UserName"] == TEMPLATE_USER and len(iam.list_users()["Users"]) == 1

    # The owner dies; four workers start at once: exactly one resumes it.
    starters = [
        make_harness(
            moto_server, slack, tmp_path / "bot.db", journal_owner=f"host:{n}:w", is_gone=lambda o: o == "host:1:live"
        )
        for n in range(10, 14)
    ]
    results: list[list[str]] = []
    threads = [
        threading.Thread(target=lambda s=s: results.append(s.provisioning.resume_interrupted())) for s in starters
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(len(r) for r in results) == [0, 0, 0, 1]
    assert sorted(u["UserName"] for u in iam.list_users()["Users"]) == sorted([TEMPLATE_USER, "nina.newhire"])
    assert len(revealed_credentials(slack, first.store, RECIPIENT)) == 1


def test_name_taken_by_someone_else_fails_first_and_their_user_is_untouched(
    moto_server, slack, iam, world, tmp_path
) -> None:
    iam.create_user(UserName="Nina.Newhire", Tags=[{"Key": "owner", "Value": "someone"}])
    iam.create_access_key(UserName="Nina.Newhire")
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world))

    failed = bot.provisioning.provision(request.id)

    assert failed.status is RequestStatus.FAILED and "Nina.Newhire" in failed.error
    assert len(iam.list_access_keys(UserName="Nina.Newhire")["AccessKeyMetadata"]) == 1
    assert {u["UserName"] for u in iam.list_users()["Users"]} == {TEMPLATE_USER, "Nina.Newhire"}
    assert "CreateUser" not in bot.recorder.operations()
    # Found by GetUser in a few spellings (moto answers only the exact one), not by listing every user.
    assert "ListUsers" not in bot.recorder.operations()
    assert {p["UserName"] for p in bot.recorder.params("GetUser")} >= {"nina.newhire", "Nina.Newhire"}


def test_a_policy_or_boundary_deleted_after_approval_stops_provisioning_first(
    moto_server, slack, iam, world, tmp_path
) -> None:
    extra = iam.create_policy(PolicyName="short-lived", PolicyDocument=json.dumps(READ_DOCUMENT))["Policy"]["Arn"]
    form = RequestForm(
        recipients=(RECIPIENT,),
        user_names=("nina.newhire",),
        access_types=frozenset({AccessType.PROGRAMMATIC}),
        permission_mode=PermissionMode.POLICIES,
        policy_arns=(world.team_read_arn, extra),
        permissions_boundary_arn=world.boundary_arn,
        justification="policies that go away",
    )
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, form)
    iam.delete_policy(PolicyArn=extra)  # someone else, after the approval

    failed = bot.provisioning.provision(request.id)

    assert failed.status is RequestStatus.FAILED
    assert f"IAM no longer has managed policy {extra}" in failed.error and "nothing was created" in failed.error
    assert {"CreateUser", "CreatePolicy", "AttachUserPolicy"}.isdisjoint(bot.recorder.operations())
    assert {p["PolicyArn"] for p in bot.recorder.params("GetPolicy")} >= {extra, world.boundary_arn}


def test_quota_rechecked_before_the_first_step(moto_server, slack, iam, world, tmp_path) -> None:
    # Ten managed policies already on the template: with the bot's three, 13 > 10 per user.
    for n in range(9):
        arn = iam.create_policy(PolicyName=f"extra-{n}", PolicyDocument=json.dumps(INLINE_DOCUMENT))["Policy"]["Arn"]
        iam.attach_user_policy(UserName=TEMPLATE_USER, PolicyArn=arn)
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world))

    failed = bot.provisioning.provision(request.id)

    assert failed.status is RequestStatus.FAILED
    assert "13 managed policies" in failed.error and "10 per user" in failed.error
    assert {"CreateUser", "CreatePolicy"}.isdisjoint(bot.recorder.operations())
    assert "GetAccountSummary" in bot.recorder.operations()
    for user in (TEMPLATE_USER,):
        for policy in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]:
            if policy["PolicyName"].startswith("extra-"):
                iam.detach_user_policy(UserName=user, PolicyArn=policy["PolicyArn"])


def test_two_users_provisioned_in_parallel(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world, ("nina.newhire", "omar.newhire")))
    assert bot.provisioning.provision(request.id).status is RequestStatus.PROVISIONED
    for name, recipient in (("nina.newhire", RECIPIENT), ("omar.newhire", SECOND_RECIPIENT)):
        state = user_state(iam, name)
        assert {k: state[k] for k in expected_state(world)} == expected_state(world)
        (creds,) = revealed_credentials(slack, bot.store, recipient)
        assert creds["user_name"] == name and creds["access_key_id"] == state["access_keys"][0]
    # The bot policies were made once, before any user's steps.
    assert len(bot.recorder.params("CreatePolicy")) == 2
    first_user_call = next(i for i, (op, _) in enumerate(bot.recorder.calls) if op == "CreateUser")
    assert all(i < first_user_call for i, (op, _) in enumerate(bot.recorder.calls) if op == "CreatePolicy")


def test_a_custom_password_reaches_the_login_profile_and_survives_a_resume(
    moto_server, slack, iam, world, tmp_path, monkeypatch
) -> None:
    custom = "Chosen-By-Requester-2026!"

    def crash(_code: int) -> None:
        raise SimulatedCrash

    monkeypatch.setattr(provisioning, "hard_exit", crash)
    monkeypatch.setenv(provisioning.TEST_EXIT_ENV, "3:after")  # right after create_login_profile
    bot = make_harness(moto_server, slack, tmp_path / "bot.db", journal_owner="host:1:a")
    request = file_and_approve(bot, full_form(world))
    bot.store.move_request(request.id, RequestEvent.PROVISIONING_STARTED, actor=None, lease=bot.leases.lease())
    prepared = bot.provisioning.provisioner.prepare(request, custom_password=custom)
    assert custom not in repr(prepared)
    with pytest.raises(SimulatedCrash):
        bot.provisioning.provisioner.execute(request, prepared)

    resumed = bot.provisioning.provisioner.execute(request, bot.provisioning.provisioner.prepare(request, custom))
    assert resumed["nina.newhire"]["password"] == custom  # not silently replaced by a generated one
    assert bot.recorder.params("UpdateLoginProfile") == [{"UserName": "nina.newhire", "PasswordResetRequired": True}]
    Remover(bot.gateway).delete_user_completely("nina.newhire")


def test_eventual_consistency_and_rollback_races_are_retried(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    events = bot.gateway.iam.meta.events
    # A just-created user is not visible to AddUserToGroup for two tries: retried, not failed.
    events.register("before-call.iam.AddUserToGroup", FailOnCall("AddUserToGroup", 1, "NoSuchEntity", times=2))
    # Then the inline policy fails for good, and the rollback meets IAM's races: the login
    # profile already gone (NoSuchEntity) and DeleteUser refused once (DeleteConflict).
    events.register("before-call.iam.PutUserPolicy", FailOnCall("PutUserPolicy", 1))
    events.register("before-call.iam.DeleteLoginProfile", FailOnCall("DeleteLoginProfile", 1, "NoSuchEntity"))
    events.register("before-call.iam.DeleteUser", FailOnCall("DeleteUser", 1, "DeleteConflict"))
    request = file_and_approve(bot, full_form(world))

    failed = bot.provisioning.provision(request.id)

    assert failed.status is RequestStatus.FAILED and "PutUserPolicy" in failed.error
    assert "Cleanup failed" not in failed.error
    assert len(bot.recorder.params("AddUserToGroup")) == 3
    assert len(bot.recorder.params("DeleteUser")) == 2
    assert [u["UserName"] for u in iam.list_users()["Users"]] == [TEMPLATE_USER]


def test_a_lease_held_by_this_process_is_not_taken_again(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db", journal_owner="host:1:me")
    request = file_and_approve(bot, full_form(world))
    bot.store.move_request(request.id, RequestEvent.PROVISIONING_STARTED, actor=None, lease=bot.leases.lease())
    # Another thread of the same process is (as far as the lease says) provisioning it now.
    assert bot.provisioning.resume_interrupted() == []
    assert [u["UserName"] for u in iam.list_users()["Users"]] == [TEMPLATE_USER]


def test_crash_after_sealing_leaves_no_stale_link_to_expire_later(
    moto_server, slack, iam, world, tmp_path, monkeypatch
) -> None:
    def crash(_code: int) -> None:
        raise SimulatedCrash

    monkeypatch.setattr(provisioning, "hard_exit", crash)
    monkeypatch.setenv(provisioning.TEST_EXIT_ENV, "sealed")
    first = make_harness(moto_server, slack, tmp_path / "bot.db", journal_owner="host:1:first")
    request = file_and_approve(first, full_form(world))
    with pytest.raises(SimulatedCrash):
        first.provisioning.provision(request.id)
    assert [s.state for s in first.store.secrets_for_request(request.id)] == ["sealed"]
    monkeypatch.delenv(provisioning.TEST_EXIT_ENV)

    second = make_harness(
        moto_server, slack, tmp_path / "bot.db", journal_owner="host:2:b", is_gone=lambda o: o == "host:1:first"
    )
    assert second.provisioning.resume_interrupted() == [request.id]
    # The link sealed by the dead run (its key is lost) is retired, so its expiry can never
    # switch off the credentials that were actually sent.
    assert sorted(s.state for s in second.store.secrets_for_request(request.id)) == ["sealed", "superseded"]
    (creds,) = revealed_credentials(slack, second.store, RECIPIENT)
    assert creds["access_key_id"] == user_state(iam, "nina.newhire")["access_keys"][0]
    assert "unsent_links_discarded" in [e.event for e in second.store.audit_events(request_id=request.id)]


def test_crash_while_sending_links_is_resumed_and_the_recipient_gets_a_working_link(
    moto_server, slack, iam, world, tmp_path, monkeypatch
) -> None:
    # Found by killing the server (kill -9) just after provisioning: the request was already
    # marked provisioned when the links went out, so nothing resumed it, the link keys died with
    # the process, and the recipient never heard; the approval message still said "Creating".
    def crash(_code: int) -> None:
        raise SimulatedCrash

    monkeypatch.setattr(provisioning, "hard_exit", crash)
    monkeypatch.setenv(provisioning.TEST_EXIT_ENV, "delivered")
    first = make_harness(moto_server, slack, tmp_path / "bot.db", journal_owner="host:1:first")
    request = file_and_approve(first, full_form(world))
    with pytest.raises(SimulatedCrash):
        first.provisioning.provision(request.id)
    assert first.store.get_request(request.id).status is RequestStatus.PROVISIONING
    monkeypatch.delenv(provisioning.TEST_EXIT_ENV)

    second = make_harness(
        moto_server, slack, tmp_path / "bot.db", journal_owner="host:2:b", is_gone=lambda o: o == "host:1:first"
    )
    assert second.provisioning.resume_interrupted() == [request.id]
    assert second.store.get_request(request.id).status is RequestStatus.PROVISIONED
    links = [
        element["url"]
        for call in slack.calls("chat.postEphemeral")
        if call.args.get("user") == RECIPIENT
        for block in (json.loads(call.args["blocks"]) if isinstance(call.args["blocks"], str) else call.args["blocks"])
        if block["type"] == "actions"
        for element in block["elements"]
        if "/credentials/" in element.get("url", "")
    ]
    assert len(links) == 2  # the dead run's link, then the resumed run's
    stale_id = links[0].split("#")[0].rsplit("/", 1)[1]
    assert second.store.secret_row(link_digest(stale_id)).state == "superseded"
    assert second.store.claim_secret(link_digest(stale_id)) is None  # its credentials were replaced: 410
    page, key = links[1].split("#", 1)
    secret_id = page.rsplit("/", 1)[1]
    claimed = second.store.claim_secret(link_digest(secret_id))
    assert claimed is not None
    creds = json.loads(open_sealed(secret_id, key, *claimed))
    assert [creds["access_key_id"]] == user_state(iam, "nina.newhire")["access_keys"]


def test_network_loss_mid_run_is_rolled_back_by_a_later_round(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world))
    network = {"down": False}

    def send(model: Any, **_: object) -> None:
        if model.name == "AttachUserPolicy":
            network["down"] = True  # the network drops in the middle of the run, for every call
        if network["down"]:
            raise EndpointConnectionError(endpoint_url=moto_server.url)

    bot.gateway.iam.meta.events.register("before-call.iam", send)
    # The step fails, and so does the rollback: the request must not claim "failed, nothing
    # left" while its user still exists. It stays provisioning, its journal says why.
    assert bot.provisioning.provision(request.id) is None
    assert bot.store.get_request(request.id).status is RequestStatus.PROVISIONING
    assert "nina.newhire" in [u["UserName"] for u in iam.list_users()["Users"]]
    assert StepState.FAILED in {e.state for e in bot.store.journal(request.id).values()}

    network["down"] = False
    bot.gateway.iam.meta.events.unregister("before-call.iam", send)
    jobs = PeriodicJobs([Job("resume_interrupted", 0.2, bot.provisioning.resume_interrupted, at_start=True)])
    jobs.start()
    try:
        deadline = time.monotonic() + 20
        while bot.store.get_request(request.id).status is RequestStatus.PROVISIONING:
            assert time.monotonic() < deadline, "the resume job never finished the rollback"
            time.sleep(0.05)
    finally:
        jobs.shutdown()
    failed = bot.store.get_request(request.id)
    assert failed.status is RequestStatus.FAILED and "EndpointConnectionError" in failed.error
    assert [u["UserName"] for u in iam.list_users()["Users"]] == [TEMPLATE_USER]


def test_each_step_done_reports_progress_from_the_journal(moto_server, slack, iam, world, tmp_path) -> None:
    bot = make_harness(moto_server, slack, tmp_path / "bot.db")
    request = file_and_approve(bot, full_form(world))
    seen: list[tuple[int, int] | None] = []
    bot.provisioning.provisioner.on_step_done = lambda request_id: seen.append(bot.services.board._progress(request_id))

    assert bot.provisioning.provision(request.id).status == "provisioned"
    assert seen == [(done, FULL_PLAN_STEPS) for done in range(1, FULL_PLAN_STEPS + 1)]
