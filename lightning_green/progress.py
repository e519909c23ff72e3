"""Progress for waits longer than a couple of seconds: the idle baseline, a sweep's cool-down.

A wait that says nothing looks like a hang (an idle baseline can last an hour). This module
shows one on stderr:

* on a terminal, one line redrawn in place, ``lightning-green: cooling down  12 s / 30 s
  [#########.........]``, ended with a newline when the wait is over;
* anywhere else (a pipe, a log file, CI), a single line when the wait starts, nothing more;
* nothing at all for waits shorter than ``min_s`` (2 s by default).

Standard library only, nothing done at import: any layer may use it (engine, callbacks,
the Hydra callback, the CLI).

Example::

    from lightning_green.progress import Progress, sleep_with_progress

    sleep_with_progress(30.0, "cooling down before the next job")

    with Progress("measuring idle power", total_s=60.0) as progress:
        while not done():
            sample()
            progress.update()          # elapsed time since the start, redrawn at most every 0.5 s
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

__all__ = ["MIN_WAIT_S", "Progress", "sleep_with_progress"]

MIN_WAIT_S = 2.0  # waits shorter than this show nothing
PREFIX = "lightning-green: "
_BAR = 20


def _is_tty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed or replaced streams
        return False


def _seconds(value: float) -> str:
    if value < 60:
        return f"{value:.0f} s"
    minutes, seconds = divmod(int(round(value)), 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


class Progress:
    """A progress line for a wait of about ``total_s`` seconds (None: unknown length).

    Args:
        label: What is being waited for, e.g. ``"measuring idle power"``.
        total_s: Expected length in seconds, or None when unknown (then elapsed time only).
        stream: Where to write; default ``sys.stderr`` (looked up when the wait starts).
        min_s: Show nothing for a wait shorter than this (``total_s`` known and below it).
        announce: Off a terminal, write the single start line (False when the caller
            already logs one, e.g. through ``logging``).
        interval_s: Redraw the terminal line at most this often.
        clock: Monotonic clock in seconds (tests pass a fake one).
    """

    def __init__(self, label: str, total_s: float | None = None, *, stream: IO[str] | None = None,
                 min_s: float = MIN_WAIT_S, announce: bool = True, interval_s: float = 0.5,
                 clock: Callable[[], float] | None = None) -> None:
        self.label = str(label)
        self.total_s = None if total_s is None else max(0.0, float(total_s))
        self._stream = stream
        self.min_s = float(min_s)
        self.announce = bool(announce)
        self.interval_s = float(interval_s)
        self._clock = clock or time.monotonic
        self._start: float | None = None
        self._last_draw: float | None = None
        self._tty = False
        self._drawn = False
        self.shown = False  # whether anything was written

    @property
    def stream(self) -> IO[str]:
        return self._stream if self._stream is not None else sys.stderr

    @property
    def visible(self) -> bool:
        return self.total_s is None or self.total_s >= self.min_s

    def start(self) -> Progress:
        self._start = self._clock()
        self._tty = _is_tty(self.stream)
        if not self.visible:
            return self
        if self._tty:
            self._draw(0.0)
        elif self.announce:
            length = f" ({_seconds(self.total_s)})" if self.total_s is not None else ""
            self._write(f"{PREFIX}{self.label}{length}...\n")
        return self

    def update(self, done_s: float | None = None) -> None:
        """Redraw with ``done_s`` seconds done (default: time since :meth:`start`)."""
        if self._start is None:
            self.start()
        now = self._clock()
        if not (self.visible and self._tty):
            return
        if self._last_draw is not None and now - self._last_draw < self.interval_s:
            return
        self._draw(now - self._start if done_s is None else float(done_s))

    def finish(self) -> None:
        """End the terminal line (a newline after the last redraw); idempotent."""
        if self._tty and self._drawn:
            elapsed = self._clock() - (self._start or 0.0)
            self._write(f"\r{PREFIX}{self.label}: done ({_seconds(elapsed)})".ljust(self._width()) + "\n")
            self._drawn = False

    def __enter__(self) -> Progress:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.finish()

    def _width(self) -> int:
        return len(PREFIX) + len(self.label) + 2 * _BAR + 20

    def _draw(self, done_s: float) -> None:
        self._last_draw = self._clock()
        if self.total_s:
            fraction = min(1.0, max(0.0, done_s / self.total_s))
            filled = int(round(fraction * _BAR))
            text = f"{_seconds(done_s)} / {_seconds(self.total_s)} [{'#' * filled}{'.' * (_BAR - filled)}]"
        else:
            text = f"{_seconds(done_s)}"
        self._write(f"\r{PREFIX}{self.label}  {text}".ljust(self._width()))
        self._drawn = True

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
            self.shown = True
        except (OSError, ValueError):  # a closed stream must never break a run
            pass


def sleep_with_progress(seconds: float, label: str, *, stream: IO[str] | None = None,
                        sleep: Callable[[float], Any] | None = None, clock: Callable[[], float] | None = None,
                        min_s: float = MIN_WAIT_S, announce: bool = True, tick_s: float = 0.5) -> float:
    """Sleep ``seconds`` while showing a :class:`Progress` line; returns the seconds slept.

    Off a terminal the sleep is one call to ``sleep`` (``time.sleep`` by default, looked up
    at call time); on a terminal it sleeps in ``tick_s`` slices to redraw the line.
    """
    sleep = sleep or time.sleep
    clock = clock or time.monotonic
    seconds = max(0.0, float(seconds))
    progress = Progress(label, seconds, stream=stream, min_s=min_s, announce=announce, interval_s=tick_s,
                        clock=clock).start()
    if not (progress.visible and progress._tty):
        sleep(seconds)
        return seconds
    start = clock()
    try:
        while (left := seconds - (clock() - start)) > 0:
            sleep(min(tick_s, left))
            progress.update()
    finally:
        progress.finish()
    return seconds
