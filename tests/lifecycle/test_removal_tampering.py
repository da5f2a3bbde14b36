"""A removal forged or edited in the store removes nothing (security review of issues 14/17): the
same approval seal as onboarding, and a removal plan may only take things away from the users the
verified form names, in the way its mode does. On both stores; IAM on moto server, every call the
bot makes recorded.
"""

from __future__ import annotations

from typing import Any

import pytest

from bot.domain.models import RemoveMode, RequestForm
from bot.domain.plan import Step, StepKind
from bot.domain.states import RequestStatus
from bot.provisioning import runner
from bot.provisioning.guard import AUDIT_EVENT
from tests.conftest import APPROVER, RECIPIENT, REQUESTER, STRANGER
from tests.support.lifecycle import removal_values, seed_user
from tests.support.provisioning import Harness, SimulatedCrash, crash_at
from tests.support.tamper import alerts, events, tampered_harness

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
NAME, BYSTANDER = "nina.newhire", "omar.stays"
# Every IAM call that takes something away or grants something.
WRITES = {
    "UpdateAccessKey",
    "DeleteLoginProfile",
    "DeleteAccessKey",
    "DeleteUser",
    "DeleteUserPolicy",
    "DetachUserPolicy",
    "RemoveUserFromGroup",
    "AttachUserPolicy",
    "PutUserPolicy",
    "CreateAccessKey",
}


def held(iam, name: str) -> dict[str, Any]:
    """What IAM holds of ``name``: None when it is gone."""
    try:
        iam.get_user(UserName=name)
    except iam.exceptions.NoSuchEntityException:
        return {"exists": False}
    try:
        iam.get_login_profile(UserName=name)
        login = True
    except iam.exceptions.NoSuchEntityException:
        login = False
    keys = [k["Status"] for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]]
    policies = [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]]
    return {"exists": True, "login_profile": login, "keys": keys, "policies": policies}


INTACT = {"exists": True, "login_profile": True, "keys": ["Active"], "policies": []}


def file_and_approve(bot: Harness, names: list[str], mode: str) -> str:
    """A removal filed from the form and approved as the bot records approvals (sealed)."""
    form = bot.services.offboarding.check_form(removal_values(names, mode))
    assert not isinstance(form, dict), form
    request = bot.services.approvals.file(REQUESTER, form)
    review = bot.services.approvals.prepare_review(request)
    sealed = bot.services.approvals.sealed_fingerprint(request, review)
    assert bot.store.record_approval(request.id, APPROVER, sealed).request.status is RequestStatus.APPROVED  # type: ignore[union-attr]
    return request.id


def assert_refused(bot: Harness, slack, request_id: str, says: str) -> None:
    request = bot.store.get_request(request_id)
    assert request is not None and request.status is RequestStatus.FAILED, request
    refusals = [e for e in bot.store.audit_events(request_id=request_id) if e.event == AUDIT_EVENT]
    assert len(refusals) == 1 and says in str(refusals[0].detail["reason"]), refusals
    (alert,) = alerts(slack, request_id)
    assert "tampered" in alert
    assert bot.services.offboarding.resume_interrupted() == [] and len(alerts(slack, request_id)) == 1


@pytest.mark.parametrize("status", [RequestStatus.APPROVED, RequestStatus.PROVISIONING])
def test_a_removal_written_into_the_store_removes_nothing(moto_server, slack, iam, tamper, tmp_path, status) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    seed_user(bot.store, iam, NAME, RECIPIENT)
    bot.recorder.calls.clear()
    attacker = tamper.open_store()
    form = RequestForm(
        recipients=(RECIPIENT,),
        user_names=(NAME,),
        access_types=frozenset(),
        remove_mode=RemoveMode.DELETE,
        justification="forged",
    )
    forged = attacker.create_request(STRANGER, form)
    tamper.set_status(forged.id, status, decided_by=APPROVER)
    if status is RequestStatus.PROVISIONING:
        attacker.save_plan(forged.id, [Step(kind=StepKind.DELETE_USER, user_name=NAME)], None)

    assert bot.services.offboarding.resume_interrupted() == [forged.id]

    assert bot.recorder.calls == []  # not one IAM call
    assert held(iam, NAME) == INTACT
    assert_refused(bot, slack, forged.id, "no review is stored")
    assert "approved" not in events(bot, forged.id)


