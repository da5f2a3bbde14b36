"""An account at IAM's default quotas: what the catalog, the menus, the view submissions and one
provisioning cost, and what the server holds in memory. Writes its section of BENCHMARKS.md.

    .venv/bin/python benchmarks/default_quotas.py            # 4,990 users, 300 groups, 1,500 policies
    .venv/bin/python benchmarks/default_quotas.py --quick    # 400 users, 60 groups, 150 policies

moto server stands in for IAM behind :class:`bot.sandbox.iam_proxy.IamProxy`, which pages list
calls by 100 as IAM does, adds no delay of its own (one write per answer, TCP_NODELAY, kept-alive
connections) and adds ``--latency`` to every call where the measure asks for it. The bot runs
under gunicorn with 2 workers x 8 threads, against the bundled Slack stand-in.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.run import (  # noqa: E402
    APPROVAL_CHANNEL,
    APPROVER,
    BOT_TOKEN,
    REQUESTER,
    SIGNING_SECRET,
    WORKERS,
    arguments,
    bot_env,
    open_view,
    pct,
    rss_mib,
    wait_status,
)
from bot.aws.iam import IamGateway  # noqa: E402
from bot.sandbox.form_filler import FormFiller  # noqa: E402
from bot.sandbox.iam_proxy import IamProxy  # noqa: E402
from bot.sandbox.processes import BotProcess, MotoServer  # noqa: E402
from bot.sandbox.slack_standin import SlackStandIn  # noqa: E402
from bot.sandbox.slack_user import SlackUser  # noqa: E402

DOCUMENT = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:List*", "Resource": "*"}]}
)
MARK_START, MARK_END = "<!-- default-quotas: start -->", "<!-- default-quotas: end -->"
WRITES = ("Create", "Add", "Attach", "Put")


class StepTimer(SlackUser):
    """A :class:`SlackUser` that records each view submission's ack time (s) by the view's step."""

    def __init__(self, bot_url: str, signing_secret: str) -> None:
        super().__init__(bot_url, signing_secret)
        self.acks: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def view_submission(self, user_id: str, view: dict[str, Any], values: dict[str, Any]) -> Any:
        step = json.loads(view.get("private_metadata") or "{}").get("step", "?")
        start = time.perf_counter()
        answer = super().view_submission(user_id, view, values)
        with self._lock:
            self.acks.setdefault(step, []).append(time.perf_counter() - start)
        return answer


def populate(moto: MotoServer, users: int, groups: int, policies: int) -> None:
    """Straight into moto (not through the proxy): the account someone else built."""
    iam = moto.boto3_client("iam")
    jobs = [lambda i=i: iam.create_user(UserName=f"staff.{i:04d}") for i in range(users)]
    jobs += [lambda i=i: iam.create_group(GroupName=f"team-{i:03d}") for i in range(groups)]
    jobs += [
        lambda i=i: iam.create_policy(PolicyName=f"policy-{i:04d}", PolicyDocument=DOCUMENT, Path=f"/t{i % 9}/")
        for i in range(policies)
    ]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda job: job(), jobs))


def seed_request_world(moto: MotoServer) -> None:
    iam = moto.boto3_client("iam")
    iam.create_group(GroupName="engineers")
    arn = iam.create_policy(PolicyName="engineers-read", PolicyDocument=DOCUMENT)["Policy"]["Arn"]
    iam.attach_group_policy(GroupName="engineers", PolicyArn=arn)
    iam.create_user(UserName="template.engineer")
    iam.add_user_to_group(UserName="template.engineer", GroupName="engineers")
    iam.attach_user_policy(UserName="template.engineer", PolicyArn=arn)


def catalog_load(proxy: IamProxy, moto: MotoServer, latency: float) -> dict[str, Any]:
    """One whole catalog load, as the bot does it (``IamGateway.load_catalog``), through the proxy."""
    proxy.reset()
    proxy.delay = latency
    gateway = IamGateway(
        moto.boto3_client("iam", endpoint_url=proxy.url), moto.boto3_client("sts", endpoint_url=proxy.url)
    )
    start = time.perf_counter()
    snapshot = gateway.load_catalog()
    took = time.perf_counter() - start
    proxy.delay = 0.0
    return {
        "latency_ms": int(latency * 1000),
        "seconds": round(took, 2),
        "calls": proxy.iam_calls() + proxy.actions["GetCallerIdentity"],
        "by_action": dict(sorted(proxy.actions.items())),
        "bytes": proxy.bytes_out,
        "users": len(snapshot.user_names),
        "groups": len(snapshot.group_names),
        "policies": len(snapshot.policies),
    }


def provision_one(
    bot: BotProcess, db: Path, slack: SlackStandIn, proxy: IamProxy, name: str, latency: float
) -> dict[str, Any]:
    """File a 1-user request (console + key, one group), approve it, count IAM calls and time."""
    user = SlackUser(bot.url, SIGNING_SECRET)
    view = open_view(user, slack, REQUESTER)
    answers = {"recipients": ["U0PERSON01"], "user_names": name, "access_types": ["programmatic", "console"],
               "password_mode": "autogenerated", "require_reset": ["require_reset"], "permission_mode": "groups",
               "groups": ["engineers"], "justification": "Benchmark onboarding of a new engineer."}  # fmt: skip
    FormFiller(user, REQUESTER).submit(view, answers)
    message = slack.wait_for(
        "chat.postMessage",
        lambda c: c.args.get("channel") == APPROVAL_CHANNEL and name in json.dumps(c.args),
        timeout=120,
    )[-1]
    request_id = re.search(r'"value": "(R-[A-Z0-9]+)"', json.dumps(message.args["blocks"])).group(1)  # type: ignore[union-attr]
    proxy.reset()
    proxy.delay = latency
    user.block_action(
        APPROVER, "approve_request", request_id, channel=APPROVAL_CHANNEL, message_ts=message.response["ts"]
    )
    wall = wait_status(db, request_id, "provisioned")
    proxy.delay = 0.0
    return {
        "calls": proxy.iam_calls(),
        "writes": sum(n for a, n in proxy.actions.items() if a.startswith(WRITES)),
        "by_action": dict(sorted(proxy.actions.items())),
        "wall_s_at_latency": round(wall, 2),
    }


def options_p99(bot: BotProcess, slack: SlackStandIn, n: int) -> dict[str, Any]:
    user = SlackUser(bot.url, SIGNING_SECRET)
    view = open_view(user, slack, REQUESTER)
    queries = {
        "groups": ["", "t", "team-1", "team-29", "eng", "zz-none"],
        "copy_from_user": ["", "s", "staff.4", "staff.49", "template", "zz-none"],
        "policies": ["", "a", "policy-0", "ReadOnly", "Admin", "zz-none"],
        "permissions_boundary": ["", "p", "policy-14", "Boundary", "zz-none"],
    }
    out: dict[str, Any] = {}
    for action, words in queries.items():
        samples: list[float] = []
        most = 0
        for i in range(n):
            start = time.perf_counter()
            answer = user.block_suggestion(REQUESTER, view, action, words[i % len(words)])
            samples.append(time.perf_counter() - start)
            body = answer.json() or {}
            count = len(body.get("options", [])) + sum(len(g["options"]) for g in body.get("option_groups", []))
            most = max(most, count)
        out[action] = {**pct(samples), "max_options": most}
    return out


def submissions(bot: BotProcess, slack: SlackStandIn, count: int, concurrency: int, label: str) -> dict[str, Any]:
    """Whole wizards (groups, copy-from-user, policies, in turn); each view's ack timed by step."""
    timer = StepTimer(bot.url, SIGNING_SECRET)
    filler = FormFiller(timer, REQUESTER)
    modes = [
        {"permission_mode": "groups", "groups": ["engineers"]},
        {"permission_mode": "copy_user", "copy_from_user": "template.engineer"},
        {"permission_mode": "policies", "policies": ["engineers-read"], "mfa_required": ["mfa_required"]},
    ]
    view = open_view(timer, slack, REQUESTER)
    statuses: Counter = Counter()

    def one(i: int) -> None:
        answers = {"recipients": [f"U0PERSON{i % 60:02d}"], "user_names": f"bench-{label}-{i:03d}",
                   "access_types": ["programmatic", "console"], "password_mode": "custom",
                   "custom_password": "Bench-Password-2026!", "require_reset": ["require_reset"],
                   "justification": "Benchmark at IAM's default quotas.", **modes[i % len(modes)]}  # fmt: skip
        answer, _ = filler.submit({**view, "id": f"V{label}{i:05d}"}, answers)
        statuses["filed" if answer.status == 200 and not answer.body else "refused"] += 1

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, range(count)))
    every = [s for samples in timer.acks.values() for s in samples]
    return {"by_step": {step: pct(samples) for step, samples in timer.acks.items()}, "all": pct(every),
            "outcome": dict(statuses), "concurrency": concurrency}  # fmt: skip


