"""Write access to the store is not approval: requests, reviews, approvals and plans written or
edited straight in the store (the SQLite file, or the DynamoDB table with only a DynamoDB client)
make the bot create nothing (security review of issues 14/17, /tmp/r17/forge_table.py).

Each test runs on both stores. IAM is moto server and the bot's IAM client records every call, so
"no IAM call at all" is what the bot sent, not what moto happened to allow. Normal flows (one and
two approvers, a resume after a crash, a rotated bot token with CUSTOM_PASSWORD_SEALING_KEY set)
still work.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.credentials.sealing import approval_seal_key, record_seal_key
from bot.domain.models import AccessType, PermissionMode, RequestForm
from bot.domain.plan import Step, StepKind, build_plan
from bot.domain.risk import fingerprint
from bot.domain.states import RequestStatus
from bot.provisioning.guard import AUDIT_EVENT
from tests.conftest import APPROVER, BOT_TOKEN, RECIPIENT, REQUESTER, SECOND_APPROVER, STRANGER
from tests.support.provisioning import (
    TEMPLATE_USER,
    Harness,
    SimulatedCrash,
    build_world,
    crash_at,
    file_and_approve,
    full_form,
    make_harness,
    reset_password_policy,
)
from tests.support.tamper import alerts, events, tampered_harness

ADMIN_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"
READ_ONLY_ARN = "arn:aws:iam::aws:policy/ReadOnlyAccess"
# Every IAM call that creates or grants something (what a forged or edited record would want).
GRANTS = {
    "CreateUser",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "CreateAccessKey",
    "AddUserToGroup",
    "AttachUserPolicy",
    "PutUserPolicy",
    "CreatePolicy",
    "TagUser",
}


def simple_form(**overrides: Any) -> RequestForm:
    base: dict[str, Any] = {
        "recipients": (RECIPIENT,),
        "user_names": ("nina.newhire",),
        "access_types": frozenset({AccessType.PROGRAMMATIC}),
        "permission_mode": PermissionMode.POLICIES,
        "policy_arns": (READ_ONLY_ARN,),
        "justification": "Reads the reports.",
    }
    base.update(overrides)
    return RequestForm(**base)


def users(iam) -> list[str]:
    return sorted(u["UserName"] for u in iam.list_users()["Users"])


def links_to(slack, user: str) -> list[Any]:
    return [c for c in slack.calls("chat.postEphemeral") if c.args.get("user") == user]


def assert_refused(bot: Harness, slack, request_id: str, *, says: str) -> None:
    """Failed through the state machine, audited once with what did not match, one alert."""
    request = bot.store.get_request(request_id)
    assert request is not None and request.status is RequestStatus.FAILED, request
    refusals = [e for e in bot.store.audit_events(request_id=request_id) if e.event == AUDIT_EVENT]
    assert len(refusals) == 1 and says in str(refusals[0].detail["reason"]), refusals
    assert "failed" in events(bot, request_id) and "provisioned" not in events(bot, request_id)
    (alert,) = alerts(slack, request_id)
    assert "tampered" in alert
    assert bot.provisioning.resume_interrupted() == [] and len(alerts(slack, request_id)) == 1


# -- forged requests ------------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", ["provisioning_with_plan", "copied_seal", "plain_fingerprint"])
def test_a_request_written_into_the_store_creates_nothing(moto_server, slack, iam, tamper, tmp_path, forgery) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    attacker = tamper.open_store()  # write access to the store, and nothing else
    admin = simple_form(
        recipients=(STRANGER,), user_names=("svc-backup",), policy_arns=(ADMIN_ARN,), justification="forged"
    )
    if forgery == "copied_seal":
        # A genuine approval exists (provisioned): its seal is in the store for anyone to copy.
        real = file_and_approve(bot, simple_form())
        assert bot.provisioning.provision(real.id).status is RequestStatus.PROVISIONED  # type: ignore[union-attr]
        bot.recorder.calls.clear()
    forged = attacker.create_request(STRANGER, admin)
    if forgery == "provisioning_with_plan":
        # The security review's script: status provisioning (no lease) and a PLAN item.
        tamper.set_status(forged.id, RequestStatus.PROVISIONING, decided_by=APPROVER)
        request = attacker.get_request(forged.id)
        attacker.save_plan(forged.id, build_plan(request, APPROVER, account_id="123456789012"), None)  # type: ignore[arg-type]
        says = "no review is stored"
    else:
        expansion = bot.gateway.read_expansion(admin)  # what the bot would have read; anyone can
        bot.recorder.calls.clear()
        attacker.save_review(forged.id, expansion, (), 1)
        if forgery == "copied_seal":
            stolen = bot.store.get_review(real.id).fingerprint  # type: ignore[union-attr]
            tamper.set_fingerprint(forged.id, stolen)  # type: ignore[arg-type]
            says = "does not match"
        else:
            tamper.set_fingerprint(forged.id, fingerprint(admin, expansion))
            says = "before approvals were sealed"
        tamper.set_status(forged.id, RequestStatus.APPROVED, decided_by=APPROVER)

    # The periodic job that resumes interrupted provisioning (and starts approved requests).
    assert bot.provisioning.resume_interrupted() == [forged.id]

    assert bot.recorder.calls == []  # not one IAM call
    assert "svc-backup" not in users(iam) and links_to(slack, STRANGER) == []
    assert "approved" not in events(bot, forged.id) and "step_started" not in events(bot, forged.id)
    if forgery == "plain_fingerprint":
        (alert,) = alerts(slack, forged.id)
        assert "approve it again" in alert and "tampered" in alert
        failed = bot.store.get_request(forged.id)
        assert failed is not None and failed.status is RequestStatus.FAILED and "approve it again" in str(failed.error)
    else:
        assert_refused(bot, slack, forged.id, says=says)


# -- approved requests edited afterwards -----------------------------------------------------------


@pytest.mark.parametrize("edit", ["recipient", "policy", "user_name"])
def test_a_form_edited_after_approval_is_refused_before_any_iam_call(
    moto_server, slack, iam, tamper, tmp_path, edit
) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    request = file_and_approve(bot, simple_form())
    bot.recorder.calls.clear()
    edited = {
        "recipient": simple_form(recipients=(STRANGER,)),  # the one-time link to someone else
        "policy": simple_form(policy_arns=(ADMIN_ARN,)),
        "user_name": simple_form(user_names=("svc-backdoor",)),
    }[edit]
    tamper.set_form(request.id, edited)

    done = bot.provisioning.provision(request.id)  # what the final approval's click starts

    assert done is not None and done.status is RequestStatus.FAILED
    assert bot.recorder.calls == [] and users(iam) == []
    assert links_to(slack, STRANGER) == [] and links_to(slack, RECIPIENT) == []
    assert_refused(bot, slack, request.id, says="does not match the stored request form and review")
    # The requester hears it failed; the approver named in the store is not told they approved it.
    dms = [c.args["text"] for c in slack.calls("chat.postMessage") if c.args.get("channel") == f"D{APPROVER}"]
    assert not any(request.id in text for text in dms)


def test_a_request_approved_before_seals_is_refused_asking_for_a_new_approval(
    moto_server, slack, iam, tamper, tmp_path
) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    request = file_and_approve(bot, simple_form())
    review = bot.store.get_review(request.id)
    tamper.set_fingerprint(request.id, fingerprint(request.form, review.expansion))  # type: ignore[union-attr]
    bot.recorder.calls.clear()

    done = bot.provisioning.provision(request.id)

    assert done is not None and done.status is RequestStatus.FAILED and "approve it again" in str(done.error)
    assert bot.recorder.calls == [] and users(iam) == []
    refusal = next(e for e in bot.store.audit_events(request_id=request.id) if e.event == AUDIT_EVENT)
    assert refusal.detail["cause"] == "legacy"
    (alert,) = alerts(slack, request.id)
    assert "file it again so you can approve it again" in alert


@pytest.mark.parametrize("edit", ["form", "approvals_required", "seal_removed"])
def test_a_pending_request_edited_after_approvers_were_shown_it_cannot_be_approved(
    moto_server, slack, iam, tamper, tmp_path, edit
) -> None:
    bot = tampered_harness(
        moto_server, slack, tamper, tmp_path, config={"approver_user_ids": f"{APPROVER},{SECOND_APPROVER}"}
    )
    approvals = bot.services.approvals
    sensitive = edit == "approvals_required"
    request = approvals.file(REQUESTER, simple_form(policy_arns=(ADMIN_ARN,) if sensitive else (READ_ONLY_ARN,)))
    review = approvals.prepare_review(request)  # what the approvers' message is rendered from
    assert review.offered and review.approvals_required == (2 if sensitive else 1)
    if edit == "form":  # read-only on the message, admin in the store
        tamper.set_form(request.id, simple_form(policy_arns=(ADMIN_ARN,)))
    elif edit == "approvals_required":  # one approver instead of two
        tamper.set_approvals_required(request.id, 1)
    else:
        tamper.drop_review_seal(request.id)
    bot.recorder.calls.clear()

    outcome = approvals.decide(request.id, APPROVER, approve=True)

    assert not outcome.ok and "cannot be approved" in outcome.message
    current = bot.store.get_request(request.id)
    assert current is not None and current.status is RequestStatus.PENDING  # to be denied
    assert bot.store.get_review(request.id).approvals == ()  # type: ignore[union-attr]
    assert bot.recorder.calls == [] and users(iam) == []
    refusal = next(e for e in bot.store.audit_events(request_id=request.id) if e.event == AUDIT_EVENT)
    assert refusal.detail["cause"] == ("legacy" if edit == "seal_removed" else "tampered")
    (alert,) = alerts(slack, request.id)
    assert "I refused an approval" in alert and "tampered" in alert and "Deny it" in alert


def test_a_plan_written_while_the_run_reads_iam_is_refused_before_it_runs(
    moto_server, slack, iam, tamper, tmp_path, monkeypatch
) -> None:
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)
    request = file_and_approve(bot, simple_form())
    admin = build_plan(request, APPROVER, account_id="123456789012")
    admin.append(Step(kind=StepKind.ATTACH_USER_POLICY, user_name="nina.newhire", target=ADMIN_ARN))
    check = bot.provisioning.check_approved_plan

    def check_then_forge(*args: Any) -> None:
        check(*args)  # the run has checked that no plan is stored, and is reading IAM again...
        tamper.set_plan(request.id, admin)  # ...when the attacker stores one

    monkeypatch.setattr(bot.provisioning, "check_approved_plan", check_then_forge)
    bot.recorder.calls.clear()

    done = bot.provisioning.provision(request.id)

    assert done is not None and done.status is RequestStatus.FAILED
    assert GRANTS.isdisjoint(bot.recorder.operations()) and users(iam) == []
    assert_refused(bot, slack, request.id, says="steps nobody approved: attach_user_policy nina.newhire → " + ADMIN_ARN)


# -- a stored plan edited mid-provisioning ---------------------------------------------------------


@pytest.fixture
def world(iam):
    built = build_world(iam)
    yield built
    reset_password_policy(iam)


@pytest.mark.parametrize("edit", ["none", "admin_appended", "boundary_dropped"])
def test_a_plan_edited_mid_provisioning_is_refused_at_resume_and_rolled_back(
    moto_server, slack, iam, world, tamper, tmp_path, monkeypatch, edit
) -> None:
    crash_at(monkeypatch, "4:after")  # user, login profile and key made
    first = tampered_harness(moto_server, slack, tamper, tmp_path, journal_owner="host:1:first")
    request = file_and_approve(first, full_form(world))
    with pytest.raises(SimulatedCrash):
        first.provisioning.provision(request.id)
    assert "nina.newhire" in users(iam)
    steps, _ = first.store.get_plan(request.id)  # type: ignore[misc]
    if edit == "admin_appended":
        tamper.set_plan(
            request.id, [*steps, Step(kind=StepKind.ATTACH_USER_POLICY, user_name="nina.newhire", target=ADMIN_ARN)]
        )
    elif edit == "boundary_dropped":
        create = next(i for i, s in enumerate(steps) if s.kind is StepKind.CREATE_USER)
        tamper.set_plan(
            request.id,
            [
                *steps[:create],
                steps[create].model_copy(update={"permissions_boundary_arn": None}),
                *steps[create + 1 :],
            ],
        )

    second = tampered_harness(
        moto_server, slack, tamper, tmp_path, journal_owner="host:2:second", is_gone=lambda o: o == "host:1:first"
    )
    assert second.provisioning.resume_interrupted() == [request.id]

    if edit == "none":  # the control: an untouched resume still finishes
        assert second.store.get_request(request.id).status is RequestStatus.PROVISIONED  # type: ignore[union-attr]
        assert users(iam) == sorted([TEMPLATE_USER, "nina.newhire"]) and len(links_to(slack, RECIPIENT)) == 1
        assert alerts(slack, request.id) == [] and AUDIT_EVENT not in events(second, request.id)
        return
    says = "steps nobody approved: attach_user_policy nina.newhire → " + ADMIN_ARN
    assert_refused(
        second, slack, request.id, says=says if edit == "admin_appended" else "stored plan is not the approved one"
    )
    # Not one grant after the edit; what this request had created is deleted again.
    assert GRANTS.isdisjoint(second.recorder.operations()), second.recorder.operations()
    assert users(iam) == [TEMPLATE_USER] and links_to(slack, RECIPIENT) == []
    assert "rolled_back" in events(second, request.id)
    local = {p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"]}
    assert local == {"team-read", "dev-boundary"}


# -- normal flows still work -----------------------------------------------------------------------


def test_a_sensitive_request_needs_two_approvals_and_both_store_the_same_seal(
    moto_server, slack, iam, tamper, tmp_path
) -> None:
    bot = make_harness(
        moto_server,
        slack,
        tmp_path / "bot.db",
        store=tamper.open_store(),
        config={"approver_user_ids": f"{APPROVER},{SECOND_APPROVER}"},
    )
    approvals = bot.services.approvals
    request = approvals.file(REQUESTER, simple_form(policy_arns=(ADMIN_ARN,)))
    review = approvals.prepare_review(request)
    assert review.approvals_required == 2

    first = approvals.decide(request.id, APPROVER, approve=True)
    assert first.ok and "1 of 2" in first.message
    assert approvals.decide(request.id, SECOND_APPROVER, approve=True).ok
    executor: ThreadPoolExecutor = bot.provisioning.executor  # type: ignore[assignment]
    executor.submit(lambda: None).result(timeout=60)  # provisioning ran on it

    assert bot.store.get_request(request.id).status is RequestStatus.PROVISIONED  # type: ignore[union-attr]
    attached = iam.list_attached_user_policies(UserName="nina.newhire")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [ADMIN_ARN]
    sealed = bot.store.get_review(request.id).fingerprint  # type: ignore[union-attr]
    assert sealed == approvals.sealed_fingerprint(request, review) and sealed.startswith("seal1:")  # type: ignore[union-attr]
    recorded = [
        e.detail["fingerprint"] for e in bot.store.audit_events(request_id=request.id) if "fingerprint" in e.detail
    ]
    assert recorded == [sealed, sealed]  # approval_recorded, then approved: they added up
    assert fingerprint(request.form, review.expansion) not in tamper.stored_text()


def test_a_rotated_bot_token_keeps_approvals_valid_with_a_dedicated_key_and_no_key_leaks(
    moto_server, slack, iam, tamper, tmp_path, caplog
) -> None:
    caplog.set_level(logging.DEBUG)
    dedicated = "dedicated-sealing-key-" + "q" * 24
    rotated = BOT_TOKEN.replace("0000000000", "1111111111")
    before = tampered_harness(moto_server, slack, tamper, tmp_path, config={"custom_password_sealing_key": dedicated})
    kept = file_and_approve(before, simple_form())
    lost = file_and_approve(before, simple_form(user_names=("omar.newhire",)))
    tamper.set_status(lost.id, RequestStatus.APPROVED)  # (still approved: not run yet)

    # A new process after the token rotation, with the same dedicated key: the approval holds.
    after = tampered_harness(
        moto_server,
        slack,
        tamper,
        tmp_path,
        config={"custom_password_sealing_key": dedicated, "slack_bot_token": rotated},
    )
    done = after.provisioning.provision(kept.id)
    assert done is not None and done.status is RequestStatus.PROVISIONED
    assert "nina.newhire" in users(iam)

    # Without the dedicated key the seal's secret is the rotated token: refused, asking for a new approval.
    unkeyed = tampered_harness(moto_server, slack, tamper, tmp_path, config={"slack_bot_token": rotated})
    refused = unkeyed.provisioning.provision(lost.id)
    assert refused is not None and refused.status is RequestStatus.FAILED and "approve it again" in str(refused.error)
    assert "omar.newhire" not in users(iam)
    cause = next(e for e in unkeyed.store.audit_events(request_id=lost.id) if e.event == AUDIT_EVENT).detail["cause"]
    assert cause == "other_key"

    # Neither the secret nor the key derived from it is at rest in the store or in any log line.
    at_rest, logged = tamper.stored_text(), caplog.text
    keys = [seal_key(secret) for seal_key in (approval_seal_key, record_seal_key) for secret in (dedicated, rotated)]
    for key in [approval_seal_key(BOT_TOKEN, dedicated), record_seal_key(BOT_TOKEN, dedicated), *keys]:
        for form in (key.hex(), key.decode("latin-1")):
            assert form not in at_rest and form not in logged
    for secret in (dedicated, BOT_TOKEN, rotated):
        assert secret not in at_rest and secret not in logged
