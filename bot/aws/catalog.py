"""An in-memory copy of what IAM holds, refreshed by a periodic job, and searched by options menus.

Slack gives options menus and view submissions 3 s; a full IAM scan can take longer on a big
account (1,300+ AWS managed policies, 100 a page), so requests read this snapshot and never
scan IAM themselves. Searches are linear over pre-lower-cased names: well under a millisecond
for a few thousand entries (``benchmarks/options_bench.py`` measures it).
"""

from __future__ import annotations

import gc
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from bot.domain.limits import OPTION_VALUE_MAX, OPTIONS_MAX
from bot.domain.quotas import AccountQuotas
from bot.domain.rules import PasswordPolicy

log = logging.getLogger(__name__)

POLICY_KEY_PREFIX = "policy-sha256:"


@dataclass(frozen=True)
class ManagedPolicy:
    """A managed policy as ``list_policies`` returns it: ``name``, ``arn``, and whether AWS owns it.

    AWS managed policies have ``aws`` as the account field of their ARN
    (``arn:aws:iam::aws:policy/…``); customer managed ones carry the account id.
    """

    name: str
    arn: str
    aws_managed: bool

    @classmethod
    def from_api(cls, item: dict[str, Any]) -> ManagedPolicy:
        arn = str(item["Arn"])
        return cls(name=str(item["PolicyName"]), arn=arn, aws_managed=arn.split(":")[4] == "aws")


@dataclass(frozen=True)
class CatalogSnapshot:
    """What the options menus read: names as IAM returns them, plus the account's password
    policy, per-user quotas and id (each read once per refresh, never per request).

    ``loaded_at`` (epoch seconds) is when the whole of it was read; ``users_at``, ``groups_at``
    and ``policies_at`` when its users, groups and customer managed policies were last read
    (a search that finds little reads one kind again: :mod:`bot.aws.typeahead`).
    """

    user_names: tuple[str, ...]
    group_names: tuple[str, ...]
    loaded_at: float
    policies: tuple[ManagedPolicy, ...] = ()
    password_policy: PasswordPolicy = field(default_factory=PasswordPolicy)
    quotas: AccountQuotas = field(default_factory=AccountQuotas)
    account_id: str | None = None
    users_at: float = 0.0
    groups_at: float = 0.0
    policies_at: float = 0.0

    def read_at(self, kind: str) -> float:
        """When ``kind`` (``users``, ``groups`` or ``policies``) was last read from IAM."""
        return max(self.loaded_at, float(getattr(self, f"{kind}_at")))

    def with_users(self, names: Iterable[str], at: float) -> CatalogSnapshot:
        """A copy whose users are ``names``, read at ``at``."""
        return replace(self, user_names=tuple(names), users_at=at)

    def with_groups(self, names: Iterable[str], at: float) -> CatalogSnapshot:
        """A copy whose groups are ``names``, read at ``at``."""
        return replace(self, group_names=tuple(names), groups_at=at)

    def with_customer_policies(self, policies: Iterable[ManagedPolicy], at: float) -> CatalogSnapshot:
        """A copy whose customer managed policies are ``policies`` (the AWS managed ones kept), read at ``at``."""
        kept = tuple(p for p in self.policies if p.aws_managed)
        return replace(self, policies=kept + tuple(p for p in policies if not p.aws_managed), policies_at=at)

    def with_user(self, name: str) -> CatalogSnapshot:
        """A copy that also has user ``name`` (found by an exact lookup)."""
        known = {n.lower() for n in self.user_names}
        return self if name.lower() in known else replace(self, user_names=(*self.user_names, name))

    def with_group(self, name: str) -> CatalogSnapshot:
        """A copy that also has group ``name``."""
        return self if name in self.group_names else replace(self, group_names=(*self.group_names, name))

    def with_policy(self, policy: ManagedPolicy) -> CatalogSnapshot:
        """A copy that also has ``policy``."""
        if any(p.arn == policy.arn for p in self.policies):
            return self
        return replace(self, policies=(*self.policies, policy))


EMPTY = CatalogSnapshot(user_names=(), group_names=(), loaded_at=0.0)


