"""The storage backends the contract suite runs on: one ``store_factory`` param per backend.

``store_factory()`` opens a *new* store instance over the same backing data each call, as a second
process (or host) would; ``store`` is the first one. Adding a backend is one more name in
``BACKENDS`` and one more branch in :func:`_open`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from bot.storage.base import Store
from bot.storage.dynamodb import DynamoStore
from bot.storage.sqlite import SqliteStore

if TYPE_CHECKING:
    from tests.conftest import Clock

BACKENDS = ["sqlite", "dynamodb"]

StoreFactory = Callable[[], Store]


def _open(backend: str, tmp_path: Path, clock: Clock, request: pytest.FixtureRequest) -> Store:
    """One new store instance of ``backend`` over this test's backing data."""
    if backend == "sqlite":
        return SqliteStore(tmp_path / "contract.db", clock=clock)
    if backend == "dynamodb":
        # One table per test on moto server (as in production, several instances share it).
        table = request.getfixturevalue("dynamodb_table")
        return DynamoStore(table, clock=clock, client=request.getfixturevalue("moto_server").boto3_client("dynamodb"))
    raise ValueError(f"no such storage backend: {backend}")


@pytest.fixture(params=BACKENDS, ids=str)
def store_factory(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> Iterator[StoreFactory]:
    """``make() -> Store``: a new instance over the same data on every call (two processes)."""
    opened: list[Store] = []

    def make() -> Store:
        store = _open(request.param, tmp_path, clock, request)
        opened.append(store)
        return store

    yield make
    for store in opened:
        close = getattr(store, "close", None)  # not part of the protocol; a backend may have one
        if callable(close):
            close()


@pytest.fixture
def store(store_factory: StoreFactory) -> Store:
    return store_factory()
