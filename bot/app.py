"""The composition root: builds every service of one process once and wires them together.

Nothing else constructs a service: each takes its collaborators as arguments, so a test can hand
any of them its own (a store with a controllable clock, an executor that runs at once, a second
lease owner playing another process). Read top to bottom, :func:`build_services` is the flow of a
request through the stages: wizard → approval → provisioning → credentials, then the users' life
after it (lifecycle: rotation, owners who leave, unused credentials, removal), with self-service
and the periodic jobs beside them.
"""

from __future__ import annotations

import logging
import sys
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any

from flask import Flask
from slack_bolt import App
from slack_bolt.error import BoltError
from slack_sdk import WebClient

import handlers
from bot import logs
from bot.approval.board import ApprovalBoard
from bot.approval.expiry import PendingExpiry
from bot.approval.service import Approvals
from bot.aws.catalog import Catalog
from bot.aws.catalog_share import CatalogShare
from bot.aws.clients import make_clients
from bot.aws.iam import IamGateway
from bot.aws.inventory import Inventory
from bot.aws.keys import KeyKeeper
from bot.aws.live import LiveIam
from bot.aws.secrets import load_settings_from_environment
from bot.aws.typeahead import SYNC_SECONDS, Typeahead
from bot.config import ConfigError, Settings
from bot.credentials.expiry import LinkExpiry
from bot.credentials.links import Links
from bot.credentials.ownership import LinkRecords, seal_older_links
from bot.credentials.reissue import Reissues
from bot.credentials.reveal import Reveals
from bot.credentials.sealing import approval_seal_for, record_seal_for, sealer_for
from bot.domain.models import OnboardingRequest
from bot.domain.records import SecretRow
from bot.lifecycle.backfill import OwnerBackfill
from bot.lifecycle.check import LifecycleCheck
from bot.lifecycle.keysdesk import KeyDesk
from bot.lifecycle.offboarding import Offboarding
from bot.lifecycle.owned import OwnedUsers
from bot.lifecycle.owners import Owners
from bot.lifecycle.rotation import Rotations
from bot.lifecycle.unused import UnusedCredentials
from bot.ops.jobs import Job, PeriodicJobs
from bot.provisioning.guard import ApprovalGuard
from bot.provisioning.lease import Leases
from bot.provisioning.runner import Provisioner
from bot.provisioning.service import Provisioning
from bot.selfservice.desk import StatusDesk
from bot.selfservice.home import HomeTab
from bot.services import Services
from bot.slack.messenger import Messenger, make_web_client
from bot.slack.people import People
from bot.slack.retries import EventLedger
from bot.slack.socket_mode import SocketModeConnection, SocketModeError
from bot.storage import open_store
from bot.storage.base import Store
from bot.storage.dynamodb.table import TableMissing
from bot.web import create_flask
from bot.wizard.service import Wizard

log = logging.getLogger(__name__)

# Bolt acks in the request's own thread (process_before_response: the ack function is all that runs
# before the answer) and runs the slow parts, the lazy listeners, in this pool. Bolt's default of 5
# threads let a burst of slow parts wait (BENCHMARKS.md: 50 submissions at once); the pool carries
# each request's log ids too. On AWS Lambda the lazy listeners are other invocations instead.
LISTENER_THREADS = 32
CATALOG_SYNC_SECONDS = SYNC_SECONDS
LINK_EXPIRY_SECONDS = 30.0
RESUME_SECONDS = 300.0
BACKFILL_SECONDS = 86400.0  # the owner tag back-fill runs at start; a daily re-run does nothing once done


class Views:
    """What people see of a request, told of every change (:class:`bot.domain.changes.Changes`):
    the approvers' message (:class:`ApprovalBoard`) and each person's App Home (:class:`HomeTab`);
    and a revealed link finishes the key rotation waiting for it (:class:`Rotations`)."""

    def __init__(self, board: ApprovalBoard) -> None:
        self.board = board
        self.home: HomeTab | None = None  # set once the Home exists (it needs the stages below)
        self.rotations: Rotations | None = None  # set once the lifecycle stage exists (it needs the views)

    def request_moved(self, request: OnboardingRequest) -> None:
        self.board.refresh(request.id)
        if self.home is not None:
            self.home.refresh_for(request)

    def step_done(self, request_id: str) -> None:
        self.board.progressed(request_id)

    def request_updated(self, request_id: str) -> None:
        if self.home is not None:
            self.home.refresh_for_id(request_id)

    def link_revealed(self, row: SecretRow) -> None:
        if self.rotations is not None:
            self.rotations.revealed(row)
        self.request_updated(row.request_id)


