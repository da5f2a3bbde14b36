"""The composition root: builds every service of one process once and wires them together.

Nothing else constructs a service: each takes its collaborators as arguments, so a test can hand
any of them its own (a store with a controllable clock, an executor that runs at once, a second
lease owner playing another process). Read top to bottom, :func:`build_services` is the flow of a
request through the stages: wizard → approval → provisioning → credentials, with self-service
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
from bot.aws.keys import KeyKeeper
from bot.aws.live import LiveIam
from bot.aws.typeahead import SYNC_SECONDS, Typeahead
from bot.config import ConfigError, Settings, load_settings
from bot.credentials.expiry import LinkExpiry
from bot.credentials.links import Links
from bot.credentials.reissue import Reissues
from bot.credentials.reveal import Reveals
from bot.credentials.sealing import sealer_from_bot_token
from bot.domain.models import OnboardingRequest
from bot.ops.jobs import Job, PeriodicJobs
from bot.provisioning.lease import Leases
from bot.provisioning.runner import Provisioner
from bot.provisioning.service import Provisioning
from bot.selfservice.desk import StatusDesk
from bot.selfservice.home import HomeTab
from bot.services import Services
from bot.slack.messenger import Messenger, make_web_client
from bot.slack.people import People
from bot.slack.retries import EventLedger
from bot.storage import open_store
from bot.storage.base import Store
from bot.web import create_flask
from bot.wizard.service import Wizard

log = logging.getLogger(__name__)

# Bolt runs every listener in this pool, its ack first and then its slow part (Slack posts, IAM
# reads). Bolt's default of 5 threads let a burst of slow parts hold back later acks
# (BENCHMARKS.md: 50 submissions at once); the pool carries each request's log ids too.
LISTENER_THREADS = 32
CATALOG_SYNC_SECONDS = SYNC_SECONDS
LINK_EXPIRY_SECONDS = 30.0
RESUME_SECONDS = 300.0


class Views:
    """What people see of a request, told of every change (:class:`bot.domain.changes.Changes`):
    the approvers' message (:class:`ApprovalBoard`) and each person's App Home (:class:`HomeTab`)."""

    def __init__(self, board: ApprovalBoard) -> None:
        self.board = board
        self.home: HomeTab | None = None  # set once the Home exists (it needs the stages below)

    def request_moved(self, request: OnboardingRequest) -> None:
        self.board.refresh(request.id)
        if self.home is not None:
            self.home.refresh_for(request)

    def step_done(self, request_id: str) -> None:
        self.board.progressed(request_id)

    def request_updated(self, request_id: str) -> None:
        if self.home is not None:
            self.home.refresh_for_id(request_id)


def build_services(
    settings: Settings,
    *,
    store: Store | None = None,
    iam: IamGateway | None = None,
    client: WebClient | None = None,
    leases: Leases | None = None,
    executor: Executor | None = None,
) -> Services:
    """Build and wire every service. Arguments left out are made from ``settings`` (tests pass
    their own); ``executor`` runs provisioning and the work after a reveal attempt."""
    store = store or open_store(settings)
    iam = iam or IamGateway(*make_clients())
    client = client or make_web_client(settings.slack_bot_token.get_secret_value(), settings.slack_base_url)
    executor = executor or logs.ContextExecutor(max_workers=2, thread_name_prefix="provision")
    leases = leases or Leases(clock=store.clock)
    catalog = Catalog(iam.load_catalog)
    live = LiveIam(iam)  # decisions read IAM now (the catalog is for typeahead)
    # The options menus' catalog: read by one worker of this server, shared through a file.
    share = CatalogShare.beside(settings.database_path)
    typeahead = Typeahead(catalog, iam, live, share, settings.catalog_refresh_seconds)
    messenger = Messenger(client)
    people = People(
        messenger,
        settings.approver_user_ids,
        settings.approver_usergroup_id,
        settings.requester_user_ids,
        settings.requester_usergroup_id,
    )
    sealer = sealer_from_bot_token(settings.slack_bot_token.get_secret_value())
    channel = settings.approval_channel_id
    board = ApprovalBoard(store, messenger, channel, settings.pending_request_ttl_seconds)
    views = Views(board)
    keys = KeyKeeper(iam)
    # Credentials: sealed, delivered, revealed once, re-issued, expired.
    links = Links(settings, store, messenger)
    reveals = Reveals(store, links, messenger, views, channel, executor)
    reissues = Reissues(store, links, iam, keys, messenger, people, views)
    link_expiry = LinkExpiry(store, links, keys, messenger, views, channel)
    # Provisioning, started by the final approval; approval, started by the wizard.
    provisioner = Provisioner(store, iam, live, leases, on_step_done=views.step_done)
    provisioning = Provisioning(store, iam, catalog, links, sealer, messenger, views, leases, executor, provisioner)
    approvals = Approvals(
        store,
        iam,
        people,
        messenger,
        board,
        views,
        provisioning,
        settings.sensitive_permissions,
        settings.sensitive_approvals_required,
    )
    pending_expiry = PendingExpiry(store, board, messenger, people, views, settings.pending_request_ttl_seconds)
    wizard = Wizard(store, catalog, live, iam, sealer, approvals.file, messenger.user_info)
    # Self-service: status, pending, cancel, the App Home.
    desk = StatusDesk(store, people, messenger, approvals)
    home = HomeTab(store, desk, people, messenger)
    views.home = home
    jobs = PeriodicJobs(
        [
            Job("catalog_refresh", settings.catalog_refresh_seconds, typeahead.refresh, at_start=True),
            Job("catalog_sync", CATALOG_SYNC_SECONDS, typeahead.sync),
            # Provisioning a stopped or crashed process left half-done: resumed or rolled back.
            Job("resume_interrupted", RESUME_SECONDS, provisioning.resume_interrupted, at_start=True),
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
        "process_before_response": False,
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
    """One serving process: its services, the Bolt app and the Flask app."""

    services: Services
    bolt: App
    flask: Flask

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def store(self) -> Store:
        return self.services.store


def build_bot(settings: Settings | None = None, *, start_background: bool = True) -> Bot:
    """Services, Bolt and Flask for one process; with ``start_background`` the periodic jobs start
    and, when ``SLACK_APP_TOKEN`` is set, the Socket Mode connection opens."""
    settings = settings or load_settings()
    services = build_services(settings)
    bolt = build_bolt(services)
    if start_background:
        services.jobs.start()
        if settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode import SocketModeHandler

            SocketModeHandler(bolt, settings.slack_app_token.get_secret_value()).connect()
    flask = create_flask(bolt, services.reveals, settings, services.store.schema_version)
    return Bot(services=services, bolt=bolt, flask=flask)


def create_app() -> Flask:
    """WSGI entry point for gunicorn (``bot.app:create_app()``), one bot per worker process.

    A bad configuration or an unreachable Slack ends the worker with one clear line (exit 3,
    which makes gunicorn's master stop too) instead of a traceback.
    """
    try:
        settings = load_settings()
    except ConfigError as error:
        print(error, file=sys.stderr)
        raise SystemExit(3) from None
    logs.configure(settings.log_format, settings.log_level)
    try:
        return build_bot(settings).flask
    except (BoltError, OSError) as error:
        # Bolt checks the token with auth.test at start-up: say what failed in one line, not a traceback.
        where = settings.slack_base_url
        if isinstance(error, BoltError):
            log.error("start-up: Slack refused the bot token (%s); check SLACK_BOT_TOKEN", error)
        else:
            log.error("start-up: cannot reach Slack at %s (%s); check SLACK_API_URL and outbound HTTPS", where, error)
        raise SystemExit(3) from None
