"""``init-store`` adopts only an empty table with the bot's keys and indexes (the Lambda template's)
and refuses anyone else's; without a region it names the variable instead of guessing one."""

from __future__ import annotations

import uuid

import pytest

from bot.storage.dynamodb import DynamoStore
from bot.storage.dynamodb.schema import create_table, definition
from bot.storage.dynamodb.table import Table, TableMissing

pytestmark = pytest.mark.e2e


def table_name() -> str:
    return f"other-{uuid.uuid4().hex[:8]}"


def test_a_table_with_other_keys_or_no_indexes_is_refused_and_left_alone(moto_server) -> None:
    client = moto_server.boto3_client("dynamodb")
    name = table_name()
    client.create_table(
        TableName=name,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"} for k in ("pk", "sk")],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    client.put_item(TableName=name, Item={"pk": {"S": "ORDER#1"}, "sk": {"S": "x"}})
    with pytest.raises(TableMissing, match="no index gsi1, gsi2, gsi3"):
        create_table(Table(name, client))
    ttl = client.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
    assert ttl.get("TimeToLiveStatus") != "ENABLED"  # nothing switched on
    assert client.get_item(TableName=name, Key={"pk": {"S": "META"}, "sk": {"S": "META"}}).get("Item") is None


def test_a_table_shaped_like_the_bots_but_holding_other_items_is_refused(moto_server) -> None:
    client = moto_server.boto3_client("dynamodb")
    name = table_name()
    client.create_table(**definition(name))
    client.put_item(TableName=name, Item={"pk": {"S": "SOMEONE#1"}, "sk": {"S": "else"}})
    with pytest.raises(TableMissing, match="holds items but was not set up by init-store"):
        create_table(Table(name, client))
    with pytest.raises(TableMissing):
        DynamoStore(name, client=client)


def test_an_empty_table_of_the_bots_shape_is_adopted(moto_server) -> None:
    client = moto_server.boto3_client("dynamodb")
    name = table_name()
    client.create_table(**definition(name))  # what the Lambda template makes
    assert f"table {name} exists" in create_table(Table(name, client))
    assert DynamoStore(name, client=client).schema_version >= 1
    assert f"table {name} exists" in create_table(Table(name, client))  # idempotent, META now there


def test_without_a_region_the_table_is_not_guessed(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/aws-config")
    with pytest.raises(TableMissing, match="set AWS_REGION or AWS_DEFAULT_REGION"):
        Table("iam-user-bot")
