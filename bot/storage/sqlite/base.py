"""The SQLite file: connections, transactions, migrations and the audit log that every table
module of this backend writes through.

Concurrency model: one connection per thread, WAL mode, ``busy_timeout``; every state change is
``BEGIN IMMEDIATE`` → compare-and-set ``UPDATE … WHERE <status> IN (…)`` → audit row → ``COMMIT``,
so two threads, two gunicorn workers, a double click or a Slack retry can never move anything
twice. The audit table refuses UPDATE and DELETE (triggers).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import sqlite_utils

from bot.domain.ids import link_digest
from bot.domain.models import AuditEvent, utcnow
from bot.storage.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

log = logging.getLogger("bot.storage")

BUSY_TIMEOUT_MS = 15_000
# The database file and its -wal and -shm files: readable and writable by the bot's user only.
FILE_MODE = 0o600


def iso(value: datetime | None) -> str | None:
    """A stored time: ISO-8601 text (stored times are UTC, so text order is time order)."""
    return value.isoformat() if value else None


def parse_time(value: object) -> datetime | None:
    """Inverse of :func:`iso`; None for an empty column."""
    return datetime.fromisoformat(str(value)) if value else None


def in_list(values: Sequence[Enum | str | None]) -> tuple[str, list[str]]:
    """``(placeholders, values)`` for ``… IN (?, ?)`` over statuses (None values are left out)."""
    wanted = [str(v) for v in values if v is not None]
    return ", ".join("?" * len(wanted)), wanted


def _digest_or_none(value: object) -> str | None:
    return link_digest(str(value)) if value is not None else None


_UMASK_LOCK = threading.Lock()


@contextmanager
def private_umask() -> Iterator[None]:
    """Files created inside get no group or other bits (umask 077). The umask is per process, so
    threads take turns (a lock), and the previous one is always put back."""
    with _UMASK_LOCK:
        previous = os.umask(0o077)
        try:
            yield
        finally:
            os.umask(previous)


def create_private(path: Path) -> None:
    """Create the database file with mode 0600 if it does not exist yet (an existing file keeps
    its mode: ``iam-user-bot check`` warns when others may read it)."""
    if path.exists():
        return
    try:
        with private_umask():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:  # another process made it a moment ago
        return
    os.close(fd)


def loggable(detail: dict[str, object]) -> str:
    """An audit event's detail for a log line: a link's ``secret_id`` cut to 6 characters.

    The full id cannot decrypt anything, but it can burn an unopened link (a reveal POST), and
    logs are usually read by more people than the database: 6 characters still correlate lines.
    """
    shown = {k: f"{v[:6]}…" if k == "secret_id" and isinstance(v, str) else v for k, v in detail.items()}
    return json.dumps(shown, sort_keys=True, default=str)


class SqliteBase:
    """The connection and transaction layer of :class:`bot.storage.sqlite.SqliteStore`.

    Args:
        path: the database file; created and migrated on first use.
        clock: returns "now" (aware UTC); tests pass a controllable one.
    """

    def __init__(self, path: Path | str, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = Path(path)
        self.clock = clock
        self._local = threading.local()
        create_private(self.path)
        self.migrate()

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection (sqlite3 objects must not cross threads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            # SQLite gives the -wal and -shm files the database file's mode; the umask covers the
            # moment they are created as well.
            with private_umask():
                conn = self._connect()
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA foreign_keys = ON")
        # WAL pages hold ciphertext only, but a deleted secret should not linger in free pages.
        conn.execute("PRAGMA secure_delete = ON")
        # Migration 6 turns stored link ids into their digests in SQL.
        conn.create_function("link_digest", 1, _digest_or_none, deterministic=True)
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``: takes the write lock up front so CAS reads are current."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        self._local.audited = []
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        # Each committed audit event is also one log line (never a rolled-back one).
        for event, request_id, actor, detail in self._local.audited:
            ids = {"request_id": request_id, "slack_user": actor, "audit_event": event}
            log.info("audit %s %s", event, loggable(detail), extra=ids)

    def rows(self, conn: sqlite3.Connection, sql: str, args: Sequence[object] = ()) -> list[dict[str, Any]]:
        """The rows of a query as dicts (column name → value)."""
        cursor = conn.execute(sql, list(args))
        names = [c[0] for c in cursor.description]
        return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version now in force.

        Raises:
            RuntimeError: the file was written by a newer version of the bot.
        """
        conn = self.db.conn
        with self.transaction():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self.path} has schema version {version}, newer than this bot ({SCHEMA_VERSION}); upgrade the bot"
                )
            for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
                for statement in script.split(";\n"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {number}")
        if 0 < version < SCHEMA_VERSION:
            # Old pages of the rewritten rows must not outlive the migration in the WAL file.
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return SCHEMA_VERSION

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    # -- audit ---------------------------------------------------------------------------------

    def write_audit(
        self,
        conn: sqlite3.Connection,
        event: str,
        request_id: str | None,
        actor: str | None,
        detail: dict[str, object] | None,
    ) -> None:
        """Append an audit row inside the caller's transaction (logged once it commits)."""
        conn.execute(
            "INSERT INTO audit (at, request_id, actor, event, detail) VALUES (?, ?, ?, ?, ?)",
            (iso(self.clock()), request_id, actor, event, json.dumps(detail or {}, sort_keys=True)),
        )
        getattr(self._local, "audited", []).append((event, request_id, actor, detail or {}))

    def audit(
        self,
        event: str,
        *,
        request_id: str | None = None,
        actor: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        """Append one audit event that changes no state. ``detail`` must never hold a secret."""
        with self.transaction() as conn:
            self.write_audit(conn, event, request_id, actor, detail)

    def audit_events(self, *, since: datetime | None = None, request_id: str | None = None) -> list[AuditEvent]:
        """Audit events in order, optionally from ``since`` on and for one request."""
        where, args = [], []
        if since is not None:
            # Stored times are UTC ISO strings, compared as text: compare in UTC too.
            where.append("at >= ?")
            args.append(iso(since.astimezone(UTC)))
        if request_id is not None:
            where.append("request_id = ?")
            args.append(request_id)
        rows = self.db["audit"].rows_where(" AND ".join(where) or None, args, order_by="id")
        return [
            AuditEvent(
                id=row["id"],
                at=datetime.fromisoformat(row["at"]),
                request_id=row["request_id"],
                actor=row["actor"],
                event=row["event"],
                detail=json.loads(row["detail"]),
            )
            for row in rows
        ]
