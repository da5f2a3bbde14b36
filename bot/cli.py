"""``iam-user-bot`` command line: serve, demo, check, manifest, audit."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from collections.abc import Sequence
from datetime import datetime

from bot.config import ConfigError


def _serve(args: argparse.Namespace) -> int:
    from gunicorn.app.base import BaseApplication

    from bot import logs
    from bot.aws.secrets import load_settings_from_environment
    from bot.ops.startup import preflight

    try:
        settings = load_settings_from_environment()
    except ConfigError as error:
        print(error, file=sys.stderr)
        return 2
    logs.configure(settings.log_format, settings.log_level)
    problem = preflight(settings)  # Slack and the database, once, before any worker starts
    if problem is not None:
        print(problem, file=sys.stderr)
        return 3

    class Server(BaseApplication):
        """gunicorn, the production WSGI server the Procfile also uses, started in-process."""

        def load_config(self) -> None:
            self.cfg.set("bind", f"{args.host}:{settings.port}")
            # Socket Mode holds one websocket per process; HTTP mode can scale out.
            self.cfg.set("workers", 1 if settings.socket_mode else args.workers)
            self.cfg.set("worker_class", "gthread")
            self.cfg.set("threads", args.threads)
            self.cfg.set("timeout", 60)
            self.cfg.set("accesslog", "-" if args.access_log else None)
            self.cfg.set("logger_class", "bot.logs.GunicornLogger")  # gunicorn's lines in LOG_FORMAT too
            if "control_socket_disable" in self.cfg.settings:  # gunicorn ≥ 25
                # Nothing uses gunicornc here; don't write ~/.gunicorn (read-only homes, several bots a host).
                self.cfg.set("control_socket_disable", True)

        def load(self):  # type: ignore[no-untyped-def]
            from bot.app import create_app

            return create_app()

    from gunicorn.errors import HaltServer

    try:
        Server().run()
    except HaltServer as halted:  # the workers logged why; one line here instead of gunicorn's traceback
        print(f"serve: {halted.reason} (see the lines above)", file=sys.stderr)
        return int(halted.exit_status)
    return 0


def _audit(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from bot.storage import describe, open_from_environment

    dynamodb = os.environ.get("STORE", "").strip().lower() == "dynamodb"
    path = Path(os.environ.get("DATABASE_PATH", "iam-user-bot.db"))
    if not dynamodb and not path.exists():
        print(f"audit: no database at {path} (set DATABASE_PATH)", file=sys.stderr)
        return 2
    since = None
    if args.since:
        try:
            since = datetime.fromisoformat(args.since)
        except ValueError:
            print(
                f"audit: --since must be ISO-8601, like 2026-11-30T09:00:00+00:00, not {args.since!r}", file=sys.stderr
            )
            return 2
        if since.tzinfo is None:
            from datetime import UTC

            since = since.replace(tzinfo=UTC)
    where = describe(os.environ) if dynamodb else str(path)
    try:
        events = open_from_environment(os.environ).audit_events(since=since)
    except Exception as error:  # not a database, a directory, a newer schema: one line, no traceback
        print(f"audit: cannot read the audit log at {where}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    rows = [e.model_dump(mode="json") for e in events]
    if args.format == "json":
        json.dump(rows, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        writer = csv.DictWriter(sys.stdout, fieldnames=["id", "at", "request_id", "actor", "event", "detail"])
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "detail": json.dumps(row["detail"], sort_keys=True)})
    return 0


def _check(args: argparse.Namespace) -> int:
    from bot.ops.check import main as check_main

    return check_main()


def _demo(args: argparse.Namespace) -> int:
    from bot.sandbox import demo

    return demo.main(keep=args.keep)


def _manifest(args: argparse.Namespace) -> int:
    from bot.slack.manifest import ManifestError, render, to_text

    try:
        manifest = render(url=args.url, socket_mode=args.socket_mode)
    except ManifestError as error:
        print(f"manifest: {error}", file=sys.stderr)
        return 2
    sys.stdout.write(to_text(manifest, args.format))
    return 0


def _init_store(args: argparse.Namespace) -> int:
    from bot.storage import describe, init_store

    try:
        done = init_store(os.environ)
    except Exception as error:  # refused by AWS, not writable: one line, no traceback
        print(f"init-store: {describe(os.environ)}: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    for line in done:
        print(line)
    return _seal_older_links()


def _seal_older_links() -> int:
    """The one-time sealing of link records written before records were sealed, when the store's
    upgrade asks for it, with the bot's key: ``SLACK_BOT_TOKEN`` / ``CUSTOM_PASSWORD_SEALING_KEY``
    from the environment or from ``SLACK_SECRETS_FROM``, as the bot reads them (a DynamoDB table's
    upgrade is done here: its ``Scan`` needs the operator's role). Prints only a count."""
    from bot.aws.secrets import SOURCE_VARIABLE, read_secrets
    from bot.credentials.ownership import SEAL_UPGRADE, seal_older_links
    from bot.credentials.sealing import record_seal_key
    from bot.domain.seal import RecordSeal
    from bot.storage import open_from_environment
    from bot.storage.dynamodb import DynamoStore

    store = open_from_environment(os.environ)
    if not store.upgrade_pending(SEAL_UPGRADE):
        return 0
    if not isinstance(store, DynamoStore):  # an SQLite file's are sealed by the bot at its next start-up
        print("link records from before seals: the bot seals them at its next start-up")
        return 0
    secrets = dict(os.environ)
    try:
        if source := secrets.get(SOURCE_VARIABLE, "").strip():
            secrets.update(read_secrets(source))
        seal = RecordSeal(
            record_seal_key(secrets.get("SLACK_BOT_TOKEN", ""), secrets.get("CUSTOM_PASSWORD_SEALING_KEY"))
        )
    except (ConfigError, ValueError) as error:  # ValueError: no bot token or sealing key of 16+ bytes
        print(
            f"init-store: link records from before this version wait to be sealed ({error}); run init-store again "
            f"with the bot's SLACK_BOT_TOKEN and CUSTOM_PASSWORD_SEALING_KEY set, or {SOURCE_VARIABLE} "
            "(until then they are refused)",
            file=sys.stderr,
        )
        return 2
    print(f"sealed {seal_older_links(store, seal)} link and key rotation records from before seals")
    return 0


def _policy(args: argparse.Namespace) -> int:
    from bot.aws.steps import POLICY_DOCUMENT_NAMES, bot_policy_document
    from bot.domain.bot_policy import NO_BOUNDARY_RISK, PolicyScope, bot_policy, boundary_warning, policy_text

    scoping = (args.account, args.boundary, args.groups, args.policies)
    if args.name != "bot":
        if any(value is not None for value in scoping) or args.no_boundary:
            print(
                "policy: --account, --boundary, --no-boundary, --groups and --policies go with 'policy bot'",
                file=sys.stderr,
            )
            return 2
        sys.stdout.write(bot_policy_document(POLICY_DOCUMENT_NAMES[args.name]).rstrip() + "\n")
        return 0
    problem = _scope_problem(args)
    if problem:
        print(f"policy: {problem}", file=sys.stderr)
        return 2
    scope = PolicyScope(
        account=args.account or "*",
        boundary_arn=args.boundary,
        groups=_words(args.groups),
        policy_arns=_words(args.policies),
    )
    if args.no_boundary:
        print(
            f"policy: WARNING (--no-boundary): {NO_BOUNDARY_RISK} Set one with --boundary ARN "
            "(docs/security-model.md).",
            file=sys.stderr,
        )
    if args.boundary and (warning := boundary_warning(args.boundary)):
        print(f"policy: WARNING (--boundary): {warning}", file=sys.stderr)
    sys.stdout.write(policy_text(bot_policy(scope)))
    return 0


def _words(text: str | None) -> tuple[str, ...]:
    return tuple(word.strip() for word in (text or "").split(",") if word.strip())


def _scope_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with ``policy bot``'s options, in words, or None (no boundary is wrong
    unless ``--no-boundary`` accepts it: :data:`bot.domain.bot_policy.NO_BOUNDARY_RISK`)."""
    from bot.domain.bot_policy import BOUNDARY_ARN, NO_BOUNDARY_RISK, PolicyScope

    if args.account is not None and not (len(args.account) == 12 and args.account.isdigit()):
        return "--account must be the 12-digit AWS account id"
    if args.boundary is not None and not (found := BOUNDARY_ARN.fullmatch(args.boundary)):
        return "--boundary must be one managed policy's ARN (arn:aws:iam::…:policy/…), without * or ?"
    if args.boundary is not None and args.account and found.group(1) not in (args.account, "aws"):
        return f"--boundary must be a policy of account {args.account} or an AWS managed policy"
    if args.boundary is not None and args.no_boundary:
        return "--boundary and --no-boundary contradict each other; give one"
    if args.boundary is None and not args.no_boundary:
        return (
            f"no --boundary given. {NO_BOUNDARY_RISK} Give --boundary ARN (docs/security-model.md), "
            "or --no-boundary to accept that risk."
        )
    for arn in _words(args.policies):
        if not arn.startswith("arn:") or ":policy/" not in arn:
            return f"--policies takes managed policy ARNs, comma-separated; {arn!r} is not one"
    if args.groups is not None and not _words(args.groups):
        return "--groups names no group; leave it out for the default (the groups under /iam-user-bot/)"
    try:
        PolicyScope(groups=_words(args.groups)).group_arns()
    except ValueError as error:
        return f"--groups: {error}"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="iam-user-bot", description="Slack bot that onboards AWS IAM users.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the bot (HTTP, or Socket Mode with SLACK_APP_TOKEN)")
    serve.add_argument("--host", default="0.0.0.0", help="address to bind (default 0.0.0.0)")  # noqa: S104
    serve.add_argument("--workers", type=int, default=2, help="gunicorn worker processes in HTTP mode")
    serve.add_argument("--threads", type=int, default=8, help="threads per worker")
    serve.add_argument("--access-log", action="store_true", help="log each HTTP request")
    serve.set_defaults(run=_serve)
    check = commands.add_parser("check", help="check configuration, Slack, AWS identity and IAM permissions")
    check.set_defaults(run=_check)
    demo = commands.add_parser(
        "demo", help="play a whole onboarding on this machine (moto server, Slack stand-in); exit 0 if it worked"
    )
    demo.add_argument("--keep", action="store_true", help="keep the temp directory (database, bot and moto logs)")
    demo.set_defaults(run=_demo)
    manifest = commands.add_parser("manifest", help="print the Slack app manifest with the URLs filled in")
    mode = manifest.add_mutually_exclusive_group(required=True)
    mode.add_argument("--url", help="the bot's public base URL (PUBLIC_BASE_URL), https://…")
    mode.add_argument("--socket-mode", action="store_true", help="Socket Mode: no request URLs")
    manifest.add_argument("--format", choices=["yaml", "json"], default="yaml", help="output format (default yaml)")
    manifest.set_defaults(run=_manifest)
    init = commands.add_parser(
        "init-store", help="create (or migrate) the SQLite file or the DynamoDB table STORE names; idempotent"
    )
    init.set_defaults(run=_init_store)
    policy = commands.add_parser("policy", help="print an IAM policy document the bot uses")
    policy.add_argument(
        "name",
        choices=["bot", "require-mfa", "self-manage-credentials"],
        help="bot: the bot's own policy, scoped by the options below; the others: a bot-managed "
        "policy (created in the account as iam-user-bot-<name>)",
    )
    policy.add_argument("--account", help="bot: the 12-digit account id (default: any account, *)")
    policy.add_argument(
        "--boundary",
        help="bot: the permissions boundary ARN every created user must carry (required, or --no-boundary)",
    )
    policy.add_argument(
        "--no-boundary",
        action="store_true",
        help="bot: print a policy without a boundary, accepting that whoever holds the bot's credentials "
        "can make themselves account administrator",
    )
    policy.add_argument(
        "--groups",
        help="bot: comma-separated group names or paths (/team/, never /) users may be added to and removed "
        "from (default: the groups under /iam-user-bot/)",
    )
    policy.add_argument(
        "--policies", help="bot: comma-separated managed policy ARNs the bot may attach (default: any, on its users)"
    )
    policy.set_defaults(run=_policy)
    audit = commands.add_parser("audit", help="export the audit log")
    audit.add_argument("--since", help="only events at or after this ISO-8601 time")
    audit.add_argument("--format", choices=["csv", "json"], default="csv")
    audit.set_defaults(run=_audit)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except BrokenPipeError:
        # The reader went away (`iam-user-bot audit | head`): stop quietly, as Unix tools do.
        # Point stdout at /dev/null so the interpreter's final flush does not raise again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
