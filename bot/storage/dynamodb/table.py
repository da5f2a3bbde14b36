"""The DynamoDB table of the bot: its keys and indexes, typed attribute values, and one transaction
helper that every state change goes through with its audit row.

One table (``DYNAMODB_TABLE``), every kind of item in it under a partition key ``pk`` and a sort key
``sk``, with three overloaded global secondary indexes (``gsi1``…``gsi3``, keys ``gsiNpk`` and
``gsiNsk``). docs/dynamodb.md lists each access pattern and the key or index it uses; none scans the
table. Times are ISO-8601 UTC strings, so their text order is time order.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config
from botocore.exceptions import ClientError

from bot.domain.models import utcnow

log = logging.getLogger("bot.storage")

SCHEMA_VERSION = 2  # of the items' layout; the META item records the version a table was made with
# 2: a link's item carries ``seal`` (bot.domain.seal.RecordSeal); a table at 1 gets an
# ``UPGRADE#seal_link_records`` item when it moves to 2, and the bot seals its older links once.
GSIS = ("gsi1", "gsi2", "gsi3")
TTL_ATTRIBUTE = "expires_ttl"  # epoch seconds; DynamoDB deletes lazily: garbage collection only
RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, connect_timeout=5, read_timeout=20)
TRANSACTION_MAX_ITEMS = 100  # TransactWriteItems: at most 100 actions


Audited = tuple[str, str | None, str | None, dict]  # event, request id, actor, detail


class TableMissing(RuntimeError):
    """``DYNAMODB_TABLE`` does not exist (or is not the bot's): ``iam-user-bot init-store`` creates it."""


class Conflict(Exception):
    """A transaction's condition failed: another caller moved first (nothing was written)."""


_serialize = TypeSerializer().serialize
_deserialize = TypeDeserializer().deserialize


def iso(value: datetime | None) -> str | None:
    """A stored time: ISO-8601 UTC text."""
    return value.isoformat() if value else None


def parse_time(value: object) -> datetime | None:
    """Inverse of :func:`iso`; None for an absent attribute."""
    return datetime.fromisoformat(str(value)) if value else None


def sequence() -> str:
    """A sort key that orders audit rows as written: this host's nanosecond clock, then randomness
    (rows of one process are in write order; of several hosts, in clock order)."""
    return f"{time.time_ns():020d}-{secrets.token_hex(4)}"


def encode(item: dict[str, Any]) -> dict[str, Any]:
    """Plain values → DynamoDB attribute values (None values are left out; bytes are B)."""
    return {key: _serialize(value) for key, value in item.items() if value is not None}


def decode(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB attribute values → plain values (numbers as int, binary as bytes)."""
    plain = {key: _deserialize(value) for key, value in item.items()}
    for key, value in plain.items():
        if hasattr(value, "value") and isinstance(getattr(value, "value", None), bytes):  # boto3 Binary
            plain[key] = bytes(value.value)
        elif type(value).__name__ == "Decimal":
            plain[key] = int(value)
    return plain


BATCH_GET_MAX = 100  # keys per BatchGetItem call (DynamoDB's limit)
BATCH_GET_ATTEMPTS = 5


class Table:
    """A DynamoDB table through boto3's low-level client, and the bot's transaction helper.

    Args:
        name: ``DYNAMODB_TABLE``; client: a boto3 DynamoDB client (one is made with standard retries
            and ``AWS_ENDPOINT_URL`` from the environment when none is given).
    """

    def __init__(self, name: str, client: Any | None = None, clock: Callable[[], datetime] = utcnow) -> None:
        self.name = name
        self.clock = clock
        if client is None:
            session = boto3.session.Session()
            if session.region_name is None:  # a guess could find, or create, another region's table
                raise TableMissing(f"no AWS region for DynamoDB table {name}: set AWS_REGION or AWS_DEFAULT_REGION")
            client = session.client("dynamodb", config=RETRY_CONFIG, region_name=session.region_name)
        self.client = client

    # -- reads ---------------------------------------------------------------------------------

    def get(self, pk: str, sk: str) -> dict[str, Any] | None:
        """One item, read strongly consistent; None when absent."""
        answer = self.client.get_item(TableName=self.name, Key=encode({"pk": pk, "sk": sk}), ConsistentRead=True)
        return decode(answer["Item"]) if "Item" in answer else None

    def get_many(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Several items by ``(pk, sk)``, read strongly consistent, in one ``BatchGetItem`` per 100
        keys (DynamoDB's limit) plus a retry of any it left unprocessed; absent ones are left out.

        Raises:
            RuntimeError: DynamoDB still left keys unprocessed after five attempts (throttling).
        """
        found: dict[tuple[str, str], dict[str, Any]] = {}
        unique = list(dict.fromkeys(keys))
        for start in range(0, len(unique), BATCH_GET_MAX):
            wanted = [encode({"pk": pk, "sk": sk}) for pk, sk in unique[start : start + BATCH_GET_MAX]]
            for attempt in range(BATCH_GET_ATTEMPTS):
                request = {self.name: {"Keys": wanted, "ConsistentRead": True}}
                answer = self.client.batch_get_item(RequestItems=request)
                for item in answer.get("Responses", {}).get(self.name, []):
                    plain = decode(item)
                    found[(plain["pk"], plain["sk"])] = plain
                wanted = answer.get("UnprocessedKeys", {}).get(self.name, {}).get("Keys", [])
                if not wanted:
                    break
                time.sleep(0.05 * 2**attempt)
            else:
                raise RuntimeError(f"DynamoDB left {len(wanted)} keys of {self.name} unprocessed")
        return found

    def query(
        self,
        key: str,
        value: str,
        *,
        index: str | None = None,
        sk_prefix: str | None = None,
        sk_below: str | None = None,
        newest_first: bool = False,
        limit: int | None = None,
        filter_expression: str | None = None,
        filter_values: dict[str, Any] | None = None,
        filter_names: dict[str, str] | None = None,
    ) -> list[dict[str, Any]]:
        """Items whose partition key ``key`` equals ``value`` (on ``index`` when given), in sort key
        order, all pages read; ``sk_prefix``/``sk_below`` narrow the sort key (``<``).

        Index reads are eventually consistent (DynamoDB offers nothing else on a GSI); table reads
        are strongly consistent.
        """
        sort = f"{index}sk" if index else "sk"
        condition = "#k = :k"
        names = {"#k": key, **(filter_names or {})}
        values: dict[str, Any] = {":k": value, **(filter_values or {})}
        if sk_prefix is not None:
            condition += " AND begins_with(#s, :p)"
            names["#s"], values[":p"] = sort, sk_prefix
        elif sk_below is not None:
            condition += " AND #s < :b"
            names["#s"], values[":b"] = sort, sk_below
        params: dict[str, Any] = {
            "TableName": self.name,
            "KeyConditionExpression": condition,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": encode(values),
            "ScanIndexForward": not newest_first,
        }
        if index:
            params["IndexName"] = index
        else:
            params["ConsistentRead"] = True
        if filter_expression:
            params["FilterExpression"] = filter_expression
        items: list[dict[str, Any]] = []
        for page in self.client.get_paginator("query").paginate(**params):
            items.extend(decode(item) for item in page["Items"])
            if limit is not None and len(items) >= limit:
                return items[:limit]
        return items

    # -- writes ----------------------------------------------------------------------------------

    def audit_put(self, event: str, request_id: str | None, actor: str | None, detail: dict | None) -> dict[str, Any]:
        """The Put of one audit row, for a transaction (append-only: never overwritten)."""
        seq = sequence()
        item = {
            "pk": f"AUDIT#{request_id or '-'}",
            "sk": seq,
            "gsi1pk": "AUDIT",
            "gsi1sk": seq,
            "kind": "audit",
            "at": iso(self.clock()),
            "request_id": request_id,
            "actor": actor,
            "event": event,
            "detail": json.dumps(detail or {}, sort_keys=True),
        }
        return self.put(item, condition="attribute_not_exists(pk)")

    def put(
        self,
        item: dict[str, Any],
        condition: str | None = None,
        values: dict | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A Put action for :meth:`transact`."""
        action: dict[str, Any] = {"TableName": self.name, "Item": encode(item)}
        if condition:
            action["ConditionExpression"] = condition
        if values:
            action["ExpressionAttributeValues"] = encode(values)
        if names:
            action["ExpressionAttributeNames"] = names
        return {"Put": action}

    def update(
        self,
        pk: str,
        sk: str,
        *,
        set_: dict[str, Any] | None = None,
        set_raw: dict[str, str] | None = None,
        remove: Iterable[str] = (),
        add: dict[str, int] | None = None,
        condition: str | None = None,
        values: dict[str, Any] | None = None,
        names: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """An Update action for :meth:`transact`: ``set_`` attributes (a None value removes it),
        ``set_raw`` attributes to expressions (``if_not_exists(detail, :empty)``), ``remove``
        attributes, ``add`` to numbers; ``condition`` and ``set_raw`` may use ``values``/``names``."""
        all_names = dict(names or {})
        all_values = dict(values or {})
        sets, removes, adds = [], list(remove), []
        for number, (attribute, value) in enumerate((set_ or {}).items()):
            all_names[f"#u{number}"] = attribute
            if value is None:
                removes.append(attribute)
                del all_names[f"#u{number}"]
                continue
            sets.append(f"#u{number} = :u{number}")
            all_values[f":u{number}"] = value
        for number, (attribute, expression) in enumerate((set_raw or {}).items()):
            all_names[f"#x{number}"] = attribute
            sets.append(f"#x{number} = {expression}")
        for number, attribute in enumerate(removes):
            all_names[f"#r{number}"] = attribute
        for number, (attribute, amount) in enumerate((add or {}).items()):
            all_names[f"#a{number}"] = attribute
            all_values[f":a{number}"] = amount
            adds.append(f"#a{number} :a{number}")
        clauses = []
        if sets:
            clauses.append("SET " + ", ".join(sets))
        if removes:
            clauses.append("REMOVE " + ", ".join(f"#r{n}" for n in range(len(removes))))
        if adds:
            clauses.append("ADD " + ", ".join(adds))
        action: dict[str, Any] = {
            "TableName": self.name,
            "Key": encode({"pk": pk, "sk": sk}),
            "UpdateExpression": " ".join(clauses),
        }
        if condition:
            action["ConditionExpression"] = condition
        _used(action, all_names, all_values)
        return {"Update": action}

    def check(self, pk: str, sk: str, condition: str, values: dict | None = None, names: dict | None = None) -> dict:
        """A ConditionCheck action for :meth:`transact` (the item is not written)."""
        action: dict[str, Any] = {
            "TableName": self.name,
            "Key": encode({"pk": pk, "sk": sk}),
            "ConditionExpression": condition,
        }
        _used(action, names or {}, values or {})
        return {"ConditionCheck": action}

    def transact(
        self, actions: Sequence[dict[str, Any]], audited: Sequence[tuple[str, str | None, str | None, dict]]
    ) -> None:
        """All of ``actions`` or none (``TransactWriteItems``, at most 100); each audit row in
        ``audited`` (event, request id, actor, detail) is logged once the transaction committed.

        Raises:
            Conflict: a condition failed (another caller moved first); nothing was written.
        """
        assert len(actions) <= TRANSACTION_MAX_ITEMS, "a DynamoDB transaction holds at most 100 actions"
        try:
            self.client.transact_write_items(TransactItems=list(actions))
        except ClientError as error:
            reasons = error.response.get("CancellationReasons") or []
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException" and any(
                r.get("Code") == "ConditionalCheckFailed" for r in reasons
            ):
                raise Conflict from None
            if error.response.get("Error", {}).get("Code") == "TransactionCanceledException" and any(
                r.get("Code") == "TransactionConflict" for r in reasons
            ):
                raise Conflict from None  # another transaction touched the same item at once
            raise
        for event, request_id, actor, detail in audited:
            ids = {"request_id": request_id, "slack_user": actor, "audit_event": event}
            shown = {k: f"{v[:6]}…" if k == "secret_id" and isinstance(v, str) else v for k, v in detail.items()}
            log.info("audit %s %s", event, json.dumps(shown, sort_keys=True, default=str), extra=ids)

    def write(self, audit: tuple[str, str | None, str | None, dict | None], *actions: dict[str, Any]) -> bool:
        """``actions`` and the audit row ``audit`` in one transaction; False when a condition failed."""
        event, request_id, actor, detail = audit
        try:
            self.transact(
                [*actions, self.audit_put(event, request_id, actor, detail)], [(event, request_id, actor, detail or {})]
            )
        except Conflict:
            return False
        return True


def _used(action: dict[str, Any], names: dict[str, str], values: dict[str, Any]) -> None:
    """Attach only the ``#names`` and ``:values`` the action's expressions use (DynamoDB refuses
    unused ones)."""
    text = " ".join(str(action.get(k, "")) for k in ("UpdateExpression", "ConditionExpression"))
    used_names = {k: v for k, v in names.items() if re.search(rf"{re.escape(k)}\b", text)}
    used_values = {k: v for k, v in values.items() if re.search(rf"{re.escape(k)}\b", text)}
    if used_names:
        action["ExpressionAttributeNames"] = used_names
    if used_values:
        action["ExpressionAttributeValues"] = encode(used_values)


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    """``items`` in slices of at most ``size``."""
    for start in range(0, len(items), size):
        yield items[start : start + size]
