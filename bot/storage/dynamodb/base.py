"""What every item module of the DynamoDB backend builds on: the table, the clock, the audit log."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from bot.domain.models import AuditEvent, utcnow
from bot.storage.dynamodb.table import SCHEMA_VERSION, Table, iso


class DynamoBase:
    """The table and clock of :class:`bot.storage.dynamodb.DynamoStore`, and its audit log.

    Audit rows are items ``AUDIT#<request id>`` / ``<sequence>`` (also on index ``gsi1`` under
    ``AUDIT``, for the whole log in order); they are written only inside the transaction of the
    change they record, with a condition that never lets one be overwritten.

    Args:
        table: ``DYNAMODB_TABLE``; clock: "now" (aware UTC); client: a boto3 DynamoDB client.
    """

    schema_version = SCHEMA_VERSION

    def __init__(self, table: str, clock: Callable[[], datetime] = utcnow, client: Any | None = None) -> None:
        self.clock = clock
        self.table = Table(table, client, clock)

    def audit(
        self,
        event: str,
        *,
        request_id: str | None = None,
        actor: str | None = None,
        detail: dict[str, object] | None = None,
    ) -> None:
        """Append one audit event that changes no state. ``detail`` must never hold a secret."""
        self.table.write((event, request_id, actor, detail))

    def audit_events(self, *, since: datetime | None = None, request_id: str | None = None) -> list[AuditEvent]:
        """Audit events in the order written, optionally from ``since`` on and for one request."""
        filter_values = {":since": iso(since.astimezone(UTC))} if since is not None else None
        filtering = {
            "filter_expression": "#at >= :since",
            "filter_values": filter_values,
            "filter_names": {"#at": "at"},
        }
        if request_id is not None:
            items = self.table.query("pk", f"AUDIT#{request_id}", **(filtering if since else {}))
        else:
            items = self.table.query("gsi1pk", "AUDIT", index="gsi1", **(filtering if since else {}))
        return [
            AuditEvent(
                id=int(item["sk"].partition("-")[0]),  # the sequence's nanoseconds: stable, in write order
                at=datetime.fromisoformat(item["at"]),
                request_id=item.get("request_id"),
                actor=item.get("actor"),
                event=item["event"],
                detail=json.loads(item["detail"]),
            )
            for item in items
        ]
