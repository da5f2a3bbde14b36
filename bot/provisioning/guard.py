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
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.domain import seal as seals
from bot.domain.models import OnboardingRequest
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

    def approval(self, request: OnboardingRequest) -> SealProblem | None:
        """Why the request's stored approval does not cover its stored form and review, or None."""
        return seals.approval_problem(self.seal, request, self.store.get_review(request.id))

    def onboarding(self, request: OnboardingRequest, account_id: Callable[[], str]) -> SealProblem | None:
        """:meth:`approval`, then, when a plan is stored, that it is one the verified form and
        expansion make (:func:`bot.domain.seal.approved_plans`). No IAM call: ``account_id`` is
        asked (STS) only when the approved expansion does not hold the account id."""
        if (problem := self.approval(request)) is not None:
            return problem
        saved = self.store.get_plan(request.id)
        if saved is None:
            return None
        review = self.store.get_review(request.id)
        assert review is not None, "approval() read it"
        approved = seals.approved_plans(request, review.expansion, review.expansion.account_id or account_id())
        return seals.plan_problem(saved[0], approved)

    def removal(self, request: OnboardingRequest, steps: Sequence[Step]) -> SealProblem | None:
        """Why a removal's plan does more than its verified form approved, or None."""
        return seals.removal_problem(request.form, steps)

    def refuse(self, request: OnboardingRequest, problem: SealProblem) -> str:
        """Audit the refusal; returns the request's failure message (for the requester and
        ``status``)."""
        detail = {"reason": problem.what, "cause": str(problem.cause), "status": str(request.status)}
        self.store.audit(AUDIT_EVENT, request_id=request.id, detail=detail)
        log.error("refused to run a request whose stored records are not the approved ones: %s", problem.what)
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

    def alert(self, request: OnboardingRequest, problem: SealProblem) -> None:
        """Tell the approvers' channel once (the caller calls this after the request moved to
        ``failed``, so a run that is retried does not tell them again)."""
        if problem.reapprove:
            text = (
                f":warning: I did not run request `{request.id}`: {escape(problem.what)}. It is now failed; its "
                "requester must file it again so you can approve it again. If this is not what happened (nobody "
                "approved it, or nothing changed), the bot's store may have been tampered with."
            )
        else:
            text = (
                f":rotating_light: I refused to run request `{request.id}`: {escape(problem.what)}. The bot's "
                "store (database or DynamoDB table) may have been tampered with: check who can write to it, and "
                "compare its audit log with the copy in the bot's logs. Nothing that was not approved was run."
            )
        self.messenger.post(self.channel, text)
