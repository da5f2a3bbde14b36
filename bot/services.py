"""Every service of one process, as the composition root (:mod:`bot.app`) built them; what the
handlers and the web routes are handed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.approval.board import ApprovalBoard
from bot.approval.expiry import PendingExpiry
from bot.approval.service import Approvals
from bot.aws.catalog import Catalog
from bot.aws.iam import IamGateway
from bot.aws.live import LiveIam
from bot.aws.typeahead import Typeahead
from bot.config import Settings
from bot.credentials.expiry import LinkExpiry
from bot.credentials.links import Links
from bot.credentials.reissue import Reissues
from bot.credentials.reveal import Reveals
from bot.credentials.sealing import PasswordSealer
from bot.lifecycle.backfill import OwnerBackfill
from bot.lifecycle.check import LifecycleCheck
from bot.lifecycle.keysdesk import KeyDesk
from bot.lifecycle.offboarding import Offboarding
from bot.lifecycle.owners import Owners
from bot.lifecycle.rotation import Rotations
from bot.lifecycle.unused import UnusedCredentials
from bot.ops.jobs import PeriodicJobs
from bot.provisioning.service import Provisioning
from bot.selfservice.desk import StatusDesk
from bot.selfservice.home import HomeTab
from bot.slack.messenger import Messenger
from bot.slack.people import People
from bot.slack.retries import EventLedger
from bot.storage.base import Store
from bot.wizard.service import Wizard

if TYPE_CHECKING:
    from bot.domain.changes import Changes


@dataclass
class Services:
    """Every service of one process."""

    settings: Settings
    store: Store
    iam: IamGateway
    catalog: Catalog
    live: LiveIam
    typeahead: Typeahead
    messenger: Messenger
    people: People
    sealer: PasswordSealer
    views: Changes
    board: ApprovalBoard
    links: Links
    reveals: Reveals
    reissues: Reissues
    link_expiry: LinkExpiry
    provisioning: Provisioning
    approvals: Approvals
    offboarding: Offboarding
    rotations: Rotations
    owners: Owners
    unused: UnusedCredentials
    lifecycle_check: LifecycleCheck
    backfill: OwnerBackfill
    key_desk: KeyDesk
    pending_expiry: PendingExpiry
    wizard: Wizard
    desk: StatusDesk
    home: HomeTab
    events: EventLedger
    jobs: PeriodicJobs

    def close(self) -> None:
        """Stop this process's background work: the periodic jobs, the views' threads, the
        catalog's reads and the IAM lookups' pool."""
        self.jobs.shutdown()
        self.board.shutdown()
        self.home.shutdown(wait=True)
        self.typeahead.shutdown()
        self.live.shutdown()
