"""Options-menu answer time over the full AWS managed-policy list: p50 / p99.

Loads the catalog the way the bot does (``IamGateway.load_catalog``, full pagination) from moto
in-process with AWS's managed policies (~1,300) plus customer managed ones, then answers
``block_suggestion`` requests for the policy menu:

* ``search``: catalog search + option building only (what the handler does after Bolt);
* ``bolt``: a signed request dispatched through Bolt (signature check, parsing, handler, JSON).

Run: ``.venv/bin/python benchmarks/options_bench.py [--customer 500] [--rounds 20]``.
Prints one line per measure; exits non-zero if p99 of the Bolt path exceeds ``--budget-ms``
(default 300 ms, a tenth of Slack's 3 s).
"""

from __future__ import annotations

import argparse
import json
import statistics
import string
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import boto3
from moto import mock_aws
from slack_bolt import App, BoltRequest
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.signature import SignatureVerifier

from bot.aws.catalog import Catalog
from bot.aws.iam import IamGateway
from bot.aws.typeahead import Typeahead
from bot.wizard import views as modal_blocks
from handlers import options

SECRET = "benchmark-signing-secret-000000"
QUERIES = ["", "a", "s", "ec2", "read", "ReadOnly", "AmazonS3", "role", "access", "zzzz-no-match", "Lambda", "IAM"]


def load_catalog(customer: int) -> Catalog:
    with mock_aws(config={"iam": {"load_aws_managed_policies": True}}):
        iam = boto3.client("iam", region_name="us-east-1")
        sts = boto3.client("sts", region_name="us-east-1")
        doc = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*",
                                                                   "Resource": "*"}]})  # fmt: skip
        for i in range(customer):
            iam.create_policy(PolicyName=f"team-{i:04d}-{string.ascii_lowercase[i % 26]}", PolicyDocument=doc)
        started = time.perf_counter()
        catalog = Catalog(IamGateway(iam, sts).load_catalog)
        catalog.refresh()
        print(f"catalog load (moto in-process, full pagination): {time.perf_counter() - started:.2f} s")
    return catalog


def percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return statistics.median(ordered), p99, ordered[-1]


def measure(name: str, rounds: int, call: Callable[[str], Any]) -> float:
    samples = []
    for _ in range(rounds):
        for query in QUERIES:
            started = time.perf_counter()
            call(query)
            samples.append((time.perf_counter() - started) * 1000)
    p50, p99, worst = percentiles(samples)
    print(f"{name:>7}: n={len(samples)} p50={p50:.3f} ms p99={p99:.3f} ms max={worst:.3f} ms")
    return p99


def bolt_caller(catalog: Catalog) -> Callable[[str], Any]:
    def authorize(team_id: str | None = None, **_: Any) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=None, team_id=team_id, bot_token="xoxb-unused", bot_user_id="UBOT")  # noqa: S106

    app = App(signing_secret=SECRET, authorize=authorize, process_before_response=True)
    # The search from memory alone (no IAM behind it: no reads after a search, no exact lookups).
    typeahead = Typeahead(catalog, None, None, None, interval_seconds=300)
    options.register(app, type("W", (), {"typeahead": typeahead})())  # type: ignore[arg-type]
    verifier = SignatureVerifier(SECRET)

    def call(query: str) -> Any:
        payload = {"type": "block_suggestion", "user": {"id": "U1"}, "team": {"id": "T1"}, "api_app_id": "A1",
                   "action_id": "policies", "block_id": "policies", "value": query,
                   "container": {"type": "view", "view_id": "V1"}, "view": {"id": "V1", "type": "modal"}}  # fmt: skip
        body = urllib.parse.urlencode({"payload": json.dumps(payload)})
        ts = str(int(time.time()))
        headers = {
            "content-type": ["application/x-www-form-urlencoded"],
            "x-slack-request-timestamp": [ts],
            "x-slack-signature": [verifier.generate_signature(timestamp=ts, body=body)],
        }
        response = app.dispatch(BoltRequest(body=body, headers=headers))
        assert response.status == 200
        return response.body

    return call


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customer", type=int, default=500, help="customer managed policies to add")
    parser.add_argument("--rounds", type=int, default=20, help="rounds over the query list")
    parser.add_argument("--budget-ms", type=float, default=300.0, help="p99 budget of the Bolt path")
    args = parser.parse_args()
    catalog = load_catalog(args.customer)
    policies = catalog.snapshot.policies
    aws = sum(p.aws_managed for p in policies)
    print(f"policies: {len(policies)} ({aws} AWS managed, {len(policies) - aws} customer managed)")
    measure("search", args.rounds, lambda q: modal_blocks.policy_option_groups(catalog.search_policies(q)))
    p99 = measure("bolt", args.rounds, bolt_caller(catalog))
    return 0 if p99 <= args.budget_ms else 1


if __name__ == "__main__":
    sys.exit(main())
