"""SQLite persistence through sqlite-utils: requests, the audit log, sealed credentials.

Concurrency model: one connection per thread, WAL mode, ``busy_timeout``; every state change
is ``BEGIN IMMEDIATE`` → compare-and-set ``UPDATE … WHERE status IN (…)`` → audit row →
``COMMIT``, so two threads, two gunicorn workers, a double click or a Slack retry can never
move a request twice. The audit table refuses UPDATE and DELETE (triggers).

Schema changes are numbered migrations applied in order; ``PRAGMA user_version`` records the
last one applied, so an existing file is migrated, never rebuilt.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlite_utils

from bot.domain.models import AuditEvent, OnboardingRequest, RequestForm, RequestStatus, utcnow
from bot.storage.sqlite_approvals import ApprovalRecords
from bot.storage.sqlite_secrets import SECRETS_LIFECYCLE_MIGRATION, SealedSecretRow, SecretStore

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "SealedSecretRow", "Store"]

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 15_000
REQUEST_ID_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O/1/I: ids get read aloud

MIGRATIONS: list[str] = [
    # 1: the first schema.
    """
    CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        requester TEXT NOT NULL,
        status TEXT NOT NULL,
        form TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        approval_channel TEXT,
        approval_ts TEXT,
        decided_by TEXT,
        decided_at TEXT,
        reason TEXT,
        error TEXT
    );
    CREATE INDEX requests_requester ON requests(requester);
    CREATE INDEX requests_status ON requests(status);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        request_id TEXT,
        actor TEXT,
        event TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX audit_at ON audit(at);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TABLE secrets (
        id TEXT PRIMARY KEY,
        request_id TEXT NOT NULL REFERENCES requests(id),
        recipient TEXT NOT NULL,
        user_name TEXT NOT NULL,
        nonce BLOB,
        ciphertext BLOB,
        state TEXT NOT NULL,
        created_at TEXT NOT NULL,
        expires_at TEXT NOT NULL,
        revealed_at TEXT
    );
    CREATE INDEX secrets_request ON secrets(request_id);
    CREATE TABLE seen_events (
        event_id TEXT PRIMARY KEY,
        at TEXT NOT NULL
    );
    """,
    # 2: the one-time link's life after sealing (bot.secret_store): key id, notices, expiry, re-issue.
    SECRETS_LIFECYCLE_MIGRATION,
    # 3: drafts of the multi-view request form, keyed by Slack view id (never a plaintext secret).
    """
    CREATE TABLE wizard_drafts (
        view_id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX wizard_drafts_updated ON wizard_drafts(updated_at);
    """,
    # 4: provisioning journal (issue 5). Each plan step is recorded before and after its IAM
    # call, so a restarted server resumes or rolls back instead of guessing. A lease on the
    # request (owner + expiry) lets exactly one process work on a provisioning request. The
    # journal and the stored plan hold names, ARNs, access key ids and IAM error codes: never
    # a password or a secret access key.
    """
    ALTER TABLE requests ADD COLUMN lease_owner TEXT;
    ALTER TABLE requests ADD COLUMN lease_until TEXT;
    CREATE TABLE provisioning_plans (
        request_id TEXT PRIMARY KEY REFERENCES requests(id),
        plan TEXT NOT NULL,
        console_url TEXT,
        created_at TEXT NOT NULL
    );
    CREATE TABLE journal (
        request_id TEXT NOT NULL REFERENCES requests(id),
        step_index INTEGER NOT NULL,
        label TEXT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('started', 'done', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 1,
        detail TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (request_id, step_index)
    );
    """,
    # 5: approval review: what the request grants (read from IAM at filing) and its risk flags,
    # distinct approvers (a sensitive request needs several), the fingerprint of the approved
    # plan, and the half-life reminder marker (set by compare-and-set: one worker sends it).
    """
    ALTER TABLE requests ADD COLUMN review TEXT;
    ALTER TABLE requests ADD COLUMN approvals_required INTEGER;
    ALTER TABLE requests ADD COLUMN fingerprint TEXT;
    ALTER TABLE requests ADD COLUMN reminded_at TEXT;
    CREATE TABLE approvals (
        request_id TEXT NOT NULL REFERENCES requests(id),
        approver TEXT NOT NULL,
        at TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        PRIMARY KEY (request_id, approver)
    );
    CREATE TRIGGER approvals_no_update BEFORE UPDATE ON approvals
        BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
    CREATE TRIGGER approvals_no_delete BEFORE DELETE ON approvals
        BEGIN SELECT RAISE(ABORT, 'approvals are append-only'); END;
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def new_request_id() -> str:
    """``R-`` and 8 characters of an unambiguous alphabet (40 random bits)."""
    return "R-" + "".join(secrets.choice(REQUEST_ID_ALPHABET) for _ in range(8))


def _loggable(detail: dict[str, object]) -> str:
    """An audit event's detail for a log line: a link's ``secret_id`` cut to 6 characters.

    The full id cannot decrypt anything, but it can burn an unopened link (a reveal POST), and
    logs are usually read by more people than the database: 6 characters still correlate lines.
    """
    shown = {k: f"{v[:6]}…" if k == "secret_id" and isinstance(v, str) else v for k, v in detail.items()}
    return json.dumps(shown, sort_keys=True, default=str)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Store(SecretStore, ApprovalRecords):
    """All reads and writes of the bot's SQLite file (sealed secrets: :class:`~bot.storage.sqlite_secrets.SecretStore`).

    Args:
        path: the database file; created and migrated on first use.
        clock: returns "now" (aware UTC); tests pass a controllable one.
    """

    def __init__(self, path: Path | str, clock: Callable[[], datetime] = utcnow) -> None:
        self.path = Path(path)
        self.clock = clock
        self._local = threading.local()
        self.migrate()

    # -- connections and transactions -------------------------------------------------------

    @property
    def db(self) -> sqlite_utils.Database:
        """This thread's connection (sqlite3 objects must not cross threads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA foreign_keys = ON")
            # WAL pages hold ciphertext only, but a deleted secret should not linger in free pages.
            conn.execute("PRAGMA secure_delete = ON")
            db = sqlite_utils.Database(conn)
            self._local.db = db
        return db

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
            log.info("audit %s %s", event, _loggable(detail), extra=ids)

    def migrate(self) -> int:
        """Apply pending migrations; returns the schema version now in force."""
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
        return SCHEMA_VERSION

    def close(self) -> None:
        """Close this thread's connection."""
        db = getattr(self._local, "db", None)
        if db is not None:
            db.conn.close()
            self._local.db = None

    # -- audit ---------------------------------------------------------------------------------

    def _audit(
        self,
        conn: sqlite3.Connection,
        event: str,
        request_id: str | None,
        actor: str | None,
        detail: dict[str, object] | None,
    ) -> None:
        text = json.dumps(detail or {}, sort_keys=True)
        conn.execute(
            "INSERT INTO audit (at, request_id, actor, event, detail) VALUES (?, ?, ?, ?, ?)",
            (_iso(self.clock()), request_id, actor, event, text),
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
        """Append one audit event. ``detail`` must never hold a secret."""
        with self.transaction() as conn:
            self._audit(conn, event, request_id, actor, detail)

    def audit_events(self, *, since: datetime | None = None, request_id: str | None = None) -> list[AuditEvent]:
        """Audit events in order, optionally from ``since`` on and for one request."""
        where, args = [], []
        if since is not None:
            # Stored times are UTC ISO strings, compared as text: compare in UTC too.
            where.append("at >= ?")
            args.append(_iso(since.astimezone(UTC)))
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

    # -- requests ------------------------------------------------------------------------------

    def create_request(self, requester: str, form: RequestForm) -> OnboardingRequest:
        """Store a new pending request and its ``filed`` audit event in one transaction."""
        now = self.clock()
        for _ in range(5):
            request_id = new_request_id()
            try:
                with self.transaction() as conn:
                    conn.execute(
                        "INSERT INTO requests (id, requester, status, form, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (request_id, requester, RequestStatus.PENDING, form.model_dump_json(), _iso(now), _iso(now)),
                    )
                    self._audit(conn, "filed", request_id, requester, {"user_names": list(form.user_names)})
            except sqlite3.IntegrityError:
                continue  # id collision: draw another
            return self.get_request(request_id)  # type: ignore[return-value]
        raise RuntimeError("could not draw a unique request id")

    @staticmethod
    def _request_from_row(row: dict[str, object]) -> OnboardingRequest:
        return OnboardingRequest(
            id=str(row["id"]),
            requester=str(row["requester"]),
            form=RequestForm.model_validate_json(str(row["form"])),
            status=RequestStatus(row["status"]),
            created_at=datetime.fromisoformat(str(row["created_at"])),
            updated_at=datetime.fromisoformat(str(row["updated_at"])),
            approval_channel=row["approval_channel"],  # type: ignore[arg-type]
            approval_ts=row["approval_ts"],  # type: ignore[arg-type]
            decided_by=row["decided_by"],  # type: ignore[arg-type]
            decided_at=_dt(row["decided_at"]),  # type: ignore[arg-type]
            reason=row["reason"],  # type: ignore[arg-type]
            error=row["error"],  # type: ignore[arg-type]
        )

    def get_request(self, request_id: str) -> OnboardingRequest | None:
        """The request with this id, or None."""
        rows = list(self.db["requests"].rows_where("id = ?", [request_id]))
        return self._request_from_row(rows[0]) if rows else None

    def requests_where(
        self,
        *,
        requester: str | None = None,
        statuses: Iterable[RequestStatus] | None = None,
        limit: int = 50,
    ) -> list[OnboardingRequest]:
        """Requests, newest first, filtered by requester and/or status."""
        where, args = [], []
        if requester is not None:
            where.append("requester = ?")
            args.append(requester)
        if statuses is not None:
            wanted = list(statuses)
            where.append(f"status IN ({', '.join('?' * len(wanted))})")
            args.extend(str(s) for s in wanted)
        rows = self.db["requests"].rows_where(
            " AND ".join(where) or None, args, order_by="created_at DESC", limit=limit
        )
        return [self._request_from_row(row) for row in rows]

    def transition(
        self,
        request_id: str,
        expected: RequestStatus | Iterable[RequestStatus],
        new: RequestStatus,
        *,
        actor: str | None,
        event: str,
        detail: dict[str, object] | None = None,
        **fields: object,
    ) -> OnboardingRequest | None:
        """Compare-and-set the request's status; audit it in the same transaction.

        Args:
            expected: the status (or statuses) the request must be in now.
            new: the status to move to.
            fields: other columns to set with the move (``decided_by``, ``reason``, ``error``…).

        Returns:
            The updated request, or None when the request was not in ``expected`` (someone
            else moved it first); nothing changes then.
        """
        wanted = [expected] if isinstance(expected, RequestStatus) else list(expected)
        columns = {"status": str(new), "updated_at": _iso(self.clock())}
        for key, value in fields.items():
            columns[key] = _iso(value) if isinstance(value, datetime) else value  # type: ignore[assignment]
        assignments = ", ".join(f"{key} = ?" for key in columns)
        placeholders = ", ".join("?" * len(wanted))
        with self.transaction() as conn:
            cursor = conn.execute(
                f"UPDATE requests SET {assignments} WHERE id = ? AND status IN ({placeholders})",  # noqa: S608 - column names are ours
                [*columns.values(), request_id, *(str(s) for s in wanted)],
            )
            if cursor.rowcount != 1:
                return None
            self._audit(
                conn, event, request_id, actor, {"from": [str(s) for s in wanted], "to": str(new), **(detail or {})}
            )
        return self.get_request(request_id)

    def set_approval_message(self, request_id: str, channel: str, ts: str) -> None:
        """Remember where the approval message is, so every state change can update it."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE requests SET approval_channel = ?, approval_ts = ? WHERE id = ?",
                (channel, ts, request_id),
            )
            self._audit(conn, "approval_posted", request_id, None, {"channel": channel, "ts": ts})

    def remember_event(self, event_id: str) -> bool:
        """Record an Events API ``event_id``; False when it was already recorded (a retry)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO seen_events (event_id, at) VALUES (?, ?)", (event_id, _iso(self.clock()))
            )
            return cursor.rowcount == 1

    # -- self-service reads (status replies, App Home) ---------------------------------------

    def requests_for_recipient(self, user_id: str, *, limit: int = 20) -> list[OnboardingRequest]:
        """Requests in which ``user_id`` receives an IAM user, newest first, at most ``limit``.

        Reads the ``recipients`` list inside the stored form (SQLite ``json_each``), so no
        schema change is needed; fine for the few thousand requests a workspace files.
        """
        rows = self.db["requests"].rows_where(
            "EXISTS (SELECT 1 FROM json_each(requests.form, '$.recipients') AS r WHERE r.value = ?)",
            [user_id],
            order_by="created_at DESC",
            limit=limit,
        )
        return [self._request_from_row(row) for row in rows]

    def forget_events_before(self, cutoff: datetime) -> int:
        """Drop remembered Events API ids older than ``cutoff``; returns how many were dropped.

        Slack retries an event at most three times within about an hour, so a day's memory is
        plenty and keeps ``seen_events`` small.
        """
        with self.transaction() as conn:
            return conn.execute("DELETE FROM seen_events WHERE at < ?", (_iso(cutoff),)).rowcount

    def forget_custom_password(self, request_id: str) -> bool:
        """Erase a request's sealed custom password once provisioning is over (it is needed by
        nothing after ``create_login_profile``); audited. Returns whether there was one."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE requests SET form = json_remove(form, '$.custom_password_sealed') "
                "WHERE id = ? AND json_extract(form, '$.custom_password_sealed') IS NOT NULL",
                (request_id,),
            )
            if cursor.rowcount != 1:
                return False
            self._audit(conn, "custom_password_erased", request_id, None, None)
        return True

    # -- drafts of the request form ----------------------------------------------------------

    def put_draft(self, view_id: str, user_id: str, data: str, max_age_seconds: float = 86400) -> None:
        """Save the form draft of Slack view ``view_id`` (JSON text, holding no plaintext secret);
        drafts untouched for ``max_age_seconds`` are dropped at the same time."""
        now = self.clock()
        cutoff = now - timedelta(seconds=max_age_seconds)
        with self.transaction() as conn:
            conn.execute("DELETE FROM wizard_drafts WHERE updated_at < ?", (_iso(cutoff),))
            conn.execute(
                "INSERT INTO wizard_drafts (view_id, user_id, data, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(view_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at "
                "WHERE wizard_drafts.user_id = excluded.user_id",
                (view_id, user_id, data, _iso(now)),
            )

    def get_draft(self, view_id: str, user_id: str, max_age_seconds: float = 86400) -> str | None:
        """The draft JSON of ``view_id`` if ``user_id`` started it and it is not stale, else None."""
        cutoff = self.clock() - timedelta(seconds=max_age_seconds)
        row = self.db.conn.execute(
            "SELECT data FROM wizard_drafts WHERE view_id = ? AND user_id = ? AND updated_at >= ?",
            (view_id, user_id, _iso(cutoff)),
        ).fetchone()
        return str(row[0]) if row else None

    def delete_draft(self, view_id: str) -> bool:
        """Forget a draft; True only for the one caller that removed it, so two concurrent
        submissions of the same last view (a double click, a Slack retry) file one request."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM wizard_drafts WHERE view_id = ?", (view_id,)).rowcount == 1
