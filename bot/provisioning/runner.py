"""Executing an approved request's plan: journaled, idempotent, parallel across users, undoable.

:class:`Provisioner` turns a request into IAM users and back. It never moves a request (that is
:mod:`bot.provisioning.service`'s job) and never talks to Slack; it runs steps through
:class:`~bot.aws.steps.StepRunner`, removes users through :class:`~bot.aws.removal.Remover`,
and journals every step in the store (started before its IAM call, done or failed after).

Order of a run: the plan is built (or the stored one reloaded), quotas and name conflicts are
re-checked just before the first step, account-wide steps run first (the bot-managed policies),
then each user's steps run in order, several users at once (IAM throttles, so at most
:data:`PARALLEL_USERS`). The first permanent error stops every user's next step; the caller
then calls :meth:`Provisioner.rollback`, which deletes every user this request created.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from bot.aws.clients import IamError
from bot.aws.iam import IamGateway
from bot.aws.live import LiveIam, Wanted
from bot.aws.removal import Remover
from bot.aws.steps import RunContext, StepResult, StepRunner
from bot.domain.models import OnboardingRequest, PermissionMode
from bot.domain.plan import STEP_KINDS, Step, StepKind, bot_policy_arn, build_plan
from bot.domain.quotas import quota_problems
from bot.domain.records import JournalEntry
from bot.domain.rules import PasswordPolicy
from bot.domain.states import StepState
from bot.provisioning.lease import LeaseLost, Leases
from bot.storage.base import Store

log = logging.getLogger(__name__)

# IAM throttles account-wide; five users at once (about five calls in flight) keeps a batch of 10
# within 2x one user's time (BENCHMARKS.md) while botocore's standard retries absorb a Throttling.
PARALLEL_USERS = 5

# Test-only crash point: with IAM_USER_BOT_TEST_EXIT_AT_STEP="<index>:before" (or ":after") the
# process dies on the spot, like a killed server, the first time plan step <index> runs (before
# or after its IAM call); "sealed" dies after the credentials are sealed, before any link is
# sent; "delivered" dies after the first link is sent, before the request is marked provisioned.
# Unset, it does nothing. Tests swap ``hard_exit`` to crash in-process.
TEST_EXIT_ENV = "IAM_USER_BOT_TEST_EXIT_AT_STEP"
hard_exit: Callable[[int], None] = os._exit


def exit_for_test(point: str) -> None:
    """The test-only crash point named ``point`` (see :data:`TEST_EXIT_ENV`); off by default."""
    if os.environ.get(TEST_EXIT_ENV) == point:
        log.warning("test crash point reached: exiting at %s", point)
        hard_exit(75)


class ProvisioningFailed(Exception):
    """A step failed for good; ``message`` is IAM's error in words (never a secret)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Prepared:
    """A plan ready to run: its steps, the console sign-in URL, and the run's context."""

    steps: list[Step]
    console_url: str | None
    context: RunContext


