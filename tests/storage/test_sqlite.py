"""The store: migrations, compare-and-set state changes, append-only audit, one-time claims."""

from __future__ import annotations

import sqlite3
import threading
from datetime import timedelta

import pytest

from bot.domain.models import AccessType, RequestForm, utcnow
from bot.domain.records import NewSecret
from bot.domain.states import RequestEvent, RequestStatus
from bot.storage.sqlite import SqliteStore
from bot.storage.sqlite.schema import SCHEMA_VERSION

FORM = RequestForm(
    recipients=("U1",), user_names=("alice",), access_types=frozenset({AccessType.CONSOLE}), justification="x" * 12
)


def test_new_file_is_migrated_and_reopening_keeps_data(tmp_path) -> None:
    path = tmp_path / "bot.db"
    request = SqliteStore(path).create_request("U9", FORM)
    again = SqliteStore(path)
    assert again.db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert again.db.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert again.get_request(request.id).form == FORM


def test_newer_schema_is_refused(tmp_path) -> None:
    path = tmp_path / "bot.db"
    SqliteStore(path).db.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(RuntimeError, match="newer than this bot"):
        SqliteStore(path)


def test_transition_is_compare_and_set_and_audited(tmp_path) -> None:
    store = SqliteStore(tmp_path / "bot.db")
    request = store.create_request("U9", FORM)
    moved = store.move_request(request.id, RequestEvent.DENIED, actor="U2", decided_by="U2")
    assert moved.status is RequestStatus.DENIED and moved.decided_by == "U2"
    again = store.move_request(request.id, RequestEvent.APPROVED, actor="U3")
    assert again is None
    assert store.get_request(request.id).status is RequestStatus.DENIED
    assert [e.event for e in store.audit_events(request_id=request.id)] == ["filed", "denied"]


def test_concurrent_transitions_have_one_winner(tmp_path) -> None:
    path = tmp_path / "bot.db"
    request = SqliteStore(path).create_request("U9", FORM)
    store = SqliteStore(path)
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def click(actor: str) -> None:
        barrier.wait()
        if store.move_request(request.id, RequestEvent.APPROVED, actor=actor):
            wins.append(actor)

    threads = [threading.Thread(target=click, args=(f"U{i}",)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    assert [e.actor for e in store.audit_events() if e.event == "approved"] == wins


def test_audit_log_is_append_only(tmp_path) -> None:
    store = SqliteStore(tmp_path / "bot.db")
    store.audit("something", actor="U1")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.conn.execute("UPDATE audit SET actor = 'U2'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.conn.execute("DELETE FROM audit")
    assert [e.actor for e in store.audit_events()] == ["U1"]


def test_secret_is_claimed_once_and_ciphertext_deleted(tmp_path) -> None:
    now = utcnow()
    clock = [now]
    store = SqliteStore(tmp_path / "bot.db", clock=lambda: clock[0])
    request = store.create_request("U9", FORM)
    for secret_id in ("live", "late"):
        store.put_secret(
            NewSecret(
                secret_id=secret_id,
                request_id=request.id,
                recipient="U1",
                user_name="alice",
                nonce=b"n" * 12,
                ciphertext=b"c" * 20,
                expires_at=now + timedelta(seconds=60),
            )
        )
    assert store.claim_secret("live") == (b"n" * 12, b"c" * 20)
    assert store.claim_secret("live") is None
    row = store.db.conn.execute("SELECT nonce, ciphertext, state FROM secrets WHERE id = 'live'").fetchone()
    assert row == (None, None, "revealed")
    assert store.claim_secret("unknown") is None
    clock[0] = now + timedelta(seconds=61)
    assert store.claim_secret("late") is None


def test_event_ids_are_remembered_once(tmp_path) -> None:
    store = SqliteStore(tmp_path / "bot.db")
    assert store.remember_event("Ev1") is True
    assert store.remember_event("Ev1") is False