def policy_value(arn: str) -> str:
    """The option value of a policy: its ARN when it fits Slack's 150 characters, else a short
    stable key (``policy-sha256:`` + 40 hex digits of the ARN's SHA-256) that
    :meth:`Catalog.policy_for_value` maps back. ARNs with long paths exceed 150 characters."""
    if len(arn) <= OPTION_VALUE_MAX:
        return arn
    return POLICY_KEY_PREFIX + hashlib.sha256(arn.encode("utf-8")).hexdigest()[:40]


def rank(names: Iterable[tuple[str, str, object]], query: str) -> list[object]:
    """Entries whose lower-cased name contains ``query`` (lower-cased, trimmed): names starting
    with it first, then the others, each part in the input's (alphabetical) order.

    Args:
        names: ``(lower-cased name, name, entry)`` triples, already sorted by name.
    """
    needle = query.strip().lower()
    if not needle:
        return [entry for _, _, entry in names]
    starts: list[object] = []
    contains: list[object] = []
    for lowered, _, entry in names:
        position = lowered.find(needle)
        if position == 0:
            starts.append(entry)
        elif position > 0:
            contains.append(entry)
    return starts + contains


@dataclass(frozen=True)
class PolicyMatches:
    """Policies matching a search, split as Slack's option groups show them."""

    customer_managed: tuple[ManagedPolicy, ...]
    aws_managed: tuple[ManagedPolicy, ...]


class _Index:
    """A snapshot prepared for search: sorted ``(lower, name, entry)`` lists and lookup maps."""

    def __init__(self, snapshot: CatalogSnapshot) -> None:
        self.users = [(n.lower(), n, n) for n in sorted(snapshot.user_names, key=str.lower)]
        self.groups = [(n.lower(), n, n) for n in sorted(snapshot.group_names, key=str.lower)]
        ordered = sorted(snapshot.policies, key=lambda p: (p.name.lower(), p.arn))
        self.customer = [(p.name.lower(), p.name, p) for p in ordered if not p.aws_managed]
        self.aws = [(p.name.lower(), p.name, p) for p in ordered if p.aws_managed]
        self.group_names = frozenset(snapshot.group_names)
        self.users_lower = {n.lower(): n for n in snapshot.user_names}
        self.policy_by_value = {policy_value(p.arn): p for p in snapshot.policies}
        self.policy_by_arn = {p.arn: p for p in snapshot.policies}


