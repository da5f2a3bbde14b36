"""The catalog shared by the worker processes of one server, through a file next to the database.

Each gunicorn worker keeps its own catalog in memory (options answer from memory), but only one
of them reads IAM for it: whoever holds the file lock (``fcntl.flock``) reads IAM and writes the
snapshot to ``<DATABASE_PATH>.catalog.json`` (a new file moved into place, so a reader never
sees half of one); the others load that file when it changes (a ``stat`` every few seconds).
So a server reads the whole account once per ``CATALOG_REFRESH_SECONDS``, however many workers
it runs, and what one worker reads again after a search that found little, the others get too.

The file holds names and ARNs only (what ``List*`` calls answer to anyone allowed to list),
plus the password policy, per-user quotas and account id; no secret.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot.aws.catalog import CatalogSnapshot, ManagedPolicy
from bot.domain.quotas import AccountQuotas
from bot.domain.rules import PasswordPolicy

log = logging.getLogger(__name__)

FORMAT = 1  # bumped when the file's shape changes: an older file is then ignored


def to_json(snapshot: CatalogSnapshot) -> bytes:
    """``snapshot`` as compact JSON (UTF-8)."""
    data: dict[str, Any] = asdict(snapshot)
    data["password_policy"] = snapshot.password_policy.model_dump()
    data["quotas"] = snapshot.quotas.model_dump()
    data["policies"] = [[p.name, p.arn, p.aws_managed] for p in snapshot.policies]
    data["format"] = FORMAT
    return json.dumps(data, separators=(",", ":")).encode()


def from_json(raw: bytes) -> CatalogSnapshot | None:
    """The snapshot :func:`to_json` wrote, or None when ``raw`` is not one (another format)."""
    try:
        data = json.loads(raw)
        if data.pop("format", None) != FORMAT:
            return None
        data["user_names"] = tuple(data["user_names"])
        data["group_names"] = tuple(data["group_names"])
        data["policies"] = tuple(ManagedPolicy(name, arn, bool(aws)) for name, arn, aws in data["policies"])
        data["password_policy"] = PasswordPolicy(**data["password_policy"])
        data["quotas"] = AccountQuotas(**data["quotas"])
        return CatalogSnapshot(**data)
    except (ValueError, TypeError, KeyError):
        return None


class CatalogShare:
    """The shared snapshot file and its lock.

    Args:
        path: the snapshot file (its lock is ``<path>.lock`` beside it).
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lock_path = path.with_name(path.name + ".lock")
        self._seen: tuple[int, int] | None = None

    @classmethod
    def beside(cls, database_path: Path) -> CatalogShare:
        """The share of the server whose SQLite file is ``database_path``."""
        return cls(database_path.with_name(database_path.name + ".catalog.json"))

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the server-wide catalog lock (blocks while another worker holds it)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        # The bot's user only, like the database beside it (mkstemp's data file is 0600 too).
        descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(descriptor, "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _stamp(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return stat.st_mtime_ns, stat.st_size

    def read(self) -> CatalogSnapshot | None:
        """The shared snapshot, or None when there is none (yet) or it cannot be read."""
        stamp = self._stamp()
        try:
            raw = self.path.read_bytes()
        except OSError:
            return None
        snapshot = from_json(raw)
        if snapshot is not None:
            self._seen = stamp
        return snapshot

    def read_if_changed(self) -> CatalogSnapshot | None:
        """The shared snapshot if the file changed since this process last read or wrote it."""
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return None
        return self.read()

    def write(self, snapshot: CatalogSnapshot) -> None:
        """Replace the shared snapshot (a new file moved into place: readers see old or new)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=self.path.name, dir=self.path.parent)
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(to_json(snapshot))
            os.replace(temporary, self.path)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        self._seen = self._stamp()
