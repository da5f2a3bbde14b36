"""The storage contract: what every :class:`bot.storage.base.Store` backend does, checked only
through the protocol's methods (no SQL, no backend internals), so each backend runs the same suite.

The state table walks try every (state, event) pair of :mod:`bot.domain.states` against the store:
a pair in the table moves and writes exactly one audit row; any other pair changes nothing and
writes nothing.
"""

from __future__ import annotations

import itertools
import os
import secrets
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest

from bot.domain.models import (
    AccessType,
    AuditEvent,
    GroupGrant,
    OnboardingRequest,
    PasswordMode,
    PermissionExpansion,
    RequestForm,
    RiskFlag,
)
from bot.domain.plan import Step, StepKind
from bot.domain.records import ApprovalVerdict, Lease, NewSecret, SecretRow
from bot.domain.states import (
    FINAL_STATUSES,
    REQUEST_MOVES,
    SECRET_MOVES,
    STEP_MOVES,
    RequestEvent,
    RequestStatus,
    SecretEvent,
    SecretState,
    StepEvent,
    StepState,
)
from bot.storage.base import Store

if TYPE_CHECKING:
    from tests.conftest import Clock
    from tests.storage.conftest import StoreFactory

REQUESTER = "U0REQUEST1"
RECIPIENT = "U0NEWHIRE1"
ACTOR = "U0ACTOR001"
FINGERPRINT = "f" * 64

FORM = RequestForm(
    recipients=(RECIPIENT,),
    user_names=("alice",),
    access_types=frozenset({AccessType.CONSOLE}),
    justification="storage contract tests",
)
EXPANSION = PermissionExpansion(
    groups=(GroupGrant(name="developers"),), account_id="123456789012", users_may_change_password=True
)
FLAGS = (RiskFlag(code="admin", text="grants AdministratorAccess", sensitive=True),)
RACERS = 8


# -- helpers ----------------------------------------------------------------------------------


def lease(clock: Clock, owner: str, minutes: float = 10) -> Lease:
    return Lease(owner=owner, until=clock() + timedelta(minutes=minutes))


def never_gone(owner: str) -> bool:
    return False


def always_gone(owner: str) -> bool:
    return True


def shortest_path(moves: Mapping[tuple[Any, Any], Any], start: Any, goal: Any) -> list[Any]:
    """The fewest events of the state table ``moves`` that take ``start`` to ``goal`` (breadth first)."""
    paths: dict[Any, list[Any]] = {start: []}
    frontier = [start]
    while frontier:
        now = frontier.pop(0)
        for (source, event), target in moves.items():
            if source is now and target not in paths:
                paths[target] = [*paths[now], event]
                frontier.append(target)
    return paths[goal]


def path_to(status: RequestStatus) -> list[RequestEvent]:
    """The events that take a new (pending) request to ``status``, read off the state table."""
    return shortest_path(REQUEST_MOVES, RequestStatus.PENDING, status)


def request_in(
    store: Store, clock: Clock, status: RequestStatus, form: RequestForm = FORM, owner: str = "host-a:1:walk"
) -> OnboardingRequest:
    """A new request moved to ``status`` by allowed moves only (a lease is taken with provisioning)."""
    request = store.create_request(REQUESTER, form)
    for event in path_to(status):
        taken = lease(clock, owner) if event is RequestEvent.PROVISIONING_STARTED else None
        moved = store.move_request(request.id, event, actor=ACTOR, lease=taken)
        assert moved is not None, f"setup move {event} from {request.status} refused"
        request = moved
    assert request.status is status
    return request


def new_secret(
    clock: Clock,
    request_id: str,
    *,
    recipient: str = RECIPIENT,
    user_name: str = "alice",
    hours: float = 1,
    replaces: str | None = None,
) -> NewSecret:
    return NewSecret(
        secret_id=secrets.token_urlsafe(16),
        request_id=request_id,
        recipient=recipient,
        user_name=user_name,
        nonce=os.urandom(12),
        ciphertext=os.urandom(48),
        expires_at=clock() + timedelta(hours=hours),
        access_key_id="AKIAEXAMPLE000000001",
        console=True,
        replaces=replaces,
    )


def put(store: Store, clock: Clock, request_id: str, **kwargs: Any) -> NewSecret:
    secret = new_secret(clock, request_id, **kwargs)
    store.put_secret(secret)
    return secret


def events_of(store: Store, request_id: str | None = None) -> list[AuditEvent]:
    return store.audit_events(request_id=request_id)


def new_events(store: Store, before: list[AuditEvent], request_id: str | None = None) -> list[AuditEvent]:
    after = store.audit_events(request_id=request_id)
    assert after[: len(before)] == before, "the audit log is append-only"
    return after[len(before) :]


def assert_from(detail: dict[str, object], status: RequestStatus) -> None:
    """``from`` names the status the request left (a one-element list of it is accepted too)."""
    assert detail["from"] in (str(status), [str(status)]), detail


