"""Requests and their approvals in SQLite: filing, the state table's moves, the review approvers
judge, distinct approvals counted in one compare-and-set, the reminder marker."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any

from bot.domain.ids import new_request_id
from bot.domain.models import (
    Approval,
    OnboardingRequest,
    PermissionExpansion,
    RequestForm,
    Review,
    RiskFlag,
)
from bot.domain.records import ApprovalResult, ApprovalVerdict, Lease
from bot.domain.states import FINAL_STATUSES, RequestEvent, RequestStatus, request_sources, request_target
from bot.storage.sqlite.base import SqliteBase, in_list, iso, parse_time


def request_from_row(row: dict[str, Any]) -> OnboardingRequest:
    """A ``requests`` row as the domain model."""
    return OnboardingRequest(
        id=str(row["id"]),
        requester=str(row["requester"]),
        form=RequestForm.model_validate_json(str(row["form"])),
        status=RequestStatus(row["status"]),
        created_at=parse_time(row["created_at"]),
        updated_at=parse_time(row["updated_at"]),
        approval_channel=row["approval_channel"],
        approval_ts=row["approval_ts"],
        decided_by=row["decided_by"],
        decided_at=parse_time(row["decided_at"]),
        reason=row["reason"],
        error=row["error"],
    )


class RequestTables(SqliteBase):
    """The ``requests`` and ``approvals`` tables."""

    def create_request(self, requester: str, form: RequestForm) -> OnboardingRequest:
        """Store a new pending request and its ``filed`` audit event in one transaction."""
        now = iso(self.clock())
        for _ in range(5):
            request_id = new_request_id()
            try:
                with self.transaction() as conn:
                    conn.execute(
                        "INSERT INTO requests (id, requester, status, form, created_at, updated_at) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (request_id, requester, RequestStatus.PENDING, form.model_dump_json(), now, now),
                    )
                    self.write_audit(conn, "filed", request_id, requester, {"user_names": list(form.user_names)})
            except sqlite3.IntegrityError:
                continue  # id collision: draw another
            return self.get_request(request_id)  # type: ignore[return-value]
        raise RuntimeError("could not draw a unique request id")

    def _request_in(self, conn: sqlite3.Connection, request_id: str) -> OnboardingRequest | None:
        rows = self.rows(conn, "SELECT * FROM requests WHERE id = ?", [request_id])
        return request_from_row(rows[0]) if rows else None

    def get_request(self, request_id: str) -> OnboardingRequest | None:
        """The request with this id, or None."""
        return self._request_in(self.db.conn, request_id)

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
            marks, values = in_list(list(statuses))
            where.append(f"status IN ({marks})")
            args.extend(values)
        rows = self.db["requests"].rows_where(
            " AND ".join(where) or None, args, order_by="created_at DESC, rowid DESC", limit=limit
        )
        return [request_from_row(row) for row in rows]

    def requests_for_recipient(self, user_id: str, *, limit: int = 20) -> list[OnboardingRequest]:
        """Requests in which ``user_id`` receives an IAM user, newest first, at most ``limit``.

        Reads the ``recipients`` list inside the stored form (``json_each``): fine for the few
        thousand requests a workspace files.
        """
        rows = self.db["requests"].rows_where(
            "EXISTS (SELECT 1 FROM json_each(requests.form, '$.recipients') AS r WHERE r.value = ?)",
            [user_id],
            order_by="created_at DESC, rowid DESC",
            limit=limit,
        )
        return [request_from_row(row) for row in rows]

    def _move(
        self,
        conn: sqlite3.Connection,
        request_id: str,
        event: RequestEvent,
        actor: str | None,
        detail: dict[str, object] | None,
        columns: dict[str, object],
    ) -> bool:
        """The state table's move inside the caller's transaction: compare-and-set plus audit row."""
        sources = request_sources(event)
        target = request_target(event)
        columns = {"status": str(target), "updated_at": iso(self.clock()), **columns}
        if target in FINAL_STATUSES:
            columns.update(lease_owner=None, lease_until=None)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        marks, values = in_list(sources)
        cursor = conn.execute(
            f"UPDATE requests SET {assignments} WHERE id = ? AND status IN ({marks})",
            [*columns.values(), request_id, *values],
        )
        if cursor.rowcount != 1:
            return False
        moved = {"from": values, "to": str(target), **(detail or {})}
        self.write_audit(conn, str(event), request_id, actor, moved)
        return True

    def move_request(
        self,
        request_id: str,
        event: RequestEvent,
        *,
        actor: str | None,
        detail: dict[str, object] | None = None,
        decided_by: str | None = None,
        reason: str | None = None,
        error: str | None = None,
        lease: Lease | None = None,
    ) -> OnboardingRequest | None:
        """See :meth:`bot.storage.base.Store.move_request`."""
        columns: dict[str, object] = {}
        if decided_by is not None:
            columns.update(decided_by=decided_by, decided_at=iso(self.clock()))
        if reason is not None:
            columns["reason"] = reason
        if error is not None:
            columns["error"] = error
        if lease is not None:
            columns.update(lease_owner=lease.owner, lease_until=iso(lease.until))
        with self.transaction() as conn:
            if not self._move(conn, request_id, event, actor, detail, columns):
                return None
            return self._request_in(conn, request_id)

    def set_approval_message(self, request_id: str, channel: str, ts: str) -> None:
        """Remember where the approval message is, so every state change can update it."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE requests SET approval_channel = ?, approval_ts = ? WHERE id = ?", (channel, ts, request_id)
            )
            self.write_audit(conn, "approval_posted", request_id, None, {"channel": channel, "ts": ts})

    def forget_custom_password(self, request_id: str) -> bool:
        """Erase a request's sealed custom password once provisioning is over (nothing needs it
        after ``create_login_profile``); audited. Returns whether there was one."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE requests SET form = json_remove(form, '$.custom_password_sealed') "
                "WHERE id = ? AND json_extract(form, '$.custom_password_sealed') IS NOT NULL",
                (request_id,),
            )
            if cursor.rowcount != 1:
                return False
            self.write_audit(conn, "custom_password_erased", request_id, None, None)
        return True

    # -- approvals -------------------------------------------------------------------------------

    def save_review(
        self,
        request_id: str,
        expansion: PermissionExpansion,
        flags: Sequence[RiskFlag],
        approvals_required: int,
        offered: str | None = None,
    ) -> bool:
        """Store what the request grants and its flags, once; False if a review is already stored.

        Set once so every approver judges (and every approval fingerprints) the same content.
        """
        review = json.dumps(
            {
                "expansion": expansion.model_dump(mode="json"),
                "flags": [f.model_dump(mode="json") for f in flags],
                **({"offered": offered} if offered else {}),
            },
            sort_keys=True,
        )
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE requests SET review = ?, approvals_required = ? WHERE id = ? AND review IS NULL",
                (review, approvals_required, request_id),
            )
            if cursor.rowcount != 1:
                return False
            detail = {
                "flags": [f.code for f in flags],
                "sensitive": [f.text for f in flags if f.sensitive],
                "approvals_required": approvals_required,
            }
            self.write_audit(conn, "permissions_read", request_id, None, detail)
        return True

    def get_review(self, request_id: str) -> Review | None:
        """The stored review with the approvals so far (oldest first), or None before it is read."""
        conn = self.db.conn
        row = conn.execute(
            "SELECT review, approvals_required, fingerprint, reminded_at FROM requests WHERE id = ?", (request_id,)
        ).fetchone()
        if row is None or row[0] is None:
            return None
        data = json.loads(row[0])
        approvals = conn.execute(
            "SELECT approver, at FROM approvals WHERE request_id = ? ORDER BY at, rowid", (request_id,)
        ).fetchall()
        return Review(
            expansion=PermissionExpansion.model_validate(data["expansion"]),
            flags=tuple(RiskFlag.model_validate(f) for f in data["flags"]),
            approvals_required=row[1] or 1,
            approvals=tuple(Approval(approver=a, at=parse_time(at)) for a, at in approvals),
            fingerprint=row[2],
            offered=data.get("offered"),
            reminded_at=parse_time(row[3]),
        )

    def record_approval(self, request_id: str, approver: str, fingerprint: str) -> ApprovalResult:
        """Count one approver's yes; move the request to approved when enough distinct ones agree.

        One ``BEGIN IMMEDIATE`` transaction: check the request is pending with a readable review,
        insert the ``(request, approver)`` row (the primary key makes a second yes from the same
        person a no-op), count the approvals for this ``fingerprint``, and when they reach
        ``approvals_required`` make the state table's ``approved`` move, stamping ``decided_by``,
        ``decided_at`` and the ``fingerprint``. Concurrent clicks in any number of processes are
        serialised by SQLite's write lock, so exactly one click completes the approval.
        """
        now = iso(self.clock())
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT status, review, approvals_required FROM requests WHERE id = ?", (request_id,)
            ).fetchone()
            if row is None or row[0] not in request_sources(RequestEvent.APPROVED):
                return ApprovalResult(ApprovalVerdict.NOT_PENDING, self._request_in(conn, request_id))
            if row[1] is None or json.loads(row[1])["expansion"].get("error"):
                return ApprovalResult(ApprovalVerdict.NOT_READY, self._request_in(conn, request_id))
            required = int(row[2] or 1)
            inserted = conn.execute(
                "INSERT OR IGNORE INTO approvals (request_id, approver, at, fingerprint) VALUES (?, ?, ?, ?)",
                (request_id, approver, now, fingerprint),
            ).rowcount
            count = conn.execute(
                "SELECT COUNT(*) FROM approvals WHERE request_id = ? AND fingerprint = ?", (request_id, fingerprint)
            ).fetchone()[0]
            counted = {"approvals": count, "required": required, "fingerprint": fingerprint}
            if not inserted:
                verdict = ApprovalVerdict.DUPLICATE
            elif count < required:
                verdict = ApprovalVerdict.RECORDED
                self.write_audit(conn, "approval_recorded", request_id, approver, counted)
            else:
                columns = {"decided_by": approver, "decided_at": now, "fingerprint": fingerprint}
                moved = self._move(conn, request_id, RequestEvent.APPROVED, approver, counted, columns)
                assert moved, "the status was read as pending inside this same transaction"
                verdict = ApprovalVerdict.APPROVED
            return ApprovalResult(verdict, self._request_in(conn, request_id), count, required)

    def mark_reminded(self, request_id: str) -> bool:
        """Set the half-life reminder marker of a pending request; True only for the one caller
        (thread or process) that set it, so exactly one reminder goes out."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE requests SET reminded_at = ? WHERE id = ? AND status = ? AND reminded_at IS NULL",
                (iso(self.clock()), request_id, str(RequestStatus.PENDING)),
            )
            if cursor.rowcount != 1:
                return False
            self.write_audit(conn, "reminder_sent", request_id, None, {})
        return True
