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
    the app-level token; the store (the SQLite file at ``DATABASE_PATH`` created or migrated, then
    closed, so that workers find it ready; or the DynamoDB table, which must exist).
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
    from bot.storage import open_store
    from bot.storage.dynamodb.table import TableMissing

    try:
        store = open_store(settings)  # creates or migrates an SQLite file; a DynamoDB table must exist
        close = getattr(store, "close", None)  # the workers open their own connections after the fork
        if close is not None:
            close()
    except TableMissing as error:  # names `iam-user-bot init-store`
        return f"start-up: {error}"
    except Exception as error:  # sqlite3, OS, AWS or migration errors: one line, not a traceback
        if settings.store == "dynamodb":
            where, fix = f"the DynamoDB table {settings.dynamodb_table}", "DYNAMODB_TABLE and the AWS credentials"
        else:
            where, fix = f"the database at {settings.database_path}", "DATABASE_PATH"
        return f"start-up: cannot open {where} ({error}); check {fix}"
    return None
