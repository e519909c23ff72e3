"""The interface every exporter implements; the engine calls it, exporters publish live figures.

Lifecycle, as the engine drives it:

* ``check()`` when ``EnergyCallback`` / ``EnergyMeter`` is constructed, before any training:
  raise ``ValueError`` / ``ImportError`` with a message naming the argument and the fix.
* ``start(labels)`` when measuring starts (any thread).
* ``update(figures)`` from the meter thread every sampling round: it must be cheap (store the
  figures, nothing more), since it delays the next sensor reading.
* ``snapshot(figures)`` at each footprint snapshot: push exporters push here.
* ``stop(figures)`` with the final figures: push, close servers, join threads. Idempotent.

An exporter never runs on, blocks or raises into the training thread's hot path; threads it
starts are named with the prefix ``lightning-green`` and none outlives ``stop``.
"""

from __future__ import annotations

from lightning_green.engine.live import LiveFigures, RunLabels

__all__ = ["Exporter"]


class Exporter:
    """Base class: every method does nothing; subclasses override what they need."""

    def check(self) -> None:
        """Fail now (ValueError/ImportError with a clear message) if ``start`` could not work."""

    def start(self, labels: RunLabels) -> None:
        """Measuring starts for the process ``labels`` describes."""

    def update(self, figures: LiveFigures) -> None:
        """Latest figures, from the meter thread every round: keep them, nothing else."""

    def snapshot(self, figures: LiveFigures) -> None:
        """A footprint snapshot was taken: push exporters publish ``figures`` now."""

    def stop(self, figures: LiveFigures) -> None:
        """Final figures: publish them, then release every server and thread. Idempotent."""
