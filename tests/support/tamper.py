"""Someone who can write the bot's store and nothing else: raw writes to the SQLite file (its own
``sqlite3`` connection) or to the DynamoDB table (its own DynamoDB client, as the security
review's forge_table.py did). No bot code runs for these writes, so no rule of the store applies.

``store`` is a second store instance over the same data: what an attacker with write access can
do through the bot's own storage code (create a request, save a review or a plan) needs nothing
more than that access either.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.domain.models import RequestForm
from bot.domain.plan import Step
from bot.domain.states import RequestStatus
from bot.storage.base import Store
from bot.storage.dynamodb import DynamoStore
from bot.storage.sqlite import SqliteStore
from tests.conftest import APPROVAL_CHANNEL
from tests.support.provisioning import Harness, make_harness


class Tamper:
    """Raw writes to one backend's data (``backend`` is ``sqlite`` or ``dynamodb``)."""

    def __init__(self, backend: str, *, db: Path | None = None, table: str | None = None, client: Any = None) -> None:
        self.backend = backend
        self.db = db
        self.table = table
        self.client = client

    def open_store(self) -> Store:
        """A new store instance over the same data, as another process (or the attacker) opens it."""
        if self.backend == "sqlite":
            assert self.db is not None
            return SqliteStore(self.db)
        assert self.table is not None
        return DynamoStore(self.table, client=self.client)

    def _sqlite(self, sql: str, *args: Any) -> None:
        with sqlite3.connect(str(self.db)) as conn:
            conn.execute(sql, args)

    def _key(self, request_id: str, sk: str = "REQ") -> dict[str, Any]:
        return {"pk": {"S": f"REQ#{request_id}"}, "sk": {"S": sk}}

    def _update_item(self, request_id: str, values: dict[str, str | None]) -> None:
        sets = {name: value for name, value in values.items() if value is not None}
        removes = [name for name, value in values.items() if value is None]
        names = {f"#a{n}": name for n, name in enumerate(values)}
        alias = {name: key for key, name in names.items()}
        expression = "SET " + ", ".join(f"{alias[name]} = :v{n}" for n, name in enumerate(sets))
        if removes:
            expression += " REMOVE " + ", ".join(alias[name] for name in removes)
        self.client.update_item(
            TableName=self.table,
            Key=self._key(request_id),
            UpdateExpression=expression,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues={f":v{n}": {"S": value} for n, value in enumerate(sets.values())},
        )

    def set_status(self, request_id: str, status: RequestStatus, decided_by: str | None = None) -> None:
        """Put the request in ``status`` with no lease, as if the bot had moved it."""
        if self.backend == "sqlite":
            self._sqlite(
                "UPDATE requests SET status = ?, lease_owner = NULL, lease_until = NULL, "
                "decided_by = COALESCE(?, decided_by) WHERE id = ?",
                str(status),
                decided_by,
                request_id,
            )
            return
        values: dict[str, str | None] = {
            "status": str(status),
            "gsi2pk": f"STATUS#{status}",
            "lease_owner": None,
            "lease_until": None,
        }
        if decided_by:
            values["decided_by"] = decided_by
        self._update_item(request_id, values)

    def set_form(self, request_id: str, form: RequestForm) -> None:
        if self.backend == "sqlite":
            self._sqlite("UPDATE requests SET form = ? WHERE id = ?", form.model_dump_json(), request_id)
        else:
            self._update_item(request_id, {"form": form.model_dump_json()})

    def set_fingerprint(self, request_id: str, fingerprint: str) -> None:
        if self.backend == "sqlite":
            self._sqlite("UPDATE requests SET fingerprint = ? WHERE id = ?", fingerprint, request_id)
        else:
            self._update_item(request_id, {"fingerprint": fingerprint})

    def set_approvals_required(self, request_id: str, required: int) -> None:
        if self.backend == "sqlite":
            self._sqlite("UPDATE requests SET approvals_required = ? WHERE id = ?", required, request_id)
            return
        self.client.update_item(
            TableName=self.table,
            Key=self._key(request_id),
            UpdateExpression="SET approvals_required = :n",
            ExpressionAttributeValues={":n": {"N": str(required)}},
        )

    def drop_review_seal(self, request_id: str) -> None:
        """Take the seal out of the stored review (as a review stored before seals looks)."""
        if self.backend == "sqlite":
            self._sqlite("UPDATE requests SET review = json_remove(review, '$.offered') WHERE id = ?", request_id)
            return
        item = self.client.get_item(TableName=self.table, Key=self._key(request_id))["Item"]
        review = json.loads(item["review"]["S"])
        review.pop("offered")
        self._update_item(request_id, {"review": json.dumps(review, sort_keys=True)})

    def set_plan(self, request_id: str, steps: Sequence[Step]) -> None:
        """Overwrite (or write) the stored plan, keeping its console URL."""
        plan = json.dumps([step.model_dump(mode="json") for step in steps])
        if self.backend == "sqlite":
            self._sqlite(
                "INSERT INTO provisioning_plans (request_id, plan, console_url, created_at) VALUES (?, ?, NULL, '') "
                "ON CONFLICT (request_id) DO UPDATE SET plan = excluded.plan",
                request_id,
                plan,
            )
            return
        self.client.update_item(
            TableName=self.table,
            Key=self._key(request_id, "PLAN"),
            UpdateExpression="SET #p = :p, #k = :k",
            ExpressionAttributeNames={"#p": "plan", "#k": "kind"},
            ExpressionAttributeValues={":p": {"S": plan}, ":k": {"S": "plan"}},
        )

    def stored_text(self) -> str:
        """Everything the store holds at rest (file bytes with WAL and SHM, or every item)."""
        if self.backend == "sqlite":
            assert self.db is not None
            files = sorted(self.db.parent.glob(self.db.name + "*"))
            return b"".join(p.read_bytes() for p in files).decode("latin-1")
        items = [
            item for page in self.client.get_paginator("scan").paginate(TableName=self.table) for item in page["Items"]
        ]
        return json.dumps(items, default=lambda b: bytes(b).decode("latin-1"))


