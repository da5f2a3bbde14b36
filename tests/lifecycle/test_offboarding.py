"""Users who go, in process: ``/iam-user remove`` filed, approved like a request, run step by step in
IAM's order, with a failure injected at every step and a crash at every step.

The user holds everything ``DeleteUser`` refuses to delete past (login profile, an active and an
inactive key, a signing certificate, an SSH public key, a service-specific credential, an enabled
virtual MFA device, an inline policy, a managed policy, a group). The tests' moto server refuses
``DeleteUser`` while any of it is left, as IAM does (:mod:`bot.sandbox.moto_iam`).
"""

from __future__ import annotations

import json

import pytest

from bot.aws.inventory import Inventory
from bot.domain.models import OnboardingRequest
from bot.domain.plan import StepKind
from bot.domain.states import RequestStatus, StepState
from bot.lifecycle.removal_form import MODE_BLOCK, USERS_BLOCK
from bot.provisioning.lease import Leases
from tests.conftest import APPROVAL_CHANNEL, APPROVER, RECIPIENT, REQUESTER, SECOND_APPROVER
from tests.lifecycle.conftest import Life, make_life
from tests.support.lifecycle import load_user, removal_values
from tests.support.provisioning import FailOnCall, SimulatedCrash, crash_at

NAME = "nina.newhire"
OPERATION_OF = {
    StepKind.DEACTIVATE_ACCESS_KEY: "UpdateAccessKey",
    StepKind.DELETE_LOGIN_PROFILE: "DeleteLoginProfile",
    StepKind.DELETE_ACCESS_KEY: "DeleteAccessKey",
    StepKind.DELETE_SIGNING_CERTIFICATE: "DeleteSigningCertificate",
    StepKind.DELETE_SSH_PUBLIC_KEY: "DeleteSSHPublicKey",
    StepKind.DELETE_SERVICE_SPECIFIC_CREDENTIAL: "DeleteServiceSpecificCredential",
    StepKind.DEACTIVATE_MFA_DEVICE: "DeactivateMFADevice",
    StepKind.DELETE_VIRTUAL_MFA_DEVICE: "DeleteVirtualMFADevice",
    StepKind.DELETE_USER_POLICY: "DeleteUserPolicy",
    StepKind.DETACH_USER_POLICY: "DetachUserPolicy",
    StepKind.REMOVE_USER_FROM_GROUP: "RemoveUserFromGroup",
    StepKind.DELETE_USER: "DeleteUser",
}
IAM_ORDER = [
    StepKind.DELETE_LOGIN_PROFILE,
    StepKind.DELETE_ACCESS_KEY,
    StepKind.DELETE_ACCESS_KEY,
    StepKind.DELETE_SIGNING_CERTIFICATE,
    StepKind.DELETE_SSH_PUBLIC_KEY,
    StepKind.DELETE_SERVICE_SPECIFIC_CREDENTIAL,
    StepKind.DEACTIVATE_MFA_DEVICE,
    StepKind.DELETE_VIRTUAL_MFA_DEVICE,
    StepKind.DELETE_USER_POLICY,
    StepKind.DETACH_USER_POLICY,
    StepKind.REMOVE_USER_FROM_GROUP,
    StepKind.DELETE_USER,
]


def load(life: Life, name: str = NAME) -> None:
    life.user(name, RECIPIENT)
    load_user(life.iam, name)


def file_and_approve(life: Life, names: list[str], mode: str) -> OnboardingRequest:
    form = life.services.offboarding.check_form(removal_values(names, mode))
    assert not isinstance(form, dict), form
    request = life.services.approvals.file(REQUESTER, form)
    life.services.approvals.announce(request)  # the review read from IAM, the approvers' message posted
    review = life.store.get_review(request.id)
    assert review is not None
    digest = life.services.approvals.sealed_fingerprint(request, review)
    for approver in (APPROVER, SECOND_APPROVER)[: review.approvals_required]:
        life.store.record_approval(request.id, approver, digest)
    approved = life.store.get_request(request.id)
    assert approved is not None and approved.status is RequestStatus.APPROVED
    return approved


