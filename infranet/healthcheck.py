"""`infranet healthcheck`: asks the running service's /healthz on the configured address.

A container's HEALTHCHECK runs it, so the probe follows the port and host of the config file the
service reads instead of a port written into the image."""

from __future__ import annotations

from http.client import HTTPConnection

from infranet.config import HttpSettings

_WILDCARD = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}  # noqa: S104 - mapped away


def probe_host(http: HttpSettings) -> str:
    """The address to ask: a service listening on every interface answers on loopback."""
    return _WILDCARD.get(http.host, http.host)


def check_health(http: HttpSettings, timeout: float = 4.0) -> tuple[bool, str]:
    """(healthy, one line saying what was seen). Healthy means /healthz answered 200."""
    host = probe_host(http)
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{http.port}/healthz"
    connection = HTTPConnection(host, http.port, timeout=timeout)
    try:
        connection.request("GET", "/healthz", headers={"User-Agent": "infranet-healthcheck"})
        response = connection.getresponse()
        body = response.read(200).decode("utf-8", "replace").strip()
    except OSError as exc:
        return False, f"unhealthy: {url}: {exc.strerror or exc}"
    finally:
        connection.close()
    if response.status == 200:
        return True, f"healthy: {url} answered 200"
    return False, f"unhealthy: {url} answered {response.status} {body[:100]}"
