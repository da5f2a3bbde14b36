"""``check``'s database line: a file others may read is a warning with its fix; the bot's own
files are created readable by its user only."""

from __future__ import annotations

import os
from pathlib import Path

from bot.ops.check import check_database
from bot.storage.sqlite import SqliteStore


def test_a_database_the_bot_creates_is_0600_with_its_wal_and_shm(tmp_path: Path) -> None:
    previous = os.umask(0o022)  # the usual umask, which would give 0644
    try:
        store = SqliteStore(tmp_path / "bot.db")
        store.audit("probe")
        modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
        line = check_database(tmp_path / "bot.db")
        store.close()
    finally:
        os.umask(previous)
    assert modes == {"bot.db": 0o600, "bot.db-wal": 0o600, "bot.db-shm": 0o600}
    assert line.render().startswith("ok   database:") and "schema version" in line.detail


def test_check_warns_when_group_or_others_can_read_the_database(tmp_path: Path) -> None:
    path = tmp_path / "bot.db"
    SqliteStore(path).close()
    path.chmod(0o644)
    line = check_database(path)
    assert line.ok and line.warn
    assert line.render().startswith(f"warn database: {path} at schema version ")
    # SQLite gives the -wal and -shm files the database file's mode, so all three are named.
    exposed = "bot.db (mode 0644), bot.db-wal (mode 0644), bot.db-shm (mode 0644)"
    assert line.detail.endswith(f", but {exposed} can be read by other users of this machine")
    assert line.fix.startswith(f"chmod 600 {path}") and line.render().endswith(" — fix: " + line.fix)
    path.chmod(0o640)
    assert check_database(path).warn and "0640" in check_database(path).detail
    for file in tmp_path.iterdir():
        file.chmod(0o600)
    assert not check_database(path).warn
