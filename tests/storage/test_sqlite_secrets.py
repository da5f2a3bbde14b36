"""The secrets table: migrations 2 and 6 on an existing file, and each compare-and-set wins once."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import timedelta

import pytest

from bot.domain.ids import link_digest
from bot.domain.models import AccessType, RequestForm, utcnow
from bot.domain.records import NewSecret
from bot.storage.sqlite import SqliteStore
from bot.storage.sqlite.schema import MIGRATIONS, SCHEMA_VERSION

FORM = RequestForm(
    recipients=("U1",), user_names=("alice",), access_types=frozenset({AccessType.CONSOLE}), justification="x" * 12
)


def put(store: SqliteStore, secret_id: str, request_id: str, **extra) -> None:
    store.put_secret(
        NewSecret(
            secret_id=secret_id,
            request_id=request_id,
            recipient="U1",
            user_name="alice",
            nonce=b"n" * 12,
            ciphertext=b"c" * 40,
            expires_at=store.clock() + timedelta(hours=1),
            **extra,
        )
    )


def test_a_version_1_file_with_a_live_secret_is_migrated_and_still_works(tmp_path, clock) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for statement in MIGRATIONS[0].split(";\n"):
        if statement.strip():
            conn.execute(statement)
    now = utcnow()
    conn.execute(
        "INSERT INTO requests (id, requester, status, form, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ("R-OLD22222", "U9", "provisioned", FORM.model_dump_json(), now.isoformat(), now.isoformat()),
    )
    conn.execute(
        "INSERT INTO secrets (id, request_id, recipient, user_name, nonce, ciphertext, state, created_at, expires_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 'sealed', ?, ?)",
        ("oldsecretoldsecret123456", "R-OLD22222", "U1", "alice", b"n" * 12, b"c" * 40, now.isoformat(),
         (now + timedelta(hours=1)).isoformat()),
    )  # fmt: skip
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    assert store.db.conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION >= 2
    assert store.secret_row("oldsecretoldsecret123456") is None  # stored under its digest now
    digest = link_digest("oldsecretoldsecret123456")
    row = store.secret_row(digest)
    assert (row.state, row.access_key_id, row.console, row.reissued_at) == ("sealed", None, False, None)
    assert store.claim_secret(digest) == (b"n" * 12, b"c" * 40)
    assert store.claim_secret(digest) is None


def test_migration_6_leaves_no_link_id_in_the_file_and_keeps_the_audit_log_append_only(tmp_path) -> None:
    """A version-5 file: link ids in the secrets table (id, replaces) and in the audit log."""
    path = tmp_path / "v5.db"
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    for script in MIGRATIONS[:5]:
        for statement in script.split(";\n"):
            if statement.strip():
                conn.execute(statement)
    now = utcnow()
    old, new = "OldLinkIdOldLinkIdOld123", "NewLinkIdNewLinkIdNew456"
    conn.execute(
        "INSERT INTO requests (id, requester, status, form, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ("R-OLD33333", "U9", "provisioned", FORM.model_dump_json(), now.isoformat(), now.isoformat()),
    )
    for secret_id, state, replaces in ((old, "superseded", None), (new, "sealed", old)):
        conn.execute(
            "INSERT INTO secrets (id, request_id, recipient, user_name, nonce, ciphertext, state, created_at, "
            "expires_at, replaces) VALUES (?, 'R-OLD33333', 'U1', 'alice', ?, ?, ?, ?, ?, ?)",
            (secret_id, b"n" * 12, b"c" * 40, state, now.isoformat(), (now + timedelta(hours=1)).isoformat(),
             replaces),
        )  # fmt: skip
    details = ({"secret_id": old, "user_name": "alice"}, {"secret_id": new, "replaces": old}, {"user_name": "bob"})
    for detail in details:
        conn.execute(
            "INSERT INTO audit (at, request_id, event, detail) VALUES (?, 'R-OLD33333', 'link_issued', ?)",
            (now.isoformat(), json.dumps(detail)),
        )
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()

    store = SqliteStore(path)
    assert store.secret_row(link_digest(new)).replaces == link_digest(old)
    assert [e.detail for e in store.audit_events(request_id="R-OLD33333")] == [
        {"secret_id": link_digest(old), "user_name": "alice"},
        {"secret_id": link_digest(new), "replaces": link_digest(old)},
        {"user_name": "bob"},
    ]
    assert store.claim_secret(link_digest(new)) == (b"n" * 12, b"c" * 40)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.db.conn.execute("UPDATE audit SET event = 'forged'")
    store.close()
    files = [p for p in tmp_path.iterdir() if p.name.startswith("v5.db")]
    data = b"".join(p.read_bytes() for p in files)
    assert old.encode() not in data and new.encode() not in data
    assert link_digest(new).encode() in data  # the bytes were read: the digest is there


def test_reveal_reuse_mark_and_reissue_each_win_once(tmp_path, clock) -> None:
    store = SqliteStore(tmp_path / "bot.db", clock=clock)
    request = store.create_request("U9", FORM)
    put(store, "secretAAAAAAAAAAAAAAAAAA", request.id, access_key_id="AKIAOLD", console=True)

    barrier = threading.Barrier(4)
    won: list[object] = []

    def claim() -> None:
        barrier.wait()
        won.append(SqliteStore(store.path, clock=clock).claim_secret("secretAAAAAAAAAAAAAAAAAA"))

    threads = [threading.Thread(target=claim) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(w is not None for w in won) == 1
    assert store.mark_reuse("secretAAAAAAAAAAAAAAAAAA") is not None
    assert store.mark_reuse("secretAAAAAAAAAAAAAAAAAA") is None
    assert store.claim_reissue("secretAAAAAAAAAAAAAAAAAA", "U2", ["sealed"]) is None  # revealed, not sealed
    assert store.claim_reissue("secretAAAAAAAAAAAAAAAAAA", "U2", ["revealed"]).reissued_by == "U2"
    assert store.claim_reissue("secretAAAAAAAAAAAAAAAAAA", "U3", ["revealed"]) is None
    store.release_reissue("secretAAAAAAAAAAAAAAAAAA", "U2", "IAM said no")
    assert store.claim_reissue("secretAAAAAAAAAAAAAAAAAA", "U3", ["revealed"]).reissued_by == "U3"
    events = [e.event for e in store.audit_events(request_id=request.id)]
    assert events == [
        "filed",
        "link_issued",
        "link_revealed",
        "link_reuse_detected",
        "reissue_started",
        "reissue_failed",
        "reissue_started",
    ]


def test_a_sealed_link_past_expiry_can_be_neither_revealed_nor_resent(tmp_path, clock) -> None:
    store = SqliteStore(tmp_path / "bot.db", clock=clock)
    request = store.create_request("U9", FORM)
    put(store, "secretBBBBBBBBBBBBBBBBBB", request.id)
    clock.now += timedelta(hours=2)
    assert store.claim_secret("secretBBBBBBBBBBBBBBBBBB") is None
    assert store.claim_reissue("secretBBBBBBBBBBBBBBBBBB", "U1", ["sealed"]) is None
    assert store.due_expiries(lease_seconds=300) == ["secretBBBBBBBBBBBBBBBBBB"]
    row = store.claim_expiry("secretBBBBBBBBBBBBBBBBBB", lease_seconds=300)
    assert row is not None and row.state == "expired"
    assert store.claim_expiry("secretBBBBBBBBBBBBBBBBBB", lease_seconds=300) is None
    assert store.finish_expiry("secretBBBBBBBBBBBBBBBBBB", {"user_name": "alice"})
    assert not store.finish_expiry("secretBBBBBBBBBBBBBBBBBB", {"user_name": "alice"})
    assert store.due_expiries(lease_seconds=300) == []
    nonce, ciphertext = store.db.conn.execute(
        "SELECT nonce, ciphertext FROM secrets WHERE id = 'secretBBBBBBBBBBBBBBBBBB'"
    ).fetchone()
    assert (nonce, ciphertext) == (None, None)
