"""Provisioning an approved request: approved → provisioning → provisioned (or failed, rolled back),
credentials delivered by one-time link, and whatever a crashed process left resumed.

Each move is the state table's (:mod:`bot.domain.states`) through the store; IAM and Slack work
happens after the move, so a crash or a retry cannot run a step twice. What was approved is what
runs: before the first step the request's permissions are read from IAM again and must
fingerprint as they did at approval.
"""

from __future__ import annotations

import logging
from concurrent.futures import Executor
from dataclasses import dataclass

from bot import logs
from bot.aws.catalog import Catalog
from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.credentials.links import Links
from bot.credentials.sealing import PasswordSealer, SealError
from bot.domain import risk
from bot.domain.changes import Changes
from bot.domain.models import CLEANUP_FAILED, CreatedCredentials, OnboardingRequest
from bot.domain.plan import Step
from bot.domain.states import RequestEvent, RequestStatus
from bot.provisioning.lease import LeaseLost, Leases
from bot.provisioning.runner import Provisioner, ProvisioningFailed, exit_for_test
from bot.slack.messenger import Messenger
from bot.slack.wording import requester_notice
from bot.storage.base import Store

log = logging.getLogger(__name__)


@dataclass
class Provisioning:
    """Runs approved requests, once each, across every process sharing the store.

    Args:
        store: requests, reviews, the journal and leases.
        iam: reads IAM (the approved-plan check, the plan's inputs).
        catalog: told of the users made, so the wizard counts them before its next refresh.
        links: seals and delivers each new user's credentials.
        sealer: opens a request's sealed custom password just before it is used.
        messenger: the requester's and the approver's DMs.
        changes: the views told of each move and step.
        leases: this process's lease terms.
        executor: runs provisioning after the approval click's ack.
        provisioner: runs, resumes and rolls back plans (its step callback tells ``changes``).
    """

    store: Store
    iam: IamGateway
    catalog: Catalog
    links: Links
    sealer: PasswordSealer
    messenger: Messenger
    changes: Changes
    leases: Leases
    executor: Executor
    provisioner: Provisioner

    def start(self, request_id: str) -> None:
        """Provision an approved request on :attr:`executor` (returns at once)."""
        self.executor.submit(self._provision_logged, request_id)

    def _provision_logged(self, request_id: str) -> None:
        try:
            with logs.log_context(request_id=request_id):
                self.provision(request_id)
        except Exception:
            log.exception("provisioning crashed", extra={"request_id": request_id})

    def provision(self, request_id: str) -> OnboardingRequest | None:
        """Create the request's IAM users, all or nothing, then deliver their credentials.

        approved → provisioning (taking the lease in the same compare-and-set), the plan runs,
        then provisioning → provisioned, or → failed after every user this request created was
        deleted again. Returns the request as it ends, or None when another process has it or it
        is not approved.
        """
        current = self.store.get_request(request_id)
        if current is None or current.form.is_removal:
            return None  # a removal is run by bot.lifecycle.offboarding
        request = self.store.move_request(
            request_id, RequestEvent.PROVISIONING_STARTED, actor=None, lease=self.leases.lease()
        )
        if request is None:
            return None  # someone else is provisioning it, or it is not approved
        self.changes.request_moved(request)
        return self._run(request)

    def resume_interrupted(self) -> list[str]:
        """Finish what a stopped or crashed process (or a run cut off by a network or database
        error) left, from the journal. Run at start-up and then periodically.

        Requests still ``approved`` are provisioned (the approval's background job died with its
        process); ``provisioning`` requests whose lease is free (released, expired, or its process
        is gone) are resumed from the journal, or rolled back if a step had failed. Safe with
        several workers starting at once: each request is claimed by compare-and-set. Returns the
        ids this process worked on.
        """
        handled: list[str] = []
        for request in self.store.requests_where(statuses=[RequestStatus.APPROVED], limit=1000):
            if request.form.is_removal:
                continue  # offboarding's (bot.lifecycle.offboarding)
            with logs.log_context(request_id=request.id):
                if self.provision(request.id) is not None:
                    handled.append(request.id)
        for request in self.store.requests_where(statuses=[RequestStatus.PROVISIONING], limit=1000):
            if request.form.is_removal:
                continue
            if not self.store.claim_lease(request.id, self.leases.lease(), self.leases.is_gone):
                continue
            with logs.log_context(request_id=request.id):
                self.store.audit("provisioning_resumed", request_id=request.id, detail={"owner": self.leases.owner})
                log.info("resuming provisioning")
                self._run(request)
            handled.append(request.id)
        return handled

    # -- one run -------------------------------------------------------------------------------

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
            # leave the request in provisioning with its journal; the next round resumes it.
            log.exception("provisioning interrupted; it resumes at the next start", extra={"request_id": request.id})
            self.store.release_lease(request.id, self.leases.owner)
            return None
        self.store.forget_custom_password(request.id)  # the login profiles have it now
        names = request.form.user_names
        for name in names:
            self.catalog.note_user_created(name)
        credentials = [CreatedCredentials.from_outputs(name, prepared.console_url, secrets[name]) for name in names]
        self.store.discard_unsent_links(request.id)  # sealed (maybe sent) by a run that died
        links = [self.links.issue(request.id, request.form.recipient_of(c.user_name), c) for c in credentials]
        exit_for_test("sealed")
        # Send the links while the request is still provisioning under our lease: the link keys
        # live only in this process, so if it dies mid-way the next start must resume the request
        # (new credentials, new links; the dead run's links are retired above). Marking it
        # provisioned first left a window in which a crash meant nobody ever got a link.
        for credential, issued in zip(credentials, links, strict=True):
            recipient = request.form.recipient_of(credential.user_name)
            self.links.deliver(request.id, recipient, credential.user_name, credential.console_url, issued)
            exit_for_test("delivered")
        done = self.store.move_request(request.id, RequestEvent.PROVISIONED, actor=None)
        if done is None:
            return None  # cannot happen while we hold the lease
        self.changes.request_moved(done)
        self.messenger.dm(done.requester, requester_notice(done))
        return done

    def _custom_password(self, request: OnboardingRequest) -> str | None:
        """The request's custom password, opened from its seal (:mod:`bot.credentials.sealing`).

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

    def _fail(self, request: OnboardingRequest, steps: list[Step] | None, error: str) -> OnboardingRequest | None:
        """Roll back what this request created, then move it to failed and tell both people.

        If the rollback raises (not an IAM refusal: the network, say), the request stays in
        provisioning with its journal, and the next round rolls back again.
        """
        log.warning("provisioning failed, rolling back", extra={"request_id": request.id})
        problems = self.provisioner.rollback(request, steps)
        self.store.forget_custom_password(request.id)
        message = error
        if problems:
            message += f". {CLEANUP_FAILED}: " + "; ".join(problems)
        failed = self.store.move_request(
            request.id, RequestEvent.FAILED, actor=None, detail={"error": message}, error=message
        )
        if failed is not None:
            self.changes.request_moved(failed)
            self.messenger.dm(failed.requester, requester_notice(failed))
            if failed.decided_by and failed.decided_by != failed.requester:
                self.messenger.dm(
                    failed.decided_by,
                    f"Request `{failed.id}` that you approved failed; {failed.failure_outcome}. IAM said: {message}",
                )
        return failed

    # -- what was approved is what runs ----------------------------------------------------------

    def approved_plan_changed(self, request: OnboardingRequest) -> str | None:
        """Why what would be created now differs from what was approved, or None if it does not.

        Re-reads the request's expansion from IAM (groups' policies, the "copy from user" source)
        and compares its :func:`bot.domain.risk.fingerprint` with the one fixed at approval.
        """
        review = self.store.get_review(request.id)
        if review is None or review.fingerprint is None:
            return "no approved plan is on record"
        fresh = self.iam.read_expansion(request.form)
        if risk.fingerprint(request.form, fresh) == review.fingerprint:
            return None
        return risk.describe_change(review.expansion, fresh)

    def check_approved_plan(self, request: OnboardingRequest) -> None:
        """Refuse to provision what was not approved. Call right before the plan is built.

        Once the plan is stored, the stored plan is what runs and a resumed run skips this.
        Otherwise :meth:`approved_plan_changed` re-reads IAM; if it differs, the change is audited
        (``plan_changed``) and provisioning stops before any step.

        Raises:
            ProvisioningFailed: with a sentence asking the requester to file again.
        """
        if self.store.get_plan(request.id) is not None:
            return
        if (changed := self.approved_plan_changed(request)) is None:
            return
        self.store.audit("plan_changed", request_id=request.id, detail={"change": changed})
        raise ProvisioningFailed(
            f"What would be created is no longer what was approved ({changed}). Nothing was created; "
            "please file the request again so approvers can see the new permissions"
        )
