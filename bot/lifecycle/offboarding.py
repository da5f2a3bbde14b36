"""Users who go: ``/iam-user remove`` from the form to IAM (contract, section 5).

A removal is a request like a new user's (:attr:`bot.domain.models.RequestForm.remove_mode`): filed,
reviewed with what each user holds (a sensitive permission among them makes it sensitive), approved
by the same buttons and rules, then run here: approved → provisioning (the lease taken in the same
compare-and-set) → provisioned, or failed. The plan (:func:`bot.domain.removal.removal_plan`) is
made from IAM as it is when the run starts and stored, each step journaled before and after its
call by the provisioning runner, so a crash resumes from the journal (every removal step is
idempotent: what is gone already counts as done). Nothing is rolled back: a failed step stops the
run, IAM is read again, and the request fails naming exactly what is left of each user.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from bot import logs
from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.inventory import Inventory
from bot.aws.steps import RunContext
from bot.domain.changes import Changes
from bot.domain.models import AccessType, OnboardingRequest, PermissionExpansion, RemoveMode, RequestForm
from bot.domain.plan import MANAGED_TAG, OWNER_TAG, Step
from bot.domain.removal import removal_plan, what_is_left
from bot.domain.rules import PasswordPolicy
from bot.domain.states import OPEN_STATUSES, RequestEvent, RequestStatus
from bot.lifecycle.removal_form import USERS_BLOCK, parse_removal
from bot.provisioning.lease import LeaseLost, Leases
from bot.provisioning.runner import Prepared, Provisioner, ProvisioningFailed
from bot.slack.blocks import escape
from bot.slack.messenger import Messenger
from bot.slack.view_state import StateValues
from bot.slack.wording import requester_notice
from bot.storage.base import Store

log = logging.getLogger(__name__)

FILED_SUFFIX = "/removal-filed"  # the draft key under which the filed request's id waits for the work after the ack
NO_ACCESS: frozenset[AccessType] = frozenset()


@dataclass
class Offboarding:
    """Checks the removal form and runs approved removals, once each, across processes.

    Args:
        iam: reads the users' tags while the form is checked; inventory: what each user holds;
        provisioner: journals and runs the steps; leases: this process's lease terms;
        executor: runs a removal after the approval click's ack.
    """

    store: Store
    iam: IamGateway
    inventory: Inventory
    provisioner: Provisioner
    leases: Leases
    messenger: Messenger
    changes: Changes
    executor: Executor

    # -- the form ------------------------------------------------------------------------------

    def check_form(self, values: StateValues) -> RequestForm | dict[str, str]:
        """The submitted form as a removal request's form, or field errors (block_id → message).

        Users are checked at the field, against IAM now (``ListUserTags`` each, in parallel: at
        most 10, well inside Slack's 3 s): they must exist and carry ``iam-user-bot:managed=true``
        (the bot acts on nothing else); a user already in an open removal request is refused too.
        """
        parsed = parse_removal(values)
        if parsed.errors or parsed.mode is None:
            return parsed.errors
        names = parsed.user_names
        try:
            with ThreadPoolExecutor(max_workers=len(names)) as pool:
                tags = dict(zip(names, pool.map(self.iam.tags_of, names), strict=True))
        except IamError as error:
            return {USERS_BLOCK: f"Could not read the users from IAM ({error.code}); try again."}
        problems = [f"IAM has no user “{n}”." for n in names if tags[n] is None]
        problems += [
            f"“{n}” was not created by this bot (no {MANAGED_TAG}=true tag), so the bot leaves it alone."
            for n in names
            if tags[n] is not None and tags[n].get(MANAGED_TAG) != "true"  # type: ignore[union-attr]
        ]
        pending = self._in_open_removals(names)
        problems += [f"“{n}” is in removal request {pending[n]} already." for n in names if n in pending]
        if problems:
            return {USERS_BLOCK: " ".join(problems)[:2000]}
        owners = tuple((tags[n] or {}).get(OWNER_TAG, "") for n in names)
        return RequestForm(
            recipients=owners,
            user_names=names,
            access_types=NO_ACCESS,
            remove_mode=parsed.mode,
            justification=parsed.justification,
        )

    def _in_open_removals(self, names: tuple[str, ...]) -> dict[str, str]:
        wanted = {name.lower(): name for name in names}
        found = {}
        for request in self.store.requests_where(statuses=OPEN_STATUSES, limit=10_000):
            if request.form.is_removal:
                found.update({wanted[n.lower()]: request.id for n in request.form.user_names if n.lower() in wanted})
        return found

    def first_submission(self, view: Mapping[str, Any]) -> bool:
        """Whether this submission of ``view`` (its id and hash) is the first one seen: Slack may
        deliver a submission twice, and only the first may file (a compare-and-set in the store)."""
        return self.store.remember_event(f"view_submission:{view.get('id')}:{view.get('hash')}")

    def remember_filed(self, view: Mapping[str, Any], user_id: str, request_id: str) -> None:
        """Keep the id of the request a submission filed, for the work after the ack."""
        self.store.put_draft(f"{view.get('id') or ''}{FILED_SUFFIX}", user_id, request_id)

    def filed_request(self, view: Mapping[str, Any], user_id: str) -> OnboardingRequest | None:
        """The request the submission of ``view`` by ``user_id`` filed, once (a repeated delivery
        of the submission gets None, so the request is announced once), or None."""
        key = f"{view.get('id') or ''}{FILED_SUFFIX}"
        request_id = self.store.get_draft(key, user_id)
        if not request_id or not self.store.delete_draft(key):
            return None
        return self.store.get_request(request_id)

    def read(self, form: RequestForm) -> PermissionExpansion:
        """What the removal takes away, read from IAM for the approvers (never raises: an
        unreadable request cannot be approved)."""
        return self.inventory.read_removal(form.user_names)

    # -- running an approved removal -----------------------------------------------------------

    def start(self, request_id: str) -> None:
        """Run an approved removal on :attr:`executor` (returns at once)."""
        self.executor.submit(self._remove_logged, request_id)

    def _remove_logged(self, request_id: str) -> None:
        try:
            with logs.log_context(request_id=request_id):
                self.remove(request_id)
        except Exception:
            log.exception("removal crashed", extra={"request_id": request_id})

    def remove(self, request_id: str) -> OnboardingRequest | None:
        """approved → provisioning (with the lease), run, then provisioned or failed. None when
        another process has it or it is not an approved removal."""
        current = self.store.get_request(request_id)
        if current is None or not current.form.is_removal:
            return None
        request = self.store.move_request(
            request_id, RequestEvent.PROVISIONING_STARTED, actor=None, lease=self.leases.lease()
        )
        if request is None:
            return None
        self.changes.request_moved(request)
        return self._run(request)

    def resume_interrupted(self) -> list[str]:
        """Removals a stopped or crashed process left: ``approved`` ones started, ``provisioning``
        ones with a free lease resumed from the journal. Ids handled."""
        handled = []
        for request in self.store.requests_where(statuses=[RequestStatus.APPROVED], limit=1000):
            if request.form.is_removal and self.remove(request.id) is not None:
                handled.append(request.id)
        for request in self.store.requests_where(statuses=[RequestStatus.PROVISIONING], limit=1000):
            if not request.form.is_removal:
                continue
            if not self.store.claim_lease(request.id, self.leases.lease(), self.leases.is_gone):
                continue
            with logs.log_context(request_id=request.id):
                self.store.audit("removal_resumed", request_id=request.id, detail={"owner": self.leases.owner})
                self._run(request)
            handled.append(request.id)
        return handled

    def _run(self, request: OnboardingRequest) -> OnboardingRequest | None:
        try:
            try:
                steps = self._plan(request)
                context = RunContext(request.id, self.iam.account_id(), PasswordPolicy())
                self.provisioner.execute(request, Prepared(steps, None, context))
            except (ProvisioningFailed, IamError) as error:
                return self._finish(request, str(error))
        except LeaseLost:
            log.warning("another process took the removal over", extra={"request_id": request.id})
            return None
        except Exception:
            log.exception("removal interrupted; it resumes at the next start", extra={"request_id": request.id})
            self.store.release_lease(request.id, self.leases.owner)
            return None
        return self._finish(request, None)

    def _plan(self, request: OnboardingRequest) -> list[Step]:
        """The stored plan, or one made from what each user holds now (a user already gone needs
        nothing), stored before its first step runs."""
        saved = self.store.get_plan(request.id)
        if saved is not None:
            return saved[0]
        holdings = [h for name in request.form.user_names if (h := self.inventory.holdings(name)) is not None]
        steps = removal_plan(holdings, RemoveMode(str(request.form.remove_mode)))
        self.store.save_plan(request.id, steps, None)
        return self.store.get_plan(request.id)[0]  # type: ignore[index]  # another process may have stored first

    def _finish(self, request: OnboardingRequest, failure: str | None) -> OnboardingRequest | None:
        """Read IAM again and end the request: provisioned when nothing the mode removes is left,
        else failed naming what is left of each user (never a half-removed user unsaid)."""
        mode = RemoveMode(str(request.form.remove_mode))
        left: dict[str, list[str]] = {}
        for name in request.form.user_names:
            try:
                left[name] = what_is_left(self.inventory.holdings(name), mode)
            except IamError as error:
                left[name] = [f"unknown (IAM could not be read: {error.code})"]
        leftovers = {name: what for name, what in left.items() if what}
        if failure is None and not leftovers:
            done = self.store.move_request(
                request.id, RequestEvent.PROVISIONED, actor=None, detail={"mode": str(mode), "users": list(left)}
            )
        else:
            said = "; ".join(f"{name}: {', '.join(what)}" for name, what in leftovers.items())
            error = (failure or "the removal did not finish") + (f". Left in IAM: {said}" if said else "")
            detail = {"error": error, "left": leftovers}
            done = self.store.move_request(request.id, RequestEvent.FAILED, actor=None, detail=detail, error=error)
        if done is None:
            return None
        self.changes.request_moved(done)
        self.messenger.dm(done.requester, requester_notice(done))
        if done.status is RequestStatus.FAILED and done.decided_by and done.decided_by != done.requester:
            self.messenger.dm(
                done.decided_by, f"Removal `{done.id}` that you approved failed: {escape(done.error or '')}"
            )
        return done
