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
from bot.aws.live import LiveIam
from bot.domain.models import AccessType, PermissionMode, RequestForm
from bot.domain.states import RequestEvent
from bot.provisioning.lease import Leases
from bot.provisioning.runner import Provisioner
from bot.sandbox.processes import MotoServer
from bot.storage.sqlite import SqliteStore


def run(moto: MotoServer, parallel: int, latency: float, users: int, tag: str) -> float:
    iam = moto.boto3_client("iam")
    iam.meta.events.register("before-send.iam", lambda **_: time.sleep(latency))
    gateway = IamGateway(iam, moto.boto3_client("sts"), sleep=lambda _s: None)
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "bench.db")
        leases = Leases(clock=store.clock)
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
        store.move_request(request.id, RequestEvent.APPROVED, actor="U0APPROVE1", decided_by="U0APPROVE1")
        request = store.move_request(request.id, RequestEvent.PROVISIONING_STARTED, actor=None, lease=leases.lease())
        provisioner = Provisioner(store, gateway, LiveIam(gateway), leases, parallel_users=parallel)
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
