"""The upgrade that seals link records: the links and key rotations a store held before it (no seal) are sealed once,
with the bot's key, by the first start-up on the upgraded store (SQLite migration 8, DynamoDB
schema version 2), and then work as before; an unsealed record written after it is refused. On
both stores."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from unittest import mock

from bot import cli
from bot.credentials.ownership import SEAL_UPGRADE, seal_older_links
from bot.domain.records import NewSecret
from tests.conftest import BOT_TOKEN, RECIPIENT
from tests.credentials.test_forged_link_records import VICTIM, approvers_posts, events
from tests.support.lifecycle import seed_user
from tests.support.tamper import back_to_before_record_seals, tampered_harness


def test_links_from_before_the_upgrade_are_sealed_once_and_then_work(moto_server, slack, iam, tamper, tmp_path) -> None:
    before = tamper.open_store()  # the store as the bot before the upgrade left it
    request_id = seed_user(before, iam, VICTIM, RECIPIENT)
    (key_id,) = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]]
    old = NewSecret(
        secret_id="a" * 64,
        request_id=request_id,
        recipient=RECIPIENT,
        user_name=VICTIM,
        nonce=b"\0" * 12,
        ciphertext=b"\0" * 32,
        expires_at=before.clock() + timedelta(hours=1),
        access_key_id=key_id,
        console=True,
    )
    before.put_secret(old)
    other_request = seed_user(before, iam, "olga.old", RECIPIENT)  # and a key rotation under way
    (other_key,) = [k["AccessKeyId"] for k in iam.list_access_keys(UserName="olga.old")["AccessKeyMetadata"]]
    started = before.start_rotation(
        "olga.old", old_key_id=other_key, owner=RECIPIENT, request_id=other_request, kept_key_ids=[], actor=RECIPIENT
    )
    assert started is not None and started.seal is None
    back_to_before_record_seals(tamper)

    if tamper.backend == "dynamodb":  # the operator's init-store upgrades the table and seals its links
        env = {**moto_server.client_env(), "STORE": "dynamodb", "DYNAMODB_TABLE": tamper.table}
        with mock.patch.dict(os.environ, env):
            for name in ("SLACK_BOT_TOKEN", "CUSTOM_PASSWORD_SEALING_KEY", "SLACK_SECRETS_FROM"):
                os.environ.pop(name, None)
            assert cli.main(["init-store"]) == 2  # without the bot's key: nothing sealed, still pending
            assert tamper.open_store().upgrade_pending(SEAL_UPGRADE)
            # The bot's token where a Lambda deployment keeps it: Secrets Manager.
            secrets = moto_server.boto3_client("secretsmanager")
            arn = secrets.create_secret(
                Name="iam-user-bot/upgrade", SecretString=json.dumps({"SLACK_BOT_TOKEN": BOT_TOKEN})
            )
            os.environ["SLACK_SECRETS_FROM"] = f"secretsmanager:{arn['ARN']}"
            assert cli.main(["init-store"]) == 0
    else:  # init-store on the SQLite file migrates it; the bot's start-up seals, no secret needed here
        env = {**moto_server.client_env(), "STORE": "sqlite", "DATABASE_PATH": str(tamper.db)}
        with mock.patch.dict(os.environ, env):
            for name in ("SLACK_BOT_TOKEN", "CUSTOM_PASSWORD_SEALING_KEY", "SLACK_SECRETS_FROM"):
                os.environ.pop(name, None)
            assert cli.main(["init-store"]) == 0
            assert tamper.open_store().upgrade_pending(SEAL_UPGRADE)
    bot = tampered_harness(moto_server, slack, tamper, tmp_path)  # the first start-up after the upgrade

    row = bot.store.secret_row(old.secret_id)
    assert row is not None and row.seal == bot.services.links.seal.link(row)
    assert [e["secret_id"] for e in events(bot, "link_record_sealed")] == [old.secret_id]
    rotation = bot.store.get_rotation("olga.old")
    assert rotation is not None and rotation.seal == bot.services.links.seal.rotation(rotation)
    assert [e["user_name"] for e in events(bot, "rotation_record_sealed")] == ["olga.old"]
    assert [e["upgrade"] for e in events(bot, "upgrade_done")] == [SEAL_UPGRADE]
    assert not bot.store.upgrade_pending(SEAL_UPGRADE)
    outcome = bot.services.reissues.resend(old.secret_id, RECIPIENT)
    assert outcome.ok, outcome.message
    assert [k["AccessKeyId"] for k in iam.list_access_keys(UserName=VICTIM)["AccessKeyMetadata"]] != [key_id]

    # After the upgrade, an unsealed record (a store writer's) is never sealed, at any start-up.
    tamper.open_store().put_secret(
        NewSecret(**{**old.__dict__, "secret_id": "b" * 64, "expires_at": bot.store.clock() + timedelta(hours=1)})
    )
    assert seal_older_links(tamper.open_store(), bot.services.links.seal) == 0
    refused = bot.services.reissues.resend("b" * 64, RECIPIENT)
    assert not refused.ok and "carries no seal" in refused.message
    assert bot.store.secret_row("b" * 64).seal is None  # type: ignore[union-attr]
    assert len(approvers_posts(slack)) == 1


def test_a_new_store_asks_for_no_upgrade(tamper) -> None:
    store = tamper.open_store()
    assert not store.upgrade_pending(SEAL_UPGRADE)
    assert store.unsealed_secrets() == []
