"""The ``secrets`` table: sealed one-time credentials and their life, as compare-and-sets.

A row holds what the server may know about a one-time secret: the link id, the request, the
recipient's Slack id, the IAM user name and access key id (not secret), whether a console
password was sealed, the AES-GCM ``nonce`` and ``ciphertext`` while the link is unused, the
expiry, and the ``state``. Never the key: that lives only in the link's fragment.

States and the only moves between them (each one ``UPDATE … WHERE state = …`` inside
``BEGIN IMMEDIATE`` with its audit row, so two workers or two clicks never both win)::

    sealed ──reveal──▶ revealed            (ciphertext deleted in the same step)
      │ ──expiry───▶ expired               (ciphertext deleted; key deactivated after)
      └ ──re-issue─▶ superseded            (ciphertext deleted; new credentials, new row)

Side flags, each set once by a compare-and-set: ``alerted_at`` (a second reveal attempt was
reported), ``reissued_at`` (new credentials were minted to replace this row's),
``expiry_done_at`` (the IAM work after expiry finished).

This class is mixed into :class:`bot.storage.sqlite.Store`, which provides ``transaction``,
``_audit`` and ``clock``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SEALED, REVEALED, EXPIRED, SUPERSEDED = "sealed", "revealed", "expired", "superseded"
SECRET_STATES = (SEALED, REVEALED, EXPIRED, SUPERSEDED)

# Migration (appended to bot.store.MIGRATIONS): columns for the link's life after sealing.
SECRETS_LIFECYCLE_MIGRATION = """
    ALTER TABLE secrets ADD COLUMN access_key_id TEXT;
    ALTER TABLE secrets ADD COLUMN console INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE secrets ADD COLUMN replaces TEXT;
    ALTER TABLE secrets ADD COLUMN notice_channel TEXT;
    ALTER TABLE secrets ADD COLUMN notice_ts TEXT;
    ALTER TABLE secrets ADD COLUMN alerted_at TEXT;
    ALTER TABLE secrets ADD COLUMN expired_at TEXT;
    ALTER TABLE secrets ADD COLUMN expiry_done_at TEXT;
    ALTER TABLE secrets ADD COLUMN reissued_at TEXT;
    ALTER TABLE secrets ADD COLUMN reissued_by TEXT;
    CREATE INDEX secrets_state_expiry ON secrets(state, expires_at);
    """


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: object) -> datetime | None:
    return datetime.fromisoformat(str(value)) if value else None


@dataclass(frozen=True)
class SealedSecretRow:
    """A one-time secret's metadata (never its ciphertext, which is gone once handed out).

    Times are aware UTC. ``access_key_id`` is None when no access key was sealed; ``console``
    says whether a console password was.
    """

    id: str
    request_id: str
    recipient: str
    user_name: str
    state: str
    created_at: datetime
    expires_at: datetime
    revealed_at: datetime | None
    access_key_id: str | None = None
    console: bool = False
    replaces: str | None = None
    notice_channel: str | None = None
    notice_ts: str | None = None
    alerted_at: datetime | None = None
    expired_at: datetime | None = None
    expiry_done_at: datetime | None = None
    reissued_at: datetime | None = None
    reissued_by: str | None = None


def _row(row: dict[str, Any]) -> SealedSecretRow:
    return SealedSecretRow(
        id=str(row["id"]),
        request_id=str(row["request_id"]),
        recipient=str(row["recipient"]),
        user_name=str(row["user_name"]),
        state=str(row["state"]),
        created_at=datetime.fromisoformat(str(row["created_at"])),
        expires_at=datetime.fromisoformat(str(row["expires_at"])),
        revealed_at=_dt(row["revealed_at"]),
        access_key_id=row["access_key_id"],
        console=bool(row["console"]),
        replaces=row["replaces"],
        notice_channel=row["notice_channel"],
        notice_ts=row["notice_ts"],
        alerted_at=_dt(row["alerted_at"]),
        expired_at=_dt(row["expired_at"]),
        expiry_done_at=_dt(row["expiry_done_at"]),
        reissued_at=_dt(row["reissued_at"]),
        reissued_by=row["reissued_by"],
    )


_METADATA = (
    "id, request_id, recipient, user_name, state, created_at, expires_at, revealed_at, access_key_id, console, "
    "replaces, notice_channel, notice_ts, alerted_at, expired_at, expiry_done_at, reissued_at, reissued_by"
)


class SecretStore:
    """Reads and compare-and-sets of the ``secrets`` table (mixed into :class:`bot.storage.sqlite.Store`)."""

    clock: Callable[[], datetime]
    db: Any
    transaction: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _audit: Callable[..., None]

    def _secret_query(self, conn: sqlite3.Connection, where: str, args: Iterable[object]) -> list[SealedSecretRow]:
        cursor = conn.execute(f"SELECT {_METADATA} FROM secrets WHERE {where}", list(args))  # noqa: S608 - ours
        names = [c[0] for c in cursor.description]
        return [_row(dict(zip(names, values, strict=True))) for values in cursor.fetchall()]

    def _one(self, conn: sqlite3.Connection, secret_id: str) -> SealedSecretRow | None:
        rows = self._secret_query(conn, "id = ?", [secret_id])
        return rows[0] if rows else None

    def put_secret(
        self,
        secret_id: str,
        *,
        request_id: str,
        recipient: str,
        user_name: str,
        nonce: bytes,
        ciphertext: bytes,
        expires_at: datetime,
        access_key_id: str | None = None,
        console: bool = False,
        replaces: str | None = None,
    ) -> None:
        """Store a sealed secret: ciphertext and nonce only, the key is never given to us.

        ``replaces`` names the secret this one re-issues (audited as ``link_reissued``).
        """
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO secrets (id, request_id, recipient, user_name, nonce, ciphertext, state, created_at, "
                "expires_at, access_key_id, console, replaces) VALUES (?, ?, ?, ?, ?, ?, 'sealed', ?, ?, ?, ?, ?)",
                (
                    secret_id,
                    request_id,
                    recipient,
                    user_name,
                    nonce,
                    ciphertext,
                    _iso(self.clock()),
                    _iso(expires_at),
                    access_key_id,
                    int(console),
                    replaces,
                ),
            )
            detail: dict[str, object] = {
                "secret_id": secret_id,
                "user_name": user_name,
                "recipient": recipient,
                "expires_at": _iso(expires_at),
            }
            if replaces:
                detail["replaces"] = replaces
            self._audit(conn, "link_reissued" if replaces else "link_issued", request_id, None, detail)

    def claim_secret(self, secret_id: str) -> tuple[bytes, bytes] | None:
        """Hand out a sealed secret once: returns ``(nonce, ciphertext)`` and deletes them.

        The read and the delete are one ``BEGIN IMMEDIATE`` transaction, so two concurrent
        reveals (threads or processes) get exactly one answer. Returns None for an unknown,
        used, replaced or expired id (expired ones are left for the expiry sweep, which also
        deactivates their access key).
        """
        now = self.clock()
        with self.transaction() as conn:
            row = conn.execute(
                "SELECT request_id, user_name, nonce, ciphertext, expires_at FROM secrets "
                "WHERE id = ? AND state = 'sealed'",
                (secret_id,),
            ).fetchone()
            if row is None or row[2] is None:
                return None
            request_id, user_name, nonce, ciphertext, expires_at = row
            if datetime.fromisoformat(expires_at) <= now:
                return None
            conn.execute(
                "UPDATE secrets SET state = 'revealed', nonce = NULL, ciphertext = NULL, revealed_at = ? "
                "WHERE id = ? AND state = 'sealed'",
                (_iso(now), secret_id),
            )
            self._audit(conn, "link_revealed", request_id, None, {"secret_id": secret_id, "user_name": user_name})
        return bytes(nonce), bytes(ciphertext)

    def secret_row(self, secret_id: str) -> SealedSecretRow | None:
        """A secret's metadata (never its ciphertext), or None."""
        return self._one(self.db.conn, secret_id)

    def secrets_for_request(self, request_id: str) -> list[SealedSecretRow]:
        """Metadata of every secret issued for a request, oldest first."""
        return self._secret_query(self.db.conn, "request_id = ? ORDER BY created_at, rowid", [request_id])

    def sealed_secrets_for_recipient(self, user_id: str, *, limit: int = 20) -> list[SealedSecretRow]:
        """Metadata of ``user_id``'s secrets not yet revealed (state ``sealed``), newest first.

        A link past its expiry stays ``sealed`` only until the expiry sweep (at most a sweep
        interval), then becomes ``expired`` and leaves this list: from then on an approver
        re-issues. Never returns ciphertext.
        """
        return self._secret_query(
            self.db.conn,
            "recipient = ? AND state = 'sealed' ORDER BY created_at DESC, rowid DESC LIMIT ?",
            [user_id, limit],
        )

    def set_secret_notice(self, secret_id: str, channel: str, ts: str) -> None:
        """Remember the recipient's persistent DM notice of this secret, to update it later."""
        with self.transaction() as conn:
            conn.execute("UPDATE secrets SET notice_channel = ?, notice_ts = ? WHERE id = ?", (channel, ts, secret_id))

    def mark_reuse(self, secret_id: str) -> SealedSecretRow | None:
        """Record a reveal attempt on an already revealed secret, once per secret.

        Returns the row when this call set ``alerted_at`` (the caller then alerts), None when
        the secret is not revealed or was already reported. Audited as ``link_reuse_detected``.
        """
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET alerted_at = ? WHERE id = ? AND state = 'revealed' AND alerted_at IS NULL",
                (_iso(self.clock()), secret_id),
            )
            if cursor.rowcount != 1:
                return None
            row = self._one(conn, secret_id)
            assert row is not None
            self._audit(
                conn,
                "link_reuse_detected",
                row.request_id,
                None,
                {"secret_id": secret_id, "user_name": row.user_name, "recipient": row.recipient},
            )
            return row

    # -- expiry ----------------------------------------------------------------------------

    def due_expiries(self, lease_seconds: float, limit: int = 100) -> list[str]:
        """Ids of secrets whose expiry work is due now: sealed ones past ``expires_at``, and
        expired ones whose IAM work was claimed more than ``lease_seconds`` ago but never
        finished (the worker that claimed it died)."""
        now = self.clock()
        stale = now - timedelta(seconds=lease_seconds)
        with self.transaction() as conn:
            rows = conn.execute(
                "SELECT id FROM secrets WHERE (state = 'sealed' AND expires_at <= ?) "
                "OR (state = 'expired' AND expiry_done_at IS NULL AND expired_at <= ?) "
                "ORDER BY expires_at LIMIT ?",
                (_iso(now), _iso(stale), limit),
            ).fetchall()
        return [str(r[0]) for r in rows]

    def claim_expiry(self, secret_id: str, lease_seconds: float) -> SealedSecretRow | None:
        """Take the expiry work of one secret: sealed → expired (ciphertext deleted), or retake
        a stale claim. Returns the row when this caller won, else None. Audited ``link_expired``.
        """
        now = self.clock()
        stale = now - timedelta(seconds=lease_seconds)
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET state = 'expired', nonce = NULL, ciphertext = NULL, expired_at = ? "
                "WHERE id = ? AND state = 'sealed' AND expires_at <= ?",
                (_iso(now), secret_id, _iso(now)),
            )
            event = "link_expired"
            if cursor.rowcount != 1:
                cursor = conn.execute(
                    "UPDATE secrets SET expired_at = ? WHERE id = ? AND state = 'expired' "
                    "AND expiry_done_at IS NULL AND expired_at <= ?",
                    (_iso(now), secret_id, _iso(stale)),
                )
                event = "link_expiry_retried"
                if cursor.rowcount != 1:
                    return None
            row = self._one(conn, secret_id)
            assert row is not None
            self._audit(conn, event, row.request_id, None, {"secret_id": secret_id, "user_name": row.user_name})
            return row

    def finish_expiry(self, secret_id: str, detail: dict[str, object]) -> bool:
        """Mark the IAM work after expiry done (once); ``detail`` is audited (no secrets)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET expiry_done_at = ? WHERE id = ? AND state = 'expired' AND expiry_done_at IS NULL",
                (_iso(self.clock()), secret_id),
            )
            if cursor.rowcount != 1:
                return False
            row = self._one(conn, secret_id)
            assert row is not None
            self._audit(conn, "link_expiry_done", row.request_id, None, {"secret_id": secret_id, **detail})
            return True

    # -- re-issue --------------------------------------------------------------------------

    def claim_reissue(self, secret_id: str, actor: str, states: Iterable[str]) -> SealedSecretRow | None:
        """Take the right to replace this secret's credentials, once.

        Sets ``reissued_at``/``reissued_by`` when the secret is in one of ``states`` and was not
        re-issued yet; a sealed secret must also be unexpired and becomes ``superseded`` (its
        ciphertext deleted, so the old link stops working at once). Returns the row (as it
        was claimed) or None when someone else won or the state does not allow it. Audited
        ``reissue_started``.
        """
        wanted = [s for s in states if s in SECRET_STATES]
        if not wanted:
            return None
        now = self.clock()
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET reissued_at = ?, reissued_by = ?, "
                "state = CASE state WHEN 'sealed' THEN 'superseded' ELSE state END, "
                "nonce = NULL, ciphertext = NULL "
                "WHERE id = ? AND reissued_at IS NULL AND state IN (SELECT value FROM json_each(?)) "
                "AND (state != 'sealed' OR expires_at > ?)",
                (_iso(now), actor, secret_id, json.dumps(wanted), _iso(now)),
            )
            if cursor.rowcount != 1:
                return None
            row = self._one(conn, secret_id)
            assert row is not None
            self._audit(
                conn, "reissue_started", row.request_id, actor, {"secret_id": secret_id, "user_name": row.user_name}
            )
            return row

    def release_reissue(self, secret_id: str, actor: str, error: str) -> None:
        """Give back a re-issue claim after IAM refused, so it can be tried again; audited."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE secrets SET reissued_at = NULL, reissued_by = NULL WHERE id = ? AND reissued_by = ?",
                (secret_id, actor),
            )
            row = self._one(conn, secret_id)
            self._audit(
                conn,
                "reissue_failed",
                row.request_id if row else None,
                actor,
                {"secret_id": secret_id, "error": error},
            )
