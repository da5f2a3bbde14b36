"""What every run checks before its first IAM call: that the store's records are the approved ones.

The stored approval must be the seal (:mod:`bot.domain.seal`) of the request's stored form and the
review's stored expansion, under a key the store does not hold; a stored plan must be the one
those verified records make (onboarding), or take away only what the verified removal names. On a
mismatch the run is refused: audited ``approval_seal_invalid`` (what did not match, never a secret)
and the approvers' channel told once that the store may have been tampered with. The services
(:mod:`bot.provisioning.service`, :mod:`bot.lifecycle.offboarding`) then fail the request through
the state machine.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from bot.domain import seal as seals
from bot.domain.models import OnboardingRequest, Review
from bot.domain.plan import Step
from bot.domain.seal import ApprovalSeal, SealProblem
from bot.slack.blocks import escape
from bot.slack.messenger import Messenger
from bot.storage.base import Store

log = logging.getLogger(__name__)

AUDIT_EVENT = "approval_seal_invalid"


@dataclass
class ApprovalGuard:
    """Checks a request's stored records against its approval seal, and reports a refusal.

    Args:
        store: the request's review and stored plan; the audit log.
        seal: this deployment's :class:`~bot.domain.seal.ApprovalSeal`.
        messenger: posts the alert; channel: ``APPROVAL_CHANNEL_ID``.
    """

    store: Store
    seal: ApprovalSeal
    messenger: Messenger
    channel: str

    def approval(self, request: OnboardingRequest) -> Review | SealProblem:
        """The request's stored review, read once, if the stored approval seals it and the
        request's form (``request`` as the caller read it); else why not. Later checks of the run
        use this review, never a second read the store could answer differently."""
        review = self.store.get_review(request.id)
        problem = seals.approval_problem(self.seal, request, review)
        if problem is not None:
            return problem
        assert review is not None, "approval_problem refuses a missing review"
        return review

    def offered(self, request: OnboardingRequest, review: Review) -> SealProblem | None:
        """Why what a click would approve is not what approvers were shown (the review's seal of
        the form, the expansion and the approvals needed), or None."""
        return seals.offer_problem(self.seal, request, review)

    def plan(
        self, request: OnboardingRequest, review: Review, steps: Sequence[Step], account_id: str
    ) -> SealProblem | None:
        """Why onboarding ``steps`` are none of the plans the verified request and ``review`` make
        (:func:`bot.domain.seal.approved_plans`), or None. Pure: no IAM call."""
        return seals.plan_problem(steps, seals.approved_plans(request, review.expansion, account_id))

    def removal(self, request: OnboardingRequest, steps: Sequence[Step]) -> SealProblem | None:
        """Why a removal's plan does more than its verified form approved, or None."""
        return seals.removal_problem(request.form, steps)

    def refuse(self, request: OnboardingRequest, problem: SealProblem) -> str:
        """Audit the refusal; returns the request's failure message (for the requester and
        ``status``)."""
        detail = {"reason": problem.what, "cause": str(problem.cause), "status": str(request.status)}
        self.store.audit(AUDIT_EVENT, request_id=request.id, detail=detail)
        log.error("refused a request whose stored records are not the approved ones: %s", problem.what)
        done = "removed" if request.form.is_removal else "created"
        if problem.reapprove:
            return (
                f"Its approval cannot be checked any more ({problem.what}), so I did not run it (nothing more was "
                f"{done}). Please file it again so approvers can approve it again"
            )
        return (
            f"Refused to run it: the stored records no longer match its approval ({problem.what}); nothing "
            "unapproved was run. Please file the request again"
        )

    def alert(self, request: OnboardingRequest, problem: SealProblem, *, at_click: bool = False) -> None:
        """Tell the approvers' channel: once for a run (the caller calls this after the request
        moved to ``failed``, so a run that is retried does not tell them again), or for each
        refused approval click (``at_click``: the request stays pending, to be denied)."""
        what = escape(problem.what)
        if at_click:
            done = f"I refused an approval of request `{request.id}`: {what}. Nothing was approved"
            after = "Deny it; its requester can file it again."
        else:
            done = f"I refused to run request `{request.id}`: {what}. It is now failed"
            after = "Its requester must file it again so you can approve it again."
        if problem.reapprove:
            text = (
                f":warning: {done}. {after} If this is not what happened (nobody approved it, or nothing "
                "changed), the bot's store may have been tampered with."
            )
        else:
            text = (
                f":rotating_light: {done}; nothing that was not approved was run. The bot's store (database or "
                "DynamoDB table) may have been tampered with: check who can write to it, and compare its audit "
                f"log with the copy in the bot's logs. {after}"
            )
        self.messenger.post(self.channel, text)
