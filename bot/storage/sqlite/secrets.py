"""Sealed one-time secrets in SQLite: what the server may know of a credential link, and its moves.

A row holds the digest of the link id (:func:`bot.domain.ids.link_digest`; the link id itself,
which a reveal needs, is never stored), the request, the recipient, the IAM user name and access key id (not
secret), whether a console password was sealed, the AES-GCM ``nonce`` and ``ciphertext`` while the
link is unused, the expiry and the state; never the key, which lives only in the link's
fragment. Every move out of ``sealed`` deletes the ciphertext in the same statement.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from bot.domain.records import NewSecret, SecretRow
from bot.domain.states import SECRET_MOVES, SecretEvent, SecretState, secret_sources
from bot.storage.sqlite.base import SqliteBase, in_list, iso, parse_time

_METADATA = (
    "id, request_id, recipient, user_name, state, created_at, expires_at, revealed_at, access_key_id, console, "
    "replaces, notice_channel, notice_ts, alerted_at, expired_at, expiry_done_at, reissued_at, reissued_by, seal"
)
_TIMES = ("created_at", "expires_at", "revealed_at", "alerted_at", "expired_at", "expiry_done_at", "reissued_at")


def _secret(row: dict[str, Any]) -> SecretRow:
    fields = {**row, **{name: parse_time(row[name]) for name in _TIMES}}
    return SecretRow(**{**fields, "state": SecretState(row["state"]), "console": bool(row["console"])})


class SecretTables(SqliteBase):
    """The ``secrets`` table."""

    def _secrets(self, conn: sqlite3.Connection, where: str, args: Iterable[object]) -> list[SecretRow]:
        return [_secret(row) for row in self.rows(conn, f"SELECT {_METADATA} FROM secrets WHERE {where}", list(args))]

    def _one(self, conn: sqlite3.Connection, secret_id: str) -> SecretRow | None:
        rows = self._secrets(conn, "id = ?", [secret_id])
        return rows[0] if rows else None

    def put_secret(self, secret: NewSecret) -> None:
        """Store a sealed secret: ciphertext and nonce only, the key is never given to us."""
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO secrets (id, request_id, recipient, user_name, nonce, ciphertext, state, created_at, "
                "expires_at, access_key_id, console, replaces, seal) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    secret.secret_id,
                    secret.request_id,
                    secret.recipient,
                    secret.user_name,
                    secret.nonce,
                    secret.ciphertext,
                    str(SecretState.SEALED),
                    iso(self.clock()),
                    iso(secret.expires_at),
                    secret.access_key_id,
                    int(secret.console),
                    secret.replaces,
                    secret.seal,
                ),
            )
            detail: dict[str, object] = {
                "secret_id": secret.secret_id,
                "user_name": secret.user_name,
                "recipient": secret.recipient,
                "expires_at": iso(secret.expires_at),
            }
            if secret.replaces:
                detail["replaces"] = secret.replaces
            event = "link_reissued" if secret.replaces else "link_issued"
            self.write_audit(conn, event, secret.request_id, None, detail)

    def unsealed_secrets(self, limit: int = 500) -> list[SecretRow]:
        """Link records without a seal (written before records were sealed), oldest first."""
        with self.transaction() as conn:
            return self._secrets(conn, "seal IS NULL ORDER BY created_at LIMIT ?", [limit])

    def seal_secret(self, secret_id: str, seal: str) -> bool:
        """Give an unsealed link record its seal (compare-and-set on no seal), audited
        ``link_record_sealed``. False (nothing written) when it has one or is gone."""
        with self.transaction() as conn:
            row = self._one(conn, secret_id)
            if (
                row is None
                or conn.execute("UPDATE secrets SET seal = ? WHERE id = ? AND seal IS NULL", (seal, secret_id)).rowcount
                != 1
            ):
                return False
            self.write_audit(conn, "link_record_sealed", row.request_id, None, {"secret_id": secret_id})
            return True

    def upgrade_pending(self, name: str) -> bool:
        """Whether the one-time upgrade ``name`` is still to be done (a row of ``upgrades``)."""
        with self.transaction() as conn:
            return bool(self.rows(conn, "SELECT name FROM upgrades WHERE name = ?", [name]))

    def finish_upgrade(self, name: str) -> bool:
        """Mark the upgrade ``name`` done (deletes its row), audited ``upgrade_done``."""
        with self.transaction() as conn:
            if conn.execute("DELETE FROM upgrades WHERE name = ?", (name,)).rowcount != 1:
                return False
            self.write_audit(conn, "upgrade_done", None, None, {"upgrade": name})
            return True

    def claim_secret(self, secret_id: str) -> tuple[bytes, bytes] | None:
        """Hand out a sealed secret once: ``(nonce, ciphertext)``, deleted in the same transaction.

        Two concurrent reveals (threads or processes) get exactly one answer. None for an unknown,
        used, replaced or expired id (expired ones are left for the expiry sweep, which also
        deactivates their access key).
        """
        now = iso(self.clock())
        marks, values = in_list(secret_sources(SecretEvent.REVEALED))
        with self.transaction() as conn:
            row = conn.execute(
                f"SELECT request_id, user_name, nonce, ciphertext FROM secrets WHERE id = ? AND state IN ({marks}) "
                "AND expires_at > ? AND ciphertext IS NOT NULL",
                (secret_id, *values, now),
            ).fetchone()
            if row is None:
                return None
            request_id, user_name, nonce, ciphertext = row
            conn.execute(
                "UPDATE secrets SET state = ?, nonce = NULL, ciphertext = NULL, revealed_at = ? WHERE id = ?",
                (str(SECRET_MOVES[SecretState.SEALED, SecretEvent.REVEALED]), now, secret_id),
            )
            detail = {"secret_id": secret_id, "user_name": user_name}
            self.write_audit(conn, str(SecretEvent.REVEALED), request_id, None, detail)
        return bytes(nonce), bytes(ciphertext)

    def secret_row(self, secret_id: str) -> SecretRow | None:
        """A secret's metadata (never its ciphertext), or None."""
        return self._one(self.db.conn, secret_id)

    def secrets_for_request(self, request_id: str) -> list[SecretRow]:
        """Metadata of every secret issued for a request, oldest first."""
        return self._secrets(self.db.conn, "request_id = ? ORDER BY created_at, rowid", [request_id])

    def sealed_secrets_for_recipient(self, user_id: str, *, limit: int = 20) -> list[SecretRow]:
        """Metadata of ``user_id``'s secrets not yet revealed (state ``sealed``), newest first.

        A link past its expiry stays ``sealed`` only until the expiry sweep, then leaves this list.
        """
        return self._secrets(
            self.db.conn,
            "recipient = ? AND state = ? ORDER BY created_at DESC, rowid DESC LIMIT ?",
            [user_id, str(SecretState.SEALED), limit],
        )

    def set_secret_notice(self, secret_id: str, channel: str, ts: str) -> None:
        """Remember the recipient's persistent DM notice of this secret, to update it later."""
        with self.transaction() as conn:
            conn.execute("UPDATE secrets SET notice_channel = ?, notice_ts = ? WHERE id = ?", (channel, ts, secret_id))

    def mark_reuse(self, secret_id: str) -> SecretRow | None:
        """Record a reveal attempt on an already revealed secret, once per secret (audited
        ``link_reuse_detected``); the row when this call set the flag (the caller then alerts)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET alerted_at = ? WHERE id = ? AND state = ? AND alerted_at IS NULL",
                (iso(self.clock()), secret_id, str(SecretState.REVEALED)),
            )
            if cursor.rowcount != 1:
                return None
            row = self._one(conn, secret_id)
            assert row is not None
            detail = {"secret_id": secret_id, "user_name": row.user_name, "recipient": row.recipient}
            self.write_audit(conn, "link_reuse_detected", row.request_id, None, detail)
            return row

    # -- expiry ----------------------------------------------------------------------------

    def due_expiries(self, lease_seconds: float, limit: int = 100) -> list[str]:
        """Ids whose expiry work is due now: sealed ones past ``expires_at``, and expired ones
        whose IAM work was claimed more than ``lease_seconds`` ago but never finished."""
        now = self.clock()
        stale = iso(now - timedelta(seconds=lease_seconds))
        rows = self.db.conn.execute(
            "SELECT id FROM secrets WHERE (state = ? AND expires_at <= ?) "
            "OR (state = ? AND expiry_done_at IS NULL AND expired_at <= ?) ORDER BY expires_at LIMIT ?",
            (str(SecretState.SEALED), iso(now), str(SecretState.EXPIRED), stale, limit),
        ).fetchall()
        return [str(r[0]) for r in rows]

    def claim_expiry(self, secret_id: str, lease_seconds: float) -> SecretRow | None:
        """Take the expiry work of one secret: sealed → expired (ciphertext deleted, audited
        ``link_expired``), or retake a stale claim (``link_expiry_retried``). The row when this
        caller won, else None."""
        now = self.clock()
        stale = iso(now - timedelta(seconds=lease_seconds))
        marks, values = in_list(secret_sources(SecretEvent.EXPIRED))
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET state = ?, nonce = NULL, ciphertext = NULL, expired_at = ? "
                f"WHERE id = ? AND state IN ({marks}) AND expires_at <= ?",
                (str(SecretState.EXPIRED), iso(now), secret_id, *values, iso(now)),
            )
            event = str(SecretEvent.EXPIRED)
            if cursor.rowcount != 1:
                cursor = conn.execute(
                    "UPDATE secrets SET expired_at = ? WHERE id = ? AND state = ? "
                    "AND expiry_done_at IS NULL AND expired_at <= ?",
                    (iso(now), secret_id, str(SecretState.EXPIRED), stale),
                )
                event = "link_expiry_retried"
                if cursor.rowcount != 1:
                    return None
            row = self._one(conn, secret_id)
            assert row is not None
            self.write_audit(conn, event, row.request_id, None, {"secret_id": secret_id, "user_name": row.user_name})
            return row

    def finish_expiry(self, secret_id: str, detail: dict[str, object]) -> bool:
        """Mark the IAM work after expiry done (once); ``detail`` is audited (no secrets)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET expiry_done_at = ? WHERE id = ? AND state = ? AND expiry_done_at IS NULL",
                (iso(self.clock()), secret_id, str(SecretState.EXPIRED)),
            )
            if cursor.rowcount != 1:
                return False
            row = self._one(conn, secret_id)
            assert row is not None
            self.write_audit(conn, "link_expiry_done", row.request_id, None, {"secret_id": secret_id, **detail})
            return True

    # -- re-issue --------------------------------------------------------------------------

    def claim_reissue(self, secret_id: str, actor: str, states: Iterable[str]) -> SecretRow | None:
        """Take the right to replace this secret's credentials, once.

        Sets ``reissued_at``/``reissued_by`` when the secret is in one of ``states`` (and the state
        table lets ``reissue_started`` leave it) and was not re-issued yet; a sealed secret must
        also be unexpired and becomes ``superseded`` (its ciphertext deleted, so the old link stops
        working at once). Returns the row as claimed, or None when someone else won or the state
        does not allow it. Audited ``reissue_started``.
        """
        allowed = set(secret_sources(SecretEvent.REISSUED))
        wanted = [SecretState(s) for s in states if s in {str(a) for a in allowed}]
        if not wanted:
            return None
        now = iso(self.clock())
        marks, values = in_list(wanted)
        sealed, superseded = str(SecretState.SEALED), str(SecretState.SUPERSEDED)
        with self.transaction() as conn:
            cursor = conn.execute(
                "UPDATE secrets SET reissued_at = ?, reissued_by = ?, "
                "state = CASE state WHEN ? THEN ? ELSE state END, nonce = NULL, ciphertext = NULL "
                f"WHERE id = ? AND reissued_at IS NULL AND state IN ({marks}) AND (state != ? OR expires_at > ?)",
                (now, actor, sealed, superseded, secret_id, *values, sealed, now),
            )
            if cursor.rowcount != 1:
                return None
            row = self._one(conn, secret_id)
            assert row is not None
            detail = {"secret_id": secret_id, "user_name": row.user_name}
            self.write_audit(conn, str(SecretEvent.REISSUED), row.request_id, actor, detail)
            return row

    def release_reissue(self, secret_id: str, actor: str, error: str) -> None:
        """Give back a re-issue claim after IAM refused, so it can be tried again; audited."""
        with self.transaction() as conn:
            conn.execute(
                "UPDATE secrets SET reissued_at = NULL, reissued_by = NULL WHERE id = ? AND reissued_by = ?",
                (secret_id, actor),
            )
            row = self._one(conn, secret_id)
            detail = {"secret_id": secret_id, "error": error}
            self.write_audit(conn, "reissue_failed", row.request_id if row else None, actor, detail)
