"""Sealed one-time secrets in DynamoDB (``SECRET#<id>``): what the server may know of a credential
link, and its moves, each a condition on the state plus the audit row in one transaction.

Indexes: ``gsi1`` lists a request's secrets (``REQSECRETS#<request>``, oldest first); ``gsi2`` a
recipient's sealed ones (``SEALED#<recipient>``, present only while sealed); ``gsi3`` the expiry
work to do: ``SEALED`` by ``expires_at`` while sealed, ``EXPIRING`` by ``expired_at`` while the IAM
work after expiry is unfinished. Every move out of ``sealed`` removes the ciphertext.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from bot.domain.records import NewSecret, SecretRow
from bot.domain.states import SecretEvent, SecretState, secret_sources
from bot.storage.dynamodb.base import DynamoBase
from bot.storage.dynamodb.table import decode, encode, iso, parse_time, sequence

_TIMES = ("created_at", "expires_at", "revealed_at", "alerted_at", "expired_at", "expiry_done_at", "reissued_at")
_FIELDS = (
    "id",
    "request_id",
    "recipient",
    "user_name",
    "access_key_id",
    "replaces",
    "notice_channel",
    "notice_ts",
    "reissued_by",
    "seal",
)
SEALED_ONLY = {"gsi2pk": None, "gsi2sk": None}  # the recipient's sealed list
NO_EXPIRY_WORK = {"gsi3pk": None, "gsi3sk": None}
GONE = {"nonce": None, "ciphertext": None}


def secret_key(secret_id: str) -> tuple[str, str]:
    return f"SECRET#{secret_id}", "SECRET"


def secret_from_item(item: dict[str, Any]) -> SecretRow:
    """A secret item's metadata (never its ciphertext)."""
    return SecretRow(
        **{name: item.get(name) for name in _FIELDS},
        **{name: parse_time(item.get(name)) for name in _TIMES},
        state=SecretState(item["state"]),
        console=bool(item.get("console")),
    )


