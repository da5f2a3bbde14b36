"""Approval records in the store (schema migration 2): the review each request is judged on,
distinct approvals counted with one compare-and-set, and the half-life reminder marker.

A mixin of :class:`bot.storage.sqlite.Store`, kept in its own file so the store's core (connections,
requests, audit, secrets) stays readable; it uses the store's ``transaction``, ``_audit`` and
row readers and follows the same rule: every change is ``BEGIN IMMEDIATE`` → check → write →
audit row → ``COMMIT``.
"""

from __future__ import annotations

import enum
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from bot.domain.models import Approval, OnboardingRequest, PermissionExpansion, RequestStatus, Review, RiskFlag

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    import sqlite_utils


def _iso(value: datetime) -> str:
    return value.isoformat()


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class ApprovalVerdict(enum.StrEnum):
    """What :meth:`Store.record_approval` did with one approver's yes."""

    APPROVED = "approved"  # this yes completed the approvals; the request moved to approved
    RECORDED = "recorded"  # counted; more distinct approvers are still needed
    DUPLICATE = "duplicate"  # this approver had already said yes; nothing changed
    NOT_PENDING = "not_pending"  # someone decided first (or it was cancelled/expired); nothing changed
    NOT_READY = "not_ready"  # no readable review is stored yet; nothing changed


@dataclass(frozen=True)
class ApprovalResult:
    """:meth:`Store.record_approval`'s answer: the verdict and the request as it is now."""

    verdict: ApprovalVerdict
    request: OnboardingRequest | None
    approvals: int = 0
    required: int = 1


