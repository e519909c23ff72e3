"""The training thread's side of :class:`~lightning_green.EnergyMeter`: phases, epochs, steps.

Everything here runs on the training thread and only records: a mark on a deque, or one flat
step record appended to a list (the hot path: ``begin_step``/``end_step``/``step_batch``,
well under a microsecond each apart from counting a batch's work). No sensor is read and no
lock is taken here; the sampler thread resolves the records in batches.
"""

from __future__ import annotations

import time
from typing import Any

from lightning_green.engine.batches import batch_work, count_samples, token_counts
from lightning_green.engine.marks import PHASE_INDEX, PHASES, Boundary, EpochMark, PhaseMark

__all__ = ["FLUSH_TIMEOUT_S", "PAUSE_CHECK_S", "Recording"]

#: How long an epoch end or a checkpoint waits for the sampler to resolve the marks. A healthy
#: sampler takes milliseconds; one stuck in a sensor read must not hold training.
FLUSH_TIMEOUT_S = 0.1
#: Carbon-aware pausing looks at the grid at most this often (seconds), between steps.
PAUSE_CHECK_S = 10.0


class _Phase:
    __slots__ = ("meter", "name", "previous")

    def __init__(self, meter: Recording, name: str) -> None:
        self.meter, self.name, self.previous = meter, name, "other"

    def __enter__(self) -> _Phase:
        self.previous = self.meter.current_phase
        self.meter.set_phase(self.name)
        return self

    def __exit__(self, *exc: object) -> None:
        self.meter.set_phase(self.previous if self.previous != self.name else "other")


class _Step:
    __slots__ = ("meter", "samples", "tokens", "padded_tokens")

    def __init__(self, meter: Recording) -> None:
        self.meter = meter
        self.samples = self.tokens = self.padded_tokens = 0

    def __enter__(self) -> _Step:
        self.meter.begin_step()
        return self

    def __exit__(self, *exc: object) -> None:
        self.meter.end_step(self.samples, self.tokens, self.padded_tokens)



class Recording:
    """Phases, epochs and steps of an :class:`~lightning_green.EnergyMeter` (a mixin: the
    attributes are the meter's, set in its ``__init__`` and ``start``)."""

    @property
    def current_phase(self) -> str:
        return PHASES[self._phase_index]

    def phase(self, name: str) -> _Phase:
        """``with meter.phase("train"):`` energy inside goes to that phase."""
        if name not in PHASE_INDEX:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        return _Phase(self, name)

    def set_phase(self, name: str) -> None:
        """From now on, energy goes to phase ``name``."""
        index = PHASE_INDEX.get(name)
        if index is None:
            raise ValueError(f"phase must be one of {PHASES}, got {name!r}")
        self._phase_index = index
        if self._sampler is not None:
            self._sampler.mark(PhaseMark(name))

    def set_epoch(self, epoch: int | None) -> None:
        """From now on, energy goes to epoch ``epoch`` (None: to no epoch)."""
        self._epoch = -1 if epoch is None else int(epoch)
        if self._sampler is not None:
            self._sampler.mark(EpochMark(epoch))

    def epoch_end(self) -> None:
        """Close the current epoch; the next step starts the next one. Flushes briefly."""
        if self._epoch >= 0:
            self._next_epoch = self._epoch + 1
            self.set_epoch(None)
        self.flush()

    def _continue_epoch(self) -> int:
        """The epoch a later start (or a resume) continues with: the current one after it (a
        run that ended in the middle of an epoch: the next start begins a new one), else the
        next one after :meth:`epoch_end`."""
        if self._epoch >= 0:
            return self._epoch + 1
        return self._next_epoch if self._next_epoch is not None else self._epoch_base

    def step(self, samples: int = 0, tokens: int | None = None, padded_tokens: int | None = None) -> _Step:
        """``with meter.step(samples=32):`` one step (one steps.csv row) in the current phase.

        ``tokens``: real tokens (padding excluded); ``padded_tokens``: tokens as processed
        (padding included; default ``tokens``).
        """
        scope = self._step_scope
        scope.samples = int(samples or 0)
        scope.tokens = int(tokens or 0)
        scope.padded_tokens = int(padded_tokens if padded_tokens is not None else (tokens or 0))
        return scope

    def begin_step(self) -> None:
        """A step starts now (the hot path: one clock read)."""
        sampler = self._sampler
        if sampler is not None:
            if self._epoch < 0 and self._next_epoch is not None:
                self.set_epoch(self._next_epoch)
            if self._pause is not None:
                self._maybe_pause()
            sampler.open_t0 = sampler._clock()

    def end_step(self, samples: int = 0, tokens: int = 0, padded_tokens: int = 0) -> None:
        """The step begun by :meth:`begin_step` ends now (the hot path: one list extend)."""
        sampler = self._sampler
        if sampler is None:
            return
        t1 = sampler._clock()
        t0 = sampler.open_t0
        self._extend((t1 if t0 is None else t0, t1, samples, tokens, padded_tokens, self._phase_index, self._epoch))
        sampler.open_t0 = None
        if self._phase_index == 0:
            self._steps += 1

    def step_batch(self, batch: Any) -> None:
        """End the current step, counting samples and tokens from a batch (tensors, tuples,
        dicts with ``input_ids``/``attention_mask``)."""
        samples, tokens, padded = batch_work(batch)
        if tokens.__class__ is not int:  # a device tensor: read once, at the end
            self._device_tokens = tokens if self._device_tokens is None else self._device_tokens + tokens
            tokens = 0
        self.end_step(samples, tokens, padded)

    def count(self, samples: int = 0, tokens: int = 0, padded_tokens: int = 0, batches: int = 1) -> None:
        """Work done in the current phase without a steps.csv row (e.g. a validation batch)."""
        session = self._session
        if session is not None:
            session.count(self.current_phase, batches, samples, tokens, padded_tokens)

    def count_batch(self, batch: Any) -> None:
        """:meth:`count` a batch's samples and tokens (device token counts are not read)."""
        tokens, padded = token_counts(batch)
        self.count(count_samples(batch), tokens if isinstance(tokens, int) else 0, padded or 0)

    def mark(self, name: str) -> float:
        """A named boundary now; returns its wall time."""
        session = self._session
        return session.mark_now(Boundary(name)) if session is not None else time.time()

    def flush(self, timeout_s: float = FLUSH_TIMEOUT_S) -> bool:
        """Resolve what was recorded so far (epoch ends, checkpoints); True when done in time."""
        session = self._session
        return session.flush(timeout_s) if session is not None else False

    def _maybe_pause(self) -> None:
        now = time.monotonic()
        if now >= self._next_pause_check:
            self._next_pause_check = now + PAUSE_CHECK_S
            self._pause.wait_if_needed()

