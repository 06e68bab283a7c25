"""The gateway under test, on 127.0.0.1, shared by the gateway test modules.

Two ways to run it, both real HTTP:

* :class:`GatewayServer` -- the app on uvicorn in a thread of the test process (fast; the
  test can read ``server.gateway``: its Routers, its ledger rows). Build the config text
  after the simulators started (their ports are in it)::

      with GatewayServer(config_text, env={"SIM_KEY": KEY}) as gw:
          client = openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key="sk-gw-alpha")

* :func:`serve_process` -- ``synapsekit serve`` as a subprocess (workers, signals,
  what a user runs); it returns the process and its base URL once uvicorn listens.

:func:`gateway_config` writes the usual config around simulators: one ``[[models]]`` per
member, keys, and a ledger in the test's tmp dir (never ./spend.db).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

__all__ = ["GatewayServer", "gateway_config", "member", "serve_process"]

ROOT = Path(__file__).resolve().parent.parent


def member(name: str, model: str, url: str, *, provider: str | None = None,
           key_env: str = "SIM_KEY", **fields: Any) -> str:
    """One ``[[models]]`` table (``fields``: more of its settings, TOML-encoded)."""
    lines = ["[[models]]", f'name = "{name}"', f'model = "{model}"', f'base_url = "{url}"',
             f'api_key_env = "{key_env}"']
    if provider is not None:
        lines.append(f'provider = "{provider}"')
    lines += [f"{k} = {_toml(v)}" for k, v in fields.items()]
    return "\n".join(lines) + "\n"


def gateway_config(
    members: Sequence[str], keys: Sequence[Mapping[str, Any]] = (), *,
    ledger: str | Path | None = None, extra: str = "",
) -> str:
    """A config text: the ``members`` tables (from :func:`member`), one ``[[keys]]`` per
    mapping, ``[storage] ledger`` (a path becomes ``sqlite:///<path>``) and ``extra``."""
    parts = list(members)
    for key in keys:
        parts.append("[[keys]]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in key.items()))
    if ledger is not None:
        url = ledger if isinstance(ledger, str) else f"sqlite:///{ledger}"
        parts.append(f'[storage]\nledger = "{url}"\n')
    if extra:
        parts.append(extra)
    return "\n".join(parts)


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    raise TypeError(f"no TOML for {value!r}")


class GatewayServer:
    """The gateway app on uvicorn in a thread, on a free port of 127.0.0.1.

    ``text``: the config; ``env``: the environment its ``api_key_env`` names read (not
    ``os.environ``); ``parts``: ``keys=`` / ``limits=`` / ``ledger=`` / ``routers=``
    objects given to :class:`~synapsekit.gateway.core.Gateway` instead of the defaults
    (:meth:`Gateway.from_config` builds the rest).
    """

    def __init__(self, text: str, *, env: Mapping[str, str] | None = None,
                 path: str = "gateway.toml", **parts: Any) -> None:
        from synapsekit.gateway.config import parse_config
        from synapsekit.gateway.core import Gateway

        environ = dict(env or {})
        self.config = parse_config(text, path, environ)
        self.gateway = Gateway.from_config(self.config, environ, **parts)
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def server_state(self) -> Any:
        """uvicorn's server state (its open ``connections``)."""
        return self._server.server_state

    def start(self) -> GatewayServer:
        import uvicorn

        from synapsekit.gateway._nodelay import protocol
        from synapsekit.gateway.app import build_app

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)  # proto 0: _nodelay matters
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(self.gateway), access_log=False, log_level="warning",
            lifespan="on", timeout_graceful_shutdown=5, http=protocol(), ws="none",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="gateway", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the gateway did not start (see the log above)")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=15)
        self._thread = None

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


_LISTENING = re.compile(rb"Uvicorn running on http://[\d.]+:(\d+)")


def serve_process(
    config: str | Path, *args: str, env: Mapping[str, str] | None = None,
    timeout: float = 30.0, cwd: str | Path | None = None,
) -> tuple[subprocess.Popen[bytes], str, list[bytes]]:
    """``synapsekit serve --config <config> --port 0 <args>`` started and
    listening: the process, its base URL, and the stderr lines read so far (the caller
    stops it: ``proc.terminate()``; stderr keeps being read into the list by a thread).
    It runs in ``cwd`` (default: the config's folder), so a relative ledger path such as
    ``sqlite:///spend.db`` lands there, not in the repository."""
    environ = {**os.environ, **(env or {})}
    environ["PYTHONPATH"] = str(ROOT) + os.pathsep + environ.get("PYTHONPATH", "")
    argv = [sys.executable, "-c", "import sys; from synapsekit.cli import main; sys.exit(main())",
            "serve", "--config", str(config)]
    if "--port" not in args:
        argv += ["--port", "0"]
    proc = subprocess.Popen(
        [*argv, *args], env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        cwd=Path(config).resolve().parent if cwd is None else cwd,
    )
    assert proc.stderr is not None
    stderr = proc.stderr
    lines: list[bytes] = []
    found: list[int] = []
    listening = threading.Event()

    def read() -> None:  # one reader from the start: no line left in a buffer unseen
        for line in iter(stderr.readline, b""):
            lines.append(line)
            match = _LISTENING.search(line)
            if match and not found:
                found.append(int(match.group(1)))
                listening.set()
        stderr.close()
        listening.set()  # the process ended

    threading.Thread(target=read, name="serve-stderr", daemon=True).start()
    if not listening.wait(timeout) or not found:
        proc.kill()
        raise RuntimeError(
            "synapsekit serve did not start:\n" + b"".join(lines).decode(errors="replace")
        )
    port = found[0]
    return proc, f"http://127.0.0.1:{port}", lines
