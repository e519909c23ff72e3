"""lightning_green.progress: a countdown on a terminal, one line elsewhere, nothing for short waits."""

from __future__ import annotations

import io
import subprocess
import sys

from lightning_green.progress import Progress, sleep_with_progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class FakeTime:
    """A clock that advances only when sleep is called."""

    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_terminal_countdown_redraws_one_line_and_ends_it():
    stream, fake = Terminal(), FakeTime()
    slept = sleep_with_progress(3.0, "cooling down", stream=stream, sleep=fake.sleep, clock=fake.clock, tick_s=0.5)
    assert slept == 3.0 and sum(fake.sleeps) == 3.0 and len(fake.sleeps) == 6  # 0.5 s slices
    text = stream.getvalue()
    assert text.count("\r") >= 6 and text.endswith("\n") and text.count("\n") == 1  # one line, redrawn
    assert "lightning-green: cooling down  0 s / 3 s [....................]" in text
    assert "1 s / 3 s [#######" in text and "cooling down: done (3 s)" in text


def test_not_a_terminal_writes_one_line_and_sleeps_once():
    stream, fake = io.StringIO(), FakeTime()
    sleep_with_progress(30.0, "cooling down before the next job", stream=stream, sleep=fake.sleep, clock=fake.clock)
    assert fake.sleeps == [30.0]
    assert stream.getvalue() == "lightning-green: cooling down before the next job (30 s)...\n"
    quiet = io.StringIO()
    sleep_with_progress(30.0, "x", stream=quiet, sleep=fake.sleep, clock=fake.clock, announce=False)
    assert quiet.getvalue() == ""  # the caller logs its own line


def test_short_waits_show_nothing_even_on_a_terminal():
    stream, fake = Terminal(), FakeTime()
    sleep_with_progress(1.5, "short", stream=stream, sleep=fake.sleep, clock=fake.clock)
    assert stream.getvalue() == "" and fake.sleeps == [1.5]


def test_progress_with_unknown_length_and_rate_limited_redraws():
    stream, fake = Terminal(), FakeTime()
    with Progress("measuring idle power", stream=stream, clock=fake.clock, interval_s=1.0) as progress:
        for _ in range(10):
            fake.now += 0.25
            progress.update()
    text = stream.getvalue()
    assert text.count("\r") == 1 + 2 + 1  # start, two redraws in 2.5 s at most 1 per s, the end
    assert "measuring idle power  2 s" in text and "[" not in text  # no bar without a length
    long = Progress("baseline", total_s=3600.0, stream=io.StringIO()).start()
    assert long.stream.getvalue() == "lightning-green: baseline (1 h 00 min)...\n"


def test_a_closed_stream_never_raises():
    stream = Terminal()
    stream.close()
    fake = FakeTime()
    sleep_with_progress(3.0, "x", stream=stream, sleep=fake.sleep, clock=fake.clock)
    assert sum(fake.sleeps) == 3.0


def test_importing_progress_imports_nothing_heavy():
    code = "import sys, lightning_green.progress; print(sorted(m for m in ('torch', 'lightning', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True).stdout
    assert out.strip() == "[]"
