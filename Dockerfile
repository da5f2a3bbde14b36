# iam-user-bot as a container. Build: docker build -t iam-user-bot .
# Run (HTTP mode):
#   docker run -d --name iam-user-bot -p 3000:3000 -v iam-user-bot-data:/data --env-file bot.env iam-user-bot
# The SQLite database lives on the /data volume; see docs/deploy.md.

# Stage 1: the wheel, built in isolation from exactly these files (setup.py copies manifest.yml into
# it). tests/test_package.py builds the wheel from this COPY set with this command, installs it into
# a fresh virtualenv and runs manifest, check and serve from outside the source tree.
FROM python:3.11-slim AS wheel
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py MANIFEST.in README.md manifest.yml ./
COPY bot ./bot
COPY handlers ./handlers
RUN python -m pip wheel --no-deps --wheel-dir /wheels .

# Stage 2: the runtime, with that wheel installed and no source tree.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# An unprivileged user with a home (gunicorn keeps its control socket there) and the data volume.
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin bot \
    && mkdir /data && chown bot:bot /data

# The runtime only: no test extra, so no moto in the image (`demo` answers with a one-line hint).
COPY --from=wheel /wheels /wheels
RUN python -m pip install /wheels/*.whl && rm -rf /wheels

USER bot
WORKDIR /data
ENV DATABASE_PATH=/data/iam-user-bot.db \
    PORT=3000 \
    LOG_FORMAT=json
VOLUME ["/data"]
EXPOSE 3000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '3000'), timeout=4)"]

# `serve` runs gunicorn in-process: 2 workers in HTTP mode, 1 in Socket Mode (SLACK_APP_TOKEN set).
CMD ["iam-user-bot", "serve"]
