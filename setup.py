"""Build step that pyproject.toml cannot declare: the Slack app manifest travels inside the package.

The one source of truth is the repository's top-level ``manifest.yml`` (what a person reads and
pastes). Every wheel gets a copy at ``bot/slack/manifest.yml``, made here at build time, so an
installed bot (a container, a ``pip install``) can print the manifest and check scopes against it.
A source checkout has no copy: ``bot.slack.manifest.load_template`` reads the top-level file there.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

MANIFEST = Path(__file__).resolve().parent / "manifest.yml"


class BuildWithManifest(build_py):
    """setuptools' build_py, plus the top-level manifest.yml copied into bot/slack/."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the source tree, top-level file included
            return
        target = Path(self.build_lib) / "bot" / "slack" / "manifest.yml"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MANIFEST, target)


setup(cmdclass={"build_py": BuildWithManifest})
