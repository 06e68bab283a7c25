"""``synapsekit serve``: the gateway on uvicorn.

Why through an app factory: with ``--workers N`` uvicorn starts N processes that each
import the app, so the app is built by :func:`create_app` from the config path in the
environment variable ``SYNAPSEKIT_GATEWAY_CONFIG`` (set by :func:`serve`), in every worker
the same way. The config is validated once in the parent first, so a mistake stops the
command with its line and field before any worker starts.

Safe defaults: it binds 127.0.0.1; ``--workers > 1`` is refused without ``[storage]
redis_url`` (each worker would keep its own rate limits, budgets' holds and breakers, and
a key would get N times its limit); uvicorn's own access log is off (the gateway's logs
key ids, never headers); SIGTERM stops accepting connections and lets streams in flight
finish for up to ``[gateway] shutdown_timeout`` seconds (uvicorn's graceful shutdown).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ConfigError, MissingDependencyError
from synapsekit.gateway.config import GatewayConfig, load_config

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["CONFIG_ENV", "create_app", "log_config", "serve"]

#: Where :func:`serve` leaves the config path for the workers' :func:`create_app`.
CONFIG_ENV = "SYNAPSEKIT_GATEWAY_CONFIG"


def create_app() -> Starlette:
    """The app for the config file named by ``SYNAPSEKIT_GATEWAY_CONFIG`` (uvicorn's
    factory; each worker calls it)."""
    from synapsekit.gateway.app import build_app
    from synapsekit.gateway.core import Gateway

    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"{CONFIG_ENV} is not set: start the gateway with `synapsekit serve`")
    return build_app(Gateway.from_config(load_config(path)))


def check_workers(config: GatewayConfig, workers: int) -> None:
    """Refuse several workers that would not share limits and budgets."""
    if workers < 1:
        raise ConfigError(f"--workers: must be >= 1, not {workers}")
    if workers > 1 and not config.redis_url:
        raise ConfigError(
            f"--workers {workers} needs [storage] redis_url in {config.path}: without Redis "
            "each worker keeps its own rate limits, budget holds and circuit breakers, so "
            f"every key would get {workers} times its limits. Set redis_url or use one worker."
        )


def serve(
    path: str, *, host: str | None = None, port: int | None = None, workers: int = 1,
) -> None:
    """Validate the config at ``path``, then run the gateway until SIGTERM / Ctrl-C."""
    config = load_config(path)
    check_workers(config, workers)
    _check_members(config)
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependencyError(
            "uvicorn", "gateway", feature="`synapsekit serve`"
        ) from exc
    from synapsekit.gateway._nodelay import protocol

    os.environ[CONFIG_ENV] = os.path.abspath(path)
    uvicorn.run(
        "synapsekit.gateway.server:create_app",
        factory=True,
        host=host or config.host,
        port=config.port if port is None else port,
        workers=workers,
        access_log=False,
        log_config=log_config(),
        timeout_graceful_shutdown=max(1, round(config.shutdown_timeout)),
        server_header=False,
        http=protocol(),  # Nagle off on every connection (see _nodelay)
        ws="none",  # no websocket routes: do not import a websockets library
    )


def _check_members(config: GatewayConfig) -> None:
    """Build the Routers once in the parent: a provider that cannot be made (unknown
    provider, SDK not installed) stops the command before any worker starts."""
    from synapsekit.gateway.core import build_routers

    build_routers(config)


def log_config() -> dict[str, Any]:
    """uvicorn's logging plus the gateway's loggers, one line each on stderr."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain",
                                "stream": "ext://sys.stderr"}},
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "synapsekit": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }
