"""The terminal progress line of a training run: step, losses, images/s, ETA and the latest evaluation (`note`).

On a terminal one line is rewritten in place (carriage return), at most every half second; otherwise (a log file,
a pipe) a plain line is printed every `every` steps. `message()` prints a whole line without garbling the
progress line.
"""
from __future__ import annotations

import datetime
import sys
import time

TTY_REFRESH_SECONDS = 0.5
RATE_SMOOTHING = 0.1  # exponential moving average of the step time


class Progress:
    def __init__(self, max_steps: int, batch_size: int, every: int, stream=None):
        self.max_steps, self.batch_size, self.every = max_steps, batch_size, every
        self.stream = stream or sys.stdout
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.step_seconds: float | None = None
        self._last_draw = 0.0
        self._line_open = False
        self.note = ""  # e.g. the latest evaluation's first metric

    def update(self, step: int, losses: dict[str, float], step_seconds: float | None) -> None:
        """Record one finished step (`step_seconds` None for a step that should not count, e.g. tracing)."""
        if step_seconds is not None:
            previous = self.step_seconds
            self.step_seconds = step_seconds if previous is None else (
                (1 - RATE_SMOOTHING) * previous + RATE_SMOOTHING * step_seconds)
        done = step >= self.max_steps
        if self.tty:
            now = time.monotonic()
            if done or now - self._last_draw >= TTY_REFRESH_SECONDS:
                self._last_draw = now
                self.stream.write("\r" + self.line(step, losses) + "\x1b[K")
                self._line_open = True
                self.stream.flush()
        elif done or step % self.every == 0:
            self.stream.write(self.line(step, losses) + "\n")
            self.stream.flush()

    def line(self, step: int, losses: dict[str, float]) -> str:
        parts = [f"step {step}/{self.max_steps}", " ".join(f"{k} {v:.4g}" for k, v in losses.items())]
        if self.step_seconds:
            parts.append(f"{self.batch_size / self.step_seconds:.1f} img/s")
            remaining = max(0, self.max_steps - step) * self.step_seconds
            parts.append(f"ETA {datetime.timedelta(seconds=round(remaining))}")
        if self.note:
            parts.append(self.note)
        return " | ".join(parts)

    def message(self, text: str) -> None:
        self.close_line()
        self.stream.write(text + "\n")
        self.stream.flush()

    def close_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self._line_open = False
