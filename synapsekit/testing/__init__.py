"""Tools for testing code that calls LLMs, without the network.

- :class:`FakeLLM` (:mod:`.fake`): a provider whose replies are scripted.
- :class:`Cassette` (:mod:`.cassette`): record real calls once, replay them offline through
  the same call path; also the ``cassette`` pytest fixture (:mod:`.pytest_plugin`).
- :mod:`.simulators`: local HTTP servers speaking each provider's wire protocol, for
  integration tests of the real SDKs (``python -m synapsekit.testing.simulators openai``).

Names are imported lazily (PEP 562): the call path looks up the active cassette through
:mod:`.cassette` on every call, and importing this package must not import FakeLLM (and
with it the whole call path) at that moment.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from synapsekit._lazy import lazy_getattr

if TYPE_CHECKING:
    from synapsekit.testing.cassette import Cassette
    from synapsekit.testing.fake import FULL_CAPABILITIES, FakeLLM, Reply, fake_tokens

_LAZY = {
    "Cassette": "synapsekit.testing.cassette",
    "FULL_CAPABILITIES": "synapsekit.testing.fake",
    "FakeLLM": "synapsekit.testing.fake",
    "Reply": "synapsekit.testing.fake",
    "fake_tokens": "synapsekit.testing.fake",
}

__all__ = ["FULL_CAPABILITIES", "Cassette", "FakeLLM", "Reply", "fake_tokens"]

__getattr__ = lazy_getattr(__name__, _LAZY)


def __dir__() -> list[str]:
    return __all__
