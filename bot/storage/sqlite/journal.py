"""The provisioning journal in SQLite: the lease on a provisioning request, the stored plan, and
each step's state (the state table's moves, each audited)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from bot.domain.plan import Step
from bot.domain.records import JournalEntry, Lease
from bot.domain.states import (
    RequestStatus,
    SecretEvent,
    SecretState,
    StepEvent,
    StepState,
    secret_sources,
    step_sources,
)
from bot.storage.sqlite.base import SqliteBase, in_list, iso, parse_time


class JournalTables(SqliteBase):
    """The ``provisioning_plans`` and ``journal`` tables and the lease columns of ``requests``."""

    # -- lease ---------------------------------------------------------------------------------

    def claim_lease(self, request_id: str, lease: Lease, is_gone: Callable[[str], bool]) -> bool:
        """Take the lease on a ``provisioning`` request if it is free; True when taken.

        Free: never taken, released, expired, or its owner ``is_gone`` (a live process's own lease
        is not free: it may be running the request on another thread).
        """
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT lease_owner, lease_until FROM requests WHERE id = ? AND status = ?",
                (request_id, str(RequestStatus.PROVISIONING)),
            ).fetchone()
            if row is None:
                return False
            owner, until = row
            expired = until is None or parse_time(until) <= self.clock()  # type: ignore[operator]
            if not (owner is None or expired or is_gone(owner)):
                return False
            conn.execute(
                "UPDATE requests SET lease_owner = ?, lease_until = ? WHERE id = ?",
                (lease.owner, iso(lease.until), request_id),
            )
        return True

    def renew_lease(self, request_id: str, lease: Lease) -> bool:
        """Extend the lease ``lease.owner`` holds; False when another process has taken it."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE requests SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                (iso(lease.until), request_id, lease.owner),
            )
            return cursor.rowcount == 1

    def release_lease(self, request_id: str, owner: str) -> None:
        """Give the lease up (only if ``owner`` holds it)."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE requests SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (request_id, owner),
            )

    # -- plan ----------------------------------------------------------------------------------

    def save_plan(self, request_id: str, steps: Sequence[Step], console_url: str | None) -> None:
        """Store the plan once; a second call for the same request keeps the first plan."""
        plan = json.dumps([step.model_dump(mode="json") for step in steps])
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO provisioning_plans (request_id, plan, console_url, created_at) "
                "VALUES (?, ?, ?, ?)",
                (request_id, plan, console_url, iso(self.clock())),
            )

    def get_plan(self, request_id: str) -> tuple[list[Step], str | None] | None:
        """The stored ``(steps, console_url)`` of a request, or None when none was saved."""
        row = self.db.conn.execute(
            "SELECT plan, console_url FROM provisioning_plans WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return None
        return [Step.model_validate(item) for item in json.loads(row[0])], row[1]

    # -- steps ---------------------------------------------------------------------------------

    def journal(self, request_id: str) -> dict[int, JournalEntry]:
        """Every journaled step of a request, by step index."""
        rows = self.db.conn.execute(
            "SELECT step_index, label, state, attempts, detail FROM journal WHERE request_id = ? ORDER BY step_index",
            (request_id,),
        ).fetchall()
        return {row[0]: JournalEntry(row[0], row[1], StepState(row[2]), row[3], json.loads(row[4])) for row in rows}

    def start_step(self, request_id: str, index: int, label: str) -> bool:
        """Journal step ``index`` as started; a re-run (from started or done) counts an attempt.
        False when the step failed before (nothing written)."""
        marks, values = in_list(step_sources(StepEvent.STARTED))
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO journal (request_id, step_index, label, state, attempts, detail, updated_at) "
                "VALUES (?, ?, ?, ?, 1, '{}', ?) "
                "ON CONFLICT (request_id, step_index) DO UPDATE SET state = excluded.state, "
                f"attempts = attempts + 1, updated_at = excluded.updated_at WHERE journal.state IN ({marks})",
                (request_id, index, label, str(StepState.STARTED), iso(self.clock()), *values),
            )
            if cursor.rowcount != 1:
                return False
            self.write_audit(conn, str(StepEvent.STARTED), request_id, None, {"step": label, "index": index})
        return True

    def _end_step(self, request_id: str, index: int, label: str, event: StepEvent, detail: dict[str, object]) -> bool:
        state = StepState.DONE if event is StepEvent.DONE else StepState.FAILED
        marks, values = in_list(step_sources(event))
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE journal SET state = ?, detail = ?, updated_at = ? "
                f"WHERE request_id = ? AND step_index = ? AND state IN ({marks})",
                (str(state), json.dumps(detail, sort_keys=True), iso(self.clock()), request_id, index, *values),
            )
            if cursor.rowcount != 1:
                return False
            audited: dict[str, object] = {"step": label, "index": index}
            if event is StepEvent.FAILED:
                audited["error"] = detail.get("message") or detail.get("error")
            self.write_audit(conn, str(event), request_id, None, audited)
        return True

    def finish_step(self, request_id: str, index: int, label: str, detail: dict[str, object]) -> bool:
        """started → done; ``detail`` (no secret) is kept with the step."""
        return self._end_step(request_id, index, label, StepEvent.DONE, detail)

    def fail_step(self, request_id: str, index: int, label: str, detail: dict[str, object]) -> bool:
        """started → failed; ``detail``: IAM's error code and message."""
        return self._end_step(request_id, index, label, StepEvent.FAILED, detail)

    def discard_unsent_links(self, request_id: str) -> int:
        """Retire the unrevealed one-time links of an interrupted run of a ``provisioning`` request.

        A run seals every user's credentials, sends the links, then marks the request
        provisioned. A crash before the last step leaves ``sealed`` rows whose keys died with the
        process (or sit in links already sent): the resumed run makes new credentials, so those
        links could only reveal replaced ones, and left alone they would expire later and switch
        off the new credentials. Retired links answer 410. Returns how many (audited together).
        """
        marks, values = in_list(secret_sources(SecretEvent.DISCARDED))
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET state = ?, nonce = NULL, ciphertext = NULL "
                f"WHERE request_id = ? AND state IN ({marks}) "
                "AND (SELECT status FROM requests WHERE id = ?) = ?",
                (str(SecretState.SUPERSEDED), request_id, *values, request_id, str(RequestStatus.PROVISIONING)),
            )
            count = cursor.rowcount
            if count:
                self.write_audit(conn, str(SecretEvent.DISCARDED), request_id, None, {"count": count})
        return count
