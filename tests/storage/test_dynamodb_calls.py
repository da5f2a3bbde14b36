"""The DynamoDB store's calls do not grow with the table: provisioning a request makes the same
calls whether the table holds nothing else or thousands of other items and earlier requests of
the same people (no scans, no per-item reads of lists)."""

from __future__ import annotations

import uuid
from collections import Counter
from concurrent.futures import Executor, Future
from pathlib import Path

import pytest

from bot.domain.models import AccessType, RequestForm
from bot.storage.dynamodb import DynamoStore
from tests.conftest import RECIPIENT
from tests.support.provisioning import file_and_approve, make_harness

pytestmark = pytest.mark.e2e


def test_provisioning_makes_the_same_calls_however_full_the_table_is(
    moto_server, slack, iam, dynamodb_table: str, tmp_path: Path
) -> None:
    """(``iam`` removes the users it creates afterwards.)"""
    client = moto_server.boto3_client("dynamodb")
    calls: Counter[str] = Counter()
    client.meta.events.register("before-call.dynamodb.*", lambda model, **_: calls.update([model.name]))
    # View refreshes (approvers' message, App Home) are coalesced by time, so they are dropped here
    # and the App Home's read is counted on its own below.
    store = DynamoStore(dynamodb_table, client=client)
    bot = make_harness(moto_server, slack, tmp_path / "unused.db", store=store, background=Dropped())

    def provision_one() -> Counter[str]:
        form = RequestForm(
            recipients=(RECIPIENT,),
            user_names=(f"calls-{uuid.uuid4().hex[:6]}",),
            access_types=frozenset({AccessType.PROGRAMMATIC}),
        )
        request = file_and_approve(bot, form)
        calls.clear()
        assert bot.provisioning.provision(request.id).status == "provisioned"
        return Counter(calls)

    first = provision_one()
    for _ in range(6):  # earlier requests of the same requester and recipient
        provision_one()
    for n in range(40):  # other people's pending requests, in the same indexes
        other = RequestForm(
            recipients=(f"U0OTHER{n:03d}",),
            user_names=(f"other-{n}",),
            access_types=frozenset({AccessType.PROGRAMMATIC}),
        )
        bot.store.create_request(f"U0ASKER{n:03d}", other)
    later = [provision_one() for _ in range(2)]
    assert sum(first.values()) > 10  # the recorder saw the provisioning
    assert later == [first] * 2, (first, later)
    assert "Scan" not in first

    # What the App Home reads for a recipient with nine requests: one query, one batch read.
    calls.clear()
    assert len(store.requests_for_recipient(RECIPIENT)) == 9
    assert calls == Counter({"Query": 1, "BatchGetItem": 1})


class Dropped(Executor):
    """Accepts work and never runs it."""

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        return Future()
