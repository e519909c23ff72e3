"""Which lightning-green threads are alive (no thread may outlive a run)."""

from __future__ import annotations

import threading


def lightning_green_threads() -> list[threading.Thread]:
    """Threads started by lightning-green that are still alive."""
    return [t for t in threading.enumerate() if t.name.startswith("lightning-green") and t.is_alive()]
