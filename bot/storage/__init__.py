"""Where the bot's state lives: one interface (:class:`bot.storage.base.Store`), a package per
backend: SQLite (``STORE=sqlite``, the default: one file) and DynamoDB (``STORE=dynamodb``: one
table shared by every process and host).

The only package with SQL or DynamoDB calls; the stages depend on the interface alone.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.storage.base import Store

DEFAULT_DATABASE_PATH = "iam-user-bot.db"


def open_store(settings: Settings) -> Store:
    """The store ``settings`` name: the SQLite file at ``DATABASE_PATH`` (created and migrated), or
    the DynamoDB table ``DYNAMODB_TABLE``.

    Raises:
        bot.storage.dynamodb.TableMissing: the table does not exist or was not set up
            (``iam-user-bot init-store``).
    """
    if settings.store == "dynamodb":
        from bot.storage.dynamodb import DynamoStore

        return DynamoStore(str(settings.dynamodb_table))
    from bot.storage.sqlite import SqliteStore

    return SqliteStore(settings.database_path)


def describe(environ: Mapping[str, str]) -> str:
    """The store the environment names, in words, read leniently (no other setting needed)."""
    if environ.get("STORE", "").strip().lower() == "dynamodb":
        return f"DynamoDB table {environ.get('DYNAMODB_TABLE') or '(DYNAMODB_TABLE unset)'}"
    return f"SQLite file {environ.get('DATABASE_PATH') or DEFAULT_DATABASE_PATH}"


def open_from_environment(environ: Mapping[str, str]) -> Store:
    """The store the environment names (``STORE``, ``DATABASE_PATH``, ``DYNAMODB_TABLE``), for
    commands that need no other setting (``audit``, ``check``). An SQLite file is created and
    migrated if absent; a DynamoDB table must exist.

    Raises:
        bot.storage.dynamodb.TableMissing: as :func:`open_store`.
        ValueError: ``STORE=dynamodb`` without ``DYNAMODB_TABLE``.
    """
    if environ.get("STORE", "").strip().lower() == "dynamodb":
        table = environ.get("DYNAMODB_TABLE")
        if not table:
            raise ValueError("STORE=dynamodb needs DYNAMODB_TABLE")
        from bot.storage.dynamodb import DynamoStore

        return DynamoStore(table)
    from bot.storage.sqlite import SqliteStore

    return SqliteStore(Path(environ.get("DATABASE_PATH") or DEFAULT_DATABASE_PATH))


def init_store(environ: Mapping[str, str]) -> list[str]:
    """Create (or migrate) the store the environment names; idempotent. What was done, in words."""
    if environ.get("STORE", "").strip().lower() == "dynamodb":
        table = environ.get("DYNAMODB_TABLE")
        if not table:
            raise ValueError("STORE=dynamodb needs DYNAMODB_TABLE")
        from bot.storage.dynamodb.schema import create_table
        from bot.storage.dynamodb.table import Table

        return create_table(Table(table))
    store = open_from_environment(environ)
    return [f"{describe(environ)} at schema version {store.schema_version}"]
