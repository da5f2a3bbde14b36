"""What ``iam-user-bot serve`` makes sure of once, before gunicorn starts a worker.

Each worker would find the same problems (Slack unreachable, a refused token, a database it
cannot open) and report them once per worker among the Slack SDK's retry lines, with gunicorn's
"Worker failed to boot" as the last word. Checked here first, in the serving process, a problem
ends start-up with one line saying what to fix; the probes do not retry and log nothing.
"""

from __future__ import annotations

from bot.config import Settings
from bot.slack.selfcheck import UNREACHABLE, SlackProbe


def preflight(settings: Settings) -> str | None:
    """``None`` when the bot can start, else one line (no secret) naming what stops it.

    In order: ``auth.test`` with the bot token; in Socket Mode, ``apps.connections.open`` with
    the app-level token; the database at ``DATABASE_PATH`` (created or migrated, then closed,
    so that workers find it ready).
    """
    base_url = settings.slack_base_url
    slack = SlackProbe(settings.slack_bot_token.get_secret_value(), base_url)
    answer, _, problem = slack.auth()
    if answer is None:
        if problem and problem.startswith(UNREACHABLE):
            why = problem.removeprefix(UNREACHABLE)
            return f"start-up: cannot reach Slack at {base_url} ({why}); check SLACK_API_URL and outbound HTTPS"
        return f"start-up: Slack refused the bot token ({problem}); check SLACK_BOT_TOKEN"
    if settings.slack_app_token is not None:
        problem = slack.socket_mode(settings.slack_app_token.get_secret_value())
        if problem is not None:
            return f"start-up: Slack refused the app-level token ({problem}); check SLACK_APP_TOKEN"
    return _database_problem(settings)


def _database_problem(settings: Settings) -> str | None:
    from bot.storage import open_database

    path = settings.database_path
    try:
        store = open_database(path)  # creates or migrates the file
        close = getattr(store, "close", None)  # the workers open their own connections after the fork
        if close is not None:
            close()
    except Exception as error:  # sqlite3, OS or migration errors: one line, not a traceback
        return f"start-up: cannot open the database at {path} ({error}); check DATABASE_PATH"
    return None
