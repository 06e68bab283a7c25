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

Checked in the parent before any worker starts, so a mistake is said once and stops the
command (exit status 1): the config, the members' providers, a PostgreSQL ledger's
connection and schema, and with several workers the Redis server (a Redis that does not
answer would leave each worker on its own in-process limits, the thing ``--workers``
without Redis is refused for).

Several workers run under uvicorn's supervisor with two changes (:func:`_run_workers`):
on SIGTERM the parent closes its copy of the listening socket before it signals the
workers, so that once they stop accepting, new connections are refused at once instead of
waiting in the parent's backlog for the whole drain (one that lands in the accept queue
in the instant the last copy closes is reset by the kernel: never read, so safe to retry);
and a worker that failed to start
(exit status 3, uvicorn's ``STARTUP_FAILURE``) makes the command exit 3, as one worker
does, instead of 0. The shared state waits
:data:`synapsekit.gateway.limits.REDIS_TIMEOUT` for Redis, not the library's 0.25 s: a limit
or a circuit is only shared while Redis answers in time.
"""

from __future__ import annotations

import gc
import inspect
import os
from typing import TYPE_CHECKING, Any

from synapsekit.errors import ConfigError, MissingDependencyError
from synapsekit.gateway.config import GatewayConfig, load_config

if TYPE_CHECKING:
    import uvicorn
    from starlette.applications import Starlette

__all__ = ["CONFIG_ENV", "create_app", "log_config", "serve"]

#: Where :func:`serve` leaves the config path for the workers' :func:`create_app`.
CONFIG_ENV = "SYNAPSEKIT_GATEWAY_CONFIG"
_APP = "synapsekit.gateway.server:create_app"
#: How long the parent waits for Redis to answer its start-up ping.
_REDIS_CHECK_TIMEOUT = 5.0


def create_app() -> Starlette:
    """The app for the config file named by ``SYNAPSEKIT_GATEWAY_CONFIG`` (uvicorn's
    factory; each worker calls it)."""
    from synapsekit.gateway.app import build_app
    from synapsekit.gateway.core import Gateway
    path = os.environ.get(CONFIG_ENV)
    if not path:
        raise ConfigError(f"{CONFIG_ENV} is not set: start the gateway with `synapsekit serve`")
    app = build_app(Gateway.from_config(load_config(path)))
    # What is built by now (the SDKs, the config, the Routers: ~100k objects) lives as
    # long as the process: out of the collector's reach, a full collection no longer
    # scans it on every pass (95 ms once every few hundred requests on a loaded 2-core
    # machine, one request stalled behind it; the frozen ones 0 ms).
    gc.freeze()
    return app


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
    _check_storage(config, workers)
    _check_members(config)
    try:
        import uvicorn
    except ImportError as exc:
        raise MissingDependencyError(
            "uvicorn", "gateway", feature="`synapsekit serve`"
        ) from exc
    from synapsekit.gateway._nodelay import protocol

    os.environ[CONFIG_ENV] = os.path.abspath(path)
    options: dict[str, Any] = {
        "factory": True,
        "host": host or config.host,
        "port": config.port if port is None else port,
        "access_log": False,
        "log_config": log_config(),
        "timeout_graceful_shutdown": max(1, round(config.shutdown_timeout)),
        "server_header": False,
        "http": protocol(),  # Nagle off on every connection (see _nodelay)
        "ws": "none",  # no websocket routes: do not import a websockets library
    }
    if workers == 1:
        uvicorn.run(_APP, **options)
    else:
        _run_workers(uvicorn.Config(_APP, workers=workers, **options))


def _run_workers(config: uvicorn.Config) -> None:
    """uvicorn's supervisor over ``config.workers`` processes, with the two changes the
    module docstring gives (refuse connections while draining; a failed start fails)."""
    import uvicorn.config

    # uvicorn's start-up failure status: 3 (uvicorn.config names it in newer releases,
    # not at our 0.30 floor: the floors run found the import failing there)
    STARTUP_FAILURE = getattr(uvicorn.config, "STARTUP_FAILURE", 3)
    from uvicorn.server import Server
    from uvicorn.supervisors import Multiprocess

    class Supervisor(Multiprocess):
        def terminate_all(self) -> None:
            for sock in self.sockets:  # the workers' copies close as they start draining
                sock.close()
            super().terminate_all()

    sockets = [config.bind_socket()]
    if "target" in inspect.signature(Multiprocess.__init__).parameters:  # older uvicorn
        supervisor = Supervisor(config, target=Server(config).run,  # type: ignore[call-arg]
                                sockets=sockets)
    else:
        supervisor = Supervisor(config, sockets=sockets)
    supervisor.run()
    if any(p.process.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        raise SystemExit(STARTUP_FAILURE)  # (uvicorn logged why)


def _check_storage(config: GatewayConfig, workers: int) -> None:
    """A PostgreSQL ledger reachable and migrated; with several workers, Redis answering
    (see the module docstring). A SQLite ledger is made by the first row, as before."""
    from synapsekit.gateway.ledger import Database

    db = Database(config.ledger)
    if db.postgres:
        with db.connect():  # (LedgerError: the URL without its password, and why)
            pass
    if workers > 1 and config.redis_url:
        _ping_redis(config.redis_url, workers)


def _ping_redis(url: str, workers: int) -> None:
    from synapsekit.llm.config import redact_url

    try:
        import redis
    except ImportError as exc:
        raise MissingDependencyError(
            "redis", "redis", feature="[storage] redis_url") from exc
    client = redis.Redis.from_url(url, socket_connect_timeout=_REDIS_CHECK_TIMEOUT,
                                  socket_timeout=_REDIS_CHECK_TIMEOUT)
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        raise ConfigError(
            f"storage.redis_url: {redact_url(url)} does not answer "
            f"({type(exc).__name__}): --workers {workers} shares rate limits, budgets and "
            "circuit breakers there; without it each worker would keep its own") from None
    finally:
        client.close()


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
