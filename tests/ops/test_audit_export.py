"""``iam-user-bot audit [--since …] [--format csv|json]`` and the append-only audit log."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.domain.models import AccessType, RequestForm
from bot.domain.states import RequestEvent
from bot.storage.sqlite import SqliteStore
from tests.conftest import Clock

START = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, str]:
    """A database with a filed request (09:00), a refused click (10:00) and an approval (11:00)."""
    path = tmp_path / "audit.db"
    clock = Clock(START)
    store = SqliteStore(path, clock=clock)
    form = RequestForm(
        recipients=("U0NEWHIRE1",),
        user_names=("nina",),
        access_types=frozenset({AccessType.PROGRAMMATIC}),
        justification="needs the dev account",
    )
    request = store.create_request("U0REQUEST1", form)
    clock.now = START + timedelta(hours=1)
    store.audit("refused_decision", request_id=request.id, actor="U0STRANGE1", detail={"reason": "Only approvers"})
    clock.now = START + timedelta(hours=2)
    store.move_request(request.id, RequestEvent.APPROVED, actor="U0APPROVE1")
    store.close()
    monkeypatch.setenv("DATABASE_PATH", str(path))
    return path, request.id


def test_json_export_has_every_event_in_order(db, capsys: pytest.CaptureFixture[str]) -> None:
    _, request_id = db
    assert main(["audit", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["event"], r["actor"]) for r in rows] == [
        ("filed", "U0REQUEST1"),
        ("refused_decision", "U0STRANGE1"),
        ("approved", "U0APPROVE1"),
    ]
    assert {r["request_id"] for r in rows} == {request_id}
    assert rows[1]["detail"] == {"reason": "Only approvers"}
    assert datetime.fromisoformat(rows[2]["at"]) == START + timedelta(hours=2)


def test_csv_export_and_since_in_any_time_zone(db, capsys: pytest.CaptureFixture[str]) -> None:
    # 11:30+02:00 is 09:30 UTC: the filing (09:00 UTC) is before it, the other two after.
    assert main(["audit", "--since", "2026-11-30T11:30:00+02:00"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["event"] for r in rows] == ["refused_decision", "approved"]
    assert list(rows[0]) == ["id", "at", "request_id", "actor", "event", "detail"]
    assert json.loads(rows[0]["detail"]) == {"reason": "Only approvers"}
    assert main(["audit", "--since", "2026-11-30T10:30:00"]) == 0  # no offset: read as UTC
    assert [r["event"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))] == ["approved"]


def test_a_file_that_is_not_the_bots_database_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite file" * 100)
    for path in (garbage, tmp_path):  # random bytes; a directory
        monkeypatch.setenv("DATABASE_PATH", str(path))
        assert main(["audit"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("audit: cannot read the audit log at") and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1


def test_bad_since_and_missing_database_exit_2(db, tmp_path: Path, monkeypatch, capsys) -> None:
    assert main(["audit", "--since", "yesterday"]) == 2
    assert "ISO-8601" in capsys.readouterr().err
    monkeypatch.setenv("DATABASE_PATH", str(tmp_path / "nothing-here.db"))
    assert main(["audit"]) == 2
    assert "no database" in capsys.readouterr().err
    assert not (tmp_path / "nothing-here.db").exists()


def test_audit_log_and_approvals_are_append_only(db) -> None:
    path, request_id = db
    with sqlite3.connect(path) as conn:
        for statement in (
            "UPDATE audit SET actor = 'U0SOMEONE1'",
            "DELETE FROM audit",
            "UPDATE approvals SET approver = 'U0SOMEONE1'",
            "DELETE FROM approvals",
        ):
            if "approvals" in statement:
                conn.execute(
                    "INSERT OR IGNORE INTO approvals VALUES (?, 'U0APPROVE1', '2026-11-30T11:00:00+00:00', 'f')",
                    (request_id,),
                )
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                conn.execute(statement)
    assert len(SqliteStore(path).audit_events()) == 3


@pytest.mark.e2e
def test_audit_piped_into_head_ends_quietly(tmp_path: Path) -> None:
    # `iam-user-bot audit | head` used to end with a BrokenPipeError traceback on stderr.
    import subprocess
    import sys

    path = tmp_path / "many.db"
    store = SqliteStore(path)
    for number in range(3000):
        store.audit("refused_decision", actor="U0STRANGE1", detail={"reason": "x" * 40, "n": number})
    store.close()
    command = [sys.executable, "-m", "bot.cli", "audit"]
    env = {"PATH": "/usr/bin:/bin", "DATABASE_PATH": str(path)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().startswith(b"id,at,")
    process.stdout.close()  # what head does after its lines
    _, stderr = process.communicate(timeout=60)
    assert b"Traceback" not in stderr and b"BrokenPipe" not in stderr