def build_services(
    settings: Settings,
    *,
    store: Store | None = None,
    iam: IamGateway | None = None,
    client: WebClient | None = None,
    leases: Leases | None = None,
    executor: Executor | None = None,
    background: Executor | None = None,
    share_catalog: bool = True,
) -> Services:
    """Build and wire every service. Arguments left out are made from ``settings`` (tests pass
    their own); ``executor`` runs provisioning and the work after a reveal attempt, ``background``
    the views' refreshes (App Home, progress lines). On AWS Lambda both run inline
    (:mod:`bot.serverless`): a frozen function would never run them later, and
    ``share_catalog=False``: a container's disk is its own and its code folder read-only, so
    each container keeps its typeahead catalog in memory (no ``<DATABASE_PATH>.catalog.json``)."""
    store = store or open_store(settings)
    iam = iam or IamGateway(*make_clients())
    client = client or make_web_client(settings.slack_bot_token.get_secret_value(), settings.slack_base_url)
    executor = executor or logs.ContextExecutor(max_workers=2, thread_name_prefix="provision")
    leases = leases or Leases(clock=store.clock)
    catalog = Catalog(iam.load_catalog)
    live = LiveIam(iam)  # decisions read IAM now (the catalog is for typeahead)
    # The options menus' catalog: read by one worker of this server, shared through a file.
    share = CatalogShare.beside(settings.database_path) if share_catalog else None
    typeahead = Typeahead(catalog, iam, live, share, settings.catalog_refresh_seconds)
    messenger = Messenger(client)
    people = People(
        messenger,
        settings.approver_user_ids,
        settings.approver_usergroup_id,
        settings.requester_user_ids,
        settings.requester_usergroup_id,
    )
    sealer = sealer_for(settings)
    # What ties a stored approval to a secret the store does not hold (bot.domain.seal): checked
    # before every provisioning and removal run, fresh or resumed.
    seal = approval_seal_for(settings)
    channel = settings.approval_channel_id
    guard = ApprovalGuard(store, seal, messenger, channel)
    board = ApprovalBoard(store, messenger, channel, settings.pending_request_ttl_seconds, background)
    views = Views(board)
    keys = KeyKeeper(iam)
    # Credentials: sealed, delivered, revealed once, re-issued, expired.
    # Each link's record is sealed (bot.domain.seal.RecordSeal); those written before seals
    # existed are sealed once: here, at the first start-up after a SQLite file's migration; a
    # DynamoDB table's by `init-store` (its Scan is not in the bot's role).
    record_seal = record_seal_for(settings)
    if settings.store != "dynamodb":
        seal_older_links(store, record_seal)
    links = Links(settings, store, messenger, record_seal)
    reveals = Reveals(store, links, messenger, views, channel, executor)
    records = LinkRecords(store, iam, messenger, channel, record_seal)
    reissues = Reissues(store, links, iam, keys, messenger, people, views, records)
    link_expiry = LinkExpiry(store, links, keys, messenger, views, channel, records)
    # Provisioning, started by the final approval; approval, started by the wizard.
    provisioner = Provisioner(store, iam, live, leases, on_step_done=views.step_done)
    provisioning = Provisioning(
        store, iam, catalog, links, sealer, messenger, views, leases, executor, provisioner, guard
    )
    # The users' life after onboarding: rotation, owners who leave, unused credentials, removal.
    policy = settings.lifecycle_policy
    inventory = Inventory(iam)
    owned = OwnedUsers(store, iam)
    rotations = Rotations(store, iam, keys, links, messenger, views, policy, channel, records)
    views.rotations = rotations
    owners = Owners(store, owned, keys, messenger, views, channel)
    unused = UnusedCredentials(store, keys, messenger, people, channel, policy.unused_days)
    lifecycle_check = LifecycleCheck(store, inventory, keys, messenger, rotations, unused, owners, policy)
    backfill = OwnerBackfill(store, iam, inventory, guard)
    offboarding = Offboarding(store, iam, inventory, provisioner, leases, messenger, views, executor, guard)
    key_desk = KeyDesk(store, owned, keys, policy)
    approvals = Approvals(
        store,
        iam,
        people,
        messenger,
        board,
        views,
        provisioning,
        offboarding,
        settings.sensitive_permissions,
        settings.sensitive_approvals_required,
        guard,
    )
    pending_expiry = PendingExpiry(
        store, board, messenger, people, views, settings.pending_request_ttl_seconds, approvals.announce
    )
    wizard = Wizard(store, catalog, live, iam, sealer, approvals.file, messenger.user_info)
    # Self-service: status, pending, cancel, the App Home.
    desk = StatusDesk(store, people, messenger, approvals, key_desk)
    home = HomeTab(store, desk, key_desk, people, messenger, background)
    views.home = home
    jobs = PeriodicJobs(
        [
            Job("catalog_refresh", settings.catalog_refresh_seconds, typeahead.refresh, at_start=True),
            Job("catalog_sync", CATALOG_SYNC_SECONDS, typeahead.sync),
            # Provisioning a stopped or crashed process left half-done: resumed or rolled back.
            Job("resume_interrupted", RESUME_SECONDS, provisioning.resume_interrupted, at_start=True),
            Job("resume_removals", RESUME_SECONDS, offboarding.resume_interrupted, at_start=True),
            Job("owner_backfill", BACKFILL_SECONDS, backfill.run, at_start=True),
            Job("lifecycle_check", settings.lifecycle_check_interval_seconds, lifecycle_check.run),
            Job("pending_expiry", settings.expiry_check_interval_seconds, pending_expiry.sweep, at_start=True),
            Job("link_expiry", LINK_EXPIRY_SECONDS, link_expiry.expire_due),
        ]
    )
    return Services(
        settings=settings,
        store=store,
        iam=iam,
        catalog=catalog,
        live=live,
        typeahead=typeahead,
        messenger=messenger,
        people=people,
        sealer=sealer,
        views=views,
        board=board,
        links=links,
        reveals=reveals,
        reissues=reissues,
        link_expiry=link_expiry,
        provisioning=provisioning,
        approvals=approvals,
        offboarding=offboarding,
        rotations=rotations,
        owners=owners,
        unused=unused,
        lifecycle_check=lifecycle_check,
        backfill=backfill,
        key_desk=key_desk,
        pending_expiry=pending_expiry,
        wizard=wizard,
        desk=desk,
        home=home,
        events=EventLedger(store),
        jobs=jobs,
    )


