"""How one OpenAI-compatible vendor's API differs from OpenAI's: a row of data per vendor.

Its own module (not :mod:`.encode`, which re-exports it) because every vendor class names
its :class:`Vendor` in its body: importing the classes must not import the request builder.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Vendor"]


@dataclass(frozen=True)
class Vendor:
    """How one OpenAI-compatible API differs from OpenAI's, as data.

    ``reasoning``: where a reasoning setting goes (``"reasoning_effort"`` top-level field,
    ``"openrouter"`` a ``reasoning`` object, ``"deepseek"`` ``thinking`` plus
    ``reasoning_effort``); ``json_only``: no json_schema mode, so ``json_object`` plus the
    schema in the instructions; ``usage_option``: ask ``stream_options.include_usage``;
    ``carry``: assistant-message fields the next turn must send back (``provider_data``).
    """

    name: str
    reasoning: str = "reasoning_effort"
    json_only: bool = False
    usage_option: bool = True
    carry: tuple[str, ...] = ()
