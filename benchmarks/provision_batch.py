"""Benchmark: provisioning a batch of 10 users, sequentially vs. a few users at once.

Runs the real :class:`bot.provisioning.runner.Provisioner` (journal, idempotent steps, rollback
machinery) against moto server. moto answers in about a millisecond, real IAM in tens to
hundreds, so every IAM call is delayed by ``--latency`` seconds (a botocore ``before-send``
hook) to model IAM's round trip. Prints wall-clock seconds per setting.

    .venv/bin/python -m benchmarks.provision_batch --latency 0.08
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from bot.aws.iam import IamGateway
from bot.domain.models import AccessType, PermissionMode, RequestForm, RequestStatus
from bot.provisioning.journal import Journal
from bot.provisioning.runner import Provisioner
from bot.sandbox.harness import MotoServer
from bot.storage.sqlite import Store


def run(moto: MotoServer, parallel: int, latency: float, users: int, tag: str) -> float:
    iam = moto.boto3_client("iam")
    iam.meta.events.register("before-send.iam", lambda **_: time.sleep(latency))
    gateway = IamGateway(iam, moto.boto3_client("sts"), sleep=lambda _s: None)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(Path(tmp) / "bench.db")
        journal = Journal(store)
        names = tuple(f"bench-{tag}-{n}" for n in range(users))
        form = RequestForm(
            recipients=tuple(f"U0BENCH{n:03d}" for n in range(users)),
            user_names=names,
            access_types=frozenset({AccessType.CONSOLE, AccessType.PROGRAMMATIC}),
            permission_mode=PermissionMode.GROUPS,
            groups=("bench-developers",),
            mfa_required=True,
        )
        request = store.create_request("U0REQUEST1", form)
        store.transition(request.id, RequestStatus.PENDING, RequestStatus.APPROVED, actor="U0APPROVE1", event="a")
        request = store.transition(
            request.id,
            RequestStatus.APPROVED,
            RequestStatus.PROVISIONING,
            actor=None,
            event="p",
            **journal.lease_fields(),
        )
        provisioner = Provisioner(store, gateway, journal, parallel_users=parallel)
        started = time.perf_counter()
        provisioner.execute(request, provisioner.prepare(request))
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.08, help="seconds added to every IAM call")
    parser.add_argument("--users", type=int, default=10)
    args = parser.parse_args()
    with MotoServer() as moto:
        moto.boto3_client("iam").create_group(GroupName="bench-developers")
        for parallel in (1, 3, 4):
            seconds = run(moto, parallel, args.latency, args.users, f"p{parallel}")
            print(
                f"{args.users} users, {parallel} at a time, {args.latency * 1000:.0f} ms per IAM call: {seconds:.2f} s"
            )


if __name__ == "__main__":
    main()