class Catalog:
    """Holds the latest :class:`CatalogSnapshot`; :meth:`refresh` (a periodic job) replaces it.

    Readers never block on a refresh: a new snapshot and its search index replace the old
    ones in one reference swap.

    Args:
        loader: returns a fresh snapshot (``IamGateway.load_catalog``); may be slow.
    """

    def __init__(self, loader: Callable[[], CatalogSnapshot]) -> None:
        self._loader = loader
        self._snapshot = EMPTY
        self._index = _Index(EMPTY)
        self._added_users: dict[str, float] = {}
        self._lock = threading.Lock()
        self._edit_lock = threading.Lock()
        self._loaded = threading.Event()

    @property
    def snapshot(self) -> CatalogSnapshot:
        """The latest snapshot (an empty one until the first load)."""
        return self._snapshot

    @property
    def loaded(self) -> bool:
        """Whether a first snapshot has arrived (before that, menus offer nothing)."""
        return self._loaded.is_set()

    def set_snapshot(self, snapshot: CatalogSnapshot) -> None:
        """Install ``snapshot`` (what :meth:`refresh` does with the loader's answer)."""
        index = _Index(snapshot)
        with self._lock:
            self._snapshot, self._index = snapshot, index
            # A user the bot made stays counted until a read of the users began after it.
            read_at = snapshot.read_at("users")
            self._added_users = {name: at for name, at in self._added_users.items() if at >= read_at}
        self._loaded.set()

    def change(self, edit: Callable[[CatalogSnapshot], CatalogSnapshot]) -> CatalogSnapshot:
        """Install ``edit(current snapshot)`` (one kind read again, an entity found); returns it.

        Two edits never lose each other's change: each applies to the snapshot the other made.
        """
        with self._edit_lock:
            edited = edit(self._snapshot)
            if edited is not self._snapshot:
                self.set_snapshot(edited)
            return edited

    def load(self) -> CatalogSnapshot:
        """A new snapshot from the loader (slow: the whole account), not installed.

        Raises:
            Exception: whatever the loader raises (the caller keeps the current copy).
        """
        return self._loader()

    def refresh(self) -> None:
        """Load a new snapshot now (in the caller's thread). Errors are logged, the old copy kept."""
        try:
            snapshot = self._loader()
        except Exception as error:
            log.warning("catalog refresh failed, keeping the previous copy: %s", error)
            return
        self.install(snapshot)

    def install(self, snapshot: CatalogSnapshot) -> None:
        """:meth:`set_snapshot`, then one full garbage collection with the new copy frozen."""
        self.set_snapshot(snapshot)
        # Thousands of long-lived policy objects made each full garbage collection pause every
        # request thread for tens of ms (p99 of acks). Frozen objects are skipped by the cyclic
        # collector; unfreezing first lets this one collection per refresh reclaim whatever
        # cyclic garbage the previous freeze kept (the old snapshot goes by reference counting).
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log.info(
            "catalog loaded: %d users, %d groups, %d managed policies",
            len(snapshot.user_names),
            len(snapshot.group_names),
            len(snapshot.policies),
        )

    # -- account facts ---------------------------------------------------------------------------

    @property
    def password_policy(self) -> PasswordPolicy:
        """The account password policy as of the last refresh (AWS's default when none is set)."""
        return self._snapshot.password_policy

    @property
    def quotas(self) -> AccountQuotas:
        """Per-user quotas from ``get_account_summary`` as of the last refresh."""
        return self._snapshot.quotas

    @property
    def account_id(self) -> str | None:
        """The AWS account id (``sts:GetCallerIdentity``), or None if it could not be read."""
        return self._snapshot.account_id

    # -- users -----------------------------------------------------------------------------------

    def note_user_created(self, user_name: str) -> None:
        """Count a user the bot just made as existing before the next refresh sees it."""
        with self._lock:
            self._added_users[user_name] = time.time()

    def user_names_lower(self) -> set[str]:
        """Existing IAM user names, lower-cased (IAM user names ignore case)."""
        with self._lock:
            names = (*self._snapshot.user_names, *self._added_users)
        return {name.lower() for name in names}

    def user_named(self, name: str) -> str | None:
        """The existing user's name as IAM spells it, matching ``name`` ignoring case, or None."""
        return self._index.users_lower.get(name.lower())

    def search_users(self, query: str, limit: int = OPTIONS_MAX) -> list[str]:
        """User names containing ``query`` ignoring case (prefix matches first), at most ``limit``."""
        return rank(self._index.users, query)[:limit]  # type: ignore[return-value]

    # -- groups ----------------------------------------------------------------------------------

    def search_groups(self, query: str, limit: int = OPTIONS_MAX) -> list[str]:
        """Group names containing ``query`` ignoring case (prefix matches first), at most ``limit``."""
        return rank(self._index.groups, query)[:limit]  # type: ignore[return-value]

    # -- managed policies ------------------------------------------------------------------------

    def search_policies(self, query: str, limit: int = OPTIONS_MAX) -> PolicyMatches:
        """Managed policies whose name contains ``query`` ignoring case, at most ``limit`` in all.

        When both kinds match, each kind gets at least half of ``limit`` (or all it has), so a
        flood of AWS managed matches never hides the account's own policies, and vice versa.
        """
        customer = rank(self._index.customer, query)
        aws = rank(self._index.aws, query)
        half = limit // 2
        customer_n = min(len(customer), max(half, limit - len(aws)))
        aws_n = min(len(aws), limit - customer_n)
        return PolicyMatches(
            customer_managed=tuple(customer[:customer_n]),  # type: ignore[arg-type]
            aws_managed=tuple(aws[:aws_n]),  # type: ignore[arg-type]
        )

    def policy_for_value(self, value: str) -> ManagedPolicy | None:
        """The policy an option value (:func:`policy_value`) stands for, or None if unknown."""
        return self._index.policy_by_value.get(value)

    def policy_for_arn(self, arn: str) -> ManagedPolicy | None:
        """The managed policy with this ARN, or None if IAM did not have it at the last refresh."""
        return self._index.policy_by_arn.get(arn)
