"""Benchmark of self-service answers: slash-command acks, DM replies and App Home publishes.

    .venv/bin/python benchmarks/self_service.py            # 300 requests on file, 150 pending
    .venv/bin/python benchmarks/self_service.py --quick    # a smoke run

The bot runs under gunicorn against the bundled Slack stand-in and moto server, with a database
seeded through :class:`bot.storage.sqlite.SqliteStore` (every pending request has a real approval message in
the stand-in, so permalinks resolve). Slash answers are the HTTP ack, which Slack wants within
3 s; DM and Home times run from the signed event to the Web API call the bot makes in answer.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from slack_sdk import WebClient  # noqa: E402

from bot.domain.models import AccessType, RequestForm  # noqa: E402
from bot.domain.states import RequestEvent  # noqa: E402
from bot.sandbox.processes import BotProcess, MotoServer  # noqa: E402
from bot.sandbox.slack_standin import SlackStandIn  # noqa: E402
from bot.sandbox.slack_user import SlackUser  # noqa: E402
from bot.storage.sqlite import SqliteStore  # noqa: E402

BOT_TOKEN = "xoxb-bench-0000000000"
SIGNING_SECRET = "bench-signing-secret-not-a-real-one"
APPROVAL_CHANNEL = "C0APPROVALS"
APPROVER = "U0APPROVE1"
REQUESTER = "U0REQUEST1"


def pct(samples: list[float]) -> dict[str, float]:
    """n, p50, p95 and max of ``samples`` (seconds), in milliseconds."""
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)

    return {"n": len(ordered), "p50": at(0.5), "p95": at(0.95), "max": round(1000 * ordered[-1], 1)}


def seed(db: Path, slack: SlackStandIn, total: int, pending: int) -> str:
    """``total`` requests (``pending`` of them waiting, each with an approval message); returns one id."""
    store = SqliteStore(db)
    client = WebClient(token=BOT_TOKEN, base_url=slack.base_url)
    some_id = ""
    for i in range(total):
        requester = REQUESTER if i % 10 == 0 else f"U0PEER{i:04d}"
        form = RequestForm(
            recipients=(f"U0HIRE{i:04d}",),
            user_names=(f"hire.{i:04d}",),
            access_types=frozenset({AccessType.PROGRAMMATIC}),
            justification="Benchmark request " * 5,
        )
        request = store.create_request(requester, form)
        some_id = some_id or request.id
        if i < pending:
            ts = client.chat_postMessage(channel=APPROVAL_CHANNEL, text=f"request {request.id}")["ts"]
            store.set_approval_message(request.id, APPROVAL_CHANNEL, ts)
        else:
            store.move_request(request.id, RequestEvent.DENIED, actor=APPROVER, decided_by=APPROVER)
    store.close()
    return some_id


def run(quick: bool) -> dict[str, Any]:
    total, pending, rounds = (30, 15, 10) if quick else (300, 150, 100)
    result: dict[str, Any] = {"requests_on_file": total, "pending": pending}
    with TemporaryDirectory() as tmp, MotoServer() as moto, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        for user in (REQUESTER, APPROVER):
            slack.add_user(user, name=user.lower(), email=f"{user.lower()}@example.com")
        db = Path(tmp) / "bench.db"
        request_id = seed(db, slack, total, pending)
        env = {
            **moto.client_env(),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "APPROVAL_CHANNEL_ID": APPROVAL_CHANNEL,
            "APPROVER_USER_IDS": APPROVER,
            "PUBLIC_BASE_URL": "http://127.0.0.1:9",
            "DATABASE_PATH": str(db),
            "LOG_LEVEL": "WARNING",
        }
        with BotProcess(env=env, log_path=Path(tmp) / "bot.log", workers=1) as bot:
            user = SlackUser(bot.url, SIGNING_SECRET)

            def slash(who: str, text: str) -> list[float]:
                samples = []
                for _ in range(rounds):
                    start = time.perf_counter()
                    answer, _ = user.slash_command(who, text)
                    samples.append(time.perf_counter() - start)
                    assert answer.status == 200 and answer.body, answer
                return samples

            result["slash_status_ms"] = pct(slash(REQUESTER, "status"))
            result["slash_status_id_ms"] = pct(slash(APPROVER, f"status {request_id}"))
            result["slash_pending_ms"] = pct(slash(APPROVER, "pending"))

            def answered(method: str, who_key: str, who: str, send) -> list[float]:
                samples = []
                for _ in range(rounds):
                    before = len([c for c in slack.calls(method) if c.args.get(who_key) == who])
                    start = time.perf_counter()
                    send()
                    slack.wait_for(method, lambda c: c.args.get(who_key) == who, count=before + 1, timeout=30)
                    samples.append(time.perf_counter() - start)
                return samples

            result["dm_pending_reply_ms"] = pct(
                answered(
                    "chat.postMessage",
                    "channel",
                    f"D{APPROVER}",
                    lambda: user.direct_message(APPROVER, f"D{APPROVER}", "pending"),
                )
            )
            result["home_publish_approver_ms"] = pct(
                answered("views.publish", "user_id", APPROVER, lambda: user.app_home_opened(APPROVER))
            )
            result["home_publish_requester_ms"] = pct(
                answered("views.publish", "user_id", REQUESTER, lambda: user.app_home_opened(REQUESTER))
            )
            result["permalink_calls"] = len(slack.calls("chat.getPermalink"))
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, a smoke run")
    args = parser.parse_args()
    print(json.dumps(run(args.quick), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
