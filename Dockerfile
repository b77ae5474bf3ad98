# infranet: one process serving HTTP (feeds, newsletter pages, /healthz), the bot and the scheduler.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INFRANET_SERVICE__DATA_DIR=/data \
    INFRANET_DATABASE__URL=sqlite+aiosqlite:////data/infranet.db \
    INFRANET_HTTP__HOST=0.0.0.0 \
    INFRANET_HTTP__PORT=8080

WORKDIR /app
# The same install step as `make run`/`make test`: the project with pip, from its own files.
COPY pyproject.toml README.md ./
COPY infranet ./infranet
RUN python -m pip install --no-cache-dir --upgrade pip \
 && python -m pip install --no-cache-dir . \
 && useradd --system --uid 10001 --home-dir /data infranet \
 && mkdir -p /data && chown infranet /data

USER infranet
VOLUME ["/data"]
EXPOSE 8080
# Configuration: mount a file and set INFRANET_CONFIG=/config/config.toml, or use INFRANET_* variables.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"
ENTRYPOINT ["infranet", "run"]
