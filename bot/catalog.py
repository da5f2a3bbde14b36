"""An in-memory copy of what IAM holds, refreshed in the background.

Slack gives options menus and view submissions 3 s; a full IAM scan can take longer on a big
account, so requests read this snapshot and never scan IAM themselves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.iam import CatalogSnapshot

log = logging.getLogger(__name__)

EMPTY = CatalogSnapshot(user_names=(), group_names=(), loaded_at=0.0)


class Catalog:
    """Holds the latest :class:`CatalogSnapshot` and refreshes it every ``interval`` seconds.

    Args:
        loader: returns a fresh snapshot (``IamGateway.load_catalog``); may be slow.
        interval: seconds between background refreshes.
    """

    def __init__(self, loader: Callable[[], CatalogSnapshot], interval: float = 300.0) -> None:
        self._loader = loader
        self._interval = interval
        self._snapshot = EMPTY
        self._added_users: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loaded = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def snapshot(self) -> CatalogSnapshot:
        return self._snapshot

    def wait_loaded(self, timeout: float) -> bool:
        """Block up to ``timeout`` seconds for the first load; True once loaded."""
        return self._loaded.wait(timeout)

    def refresh(self) -> None:
        """Load a new snapshot now (in the caller's thread). Errors are logged, the old copy kept."""
        try:
            snapshot = self._loader()
        except Exception as error:
            log.warning("catalog refresh failed, keeping the previous copy: %s", error)
            return
        with self._lock:
            self._snapshot = snapshot
            self._added_users.clear()
        self._loaded.set()
        log.info("catalog loaded: %d users, %d groups", len(snapshot.user_names), len(snapshot.group_names))

    def start(self) -> None:
        """Load now and then every ``interval`` seconds, in a daemon thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="catalog-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        self.refresh()
        while not self._stop.wait(self._interval):
            self.refresh()

    def note_user_created(self, user_name: str) -> None:
        """Count a user the bot just made as existing before the next refresh sees it."""
        with self._lock:
            self._added_users.add(user_name)

    def user_names_lower(self) -> set[str]:
        """Existing IAM user names, lower-cased (IAM user names ignore case)."""
        with self._lock:
            names = (*self._snapshot.user_names, *self._added_users)
        return {name.lower() for name in names}

    def search_groups(self, query: str, limit: int = 100) -> list[str]:
        """Group names containing ``query`` ignoring case, sorted, at most ``limit`` (Slack: 100)."""
        needle = query.strip().lower()
        return sorted(name for name in self._snapshot.group_names if needle in name.lower())[:limit]

    def has_group(self, name: str) -> bool:
        return name in self._snapshot.group_names
