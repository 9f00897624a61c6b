"""One Snakemake run at a time on a results/ folder.

Snakemake's own lock covers only the files that a run plans to write when it starts, and a second
run told to `--rerun-incomplete` treats the first run's files in progress as its own to redo. So
the workflow holds a lock of its own: an advisory lock on results/.run.lock, taken when a run
starts executing jobs (Snakemake's onstart, which dry runs, --lint, reports and cluster jobs never
call) and released by the operating system when that process ends, however it ends, so no claim
is ever left behind.
"""

import fcntl
import os
import socket
from pathlib import Path

LOCK_PATH = Path("results") / ".run.lock"
_held = []  # the open lock file, kept for the life of the process


class ConcurrentRunError(RuntimeError):
    """Another run holds the lock on the same results/ folder."""


def acquire(path=LOCK_PATH) -> None:
    """Take the lock for this process, or raise ConcurrentRunError naming the run that holds it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise ConcurrentRunError(
            f"another Snakemake run ({holder}) is running on {path.parent}/; two runs would write the same files. "
            "Wait for it to finish, or set execution.allow_concurrent_runs: true if the runs build disjoint targets."
        ) from None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    _held.append(handle)