def test_the_form_refuses_at_the_field_what_the_bot_may_not_remove(life: Life) -> None:
    life.user(NAME, RECIPIENT)
    life.iam.create_user(UserName="admin")
    check = life.services.offboarding.check_form

    assert set(check(removal_values([], "delete", ""))) == {USERS_BLOCK, "justification"}  # type: ignore[arg-type]
    assert set(check(removal_values([NAME], "shred"))) == {MODE_BLOCK}  # type: ignore[arg-type]
    refused = check(removal_values([NAME, "admin", "ghost"], "delete"))
    assert isinstance(refused, dict) and set(refused) == {USERS_BLOCK}
    assert "“admin” was not created by this bot" in refused[USERS_BLOCK] and "no user “ghost”" in refused[USERS_BLOCK]

    form = check(removal_values([NAME], "disable"))
    assert not isinstance(form, dict)
    assert form.is_removal and form.user_names == (NAME,) and form.recipients == (RECIPIENT,)
    request = life.services.approvals.file(REQUESTER, form)
    again = check(removal_values([NAME], "delete"))
    assert isinstance(again, dict) and request.id in again[USERS_BLOCK]  # already in an open removal


def test_delete_removes_everything_in_iams_order_and_then_the_user(life: Life) -> None:
    load(life)
    life.user("omar.stays", RECIPIENT)
    request = file_and_approve(life, [NAME], "delete")
    review = life.store.get_review(request.id)
    assert review is not None and review.approvals_required == 1 and {f.code for f in review.flags} == {"irreversible"}
    (held,) = review.expansion.holdings
    assert held.login_profile and len(held.access_keys) == 2 and held.groups == ("developers",)

    done = life.services.offboarding.remove(request.id)

    assert done is not None and done.status is RequestStatus.PROVISIONED, done.error if done else None
    with pytest.raises(life.iam.exceptions.NoSuchEntityException):
        life.iam.get_user(UserName=NAME)
    assert life.iam.list_virtual_mfa_devices()["VirtualMFADevices"] == []
    assert [u["UserName"] for u in life.iam.list_users()["Users"]] == ["omar.stays"]
    assert life.iam.get_group(GroupName="developers")["Users"] == []
    plan = life.store.get_plan(request.id)
    assert plan is not None and [s.kind for s in plan[0]] == IAM_ORDER
    calls = [
        op for op, params in life.recorder.calls if params.get("UserName") == NAME or op == "DeleteVirtualMFADevice"
    ]
    removals = [op for op in calls if op in set(OPERATION_OF.values())]
    # The plan's steps in IAM's order; the last one sweeps up (finding nothing left here), then deletes.
    assert removals[: len(IAM_ORDER) - 1] == [OPERATION_OF[k] for k in IAM_ORDER[:-1]]
    assert removals[-1] == "DeleteUser" and removals.count("DeleteUser") == 1
    assert {e.state for e in life.store.journal(request.id).values()} == {StepState.DONE}
    notice = [m for m in life.dms(REQUESTER) if request.id in m["text"]][-1]
    assert "is done: the users are deleted" in notice["text"]


def test_disable_switches_credentials_off_and_keeps_the_user(life: Life) -> None:
    load(life)
    request = file_and_approve(life, [NAME], "disable")
    assert life.services.offboarding.remove(request.id).status is RequestStatus.PROVISIONED  # type: ignore[union-attr]
    assert set(life.keys(NAME).values()) == {"Inactive"}
    with pytest.raises(life.iam.exceptions.NoSuchEntityException):
        life.iam.get_login_profile(UserName=NAME)
    assert life.iam.list_signing_certificates(UserName=NAME)["Certificates"]  # disable touches nothing else
    assert [s.kind for s in life.store.get_plan(request.id)[0]] == [  # type: ignore[index]
        StepKind.DEACTIVATE_ACCESS_KEY,
        StepKind.DELETE_LOGIN_PROFILE,
    ]


