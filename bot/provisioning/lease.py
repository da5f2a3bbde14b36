"""The lease that lets one process at a time work on a provisioning request.

Several gunicorn workers (or hosts) starting at once each try to claim a half-done request; the
store's compare-and-set lets exactly one win. A lease is free when it was released, when it
expired, or when its owner is a process on this host that no longer runs.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from bot.domain.records import Lease

LEASE_SECONDS = 300  # renewed after every step; a step's retries take well under a minute


class LeaseLost(Exception):
    """Another process took this request over (our lease lapsed); stop without touching it."""


def process_owner() -> str:
    """A lease owner id for this process: ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_is_gone(owner: str) -> bool:
    """True when ``owner`` names a process on this host that no longer runs (or is a zombie).

    An owner on another host is never "gone" by this test; its lease must expire instead.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    try:
        # Field 3 is the state; a killed child its parent has not reaped yet shows "Z".
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


@dataclass(frozen=True)
class Leases:
    """This process's lease terms: its owner id, how long a claim holds, and how to tell that
    another owner's process died (tests pass their own to play a second process)."""

    clock: Callable[[], datetime]
    owner: str = field(default_factory=process_owner)
    seconds: float = LEASE_SECONDS
    is_gone: Callable[[str], bool] = owner_is_gone

    def lease(self) -> Lease:
        """A lease for this process from now on."""
        return Lease(self.owner, self.clock() + timedelta(seconds=self.seconds))
