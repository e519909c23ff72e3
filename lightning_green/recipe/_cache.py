"""Publishing a cache folder atomically, so concurrent runs and DDP ranks never see half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def publish_dir(path: Path, build: Callable[[str], None]) -> None:
    """Create ``path`` by calling ``build(tmp_dir)`` and renaming the result into place.

    If another process published ``path`` first, its folder is kept and ours discarded.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=path.parent))
    try:
        build(str(tmp))
        os.replace(tmp, path)
    except OSError:
        if not path.exists():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
