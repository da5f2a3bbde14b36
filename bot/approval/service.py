"""Filing, announcing and deciding requests: pending → approved (once enough distinct approvers
agree), denied or cancelled.

Every move is the state table's (:mod:`bot.domain.states`) through one compare-and-set in the
store with its audit row; who may decide is checked at click time (:mod:`bot.domain.access`); a
refused or losing click changes nothing, is audited, and gets a sentence for the clicker.
Handlers call the fast parts before their ack and hand :meth:`Approvals.announce` to after it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bot import logs
from bot.approval.board import ApprovalBoard
from bot.aws.iam import IamGateway
from bot.domain import risk
from bot.domain.access import Decision, may_decide, may_request
from bot.domain.changes import Changes
from bot.domain.ids import is_request_id
from bot.domain.models import OnboardingRequest, RequestForm, Review
from bot.domain.records import ApprovalVerdict
from bot.domain.states import RequestEvent, RequestStatus
from bot.lifecycle.offboarding import Offboarding
from bot.provisioning.service import Provisioning
from bot.slack.blocks import mention, untrusted_id
from bot.slack.messenger import Messenger
from bot.slack.people import People
from bot.slack.wording import decision_verb, requester_notice, status_words
from bot.storage.base import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a person's action led to: ``ok`` and a sentence to show them (ephemerally).

    ``tell`` asks the handler to show ``message`` even on success (the message update alone
    would not tell the clicker, e.g. "your approval is recorded, one more needed").
    """

    ok: bool
    message: str
    tell: bool = False