class HeldViews:
    """An executor for the views' refreshes that keeps them and runs none: the App Home reads IAM
    (the keys its viewer owns) when a request moves, so with it the IAM recorder holds only the
    calls of the run under test."""

    def __init__(self) -> None:
        self.held: list[Any] = []

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> None:
        self.held.append((fn, args, kwargs))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self.held.clear()


def edit_secret(tamper: Tamper, secret_id: str, name: str, value: str) -> None:
    """Set one text attribute of a link's record (its recipient, user, key id…), raw."""
    if tamper.backend == "sqlite":
        statements = {
            column: f"UPDATE secrets SET {column} = ? WHERE id = ?"  # noqa: S608 (fixed column names)
            for column in ("recipient", "user_name", "access_key_id", "request_id", "replaces", "expires_at")
        }
        tamper._sqlite(statements[name], value, secret_id)
        return
    # The expiry is also the sort key of the index the expiry sweep reads (``gsi3sk``).
    index = name == "expires_at"
    tamper.client.update_item(
        TableName=tamper.table,
        Key={"pk": {"S": f"SECRET#{secret_id}"}, "sk": {"S": "SECRET"}},
        UpdateExpression="SET #n = :v" + (", gsi3sk = :i" if index else ""),
        ExpressionAttributeNames={"#n": name},
        ExpressionAttributeValues={":v": {"S": value}, **({":i": {"S": f"{value}#{secret_id}"}} if index else {})},
    )


def open_backend(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Tamper:
    """Raw writes to a new store of ``backend`` (a SQLite file in ``tmp_path``, or a new table on
    moto server); its :meth:`Tamper.open_store` opens the bot's instances."""
    if backend == "sqlite":
        return Tamper("sqlite", db=tmp_path / "bot.db")
    moto = request.getfixturevalue("moto_server")
    return Tamper("dynamodb", table=request.getfixturevalue("dynamodb_table"), client=moto.boto3_client("dynamodb"))


def events(bot: Any, request_id: str) -> list[str]:
    """The audit events of ``request_id`` in the store of ``bot`` (a harness), in order."""
    return [e.event for e in bot.store.audit_events(request_id=request_id)]


def alerts(slack: Any, request_id: str) -> list[str]:
    """What the approvers' channel was told about ``request_id`` by a post of its own."""
    return [
        c.args["text"]
        for c in slack.calls("chat.postMessage")
        if c.args.get("channel") == APPROVAL_CHANNEL and f"`{request_id}`" in c.args.get("text", "")
    ]


def tampered_harness(moto_server: Any, slack: Any, tamper: Tamper, tmp_path: Path, **kw: Any) -> Harness:
    """The bot (:func:`~tests.support.provisioning.make_harness`) on ``tamper``'s store, with the
    views' refreshes held (:class:`HeldViews`), so its IAM recorder holds only the calls under test."""
    return make_harness(
        moto_server, slack, tmp_path / "bot.db", store=tamper.open_store(), background=HeldViews(), **kw
    )


def back_to_before_record_seals(tamper: Tamper) -> None:
    """Put the store back to the schema before link records were sealed, its data kept: SQLite at
    version 7 (no ``seal`` column, no ``upgrades`` table), a DynamoDB table at version 1. The
    bot's next start-up on it is the upgrade."""
    if tamper.backend == "sqlite":
        with sqlite3.connect(str(tamper.db)) as conn:
            conn.execute("ALTER TABLE secrets DROP COLUMN seal")
            conn.execute("ALTER TABLE rotations DROP COLUMN seal")
            conn.execute("DROP TABLE upgrades")
            conn.execute("PRAGMA user_version = 7")
        return
    tamper.client.put_item(
        TableName=tamper.table,
        Item={"pk": {"S": "META"}, "sk": {"S": "META"}, "kind": {"S": "meta"}, "schema_version": {"N": "1"}},
    )
