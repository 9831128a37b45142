# The relay as a container: `docker build -t mj-relay .`, then run it with a volume on /data (README, Deploying).
# Two stages: the first installs the project into a virtual environment, the second is a fresh slim image with
# that environment alone, so nothing the build used (the source, pip's cache, setuptools) is left behind.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/relay
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
# Every dependency has a wheel for Linux (asyncpg, Pillow, PyAV with its FFmpeg): no compiler is installed.
RUN /opt/relay/bin/pip install .

FROM python:3.11-slim
COPY --from=build /opt/relay /opt/relay
# A user of its own: the bot needs no root, and the database (which holds the callback secret) is its alone.
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home relay \
    && mkdir /data && chown relay:relay /data && chmod 700 /data
ENV PATH=/opt/relay/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATABASE_PATH=/data/relay.db \
    PORT=8080
USER relay
WORKDIR /data
# SQLite's jobs, owners and button mappings live here: a volume, so they outlive the container. With
# DATABASE_URL (PostgreSQL) nothing is written here.
VOLUME /data
# The listener: callbacks (PUBLIC_URL), /healthz, /readyz, /metrics.
EXPOSE 8080
# Liveness through the listener, with the Python already here (the slim image has no curl).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=4)"
# Exec form: the bot is PID 1 and gets docker stop's SIGTERM itself, which it handles cleanly.
CMD ["python", "-m", "bot"]
