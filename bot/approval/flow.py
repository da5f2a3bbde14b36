"""The approval half of the request's state machine, as a mixin of :class:`bot.approval.workflow.Workflow`.

Kept apart so each file holds one job: what approvers judge (the review read from IAM after
filing), counting distinct approvals with one compare-and-set, the approved-plan check before
provisioning, and the half-life reminder and expiry. Every move still goes through
:class:`~bot.storage.sqlite.Store` compare-and-sets with their audit rows; only the workflow moves
requests, and this is part of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.approval import message as approval_blocks
from bot.approval.expansion import read_expansion
from bot.domain import risk
from bot.domain.models import OnboardingRequest, PermissionExpansion, RequestStatus, Review
from bot.provisioning.runner import ProvisioningFailed
from bot.slack import blocks
from bot.storage.sqlite_approvals import ApprovalVerdict

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from slack_sdk.models.blocks import Block

    from bot.aws.iam import IamGateway
    from bot.config import Settings
    from bot.provisioning.journal import Journal
    from bot.slack.messenger import Messenger
    from bot.storage.sqlite import Store

# End states nobody approved: "already cancelled/expired" names no approver.
_UNDECIDED_ENDS = frozenset({RequestStatus.CANCELLED, RequestStatus.EXPIRED})


def _duration(seconds: int) -> str:
    """``72 h`` or ``5 min``: how people say a TTL."""
    return f"{seconds // 3600} h" if seconds >= 3600 else f"{max(1, seconds // 60)} min"


@dataclass(frozen=True)
class Outcome:
    """What a person's action led to: ``ok`` and a sentence to show them (ephemerally).

    ``tell`` asks the handler to show ``message`` even on success (the message update alone
    would not tell the clicker, e.g. "your approval is recorded, one more needed").
    """

    ok: bool
    message: str
    tell: bool = False


class ApprovalFlow:
    """Approval steps of :class:`~bot.approval.workflow.Workflow` (which provides the attributes below,
    ``approvers()``, ``_refresh_views`` and ``_provision_logged``); ``check_approved_plan`` is
    called by its provisioning run."""

    settings: Settings
    store: Store
    iam: IamGateway
    messenger: Messenger
    executor: ThreadPoolExecutor
    journal: Journal

    if TYPE_CHECKING:  # provided by Workflow

        def approvers(self) -> frozenset[str]: ...

        def _refresh_views(self, request: OnboardingRequest) -> None: ...

        def _provision_logged(self, request_id: str) -> None: ...

    def prepare_review(self, request: OnboardingRequest) -> Review:
        """Read what ``request`` grants from IAM, flag its risks and store both, once.

        Slow (IAM reads): runs after the filing's ack, before the approval message is posted, so
        approvers never see (and clicks never wait for) an unexpanded request. A failed read is
        stored too: the request is then shown as unreadable and cannot be approved.
        """
        if (stored := self.store.get_review(request.id)) is not None:
            return stored
        expansion = read_expansion(request.form, self.iam)
        flags = risk.assess(request.form, expansion, self.settings.sensitive_permissions)
        required = risk.approvals_required(flags, self.settings.sensitive_approvals_required)
        eligible = self.approvers() - {request.requester, *request.form.recipients}
        if (short := risk.too_few_approvers(len(eligible), required)) is not None:
            flags = (*flags, short)
        self.store.save_review(request.id, expansion, flags, required)
        return self.store.get_review(request.id) or Review(expansion=expansion, flags=flags)

    def expires_at(self, request: OnboardingRequest) -> datetime:
        """When a pending request expires: ``PENDING_REQUEST_TTL_SECONDS`` after filing."""
        return request.created_at + timedelta(seconds=self.settings.pending_request_ttl_seconds)

    def _approval_message(self, request: OnboardingRequest, review: Review | None = None) -> tuple[str, list[Block]]:
        review = review or self.store.get_review(request.id)
        if review is None:  # not read yet (or lost): shown as unreadable, so it cannot be approved
            review = Review(expansion=PermissionExpansion(error="not read from IAM yet"))
        lines = approval_blocks.cli_lines_for(request, review.expansion)
        progress = self.journal.progress(request.id) if request.status is RequestStatus.PROVISIONING else None
        return approval_blocks.approval_message(request, review, lines, self.expires_at(request), progress)

    def _already(self, request: OnboardingRequest) -> Outcome:
        review = self.store.get_review(request.id) if request.status not in _UNDECIDED_ENDS else None
        deciders = list(review.approvers) if review and review.approvals else [request.decided_by]
        if request.status is RequestStatus.DENIED:
            deciders = [request.decided_by]
        named = " and ".join(blocks.mention(d) for d in deciders if d)
        by = f" by {named}" if named else ""
        verb = {
            RequestStatus.DENIED: "denied",
            RequestStatus.CANCELLED: "cancelled",
            RequestStatus.EXPIRED: "expired",
        }.get(request.status, "approved")
        return Outcome(False, f"Request `{request.id}` was already {verb}{by}. Nothing was changed.")

    def _refuse_approval(self, request_id: str, actor: str, reason: str, message: str) -> Outcome:
        self.store.audit(
            "refused_decision", request_id=request_id, actor=actor, detail={"action": "approve", "reason": reason}
        )
        return Outcome(False, message)

    def _approve(self, request_id: str, actor: str) -> Outcome:
        """Record ``actor``'s yes (one CAS transaction, :meth:`Store.record_approval`) against the
        fingerprint of the stored review the approver saw; start provisioning exactly once."""
        request = self.store.get_request(request_id)
        review = self.store.get_review(request_id)
        assert request is not None, "check_decider saw it"
        digest = risk.fingerprint(request.form, review.expansion) if review else ""
        result = self.store.record_approval(request_id, actor, digest)
        verdict, current = result.verdict, result.request
        assert current is not None
        if verdict is ApprovalVerdict.NOT_READY:
            return self._refuse_approval(
                request_id,
                actor,
                "permissions not readable",
                f"Request `{request_id}` cannot be approved: what it grants could not be read from IAM, "
                "so nobody can see what would be created. Deny it and ask for a new request.",
            )
        if verdict is ApprovalVerdict.NOT_PENDING:
            self.store.audit(
                "refused_decision",
                request_id=request_id,
                actor=actor,
                detail={"action": "approve", "reason": "already decided"},
            )
            return self._already(current)
        missing = result.required - result.approvals
        if verdict is ApprovalVerdict.DUPLICATE:
            return self._refuse_approval(
                request_id,
                actor,
                "already approved by this approver",
                f"You already approved `{request_id}`; it needs {missing} more distinct approver(s). "
                "Nothing was changed.",
            )
        self._refresh_views(current)
        if verdict is ApprovalVerdict.RECORDED:
            return Outcome(
                True,
                f"Your approval of `{request_id}` is recorded ({result.approvals} of {result.required}); "
                f"it needs {missing} more distinct approver(s) before anything is created.",
                tell=True,
            )
        self.messenger.dm(current.requester, blocks.requester_notice(current))
        self.executor.submit(self._provision_logged, request_id)
        return Outcome(True, f"Approved `{request_id}`; creating the IAM users now.")

    # -- expiry -----------------------------------------------------------------------------------

    def expire(self, request_id: str) -> OnboardingRequest | None:
        """Move a pending request to expired (CAS: one worker wins); update the approval message
        (its buttons go) and tell the requester. None when it was no longer pending."""
        moved = self.store.transition(
            request_id,
            RequestStatus.PENDING,
            RequestStatus.EXPIRED,
            actor=None,
            event="expired",
            detail={"ttl_seconds": self.settings.pending_request_ttl_seconds},
        )
        if moved is None:
            return None
        self._refresh_views(moved)
        self.messenger.dm(
            moved.requester,
            f":hourglass: Your request `{moved.id}` for {blocks.user_names(moved)} expired: nobody decided on it "
            f"within {_duration(self.settings.pending_request_ttl_seconds)}. Nothing was created; "
            "`/iam-user new` files it again.",
        )
        return moved

    def remind(self, request: OnboardingRequest) -> bool:
        """Remind the approvers of a pending request once (the marker is a CAS, so with several
        workers exactly one sends it). Returns True if this call sent it."""
        if not self.store.mark_reminded(request.id):
            return False
        who = [blocks.mention(u) for u in self.settings.approver_user_ids]
        if self.settings.approver_usergroup_id:
            who.append(f"<!subteam^{self.settings.approver_usergroup_id}>")
        text = (
            f":alarm_clock: {' '.join(who)} request `{request.id}` from {blocks.mention(request.requester)} "
            f"for {blocks.user_names(request)} is still waiting for a decision; it expires "
            f"{blocks.slack_date(self.expires_at(request))}."
        )
        if self.messenger.post(self.settings.approval_channel_id, text) is None:
            self.store.audit("reminder_post_failed", request_id=request.id)
        return True

    def approved_plan_changed(self, request: OnboardingRequest) -> str | None:
        """Why what would be created now differs from what was approved, or None if it does not.

        Re-reads the request's expansion from IAM (groups' policies, the "copy from user"
        source) and compares its :func:`bot.domain.risk.fingerprint` with the one fixed at approval.
        Call before running any step.
        """
        review = self.store.get_review(request.id)
        if review is None or review.fingerprint is None:
            return "no approved plan is on record"
        fresh = read_expansion(request.form, self.iam)
        if risk.fingerprint(request.form, fresh) == review.fingerprint:
            return None
        return risk.describe_change(review.expansion, fresh)

    def check_approved_plan(self, request: OnboardingRequest) -> None:
        """Refuse to provision what was not approved. Call right before the plan is built.

        Once the plan is stored (:class:`~bot.provisioning.journal.Journal`), the stored plan is what runs and
        a resumed run skips this. Otherwise :meth:`approved_plan_changed` re-reads IAM; if it
        differs, the change is audited (``plan_changed``) and provisioning stops before any step.

        Raises:
            ProvisioningFailed: with a sentence asking the requester to file again.
        """
        if self.journal.plan(request.id) is not None:
            return
        if (changed := self.approved_plan_changed(request)) is None:
            return
        self.store.audit("plan_changed", request_id=request.id, detail={"change": changed})
        raise ProvisioningFailed(
            f"What would be created is no longer what was approved ({changed}). Nothing was created; "
            "please file the request again so approvers can see the new permissions"
        )
