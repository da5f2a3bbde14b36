"""Key rotations (``ROTATION#<user>``) and lifecycle findings (``FINDING#<kind>#<subject>``) in
DynamoDB: each move is a condition on the state read plus its audit row, in one transaction.

Index ``gsi2`` lists rotations by state (``ROTATIONS#<state>``, least recently moved first) for the
periodic recovery, and the open findings of a kind (``FINDINGS#<kind>``, while open) for the App
Home; docs/dynamodb.md has the keys.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bot.domain.records import Finding, RotationRow
from bot.domain.states import (
    FindingEvent,
    FindingState,
    RotationEvent,
    RotationState,
    rotation_sources,
    rotation_target,
)
from bot.storage.dynamodb.base import DynamoBase
from bot.storage.dynamodb.table import iso, parse_time, sequence

MOVE_RETRIES = 5  # a rotation moved by someone else between our read and our write: read again


def rotation_key(user_name: str) -> tuple[str, str]:
    return f"ROTATION#{user_name}", "ROTATION"


def finding_key(kind: str, subject: str) -> tuple[str, str]:
    return f"FINDING#{kind}#{subject}", "FINDING"


def _rotation(item: dict[str, Any]) -> RotationRow:
    return RotationRow(
        user_name=item["user_name"],
        state=RotationState(item["state"]),
        old_key_id=item["old_key_id"],
        owner=item["owner"],
        request_id=item["request_id"],
        started_at=parse_time(item["started_at"]),  # type: ignore[arg-type]
        updated_at=parse_time(item["updated_at"]),  # type: ignore[arg-type]
        kept_key_ids=tuple(json.loads(item.get("kept_key_ids") or "[]")),
        new_key_id=item.get("new_key_id"),
        secret_id=item.get("secret_id"),
        error=item.get("error"),
        seal=item.get("seal"),
    )


def _finding(item: dict[str, Any]) -> Finding:
    return Finding(
        kind=item["finding_kind"],
        subject=item["subject"],
        state=FindingState(item["state"]),
        created_at=parse_time(item["created_at"]),  # type: ignore[arg-type]
        detail=json.loads(item["detail"]),
        resolved_at=parse_time(item.get("resolved_at")),
    )


class LifecycleItems(DynamoBase):
    """Rotation and finding items."""

    # -- rotations -----------------------------------------------------------------------------

    def get_rotation(self, user_name: str) -> RotationRow | None:
        """The rotation record of ``user_name`` (a consistent read), or None."""
        item = self.table.get(*rotation_key(user_name))
        return _rotation(item) if item else None

    def start_rotation(
        self,
        user_name: str,
        *,
        old_key_id: str,
        owner: str,
        request_id: str,
        kept_key_ids: Sequence[str],
        actor: str | None,
        started_at: datetime | None = None,
        seal: str | None = None,
    ) -> RotationRow | None:
        """See :meth:`bot.storage.base.Store.start_rotation`: a ``Put`` replacing the record,
        conditioned on its absence or on the state read, with the audit row."""
        event = RotationEvent.STARTED
        for _ in range(MOVE_RETRIES):
            before = self.get_rotation(user_name)
            if (before.state if before else None) not in rotation_sources(event):
                return None
            now = iso(self.clock())
            item = {
                "pk": rotation_key(user_name)[0],
                "sk": rotation_key(user_name)[1],
                "kind": "rotation",
                "user_name": user_name,
                "state": str(RotationState.STARTED),
                "old_key_id": old_key_id,
                "kept_key_ids": json.dumps(list(kept_key_ids)),
                "owner": owner,
                "request_id": request_id,
                "started_at": iso(started_at) if started_at else now,
                "updated_at": now,
                "seal": seal,
                "gsi2pk": f"ROTATIONS#{RotationState.STARTED}",
                "gsi2sk": f"{now}#{user_name}",
            }
            if before is None:
                put = self.table.put(item, condition="attribute_not_exists(pk)")
            else:
                put = self.table.put(
                    item,
                    condition="#state = :seen AND updated_at = :at",
                    values={":seen": str(before.state), ":at": iso(before.updated_at)},
                    names={"#state": "state"},
                )
            detail = {
                "user_name": user_name,
                "from": str(before.state) if before else None,
                "to": str(RotationState.STARTED),
                "old_key_id": old_key_id,
            }
            if self.table.write((str(event), request_id, actor, detail), put):
                return self.get_rotation(user_name)
        return None

    def unsealed_rotations(self, limit: int = 500) -> list[RotationRow]:
        """Rotation records without a seal: a ``Query`` of each state's list on ``gsi2``, filtered
        on the server, so ``limit`` counts unsealed records only (sealed ones never hide the rest)."""
        rows: list[RotationRow] = []
        for state in RotationState:
            items = self.table.query(
                "gsi2pk",
                f"ROTATIONS#{state}",
                index="gsi2",
                limit=limit - len(rows),
                filter_expression="attribute_not_exists(seal)",
            )
            rows += [_rotation(item) for item in items]
            if len(rows) >= limit:
                break
        return rows

    def seal_rotation(self, user_name: str, seal: str) -> bool:
        """Give an unsealed rotation record its seal (condition: it has none), audited."""
        before = self.get_rotation(user_name)
        if before is None:
            return False
        update = self.table.update(
            *rotation_key(user_name),
            set_={"seal": seal},
            condition="attribute_exists(pk) AND attribute_not_exists(seal)",
        )
        return self.table.write(("rotation_record_sealed", before.request_id, None, {"user_name": user_name}), update)

    def move_rotation(
        self,
        user_name: str,
        event: RotationEvent,
        *,
        actor: str | None,
        detail: dict | None = None,
        new_key_id: str | None = None,
        secret_id: str | None = None,
        error: str | None = None,
    ) -> RotationRow | None:
        """See :meth:`bot.storage.base.Store.move_rotation`: an ``Update`` conditioned on the state
        read (read again when someone else moved it meanwhile), with the audit row."""
        if event is RotationEvent.STARTED:
            raise ValueError("a rotation starts with start_rotation")
        target = rotation_target(event)
        for _ in range(MOVE_RETRIES):
            before = self.get_rotation(user_name)
            if before is None or before.state not in rotation_sources(event):
                return None
            now = iso(self.clock())
            columns: dict[str, object] = {
                "state": str(target),
                "updated_at": now,
                "gsi2pk": f"ROTATIONS#{target}",
                "gsi2sk": f"{now}#{user_name}",
            }
            columns.update({k: v for k, v in (("new_key_id", new_key_id), ("secret_id", secret_id)) if v is not None})
            if error is not None:
                columns["error"] = error
            update = self.table.update(
                *rotation_key(user_name),
                set_=columns,
                condition="#state = :seen",
                values={":seen": str(before.state)},
                names={"#state": "state"},
            )
            audited = {"user_name": user_name, "from": str(before.state), "to": str(target), **(detail or {})}
            if self.table.write((str(event), before.request_id, actor, audited), update):
                return self.get_rotation(user_name)
        return None

    def rotations_in(self, states: Iterable[RotationState], *, limit: int = 500) -> list[RotationRow]:
        """Rotations now in one of ``states`` (index ``gsi2``, one query a state, merged), least
        recently moved first."""
        per_state = [
            self.table.query("gsi2pk", f"ROTATIONS#{RotationState(s)}", index="gsi2", limit=limit) for s in states
        ]
        merged = heapq.merge(*per_state, key=lambda item: item["gsi2sk"])
        return [_rotation(item) for _, item in zip(range(limit), merged, strict=False)]

    # -- findings ------------------------------------------------------------------------------

    def get_finding(self, kind: str, subject: str) -> Finding | None:
        """The finding ``(kind, subject)`` (a consistent read), or None."""
        item = self.table.get(*finding_key(kind, subject))
        return _finding(item) if item else None

    def open_finding(self, kind: str, subject: str, *, detail: dict, actor: str | None = None) -> bool:
        """(none) → open: a ``Put`` conditioned on the item's absence, with the audit row."""
        now = iso(self.clock())
        pk, sk = finding_key(kind, subject)
        item = {
            "pk": pk,
            "sk": sk,
            "kind": "finding",
            "finding_kind": kind,
            "subject": subject,
            "state": str(FindingState.OPEN),
            "detail": json.dumps(detail, sort_keys=True),
            "created_at": now,
            "gsi2pk": f"FINDINGS#{kind}",
            "gsi2sk": f"{now}#{sequence()}",
        }
        audited = {"kind": kind, "subject": subject, **detail}
        put = self.table.put(item, condition="attribute_not_exists(pk)")
        return self.table.write((str(FindingEvent.OPENED), None, actor, audited), put)

    def resolve_finding(self, kind: str, subject: str, *, actor: str | None = None, detail: dict | None = None) -> bool:
        """open → resolved: an ``Update`` conditioned on the state (it leaves the open index)."""
        update = self.table.update(
            *finding_key(kind, subject),
            set_={
                "state": str(FindingState.RESOLVED),
                "resolved_at": iso(self.clock()),
                "gsi2pk": None,
                "gsi2sk": None,
            },
            condition="#state = :open",
            values={":open": str(FindingState.OPEN)},
            names={"#state": "state"},
        )
        audited = {"kind": kind, "subject": subject, **(detail or {})}
        return self.table.write((str(FindingEvent.RESOLVED), None, actor, audited), update)

    def open_findings(self, kind: str, *, limit: int = 50) -> list[Finding]:
        """The open findings of ``kind``, newest first (index ``gsi2``, ``FINDINGS#<kind>``)."""
        items = self.table.query("gsi2pk", f"FINDINGS#{kind}", index="gsi2", newest_first=True, limit=limit)
        return [_finding(item) for item in items]
