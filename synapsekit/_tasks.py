"""Run awaitables together so that none is ever left running unawaited.

``asyncio.gather`` alone leaves the other tasks running when one fails (and, when the
caller is cancelled, lets them go on unobserved); the tool loop (a turn's parallel tool
calls) and the embedding backends (concurrent batches) both need "all or none".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

__all__ = ["gather_or_cancel"]

T = TypeVar("T")


async def gather_or_cancel(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """The results in order. If one leaves with any exception (a BaseException too:
    cancellation, KeyboardInterrupt), the others are cancelled and awaited before it is
    raised."""
    tasks = [asyncio.ensure_future(a) for a in awaitables]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