def race(make: StoreFactory, action: Callable[[Store, int], Any], n: int = RACERS) -> list[Any]:
    """Run ``action(store_i, i)`` on ``n`` threads at once, each with its own store instance."""
    stores = [make() for _ in range(n)]
    barrier = threading.Barrier(n, timeout=30)

    def run(i: int) -> Any:
        barrier.wait()
        return action(stores[i], i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


# -- the request state table, every pair --------------------------------------------------------

REQUEST_PAIRS = [
    pytest.param(status, event, id=f"{status}-{event}")
    for status, event in itertools.product(RequestStatus, RequestEvent)
]


@pytest.mark.parametrize(("status", "event"), REQUEST_PAIRS)
def test_request_table_walk(store: Store, clock: Clock, status: RequestStatus, event: RequestEvent) -> None:
    request = request_in(store, clock, status)
    before = events_of(store, request.id)
    clock.advance(seconds=1)
    taken = lease(clock, "host-b:2:walk") if event is RequestEvent.PROVISIONING_STARTED else None

    moved = store.move_request(request.id, event, actor="U0WALKER01", detail={"walk": 1}, reason="walk", lease=taken)

    added = new_events(store, before, request.id)
    if (status, event) in REQUEST_MOVES:
        target = REQUEST_MOVES[status, event]
        assert moved is not None
        assert moved.id == request.id and moved.status is target and moved.reason == "walk"
        assert moved.updated_at == clock()
        assert store.get_request(request.id) == moved
        assert [e.event for e in added] == [str(event)]
        assert added[0].actor == "U0WALKER01" and added[0].request_id == request.id
        assert_from(added[0].detail, status)
        assert added[0].detail["to"] == str(target)
        assert added[0].detail["walk"] == 1
    else:
        assert moved is None
        assert store.get_request(request.id) == request
        assert added == []


# -- the secret state table, every pair the protocol can make ------------------------------------

SECRET_PAIRS = [
    pytest.param(state, event, id=f"{state}-{event}") for state, event in itertools.product(SecretState, SecretEvent)
]


def secret_in(store: Store, clock: Clock, request_id: str, state: SecretState) -> NewSecret:
    """A secret of a ``provisioning`` request brought to ``state`` by the protocol's moves."""
    secret = put(store, clock, request_id)
    if state is SecretState.REVEALED:
        assert store.claim_secret(secret.secret_id) is not None
    elif state is SecretState.EXPIRED:
        clock.advance(hours=2)
        assert store.claim_expiry(secret.secret_id, lease_seconds=3600) is not None
    elif state is SecretState.SUPERSEDED:
        assert store.discard_unsent_links(request_id) == 1
    row = store.secret_row(secret.secret_id)
    assert row is not None and row.state is state and row.reissued_at is None
    return secret


@pytest.mark.parametrize(("state", "event"), SECRET_PAIRS)
def test_secret_table_walk(store: Store, clock: Clock, state: SecretState, event: SecretEvent) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    secret = secret_in(store, clock, request.id, state)
    sid = secret.secret_id
    if event is SecretEvent.EXPIRED and clock() < secret.expires_at:
        clock.advance(hours=2)  # only a secret past its expiry can expire
    row_before = store.secret_row(sid)
    before = events_of(store, request.id)

    returned: object
    if event is SecretEvent.REVEALED:
        returned = store.claim_secret(sid)
    elif event is SecretEvent.EXPIRED:
        returned = store.claim_expiry(sid, lease_seconds=3600)
    elif event is SecretEvent.REISSUED:
        returned = store.claim_reissue(sid, "U0WALKER01", [str(s) for s in SecretState])
    else:
        returned = store.discard_unsent_links(request.id)

    added = new_events(store, before, request.id)
    row = store.secret_row(sid)
    assert row is not None
    if (state, event) in SECRET_MOVES:
        target = SECRET_MOVES[state, event]
        assert row.state is target
        assert [e.event for e in added] == [str(event)]
        if event is SecretEvent.REVEALED:
            assert returned == (secret.nonce, secret.ciphertext)
        elif event is SecretEvent.DISCARDED:
            assert returned == 1
            assert added[0].detail["count"] == 1
        else:
            assert isinstance(returned, SecretRow) and returned.id == sid and returned.state is target
            assert added[0].detail["secret_id"] == sid
        if event is SecretEvent.REISSUED:
            assert row.reissued_by == "U0WALKER01" and row.reissued_at == clock()
            assert added[0].actor == "U0WALKER01"
        assert store.claim_secret(sid) is None  # every move out of sealed deletes the ciphertext
    else:
        assert not returned
        assert row == row_before
        assert added == []


# -- the step table, every pair ------------------------------------------------------------------

STEP_PAIRS = [
    pytest.param(state, event, id=f"{state or 'none'}-{event}")
    for state, event in itertools.product([None, *StepState], StepEvent)
]
LABEL = "create_user alice"


@pytest.mark.parametrize(("state", "event"), STEP_PAIRS)
def test_step_table_walk(store: Store, clock: Clock, state: StepState | None, event: StepEvent) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    if state is not None:
        store.start_step(request.id, 0, LABEL)
    if state is StepState.DONE:
        assert store.finish_step(request.id, 0, LABEL, {"arn": "arn:aws:iam::123456789012:user/alice"})
    elif state is StepState.FAILED:
        assert store.fail_step(request.id, 0, LABEL, {"code": "EntityAlreadyExists", "message": "taken"})
    journal_before = store.journal(request.id)
    assert (journal_before[0].state if journal_before else None) is state
    before = events_of(store, request.id)
    clock.advance(seconds=1)

    if event is StepEvent.STARTED:
        returned = store.start_step(request.id, 0, LABEL)
    elif event is StepEvent.DONE:
        returned = store.finish_step(request.id, 0, LABEL, {"access_key_id": "AKIAEXAMPLE000000002"})
    else:
        returned = store.fail_step(request.id, 0, LABEL, {"code": "LimitExceeded", "message": "too many"})

    added = new_events(store, before, request.id)
    journal = store.journal(request.id)
    if (state, event) in STEP_MOVES:
        entry = journal[0]
        assert entry.state is STEP_MOVES[state, event] and entry.label == LABEL and entry.index == 0
        previous = journal_before[0].attempts if journal_before else 0
        if event is StepEvent.STARTED:
            assert returned is True
            assert entry.attempts == previous + 1
        else:
            assert returned is True
            assert entry.attempts == previous
        if event is StepEvent.DONE:
            assert entry.detail == {"access_key_id": "AKIAEXAMPLE000000002"}
        if event is StepEvent.FAILED:
            assert entry.detail == {"code": "LimitExceeded", "message": "too many"}
        assert [e.event for e in added] == [str(event)]
        assert added[0].detail["index"] == 0 and added[0].detail["step"] == LABEL
    else:
        assert not returned
        assert journal == journal_before
        assert added == []


# -- move_request side effects ---------------------------------------------------------------------


def test_decided_by_stamps_decided_at_and_reason_is_kept(store: Store, clock: Clock) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert request.decided_by is None and request.decided_at is None
    clock.advance(minutes=5)
    denied = store.move_request(request.id, RequestEvent.DENIED, actor=ACTOR, decided_by=ACTOR, reason="no budget")
    assert denied is not None
    assert denied.decided_by == ACTOR and denied.decided_at == clock() and denied.reason == "no budget"
    assert store.get_request(request.id) == denied


def test_move_without_decided_by_leaves_decision_empty(store: Store, clock: Clock) -> None:
    request = store.create_request(REQUESTER, FORM)
    cancelled = store.move_request(request.id, RequestEvent.CANCELLED, actor=REQUESTER)
    assert cancelled is not None and cancelled.decided_by is None and cancelled.decided_at is None


def test_failed_move_stores_the_error(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    failed = store.move_request(request.id, RequestEvent.FAILED, actor=None, error="CreateUser: EntityAlreadyExists")
    assert failed is not None and failed.status is RequestStatus.FAILED
    assert store.get_request(request.id).error == "CreateUser: EntityAlreadyExists"  # type: ignore[union-attr]


def test_move_of_unknown_request_returns_none(store: Store) -> None:
    assert store.move_request("R-UNKNOWN9", RequestEvent.DENIED, actor=ACTOR) is None
    assert store.audit_events(request_id="R-UNKNOWN9") == []


def test_provisioning_started_takes_the_lease(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.APPROVED)
    held = lease(clock, "host-a:1:aaaa")
    moved = store.move_request(request.id, RequestEvent.PROVISIONING_STARTED, actor=None, lease=held)
    assert moved is not None and moved.status is RequestStatus.PROVISIONING
    assert store.claim_lease(request.id, lease(clock, "host-b:2:bbbb"), never_gone) is False
    assert store.renew_lease(request.id, lease(clock, "host-a:1:aaaa", minutes=20)) is True


@pytest.mark.parametrize("event", [RequestEvent.PROVISIONED, RequestEvent.FAILED], ids=str)
def test_a_move_into_a_final_status_drops_the_lease(store: Store, clock: Clock, event: RequestEvent) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING, owner="host-a:1:aaaa")
    assert store.renew_lease(request.id, lease(clock, "host-a:1:aaaa")) is True
    moved = store.move_request(request.id, event, actor=None)
    assert moved is not None and moved.status in FINAL_STATUSES
    assert store.renew_lease(request.id, lease(clock, "host-a:1:aaaa")) is False  # no longer held
    assert store.claim_lease(request.id, lease(clock, "host-b:2:bbbb"), always_gone) is False  # not provisioning


# -- concurrency: one winner, one audit row ----------------------------------------------------------


@dataclass
class Race:
    action: Callable[[Store, int], Any]
    request_id: str | None = None
    audited: str | None = None  # the winner's one audit event ("": any name; None: not audited)
    prize: object = None  # what the winner must get back, when it is a value


def race_move_request(store: Store, clock: Clock) -> Race:
    request = store.create_request(REQUESTER, FORM)
    action = lambda s, i: s.move_request(request.id, RequestEvent.DENIED, actor=f"U{i}", decided_by=f"U{i}")  # noqa: E731
    return Race(action, request.id, str(RequestEvent.DENIED))


def race_claim_secret(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    secret = put(store, clock, request.id)
    return Race(
        lambda s, i: s.claim_secret(secret.secret_id),
        request.id,
        str(SecretEvent.REVEALED),
        (secret.nonce, secret.ciphertext),
    )


def race_claim_expiry(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    secret = put(store, clock, request.id)
    clock.advance(hours=2)
    return Race(lambda s, i: s.claim_expiry(secret.secret_id, 3600), request.id, str(SecretEvent.EXPIRED))


def race_claim_reissue(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    secret = put(store, clock, request.id)
    return Race(
        lambda s, i: s.claim_reissue(secret.secret_id, f"U{i}", ["sealed", "revealed", "expired"]),
        request.id,
        str(SecretEvent.REISSUED),
    )


def race_mark_reuse(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    secret = put(store, clock, request.id)
    assert store.claim_secret(secret.secret_id) is not None
    return Race(lambda s, i: s.mark_reuse(secret.secret_id), request.id, "")


def race_mark_reminded(store: Store, clock: Clock) -> Race:
    request = store.create_request(REQUESTER, FORM)
    assert store.save_review(request.id, EXPANSION, FLAGS, 1)
    return Race(lambda s, i: s.mark_reminded(request.id), request.id)


def race_delete_draft(store: Store, clock: Clock) -> Race:
    store.put_draft("V0DRAFT", REQUESTER, '{"step": 3}')
    return Race(lambda s, i: s.delete_draft("V0DRAFT"))


def race_remember_event(store: Store, clock: Clock) -> Race:
    return Race(lambda s, i: s.remember_event("Ev0RETRIED"))


def race_claim_lease(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.APPROVED)
    assert store.move_request(request.id, RequestEvent.PROVISIONING_STARTED, actor=None) is not None  # no lease
    return Race(lambda s, i: s.claim_lease(request.id, lease(clock, f"host-{i}:{i}:race"), never_gone), request.id)


def race_finish_step(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    store.start_step(request.id, 0, LABEL)
    return Race(lambda s, i: s.finish_step(request.id, 0, LABEL, {"by": i}), request.id, str(StepEvent.DONE))


def race_fail_step(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    store.start_step(request.id, 0, LABEL)
    failure = {"code": "Throttling", "message": "rate exceeded"}
    return Race(lambda s, i: s.fail_step(request.id, 0, LABEL, failure), request.id, str(StepEvent.FAILED))


def race_discard_unsent_links(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    put(store, clock, request.id, user_name="alice")
    put(store, clock, request.id, user_name="bob")
    return Race(lambda s, i: s.discard_unsent_links(request.id), request.id, str(SecretEvent.DISCARDED), 2)


def race_finish_expiry(store: Store, clock: Clock) -> Race:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    sid = put(store, clock, request.id).secret_id
    clock.advance(hours=2)
    assert store.claim_expiry(sid, 3600) is not None
    return Race(lambda s, i: s.finish_expiry(sid, {"by": i}), request.id, "link_expiry_done")


def race_save_review(store: Store, clock: Clock) -> Race:
    request = store.create_request(REQUESTER, FORM)
    return Race(lambda s, i: s.save_review(request.id, EXPANSION, FLAGS, 1 + i % 2), request.id, "permissions_read")


def race_forget_custom_password(store: Store, clock: Clock) -> Race:
    custom = FORM.model_copy(update={"password_mode": PasswordMode.CUSTOM, "custom_password_sealed": "v1.c2VhbGVk"})
    request = store.create_request(REQUESTER, custom)
    return Race(lambda s, i: s.forget_custom_password(request.id), request.id, "")


RACES = {
    "move_request": race_move_request,
    "claim_secret": race_claim_secret,
    "claim_expiry": race_claim_expiry,
    "claim_reissue": race_claim_reissue,
    "mark_reuse": race_mark_reuse,
    "mark_reminded": race_mark_reminded,
    "delete_draft": race_delete_draft,
    "remember_event": race_remember_event,
    "claim_lease": race_claim_lease,
    "finish_step": race_finish_step,
    "fail_step": race_fail_step,
    "discard_unsent_links": race_discard_unsent_links,
    "finish_expiry": race_finish_expiry,
    "save_review": race_save_review,
    "forget_custom_password": race_forget_custom_password,
}


@pytest.mark.parametrize("name", list(RACES))
def test_concurrent_callers_have_exactly_one_winner(
    store: Store, store_factory: StoreFactory, clock: Clock, name: str
) -> None:
    setup = RACES[name](store, clock)
    before = events_of(store, setup.request_id) if setup.request_id else []

    results = race(store_factory, setup.action)

    winners = [i for i, result in enumerate(results) if result]
    assert len(winners) == 1, results
    assert all(result in (None, False) for i, result in enumerate(results) if i != winners[0])
    if setup.prize is not None:
        assert results[winners[0]] == setup.prize
    if setup.request_id is not None and setup.audited is not None:
        added = new_events(store, before, setup.request_id)
        if setup.audited:
            added = [e for e in added if e.event == setup.audited]
        assert len(added) == 1, added
        if name in ("move_request", "claim_reissue"):
            assert added[0].actor == f"U{winners[0]}"


def test_concurrent_move_leaves_the_winners_decision(store: Store, store_factory: StoreFactory, clock: Clock) -> None:
    request = store.create_request(REQUESTER, FORM)
    results = race(
        store_factory,
        lambda s, i: s.move_request(request.id, RequestEvent.DENIED, actor=f"U{i}", decided_by=f"U{i}"),
    )
    (winner,) = [r for r in results if r is not None]
    assert store.get_request(request.id) == winner
    assert winner.status is RequestStatus.DENIED


@pytest.mark.parametrize("required", [1, 2])
def test_concurrent_approvals_move_the_request_once(
    store: Store, store_factory: StoreFactory, clock: Clock, required: int
) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert store.save_review(request.id, EXPANSION, FLAGS, required)
    before = events_of(store, request.id)

    results = race(store_factory, lambda s, i: s.record_approval(request.id, f"U{i}", FINGERPRINT))

    verdicts = [r.verdict for r in results]
    assert verdicts.count(ApprovalVerdict.APPROVED) == 1
    assert verdicts.count(ApprovalVerdict.RECORDED) == required - 1
    assert verdicts.count(ApprovalVerdict.NOT_PENDING) == RACERS - required
    winner = next(r for r in results if r.verdict is ApprovalVerdict.APPROVED)
    approved = [e for e in new_events(store, before, request.id) if e.event == str(RequestEvent.APPROVED)]
    assert len(approved) == 1 and approved[0].actor == winner.request.decided_by
    now = store.get_request(request.id)
    assert now is not None and now.status is RequestStatus.APPROVED and now.decided_by == winner.request.decided_by
    assert len(store.get_review(request.id).approvals) == required  # type: ignore[union-attr]


# -- approvals -------------------------------------------------------------------------------------


def test_record_approval_is_not_ready_without_a_review(store: Store) -> None:
    request = store.create_request(REQUESTER, FORM)
    before = events_of(store, request.id)
    result = store.record_approval(request.id, ACTOR, FINGERPRINT)
    assert result.verdict is ApprovalVerdict.NOT_READY
    assert store.get_request(request.id).status is RequestStatus.PENDING  # type: ignore[union-attr]
    assert new_events(store, before, request.id) == []


def test_record_approval_is_not_ready_when_iam_could_not_be_read(store: Store) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert store.save_review(request.id, PermissionExpansion(error="AccessDenied: iam:GetGroup"), (), 1)
    before = events_of(store, request.id)
    result = store.record_approval(request.id, ACTOR, FINGERPRINT)
    assert result.verdict is ApprovalVerdict.NOT_READY
    assert store.get_request(request.id).status is RequestStatus.PENDING  # type: ignore[union-attr]
    assert store.get_review(request.id).approvals == ()  # type: ignore[union-attr]
    assert new_events(store, before, request.id) == []


def test_record_approval_counts_distinct_approvers(store: Store, clock: Clock) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert store.save_review(request.id, EXPANSION, FLAGS, 2)

    clock.advance(seconds=1)
    first = store.record_approval(request.id, "U0APPROVE1", FINGERPRINT)
    assert first.verdict is ApprovalVerdict.RECORDED
    assert (first.approvals, first.required) == (1, 2)
    assert first.request is not None and first.request.status is RequestStatus.PENDING

    clock.advance(seconds=1)
    before = events_of(store, request.id)
    again = store.record_approval(request.id, "U0APPROVE1", FINGERPRINT)
    assert again.verdict is ApprovalVerdict.DUPLICATE
    assert again.approvals == 1
    assert new_events(store, before, request.id) == []
    assert store.get_request(request.id).status is RequestStatus.PENDING  # type: ignore[union-attr]

    clock.advance(seconds=1)
    second = store.record_approval(request.id, "U0APPROVE2", FINGERPRINT)
    assert second.verdict is ApprovalVerdict.APPROVED
    assert (second.approvals, second.required) == (2, 2)
    assert second.request is not None and second.request.status is RequestStatus.APPROVED
    assert second.request.decided_by == "U0APPROVE2" and second.request.decided_at == clock()
    assert store.get_request(request.id) == second.request
    moved = [e for e in new_events(store, before, request.id) if e.event == str(RequestEvent.APPROVED)]
    assert len(moved) == 1 and moved[0].actor == "U0APPROVE2"
    assert_from(moved[0].detail, RequestStatus.PENDING)
    assert moved[0].detail["to"] == str(RequestStatus.APPROVED)

    before = events_of(store, request.id)
    late = store.record_approval(request.id, "U0APPROVE3", FINGERPRINT)
    assert late.verdict is ApprovalVerdict.NOT_PENDING
    assert late.request is not None and late.request.status is RequestStatus.APPROVED
    assert new_events(store, before, request.id) == []

    review = store.get_review(request.id)
    assert review is not None
    assert review.approvers == ("U0APPROVE1", "U0APPROVE2")
    assert [a.at for a in review.approvals] == [clock() - timedelta(seconds=2), clock()]
    assert review.fingerprint == FINGERPRINT


def test_approvals_of_different_fingerprints_do_not_add_up(store: Store) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert store.save_review(request.id, EXPANSION, FLAGS, 2)
    assert store.record_approval(request.id, "U0APPROVE1", "a" * 64).verdict is ApprovalVerdict.RECORDED
    assert store.record_approval(request.id, "U0APPROVE2", "b" * 64).verdict is ApprovalVerdict.RECORDED
    assert store.get_request(request.id).status is RequestStatus.PENDING  # type: ignore[union-attr]
    assert store.get_review(request.id).fingerprint is None  # type: ignore[union-attr]


def test_record_approval_on_a_denied_request_is_not_pending(store: Store) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert store.save_review(request.id, EXPANSION, FLAGS, 1)
    assert store.move_request(request.id, RequestEvent.DENIED, actor=ACTOR) is not None
    result = store.record_approval(request.id, "U0APPROVE1", FINGERPRINT)
    assert result.verdict is ApprovalVerdict.NOT_PENDING
    assert result.request is not None and result.request.status is RequestStatus.DENIED
    assert store.get_review(request.id).approvals == ()  # type: ignore[union-attr]


def test_save_review_once(store: Store) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert store.get_review(request.id) is None
    before = events_of(store, request.id)
    assert store.save_review(request.id, EXPANSION, FLAGS, 2) is True
    assert [e.event for e in new_events(store, before, request.id)] == ["permissions_read"]

    before = events_of(store, request.id)
    assert store.save_review(request.id, PermissionExpansion(account_id="999999999999"), (), 1) is False
    assert new_events(store, before, request.id) == []
    review = store.get_review(request.id)
    assert review is not None
    assert review.expansion == EXPANSION and review.flags == FLAGS and review.approvals_required == 2
    assert review.approvals == () and review.fingerprint is None and review.reminded_at is None


def test_mark_reminded_once_and_only_while_pending(store: Store, clock: Clock) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert store.save_review(request.id, EXPANSION, FLAGS, 1)
    clock.advance(hours=12)
    assert store.mark_reminded(request.id) is True
    assert store.get_review(request.id).reminded_at == clock()  # type: ignore[union-attr]
    assert store.mark_reminded(request.id) is False

    decided = store.create_request(REQUESTER, FORM)
    assert store.save_review(decided.id, EXPANSION, FLAGS, 1)
    assert store.move_request(decided.id, RequestEvent.DENIED, actor=ACTOR) is not None
    assert store.mark_reminded(decided.id) is False
    assert store.get_review(decided.id).reminded_at is None  # type: ignore[union-attr]


# -- one-time secrets ------------------------------------------------------------------------------


def test_put_secret_stores_metadata_only(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    before = events_of(store, request.id)
    secret = put(store, clock, request.id)

    row = store.secret_row(secret.secret_id)
    assert row == SecretRow(
        id=secret.secret_id,
        request_id=request.id,
        recipient=RECIPIENT,
        user_name="alice",
        state=SecretState.SEALED,
        created_at=clock(),
        expires_at=secret.expires_at,
        access_key_id="AKIAEXAMPLE000000001",
        console=True,
    )
    assert not {"nonce", "ciphertext", "key"} & {f.name for f in fields(row)}
    (issued,) = new_events(store, before, request.id)
    assert issued.event == "link_issued" and issued.detail["secret_id"] == secret.secret_id
    assert store.secret_row("no-such-secret") is None


def test_claim_secret_hands_the_ciphertext_out_once(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    secret = put(store, clock, request.id)
    clock.advance(minutes=5)
    assert store.claim_secret(secret.secret_id) == (secret.nonce, secret.ciphertext)
    row = store.secret_row(secret.secret_id)
    assert row is not None and row.state is SecretState.REVEALED and row.revealed_at == clock()

    before = events_of(store, request.id)
    assert store.claim_secret(secret.secret_id) is None
    assert store.claim_secret("no-such-secret") is None
    assert new_events(store, before, request.id) == []


def test_an_expired_secret_cannot_be_claimed_and_is_due(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    secret = put(store, clock, request.id, hours=1)
    sid = secret.secret_id
    assert store.due_expiries(lease_seconds=600) == []
    assert store.claim_expiry(sid, lease_seconds=600) is None  # not expired yet
    assert store.finish_expiry(sid, {"deactivated": True}) is False

    clock.advance(hours=1, seconds=1)
    assert store.claim_secret(sid) is None
    assert store.due_expiries(lease_seconds=600) == [sid]

    before = events_of(store, request.id)
    claimed = store.claim_expiry(sid, lease_seconds=600)
    assert claimed is not None and claimed.state is SecretState.EXPIRED and claimed.expired_at == clock()
    assert [e.event for e in new_events(store, before, request.id)] == [str(SecretEvent.EXPIRED)]
    assert store.claim_expiry(sid, lease_seconds=600) is None
    assert store.due_expiries(lease_seconds=600) == []  # claimed, not stale yet
    assert store.claim_secret(sid) is None

    before = events_of(store, request.id)
    assert store.finish_expiry(sid, {"deactivated": "AKIAEXAMPLE000000001"}) is True
    (done,) = new_events(store, before, request.id)
    assert done.event == "link_expiry_done" and done.detail["secret_id"] == sid
    assert store.finish_expiry(sid, {}) is False
    assert store.secret_row(sid).expiry_done_at == clock()  # type: ignore[union-attr]
    clock.advance(hours=2)
    assert store.due_expiries(lease_seconds=600) == []
    assert store.claim_expiry(sid, lease_seconds=600) is None


def test_a_stale_expiry_claim_is_due_again_and_retaken_once(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    sid = put(store, clock, request.id, hours=1).secret_id
    clock.advance(hours=2)
    assert store.claim_expiry(sid, lease_seconds=600) is not None
    clock.advance(seconds=601)  # the claimer died without finishing
    assert store.due_expiries(lease_seconds=600) == [sid]
    retaken = store.claim_expiry(sid, lease_seconds=600)
    assert retaken is not None and retaken.state is SecretState.EXPIRED
    assert store.claim_expiry(sid, lease_seconds=600) is None
    assert store.due_expiries(lease_seconds=600) == []


def test_due_expiries_respects_the_limit(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    ids = {put(store, clock, request.id, hours=1).secret_id for _ in range(3)}
    clock.advance(hours=2)
    assert set(store.due_expiries(lease_seconds=600)) == ids
    assert len(store.due_expiries(lease_seconds=600, limit=2)) == 2


def test_claim_reissue_supersedes_a_sealed_secret_and_can_be_released(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    secret = put(store, clock, request.id)
    sid = secret.secret_id
    assert store.claim_reissue(sid, ACTOR, ["revealed"]) is None  # not in a state the caller allows

    claimed = store.claim_reissue(sid, ACTOR, ["sealed"])
    assert claimed is not None and claimed.state is SecretState.SUPERSEDED
    assert claimed.reissued_by == ACTOR and claimed.reissued_at == clock()
    assert store.claim_secret(sid) is None  # the old link stops working at once
    assert store.claim_reissue(sid, "U0OTHER001", ["sealed", "superseded"]) is None  # once

    before = events_of(store, request.id)
    store.release_reissue(sid, ACTOR, "LimitExceeded: 2 access keys")
    (failed,) = new_events(store, before, request.id)
    assert failed.event == "reissue_failed" and failed.actor == ACTOR
    row = store.secret_row(sid)
    assert row is not None and row.reissued_at is None and row.reissued_by is None
    again = store.claim_reissue(sid, "U0OTHER001", ["sealed", "superseded"])
    assert again is not None and again.reissued_by == "U0OTHER001" and again.state is SecretState.SUPERSEDED


def test_claim_reissue_of_a_revealed_secret_keeps_its_state(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    sid = put(store, clock, request.id).secret_id
    assert store.claim_secret(sid) is not None
    assert store.claim_reissue(sid, ACTOR, ["sealed"]) is None
    claimed = store.claim_reissue(sid, ACTOR, ["sealed", "revealed"])
    assert claimed is not None and claimed.state is SecretState.REVEALED and claimed.reissued_by == ACTOR
    assert store.claim_reissue(sid, ACTOR, ["sealed", "revealed"]) is None


def test_claim_reissue_refuses_a_sealed_secret_past_expiry(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    sid = put(store, clock, request.id, hours=1).secret_id
    clock.advance(hours=2)
    before = events_of(store, request.id)
    assert store.claim_reissue(sid, ACTOR, ["sealed"]) is None
    assert store.secret_row(sid).state is SecretState.SEALED  # type: ignore[union-attr]
    assert new_events(store, before, request.id) == []


def test_mark_reuse_only_on_revealed_and_once(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    sid = put(store, clock, request.id).secret_id
    assert store.mark_reuse(sid) is None  # sealed: nothing to report
    assert store.mark_reuse("no-such-secret") is None
    assert store.claim_secret(sid) is not None
    clock.advance(minutes=1)

    before = events_of(store, request.id)
    row = store.mark_reuse(sid)
    assert row is not None and row.id == sid and row.request_id == request.id and row.recipient == RECIPIENT
    assert len(new_events(store, before, request.id)) == 1
    assert store.secret_row(sid).alerted_at == clock()  # type: ignore[union-attr]

    before = events_of(store, request.id)
    assert store.mark_reuse(sid) is None
    assert new_events(store, before, request.id) == []


def test_mark_reuse_ignores_expired_and_superseded(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    superseded = put(store, clock, request.id).secret_id
    assert store.claim_reissue(superseded, ACTOR, ["sealed"]) is not None
    expired = put(store, clock, request.id, hours=1).secret_id
    clock.advance(hours=2)
    assert store.claim_expiry(expired, 600) is not None
    assert store.mark_reuse(superseded) is None
    assert store.mark_reuse(expired) is None


def test_sealed_secrets_for_recipient_newest_first_and_sealed_only(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    first = put(store, clock, request.id, user_name="alice").secret_id
    clock.advance(seconds=1)
    revealed = put(store, clock, request.id, user_name="alice").secret_id
    clock.advance(seconds=1)
    third = put(store, clock, request.id, user_name="alice").secret_id
    clock.advance(seconds=1)
    put(store, clock, request.id, recipient="U0SOMEONE1", user_name="bob")
    assert store.claim_secret(revealed) is not None

    assert [r.id for r in store.sealed_secrets_for_recipient(RECIPIENT)] == [third, first]
    assert [r.id for r in store.sealed_secrets_for_recipient(RECIPIENT, limit=1)] == [third]
    assert store.sealed_secrets_for_recipient("U0NOBODY01") == []


def test_secrets_for_request_oldest_first(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    other = request_in(store, clock, RequestStatus.PROVISIONED)
    ids = []
    for _ in range(3):
        ids.append(put(store, clock, request.id).secret_id)
        clock.advance(seconds=1)
    put(store, clock, other.id)
    assert store.claim_secret(ids[1]) is not None
    rows = store.secrets_for_request(request.id)
    assert [r.id for r in rows] == ids
    assert [r.state for r in rows] == [SecretState.SEALED, SecretState.REVEALED, SecretState.SEALED]
    assert store.secrets_for_request("R-UNKNOWN9") == []


def test_set_secret_notice(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    sid = put(store, clock, request.id).secret_id
    store.set_secret_notice(sid, "D0DIRECT01", "1700000000.000100")
    row = store.secret_row(sid)
    assert row is not None and (row.notice_channel, row.notice_ts) == ("D0DIRECT01", "1700000000.000100")


def test_put_secret_that_replaces_audits_link_reissued(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    old = put(store, clock, request.id).secret_id
    assert store.claim_reissue(old, ACTOR, ["sealed"]) is not None
    before = events_of(store, request.id)
    new = put(store, clock, request.id, replaces=old).secret_id
    (reissued,) = new_events(store, before, request.id)
    assert reissued.event == "link_reissued"
    assert reissued.detail["secret_id"] == new and reissued.detail["replaces"] == old
    assert store.secret_row(new).replaces == old  # type: ignore[union-attr]
    assert store.secret_row(new).state is SecretState.SEALED  # type: ignore[union-attr]


# -- provisioning: plan, journal, lease ------------------------------------------------------------

PLAN = [
    Step(kind=StepKind.CREATE_USER, user_name="alice"),
    Step(kind=StepKind.CREATE_LOGIN_PROFILE, user_name="alice", password_reset_required=True),
    Step(kind=StepKind.ADD_USER_TO_GROUP, user_name="alice", target="developers"),
]


def test_save_plan_keeps_the_first_plan(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    assert store.get_plan(request.id) is None
    store.save_plan(request.id, PLAN, "https://123456789012.signin.aws.amazon.com/console")
    store.save_plan(request.id, PLAN[:1], None)
    assert store.get_plan(request.id) == (PLAN, "https://123456789012.signin.aws.amazon.com/console")


def test_save_plan_without_console_url(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    store.save_plan(request.id, PLAN[:1], None)
    assert store.get_plan(request.id) == (PLAN[:1], None)


def test_journal_keeps_state_attempts_and_detail(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    assert store.journal(request.id) == {}
    store.start_step(request.id, 0, PLAN[0].label)
    store.start_step(request.id, 0, PLAN[0].label)  # a re-run after a crash
    assert store.finish_step(request.id, 0, PLAN[0].label, {"arn": "arn:aws:iam::123456789012:user/alice"})
    store.start_step(request.id, 2, PLAN[2].label)
    failure = {"code": "NoSuchEntity", "message": "group developers not found"}
    assert store.fail_step(request.id, 2, PLAN[2].label, failure)

    journal = store.journal(request.id)
    assert set(journal) == {0, 2}
    assert journal[0].state is StepState.DONE and journal[0].attempts == 2 and journal[0].label == PLAN[0].label
    assert journal[0].detail == {"arn": "arn:aws:iam::123456789012:user/alice"}
    assert journal[2].state is StepState.FAILED and journal[2].attempts == 1 and journal[2].detail == failure
    steps = [e for e in store.audit_events(request_id=request.id) if e.event.startswith("step_")]
    assert [(e.event, e.detail["index"]) for e in steps] == [
        ("step_started", 0),
        ("step_started", 0),
        ("step_done", 0),
        ("step_started", 2),
        ("step_failed", 2),
    ]
    other = request_in(store, clock, RequestStatus.PROVISIONING)
    assert store.journal(other.id) == {}


def test_claim_lease_only_on_a_provisioning_request(store: Store, clock: Clock) -> None:
    for status in RequestStatus:
        if status is not RequestStatus.PROVISIONING:
            request = request_in(store, clock, status)
            assert store.claim_lease(request.id, lease(clock, "host-a:1:aaaa"), always_gone) is False, status
    assert store.claim_lease("R-UNKNOWN9", lease(clock, "host-a:1:aaaa"), always_gone) is False


def test_claim_lease_when_free_held_expired_or_gone(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.APPROVED)
    assert store.move_request(request.id, RequestEvent.PROVISIONING_STARTED, actor=None) is not None  # no lease
    asked: list[str] = []

    def gone(answer: bool) -> Callable[[str], bool]:
        def is_gone(owner: str) -> bool:
            asked.append(owner)
            return answer

        return is_gone

    assert store.claim_lease(request.id, lease(clock, "host-a:1:aaaa"), gone(False)) is True  # none yet
    assert store.claim_lease(request.id, lease(clock, "host-b:2:bbbb"), gone(False)) is False  # live holder
    assert store.claim_lease(request.id, lease(clock, "host-a:1:aaaa"), gone(False)) is False  # never from itself
    assert store.claim_lease(request.id, lease(clock, "host-b:2:bbbb"), gone(True)) is True  # holder is gone
    assert set(asked) <= {"host-a:1:aaaa"}

    assert store.renew_lease(request.id, lease(clock, "host-a:1:aaaa")) is False
    clock.advance(minutes=11)  # host-b's lease ran out
    assert store.claim_lease(request.id, lease(clock, "host-c:3:cccc"), never_gone) is True
    assert store.claim_lease(request.id, lease(clock, "host-b:2:bbbb"), never_gone) is False


def test_renew_lease_only_by_the_holder(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING, owner="host-a:1:aaaa")
    assert store.renew_lease(request.id, lease(clock, "host-b:2:bbbb", minutes=60)) is False
    assert store.renew_lease(request.id, lease(clock, "host-a:1:aaaa", minutes=60)) is True
    clock.advance(minutes=30)  # past the first lease, within the renewed one
    assert store.claim_lease(request.id, lease(clock, "host-b:2:bbbb"), never_gone) is False
    clock.advance(minutes=31)
    assert store.claim_lease(request.id, lease(clock, "host-b:2:bbbb"), never_gone) is True


def test_release_lease_only_by_the_holder(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING, owner="host-a:1:aaaa")
    store.release_lease(request.id, "host-b:2:bbbb")
    assert store.claim_lease(request.id, lease(clock, "host-c:3:cccc"), never_gone) is False  # still held
    store.release_lease(request.id, "host-a:1:aaaa")
    assert store.renew_lease(request.id, lease(clock, "host-a:1:aaaa")) is False
    assert store.claim_lease(request.id, lease(clock, "host-c:3:cccc"), never_gone) is True


def test_discard_unsent_links_while_provisioning(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONING)
    sealed = [put(store, clock, request.id, user_name=n).secret_id for n in ("alice", "bob")]
    revealed = put(store, clock, request.id, user_name="carol").secret_id
    assert store.claim_secret(revealed) is not None
    other = request_in(store, clock, RequestStatus.PROVISIONING)
    untouched = put(store, clock, other.id).secret_id

    before = events_of(store, request.id)
    assert store.discard_unsent_links(request.id) == 2
    (discarded,) = new_events(store, before, request.id)
    assert discarded.event == str(SecretEvent.DISCARDED) and discarded.detail["count"] == 2
    assert [store.secret_row(s).state for s in sealed] == [SecretState.SUPERSEDED] * 2  # type: ignore[union-attr]
    assert all(store.claim_secret(s) is None for s in sealed)
    assert store.secret_row(revealed).state is SecretState.REVEALED  # type: ignore[union-attr]
    assert store.secret_row(untouched).state is SecretState.SEALED  # type: ignore[union-attr]

    before = events_of(store, request.id)
    assert store.discard_unsent_links(request.id) == 0
    assert new_events(store, before, request.id) == []


@pytest.mark.parametrize("status", [s for s in RequestStatus if s is not RequestStatus.PROVISIONING], ids=str)
def test_discard_unsent_links_only_while_provisioning(store: Store, clock: Clock, status: RequestStatus) -> None:
    request = request_in(store, clock, status)
    sid = put(store, clock, request.id).secret_id
    before = events_of(store, request.id)
    assert store.discard_unsent_links(request.id) == 0
    assert store.secret_row(sid).state is SecretState.SEALED  # type: ignore[union-attr]
    assert new_events(store, before, request.id) == []


# -- drafts and Slack event ids ----------------------------------------------------------------------


def test_drafts_belong_to_their_user(store: Store) -> None:
    assert store.get_draft("V0VIEW0001", REQUESTER) is None
    store.put_draft("V0VIEW0001", REQUESTER, '{"step": 1}')
    store.put_draft("V0VIEW0001", REQUESTER, '{"step": 2}')
    assert store.get_draft("V0VIEW0001", REQUESTER) == '{"step": 2}'
    assert store.get_draft("V0VIEW0001", "U0STRANGE1") is None
    store.put_draft("V0VIEW0001", "U0STRANGE1", '{"step": 9}')  # never overwrites another user's
    assert store.get_draft("V0VIEW0001", REQUESTER) == '{"step": 2}'
    assert store.get_draft("V0VIEW0001", "U0STRANGE1") is None


def test_stale_drafts_are_not_returned_and_go_on_the_next_put(store: Store, clock: Clock) -> None:
    store.put_draft("V0VIEW0001", REQUESTER, '{"step": 1}', max_age_seconds=60)
    clock.advance(seconds=30)
    assert store.get_draft("V0VIEW0001", REQUESTER, max_age_seconds=60) == '{"step": 1}'
    clock.advance(seconds=31)
    assert store.get_draft("V0VIEW0001", REQUESTER, max_age_seconds=60) is None
    assert store.get_draft("V0VIEW0001", REQUESTER, max_age_seconds=3600) == '{"step": 1}'

    store.put_draft("V0VIEW0002", REQUESTER, '{"step": 1}', max_age_seconds=60)  # drops the stale one
    assert store.get_draft("V0VIEW0001", REQUESTER, max_age_seconds=3600) is None
    assert store.get_draft("V0VIEW0002", REQUESTER, max_age_seconds=60) == '{"step": 1}'


def test_delete_draft_once(store: Store) -> None:
    store.put_draft("V0VIEW0001", REQUESTER, '{"step": 3}')
    assert store.delete_draft("V0VIEW0001") is True
    assert store.get_draft("V0VIEW0001", REQUESTER) is None
    assert store.delete_draft("V0VIEW0001") is False
    assert store.delete_draft("V0NEVER001") is False


def test_remember_event_and_forget_old_ones(store: Store, clock: Clock) -> None:
    assert store.remember_event("Ev01") is True
    assert store.remember_event("Ev01") is False
    clock.advance(hours=2)
    assert store.remember_event("Ev02") is True
    assert store.forget_events_before(clock() - timedelta(hours=1)) == 1
    assert store.forget_events_before(clock() - timedelta(hours=1)) == 0
    assert store.remember_event("Ev01") is True  # forgotten, so new again
    assert store.remember_event("Ev02") is False


# -- audit -----------------------------------------------------------------------------------------


def test_audit_appends_an_event(store: Store, clock: Clock) -> None:
    request = store.create_request(REQUESTER, FORM)
    clock.advance(seconds=3)
    store.audit("delivery_failed", request_id=request.id, actor=ACTOR, detail={"user": RECIPIENT})
    store.audit("startup")
    *_, delivered, started = store.audit_events()
    assert (delivered.event, delivered.request_id, delivered.actor) == ("delivery_failed", request.id, ACTOR)
    assert delivered.detail == {"user": RECIPIENT} and delivered.at == clock()
    assert delivered.at.utcoffset() == timedelta(0)
    assert (started.event, started.request_id, started.actor, started.detail) == ("startup", None, None, {})
    assert [e.event for e in store.audit_events(request_id=request.id)] == ["filed", "delivery_failed"]


def test_audit_events_in_the_order_written(store: Store) -> None:
    names = [f"event_{i}" for i in range(12)]  # same clock time for all: order is write order
    for name in names:
        store.audit(name)
    assert [e.event for e in store.audit_events()] == names


def test_audit_events_since_and_for_one_request(store: Store, clock: Clock) -> None:
    start = clock()
    request = store.create_request(REQUESTER, FORM)
    store.audit("early", request_id=request.id)
    clock.advance(hours=1)
    store.audit("late", request_id=request.id)
    store.audit("late_other")

    assert [e.event for e in store.audit_events(since=start + timedelta(minutes=30))] == ["late", "late_other"]
    assert [e.event for e in store.audit_events(since=clock())] == ["late", "late_other"]  # inclusive
    assert store.audit_events(since=clock() + timedelta(seconds=1)) == []
    assert [e.event for e in store.audit_events(since=start)] == ["filed", "early", "late", "late_other"]
    both = store.audit_events(since=start + timedelta(minutes=30), request_id=request.id)
    assert [e.event for e in both] == ["late"]


@pytest.mark.parametrize("hours", [-7, 5.5, 14], ids=lambda h: f"utc{h:+}")
def test_audit_events_since_in_another_timezone(store: Store, clock: Clock, hours: float) -> None:
    start = clock()
    store.audit("early")
    clock.advance(hours=1)
    store.audit("late")
    zone = timezone(timedelta(hours=hours))
    since = (start + timedelta(minutes=30, microseconds=500)).astimezone(zone)
    assert [e.event for e in store.audit_events(since=since)] == ["late"]
    assert [e.event for e in store.audit_events(since=start.astimezone(zone))] == ["early", "late"]


# -- requests ----------------------------------------------------------------------------------------


def test_create_request_files_a_pending_request(store: Store, clock: Clock) -> None:
    request = store.create_request(REQUESTER, FORM)
    assert request.status is RequestStatus.PENDING and request.requester == REQUESTER and request.form == FORM
    assert request.created_at == clock() and request.updated_at == clock()
    assert request.decided_by is None and request.approval_channel is None
    assert store.get_request(request.id) == request
    (filed,) = store.audit_events(request_id=request.id)
    assert filed.event == "filed" and filed.actor == REQUESTER
    assert store.get_request("R-UNKNOWN9") is None


def test_create_request_ids_are_unique(store: Store) -> None:
    ids = [store.create_request(REQUESTER, FORM).id for _ in range(40)]
    assert len(set(ids)) == 40
    filed = [e.request_id for e in store.audit_events() if e.event == "filed"]
    assert filed == ids


def test_a_second_instance_sees_the_same_data(store: Store, store_factory: StoreFactory) -> None:
    request = store.create_request(REQUESTER, FORM)
    other = store_factory()
    assert other is not store and other.schema_version == store.schema_version
    assert other.get_request(request.id) == request
    assert other.move_request(request.id, RequestEvent.CANCELLED, actor=REQUESTER) is not None
    assert store.get_request(request.id).status is RequestStatus.CANCELLED  # type: ignore[union-attr]


def test_requests_where_newest_first(store: Store, clock: Clock) -> None:
    made = []
    for requester in ("U0AAAAAAA1", "U0BBBBBBB1", "U0AAAAAAA1", "U0AAAAAAA1"):
        made.append(store.create_request(requester, FORM).id)
        clock.advance(seconds=1)
    first, second, third, fourth = made
    assert store.move_request(first, RequestEvent.DENIED, actor=ACTOR) is not None
    assert store.move_request(fourth, RequestEvent.CANCELLED, actor=ACTOR) is not None

    def ids(**kwargs: Any) -> list[str]:
        return [r.id for r in store.requests_where(**kwargs)]

    assert ids() == [fourth, third, second, first]
    assert ids(requester="U0AAAAAAA1") == [fourth, third, first]
    assert ids(statuses=[RequestStatus.PENDING]) == [third, second]
    assert ids(statuses=[RequestStatus.DENIED, RequestStatus.CANCELLED]) == [fourth, first]
    assert ids(requester="U0AAAAAAA1", statuses=[RequestStatus.PENDING, RequestStatus.DENIED]) == [third, first]
    assert ids(requester="U0BBBBBBB1", statuses=[RequestStatus.DENIED]) == []
    assert ids(statuses=[]) == []
    assert ids(limit=2) == [fourth, third]
    assert ids(requester="U0AAAAAAA1", limit=1) == [fourth]
    assert ids(statuses=iter([RequestStatus.PENDING])) == [third, second]  # any iterable


def test_requests_for_recipient_newest_first(store: Store, clock: Clock) -> None:
    def form(*recipients: str) -> RequestForm:
        names = tuple(f"user{i}" for i in range(len(recipients)))
        return FORM.model_copy(update={"recipients": recipients, "user_names": names})

    both = store.create_request(REQUESTER, form("U0NEW00001", "U0NEW00002")).id
    clock.advance(seconds=1)
    second = store.create_request(REQUESTER, form("U0NEW00002")).id
    clock.advance(seconds=1)
    store.create_request(REQUESTER, form("U0NEW000022"))
    clock.advance(seconds=1)
    store.create_request("U0NEW00002", form("U0NEW00003"))  # files one, receives nothing

    assert [r.id for r in store.requests_for_recipient("U0NEW00002")] == [second, both]
    assert [r.id for r in store.requests_for_recipient("U0NEW00001")] == [both]
    assert [r.id for r in store.requests_for_recipient("U0NEW00002", limit=1)] == [second]
    assert store.requests_for_recipient("U0NOBODY01") == []


def test_set_approval_message(store: Store) -> None:
    request = store.create_request(REQUESTER, FORM)
    before = events_of(store, request.id)
    store.set_approval_message(request.id, "C0APPROVALS", "1700000000.000200")
    now = store.get_request(request.id)
    assert now is not None and (now.approval_channel, now.approval_ts) == ("C0APPROVALS", "1700000000.000200")
    assert now.status is RequestStatus.PENDING
    (posted,) = new_events(store, before, request.id)
    assert posted.event == "approval_posted"


def test_forget_custom_password_once(store: Store, clock: Clock) -> None:
    custom = FORM.model_copy(update={"password_mode": PasswordMode.CUSTOM, "custom_password_sealed": "v1.c2VhbGVk"})
    request = store.create_request(REQUESTER, custom)
    assert store.get_request(request.id).form.custom_password_sealed == "v1.c2VhbGVk"  # type: ignore[union-attr]

    before = events_of(store, request.id)
    assert store.forget_custom_password(request.id) is True
    assert len(new_events(store, before, request.id)) == 1
    form = store.get_request(request.id).form  # type: ignore[union-attr]
    assert form.custom_password_sealed is None
    assert form == custom.model_copy(update={"custom_password_sealed": None})

    before = events_of(store, request.id)
    assert store.forget_custom_password(request.id) is False
    assert new_events(store, before, request.id) == []
    plain = store.create_request(REQUESTER, FORM)
    assert store.forget_custom_password(plain.id) is False


def test_times_are_aware_utc(store: Store, clock: Clock) -> None:
    request = request_in(store, clock, RequestStatus.PROVISIONED)
    sid = put(store, clock, request.id).secret_id
    row = store.secret_row(sid)
    assert row is not None
    stamps: list[datetime | None] = [
        request.created_at,
        request.updated_at,
        row.created_at,
        row.expires_at,
        *(e.at for e in store.audit_events()),
    ]
    assert all(t is not None and t.utcoffset() == timedelta(0) for t in stamps)
    assert row.created_at == clock()