def build_bolt(services: Services, **app_options: Any) -> App:
    """The Bolt app with every listener registered (``App(client=…)`` calls Slack's ``auth.test``
    here, so Slack, or the stand-in, must answer)."""
    settings = services.settings
    signing = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else None
    options: dict[str, Any] = {
        # The ack function runs to its end before Slack gets the answer, then the lazy listeners
        # start: what they need from the ack's work (a filed request) is in the store by then.
        "process_before_response": True,
        "raise_error_for_unhandled_request": False,
        "listener_executor": logs.ContextExecutor(max_workers=LISTENER_THREADS, thread_name_prefix="bolt-listener"),
        **app_options,
    }
    bolt = App(client=services.messenger.client, signing_secret=signing, **options)
    bolt.use(logs.bolt_log_context)
    handlers.register(bolt, services)
    return bolt


@dataclass
class Bot:
    """One serving process: its services, the Bolt app, the Flask app and, in Socket Mode, its
    connection to Slack."""

    services: Services
    bolt: App
    flask: Flask
    socket_mode: SocketModeConnection | None = None

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def store(self) -> Store:
        return self.services.store


def build_bot(settings: Settings | None = None, *, start_background: bool = True) -> Bot:
    """Services, Bolt and Flask for one process; with ``start_background`` the periodic jobs start
    and, when ``SLACK_APP_TOKEN`` is set, the Socket Mode connection opens."""
    settings = settings or load_settings_from_environment()
    services = build_services(settings)
    bolt = build_bolt(services)
    connection = None
    if start_background:
        if settings.slack_app_token is not None:
            # Refreshes without a gap in acks (bot.slack.socket_mode); raises SocketModeError.
            app_token = settings.slack_app_token.get_secret_value()
            connection = SocketModeConnection(bolt, app_token, settings.slack_base_url)
            connection.start()
        services.jobs.start()
    flask = create_flask(bolt, services.reveals, settings, services.store.schema_version)
    return Bot(services=services, bolt=bolt, flask=flask, socket_mode=connection)


def create_app() -> Flask:
    """WSGI entry point for gunicorn (``bot.app:create_app()``), one bot per worker process.

    A bad configuration or an unreachable Slack ends the worker with one clear line (exit 3,
    which makes gunicorn's master stop too) instead of a traceback.
    """
    try:
        settings = load_settings_from_environment()
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(3) from None
    logs.configure(settings.log_format, settings.log_level)
    try:
        return build_bot(settings).flask
    except TableMissing as error:
        log.error("start-up: %s", error)  # names `iam-user-bot init-store`
        raise SystemExit(3) from None
    except (BoltError, OSError, SocketModeError) as error:
        # Bolt checks the token with auth.test at start-up: say what failed in one line, not a traceback.
        where = settings.slack_base_url
        if isinstance(error, BoltError):
            log.error("start-up: Slack refused the bot token (%s); check SLACK_BOT_TOKEN", error)
        elif isinstance(error, SocketModeError):
            log.error("start-up: %s; check SLACK_APP_TOKEN and outbound HTTPS to *.slack.com", error)
        else:
            log.error("start-up: cannot reach Slack at %s (%s); check SLACK_API_URL and outbound HTTPS", where, error)
        raise SystemExit(3) from None
