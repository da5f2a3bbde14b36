"""The provisioning journal and the lease on a provisioning request, in the bot's SQLite file.

Every plan step is written down as ``started`` before its IAM call and ``done`` or ``failed``
after it, keyed by request id and step index. After a crash the journal says where to resume
(a ``started`` step is re-run idempotently) or that the request must be rolled back (a
``failed`` step). The plan itself is stored with the journal so a resumed run executes exactly
the steps that were approved, even if IAM changed meanwhile (say, the copy-from user).

A lease (owner and expiry on the request row) makes sure one process at a time works on a
provisioning request: several gunicorn workers starting at once each try to claim it, and the
compare-and-set lets exactly one win. A lease is free when it was released, when it expired,
or when its owner is a process on this host that no longer runs.

Nothing here ever holds a secret: details are names, ARNs, access key ids and IAM error codes.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bot.domain.plan import Step
from bot.storage.sqlite import Store

LEASE_SECONDS = 300  # renewed after every step; a step's retries take well under a minute


class JournalState:
    """The three states of a journaled step."""

    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class Entry:
    """One journaled step. ``detail`` holds non-secret facts (``access_key_id``, ``error``…)."""

    index: int
    label: str
    state: str
    attempts: int
    detail: dict[str, object] = field(default_factory=dict)


def process_owner() -> str:
    """A lease owner id for this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs (or is a zombie).

    An owner on another host is never "gone" by this test; its lease must expire instead.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        # Field 3 is the state; a killed child its parent has not reaped yet shows "Z".
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _iso(value: datetime) -> str:
    return value.isoformat()


