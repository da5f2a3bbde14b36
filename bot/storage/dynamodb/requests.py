"""Requests and their approvals in DynamoDB: filing, the state table's moves (a condition on the
status plus the audit row in one transaction), the review, distinct approvals, the reminder."""

from __future__ import annotations

import heapq
import json
from collections.abc import Iterable, Sequence
from typing import Any

from bot.domain.ids import new_request_id
from bot.domain.models import Approval, OnboardingRequest, PermissionExpansion, RequestForm, Review, RiskFlag
from bot.domain.records import ApprovalResult, ApprovalVerdict, Lease
from bot.domain.states import FINAL_STATUSES, RequestEvent, RequestStatus, request_sources, request_target
from bot.storage.dynamodb.base import DynamoBase
from bot.storage.dynamodb.table import Conflict, iso, parse_time, sequence

APPROVAL_RETRIES = 20  # concurrent approvals of one request retry their transaction this often at most


def request_key(request_id: str) -> tuple[str, str]:
    return f"REQ#{request_id}", "REQ"


def request_from_item(item: dict[str, Any]) -> OnboardingRequest:
    """A request item as the domain model."""
    return OnboardingRequest(
        id=item["id"],
        requester=item["requester"],
        form=RequestForm.model_validate_json(item["form"]),
        status=RequestStatus(item["status"]),
        created_at=parse_time(item["created_at"]),
        updated_at=parse_time(item["updated_at"]),
        approval_channel=item.get("approval_channel"),
        approval_ts=item.get("approval_ts"),
        decided_by=item.get("decided_by"),
        decided_at=parse_time(item.get("decided_at")),
        reason=item.get("reason"),
        error=item.get("error"),
    )


def _in(name: str, values: Sequence[str]) -> tuple[str, dict[str, str]]:
    """``name IN (:v0, :v1…)`` and its values (DynamoDB's IN takes up to 100)."""
    placeholders = {f":in{n}": value for n, value in enumerate(values)}
    return f"{name} IN ({', '.join(placeholders)})", placeholders


