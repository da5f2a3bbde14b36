"""Key rotations and lifecycle findings in SQLite: the state table's moves, each one compare-and-set
with its audit row in the same transaction (``BEGIN IMMEDIATE``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.domain.records import Finding, RotationRow
from bot.domain.states import (
    FINDING_MOVES,
    FindingEvent,
    FindingState,
    RotationEvent,
    RotationState,
    rotation_sources,
    rotation_target,
)
from bot.storage.sqlite.base import SqliteBase, in_list, iso, parse_time


def _rotation(row: dict[str, Any]) -> RotationRow:
    return RotationRow(
        user_name=row["user_name"],
        state=RotationState(row["state"]),
        old_key_id=row["old_key_id"],
        owner=row["owner"],
        request_id=row["request_id"],
        started_at=parse_time(row["started_at"]),  # type: ignore[arg-type]
        updated_at=parse_time(row["updated_at"]),  # type: ignore[arg-type]
        kept_key_ids=tuple(json.loads(row["kept_key_ids"])),
        new_key_id=row["new_key_id"],
        secret_id=row["secret_id"],
        error=row["error"],
        seal=row.get("seal"),
    )


def _finding(row: dict[str, Any]) -> Finding:
    return Finding(
        kind=row["kind"],
        subject=row["subject"],
        state=FindingState(row["state"]),
        created_at=parse_time(row["created_at"]),  # type: ignore[arg-type]
        detail=json.loads(row["detail"]),
        resolved_at=parse_time(row["resolved_at"]),
    )


class LifecycleTables(SqliteBase):
    """The ``rotations`` and ``findings`` tables."""

    # -- rotations -----------------------------------------------------------------------------

    def _rotation_in(self, conn: sqlite3.Connection, user_name: str) -> RotationRow | None:
        rows = self.rows(conn, "SELECT * FROM rotations WHERE user_name = ?", [user_name])
        return _rotation(rows[0]) if rows else None

    def get_rotation(self, user_name: str) -> RotationRow | None:
        """The rotation record of ``user_name``, or None."""
        return self._rotation_in(self.db.conn, user_name)

    def start_rotation(
        self,
        user_name: str,
        *,
        old_key_id: str,
        owner: str,
        request_id: str,
        kept_key_ids: Sequence[str],
        actor: str | None,
        started_at: datetime | None = None,
        seal: str | None = None,
    ) -> RotationRow | None:
        """See :meth:`bot.storage.base.Store.start_rotation`."""
        event = RotationEvent.STARTED
        sources = rotation_sources(event)
        marks, values = in_list(sources)
        now = iso(self.clock())
        started = iso(started_at) if started_at else now
        kept = json.dumps(list(kept_key_ids))
        with self.transaction() as conn:
            before = self._rotation_in(conn, user_name)
            cursor = conn.execute(
                "INSERT INTO rotations (user_name, state, old_key_id, kept_key_ids, owner, request_id, started_at, "
                "updated_at, seal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (user_name) DO UPDATE SET "
                "state = excluded.state, old_key_id = excluded.old_key_id, kept_key_ids = excluded.kept_key_ids, "
                "owner = excluded.owner, request_id = excluded.request_id, started_at = excluded.started_at, "
                "updated_at = excluded.updated_at, seal = excluded.seal, new_key_id = NULL, secret_id = NULL, "
                f"error = NULL WHERE rotations.state IN ({marks})",
                (
                    user_name,
                    str(RotationState.STARTED),
                    old_key_id,
                    kept,
                    owner,
                    request_id,
                    started,
                    now,
                    seal,
                    *values,
                ),
            )
            if cursor.rowcount != 1:
                return None
            row = self._rotation_in(conn, user_name)
            detail = {
                "user_name": user_name,
                "from": str(before.state) if before else None,
                "to": str(RotationState.STARTED),
                "old_key_id": old_key_id,
            }
            self.write_audit(conn, str(event), request_id, actor, detail)
            return row

    def move_rotation(
        self,
        user_name: str,
        event: RotationEvent,
        *,
        actor: str | None,
        detail: dict | None = None,
        new_key_id: str | None = None,
        secret_id: str | None = None,
        error: str | None = None,
    ) -> RotationRow | None:
        """See :meth:`bot.storage.base.Store.move_rotation`."""
        if event is RotationEvent.STARTED:
            raise ValueError("a rotation starts with start_rotation")
        target = rotation_target(event)
        marks, values = in_list(rotation_sources(event))
        columns: dict[str, object] = {"state": str(target), "updated_at": iso(self.clock())}
        columns.update({k: v for k, v in (("new_key_id", new_key_id), ("secret_id", secret_id)) if v is not None})
        if error is not None:
            columns["error"] = error
        assignments = ", ".join(f"{name} = ?" for name in columns)
        with self.transaction() as conn:
            before = self._rotation_in(conn, user_name)
            cursor = conn.execute(
                f"UPDATE rotations SET {assignments} WHERE user_name = ? AND state IN ({marks})",
                [*columns.values(), user_name, *values],
            )
            if cursor.rowcount != 1 or before is None:
                return None
            row = self._rotation_in(conn, user_name)
            audited = {"user_name": user_name, "from": str(before.state), "to": str(target), **(detail or {})}
            self.write_audit(conn, str(event), before.request_id, actor, audited)
            return row

    def unsealed_rotations(self, limit: int = 500) -> list[RotationRow]:
        """Rotation records without a seal (started before records were sealed)."""
        with self.transaction() as conn:
            rows = self.rows(conn, "SELECT * FROM rotations WHERE seal IS NULL LIMIT ?", [limit])
        return [_rotation(row) for row in rows]

    def seal_rotation(self, user_name: str, seal: str) -> bool:
        """Give an unsealed rotation record its seal (compare-and-set), audited ``rotation_record_sealed``."""
        with self.transaction() as conn:
            row = self._rotation_in(conn, user_name)
            cursor = conn.execute(
                "UPDATE rotations SET seal = ? WHERE user_name = ? AND seal IS NULL", (seal, user_name)
            )
            if row is None or cursor.rowcount != 1:
                return False
            self.write_audit(conn, "rotation_record_sealed", row.request_id, None, {"user_name": user_name})
            return True

    def rotations_in(self, states: Iterable[RotationState], *, limit: int = 500) -> list[RotationRow]:
        """Rotations now in one of ``states``, least recently moved first."""
        marks, values = in_list(list(states))
        rows = self.db["rotations"].rows_where(f"state IN ({marks})", values, order_by="updated_at", limit=limit)
        return [_rotation(row) for row in rows]

    # -- findings ------------------------------------------------------------------------------

    def get_finding(self, kind: str, subject: str) -> Finding | None:
        """The finding ``(kind, subject)``, or None."""
        rows = self.rows(self.db.conn, "SELECT * FROM findings WHERE kind = ? AND subject = ?", [kind, subject])
        return _finding(rows[0]) if rows else None

    def open_finding(self, kind: str, subject: str, *, detail: dict, actor: str | None = None) -> bool:
        """(none) → open, once (the primary key makes a second insert a no-op)."""
        assert (None, FindingEvent.OPENED) in FINDING_MOVES
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO findings (kind, subject, state, detail, created_at) VALUES (?, ?, ?, ?, ?)",
                (kind, subject, str(FindingState.OPEN), json.dumps(detail, sort_keys=True), iso(self.clock())),
            )
            if cursor.rowcount != 1:
                return False
            audited = {"kind": kind, "subject": subject, **detail}
            self.write_audit(conn, str(FindingEvent.OPENED), None, actor, audited)
        return True

    def resolve_finding(self, kind: str, subject: str, *, actor: str | None = None, detail: dict | None = None) -> bool:
        """open → resolved (compare-and-set on the state)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE findings SET state = ?, resolved_at = ? WHERE kind = ? AND subject = ? AND state = ?",
                (str(FindingState.RESOLVED), iso(self.clock()), kind, subject, str(FindingState.OPEN)),
            )
            if cursor.rowcount != 1:
                return False
            audited = {"kind": kind, "subject": subject, **(detail or {})}
            self.write_audit(conn, str(FindingEvent.RESOLVED), None, actor, audited)
        return True

    def open_findings(self, kind: str, *, limit: int = 50) -> list[Finding]:
        """The open findings of ``kind``, newest first."""
        rows = self.db["findings"].rows_where(
            "kind = ? AND state = ?",
            [kind, str(FindingState.OPEN)],
            order_by="created_at DESC, rowid DESC",
            limit=limit,
        )
        return [_finding(row) for row in rows]
