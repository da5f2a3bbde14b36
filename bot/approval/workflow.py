"""The request's state machine: file, decide, provision, deliver. The only place states change.

Each move is a compare-and-set in :class:`~bot.storage.sqlite.Store` with its audit row; Slack and IAM
work happens after the move, so a crash or a retry cannot run a step twice. Handlers call the
fast parts before their ack and hand slow parts (:meth:`Workflow.announce`, provisioning) to
after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bot import logs
from bot.approval.flow import ApprovalFlow, Outcome
from bot.aws.catalog import Catalog
from bot.aws.iam import IamError, IamGateway, credentials_from_outputs
from bot.config import Settings
from bot.credentials.links import IssuedLink, Links
from bot.credentials.sealing import SealError, sealer_from_bot_token
from bot.domain.access import Decision, may_decide, may_request
from bot.domain.models import CLEANUP_FAILED, CreatedCredentials, OnboardingRequest, RequestForm, RequestStatus
from bot.provisioning.journal import Journal
from bot.provisioning.runner import LeaseLost, Provisioner, ProvisioningFailed, exit_for_test
from bot.slack import blocks
from bot.slack.messenger import Messenger
from bot.storage.sqlite import Store

log = logging.getLogger(__name__)

# How often a serving process looks for provisioning left half-done (seconds); the lease keeps
# every round safe while another process works on a request.
RESUME_INTERVAL_SECONDS = 300.0
# Slack allows about one chat.update a second per channel; progress lines need no more.
PROGRESS_EVERY_SECONDS = 1.0


class Workflow(ApprovalFlow):
    """Ties the store, access rules, IAM and Slack together.

    Args:
        executor: runs provisioning after the approval click's ack; tests may pass their own.
        journal: the provisioning journal and lease (one owner id per process); tests pass
            their own to play a second process.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        iam: IamGateway,
        catalog: Catalog,
        messenger: Messenger,
        executor: ThreadPoolExecutor | None = None,
        journal: Journal | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.iam = iam
        self.catalog = catalog
        self.messenger = messenger
        # ContextExecutor: provisioning's log lines keep the request id and the approver's user id.
        self.executor = executor or logs.ContextExecutor(max_workers=2, thread_name_prefix="provision")
        self.sealer = sealer_from_bot_token(settings.slack_bot_token.get_secret_value())
        self.journal = journal or Journal(store)
        self.provisioner = Provisioner(store, iam, self.journal, on_step_done=self._step_done)
        self._progress_shown: dict[str, float] = {}
        self._refresh_locks: dict[str, threading.Lock] = {}
        self._progress_lock = threading.Lock()
        # Progress updates go through their own thread: a slow or rate-limited chat.update must
        # never hold up the IAM steps (or the lease they renew).
        self._progress_pool = logs.ContextExecutor(max_workers=1, thread_name_prefix="progress")
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
        logs.bind(request_id=request.id)
        log.info("request filed", extra={"request_id": request.id, "slack_user": requester})
        return request

    def announce(self, request: OnboardingRequest) -> None:
        """Post the approval message and tell the requester. Slow: call after the ack.

        If the approval message cannot be posted, the request stays pending, the requester is
        told approvers could not be reached, and the failure is audited.
        """
        review = self.prepare_review(request)
        text, message_blocks = self._approval_message(request, review)
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
        # A click or a cancel that landed while the message was being posted could not update a
        # message whose ts it did not know yet; if what was posted is out of date, update it now.
        now_text, now_blocks = self._approval_message(request)
        if [b.to_dict() for b in now_blocks] != [b.to_dict() for b in message_blocks]:
            self.messenger.update(self.settings.approval_channel_id, ts, now_text, now_blocks)
        if request.status is RequestStatus.PENDING:
            self.messenger.dm(request.requester, blocks.requester_notice(request))
        self._changed(request)

    # -- deciding -------------------------------------------------------------------------------

    def _step_done(self, request_id: str) -> None:
        """Show provisioning progress in the approval message, at most once every
        :data:`PROGRESS_EVERY_SECONDS` per request (``chat.update`` is rate-limited by Slack)."""
        now = time.monotonic()
        with self._progress_lock:
            if now - self._progress_shown.get(request_id, 0.0) < PROGRESS_EVERY_SECONDS:
                return
            self._progress_shown[request_id] = now
        self._progress_pool.submit(self._show_progress, request_id)

    def _show_progress(self, request_id: str) -> None:
        request = self.store.get_request(request_id)
        if request is not None and request.status is RequestStatus.PROVISIONING:
            self._refresh_views(request)

    def _refresh_views(self, request: OnboardingRequest) -> None:
        # Render from the stored state, not the caller's snapshot: with several workers another
        # move may have landed since, and the newest state is the one to show. Reading and
        # updating under one lock per request keeps an older rendering (a progress line) from
        # landing after a newer one (the outcome).
        with self._refresh_lock(request.id):
            request = self.store.get_request(request.id) or request
            if request.approval_channel and request.approval_ts:
                text, message_blocks = self._approval_message(request)
                self.messenger.update(request.approval_channel, request.approval_ts, text, message_blocks)
        self._changed(request)

    def _refresh_lock(self, request_id: str) -> threading.Lock:
        with self._progress_lock:
            return self._refresh_locks.setdefault(request_id, threading.Lock())

    def check_decider(self, request_id: str, actor: str, approve: bool) -> Outcome | None:
        """Why ``actor`` may not decide on ``request_id`` now (audited), or None when they may.

        Checked at click time, never at posting time (:func:`bot.domain.access.may_decide`).
        """
        request = self.store.get_request(request_id)
        action = "approve" if approve else "deny"
        if request is None:
            # A button value is the clicker's to forge: keep only a short, printable prefix of it.
            shown = blocks.untrusted_id(request_id)
            self.store.audit("refused_decision", actor=actor, detail={"request_id": shown, "reason": "unknown request"})
            return Outcome(False, f"There is no request `{shown}`. Nothing was changed.")
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
        # Only a well-formed id goes on log lines: the value came from a button anyone can forge.
        logs.bind(request_id=request_id if logs.REQUEST_ID_PATTERN.match(request_id) else None, slack_user=actor)
        if (refusal := self.check_decider(request_id, actor, approve)) is not None:
            return refusal
        if approve:
            return self._approve(request_id, actor)
        moved = self.store.transition(
            request_id,
            RequestStatus.PENDING,
            RequestStatus.DENIED,
            actor=actor,
            event="denied",
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
        return Outcome(True, f"Denied `{request_id}`; the requester has been told.")

    # -- provisioning ---------------------------------------------------------------------------

    def _provision_logged(self, request_id: str) -> None:
        try:
            with logs.log_context(request_id=request_id):
                self.provision(request_id)
        except Exception:
            log.exception("provisioning crashed", extra={"request_id": request_id})

    def provision(self, request_id: str) -> OnboardingRequest | None:
        """Create the request's IAM users, all or nothing, then deliver their credentials.

        Moves approved → provisioning (taking the lease in the same compare-and-set), runs the
        plan (:class:`~bot.provisioning.runner.Provisioner`), then provisioning → provisioned, or
        → failed after every user this request created was deleted again. Returns the request
        as it ends, or None when another process has it or it is not approved.
        """
        request = self.store.transition(
            request_id,
            RequestStatus.APPROVED,
            RequestStatus.PROVISIONING,
            actor=None,
            event="provisioning_started",
            **self.journal.lease_fields(),
        )
        if request is None:
            return None  # someone else is provisioning it, or it is not approved
        self._refresh_views(request)
        return self._run(request)

    def resume_interrupted(self) -> list[str]:
        """Finish what a stopped or crashed process (or a run cut off by a network or database
        error) left, from the journal. Called at start-up and then periodically.

        Requests still ``approved`` are provisioned (the approval's background job died with
        its process); ``provisioning`` requests whose lease is free (released, expired, or its
        process is gone) are resumed from the journal, or rolled back if a step had failed.
        Safe with several workers starting at once: each request is claimed by compare-and-set.
        Returns the ids this process worked on.
        """
        handled: list[str] = []
        for request in self.store.requests_where(statuses=[RequestStatus.APPROVED], limit=1000):
            with logs.log_context(request_id=request.id):
                if self.provision(request.id) is not None:
                    handled.append(request.id)
        for request in self.store.requests_where(statuses=[RequestStatus.PROVISIONING], limit=1000):
            if not self.journal.claim(request.id):
                continue
            with logs.log_context(request_id=request.id):
                self.store.audit("provisioning_resumed", request_id=request.id, detail={"owner": self.journal.owner})
                log.info("resuming provisioning")
                self._run(request)
            handled.append(request.id)
        return handled

    def resume_interrupted_logged(self) -> None:
        """:meth:`resume_interrupted` for a background thread: errors are logged, not raised."""
        try:
            self.resume_interrupted()
        except Exception:
            log.exception("resuming interrupted requests failed")

    def start_resume_loop(self, interval: float = RESUME_INTERVAL_SECONDS) -> threading.Event:
        """Run :meth:`resume_interrupted` now and every ``interval`` seconds in a daemon thread.

        At start-up it picks up what a stopped or crashed process left; later rounds pick up a
        request whose run stopped on a non-IAM error (network, database), which otherwise
        would wait for the next restart. Returns the event that stops the loop.
        """
        stop = threading.Event()

        def loop() -> None:
            self.resume_interrupted_logged()
            while not stop.wait(interval):
                self.resume_interrupted_logged()

        threading.Thread(target=loop, name="resume-interrupted", daemon=True).start()
        return stop

    def _run(self, request: OnboardingRequest) -> OnboardingRequest | None:
        """Run (or resume) a provisioning request this process holds the lease on."""
        prepared = None
        try:
            try:
                self.check_approved_plan(request)
                prepared = self.provisioner.prepare(request, self._custom_password(request))
                secrets = self.provisioner.execute(request, prepared)
            except (ProvisioningFailed, IamError) as error:
                return self._fail(request, prepared.steps if prepared else None, str(error))
        except LeaseLost:
            log.warning("another process took the request over", extra={"request_id": request.id})
            return None
        except Exception:
            # Neither IAM's answer nor a step's failure (say the database or network is down):
            # leave the request in provisioning with its journal; the next start resumes it.
            log.exception("provisioning interrupted; it resumes at the next start", extra={"request_id": request.id})
            self.journal.release(request.id)
            return None
        self.store.forget_custom_password(request.id)  # the login profiles have it now
        names = request.form.user_names
        for name in names:
            self.catalog.note_user_created(name)
        credentials = [credentials_from_outputs(name, prepared.console_url, secrets[name]) for name in names]
        self.journal.discard_unsent_links(request.id)  # sealed (maybe sent) by a run that died
        links = [self._seal(request, c) for c in credentials]
        exit_for_test("sealed")
        # Send the links while the request is still provisioning under our lease: the link keys
        # live only in this process, so if it dies mid-way the next start must resume the request
        # (new credentials, new links; the dead run's links are retired above). Marking it
        # provisioned first left a window in which a crash meant nobody ever got a link.
        for credential, issued in zip(credentials, links, strict=True):
            self._deliver(request, credential, issued)
            exit_for_test("delivered")
        done = self.store.transition(
            request.id,
            RequestStatus.PROVISIONING,
            RequestStatus.PROVISIONED,
            actor=None,
            event="provisioned",
            lease_owner=None,
            lease_until=None,
        )
        if done is None:
            return None  # cannot happen while we hold the lease
        self._refresh_views(done)
        self.messenger.dm(done.requester, blocks.requester_notice(done))
        return done

    def _custom_password(self, request: OnboardingRequest) -> str | None:
        """The request's custom password, opened from its seal (:mod:`bot.credentials.sealing`), or None.

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

    def _fail(self, request: OnboardingRequest, steps: list | None, error: str) -> OnboardingRequest | None:
        """Roll back what this request created, then move it to failed and tell both people.

        If the rollback raises (not an IAM refusal: the network, say), the request stays in
        provisioning with its journal, and the next start rolls back again.
        """
        log.warning("provisioning failed, rolling back", extra={"request_id": request.id})
        problems = self.provisioner.rollback(request, steps)
        self.store.forget_custom_password(request.id)
        message = error
        if problems:
            message += f". {CLEANUP_FAILED}: " + "; ".join(problems)
        failed = self.store.transition(
            request.id,
            RequestStatus.PROVISIONING,
            RequestStatus.FAILED,
            actor=None,
            event="failed",
            detail={"error": message},
            error=message,
            lease_owner=None,
            lease_until=None,
        )
        if failed is not None:
            self._refresh_views(failed)
            self.messenger.dm(failed.requester, blocks.requester_notice(failed))
            if failed.decided_by and failed.decided_by != failed.requester:
                self.messenger.dm(
                    failed.decided_by,
                    f"Request `{failed.id}` that you approved failed; {failed.failure_outcome}. IAM said: {message}",
                )
        return failed

    def _seal(self, request: OnboardingRequest, credentials: CreatedCredentials) -> IssuedLink:
        """Seal one user's credentials into a one-time link (:meth:`bot.credentials.links.Links.issue`)."""
        return self.links.issue(request.id, request.form.recipient_of(credentials.user_name), credentials)

    def _deliver(self, request: OnboardingRequest, credentials: CreatedCredentials, issued: IssuedLink) -> None:
        """Send the link to its recipient (:meth:`bot.credentials.links.Links.deliver`)."""
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
            shown = blocks.untrusted_id(request_id)
            self.store.audit("refused_cancel", actor=actor, detail={"request_id": shown, "reason": "not the requester"})
            return Outcome(False, f"You have no request `{shown}`. `status` lists yours.")
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
