"""The provisioning journal in DynamoDB: the lease on a provisioning request (attributes of the
request item), the stored plan (``PLAN``) and each step (``STEP#<index>``), every move audited."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence

from bot.domain.plan import Step
from bot.domain.records import JournalEntry, Lease
from bot.domain.states import RequestStatus, SecretEvent, SecretState, StepEvent, StepState, step_sources
from bot.storage.dynamodb.base import DynamoBase
from bot.storage.dynamodb.requests import request_key
from bot.storage.dynamodb.table import iso, parse_time

STEP_PREFIX = "STEP#"
DISCARD_RETRIES = 5
DISCARD_MAX = 90  # links of one request, within one transaction (100 actions at most)


def _step_key(index: int) -> str:
    return f"{STEP_PREFIX}{index:05d}"


class JournalItems(DynamoBase):
    """Lease attributes, ``PLAN`` and ``STEP#`` items under a request's partition."""

    # -- lease ---------------------------------------------------------------------------------

    def claim_lease(self, request_id: str, lease: Lease, is_gone: Callable[[str], bool]) -> bool:
        """Take the lease on a ``provisioning`` request if it is free; True when taken.

        Free: never taken, released, expired, or its owner ``is_gone``. The take is a
        compare-and-set on the owner and expiry read, so of several claimants one wins.
        """
        item = self.table.get(*request_key(request_id))
        if item is None or item["status"] != str(RequestStatus.PROVISIONING):
            return False
        owner, until = item.get("lease_owner"), item.get("lease_until")
        expired = until is None or parse_time(until) <= self.clock()  # type: ignore[operator]
        if not (owner is None or expired or is_gone(owner)):
            return False
        seen = "attribute_not_exists(lease_owner)" if owner is None else "lease_owner = :owner"
        seen += " AND attribute_not_exists(lease_until)" if until is None else " AND lease_until = :until"
        values = {":provisioning": str(RequestStatus.PROVISIONING), ":owner": owner, ":until": until}
        update = self.table.update(
            *request_key(request_id),
            set_={"lease_owner": lease.owner, "lease_until": iso(lease.until)},
            condition=f"#st = :provisioning AND {seen}",
            values={k: v for k, v in values.items() if v is not None},
            names={"#st": "status"},
        )
        return self._quietly(update)

    def _quietly(self, *actions: dict) -> bool:
        """A transaction without an audit row (a lease is no status); False when a condition failed."""
        from bot.storage.dynamodb.table import Conflict

        try:
            self.table.transact(list(actions), [])
        except Conflict:
            return False
        return True

    def renew_lease(self, request_id: str, lease: Lease) -> bool:
        """Extend the lease ``lease.owner`` holds; False when another process has taken it."""
        update = self.table.update(
            *request_key(request_id),
            set_={"lease_until": iso(lease.until)},
            condition="lease_owner = :owner",
            values={":owner": lease.owner},
        )
        return self._quietly(update)

    def release_lease(self, request_id: str, owner: str) -> None:
        """Give the lease up (only if ``owner`` holds it)."""
        update = self.table.update(
            *request_key(request_id),
            set_={"lease_owner": None, "lease_until": None},
            condition="lease_owner = :owner",
            values={":owner": owner},
        )
        self._quietly(update)

    # -- plan ----------------------------------------------------------------------------------

    def save_plan(self, request_id: str, steps: Sequence[Step], console_url: str | None) -> None:
        """Store the plan once; a second call for the same request keeps the first plan."""
        item = {
            "pk": request_key(request_id)[0],
            "sk": "PLAN",
            "kind": "plan",
            "plan": json.dumps([step.model_dump(mode="json") for step in steps]),
            "console_url": console_url,
            "created_at": iso(self.clock()),
        }
        self._quietly(self.table.put(item, condition="attribute_not_exists(pk)"))

    def get_plan(self, request_id: str) -> tuple[list[Step], str | None] | None:
        """The stored ``(steps, console_url)`` of a request, or None when none was saved."""
        item = self.table.get(request_key(request_id)[0], "PLAN")
        if item is None:
            return None
        return [Step.model_validate(s) for s in json.loads(item["plan"])], item.get("console_url")

    # -- steps ---------------------------------------------------------------------------------

    def journal(self, request_id: str) -> dict[int, JournalEntry]:
        """Every journaled step of a request, by step index."""
        items = self.table.query("pk", request_key(request_id)[0], sk_prefix=STEP_PREFIX)
        return {
            item["index"]: JournalEntry(
                item["index"], item["label"], StepState(item["state"]), item["attempts"], json.loads(item["detail"])
            )
            for item in items
        }

    def start_step(self, request_id: str, index: int, label: str) -> bool:
        """Journal step ``index`` as started; a re-run (from started or done) counts an attempt.
        False when the step failed before (nothing written)."""
        sources = [str(s) for s in step_sources(StepEvent.STARTED) if s is not None]
        values = {f":s{n}": state for n, state in enumerate(sources)}
        update = self.table.update(
            request_key(request_id)[0],
            _step_key(index),
            set_={
                "kind": "step",
                "index": index,
                "label": label,
                "state": str(StepState.STARTED),
                "updated_at": iso(self.clock()),
            },
            # A new step starts with no detail; a re-run keeps the detail of its last attempt.
            set_raw={"detail": "if_not_exists(detail, :empty)"},
            add={"attempts": 1},
            condition=f"attribute_not_exists(pk) OR #state IN ({', '.join(values)})",
            values={**values, ":empty": "{}"},
            names={"#state": "state"},
        )
        return self.table.write((str(StepEvent.STARTED), request_id, None, {"step": label, "index": index}), update)

    def _end_step(self, request_id: str, index: int, label: str, event: StepEvent, detail: dict[str, object]) -> bool:
        state = StepState.DONE if event is StepEvent.DONE else StepState.FAILED
        sources = [str(s) for s in step_sources(event) if s is not None]
        values = {f":s{n}": s for n, s in enumerate(sources)}
        update = self.table.update(
            request_key(request_id)[0],
            _step_key(index),
            set_={"state": str(state), "detail": json.dumps(detail, sort_keys=True), "updated_at": iso(self.clock())},
            condition=f"#state IN ({', '.join(values)})",
            values=values,
            names={"#state": "state"},
        )
        audited: dict[str, object] = {"step": label, "index": index}
        if event is StepEvent.FAILED:
            audited["error"] = detail.get("message") or detail.get("error")
        return self.table.write((str(event), request_id, None, audited), update)

    def finish_step(self, request_id: str, index: int, label: str, detail: dict[str, object]) -> bool:
        """started → done; ``detail`` (no secret) is kept with the step."""
        return self._end_step(request_id, index, label, StepEvent.DONE, detail)

    def fail_step(self, request_id: str, index: int, label: str, detail: dict[str, object]) -> bool:
        """started → failed; ``detail``: IAM's error code and message."""
        return self._end_step(request_id, index, label, StepEvent.FAILED, detail)

    def discard_unsent_links(self, request_id: str) -> int:
        """Retire the sealed links of an interrupted run of a ``provisioning`` request: one
        transaction checks the request's status, supersedes each sealed link (ciphertext removed)
        and writes one audit row with the count. Returns how many (0 when it is not provisioning).
        """
        for _ in range(DISCARD_RETRIES):  # a link revealed or expired meanwhile: read again
            sealed = [
                s for s in self.table.query("gsi1pk", f"REQSECRETS#{request_id}", index="gsi1")
                if s["state"] == str(SecretState.SEALED)
            ]  # fmt: skip
            if not sealed:
                return 0
            check = self.table.check(
                *request_key(request_id),
                "#st = :provisioning",
                values={":provisioning": str(RequestStatus.PROVISIONING)},
                names={"#st": "status"},
            )
            updates = [
                self.table.update(
                    item["pk"],
                    item["sk"],
                    set_={
                        "state": str(SecretState.SUPERSEDED),
                        "nonce": None,
                        "ciphertext": None,
                        "gsi2pk": None,
                        "gsi2sk": None,
                        "gsi3pk": None,
                        "gsi3sk": None,
                    },
                    condition="#state = :sealed",
                    values={":sealed": str(SecretState.SEALED)},
                    names={"#state": "state"},
                )
                for item in sealed[:DISCARD_MAX]
            ]
            audit = (str(SecretEvent.DISCARDED), request_id, None, {"count": len(updates)})
            if self.table.write(audit, check, *updates):
                return len(updates)
            request = self.table.get(*request_key(request_id))
            if request is None or request["status"] != str(RequestStatus.PROVISIONING):
                return 0
        return 0
