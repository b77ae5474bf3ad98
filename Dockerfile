# infranet: one process serving HTTP (feeds, newsletter pages, /healthz), the bot and the scheduler.
#
#   docker build -t infranet .
#   docker run -p 8080:8080 -v infranet-data:/data -v ./config.toml:/config/config.toml \
#     -e INFRANET_HTTP__PUBLIC_BASE_URL=https://infranet.example.org infranet
#
# Configuration, lowest precedence first: built-in defaults, /etc/infranet/defaults.toml (this
# image's: listen on 0.0.0.0:8080, SQLite and the outbox in /data), /config/config.toml (mount
# yours), INFRANET_* variables (each one that replaces a file value is logged at start).
# No INFRANET_* setting is baked in as ENV: it would silently win over the mounted file.

# Stage 1: the project as a wheel, and the list of its runtime requirements.
FROM python:3.11-slim AS wheel
WORKDIR /src
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
    > /requirements.txt
COPY README.md ./
COPY infranet ./infranet
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /dist . >/dev/null

# Stage 2: the image. Only the installed package is in it, not the source tree.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    INFRANET_DEFAULTS=/etc/infranet/defaults.toml \
    INFRANET_CONFIG=/config/config.toml

# WeasyPrint (the yearly report's PDF) draws text with Pango; DejaVu has every Polish letter.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core \
 && rm -rf /var/lib/apt/lists/*

# Dependencies first, at the exact versions of requirements.lock: a change to the code (or to
# anything in pyproject.toml but the dependency list) reuses this layer.
COPY requirements.lock /tmp/deps/requirements.lock
COPY --from=wheel /requirements.txt /tmp/deps/requirements.txt
RUN python -m pip install --no-cache-dir -c /tmp/deps/requirements.lock -r /tmp/deps/requirements.txt \
 && rm -rf /tmp/deps

# The project itself, without its dependencies (installed above, pinned).
COPY --from=wheel /dist/ /tmp/dist/
RUN python -m pip install --no-cache-dir --no-deps /tmp/dist/*.whl \
 && rm -rf /tmp/dist \
 && groupadd --system --gid 10001 infranet \
 && useradd --system --uid 10001 --gid 10001 --home-dir /data --no-create-home infranet \
 && mkdir -p /data /config /etc/infranet \
 && chown 10001:10001 /data && chmod 0700 /data

COPY deploy/container-defaults.toml /etc/infranet/defaults.toml
COPY deploy/config.toml /config/config.toml

# Numeric, so that a runtime can tell it is not root without reading /etc/passwd. A bind mount
# on /data must be writable by this uid: chown -R 10001:10001 DIR on the host.
USER 10001:10001
WORKDIR /config
VOLUME ["/data"]
EXPOSE 8080
# `infranet healthcheck` reads the same configuration as the service, so it follows its port.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["infranet", "healthcheck"]
ENTRYPOINT ["infranet"]
CMD ["run"]
