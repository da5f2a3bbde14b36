"""Where the bot's state lives: one interface (:class:`bot.storage.base.Store`), a module per backend.

The only package with SQL (or database calls); the stages depend on the interface alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.base import Store


def open_store(settings: Settings) -> Store:
    """The store ``settings`` name: the SQLite file at ``DATABASE_PATH`` (created and migrated)."""
    from bot.storage.sqlite import SqliteStore

    return SqliteStore(settings.database_path)


def open_database(path: Path | str) -> Store:
    """The SQLite store at ``path`` (created and migrated), for commands that need no other setting."""
    from bot.storage.sqlite import SqliteStore

    return SqliteStore(path)
