"""The storage contract for the users' life after onboarding: key rotations and lifecycle findings,
on every backend (SQLite, and DynamoDB on moto server), through the protocol only.

The state table walks try every (state, event) pair of ``ROTATION_MOVES`` and ``FINDING_MOVES``:
a pair in the table moves and writes exactly one audit row; any other pair changes nothing and
writes nothing. Races check that of several processes exactly one wins.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import pytest

from bot.domain.records import RotationRow
from bot.domain.states import (
    FINDING_MOVES,
    ROTATION_MOVES,
    FindingEvent,
    FindingState,
    RotationEvent,
    RotationState,
)
from bot.storage.base import Store
from tests.storage.test_contract import new_events, race, shortest_path

if TYPE_CHECKING:
    from tests.conftest import Clock
    from tests.storage.conftest import StoreFactory

USER = "nina.newhire"
OWNER = "U0NEWHIRE1"
REQUEST = "R-7KQ2M9XD"
OLD_KEY = "AKIAOLDKEY0000000001"
NEW_KEY = "AKIANEWKEY0000000002"


def start(store: Store, user: str = USER, old: str = OLD_KEY, kept: tuple[str, ...] = ()) -> RotationRow | None:
    return store.start_rotation(user, old_key_id=old, owner=OWNER, request_id=REQUEST, kept_key_ids=kept, actor=OWNER)


def path_to(state: RotationState) -> list[RotationEvent]:
    """The events that take a user with no rotation to ``state``, read off the state table."""
    return shortest_path(ROTATION_MOVES, None, state)


def apply(store: Store, event: RotationEvent, **fields: str) -> RotationRow | None:
    if event is RotationEvent.STARTED:
        return start(store)
    return store.move_rotation(USER, event, actor="U0WALKER01", detail={"walk": 1}, **fields)


def rotation_in(store: Store, state: RotationState | None) -> RotationRow | None:
    if state is None:
        return None
    row = None
    for event in path_to(state):
        row = apply(store, event)
        assert row is not None, f"setup move {event} refused"
    assert row is not None and row.state is state
    return row


ROTATION_PAIRS = [
    pytest.param(state, event, id=f"{state or 'none'}-{event}")
    for state, event in itertools.product([None, *RotationState], RotationEvent)
]


@pytest.mark.parametrize(("state", "event"), ROTATION_PAIRS)
def test_rotation_table_walk(store: Store, clock: Clock, state: RotationState | None, event: RotationEvent) -> None:
    before_row = rotation_in(store, state)
    before = new_events(store, [])
    clock.advance(seconds=1)

    moved = apply(store, event, new_key_id=NEW_KEY) if event is RotationEvent.KEY_CREATED else apply(store, event)

    added = new_events(store, before)
    if (state, event) in ROTATION_MOVES:
        target = ROTATION_MOVES[state, event]
        assert moved is not None and moved.state is target and moved.updated_at == clock()
        assert store.get_rotation(USER) == moved
        assert [e.event for e in added] == [str(event)]
        assert added[0].request_id == REQUEST
        assert added[0].detail["user_name"] == USER and added[0].detail["to"] == str(target)
        assert added[0].detail["from"] == (str(state) if state else None)
        if event is RotationEvent.KEY_CREATED:
            assert moved.new_key_id == NEW_KEY
    else:
        assert moved is None
        assert store.get_rotation(USER) == before_row
        assert added == []


def test_a_new_rotation_forgets_the_last_ones_key_link_and_error(store: Store, clock: Clock) -> None:
    assert start(store, kept=("AKIAKEPT000000000003",)) is not None
    assert store.move_rotation(USER, RotationEvent.KEY_CREATED, actor=None, new_key_id=NEW_KEY) is not None
    delivered = store.move_rotation(USER, RotationEvent.DELIVERED, actor=None, secret_id="d" * 64)
    assert delivered is not None and delivered.secret_id == "d" * 64 and delivered.new_key_id == NEW_KEY
    assert delivered.kept_key_ids == ("AKIAKEPT000000000003",) and delivered.owner == OWNER
    clock.advance(minutes=5)

    again = start(store, old=NEW_KEY)

    assert again is not None and again.state is RotationState.STARTED
    assert (again.old_key_id, again.new_key_id, again.secret_id, again.error) == (NEW_KEY, None, None, None)
    assert again.started_at == clock() and again.kept_key_ids == ()


def test_a_failed_move_keeps_its_error(store: Store) -> None:
    assert start(store) is not None
    failed = store.move_rotation(USER, RotationEvent.FAILED, actor=None, error="CreateAccessKey: LimitExceeded")
    assert failed is not None and failed.error == "CreateAccessKey: LimitExceeded"
    assert store.get_rotation(USER) == failed


def test_rotations_in_lists_by_state_least_recently_moved_first(store: Store, clock: Clock) -> None:
    for name in ("carol", "alice", "bob"):
        assert start(store, user=name) is not None
        clock.advance(seconds=1)
    assert store.move_rotation("alice", RotationEvent.KEY_CREATED, actor=None, new_key_id=NEW_KEY) is not None
    assert start(store, user="dave") is not None

    started = store.rotations_in([RotationState.STARTED])
    running = store.rotations_in([RotationState.STARTED, RotationState.KEY_CREATED])

    assert [r.user_name for r in started] == ["carol", "bob", "dave"]
    assert [r.user_name for r in running] == ["carol", "bob", "alice", "dave"]
    assert [r.user_name for r in store.rotations_in([RotationState.DELIVERED])] == []
    assert len(store.rotations_in([RotationState.STARTED], limit=2)) == 2


def test_unsealed_rotations_counts_only_unsealed_records_against_its_limit(store: Store, clock: Clock) -> None:
    # The one-time upgrade seals them page by page: sealed records must not hide the rest.
    for name in ("alice", "bob", "carol"):
        assert start(store, user=name) is not None
        clock.advance(seconds=1)
    assert store.seal_rotation("alice", "seal1:00000000:aa") and store.seal_rotation("bob", "seal1:00000000:bb")

    assert [r.user_name for r in store.unsealed_rotations(limit=2)] == ["carol"]
    assert store.seal_rotation("carol", "seal1:00000000:cc")
    assert store.unsealed_rotations(limit=2) == []
    assert not store.seal_rotation("carol", "seal1:00000000:dd")  # once


# -- findings ------------------------------------------------------------------------------------

FINDING_PAIRS = [
    pytest.param(state, event, id=f"{state or 'none'}-{event}")
    for state, event in itertools.product([None, *FindingState], FindingEvent)
]


@pytest.mark.parametrize(("state", "event"), FINDING_PAIRS)
def test_finding_table_walk(store: Store, clock: Clock, state: FindingState | None, event: FindingEvent) -> None:
    detail = {"user_name": USER, "age_days": 80}
    if state is not None:
        assert store.open_finding("rotation_due", OLD_KEY, detail=detail)
    if state is FindingState.RESOLVED:
        assert store.resolve_finding("rotation_due", OLD_KEY)
    found_before = store.get_finding("rotation_due", OLD_KEY)
    assert (found_before.state if found_before else None) is state
    before = new_events(store, [])
    clock.advance(seconds=1)

    if event is FindingEvent.OPENED:
        moved = store.open_finding("rotation_due", OLD_KEY, detail={"user_name": USER, "age_days": 81}, actor="U0X")
    else:
        moved = store.resolve_finding("rotation_due", OLD_KEY, actor="U0X", detail={"why": "rotated"})

    added = new_events(store, before)
    found = store.get_finding("rotation_due", OLD_KEY)
    if (state, event) in FINDING_MOVES:
        assert moved is True and found is not None and found.state is FINDING_MOVES[state, event]
        assert [e.event for e in added] == [str(event)] and added[0].actor == "U0X"
        assert added[0].detail["kind"] == "rotation_due" and added[0].detail["subject"] == OLD_KEY
        if event is FindingEvent.OPENED:
            assert found.detail == {"user_name": USER, "age_days": 81} and found.created_at == clock()
            assert added[0].detail["age_days"] == 81
        else:
            assert found.resolved_at == clock() and found.detail == detail and added[0].detail["why"] == "rotated"
    else:
        assert moved is False and found == found_before and added == []


def test_open_findings_lists_one_kind_newest_first_and_leaves_resolved_out(store: Store, clock: Clock) -> None:
    for subject in ("K1", "K2", "K3"):
        assert store.open_finding("rotation_due", subject, detail={"n": subject})
        clock.advance(seconds=1)
    assert store.open_finding("owner_left", "U0GONE0001", detail={})
    assert store.resolve_finding("rotation_due", "K2")

    assert [f.subject for f in store.open_findings("rotation_due")] == ["K3", "K1"]
    assert [f.detail for f in store.open_findings("rotation_due", limit=1)] == [{"n": "K3"}]
    assert [f.subject for f in store.open_findings("owner_left")] == ["U0GONE0001"]
    assert store.open_findings("unused_credential") == []


# -- races: one winner ---------------------------------------------------------------------------


def test_concurrent_rotation_starts_have_one_winner(store: Store, store_factory: StoreFactory) -> None:
    results = race(store_factory, lambda s, i: start(s, old=f"AKIARACE{i:012d}"))
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert store.get_rotation(USER) == winners[0]
    assert [e.event for e in store.audit_events()] == [str(RotationEvent.STARTED)]


def test_concurrent_completions_have_one_winner(store: Store, store_factory: StoreFactory) -> None:
    rotation_in(store, RotationState.DELIVERED)
    before = new_events(store, [])
    results = race(store_factory, lambda s, i: s.move_rotation(USER, RotationEvent.COMPLETED, actor=f"U{i}"))
    assert len([r for r in results if r is not None]) == 1
    assert [e.event for e in new_events(store, before)] == [str(RotationEvent.COMPLETED)]


def test_concurrent_openings_of_a_finding_have_one_winner(store: Store, store_factory: StoreFactory) -> None:
    results = race(store_factory, lambda s, i: s.open_finding("owner_left", "U0GONE0001", detail={"by": i}))
    assert results.count(True) == 1
    (opened,) = [e for e in store.audit_events() if e.event == str(FindingEvent.OPENED)]
    assert opened.detail["by"] == results.index(True)
