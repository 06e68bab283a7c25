"""The connection side the protocol modules share: which HTTP library an SDK sends with.

An SDK's HTTP library is read from the SDK's own module namespace, never guessed or
imported by name here: openai 3 and anthropic 2 import ``httpx2``, cohere and ollama
``httpx``, mistralai ``httpx2 as httpx``, google-genai both. So ``pip install
"synapsekit[groq]"`` works with exactly what the openai SDK pulled in, and the
exceptions caught are exactly those the installed SDK raises.
"""

from __future__ import annotations

import functools
import importlib
from dataclasses import dataclass
from types import ModuleType

__all__ = ["HttpStack", "http_stack"]

Classes = tuple[type[BaseException], ...]

#: Packages under an httpx-style client whose exceptions may surface unwrapped.
_UNDER_HTTP = ("httpcore", "httpcore2", "h11", "h2", "anyio")


@dataclass(frozen=True)
class HttpStack:
    """The HTTP libraries (``httpx`` / ``httpx2`` modules) one SDK uses."""

    libraries: tuple[ModuleType, ...]

    @property
    def module(self) -> ModuleType:
        """The library the SDK sends with (``httpx2`` when it imports both)."""
        return self.libraries[0]

    @property
    def response(self) -> type:
        """Its Response class: what ``cast_to`` asks a raw response as."""
        response: type = self.module.Response
        return response

    @property
    def timeouts(self) -> Classes:
        return tuple(lib.TimeoutException for lib in self.libraries)

    @property
    def transport(self) -> Classes:
        """Every other failure of a request or of reading a body (the stream errors are
        not ``HTTPError`` subclasses in httpx)."""
        return tuple(lib.HTTPError for lib in self.libraries) + tuple(
            lib.StreamError for lib in self.libraries
        )

    @property
    def packages(self) -> tuple[str, ...]:
        return tuple(lib.__name__ for lib in self.libraries) + _UNDER_HTTP


@functools.cache
def http_stack(*module_names: str) -> HttpStack:
    """The HTTP libraries imported by the first of ``module_names`` that exists (an
    SDK's client module; later names are older SDK layouts)."""
    for name in module_names:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        found: dict[str, ModuleType] = {}
        for value in vars(module).values():
            if isinstance(value, ModuleType) and value.__name__ in ("httpx2", "httpx"):
                found[value.__name__] = value
        if found:
            return HttpStack(tuple(found[n] for n in ("httpx2", "httpx") if n in found))
    raise ImportError(f"none of {', '.join(module_names)} imports httpx or httpx2")