@pytest.mark.parametrize("edit", ["other_user", "mode"])
def test_a_removal_edited_after_approval_is_refused_before_any_iam_call(
    moto_server, slack, iam, tamper, tmp_path, edit
) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    seed_user(bot.store, iam, NAME, RECIPIENT)
    seed_user(bot.store, iam, BYSTANDER, RECIPIENT)
    request_id = file_and_approve(bot, [NAME], "disable")
    request = bot.store.get_request(request_id)
    assert request is not None
    changes = {"user_names": (BYSTANDER,)} if edit == "other_user" else {"remove_mode": RemoveMode.DELETE}
    tamper.set_form(request_id, request.form.model_copy(update=changes))
    bot.recorder.calls.clear()

    bot.services.offboarding.remove(request_id)  # what the approval's click starts

    assert bot.recorder.calls == []
    assert held(iam, NAME) == INTACT and held(iam, BYSTANDER) == INTACT
    assert_refused(bot, slack, request_id, "does not match the stored request form and review")


@pytest.mark.parametrize("edit", ["none", "grant_and_delete_appended"])
def test_a_removal_plan_edited_mid_run_is_refused_at_resume(
    moto_server, slack, iam, tamper, tmp_path, monkeypatch, edit
) -> None:
    first = tampered_harness(moto_server, slack, tamper, tmp_path, journal_owner="host:1:first")
    seed_user(first.store, iam, NAME, RECIPIENT)
    seed_user(first.store, iam, BYSTANDER, RECIPIENT)
    request_id = file_and_approve(first, [NAME], "disable")
    crash_at(monkeypatch, "0:after")  # the key deactivated, the login profile not yet
    with pytest.raises(SimulatedCrash):
        first.services.offboarding.remove(request_id)
    monkeypatch.delenv(runner.TEST_EXIT_ENV)
    assert held(iam, NAME) == {**INTACT, "keys": ["Inactive"]}
    steps, _ = first.store.get_plan(request_id)  # type: ignore[misc]
    if edit != "none":
        tamper.set_plan(
            request_id,
            [
                *steps,
                Step(kind=StepKind.ATTACH_USER_POLICY, user_name=NAME, target=ADMIN_ARN),
                Step(kind=StepKind.DELETE_LOGIN_PROFILE, user_name=BYSTANDER),
            ],
        )

    second = tampered_harness(
        moto_server, slack, tamper, tmp_path, journal_owner="host:2:second", is_gone=lambda o: o == "host:1:first"
    )
    assert second.services.offboarding.resume_interrupted() == [request_id]

    if edit == "none":  # the control: an untouched removal resumes and finishes
        assert second.store.get_request(request_id).status is RequestStatus.PROVISIONED  # type: ignore[union-attr]
        assert held(iam, NAME) == {**INTACT, "login_profile": False, "keys": ["Inactive"]}
        assert alerts(slack, request_id) == []
        return
    assert WRITES.isdisjoint(second.recorder.operations()), second.recorder.operations()
    assert held(iam, NAME) == {**INTACT, "keys": ["Inactive"]} and held(iam, BYSTANDER) == INTACT
    assert_refused(second, slack, request_id, "steps a disable does not make: attach_user_policy")
    reason = next(e for e in second.store.audit_events(request_id=request_id) if e.event == AUDIT_EVENT).detail
    assert f"steps on users not in the request: delete_login_profile {BYSTANDER}" in str(reason["reason"])