@dataclass
class Approvals:
    """The approval stage.

    Args:
        iam: reads what a request grants (after filing; never in a click path).
        sensitive_permissions / sensitive_approvals: ``SENSITIVE_PERMISSIONS`` and
            ``SENSITIVE_APPROVALS_REQUIRED``.
        board: the approvers' message; provisioning: started on the final approval of a new
            user request, offboarding on that of a removal request (``/iam-user remove``).
    """

    store: Store
    iam: IamGateway
    people: People
    messenger: Messenger
    board: ApprovalBoard
    changes: Changes
    provisioning: Provisioning
    offboarding: Offboarding
    sensitive_permissions: tuple[str, ...]
    sensitive_approvals: int

    # -- filing ---------------------------------------------------------------------------------

    def may_request(self, user_id: str) -> Decision:
        """Whether ``user_id`` may file requests (``REQUESTER_*``); a refusal is audited."""
        decision = may_request(user_id, self.people.requesters())
        if not decision.allowed:
            self.store.audit("refused_request", actor=user_id, detail={"reason": "not a requester"})
        return decision

    def file(self, requester: str, form: RequestForm) -> OnboardingRequest:
        """Store a validated form (the wizard's last view) as a pending request. Fast: no Slack
        or IAM call. The caller checked :meth:`may_request` and validated ``form``."""
        request = self.store.create_request(requester, form)
        logs.bind(request_id=request.id)
        log.info("request filed", extra={"request_id": request.id, "slack_user": requester})
        return request

    def prepare_review(self, request: OnboardingRequest) -> Review:
        """Read what ``request`` grants from IAM, flag its risks and store both, once.

        Slow (IAM reads): runs after the filing's ack, before the approval message is posted, so
        approvers never see (and clicks never wait for) an unexpanded request. A removal request
        is read as what its users hold (a sensitive permission among them makes it sensitive). A
        failed read is stored too: the request is then shown as unreadable and cannot be approved.
        """
        if (stored := self.store.get_review(request.id)) is not None:
            return stored
        form = request.form
        expansion = self.offboarding.read(form) if form.is_removal else self.iam.read_expansion(form)
        flags = risk.assess(request.form, expansion, self.sensitive_permissions)
        required = risk.approvals_required(flags, self.sensitive_approvals)
        eligible = self.people.approvers() - {request.requester, *request.form.recipients}
        if (short := risk.too_few_approvers(len(eligible), required)) is not None:
            flags = (*flags, short)
        self.store.save_review(request.id, expansion, flags, required)
        return self.store.get_review(request.id) or Review(expansion=expansion, flags=flags)

    def announce(self, request: OnboardingRequest) -> None:
        """Post the approval message and tell the requester. Slow: call after the ack.

        If the approval message cannot be posted, the request stays pending, the requester is
        told approvers could not be reached, and the failure is audited.
        """
        review = self.prepare_review(request)
        if self.board.post(request, review) is None:
            self.store.audit("approval_post_failed", request_id=request.id, detail={"channel": self.board.channel})
            self.messenger.dm(
                request.requester,
                f":warning: Your request `{request.id}` is saved, but I could not post it to the approvers' "
                "channel, so the approvers have not seen it yet. Please tell the platform team "
                "(the bot may need to be invited to the channel). `status` shows it as waiting.",
            )
            self.changes.request_updated(request.id)
            return
        request = self.store.get_request(request.id) or request
        if request.status is RequestStatus.PENDING:
            self.messenger.dm(request.requester, requester_notice(request))
        self.changes.request_updated(request.id)

    # -- deciding -------------------------------------------------------------------------------

    def check_decider(self, request_id: str, actor: str, approve: bool) -> Outcome | None:
        """Why ``actor`` may not decide on ``request_id`` now (audited), or None when they may.

        Checked at click time, never at posting time (:func:`bot.domain.access.may_decide`).
        """
        request = self.store.get_request(request_id)
        action = "approve" if approve else "deny"
        if request is None:
            # A button value is the clicker's to forge: keep only a short, printable prefix of it.
            shown = untrusted_id(request_id)
            self.store.audit("refused_decision", actor=actor, detail={"request_id": shown, "reason": "unknown request"})
            return Outcome(False, f"There is no request `{shown}`. Nothing was changed.")
        decision = may_decide(actor, request, self.people.approvers())
        if not decision.allowed:
            return self._refuse(request_id, actor, action, decision.reason, decision.reason)
        if request.status is not RequestStatus.PENDING:
            self._refuse(request_id, actor, action, "already decided", "")
            return self._already(request)
        return None

    def decide(self, request_id: str, actor: str, approve: bool, reason: str | None = None) -> Outcome:
        """Approve or deny a pending request, once.

        Checks who may decide at click time (:meth:`check_decider`); a refused or losing click
        changes nothing, is audited, and gets a sentence for the clicker. The final approval
        starts provisioning in the background and returns at once.
        """
        # Only a well-formed id goes on log lines: the value came from a button anyone can forge.
        logs.bind(request_id=request_id if is_request_id(request_id) else None, slack_user=actor)
        if (refusal := self.check_decider(request_id, actor, approve)) is not None:
            return refusal
        if approve:
            return self._approve(request_id, actor)
        moved = self.store.move_request(request_id, RequestEvent.DENIED, actor=actor, decided_by=actor, reason=reason)
        if moved is None:
            current = self.store.get_request(request_id)
            assert current is not None
            self._refuse(request_id, actor, None, "already decided", "")
            return self._already(current)
        self.changes.request_moved(moved)
        self.messenger.dm(moved.requester, requester_notice(moved))
        return Outcome(True, f"Denied `{request_id}`; the requester has been told.")

    def _approve(self, request_id: str, actor: str) -> Outcome:
        """Record ``actor``'s yes (one compare-and-set, :meth:`Store.record_approval`) against the
        fingerprint of the stored review the approver saw; start provisioning exactly once."""
        request = self.store.get_request(request_id)
        review = self.store.get_review(request_id)
        assert request is not None, "check_decider saw it"
        digest = risk.fingerprint(request.form, review.expansion) if review else ""
        result = self.store.record_approval(request_id, actor, digest)
        verdict, current = result.verdict, result.request
        assert current is not None
        if verdict is ApprovalVerdict.NOT_READY:
            return self._refuse(
                request_id,
                actor,
                "approve",
                "permissions not readable",
                f"Request `{request_id}` cannot be approved: what it grants could not be read from IAM, "
                "so nobody can see what would be created. Deny it and ask for a new request.",
            )
        if verdict is ApprovalVerdict.NOT_PENDING:
            self._refuse(request_id, actor, "approve", "already decided", "")
            return self._already(current)
        missing = result.required - result.approvals
        if verdict is ApprovalVerdict.DUPLICATE:
            return self._refuse(
                request_id,
                actor,
                "approve",
                "already approved by this approver",
                f"You already approved `{request_id}`; it needs {missing} more distinct approver(s). "
                "Nothing was changed.",
            )
        self.changes.request_moved(current)
        if verdict is ApprovalVerdict.RECORDED:
            return Outcome(
                True,
                f"Your approval of `{request_id}` is recorded ({result.approvals} of {result.required}); "
                f"it needs {missing} more distinct approver(s) before anything is created.",
                tell=True,
            )
        self.messenger.dm(current.requester, requester_notice(current))
        if current.form.is_removal:
            self.offboarding.start(request_id)
            return Outcome(True, f"Approved `{request_id}`; removing the IAM users now.")
        self.provisioning.start(request_id)
        return Outcome(True, f"Approved `{request_id}`; creating the IAM users now.")

    def _refuse(self, request_id: str, actor: str, action: str | None, reason: str, message: str) -> Outcome:
        detail = {"action": action, "reason": reason} if action else {"reason": reason}
        self.store.audit("refused_decision", request_id=request_id, actor=actor, detail=detail)
        return Outcome(False, message)

    def _already(self, request: OnboardingRequest) -> Outcome:
        """The sentence for a click on a request someone already decided (or that ended undecided)."""
        undecided = request.status in (RequestStatus.CANCELLED, RequestStatus.EXPIRED)
        review = None if undecided else self.store.get_review(request.id)
        deciders = list(review.approvers) if review and review.approvals else [request.decided_by]
        if request.status is RequestStatus.DENIED:
            deciders = [request.decided_by]
        named = " and ".join(mention(d) for d in deciders if d)
        by = f" by {named}" if named else ""
        verb = decision_verb(request.status) or "approved"
        return Outcome(False, f"Request `{request.id}` was already {verb}{by}. Nothing was changed.")

    # -- cancelling -----------------------------------------------------------------------------

    def cancel(self, request_id: str, actor: str) -> Outcome:
        """Withdraw a pending request: only its requester may, and only while it is pending.

        One compare-and-set pending → cancelled (audited ``cancelled``); the approval message
        loses its buttons. A refusal changes nothing, is audited ``refused_cancel``, and does not
        tell a stranger whether the request exists. The returned sentence is for the actor, who
        is the requester, so no separate DM is sent.
        """
        request = self.store.get_request(request_id)
        if request is None or request.requester != actor:
            shown = untrusted_id(request_id)
            self.store.audit("refused_cancel", actor=actor, detail={"request_id": shown, "reason": "not the requester"})
            return Outcome(False, f"You have no request `{shown}`. `status` lists yours.")
        moved = self.store.move_request(request_id, RequestEvent.CANCELLED, actor=actor, decided_by=actor)
        if moved is None:
            current = self.store.get_request(request_id) or request
            detail = {"reason": f"already {current.status}"}
            self.store.audit("refused_cancel", request_id=request_id, actor=actor, detail=detail)
            return Outcome(
                False,
                f"Request `{request_id}` is {status_words(current)}, so it can no longer be cancelled. "
                "Nothing was changed.",
            )
        self.changes.request_moved(moved)
        done = "removed" if moved.form.is_removal else "created"
        return Outcome(True, f"Cancelled request `{request_id}`. Nothing was {done} in IAM; the approvers see it.")
