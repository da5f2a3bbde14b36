"""The embedded default store: one SQLite file (``DATABASE_PATH``) through sqlite-utils.

:class:`SqliteStore` implements :class:`bot.storage.base.Store`; each table group is a module of
this package on top of :mod:`.base` (connections, transactions, migrations, audit).
"""

from __future__ import annotations

from bot.storage.sqlite.drafts import DraftTables
from bot.storage.sqlite.journal import JournalTables
from bot.storage.sqlite.lifecycle import LifecycleTables
from bot.storage.sqlite.requests import RequestTables
from bot.storage.sqlite.schema import SCHEMA_VERSION
from bot.storage.sqlite.secrets import SecretTables

__all__ = ["SCHEMA_VERSION", "SqliteStore"]


class SqliteStore(RequestTables, JournalTables, SecretTables, DraftTables, LifecycleTables):
    """All reads and writes of the bot's SQLite file (see :class:`bot.storage.base.Store`)."""

    schema_version = SCHEMA_VERSION
