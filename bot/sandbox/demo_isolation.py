"""Seal a demo run off from the operator's set-up: no inherited AWS or bot settings, SIGTERM stops it like Ctrl-C."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

from bot.config import Settings

# Variables the demo must not inherit (every setting of the contract): it must never reach a real
# AWS account or Slack workspace, nor pick up an operator's tuning.
_CONTRACT_VARS = frozenset(name.upper() for name in Settings.model_fields)


@contextlib.contextmanager
def _hermetic_environment(home: Path) -> Iterator[None]:
    """Drop every AWS_* and contract variable (restored afterwards) so nothing real is reachable."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AWS_") or name in _CONTRACT_VARS:
            del os.environ[name]
    # No shared config or credentials file of the operator's can point boto3 elsewhere.
    os.environ["AWS_CONFIG_FILE"] = str(home / "aws-config")
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = str(home / "aws-credentials")
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C, so ``finally`` blocks stop the servers either way."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