class RequestItems(DynamoBase):
    """Request items (``REQ#<id>``/``REQ``), their recipients (``RCP#<user>``) and approvals."""

    def create_request(self, requester: str, form: RequestForm) -> OnboardingRequest:
        """A new pending request, its recipient pointers and its ``filed`` audit row, together."""
        now = iso(self.clock())
        for _ in range(5):
            request_id = new_request_id()
            pk, sk = request_key(request_id)
            order = f"{now}#{sequence()}"
            item = {
                "pk": pk,
                "sk": sk,
                "kind": "request",
                "id": request_id,
                "requester": requester,
                "status": str(RequestStatus.PENDING),
                "form": form.model_dump_json(),
                "created_at": now,
                "updated_at": now,
                "approvals_version": 0,
                "gsi1pk": f"REQUESTER#{requester}",
                "gsi1sk": order,
                "gsi2pk": f"STATUS#{RequestStatus.PENDING}",
                "gsi2sk": order,
            }
            pointers = [
                self.table.put(
                    {
                        "pk": pk,
                        "sk": f"RCP#{user}",
                        "kind": "recipient",
                        "request_id": request_id,
                        "gsi1pk": f"RECIPIENT#{user}",
                        "gsi1sk": order,
                    }
                )
                for user in dict.fromkeys(form.recipients)
            ]
            audit = ("filed", request_id, requester, {"user_names": list(form.user_names)})
            if self.table.write(audit, self.table.put(item, condition="attribute_not_exists(pk)"), *pointers):
                return self.get_request(request_id)  # type: ignore[return-value]
        raise RuntimeError("could not draw a unique request id")

    def _request_item(self, request_id: str) -> dict[str, Any] | None:
        return self.table.get(*request_key(request_id))

    def get_request(self, request_id: str) -> OnboardingRequest | None:
        """The request with this id, or None (a consistent read)."""
        item = self._request_item(request_id)
        return request_from_item(item) if item else None

    def requests_where(
        self,
        *,
        requester: str | None = None,
        statuses: Iterable[RequestStatus] | None = None,
        limit: int = 50,
    ) -> list[OnboardingRequest]:
        """Requests, newest first: by requester (index ``gsi1``), by status (``gsi2``, one query per
        status, merged), or all (every status merged)."""
        wanted = [RequestStatus(s) for s in statuses] if statuses is not None else list(RequestStatus)
        if requester is not None:
            items = self.table.query("gsi1pk", f"REQUESTER#{requester}", index="gsi1", newest_first=True)
            chosen = {str(s) for s in wanted}
            items = [i for i in items if i["status"] in chosen][:limit]
        else:
            per_status = [
                self.table.query("gsi2pk", f"STATUS#{s}", index="gsi2", newest_first=True, limit=limit) for s in wanted
            ]
            merged = heapq.merge(*per_status, key=lambda i: i["gsi2sk"], reverse=True)
            items = [item for _, item in zip(range(limit), merged, strict=False)]
        return [request_from_item(item) for item in items]

    def requests_for_recipient(self, user_id: str, *, limit: int = 20) -> list[OnboardingRequest]:
        """Requests in which ``user_id`` receives an IAM user, newest first (index ``gsi1``, then one
        ``BatchGetItem`` for the requests themselves)."""
        pointers = self.table.query("gsi1pk", f"RECIPIENT#{user_id}", index="gsi1", newest_first=True, limit=limit)
        keys = [request_key(p["request_id"]) for p in pointers]
        items = self.table.get_many(keys)
        return [request_from_item(items[key]) for key in keys if key in items]

    def _move_request(
        self,
        request_id: str,
        event: RequestEvent,
        actor: str | None,
        detail: dict[str, object] | None,
        columns: dict[str, object],
        extra_condition: str = "",
        extra_values: dict[str, Any] | None = None,
        extra_actions: Sequence[dict[str, Any]] = (),
    ) -> bool:
        """The state table's move: status condition, new status and index key, audit row; one
        transaction. False when the request was not in a status the event leaves."""
        sources = [str(s) for s in request_sources(event)]
        target = request_target(event)
        condition, values = _in("#st", sources)
        if extra_condition:
            condition += f" AND {extra_condition}"
        columns = {"status": str(target), "gsi2pk": f"STATUS#{target}", "updated_at": iso(self.clock()), **columns}
        if target in FINAL_STATUSES:
            columns.update(lease_owner=None, lease_until=None)
        update = self.table.update(
            *request_key(request_id),
            set_=columns,
            condition=condition,
            values={**values, **(extra_values or {})},
            names={"#st": "status"},
        )
        moved = {"from": sources, "to": str(target), **(detail or {})}
        return self.table.write((str(event), request_id, actor, moved), update, *extra_actions)

    def move_request(
        self,
        request_id: str,
        event: RequestEvent,
        *,
        actor: str | None,
        detail: dict[str, object] | None = None,
        decided_by: str | None = None,
        reason: str | None = None,
        error: str | None = None,
        lease: Lease | None = None,
    ) -> OnboardingRequest | None:
        """See :meth:`bot.storage.base.Store.move_request`. The request is read back after the move
        (strongly consistent), so a later move by someone else may already show."""
        columns: dict[str, object] = {}
        if decided_by is not None:
            columns.update(decided_by=decided_by, decided_at=iso(self.clock()))
        if reason is not None:
            columns["reason"] = reason
        if error is not None:
            columns["error"] = error
        if lease is not None:
            columns.update(lease_owner=lease.owner, lease_until=iso(lease.until))
        if not self._move_request(request_id, event, actor, detail, columns, "attribute_exists(pk)"):
            return None
        return self.get_request(request_id)

    def set_approval_message(self, request_id: str, channel: str, ts: str) -> None:
        """Remember where the approval message is (audited ``approval_posted``)."""
        update = self.table.update(
            *request_key(request_id),
            set_={"approval_channel": channel, "approval_ts": ts},
            condition="attribute_exists(pk)",
        )
        self.table.write(("approval_posted", request_id, None, {"channel": channel, "ts": ts}), update)

    def forget_custom_password(self, request_id: str) -> bool:
        """Erase a request's sealed custom password, once (a compare-and-set on the form); audited."""
        item = self._request_item(request_id)
        if item is None:
            return False
        form = json.loads(item["form"])
        if form.get("custom_password_sealed") is None:
            return False
        form.pop("custom_password_sealed")
        update = self.table.update(
            *request_key(request_id),
            set_={"form": json.dumps(form)},
            condition="#f = :old",
            values={":old": item["form"]},
            names={"#f": "form"},
        )
        return self.table.write(("custom_password_erased", request_id, None, None), update)

    # -- approvals -------------------------------------------------------------------------------

    def save_review(
        self, request_id: str, expansion: PermissionExpansion, flags: Sequence[RiskFlag], approvals_required: int
    ) -> bool:
        """Store what the request grants and its flags, once; False if a review is already stored."""
        review = json.dumps(
            {"expansion": expansion.model_dump(mode="json"), "flags": [f.model_dump(mode="json") for f in flags]},
            sort_keys=True,
        )
        update = self.table.update(
            *request_key(request_id),
            set_={"review": review, "approvals_required": approvals_required},
            condition="attribute_exists(pk) AND attribute_not_exists(review)",
        )
        detail = {
            "flags": [f.code for f in flags],
            "sensitive": [f.text for f in flags if f.sensitive],
            "approvals_required": approvals_required,
        }
        return self.table.write(("permissions_read", request_id, None, detail), update)

    def _approvals(self, request_id: str) -> list[dict[str, Any]]:
        items = self.table.query("pk", request_key(request_id)[0], sk_prefix="APPROVAL#")
        return sorted(items, key=lambda i: (i["at"], i["seq"]))

    def get_review(self, request_id: str) -> Review | None:
        """The stored review with the approvals so far (oldest first), or None before it is read."""
        item = self._request_item(request_id)
        if item is None or item.get("review") is None:
            return None
        data = json.loads(item["review"])
        return Review(
            expansion=PermissionExpansion.model_validate(data["expansion"]),
            flags=tuple(RiskFlag.model_validate(f) for f in data["flags"]),
            approvals_required=item.get("approvals_required") or 1,
            approvals=tuple(
                Approval(approver=a["approver"], at=parse_time(a["at"])) for a in self._approvals(request_id)
            ),
            fingerprint=item.get("fingerprint"),
            reminded_at=parse_time(item.get("reminded_at")),
        )

    def record_approval(self, request_id: str, approver: str, fingerprint: str) -> ApprovalResult:
        """Count one approver's yes; move the request to approved when enough distinct ones agree.

        Optimistic concurrency: read the request and its approvals, then one transaction that
        inserts this approval (once per approver) and either bumps the request's
        ``approvals_version`` or makes the state table's ``approved`` move, on condition that the
        request is still pending at the version read. A concurrent approval changes the version,
        so this one re-reads and counts again: exactly one click completes the approval.
        """
        pk = request_key(request_id)[0]
        for _ in range(APPROVAL_RETRIES):
            item = self._request_item(request_id)
            if item is None or item["status"] not in {str(s) for s in request_sources(RequestEvent.APPROVED)}:
                return ApprovalResult(ApprovalVerdict.NOT_PENDING, self.get_request(request_id))
            if item.get("review") is None or json.loads(item["review"])["expansion"].get("error"):
                return ApprovalResult(ApprovalVerdict.NOT_READY, request_from_item(item))
            required = int(item.get("approvals_required") or 1)
            approvals = self._approvals(request_id)
            counted = sum(1 for a in approvals if a["fingerprint"] == fingerprint)
            if any(a["approver"] == approver for a in approvals):
                return ApprovalResult(ApprovalVerdict.DUPLICATE, request_from_item(item), counted, required)
            count = counted + 1
            now = iso(self.clock())
            insert = self.table.put(
                {
                    "pk": pk,
                    "sk": f"APPROVAL#{approver}",
                    "kind": "approval",
                    "approver": approver,
                    "at": now,
                    "seq": sequence(),
                    "fingerprint": fingerprint,
                },
                condition="attribute_not_exists(pk)",
            )
            version = {":version": item.get("approvals_version", 0)}
            facts = {"approvals": count, "required": required, "fingerprint": fingerprint}
            if count < required:
                bump = self.table.update(
                    pk,
                    "REQ",
                    add={"approvals_version": 1},
                    condition="#st = :pending AND approvals_version = :version",
                    values={":pending": str(RequestStatus.PENDING), **version},
                    names={"#st": "status"},
                )
                if self.table.write(("approval_recorded", request_id, approver, facts), insert, bump):
                    return ApprovalResult(ApprovalVerdict.RECORDED, self.get_request(request_id), count, required)
                continue
            columns = {"decided_by": approver, "decided_at": now, "fingerprint": fingerprint}
            if self._move_request(
                request_id, RequestEvent.APPROVED, approver, facts, columns,
                "approvals_version = :version", version, [insert],
            ):  # fmt: skip
                return ApprovalResult(ApprovalVerdict.APPROVED, self.get_request(request_id), count, required)
        raise Conflict(f"approval of {request_id} kept losing to concurrent approvals")

    def mark_reminded(self, request_id: str) -> bool:
        """Set the half-life reminder marker of a pending request; True only for the one caller."""
        update = self.table.update(
            *request_key(request_id),
            set_={"reminded_at": iso(self.clock())},
            condition="#st = :pending AND attribute_not_exists(reminded_at)",
            values={":pending": str(RequestStatus.PENDING)},
            names={"#st": "status"},
        )
        return self.table.write(("reminder_sent", request_id, None, {}), update)