class Journal:
    """Journal rows, stored plans and leases for provisioning.

    Args:
        store: the bot's store (its connection, transactions and clock are used).
        owner: this process's lease owner id (:func:`process_owner`).
        is_gone: tells whether another owner's process has died (:func:`owner_is_gone`).
        lease_seconds: how long a claim holds without renewal.
    """

    def __init__(
        self,
        store: Store,
        owner: str | None = None,
        is_gone: Callable[[str], bool] = owner_is_gone,
        lease_seconds: float = LEASE_SECONDS,
    ) -> None:
        self.store = store
        self.owner = owner or process_owner()
        self.is_gone = is_gone
        self.lease_seconds = lease_seconds

    # -- lease ---------------------------------------------------------------------------------

    def lease_fields(self) -> dict[str, object]:
        """Columns that take the lease, for the ``approved → provisioning`` compare-and-set."""
        return {"lease_owner": self.owner, "lease_until": self.store.clock() + timedelta(seconds=self.lease_seconds)}

    def claim(self, request_id: str, status: str = "provisioning") -> bool:
        """Take the lease on a request in ``status`` if it is free; True when this process has it.

        One ``BEGIN IMMEDIATE`` transaction: of several processes claiming at once, one wins.
        """
        now = self.store.clock()
        with self.store.transaction() as conn:
            row = conn.execute(
                "SELECT lease_owner, lease_until FROM requests WHERE id = ? AND status = ?", (request_id, status)
            ).fetchone()
            if row is None:
                return False
            owner, until = row
            # Our own owner id is not "free": this process may be running it on another thread.
            free = owner is None or until is None or datetime.fromisoformat(until) <= now or self.is_gone(owner)
            if not free:
                return False
            conn.execute(
                "UPDATE requests SET lease_owner = ?, lease_until = ? WHERE id = ?",
                (self.owner, _iso(now + timedelta(seconds=self.lease_seconds)), request_id),
            )
        return True

    def renew(self, request_id: str) -> bool:
        """Extend this process's lease; False when another process has taken it."""
        until = self.store.clock() + timedelta(seconds=self.lease_seconds)
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "UPDATE requests SET lease_until = ? WHERE id = ? AND lease_owner = ?",
                (_iso(until), request_id, self.owner),
            )
            return cursor.rowcount == 1

    def release(self, request_id: str) -> None:
        """Give the lease up (only if this process holds it)."""
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE requests SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                (request_id, self.owner),
            )

    # -- plan ----------------------------------------------------------------------------------

    def save_plan(self, request_id: str, steps: Sequence[Step], console_url: str | None) -> None:
        """Store the plan once; a second call for the same request keeps the first plan."""
        plan = json.dumps([step.model_dump(mode="json") for step in steps])
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO provisioning_plans (request_id, plan, console_url, created_at) "
                "VALUES (?, ?, ?, ?)",
                (request_id, plan, console_url, _iso(self.store.clock())),
            )

    def plan(self, request_id: str) -> tuple[list[Step], str | None] | None:
        """The stored ``(steps, console_url)`` of a request, or None when none was saved."""
        row = self.store.db.conn.execute(
            "SELECT plan, console_url FROM provisioning_plans WHERE request_id = ?", (request_id,)
        ).fetchone()
        if row is None:
            return None
        return [Step.model_validate(item) for item in json.loads(row[0])], row[1]

    # -- steps ---------------------------------------------------------------------------------

    def progress(self, request_id: str) -> tuple[int, int] | None:
        """``(steps done, steps in the plan)`` of a request, or None before a plan is saved."""
        saved = self.plan(request_id)
        if saved is None:
            return None
        done = sum(1 for e in self.entries(request_id).values() if e.state == JournalState.DONE)
        return done, len(saved[0])

    def entries(self, request_id: str) -> dict[int, Entry]:
        """Every journaled step of a request, by step index."""
        rows = self.store.db.conn.execute(
            "SELECT step_index, label, state, attempts, detail FROM journal WHERE request_id = ? ORDER BY step_index",
            (request_id,),
        ).fetchall()
        return {row[0]: Entry(row[0], row[1], row[2], row[3], json.loads(row[4])) for row in rows}

    def start(self, request_id: str, index: int, label: str) -> None:
        """Record that step ``index`` is about to call IAM (a re-run counts another attempt)."""
        now = _iso(self.store.clock())
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO journal (request_id, step_index, label, state, attempts, detail, updated_at) "
                "VALUES (?, ?, ?, 'started', 1, '{}', ?) "
                "ON CONFLICT (request_id, step_index) DO UPDATE SET state = 'started', "
                "attempts = attempts + 1, updated_at = excluded.updated_at",
                (request_id, index, label, now),
            )

    def finish(self, request_id: str, index: int, detail: dict[str, object] | None = None) -> None:
        """Record that step ``index`` is done; ``detail`` must hold no secret."""
        self._end(request_id, index, JournalState.DONE, detail or {})

    def fail(self, request_id: str, index: int, detail: dict[str, object]) -> None:
        """Record that step ``index`` failed for good (``detail``: IAM error code and message)."""
        self._end(request_id, index, JournalState.FAILED, detail)

    def _end(self, request_id: str, index: int, state: str, detail: dict[str, object]) -> None:
        with self.store.transaction() as conn:
            conn.execute(
                "UPDATE journal SET state = ?, detail = ?, updated_at = ? WHERE request_id = ? AND step_index = ?",
                (state, json.dumps(detail, sort_keys=True), _iso(self.store.clock()), request_id, index),
            )

    # -- links of an interrupted run -----------------------------------------------------------

    def discard_unsent_links(self, request_id: str) -> int:
        """Retire the unrevealed one-time links of a previous, interrupted run of this request.

        A run seals every user's credentials, sends the links, then marks the request
        provisioned. A crash before the last step leaves ``sealed`` rows whose keys died with
        the process (or sit in links already sent): the resumed run makes new credentials, so
        those links could only reveal replaced ones, and left alone they would expire later
        and switch off the new credentials (link expiry deactivates the key and locks the
        password). Retired links answer 410. Call this only while the request is still
        ``provisioning``. Returns how many were retired (audited).
        """
        with self.store.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET state = 'superseded', nonce = NULL, ciphertext = NULL "
                "WHERE request_id = ? AND state = 'sealed' "
                "AND (SELECT status FROM requests WHERE id = ?) = 'provisioning'",
                (request_id, request_id),
            )
            count = cursor.rowcount
        if count:
            self.store.audit("unsent_links_discarded", request_id=request_id, detail={"count": count})
        return count