class ApprovalRecords:
    """Approval reads and writes of :class:`~bot.storage.sqlite.Store` (which provides the members below)."""

    clock: Callable[[], datetime]

    if TYPE_CHECKING:  # provided by Store

        @property
        def db(self) -> sqlite_utils.Database: ...

        def transaction(self) -> AbstractContextManager[sqlite3.Connection]: ...

        def _audit(
            self,
            conn: sqlite3.Connection,
            event: str,
            request_id: str | None,
            actor: str | None,
            detail: dict[str, object] | None,
        ) -> None: ...

        def get_request(self, request_id: str) -> OnboardingRequest | None: ...

        @staticmethod
        def _request_from_row(row: dict[str, object]) -> OnboardingRequest: ...

    def save_review(
        self,
        request_id: str,
        expansion: PermissionExpansion,
        flags: tuple[RiskFlag, ...],
        approvals_required: int,
    ) -> bool:
        """Store what the request grants and its flags, once; False if a review is already stored.

        Set once so every approver judges (and every approval fingerprints) the same content.
        """
        review = json.dumps(
            {"expansion": expansion.model_dump(mode="json"), "flags": [f.model_dump(mode="json") for f in flags]},
            sort_keys=True,
        )
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE requests SET review = ?, approvals_required = ? WHERE id = ? AND review IS NULL",
                (review, approvals_required, request_id),
            )
            if cursor.rowcount != 1:
                return False
            self._audit(
                conn,
                "permissions_read",
                request_id,
                None,
                {
                    "flags": [f.code for f in flags],
                    "sensitive": [f.text for f in flags if f.sensitive],
                    "approvals_required": approvals_required,
                },
            )
        return True

    def get_review(self, request_id: str) -> Review | None:
        """The stored review with the approvals so far (oldest first), or None before it is read."""
        row = self.db.conn.execute(
            "SELECT review, approvals_required, fingerprint, reminded_at FROM requests WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        data = json.loads(row[0])
        approvals = self.db.conn.execute(
            "SELECT approver, at FROM approvals WHERE request_id = ? ORDER BY at, rowid", (request_id,)
        ).fetchall()
        return Review(
            expansion=PermissionExpansion.model_validate(data["expansion"]),
            flags=tuple(RiskFlag.model_validate(f) for f in data["flags"]),
            approvals_required=row[1] or 1,
            approvals=tuple(Approval(approver=a, at=datetime.fromisoformat(at)) for a, at in approvals),
            fingerprint=row[2],
            reminded_at=_dt(row[3]),
        )

    def record_approval(self, request_id: str, approver: str, fingerprint: str) -> ApprovalResult:
        """Count one approver's yes; move the request to approved when enough distinct ones agree.

        One ``BEGIN IMMEDIATE`` transaction: check the request is pending with a readable review,
        insert the ``(request, approver)`` row (the primary key makes a second yes from the same
        person a no-op), count the approvals for this ``fingerprint``, and when they reach
        ``approvals_required`` compare-and-set pending → approved with ``decided_by``,
        ``decided_at`` and ``fingerprint``. Concurrent clicks in any number of processes are
        serialised by SQLite's write lock, so exactly one click completes the approval.
        """
        now = self.clock()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT status, review, approvals_required FROM requests WHERE id = ?", (request_id,)
            ).fetchone()
            if row is None or row[0] != RequestStatus.PENDING:
                verdict = ApprovalVerdict.NOT_PENDING
            elif row[1] is None or json.loads(row[1])["expansion"].get("error"):
                verdict = ApprovalVerdict.NOT_READY
            else:
                required = int(row[2] or 1)
                inserted = conn.execute(
                    "INSERT OR IGNORE INTO approvals (request_id, approver, at, fingerprint) VALUES (?, ?, ?, ?)",
                    (request_id, approver, _iso(now), fingerprint),
                ).rowcount
                count = conn.execute(
                    "SELECT COUNT(*) FROM approvals WHERE request_id = ? AND fingerprint = ?",
                    (request_id, fingerprint),
                ).fetchone()[0]
                if not inserted:
                    verdict = ApprovalVerdict.DUPLICATE
                elif count < required:
                    verdict = ApprovalVerdict.RECORDED
                    self._audit(
                        conn,
                        "approval_recorded",
                        request_id,
                        approver,
                        {"approvals": count, "required": required, "fingerprint": fingerprint},
                    )
                else:
                    moved = conn.execute(
                        "UPDATE requests SET status = ?, updated_at = ?, decided_by = ?, decided_at = ?, "
                        "fingerprint = ? WHERE id = ? AND status = ?",
                        (
                            str(RequestStatus.APPROVED),
                            _iso(now),
                            approver,
                            _iso(now),
                            fingerprint,
                            request_id,
                            str(RequestStatus.PENDING),
                        ),
                    ).rowcount
                    assert moved == 1, "the status was read as pending inside this same transaction"
                    verdict = ApprovalVerdict.APPROVED
                    self._audit(
                        conn,
                        "approved",
                        request_id,
                        approver,
                        {
                            "from": [str(RequestStatus.PENDING)],
                            "to": str(RequestStatus.APPROVED),
                            "approvals": count,
                            "required": required,
                            "fingerprint": fingerprint,
                        },
                    )
                return ApprovalResult(verdict, self._get_in(conn, request_id), count, required)
        return ApprovalResult(verdict, self.get_request(request_id))

    def _get_in(self, conn: sqlite3.Connection, request_id: str) -> OnboardingRequest | None:
        cursor = conn.execute("SELECT * FROM requests WHERE id = ?", (request_id,))
        row = cursor.fetchone()
        if row is None:
            return None
        return self._request_from_row(dict(zip([c[0] for c in cursor.description], row, strict=True)))

    def mark_reminded(self, request_id: str) -> bool:
        """Set the half-life reminder marker of a pending request; True only for the one caller
        (thread or process) that set it, so exactly one reminder goes out."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE requests SET reminded_at = ? WHERE id = ? AND status = ? AND reminded_at IS NULL",
                (_iso(self.clock()), request_id, str(RequestStatus.PENDING)),
            )
            if cursor.rowcount != 1:
                return False
            self._audit(conn, "reminder_sent", request_id, None, {})
        return True
