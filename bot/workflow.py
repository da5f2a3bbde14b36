"""The request's state machine: file, decide, provision, deliver. The only place states change.

Each move is a compare-and-set in :class:`~bot.store.Store` with its audit row; Slack and IAM
work happens after the move, so a crash or a retry cannot run a step twice. Handlers call the
fast parts before their ack and hand slow parts (:meth:`Workflow.announce`, provisioning) to
after it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from bot import blocks
from bot.access import Decision, may_decide, may_request
from bot.catalog import Catalog
from bot.config import Settings
from bot.iam import IamError, IamGateway, credentials_from_outputs
from bot.links import IssuedLink, Links
from bot.messenger import Messenger
from bot.models import CreatedCredentials, OnboardingRequest, RequestForm, RequestStatus
from bot.plan import build_plan
from bot.sealing import SealError, sealer_from_bot_token
from bot.store import Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """What a person's action led to: ``ok`` and a sentence to show them (ephemerally)."""

    ok: bool
    message: str


class Workflow:
    """Ties the store, access rules, IAM and Slack together.

    Args:
        executor: runs provisioning after the approval click's ack; tests may pass their own.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        iam: IamGateway,
        catalog: Catalog,
        messenger: Messenger,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.iam = iam
        self.catalog = catalog
        self.messenger = messenger
        self.executor = executor or ThreadPoolExecutor(max_workers=2, thread_name_prefix="provision")
        self.sealer = sealer_from_bot_token(settings.slack_bot_token.get_secret_value())
        self.links = Links(settings, store, iam, messenger, self.approvers, self.executor, self._links_changed)
        self._change_listeners: list[Callable[[OnboardingRequest], None]] = []

    def on_change(self, listener: Callable[[OnboardingRequest], None]) -> None:
        """Call ``listener(request)`` after each state change and after a request is announced.

        Listeners run in the thread that made the change, so they must be quick (hand slow work
        to their own executor); an exception in one is logged and does not stop the others.
        """
        self._change_listeners.append(listener)

    def _links_changed(self, request_id: str) -> None:
        """A link of ``request_id`` was revealed, replaced or expired: tell the change listeners."""
        request = self.store.get_request(request_id)
        if request is not None:
            self._changed(request)

    def _changed(self, request: OnboardingRequest) -> None:
        for listener in list(self._change_listeners):
            try:
                listener(request)
            except Exception:
                log.exception("change listener failed", extra={"request_id": request.id})

    # -- who ------------------------------------------------------------------------------------

    def approvers(self) -> frozenset[str]:
        """``APPROVER_USER_IDS`` ∪ members of ``APPROVER_USERGROUP_ID``, resolved now."""
        members = set(self.settings.approver_user_ids)
        if self.settings.approver_usergroup_id:
            members |= self.messenger.usergroup_members(self.settings.approver_usergroup_id)
        return frozenset(members)

    def requesters(self) -> frozenset[str] | None:
        """Who may file, or None for everyone (both ``REQUESTER_*`` unset)."""
        s = self.settings
        if not s.requester_user_ids and not s.requester_usergroup_id:
            return None
        members = set(s.requester_user_ids)
        if s.requester_usergroup_id:
            members |= self.messenger.usergroup_members(s.requester_usergroup_id)
        return frozenset(members)

    def may_request(self, user_id: str) -> Decision:
        decision = may_request(user_id, self.requesters())
        if not decision.allowed:
            self.store.audit("refused_request", actor=user_id, detail={"reason": "not a requester"})
        return decision

    # -- filing ---------------------------------------------------------------------------------

    def file(self, requester: str, form: RequestForm) -> OnboardingRequest:
        """Store a validated form (the wizard's last view) as a pending request. Fast: no Slack
        or IAM call. The caller checked :meth:`may_request` and validated ``form``."""
        request = self.store.create_request(requester, form)
        log.info("request filed", extra={"request_id": request.id, "slack_user": requester})
        return request

    def announce(self, request: OnboardingRequest) -> None:
        """Post the approval message and tell the requester. Slow: call after the ack.

        If the approval message cannot be posted, the request stays pending, the requester is
        told approvers could not be reached, and the failure is audited.
        """
        text, message_blocks = blocks.approval_message(request)
        ts = self.messenger.post(self.settings.approval_channel_id, text, message_blocks)
        if ts is None:
            self.store.audit(
                "approval_post_failed", request_id=request.id, detail={"channel": self.settings.approval_channel_id}
            )
            self.messenger.dm(
                request.requester,
                f":warning: Your request `{request.id}` is saved, but I could not post it to the approvers' "
                "channel, so the approvers have not seen it yet. Please tell the platform team "
                "(the bot may need to be invited to the channel). `status` shows it as waiting.",
            )
            self._changed(request)
            return
        self.store.set_approval_message(request.id, self.settings.approval_channel_id, ts)
        request = self.store.get_request(request.id) or request
        self.messenger.dm(request.requester, blocks.requester_notice(request))
        self._changed(request)

    # -- deciding -------------------------------------------------------------------------------

    def _refresh_views(self, request: OnboardingRequest) -> None:
        if request.approval_channel and request.approval_ts:
            text, message_blocks = blocks.approval_message(request)
            self.messenger.update(request.approval_channel, request.approval_ts, text, message_blocks)
        self._changed(request)

    def _already(self, request: OnboardingRequest) -> Outcome:
        by = f" by {blocks.mention(request.decided_by)}" if request.decided_by else ""
        verb = {
            RequestStatus.DENIED: "denied",
            RequestStatus.CANCELLED: "cancelled",
            RequestStatus.EXPIRED: "expired",
        }.get(request.status, "approved")
        return Outcome(False, f"Request `{request.id}` was already {verb}{by}. Nothing was changed.")

    def check_decider(self, request_id: str, actor: str, approve: bool) -> Outcome | None:
        """Why ``actor`` may not decide on ``request_id`` now (audited), or None when they may.

        Checked at click time, never at posting time (:func:`bot.access.may_decide`).
        """
        request = self.store.get_request(request_id)
        action = "approve" if approve else "deny"
        if request is None:
            self.store.audit(
                "refused_decision", actor=actor, detail={"request_id": request_id, "reason": "unknown request"}
            )
            return Outcome(False, f"There is no request `{request_id}`.")
        decision = may_decide(actor, request, self.approvers())
        if not decision.allowed:
            self.store.audit(
                "refused_decision",
                request_id=request_id,
                actor=actor,
                detail={"action": action, "reason": decision.reason},
            )
            return Outcome(False, decision.reason)
        if request.status is not RequestStatus.PENDING:
            self.store.audit(
                "refused_decision",
                request_id=request_id,
                actor=actor,
                detail={"action": action, "reason": "already decided"},
            )
            return self._already(request)
        return None

    def decide(self, request_id: str, actor: str, approve: bool, reason: str | None = None) -> Outcome:
        """Approve or deny a pending request, once.

        Checks who may decide at click time (:meth:`check_decider`); a refused or losing click
        changes nothing, is audited, and gets a sentence for the clicker. Approval schedules
        provisioning on :attr:`executor` and returns at once.
        """
        if (refusal := self.check_decider(request_id, actor, approve)) is not None:
            return refusal
        new = RequestStatus.APPROVED if approve else RequestStatus.DENIED
        moved = self.store.transition(
            request_id,
            RequestStatus.PENDING,
            new,
            actor=actor,
            event="approved" if approve else "denied",
            decided_by=actor,
            decided_at=self.store.clock(),
            reason=reason,
        )
        if moved is None:
            current = self.store.get_request(request_id)
            assert current is not None
            self.store.audit(
                "refused_decision", request_id=request_id, actor=actor, detail={"reason": "already decided"}
            )
            return self._already(current)
        self._refresh_views(moved)
        self.messenger.dm(moved.requester, blocks.requester_notice(moved))
        if approve:
            self.executor.submit(self._provision_logged, request_id)
            return Outcome(True, f"Approved `{request_id}`; creating the IAM users now.")
        return Outcome(True, f"Denied `{request_id}`; the requester has been told.")

    # -- provisioning ---------------------------------------------------------------------------

    def _provision_logged(self, request_id: str) -> None:
        try:
            self.provision(request_id)
        except Exception:
            log.exception("provisioning crashed", extra={"request_id": request_id})

    def provision(self, request_id: str) -> OnboardingRequest | None:
        """Create the request's IAM users, all or nothing, then deliver their credentials.

        Moves approved → provisioning → provisioned | failed. On any IAM error every user this
        request created is deleted again and the request fails with IAM's error in words.
        """
        request = self.store.transition(
            request_id, RequestStatus.APPROVED, RequestStatus.PROVISIONING, actor=None, event="provisioning_started"
        )
        if request is None:
            return None  # someone else is provisioning it, or it is not approved
        self._refresh_views(request)
        created: list[str] = []
        outputs: dict[str, dict[str, str]] = {name: {} for name in request.form.user_names}
        try:
            for name in request.form.user_names:
                if self.iam.user_exists(name):
                    raise IamError(
                        "EntityAlreadyExists", f"an IAM user named {name} exists (IAM ignores case)", "CreateUser"
                    )
            policy = self.iam.password_policy()
            console_url = self.iam.console_url()
            form = request.form
            custom_password = self._custom_password(request)
            copy_source = self.iam.user_permissions(form.copy_from_user) if form.copy_from_user else None
            plan = build_plan(
                request,
                approver=request.decided_by or "unknown",
                account_id=self.iam.account_id(),
                copy_source=copy_source,
                users_may_change_password=policy.allow_users_to_change_password,
            )
            for step in plan:
                result = self.iam.run_step(step, policy, console_url, custom_password)
                if step.kind == "create_user":
                    created.append(step.user_name)
                if step.user_name:
                    outputs[step.user_name].update(result)
                self.store.audit("step_done", request_id=request_id, detail={"step": step.label})
        except IamError as error:
            return self._fail(request, created, error)
        self.store.forget_custom_password(request_id)
        for name in created:
            self.catalog.note_user_created(name)
        credentials = [credentials_from_outputs(name, console_url, outputs[name]) for name in request.form.user_names]
        links = [self._seal(request, c) for c in credentials]
        done = self.store.transition(
            request_id, RequestStatus.PROVISIONING, RequestStatus.PROVISIONED, actor=None, event="provisioned"
        )
        assert done is not None, "only this worker moves a provisioning request"
        for credential, issued in zip(credentials, links, strict=True):
            self._deliver(done, credential, issued)
        self._refresh_views(done)
        self.messenger.dm(done.requester, blocks.requester_notice(done))
        return done

    def _custom_password(self, request: OnboardingRequest) -> str | None:
        """The request's custom password, opened from its seal (:mod:`bot.sealing`), or None.

        Raises:
            IamError: ``CustomPasswordUnavailable`` when the seal cannot be opened (nothing is
                created yet, so the request fails cleanly).
        """
        sealed = request.form.custom_password_sealed
        if not sealed:
            return None
        try:
            return self.sealer.open(sealed, request.requester)
        except SealError as error:
            raise IamError("CustomPasswordUnavailable", str(error), "CreateLoginProfile") from None

    def _fail(self, request: OnboardingRequest, created: list[str], error: IamError) -> OnboardingRequest | None:
        log.warning("provisioning failed, rolling back", extra={"request_id": request.id})
        self.store.forget_custom_password(request.id)
        rollback_error = None
        for name in reversed(created):
            try:
                self.iam.delete_user_completely(name)
                self.store.audit("rolled_back", request_id=request.id, detail={"user_name": name})
            except Exception as cleanup:
                rollback_error = str(cleanup)
                self.store.audit(
                    "rollback_failed", request_id=request.id, detail={"user_name": name, "error": rollback_error}
                )
        message = str(error) + (f" (and cleanup failed: {rollback_error})" if rollback_error else "")
        failed = self.store.transition(
            request.id,
            RequestStatus.PROVISIONING,
            RequestStatus.FAILED,
            actor=None,
            event="failed",
            detail={"error": message},
            error=message,
        )
        if failed is not None:
            self._refresh_views(failed)
            self.messenger.dm(failed.requester, blocks.requester_notice(failed))
        return failed

    def _seal(self, request: OnboardingRequest, credentials: CreatedCredentials) -> IssuedLink:
        """Seal one user's credentials into a one-time link (:meth:`bot.links.Links.issue`)."""
        return self.links.issue(request.id, request.form.recipient_of(credentials.user_name), credentials)

    def _deliver(self, request: OnboardingRequest, credentials: CreatedCredentials, issued: IssuedLink) -> None:
        """Send the link to its recipient (:meth:`bot.links.Links.deliver`)."""
        recipient = request.form.recipient_of(credentials.user_name)
        self.links.deliver(request.id, recipient, credentials.user_name, credentials.console_url, issued)

    # -- cancelling -----------------------------------------------------------------------------

    def cancel(self, request_id: str, actor: str) -> Outcome:
        """Withdraw a pending request: only its requester may, and only while it is pending.

        One compare-and-set pending → cancelled (audited ``cancelled``); the approval message
        loses its buttons. A refusal changes nothing, is audited ``refused_cancel``, and does
        not tell a stranger whether the request exists. The returned sentence is for the actor,
        who is the requester, so no separate DM is sent.
        """
        request = self.store.get_request(request_id)
        if request is None or request.requester != actor:
            self.store.audit(
                "refused_cancel", actor=actor, detail={"request_id": request_id, "reason": "not the requester"}
            )
            return Outcome(False, f"You have no request `{request_id}`. `status` lists yours.")
        moved = self.store.transition(
            request_id,
            RequestStatus.PENDING,
            RequestStatus.CANCELLED,
            actor=actor,
            event="cancelled",
            decided_by=actor,
            decided_at=self.store.clock(),
        )
        if moved is None:
            current = self.store.get_request(request_id) or request
            self.store.audit(
                "refused_cancel", request_id=request_id, actor=actor, detail={"reason": f"already {current.status}"}
            )
            return Outcome(
                False,
                f"Request `{request_id}` is {current.status.words}, so it can no longer be cancelled. "
                "Nothing was changed.",
            )
        self._refresh_views(moved)
        return Outcome(True, f"Cancelled request `{request_id}`. Nothing was created in IAM; the approvers see it.")

    def shutdown(self, wait: bool = False) -> None:
        """Stop taking new provisioning work."""
        self.executor.shutdown(wait=wait)

    def after(self, future_fn: Callable[[], None]) -> Future[None]:
        """Run ``future_fn`` on the background executor (slow work after an ack)."""
        return self.executor.submit(future_fn)