def wait_loaded(bot: BotProcess, slack: SlackStandIn, group: str, query: str, timeout: float = 300) -> float:
    """Seconds until 20 answers in a row (both workers) to ``query`` offer ``group`` from the catalog
    (a query with many hits: it reads nothing from IAM)."""
    user = SlackUser(bot.url, SIGNING_SECRET)
    view = open_view(user, slack, REQUESTER)
    start, in_a_row = time.perf_counter(), 0
    while in_a_row < 20:
        body = user.block_suggestion(REQUESTER, view, "groups", query).json() or {}
        in_a_row = in_a_row + 1 if group in [o["value"] for o in body.get("options", [])] else 0
        if time.perf_counter() - start > timeout:
            raise RuntimeError("the catalog never loaded: " + bot.log_text()[-3000:])
        time.sleep(0.05)
    return time.perf_counter() - start


def worker_rss(pid: int) -> list[float]:
    children = Path(f"/proc/{pid}/task/{pid}/children")
    pids = [int(p) for p in children.read_text().split()] if children.exists() else []
    return [rss_mib(p) for p in pids]


def run(quick: bool, latency: float) -> dict[str, Any]:
    size = {"users": 400, "groups": 60, "policies": 150} if quick else {"users": 4990, "groups": 300, "policies": 1500}
    results: dict[str, Any] = {"size": size, "latency_ms": int(latency * 1000)}
    with TemporaryDirectory() as tmp_name, MotoServer() as moto, SlackStandIn(bot_token=BOT_TOKEN) as slack:
        tmp = Path(tmp_name)
        for user_id in [REQUESTER, APPROVER, *(f"U0PERSON{i:02d}" for i in range(60))]:
            slack.add_user(user_id, name=user_id.lower(), email=f"{user_id.lower()}@example.com")
        seed_request_world(moto)
        proxy = IamProxy(moto.url)
        # Overhead of the proxy itself: the same call direct and through it.
        direct, through = moto.boto3_client("iam"), moto.boto3_client("iam", endpoint_url=proxy.url)
        timings = {}
        for label, client in (("direct", direct), ("proxy", through)):
            client.get_user(UserName="template.engineer")
            start = time.perf_counter()
            for _ in range(200):
                client.get_user(UserName="template.engineer")
            timings[label] = round((time.perf_counter() - start) * 1000 / 200, 2)
        results["proxy_overhead_ms"] = timings

        # 1. One provisioning in an almost empty account, then the same at the default quotas.
        bot = BotProcess(env=bot_env(slack, proxy.url, tmp / "small.db"), log_path=tmp / "small.log", workers=WORKERS)
        bot.start()
        wait_loaded(bot, slack, "engineers", "")
        results["provision_small_account"] = provision_one(bot, tmp / "small.db", slack, proxy, "bench-small", latency)
        bot.stop()

        started = time.perf_counter()
        populate(moto, **size)
        results["populate_s"] = round(time.perf_counter() - started, 1)
        results["catalog_load"] = [catalog_load(proxy, moto, 0.0), catalog_load(proxy, moto, latency)]

        proxy.reset()
        env = {**bot_env(slack, proxy.url, tmp / "bot.db"), "LOG_LEVEL": "INFO"}
        bot = BotProcess(env=env, log_path=tmp / "bot.log", workers=WORKERS)
        start = time.perf_counter()
        bot.start()
        wait_loaded(bot, slack, "team-001", "team-0")
        results["server_catalog"] = {
            "start_to_loaded_s": round(time.perf_counter() - start, 2),
            "list_calls_for_both_workers": {a: n for a, n in proxy.actions.items() if a.startswith("List")},
        }
        results["rss_after_load"] = {"total_mib": rss_mib(bot.pid), "workers_mib": worker_rss(bot.pid)}
        results["options"] = options_p99(bot, slack, 60 if quick else 300)
        proxy.delay = latency
        results["options_at_latency"] = options_p99(bot, slack, 60 if quick else 300)
        submissions(bot, slack, 3, 1, "warm")  # first use of each path in each worker: not measured
        results["submissions"] = submissions(bot, slack, 12 if quick else 60, 1, "one")
        results["submissions_concurrent"] = submissions(bot, slack, 12 if quick else 60, 10, "ten")
        proxy.delay = 0.0
        results["provision_default_quotas"] = provision_one(bot, tmp / "bot.db", slack, proxy, "bench-big", latency)
        results["rss_after_run"] = {"total_mib": rss_mib(bot.pid), "workers_mib": worker_rss(bot.pid)}
        bot.stop()
        proxy.stop()
    return results