class SecretItems(DynamoBase):
    """Secret items."""

    def _secret_item(self, secret_id: str) -> dict[str, Any] | None:
        return self.table.get(*secret_key(secret_id))

    def _move_secret(self, secret_id: str, audit: tuple, set_: dict[str, Any], condition: str, values: dict) -> bool:
        update = self.table.update(
            *secret_key(secret_id), set_=set_, condition=condition, values=values, names={"#state": "state"}
        )
        return self.table.write(audit, update)

    def put_secret(self, secret: NewSecret) -> None:
        """Store a sealed secret: ciphertext and nonce only, the key is never given to us."""
        now = iso(self.clock())
        order = f"{now}#{sequence()}"
        expires = iso(secret.expires_at)
        item = {
            "pk": secret_key(secret.secret_id)[0],
            "sk": "SECRET",
            "kind": "secret",
            "id": secret.secret_id,
            "request_id": secret.request_id,
            "recipient": secret.recipient,
            "user_name": secret.user_name,
            "nonce": secret.nonce,
            "ciphertext": secret.ciphertext,
            "state": str(SecretState.SEALED),
            "created_at": now,
            "expires_at": expires,
            "access_key_id": secret.access_key_id,
            "console": secret.console,
            "replaces": secret.replaces,
            "seal": secret.seal,
            "gsi1pk": f"REQSECRETS#{secret.request_id}",
            "gsi1sk": order,
            "gsi2pk": f"SEALED#{secret.recipient}",
            "gsi2sk": order,
            "gsi3pk": "SEALED",
            "gsi3sk": f"{expires}#{secret.secret_id}",
        }
        detail: dict[str, object] = {
            "secret_id": secret.secret_id,
            "user_name": secret.user_name,
            "recipient": secret.recipient,
            "expires_at": expires,
        }
        if secret.replaces:
            detail["replaces"] = secret.replaces
        event = "link_reissued" if secret.replaces else "link_issued"
        self.table.write((event, secret.request_id, None, detail), self.table.put(item, "attribute_not_exists(pk)"))

    def unsealed_secrets(self, limit: int = 500) -> list[SecretRow]:
        """Link records without a seal (written before records were sealed). A ``Scan`` (filtered
        on ``kind``): run only at the start-up that upgrades the table, never on the request path."""
        rows: list[SecretRow] = []
        start: dict[str, Any] | None = None
        while len(rows) < limit:
            page = self.table.client.scan(
                TableName=self.table.name,
                FilterExpression="kind = :secret AND attribute_not_exists(seal)",
                ExpressionAttributeValues={":secret": {"S": "secret"}},
                **({"ExclusiveStartKey": start} if start else {}),
            )
            rows += [secret_from_item(decode(item)) for item in page["Items"]]
            start = page.get("LastEvaluatedKey")
            if not start:
                break
        return sorted(rows, key=lambda r: r.created_at)[:limit]

    def seal_secret(self, secret_id: str, seal: str) -> bool:
        """Give an unsealed link record its seal (condition: it has none), audited
        ``link_record_sealed``. False (nothing written) when it has one or is gone."""
        item = self._secret_item(secret_id)
        if item is None:
            return False
        return self._move_secret(
            secret_id,
            ("link_record_sealed", item["request_id"], None, {"secret_id": secret_id}),
            {"seal": seal},
            "attribute_exists(pk) AND attribute_not_exists(seal)",
            {},
        )

    def upgrade_pending(self, name: str) -> bool:
        """Whether the one-time upgrade ``name`` is still to be done (an ``UPGRADE#<name>`` item,
        written when the table moved to the schema version that asks for it)."""
        return self.table.get(f"UPGRADE#{name}", "UPGRADE") is not None

    def finish_upgrade(self, name: str) -> bool:
        """Mark the upgrade ``name`` done (deletes its item), audited ``upgrade_done``."""
        delete = {
            "Delete": {
                "TableName": self.table.name,
                "Key": encode({"pk": f"UPGRADE#{name}", "sk": "UPGRADE"}),
                "ConditionExpression": "attribute_exists(pk)",
            }
        }
        return self.table.write(("upgrade_done", None, None, {"upgrade": name}), delete)

    def claim_secret(self, secret_id: str) -> tuple[bytes, bytes] | None:
        """Hand out a sealed secret once: ``(nonce, ciphertext)``, removed in the same transaction
        (a condition on exactly the ciphertext read), so of two concurrent reveals one gets it."""
        now = iso(self.clock())
        item = self._secret_item(secret_id)
        if item is None or item["state"] != str(SecretState.SEALED) or "ciphertext" not in item:
            return None
        if item["expires_at"] <= now:
            return None
        audit = (
            str(SecretEvent.REVEALED),
            item["request_id"],
            None,
            {"secret_id": secret_id, "user_name": item["user_name"]},
        )
        moved = self._move_secret(
            secret_id,
            audit,
            {"state": str(SecretState.REVEALED), "revealed_at": now, **GONE, **SEALED_ONLY, **NO_EXPIRY_WORK},
            "#state = :sealed AND ciphertext = :ct AND expires_at > :now",
            {":sealed": str(SecretState.SEALED), ":ct": item["ciphertext"], ":now": now},
        )
        return (bytes(item["nonce"]), bytes(item["ciphertext"])) if moved else None

    def secret_row(self, secret_id: str) -> SecretRow | None:
        """A secret's metadata (never its ciphertext), or None."""
        item = self._secret_item(secret_id)
        return secret_from_item(item) if item else None

    def secrets_for_request(self, request_id: str) -> list[SecretRow]:
        """Metadata of every secret issued for a request, oldest first."""
        items = self.table.query("gsi1pk", f"REQSECRETS#{request_id}", index="gsi1")
        return [secret_from_item(item) for item in items]

    def sealed_secrets_for_recipient(self, user_id: str, *, limit: int = 20) -> list[SecretRow]:
        """Metadata of ``user_id``'s secrets not yet revealed, newest first."""
        items = self.table.query("gsi2pk", f"SEALED#{user_id}", index="gsi2", newest_first=True)
        return [secret_from_item(i) for i in items if i["state"] == str(SecretState.SEALED)][:limit]

    def set_secret_notice(self, secret_id: str, channel: str, ts: str) -> None:
        """Remember the recipient's persistent DM notice of this secret, to update it later."""
        update = self.table.update(
            *secret_key(secret_id), set_={"notice_channel": channel, "notice_ts": ts}, condition="attribute_exists(pk)"
        )
        self.table.transact([update], [])

    def mark_reuse(self, secret_id: str) -> SecretRow | None:
        """Record a reveal attempt on an already revealed secret, once (``link_reuse_detected``)."""
        item = self._secret_item(secret_id)
        if item is None:
            return None
        detail = {"secret_id": secret_id, "user_name": item["user_name"], "recipient": item["recipient"]}
        if not self._move_secret(
            secret_id,
            ("link_reuse_detected", item["request_id"], None, detail),
            {"alerted_at": iso(self.clock())},
            "#state = :revealed AND attribute_not_exists(alerted_at)",
            {":revealed": str(SecretState.REVEALED)},
        ):
            return None
        return self.secret_row(secret_id)

    # -- expiry ----------------------------------------------------------------------------

    def due_expiries(self, lease_seconds: float, limit: int = 100) -> list[str]:
        """Ids whose expiry work is due now: sealed past ``expires_at`` and expired whose IAM work
        was claimed more than ``lease_seconds`` ago and never finished (index ``gsi3``)."""
        now = self.clock()
        stale = now - timedelta(seconds=lease_seconds)
        sealed = self.table.query("gsi3pk", "SEALED", index="gsi3", sk_below=f"{iso(now)}~", limit=limit)
        retake = self.table.query("gsi3pk", "EXPIRING", index="gsi3", sk_below=f"{iso(stale)}~", limit=limit)
        due = [i for i in sealed if i["state"] == str(SecretState.SEALED) and i["expires_at"] <= iso(now)]
        due += [i for i in retake if i["state"] == str(SecretState.EXPIRED) and "expiry_done_at" not in i]
        due.sort(key=lambda i: i["expires_at"])
        return [i["id"] for i in due[:limit]]

    def claim_expiry(self, secret_id: str, lease_seconds: float) -> SecretRow | None:
        """sealed → expired (ciphertext removed, ``link_expired``), or retake a stale claim
        (``link_expiry_retried``). The row when this caller won, else None."""
        item = self._secret_item(secret_id)
        if item is None:
            return None
        now = iso(self.clock())
        stale = iso(self.clock() - timedelta(seconds=lease_seconds))
        detail = {"secret_id": secret_id, "user_name": item["user_name"]}
        claimed = {"expired_at": now, "gsi3pk": "EXPIRING", "gsi3sk": f"{now}#{secret_id}"}
        sources = ", ".join(f":s{n}" for n, _ in enumerate(secret_sources(SecretEvent.EXPIRED)))
        won = self._move_secret(
            secret_id,
            (str(SecretEvent.EXPIRED), item["request_id"], None, detail),
            {"state": str(SecretState.EXPIRED), **GONE, **SEALED_ONLY, **claimed},
            f"#state IN ({sources}) AND expires_at <= :now",
            {**{f":s{n}": str(s) for n, s in enumerate(secret_sources(SecretEvent.EXPIRED))}, ":now": now},
        ) or self._move_secret(
            secret_id,
            ("link_expiry_retried", item["request_id"], None, detail),
            claimed,
            "#state = :expired AND attribute_not_exists(expiry_done_at) AND expired_at <= :stale",
            {":expired": str(SecretState.EXPIRED), ":stale": stale},
        )
        return self.secret_row(secret_id) if won else None

    def finish_expiry(self, secret_id: str, detail: dict[str, object]) -> bool:
        """Mark the IAM work after expiry done (once); ``detail`` is audited (no secrets)."""
        item = self._secret_item(secret_id)
        if item is None:
            return False
        return self._move_secret(
            secret_id,
            ("link_expiry_done", item["request_id"], None, {"secret_id": secret_id, **detail}),
            {"expiry_done_at": iso(self.clock()), **NO_EXPIRY_WORK},
            "#state = :expired AND attribute_not_exists(expiry_done_at)",
            {":expired": str(SecretState.EXPIRED)},
        )

    # -- re-issue --------------------------------------------------------------------------

    def claim_reissue(self, secret_id: str, actor: str, states: Iterable[str]) -> SecretRow | None:
        """The right to replace this secret's credentials, once: marks it re-issued; a sealed,
        unexpired one becomes superseded (ciphertext removed). The row as claimed, or None."""
        allowed = {str(s) for s in secret_sources(SecretEvent.REISSUED)}
        wanted = {str(s) for s in states} & allowed
        item = self._secret_item(secret_id)
        if item is None or item["state"] not in wanted:
            return None
        now = iso(self.clock())
        flags = {"reissued_at": now, "reissued_by": actor}
        detail = {"secret_id": secret_id, "user_name": item["user_name"]}
        audit = (str(SecretEvent.REISSUED), item["request_id"], actor, detail)
        if item["state"] == str(SecretState.SEALED):
            moved = self._move_secret(
                secret_id,
                audit,
                {**flags, "state": str(SecretState.SUPERSEDED), **GONE, **SEALED_ONLY, **NO_EXPIRY_WORK},
                "#state = :sealed AND attribute_not_exists(reissued_at) AND expires_at > :now",
                {":sealed": str(SecretState.SEALED), ":now": now},
            )
        else:
            moved = self._move_secret(
                secret_id,
                audit,
                {**flags, **GONE},
                "#state = :seen AND attribute_not_exists(reissued_at)",
                {":seen": item["state"]},
            )
        return self.secret_row(secret_id) if moved else None

    def release_reissue(self, secret_id: str, actor: str, error: str) -> None:
        """Give back a re-issue claim after IAM refused, so it can be tried again; audited."""
        item = self._secret_item(secret_id)
        request_id = item["request_id"] if item else None
        audit = ("reissue_failed", request_id, actor, {"secret_id": secret_id, "error": error})
        released = item is not None and self._move_secret(
            secret_id, audit, {"reissued_at": None, "reissued_by": None}, "reissued_by = :actor", {":actor": actor}
        )
        if not released:
            self.table.write(audit)
