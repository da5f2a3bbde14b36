"""A failed request says whether IAM was left clean: never "nothing was left" after a failed rollback."""

from __future__ import annotations

from datetime import UTC, datetime

from bot import logs
from bot.approval.message import outcome_line
from bot.domain.models import CLEANUP_FAILED, AccessType, OnboardingRequest, RequestForm
from bot.domain.states import RequestStatus
from bot.slack.wording import requester_notice

NOW = datetime(2026, 11, 30, tzinfo=UTC)


def failed(error: str) -> OnboardingRequest:
    form = RequestForm(
        recipients=("U1",), user_names=("nina",), access_types=frozenset({AccessType.CONSOLE}), justification="x" * 12
    )
    return OnboardingRequest(
        id="R-FAIL0001",
        requester="U9",
        form=form,
        status=RequestStatus.FAILED,
        created_at=NOW,
        updated_at=NOW,
        decided_by="U2",
        decided_at=NOW,
        error=error,
    )


def test_clean_rollback_says_nothing_was_left() -> None:
    request = failed("CreateAccessKey: LimitExceeded: too many keys")
    assert "nothing was left in IAM" in requester_notice(request)
    assert "nothing was left in IAM" in outcome_line(request, None)


def test_failed_rollback_never_claims_iam_is_clean() -> None:
    request = failed(f"CreateAccessKey: LimitExceeded: too many keys. {CLEANUP_FAILED}: user nina")
    for text in (requester_notice(request), outcome_line(request, None)):
        assert "nothing was left" not in text
        assert "by hand" in text


def test_a_forged_request_id_is_not_echoed_in_full(tmp_path) -> None:
    from bot.approval.service import Approvals
    from bot.slack.people import People
    from bot.storage.sqlite import SqliteStore

    store = SqliteStore(tmp_path / "bot.db")
    # Only the refusal path: no IAM, no Slack, no provisioning.
    approvals = Approvals(store, None, People(None, ("U2",)), None, None, None, None, None, (), 1)  # type: ignore[arg-type]
    forged = "R-" + "<!channel>" * 500
    with logs.log_context(request_id="-", slack_user="-"):
        outcome = approvals.decide(forged, "U2", approve=True)
        assert logs.current_ids()["request_id"] == "-"  # the forged value never reaches log lines
    assert not outcome.ok and len(outcome.message) < 120 and "<!channel>" not in outcome.message
    assert [len(str(e.detail["request_id"])) <= 40 for e in store.audit_events()] == [True]


def test_provisioning_shows_progress_and_the_outcome_wins() -> None:
    running = failed("").model_copy(update={"status": RequestStatus.PROVISIONING, "error": None})
    assert "(3 of 8 IAM steps done)" in outcome_line(running, None, (3, 8))
    assert "IAM steps done" not in outcome_line(running, None, None)
    done = running.model_copy(update={"status": RequestStatus.PROVISIONED})
    assert "IAM steps done" not in outcome_line(done, None, (8, 8))


def test_status_and_home_summary_names_the_permission_choice() -> None:
    from bot.domain.models import PermissionMode
    from bot.slack.request_blocks import request_summary

    base = failed("")
    by_policy = base.model_copy(
        update={
            "form": base.form.model_copy(
                update={
                    "permission_mode": PermissionMode.POLICIES,
                    "policy_arns": ("arn:aws:iam::aws:policy/job-function/ViewOnlyAccess",),
                }
            )
        }
    )
    assert "managed policies `ViewOnlyAccess`" in request_summary(by_policy)
    copied = base.model_copy(
        update={
            "form": base.form.model_copy(update={"permission_mode": PermissionMode.COPY_USER, "copy_from_user": "tpl"})
        }
    )
    assert "copied from IAM user `tpl`" in request_summary(copied)
    assert "IAM groups none" in request_summary(base)