def section(r: dict[str, Any], quick: bool) -> str:
    s, lat = r["size"], r["latency_ms"]
    small, big = r["provision_small_account"], r["provision_default_quotas"]
    lines = [
        MARK_START,
        "## At IAM's default quotas",
        "",
        f"Written by `benchmarks/default_quotas.py{' --quick' if quick else ''}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        f"The account: {s['users']:,} users, {s['groups']} groups, {s['policies']:,} customer managed policies plus "
        f"the AWS managed ones moto ships. IAM is moto server behind `bot.sandbox.iam_proxy.IamProxy`, which pages "
        f"list calls by 100 as IAM does and adds no delay of its own: a `GetUser` costs {r['proxy_overhead_ms']['direct']} ms direct "
        f"and {r['proxy_overhead_ms']['proxy']} ms through it (the old proxy added about 43 ms a call). Where it says so, "
        f"{lat} ms is added to every IAM call.",
        "",
        "| what | result |",
        "| --- | --- |",
    ]
    for load in r["catalog_load"]:
        lines.append(
            f"| catalog load, {load['latency_ms']} ms per call | {load['seconds']} s, {load['calls']} calls "
            f"({load['by_action'].get('ListUsers', 0)} `ListUsers`, {load['by_action'].get('ListPolicies', 0)} `ListPolicies`, "
            f"{load['by_action'].get('ListGroups', 0)} `ListGroups` pages), {load['bytes'] / 1e6:.1f} MB read |"
        )
    sc = r["server_catalog"]
    lines.append(
        f"| server start to both workers answering from the catalog | {sc['start_to_loaded_s']} s; list calls for "
        f"both workers together: {sc['list_calls_for_both_workers']} (one load, shared) |"
    )
    for key, added in (("options", 0), ("options_at_latency", lat)):
        for action, stats in r[key].items():
            lines.append(
                f"| options `{action}`, {added} ms per IAM call, p50 / p99 / max | {stats['p50']} / {stats['p99']} / "
                f"{stats['max']} ms (n={stats['n']}, at most {stats['max_options']} options) |"
            )
    for key, label in (("submissions", "one at a time"), ("submissions_concurrent", "10 wizards at once")):
        sub = r[key]
        steps = ", ".join(f"{step} {v['p99']}" for step, v in sub["by_step"].items())
        lines.append(
            f"| view-submission ack p99, {lat} ms per IAM call, {label} | {sub['all']['p99']} ms over "
            f"{sub['all']['n']} submissions (p50 {sub['all']['p50']}); by view: {steps}; {sub['outcome']} |"
        )
    lines += [
        f"| IAM calls of one 1-user provisioning, nearly empty account | {small['calls']} ({small['writes']} writes), "
        f"{small['wall_s_at_latency']} s at {lat} ms per call |",
        f"| the same at the default quotas | {big['calls']} ({big['writes']} writes), {big['wall_s_at_latency']} s at {lat} ms per call |",
        f"| resident memory, catalog loaded | {r['rss_after_load']['total_mib']} MiB in all (master + workers); "
        f"workers {r['rss_after_load']['workers_mib']} MiB |",
        f"| resident memory, after the run | {r['rss_after_run']['total_mib']} MiB in all; workers {r['rss_after_run']['workers_mib']} MiB |",
        "",
        f"- One provisioning, by action, at the default quotas: {big['by_action']}",
        f"- In the nearly empty account: {small['by_action']}",
        "",
        "What it shows:",
        "",
        "- Provisioning no longer grows with the account: the name check is `GetUser` in a few spellings",
        "  and every group, policy and boundary is confirmed with one `GetGroup`/`GetPolicy` each, where a",
        "  `ListUsers` scan made 61 calls (50 of them pages, 1 MB) for one user at these quotas.",
        "- One catalog load per server, not per worker: the workers share it through",
        "  `<DATABASE_PATH>.catalog.json`; a worker's copy is its part of the resident memory above.",
        "- Every view that decides reads IAM at submission; with 100 ms per call each costs about one",
        "  round trip (the calls of a view run at once), the copy-from-user view two. All acks stay far",
        "  inside Slack's 3 s. Options answer from memory; a narrow search can add one exact-name",
        "  lookup (one IAM round trip, 1 s at most).",
        MARK_END,
    ]
    return "\n".join(lines) + "\n"


def write(path: Path, text: str) -> None:
    """Replace this script's section of BENCHMARKS.md (or append it)."""
    current = path.read_text() if path.exists() else "# Benchmarks\n"
    if MARK_START in current and MARK_END in current:
        head, _, rest = current.partition(MARK_START)
        _, _, tail = rest.partition(MARK_END)
        current = head + text.rstrip("\n") + tail
    else:
        current = current.rstrip("\n") + "\n\n" + text
    path.write_text(current)


def main() -> int:
    parser = arguments(__doc__.splitlines()[0], "a small account: a smoke run")
    parser.add_argument("--latency", type=float, default=0.1, help="seconds added to every IAM call where measured")
    args = parser.parse_args()
    results = run(args.quick, args.latency)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    text = section(results, args.quick)
    write(args.output, text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
