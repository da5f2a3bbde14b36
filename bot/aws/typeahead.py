"""Options menus answered from the catalog in memory, and kept fresh enough to offer what was
just created in IAM.

Slack gives an options request 3 s and at most 100 options; the catalog answers in well under a
millisecond. Three things keep it close to IAM, none of them a scan inside a request:

- **The periodic load** (``CATALOG_REFRESH_SECONDS``, job ``catalog_refresh``): the whole
  account, read by one worker of the server and shared with the others
  (:class:`~bot.aws.catalog_share.CatalogShare`; job ``catalog_sync`` picks up what another
  worker read, every :data:`SYNC_SECONDS`).
- **A search that finds little** (fewer than :data:`FEW_HITS`) reads that kind again in the
  background (``ListUsers``, ``ListGroups`` or the customer managed policies), at most once
  per :data:`MISS_REFRESH_SECONDS` per kind and server; the next keystroke sees the result.
- **An exact name** not in memory, typed in such a search, is asked of IAM at once (one
  ``GetUser`` or ``GetGroup``, two ``GetPolicy``), waiting at most :data:`EXACT_WAIT_SECONDS`;
  what it finds is offered now. A name IAM lacks is not asked again for :data:`NOT_FOUND_SECONDS`.

So something created in IAM is offered within about 10 s (at once when its whole name is
typed), while a search with many hits costs IAM nothing.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from cachetools import TTLCache

from bot.aws.catalog import Catalog, CatalogSnapshot, ManagedPolicy, PolicyMatches
from bot.aws.catalog_share import CatalogShare
from bot.aws.iam import IamGateway
from bot.aws.live import LiveIam
from bot.domain.limits import OPTIONS_MAX

log = logging.getLogger(__name__)

FEW_HITS = 10  # a search with fewer hits may be missing something new: read that kind again
MISS_REFRESH_SECONDS = 5.0  # at most one such read per kind and server in this time
EXACT_WAIT_SECONDS = 1.0  # an exact-name lookup's share of Slack's 3 s
NOT_FOUND_SECONDS = 5.0  # an exact name IAM did not have is not asked again for this long
SYNC_SECONDS = 2.0  # how often a worker looks for a catalog another worker read
# IAM's name pattern for users (1-64), groups (1-128) and policies (1-128): only such a query
# can be an exact name worth a lookup.
IAM_NAME = re.compile(r"[\w+=,.@-]{1,128}\Z", re.ASCII)


class Typeahead:
    """The options menus' searches, and the catalog's periodic and on-demand reads of IAM.

    Args:
        catalog: the in-memory catalog the menus search.
        gateway: reads the lists (``ListUsers``, ``ListGroups``, ``ListPolicies``); None: the
            menus answer from memory only (no reads after a search).
        live: the exact-name lookups (``GetUser``, ``GetGroup``, ``GetPolicy``); None: none.
        share: the server's shared copy, or None for a catalog of this process alone.
        interval_seconds: ``CATALOG_REFRESH_SECONDS``: how old the shared copy may be before a
            worker's periodic load reads IAM again (half of it: the workers' timers differ).
        clock: epoch seconds (tests move it).
    """

    def __init__(
        self,
        catalog: Catalog,
        gateway: IamGateway | None,
        live: LiveIam | None,
        share: CatalogShare | None,
        interval_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.catalog = catalog
        self.gateway = gateway
        self.live = live
        self.share = share
        self.interval_seconds = interval_seconds
        self.clock = clock
        self._background = ThreadPoolExecutor(max_workers=1, thread_name_prefix="catalog-refresh")
        self._lookups = ThreadPoolExecutor(max_workers=4, thread_name_prefix="catalog-lookup")
        self._guard = threading.Lock()
        self._asked: dict[str, float] = {}  # kind → when a miss last asked for a read of it
        self._not_found: TTLCache[tuple[str, str], bool] = TTLCache(maxsize=4096, ttl=NOT_FOUND_SECONDS)

    # -- the menus --------------------------------------------------------------------------------

    def users(self, query: str) -> list[str]:
        """User names containing ``query`` (:meth:`Catalog.search_users`), the exact name first."""
        return self._names("users", self.catalog.search_users(query), query)

    def groups(self, query: str) -> list[str]:
        """Group names containing ``query``, the exact name first."""
        return self._names("groups", self.catalog.search_groups(query), query)

    def _names(self, kind: str, hits: list[str], query: str) -> list[str]:
        searched = self._after_search(kind, query, [h.lower() for h in hits])
        if searched and (found := self._exact(kind, query)) is not None:
            hits = [found, *(h for h in hits if h != found)][:OPTIONS_MAX]
        return hits

    def policies(self, query: str) -> PolicyMatches:
        """Managed policies whose name contains ``query``, split by kind; an exact customer or
        AWS managed name (at path ``/``) not in memory is asked of IAM."""
        matches = self.catalog.search_policies(query)
        names = [p.name.lower() for p in (*matches.customer_managed, *matches.aws_managed)]
        if self._after_search("policies", query, names) and self._exact("policies", query) is not None:
            matches = self.catalog.search_policies(query)
        return matches

    # -- reading again after a search that found little --------------------------------------------

    def _after_search(self, kind: str, query: str, hits_lower: list[str]) -> bool:
        """Whether the search may have missed something new: it found little, and not the very
        name typed. If so, ``kind`` is read again in the background (unless that was asked less
        than :data:`MISS_REFRESH_SECONDS` ago)."""
        needle = query.strip().lower()
        if self.gateway is None or not needle or len(hits_lower) >= FEW_HITS or needle in hits_lower:
            return False
        now = time.monotonic()
        with self._guard:
            if now - self._asked.get(kind, -MISS_REFRESH_SECONDS) < MISS_REFRESH_SECONDS:
                return True
            self._asked[kind] = now
        self._background.submit(self.refresh_kind, kind, self.clock())
        return True

    def refresh_kind(self, kind: str, missed_at: float) -> None:
        """Read one kind from IAM again, unless a read of it began after ``missed_at`` (another
        worker's, found in the shared copy). Errors are logged; the old copy stays."""
        try:
            with self._locked():
                if (shared := self._read_share(only_changed=True)) is not None:
                    self.catalog.set_snapshot(shared)
                if self.catalog.snapshot.read_at(kind) >= missed_at:
                    return
                snapshot = self.catalog.change(self._reader(kind, self.clock()))
                self._write_share(snapshot)
            log.info("catalog: %s read again after a search found little", kind)
        except Exception as error:
            log.warning("catalog: reading %s again failed (%s); the previous copy stays", kind, error)

    # -- the shared copy: best effort (a folder it cannot use costs each worker its own reads) ------

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock: contextlib.AbstractContextManager[None] = contextlib.nullcontext()
        if self.share is not None:
            try:
                lock = self.share.locked()
                lock.__enter__()
            except OSError as error:
                log.warning("catalog: cannot lock %s (%s); this worker reads IAM alone", self.share.lock_path, error)
                lock = contextlib.nullcontext()
        try:
            yield
        finally:
            lock.__exit__(None, None, None)

    def _read_share(self, *, only_changed: bool = False) -> CatalogSnapshot | None:
        if self.share is None:
            return None
        try:
            return self.share.read_if_changed() if only_changed else self.share.read()
        except OSError as error:
            log.warning("catalog: cannot read %s (%s)", self.share.path, error)
            return None

    def _write_share(self, snapshot: CatalogSnapshot) -> None:
        if self.share is None:
            return
        try:
            self.share.write(snapshot)
        except OSError as error:
            log.warning("catalog: cannot write %s (%s); the other workers read IAM themselves", self.share.path, error)

    def _reader(self, kind: str, at: float) -> Callable[[CatalogSnapshot], CatalogSnapshot]:
        assert self.gateway is not None
        if kind == "users":
            names = self.gateway.user_names()
            return lambda snapshot: snapshot.with_users(names, at)
        if kind == "groups":
            groups = self.gateway.group_names()
            return lambda snapshot: snapshot.with_groups(groups, at)
        policies = self.gateway.managed_policies("Local")
        return lambda snapshot: snapshot.with_customer_policies(policies, at)

    # -- an exact name, asked of IAM at once --------------------------------------------------------

    def _exact(self, kind: str, query: str) -> str | None:
        """The entity named exactly ``query`` (not in memory: see :meth:`_after_search`) when IAM
        has it (then added to the catalog); None otherwise, or when IAM did not answer within
        :data:`EXACT_WAIT_SECONDS`."""
        name = query.strip()
        if self.live is None or not IAM_NAME.match(name):
            return None
        if (kind, name) in self._not_found:
            return None
        future = self._lookups.submit(self._lookup, kind, name)
        try:
            found = future.result(timeout=EXACT_WAIT_SECONDS)
        except FutureTimeout:
            return None  # it finishes in the background and lands in the catalog for the next keystroke
        except Exception as error:
            log.warning("catalog: looking up %s %s failed (%s)", kind, name, error)
            return None
        return found

    def _lookup(self, kind: str, name: str) -> str | None:
        """One exact lookup; what it finds goes into the catalog (this process)."""
        assert self.live is not None
        found: Any = None
        if kind == "users" and (found := self.live.user(name)):
            self.catalog.change(lambda snapshot: snapshot.with_user(found))
        elif kind == "groups" and self.live.group_exists(name):
            found = name
            self.catalog.change(lambda snapshot: snapshot.with_group(name))
        elif kind == "policies":
            found = self._policy_named(name)
        if found is None:
            self._not_found[(kind, name)] = True
            return None
        return str(found.name if isinstance(found, ManagedPolicy) else found)

    def _policy_named(self, name: str) -> ManagedPolicy | None:
        assert self.live is not None
        account = self.catalog.account_id
        arns = [f"arn:aws:iam::aws:policy/{name}", *([f"arn:aws:iam::{account}:policy/{name}"] if account else [])]
        for arn in arns:
            if (policy := self.live.policy(arn)) is not None:
                self.catalog.change(lambda snapshot, p=policy: snapshot.with_policy(p))
                return policy
        return None

    # -- the periodic jobs ---------------------------------------------------------------------------

    def refresh(self) -> None:
        """The periodic load (job ``catalog_refresh``): the whole account, read by one worker of
        the server; a worker that finds a copy newer than half the interval takes that instead."""
        try:
            with self._locked():
                shared = self._read_share()
                if shared is not None and self.clock() - shared.loaded_at < self.interval_seconds / 2:
                    self.catalog.install(shared)
                    return
                snapshot = self.catalog.load()
                self._write_share(snapshot)
            self.catalog.install(snapshot)
        except Exception as error:
            log.warning("catalog refresh failed, keeping the previous copy: %s", error)

    def sync(self) -> None:
        """Take what another worker of this server read (job ``catalog_sync``): one ``stat``
        when nothing changed."""
        if (shared := self._read_share(only_changed=True)) is None:
            return
        if shared.loaded_at != self.catalog.snapshot.loaded_at:
            self.catalog.install(shared)  # a whole new load: one full collection, frozen
        else:
            self.catalog.set_snapshot(shared)

    def shutdown(self) -> None:
        """Stop the background threads."""
        self._background.shutdown(wait=False)
        self._lookups.shutdown(wait=False)
