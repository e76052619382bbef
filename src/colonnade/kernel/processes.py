"""Whether a process still runs, by its pid."""

from __future__ import annotations

import os
from pathlib import Path


def running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # An ended process its parent has not reaped yet still has a pid; it runs no more.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
