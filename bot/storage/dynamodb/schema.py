"""Creating the bot's DynamoDB table (``iam-user-bot init-store``) and finding it at start-up.

The table: keys ``pk``/``sk`` (strings), three global secondary indexes ``gsi1``…``gsi3`` (keys
``gsiNpk``/``gsiNsk``, every attribute projected), on-demand capacity, TTL on ``expires_ttl``
(garbage collection of drafts and event ids only), point-in-time recovery when the endpoint offers
it, and a ``META`` item holding the schema version of its items.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from bot.storage.dynamodb.table import GSIS, SCHEMA_VERSION, TTL_ATTRIBUTE, Table, TableMissing, encode

META_KEY = {"pk": "META", "sk": "META"}


def definition(name: str) -> dict[str, Any]:
    """``CreateTable`` parameters of the bot's table."""
    keys = ["pk", "sk", *(f"{g}{part}" for g in GSIS for part in ("pk", "sk"))]
    return {
        "TableName": name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [{"AttributeName": k, "AttributeType": "S"} for k in keys],
        "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": g,
                "KeySchema": [
                    {"AttributeName": f"{g}pk", "KeyType": "HASH"},
                    {"AttributeName": f"{g}sk", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for g in GSIS
        ],
        "SSESpecification": {"Enabled": True},
    }


def create_table(table: Table) -> list[str]:
    """Create the table if absent, wait until it is active, switch TTL and point-in-time recovery
    on, and record the schema version. Idempotent. Returns what it did, in words.

    Raises:
        TableMissing: a table of that name exists but is not the bot's (other keys, missing
            indexes, or items without the bot's META item).
        ClientError: DynamoDB refused (permissions, limits).
    """
    client, name = table.client, table.name
    done: list[str] = []
    try:
        described = client.describe_table(TableName=name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        client.create_table(**definition(name))
        done.append(f"created table {name}")
        described = None
    if described is not None:
        keys = {k["AttributeName"]: k["KeyType"] for k in described["KeySchema"]}
        if keys != {"pk": "HASH", "sk": "RANGE"}:
            raise TableMissing(f"table {name} exists but is not the bot's (its keys are {sorted(keys)})")
        indexes = {g["IndexName"] for g in described.get("GlobalSecondaryIndexes", [])}
        if missing := sorted(set(GSIS) - indexes):
            raise TableMissing(f"table {name} exists but is not the bot's (it has no index {', '.join(missing)})")
        if table.get(META_KEY["pk"], META_KEY["sk"]) is None and client.scan(TableName=name, Limit=1)["Items"]:
            raise TableMissing(f"table {name} holds items but was not set up by init-store: not the bot's table")
        done.append(f"table {name} exists")
    client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ttl = client.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
    if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
        client.update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE}
        )
        done.append(f"TTL on {TTL_ATTRIBUTE}")
    try:
        client.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
        done.append("point-in-time recovery on")
    except ClientError as error:  # not offered by every endpoint (a local emulator)
        done.append(f"point-in-time recovery not switched on ({error.response.get('Error', {}).get('Code')})")
    meta = {**META_KEY, "kind": "meta", "schema_version": SCHEMA_VERSION}
    try:
        client.put_item(TableName=name, Item=encode(meta), ConditionExpression="attribute_not_exists(pk)")
        done.append(f"schema version {SCHEMA_VERSION}")
    except client.exceptions.ConditionalCheckFailedException:
        done.append(f"schema version {upgrade(table)}")  # an existing table: its upgrades, once
    return done


def upgrade(table: Table) -> int:
    """Move a table at an older schema version to :data:`SCHEMA_VERSION`, once (a condition on the
    version it read, so of several processes one does it). From 1: the links written before links
    were sealed get an ``UPGRADE#seal_link_records`` item, which ``init-store`` clears after
    sealing them (:func:`bot.credentials.ownership.seal_older_links`: a ``Scan``, which the bot's
    own role may not make). Returns the version."""
    item = table.get(META_KEY["pk"], META_KEY["sk"])
    version = int(item["schema_version"]) if item else SCHEMA_VERSION
    if version >= SCHEMA_VERSION:
        return version
    move = table.update(
        META_KEY["pk"],
        META_KEY["sk"],
        set_={"schema_version": SCHEMA_VERSION},
        condition="schema_version = :old",
        values={":old": version},
    )
    pending = table.put({"pk": "UPGRADE#seal_link_records", "sk": "UPGRADE", "kind": "upgrade"})
    table.write(("schema_upgraded", None, None, {"from": version, "to": SCHEMA_VERSION}), move, pending)
    return SCHEMA_VERSION


def require_table(table: Table) -> int:
    """The schema version of an existing bot table.

    Raises:
        TableMissing: no such table, or not made by ``init-store`` (no META item), or newer than
            this bot.
    """
    try:
        item = table.get(META_KEY["pk"], META_KEY["sk"])
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise TableMissing(
                f"DynamoDB table {table.name} does not exist; create it with `iam-user-bot init-store`"
            ) from None
        raise
    if item is None:
        raise TableMissing(f"DynamoDB table {table.name} was not set up; run `iam-user-bot init-store`")
    version = int(item["schema_version"])
    if version > SCHEMA_VERSION:
        raise TableMissing(
            f"DynamoDB table {table.name} has schema version {version}, newer than this bot ({SCHEMA_VERSION})"
        )
    return version  # an older one is upgraded by init-store (upgrade), which also seals its links
