"""Benchmark of the one-time link endpoints: GET page, reveal (200), used link (410, which also
schedules the interception alert), and a first 410 (which raises the alert) with a slow Slack.

    .venv/bin/python benchmarks/reveal.py            # 300 links
    .venv/bin/python benchmarks/reveal.py --quick    # 30 links

The bot runs under gunicorn (2 workers) against moto server and the Slack stand-in, all on
127.0.0.1. The point of the last row: the 410 must not wait for Slack (the alert is posted
after the answer), so it stays fast even when every Slack call takes a second.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import timedelta
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bot.credentials.vault import credentials_plaintext, seal  # noqa: E402
from bot.domain.models import AccessType, CreatedCredentials, RequestForm, utcnow  # noqa: E402
from bot.domain.records import NewSecret  # noqa: E402
from bot.sandbox.processes import BotProcess, MotoServer, http  # noqa: E402
from bot.sandbox.slack_standin import SlackStandIn  # noqa: E402
from bot.storage.sqlite import SqliteStore  # noqa: E402

BOT_TOKEN = "xoxb-bench-0000000000"
REVEAL = {"X-Requested-With": "reveal"}


def pct(samples: list[float]) -> dict[str, float]:
    """p50/p95 and max of ``samples`` (seconds) in milliseconds."""
    ordered = sorted(samples)
    pick = lambda q: round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 2)  # noqa: E731
    return {"n": len(ordered), "p50_ms": pick(0.5), "p95_ms": pick(0.95), "max_ms": round(ordered[-1] * 1000, 2)}


def seed(db: Path, base: str, n: int) -> list[str]:
    store = SqliteStore(db)
    form = RequestForm(
        recipients=("U0NEWHIRE1",), user_names=("bench.user",), access_types=frozenset({AccessType.PROGRAMMATIC})
    )
    request = store.create_request("U0REQUEST1", form)
    urls = []
    for i in range(n):
        credentials = CreatedCredentials(
            user_name="bench.user", access_key_id=f"AKIABENCH{i:011d}", secret_access_key="b" * 40
        )
        sealed = seal(credentials_plaintext(credentials))
        store.put_secret(
            NewSecret(
                secret_id=sealed.secret_id,
                request_id=request.id,
                recipient="U0NEWHIRE1",
                user_name="bench.user",
                nonce=sealed.nonce,
                ciphertext=sealed.ciphertext,
                expires_at=utcnow() + timedelta(hours=1),
            )
        )
        urls.append(f"{base}/credentials/{sealed.secret_id}")
    return urls


def timed(method: str, url: str, headers: dict[str, str] | None, expect: int) -> float:
    start = time.perf_counter()
    answer = http(method, url, headers=headers)
    elapsed = time.perf_counter() - start
    if answer.status != expect:
        raise RuntimeError(f"{method} {url.rsplit('/', 1)[0]}/… answered {answer.status}, expected {expect}")
    return elapsed


def run(n: int) -> dict[str, Any]:
    with TemporaryDirectory() as tmp, MotoServer() as moto, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        slack.add_user("U0NEWHIRE1", name="nina", email="nina@example.com")
        db = Path(tmp) / "bench.db"
        process = BotProcess(env={}, log_path=Path(tmp) / "bot.log", workers=2)
        process.env = {
            **moto.client_env(),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": "bench-signing-secret",
            "SLACK_API_URL": slack.base_url,
            "APPROVAL_CHANNEL_ID": "C0APPROVALS",
            "APPROVER_USER_IDS": "U0APPROVE1",
            "PUBLIC_BASE_URL": process.url,
            "DATABASE_PATH": str(db),
            "REVEAL_RATE_LIMIT": "100000 per minute",
        }
        with process:
            urls = seed(db, process.url, n)
            results = {
                "GET page": pct([timed("GET", u, None, 200) for u in urls]),
                "POST reveal (200)": pct([timed("POST", u, REVEAL, 200) for u in urls]),
                "POST used link (410)": pct([timed("POST", u, REVEAL, 410) for u in urls]),
            }
            # Fresh links, revealed once; then Slack turns slow and each first 410 raises an alert.
            fresh = seed(db, process.url, 20)
            for u in fresh:
                timed("POST", u, REVEAL, 200)
            handle = slack._handle

            def slow_handle(*args: Any) -> Any:
                time.sleep(1.0)
                return handle(*args)

            slack._handle = slow_handle  # type: ignore[method-assign]
            results["POST used link (410) raising the alert, Slack 1 s slow"] = pct(
                [timed("POST", u, REVEAL, 410) for u in fresh]
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="30 links instead of 300")
    args = parser.parse_args()
    print(json.dumps(run(30 if args.quick else 300), indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
