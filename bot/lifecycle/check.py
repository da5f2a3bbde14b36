"""The periodic lifecycle check (``LIFECYCLE_CHECK_INTERVAL_SECONDS``, a job of :mod:`bot.ops.jobs`).

One pass reads every bot-made user from IAM (``ListUsers`` under ``/iam-user-bot/``, then per user
its tags, keys with their last use and its login profile: a handful of calls each, never a store
scan), then:

1. each active key: the owner's rotation notice once it is ``KEY_MAX_AGE_DAYS -
   KEY_ROTATION_NOTICE_DAYS`` days old; deactivation past ``KEY_MAX_AGE_DAYS`` with
   ``KEY_ROTATION_ENFORCE=true`` (:mod:`bot.lifecycle.rotation`);
2. passwords and keys unused ``UNUSED_CREDENTIALS_DAYS`` to the approvers in one digest
   (:mod:`bot.lifecycle.unused`);
3. every owner asked about through ``users.info``: a deactivated account's users are disabled
   (:mod:`bot.lifecycle.owners`), for the ``user_change`` event that never came;
4. rotations a dead process left are recovered or finished.

Every effect is a compare-and-set in the store, so several processes may run it at once and each
notice still goes out once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from bot.aws.clients import IamError
from bot.aws.inventory import Inventory
from bot.aws.keys import KeyKeeper
from bot.domain.lifecycle import LifecyclePolicy, ManagedUser, UnusedCredential, age_days, unused_credentials
from bot.lifecycle.owners import Owners
from bot.lifecycle.rotation import Rotations
from bot.lifecycle.unused import UnusedCredentials
from bot.slack.messenger import Messenger
from bot.storage.base import Store

log = logging.getLogger(__name__)


@dataclass
class CheckReport:
    """What one pass did: users read, notices sent, keys deactivated, credentials reported unused,
    owners found gone, rotations recovered; users IAM would not let it read."""

    users: int = 0
    notices: list[str] = field(default_factory=list)
    deactivated: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    owners_left: list[str] = field(default_factory=list)
    recovered: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


@dataclass
class LifecycleCheck:
    """One pass of the lifecycle check (:meth:`run`)."""

    store: Store
    inventory: Inventory
    keys: KeyKeeper
    messenger: Messenger
    rotations: Rotations
    unused: UnusedCredentials
    owners: Owners
    policy: LifecyclePolicy

    def run(self) -> CheckReport:
        """Check every bot-made user once (see the module docstring). IAM refusing one user's reads
        skips that user (logged); refusing the listing skips the pass (the next one tries again).

        Raises:
            IamError: ``ListUsers`` was refused.
        """
        report = CheckReport()
        now = self.store.clock()
        users = self.inventory.bot_users()
        report.users = len(users)
        active_keys: set[str] = set()
        unused: list[UnusedCredential] = []
        for user in users:
            try:
                unused += self._check_user(user, active_keys, report)
            except IamError as error:
                report.unreadable.append(user.user_name)
                log.warning("lifecycle check skipped an IAM user: %s", error.code)
        self.rotations.resolve_gone(active_keys)
        report.unused = [item.subject for item in self.unused.report(unused)]
        report.owners_left = self._check_owners(users)
        report.recovered = self.rotations.recover(now)
        if report.notices or report.deactivated or report.unused or report.owners_left or report.recovered:
            log.info(
                "lifecycle check: %d users, %d notices, %d keys deactivated, %d unused, %d owners left",
                report.users,
                len(report.notices),
                len(report.deactivated),
                len(report.unused),
                len(report.owners_left),
            )
        return report

    def _check_user(self, user: ManagedUser, active_keys: set[str], report: CheckReport) -> list[UnusedCredential]:
        now = self.store.clock()
        keys = self.keys.list_keys(user.user_name, last_used=True)
        for key in keys:
            if not key.active:
                continue
            age = age_days(key.created, now)
            if self.policy.enforce and self.policy.past_max_age(age):
                self.rotations.enforce(user, key, age)
                report.deactivated.append(key.key_id)
                continue
            active_keys.add(key.key_id)
            if self.policy.notice_due(age) and self.rotations.notify(user, key, age):
                report.notices.append(key.key_id)
        password_created = self.inventory.password_created(user.user_name)
        return unused_credentials(user, keys, password_created, self.policy, now)

    def _check_owners(self, users: list[ManagedUser]) -> list[str]:
        """Ask Slack about every owner (``users.info``, fresh); disable the users of those whose
        account is deactivated (``deleted: true``). An owner Slack cannot tell about is left be."""
        by_owner: dict[str, list[str]] = {}
        for user in users:
            if user.owner:
                by_owner.setdefault(user.owner, []).append(user.user_name)
        gone = []
        for owner, names in by_owner.items():
            info = self.messenger.user_info(owner, fresh=True) or {}
            if info.get("deleted") is True:
                self.owners.departed(owner, source="check", users=names)
                gone.append(owner)
        return gone