def test_removing_a_user_with_a_sensitive_permission_needs_two_approvers(life: Life) -> None:
    life.user(NAME, RECIPIENT)
    life.iam.attach_user_policy(UserName=NAME, PolicyArn="arn:aws:iam::aws:policy/AdministratorAccess")
    form = life.services.offboarding.check_form(removal_values([NAME], "delete"))
    request = life.services.approvals.file(REQUESTER, form)  # type: ignore[arg-type]
    review = life.services.approvals.prepare_review(request)
    assert review.sensitive and review.approvals_required == 2
    assert any("AdministratorAccess" in f.text for f in review.flags)
    first = life.services.approvals.decide(request.id, APPROVER, approve=True)
    assert first.ok and "1 of 2" in first.message
    # The owner is no approver here, but even an approver may not decide on removing their own user.
    assert life.services.approvals.decide(request.id, RECIPIENT, approve=True).ok is False
    second = life.services.approvals.decide(request.id, SECOND_APPROVER, approve=True)
    assert second.ok and "removing" in second.message
    life.drain()
    assert life.store.get_request(request.id).status is RequestStatus.PROVISIONED  # type: ignore[union-attr]
    assert NAME not in [u["UserName"] for u in life.iam.list_users()["Users"]]


@pytest.mark.parametrize("index", range(len(IAM_ORDER)))
def test_a_failure_at_any_step_stops_and_says_exactly_what_is_left(life: Life, index: int) -> None:
    load(life)
    request = file_and_approve(life, [NAME], "delete")
    kind = IAM_ORDER[index]
    nth = sum(1 for k in IAM_ORDER[: index + 1] if OPERATION_OF[k] == OPERATION_OF[kind])
    operation = OPERATION_OF[kind]
    life.services.iam.iam.meta.events.register(f"before-call.iam.{operation}", FailOnCall(operation, nth))

    failed = life.services.offboarding.remove(request.id)

    assert failed is not None and failed.status is RequestStatus.FAILED
    assert "AccessDenied" in (failed.error or "") and "injected failure" in (failed.error or "")
    held = Inventory(life.services.iam).holdings(NAME)
    assert held is not None  # the user is still there, and the request says so, item by item
    for thing in ["the user itself", *held.left()]:
        assert thing in (failed.error or ""), thing
    journal = life.store.journal(request.id)
    assert journal[index].state is StepState.FAILED and max(journal) == index
    assert all(journal[i].state is StepState.DONE for i in range(index))
    board = [c.args for c in life.slack.calls("chat.update") if c.args.get("channel") == APPROVAL_CHANNEL]
    assert "The removal failed" in json.dumps(board[-1]["blocks"]) and "Left in IAM" in json.dumps(board[-1]["blocks"])
    assert any("AccessDenied" in m["text"] for m in life.dms(REQUESTER))


@pytest.mark.parametrize("phase", ["before", "after"])
@pytest.mark.parametrize("index", [0, 1, 6, 7, 11])
def test_a_crash_at_a_step_resumes_to_no_trace(moto_server, iam, slack, tmp_path, clock, monkeypatch, index, phase):
    crash_at(monkeypatch, f"{index}:{phase}")
    first = make_life(moto_server, iam, slack, tmp_path, clock, leases=Leases(clock=clock, owner="host:1:first"))
    load(first)
    request = file_and_approve(first, [NAME], "delete")
    with pytest.raises(SimulatedCrash):
        first.services.offboarding.remove(request.id)
    assert first.store.get_request(request.id).status is RequestStatus.PROVISIONING  # type: ignore[union-attr]

    gone = Leases(clock=clock, owner="host:2:second", is_gone=lambda owner: owner == "host:1:first")
    second = make_life(moto_server, iam, slack, tmp_path, clock, leases=gone)
    assert second.services.provisioning.resume_interrupted() == []  # not provisioning's to run
    assert second.services.offboarding.resume_interrupted() == [request.id]

    assert second.store.get_request(request.id).status is RequestStatus.PROVISIONED  # type: ignore[union-attr]
    assert NAME not in [u["UserName"] for u in iam.list_users()["Users"]]
    assert "removal_resumed" in second.events()
    assert second.services.offboarding.resume_interrupted() == []
