"""Wizard drafts (``DRAFT#<key>``) and remembered Slack event ids (``EVENT#<id>``) in DynamoDB.

Stale drafts are dropped when a draft is saved (index ``gsi1``, ``DRAFTS`` by time) and old event
ids by :meth:`DraftItems.forget_events_before` (``EVENTS`` by time), as in the SQLite store. Both
also carry a TTL attribute, so DynamoDB deletes what is left eventually: garbage collection only,
never what decides whether a draft is stale.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from bot.storage.dynamodb.base import DynamoBase
from bot.storage.dynamodb.table import TTL_ATTRIBUTE, Conflict, iso

GARBAGE_AFTER = timedelta(days=7)  # TTL: DynamoDB may delete the item any time after this


class DraftItems(DynamoBase):
    """Draft and event items."""

    def _ttl(self) -> int:
        return int((self.clock() + GARBAGE_AFTER).timestamp())

    def put_draft(self, key: str, user_id: str, data: str, max_age_seconds: float = 86400) -> None:
        """Save the form draft under ``key``; another user's draft under the same key is replaced
        only once it is stale."""
        now = self.clock()
        stale = iso(now - timedelta(seconds=max_age_seconds))
        self._drop_older_than("DRAFTS", stale)
        item = {
            "pk": f"DRAFT#{key}",
            "sk": "DRAFT",
            "kind": "draft",
            "user_id": user_id,
            "data": data,
            "updated_at": iso(now),
            "gsi1pk": "DRAFTS",
            "gsi1sk": f"{iso(now)}#{key}",
            TTL_ATTRIBUTE: self._ttl(),
        }
        put = self.table.put(
            item,
            condition="attribute_not_exists(pk) OR user_id = :user OR updated_at < :stale",
            values={":user": user_id, ":stale": stale},
        )
        # Another user's live draft under this key is kept (its condition fails), as in SQLite.
        with contextlib.suppress(Conflict):
            self.table.transact([put], [])

    def get_draft(self, key: str, user_id: str, max_age_seconds: float = 86400) -> str | None:
        """The draft under ``key`` if ``user_id`` started it and it is not stale, else None."""
        item = self.table.get(f"DRAFT#{key}", "DRAFT")
        cutoff = iso(self.clock() - timedelta(seconds=max_age_seconds))
        if item is None or item["user_id"] != user_id or item["updated_at"] < cutoff:
            return None
        return str(item["data"])

    def delete_draft(self, key: str) -> bool:
        """Forget a draft; True only for the one caller that removed it."""
        try:
            self.table.client.delete_item(
                TableName=self.table.name,
                Key={"pk": {"S": f"DRAFT#{key}"}, "sk": {"S": "DRAFT"}},
                ConditionExpression="attribute_exists(pk)",
            )
        except self.table.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def remember_event(self, event_id: str) -> bool:
        """Record an Events API ``event_id``; False when it was already recorded (a retry)."""
        now = iso(self.clock())
        item = {
            "pk": f"EVENT#{event_id}",
            "sk": "EVENT",
            "kind": "event",
            "at": now,
            "gsi1pk": "EVENTS",
            "gsi1sk": f"{now}#{event_id}",
            TTL_ATTRIBUTE: self._ttl(),
        }
        try:
            self.table.transact([self.table.put(item, condition="attribute_not_exists(pk)")], [])
        except Conflict:
            return False
        return True

    def forget_events_before(self, cutoff: datetime) -> int:
        """Drop remembered event ids older than ``cutoff``; returns how many were dropped."""
        return self._drop_older_than("EVENTS", iso(cutoff))

    def _drop_older_than(self, listing: str, cutoff: str | None) -> int:
        """Delete the items listed under ``listing`` on ``gsi1`` with a time before ``cutoff`` (each
        only if it is still that old: a draft saved again meanwhile stays); how many went."""
        dropped = 0
        for item in self.table.query("gsi1pk", listing, index="gsi1", sk_below=cutoff):
            try:
                self.table.client.delete_item(
                    TableName=self.table.name,
                    Key={"pk": {"S": item["pk"]}, "sk": {"S": item["sk"]}},
                    ConditionExpression="gsi1sk = :seen",
                    ExpressionAttributeValues={":seen": {"S": item["gsi1sk"]}},
                )
                dropped += 1
            except self.table.client.exceptions.ConditionalCheckFailedException:
                continue  # saved again, or another process dropped it first
        return dropped
