"""The server's bounds on memory and time (INTERFACE.md section 13), shared by both protocol adapters.

- `Limits`: every limit in one place, with TF-Serving-like defaults (`cli` fills it from the flags);
- `Slots`: `--max-concurrent-requests`, one pool of request slots for REST and gRPC; a request takes a slot
  before its body is read or its tensors are built; the excess waits (at most as many as there are slots) until
  its deadline, then is refused with 503 / UNAVAILABLE. Threads wait with `acquire`, coroutines with
  `acquire_async`, so REST waits without holding a thread;
- deadlines: `deadline_after(seconds)` and `remaining(deadline)`, monotonic, None meaning "no deadline".

TensorFlow-free (the `--help` of `python -m serving.server` reads the defaults from here).
"""
from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from dataclasses import dataclass

DEFAULT_MAX_IMAGE_PIXELS = 16_777_216  # 4096 x 4096
REQUEST_PIXELS_FACTOR = 8  # --max-request-pixels defaults to 8x --max-image-pixels


@dataclass(frozen=True)
class Limits:
    """All the server's limits. `request_timeout_s` None: no deadline unless a gRPC client sets one."""
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS
    max_request_pixels: int = REQUEST_PIXELS_FACTOR * DEFAULT_MAX_IMAGE_PIXELS
    max_concurrent_requests: int = 64
    max_enqueued_batches: int = 100
    request_timeout_s: float | None = 30.0
    max_num_load_retries: int = 5
    load_retry_interval_s: float = 60.0

    def __post_init__(self):
        if min(self.max_image_pixels, self.max_request_pixels, self.max_concurrent_requests,
               self.max_enqueued_batches) < 1 or self.max_num_load_retries < 0 or self.load_retry_interval_s < 0:
            raise ValueError("pixel, request and queue limits must be >= 1; load retries and their interval >= 0")


def deadline_after(seconds: float | None) -> float | None:
    """The monotonic time `seconds` from now (None: no deadline)."""
    return None if seconds is None else time.monotonic() + seconds


def earliest(*deadlines: float | None) -> float | None:
    given = [d for d in deadlines if d is not None]
    return min(given) if given else None


def remaining(deadline: float | None) -> float | None:
    """Seconds left until `deadline` (never negative; None: no deadline)."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class _Waiter:
    __slots__ = ("granted", "wake")

    def __init__(self, wake):
        self.granted, self.wake = False, wake


class Slots:
    """A counting semaphore for threads and coroutines alike, with a bounded, first-come-first-served queue of
    waiters. A released slot is handed straight to the oldest waiter."""

    def __init__(self, limit: int, max_waiting: int | None = None):
        self.limit = limit
        self.max_waiting = limit if max_waiting is None else max_waiting
        self.in_use = 0
        self._waiters: deque[_Waiter] = deque()
        self._lock = threading.Lock()

    def _take_or_queue(self, wake) -> _Waiter | bool:
        """True: got a slot; False: too many waiting; else the queued waiter."""
        with self._lock:
            if self.in_use < self.limit and not self._waiters:
                self.in_use += 1
                return True
            if len(self._waiters) >= self.max_waiting:
                return False
            waiter = _Waiter(wake)
            self._waiters.append(waiter)
            return waiter

    def _give_up(self, waiter: _Waiter) -> bool:
        """After a timeout or cancellation: True if the slot was granted meanwhile (the caller now holds it)."""
        with self._lock:
            if waiter.granted:
                return True
            self._waiters.remove(waiter)
            return False

    def acquire(self, timeout: float | None) -> bool:
        """Take a slot, waiting at most `timeout` seconds (None: forever); False if none came."""
        event = threading.Event()
        got = self._take_or_queue(event.set)
        if not isinstance(got, _Waiter):
            return got
        if event.wait(timeout):
            return True
        return self._give_up(got)

    async def acquire_async(self, timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        future = loop.create_future()

        def wake():
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(True))

        got = self._take_or_queue(wake)
        if not isinstance(got, _Waiter):
            return got
        try:
            await asyncio.wait_for(asyncio.shield(future), timeout)
            return True
        except asyncio.TimeoutError:
            return self._give_up(got)
        except asyncio.CancelledError:
            if self._give_up(got):
                self.release()
            raise

    def release(self) -> None:
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.granted = True
                waiter.wake()
                return
            self.in_use -= 1

    def busy_message(self) -> str:
        return (f"server busy: all {self.limit} request slots are in use (--max-concurrent-requests); "
                f"try again later")
