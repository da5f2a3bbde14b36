"""Wizard drafts and remembered Slack event ids in SQLite: short-lived rows that change no status."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.storage.sqlite.base import SqliteBase, iso


class DraftTables(SqliteBase):
    """The ``wizard_drafts`` and ``seen_events`` tables."""

    def put_draft(self, key: str, user_id: str, data: str, max_age_seconds: float = 86400) -> None:
        """Save the form draft under ``key`` (JSON text, holding no plaintext secret); drafts
        untouched for ``max_age_seconds`` are dropped at the same time. Another user's draft
        under the same key is never overwritten."""
        now = self.clock()
        with self.transaction() as conn:
            stale = iso(now - timedelta(seconds=max_age_seconds))
            conn.execute("DELETE FROM wizard_drafts WHERE updated_at < ?", (stale,))
            conn.execute(
                "INSERT INTO wizard_drafts (view_id, user_id, data, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(view_id) DO UPDATE SET data = excluded.data, updated_at = excluded.updated_at "
                "WHERE wizard_drafts.user_id = excluded.user_id",
                (key, user_id, data, iso(now)),
            )

    def get_draft(self, key: str, user_id: str, max_age_seconds: float = 86400) -> str | None:
        """The draft JSON under ``key`` if ``user_id`` started it and it is not stale, else None."""
        cutoff = self.clock() - timedelta(seconds=max_age_seconds)
        row = self.db.conn.execute(
            "SELECT data FROM wizard_drafts WHERE view_id = ? AND user_id = ? AND updated_at >= ?",
            (key, user_id, iso(cutoff)),
        ).fetchone()
        return str(row[0]) if row else None

    def delete_draft(self, key: str) -> bool:
        """Forget a draft; True only for the one caller that removed it, so two concurrent
        submissions of the same last view (a double click, a Slack retry) file one request."""
        with self.transaction() as conn:
            return conn.execute("DELETE FROM wizard_drafts WHERE view_id = ?", (key,)).rowcount == 1

    def remember_event(self, event_id: str) -> bool:
        """Record an Events API ``event_id``; False when it was already recorded (a retry)."""
        with self.transaction() as conn:
            cursor = conn.execute(
                "INSERT OR IGNORE INTO seen_events (event_id, at) VALUES (?, ?)", (event_id, iso(self.clock()))
            )
            return cursor.rowcount == 1

    def forget_events_before(self, cutoff: datetime) -> int:
        """Drop remembered Events API ids older than ``cutoff``; returns how many were dropped.

        Slack retries an event at most three times within about an hour, so a day's memory is
        plenty and keeps ``seen_events`` small.
        """
        with self.transaction() as conn:
            return conn.execute("DELETE FROM seen_events WHERE at < ?", (iso(cutoff),)).rowcount
