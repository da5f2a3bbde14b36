"""Pure parts of self-service: parsing the words, the replies and Home per role, the store reads."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.domain.ids import REQUEST_ID_ALPHABET
from bot.domain.models import AccessType, OnboardingRequest, RequestForm
from bot.domain.records import NewSecret, SecretRow
from bot.domain.states import RequestStatus
from bot.selfservice import messages as status_blocks
from bot.selfservice.commands import Command, normalize_request_id, parse_command
from bot.selfservice.messages import HOME_BLOCKS_MAX, HomeContent, QueueItem
from bot.storage.sqlite import SqliteStore

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
SECRET_JUSTIFICATION = "Project Bluebird, do not share"


def make_request(
    request_id: str = "R-7KQ2M9XD",
    status: RequestStatus = RequestStatus.PENDING,
    requester: str = "U0REQ",
    recipients: tuple[str, ...] = ("U0NINA", "U0OMAR"),
    **fields: object,
) -> OnboardingRequest:
    form = RequestForm(
        recipients=recipients,
        user_names=tuple(f"user.{r[2:].lower()}" for r in recipients),
        access_types=frozenset({AccessType.PROGRAMMATIC}),
        groups=("developers",),
        justification=SECRET_JUSTIFICATION,
    )
    return OnboardingRequest(
        id=request_id,
        requester=requester,
        form=form,
        status=status,
        created_at=NOW - timedelta(hours=2),
        updated_at=NOW - timedelta(hours=1),
        **fields,
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("status", Command("status")),
        ("  STATUS \t ", Command("status")),
        ("Status r-7kq2m9xd", Command("status", "r-7kq2m9xd", "R-7KQ2M9XD")),
        ("status\u00a0`R-7KQ2M9XD`.", Command("status", "`R-7KQ2M9XD`.", "R-7KQ2M9XD")),
        ("status 7kq2m9xd", Command("status", "7kq2m9xd", "R-7KQ2M9XD")),
        ("<@UBOT00001> pending", Command("pending")),
        ("cancel *R-7KQ2M9XD* please", Command("cancel", "*R-7KQ2M9XD*", "R-7KQ2M9XD")),
        ("cancel R-7KQ2M9X0", Command("cancel", "R-7KQ2M9X0", None)),  # 0 is not in the id alphabet
        ("help me", Command("help", "me", None)),
        ("", Command("")),
        ("   ", Command("")),
        ("hello there", Command("unknown", "hello")),
        ("statuses", Command("unknown", "statuses")),
    ],
)
def test_parse_command_tolerates_case_spacing_and_pasted_ids(text: str, expected: Command) -> None:
    assert parse_command(text) == expected


def test_normalize_request_id_rejects_what_is_not_an_id() -> None:
    assert normalize_request_id("R-7KQ2M9XD") == "R-7KQ2M9XD"
    for word in ("R-7KQ2M9X", "R-7KQ2M9XDD", "R-7KQ2M9XI", "banana", "R-", "`'\""):
        assert normalize_request_id(word) is None, word


def test_recipient_sees_only_their_own_user() -> None:
    request = make_request(status=RequestStatus.PROVISIONED, decided_by="U0BOSS", decided_at=NOW)
    line = status_blocks.recipient_line(request, "U0NINA")
    detail = status_blocks.recipient_detail(request, "U0NINA")
    for text in (line, detail):
        assert "`user.nina`" in text and request.id in text and "<@U0BOSS>" in text
        assert "user.omar" not in text and SECRET_JUSTIFICATION not in text and "developers" not in text


def test_replies_name_who_acted_and_when() -> None:
    denied = make_request(status=RequestStatus.DENIED, decided_by="U0BOSS", decided_at=NOW, reason="use <!channel> SSO")
    detail = status_blocks.request_detail(denied, permalink="https://x.invalid/p1", now=NOW)
    assert "denied by <@U0BOSS> <!date^" in detail and "https://x.invalid/p1" in detail
    assert "&lt;!channel&gt;" in detail and "<!channel>" not in detail  # the reason cannot ping anyone
    line = status_blocks.request_line(make_request(status=RequestStatus.FAILED, decided_by="U0B", decided_at=NOW))
    assert "failed" in line and "approved by <@U0B>" in line and line.count("<!date^") == 3
    expired = status_blocks.request_line(make_request(status=RequestStatus.EXPIRED))
    assert "expired without a decision" in expired and "expired <!date^" in expired


def test_link_states_say_whether_each_link_was_opened() -> None:
    def secret(state: str, expires: datetime, revealed: datetime | None = None) -> SecretRow:
        return SecretRow("s" * 22, "R-7KQ2M9XD", "U0NINA", "user.nina", state, NOW, expires, revealed)

    assert "link opened" in status_blocks.link_states([secret("revealed", NOW, NOW)], NOW)
    assert "not opened yet" in status_blocks.link_states([secret("sealed", NOW + timedelta(hours=1))], NOW)
    assert "expired unopened" in status_blocks.link_states([secret("sealed", NOW - timedelta(hours=1))], NOW)
    assert status_blocks.link_states([], NOW) is None


def _home(**fields: object) -> dict:
    content = HomeContent(viewer="U0NINA", own=[], received=[], secrets=[], queue=None, now=NOW)
    view = status_blocks.home_view(HomeContent(**{**content.__dict__, **fields}))
    return view.to_dict()  # slack_sdk validates lengths and counts here


def _buttons(view: dict) -> list[tuple[str, str]]:
    found = []
    for block in view["blocks"]:
        elements = block.get("elements", []) if block["type"] == "actions" else [block.get("accessory") or {}]
        found += [(e["action_id"], e["value"]) for e in elements if e.get("type") == "button"]
    return found


def test_home_for_a_stranger_has_no_queue_and_no_buttons() -> None:
    view = _home(viewer="U0STRANGE")
    assert view["type"] == "home" and _buttons(view) == []
    assert "no IAM user requests" in json.dumps(view) and "Waiting for a decision" not in json.dumps(view)


def test_home_queue_hides_buttons_where_the_approver_may_not_decide() -> None:
    mine = make_request("R-22222222", requester="U0BOSS")
    theirs = make_request("R-33333333")
    view = _home(
        viewer="U0BOSS",
        queue=[QueueItem(mine, None, "You filed this request"), QueueItem(theirs, "https://x.invalid/p")],
    )
    assert _buttons(view) == [("approve_request", "R-33333333"), ("deny_request", "R-33333333")]
    text = json.dumps(view)
    assert "You filed this request" in text and "https://x.invalid/p" in text
    block_ids = [b["block_id"] for b in view["blocks"] if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))  # Slack refuses a view with a repeated block_id


def test_home_stays_within_slacks_100_blocks_whatever_the_counts() -> None:
    def rid(i: int) -> str:
        return "R-" + "".join(REQUEST_ID_ALPHABET[(i >> (5 * k)) % 32] for k in range(8))

    queue = [QueueItem(make_request(rid(i)), None) for i in range(40)]
    own = [make_request(rid(100 + i), requester="U0NINA") for i in range(40)]
    secrets = [
        SecretRow(f"secret{i:016d}", "R-7KQ2M9XD", "U0NINA", f"u{i}", "sealed", NOW, NOW, None) for i in range(40)
    ]
    view = _home(queue=queue, own=own, received=own, secrets=secrets, queue_more=5)
    assert len(view["blocks"]) <= HOME_BLOCKS_MAX, len(view["blocks"])
    assert "…and 30 more" in json.dumps(view, ensure_ascii=False)  # 40 + 5 waiting, 15 shown
    assert view["blocks"][-1]["block_id"] == "home_footer"


def test_home_offers_a_new_link_per_unopened_secret() -> None:
    sealed = SecretRow("abcDEF123_-xyz", "R-7KQ2M9XD", "U0NINA", "user.nina", "sealed", NOW, NOW, None)
    view = _home(secrets=[sealed])
    assert _buttons(view) == [("resend_credential_link", "abcDEF123_-xyz")]
    assert "link expired" in json.dumps(view)


def test_store_reads_for_recipients_and_event_memory(tmp_path: Path) -> None:
    clock = [NOW]
    store = SqliteStore(tmp_path / "s.db", clock=lambda: clock[0])
    form = make_request().form
    a = store.create_request("U0REQ", form)
    b = store.create_request("U0REQ", form.model_copy(update={"recipients": ("U0ZED", "U0OMAR")}))
    assert [r.id for r in store.requests_for_recipient("U0NINA")] == [a.id]
    assert {r.id for r in store.requests_for_recipient("U0OMAR")} == {a.id, b.id}
    assert store.requests_for_recipient("U0REQ") == []
    # A user id that is a prefix of another's must not match it.
    assert store.requests_for_recipient("U0NIN") == []

    for secret_id, recipient in (("s1", "U0NINA"), ("s2", "U0OMAR")):
        store.put_secret(
            NewSecret(
                secret_id=secret_id,
                request_id=a.id,
                recipient=recipient,
                user_name="x",
                nonce=b"n" * 12,
                ciphertext=b"c",
                expires_at=NOW + timedelta(days=1),
            )
        )
    assert [s.id for s in store.sealed_secrets_for_recipient("U0NINA")] == ["s1"]
    assert store.claim_secret("s1") is not None
    assert store.sealed_secrets_for_recipient("U0NINA") == []

    assert store.remember_event("Ev1") and not store.remember_event("Ev1")
    clock[0] = NOW + timedelta(days=2)
    assert store.remember_event("Ev2")
    assert store.forget_events_before(NOW + timedelta(days=1)) == 1
    assert store.remember_event("Ev1") and not store.remember_event("Ev2")
