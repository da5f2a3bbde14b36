"""The store that scales out: one DynamoDB table (``STORE=dynamodb``, ``DYNAMODB_TABLE``) that any
number of processes and hosts share, through boto3.

:class:`DynamoStore` implements :class:`bot.storage.base.Store` with the same behaviour as the
SQLite store (the same contract suite runs on both): every state change is a condition on the
status plus its audit row in one ``TransactWriteItems``; reads on the request path use keys or
indexes, never a scan. docs/dynamodb.md lists the keys, the indexes and every access pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from bot.domain.models import utcnow
from bot.storage.dynamodb.drafts import DraftItems
from bot.storage.dynamodb.journal import JournalItems
from bot.storage.dynamodb.lifecycle import LifecycleItems
from bot.storage.dynamodb.requests import RequestItems
from bot.storage.dynamodb.schema import require_table
from bot.storage.dynamodb.secrets import SecretItems
from bot.storage.dynamodb.table import TableMissing

__all__ = ["DynamoStore", "TableMissing"]


class DynamoStore(RequestItems, JournalItems, SecretItems, DraftItems, LifecycleItems):
    """All reads and writes of the bot's DynamoDB table (see :class:`bot.storage.base.Store`).

    Args:
        table: the table's name; clock: "now"; client: a boto3 DynamoDB client (default: the
            standard boto3 chain, ``AWS_ENDPOINT_URL`` included).

    Raises:
        TableMissing: the table does not exist or was not set up by ``iam-user-bot init-store``.
    """

    def __init__(self, table: str, clock: Callable[[], datetime] = utcnow, client: Any | None = None) -> None:
        super().__init__(table, clock, client)
        require_table(self.table)