class Provisioner:
    """Runs, resumes and rolls back plans.

    Args:
        store: the journal, the stored plan and review, the audit log.
        iam: the IAM gateway (reads; its client runs the steps).
        live: the pre-flight checks against IAM as it is now (names, entities).
        leases: this process's lease terms (renewed after every step).
        on_step_done: called with the request id after each step (progress); must be quick.
        parallel_users: how many users' steps run at once (at most; IAM throttles).
    """

    def __init__(
        self,
        store: Store,
        iam: IamGateway,
        live: LiveIam,
        leases: Leases,
        on_step_done: Callable[[str], None] = lambda _request_id: None,
        parallel_users: int = PARALLEL_USERS,
    ) -> None:
        self.store = store
        self.iam = iam
        self.live = live
        self.steps = StepRunner(iam)
        self.remover = Remover(iam)
        self.leases = leases
        self.on_step_done = on_step_done
        self.parallel_users = parallel_users

    # -- plan ----------------------------------------------------------------------------------

    def prepare(self, request: OnboardingRequest, custom_password: str | None = None) -> Prepared:
        """The stored plan of ``request``, or a new one built from what approvers saw and stored.

        ``custom_password``: the requester's chosen password, already opened from its seal
        (None: each login profile gets a generated one). It stays in memory only.

        Before the first step ever runs, quotas (``get_account_summary``) and name conflicts
        (case-insensitive) are checked again: time has passed since validation.

        Raises:
            ProvisioningFailed: a quota would be exceeded or a user name is taken.
            IamError: a read was refused (nothing has been created then).
        """
        # Only a login profile needs the password policy (its password and IAMUserChangePassword).
        policy = self.iam.password_policy() if request.form.console else PasswordPolicy()
        context = RunContext(request.id, self.iam.account_id(), policy, custom_password)
        saved = self.store.get_plan(request.id)
        if saved is not None:
            steps, console_url = saved
        else:
            form = request.form
            console_url = self.iam.console_url() if form.console else None
            # Build from what the approvers saw (the stored review), so a change to the source user
            # after the approval check cannot slip in; re-read only when no review was stored.
            review = self.store.get_review(request.id)
            expansion = review.expansion if review is not None else None
            copy_source = expansion.copy_source if expansion is not None else None
            if copy_source is None and form.permission_mode is PermissionMode.COPY_USER and form.copy_from_user:
                copy_source = self.iam.user_permissions(form.copy_from_user)
            digests = {p.name: p.sha256 for p in expansion.inline_policies} if expansion is not None else None
            steps = build_plan(
                request,
                approver=request.decided_by or "unknown",
                account_id=context.account_id,
                copy_source=copy_source,
                users_may_change_password=policy.allow_users_to_change_password,
                inline_digests=digests,
            )
            self.store.save_plan(request.id, steps, console_url)
        if not self.store.journal(request.id):
            self._preflight(request, steps, context)
        return Prepared(steps, console_url, context)

    def _preflight(self, request: OnboardingRequest, steps: list[Step], context: RunContext) -> None:
        """Before the first step: no user name is taken (in any case), everything the plan uses
        still exists, and the quotas hold. A few calls per user and per entity named
        (:class:`~bot.aws.live.LiveIam`), none that grows with the account."""
        taken = self.live.users_in_the_way(request.form.user_names, request.id)
        if taken:
            raise ProvisioningFailed(
                "CreateUser: EntityAlreadyExists: IAM already has a user named "
                + ", ".join(taken)
                + " (IAM user names ignore case); nothing was created"
            )
        if gone := self._gone(steps, context.account_id):
            raise ProvisioningFailed(
                "IAM no longer has " + ", ".join(gone) + "; nothing was created. File the request again with what "
                "exists now"
            )
        summary = self.iam.account_summary()
        new_policies = sum(
            1
            for s in steps
            if s.kind is StepKind.ENSURE_BOT_POLICY
            and not self.iam.customer_policy_exists(bot_policy_arn(context.account_id, str(s.target)))
        )
        first_user = next((s.user_name for s in steps if s.user_name), None)
        inline_chars = sum(
            self.iam.inline_policy_size(str(s.source_user), str(s.target))
            for s in steps
            if s.kind is StepKind.PUT_USER_POLICY and s.user_name == first_user
        )
        problems = quota_problems(steps, summary, new_bot_policies=new_policies, inline_policy_chars=inline_chars)
        if problems:
            raise ProvisioningFailed("IAM quota: " + "; ".join(problems) + "; nothing was created")

    def _gone(self, steps: list[Step], account_id: str) -> list[str]:
        """What the plan needs that IAM does not hold now: groups, managed policies (the
        bot-managed ones aside: the plan creates them), the boundary, the "copy from" user."""
        made = {
            s.policy_arn or bot_policy_arn(account_id, str(s.target))
            for s in steps
            if s.kind is StepKind.ENSURE_BOT_POLICY
        }
        groups = tuple(str(s.target) for s in steps if s.kind is StepKind.ADD_USER_TO_GROUP)
        arns = [str(s.target) for s in steps if s.kind is StepKind.ATTACH_USER_POLICY]
        arns += [
            str(s.permissions_boundary_arn)
            for s in steps
            if s.kind is StepKind.CREATE_USER and s.permissions_boundary_arn
        ]
        arns = [arn for arn in dict.fromkeys(arns) if arn not in made]
        source = next((s.source_user for s in steps if s.kind is StepKind.PUT_USER_POLICY and s.source_user), None)
        found = self.live.confirm(Wanted(source_user=source, groups=groups, policy_arns=tuple(arns)))
        gone = [f"group {name}" for name in found.missing_groups]
        gone += [f"managed policy {arn}" for arn in arns if arn not in found.policies]
        if source and found.source_user is None:
            gone.append(f"user {source} (to copy inline policies from)")
        return gone

    # -- execution -----------------------------------------------------------------------------

    def execute(self, request: OnboardingRequest, prepared: Prepared) -> dict[str, dict[str, str]]:
        """Run every step not yet done; returns each user's secrets (password, access key).

        Steps the journal shows as done are skipped, except those that make secrets
        (:attr:`bot.domain.plan.KindRules.makes_secret`): their secrets died with the process that
        made them, so they run again (a new password; the old key deleted, a new one made).

        Raises:
            ProvisioningFailed: a step failed for good, now or in an earlier run (journal).
            LeaseLost: another process took the request over.
        """
        entries = self.store.journal(request.id)
        failed = [e for e in entries.values() if e.state is StepState.FAILED]
        if failed:
            raise ProvisioningFailed(str(failed[0].detail.get("message") or failed[0].detail.get("error")))
        secrets: dict[str, dict[str, str]] = {name: {} for name in request.form.user_names}
        by_user: dict[str, list[tuple[int, Step]]] = defaultdict(list)
        for index, step in enumerate(prepared.steps):
            if STEP_KINDS[step.kind].account_wide:
                self._step(request.id, index, step, entries.get(index), prepared.context)
            else:
                by_user[step.user_name].append((index, step))
        stop = threading.Event()
        workers = max(1, min(self.parallel_users, len(by_user)))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"steps-{request.id}") as pool:
            futures = [
                pool.submit(self._user_steps, request.id, steps, entries, prepared.context, stop, secrets[name])
                for name, steps in by_user.items()
            ]
        errors = [f.exception() for f in futures if f.exception() is not None]
        for error in errors:  # a crash (BaseException) or a lost lease wins over a failed step
            if not isinstance(error, Exception) or isinstance(error, LeaseLost):
                raise error
        if errors:
            raise errors[0]  # type: ignore[misc]
        return secrets

    def _user_steps(
        self,
        request_id: str,
        steps: list[tuple[int, Step]],
        entries: dict[int, JournalEntry],
        context: RunContext,
        stop: threading.Event,
        out: dict[str, str],
    ) -> None:
        for index, step in steps:
            if stop.is_set():
                return
            try:
                out.update(self._step(request_id, index, step, entries.get(index), context).secrets)
            except BaseException:
                stop.set()  # the users of one request succeed or fail together
                raise

    def _step(
        self, request_id: str, index: int, step: Step, previous: JournalEntry | None, context: RunContext
    ) -> StepResult:
        if previous is not None and previous.state is StepState.DONE and not STEP_KINDS[step.kind].makes_secret:
            return StepResult()
        first = previous is None
        if not self.store.start_step(request_id, index, step.label):
            raise ProvisioningFailed(f"{step.label}: the journal refuses to run a failed step again")
        if first:
            exit_for_test(f"{index}:before")
        try:
            result = self.steps.run_step(step, context, rerun=not first)
        except IamError as error:
            self.store.fail_step(request_id, index, step.label, {"error": error.code, "message": str(error)})
            raise ProvisioningFailed(str(error)) from None
        except Exception as error:
            # Not an answer from IAM (network, a bug): the call's outcome is unknown, but the
            # steps are idempotent and rollback checks ownership, so failing the step is safe.
            message = f"{step.kind.value}: {type(error).__name__}"
            self.store.fail_step(request_id, index, step.label, {"error": type(error).__name__, "message": message})
            raise ProvisioningFailed(message) from error
        if first:
            exit_for_test(f"{index}:after")
        self.store.finish_step(request_id, index, step.label, result.record)
        if not self.store.renew_lease(request_id, self.leases.lease()):
            raise LeaseLost(request_id)
        self.on_step_done(request_id)
        return result

    # -- rollback ------------------------------------------------------------------------------

    def rollback(self, request: OnboardingRequest, steps: list[Step] | None) -> list[str]:
        """Delete every user this request created and the bot policies it created unused.

        Only users the journal shows a ``create_user`` attempt for, and only if they carry this
        request's id tag. Runs in the order IAM requires (:class:`~bot.aws.removal.Remover`).
        Each outcome is audited.

        Returns:
            Sentences naming what could not be removed (empty when everything is gone).
        """
        if steps is None:
            saved = self.store.get_plan(request.id)
            steps = saved[0] if saved else []
        entries = self.store.journal(request.id)
        problems: list[str] = []
        for index, step in reversed(list(enumerate(steps))):
            entry = entries.get(index)
            if entry is None or step.kind is not StepKind.CREATE_USER:
                continue
            try:
                deleted = self.remover.rollback_user(
                    step.user_name, request.id, expect_exists=entry.state is StepState.DONE
                )
            except IamError as error:
                problems.append(f"{step.user_name} could not be deleted ({error})")
                detail = {"user_name": step.user_name, "error": str(error)}
                self.store.audit("rollback_failed", request_id=request.id, detail=detail)
                continue
            detail = {"user_name": step.user_name, "deleted": deleted}
            self.store.audit("rolled_back", request_id=request.id, detail=detail)
        for index, step in enumerate(steps):
            if step.kind is StepKind.ENSURE_BOT_POLICY and entries.get(index) is not None:
                arn = bot_policy_arn(self.iam.account_id(), str(step.target))
                try:
                    deleted = self.remover.delete_bot_policy_if_unused(arn, request.id)
                except IamError as error:
                    problems.append(f"policy {arn} could not be deleted ({error})")
                    continue
                self.store.audit("rolled_back", request_id=request.id, detail={"policy_arn": arn, "deleted": deleted})
        return problems
