"""One GPU per job: a training or evaluation job claims a GPU for its whole life.

Snakemake's `gpu` resource only counts jobs; it does not say which GPU a job gets. So each job
claims one itself: every GPU has `execution.jobs_per_gpu` slots, and a slot is an exclusive
advisory lock (flock) on its own file in a directory that all jobs on the machine share. The
operating system releases a lock when its process ends, however it ends, so a killed job leaves
no claim behind, and two jobs can never both take a slot. When every slot is taken, the job waits.

The GPUs are those of CUDA_VISIBLE_DEVICES when it is set (a Slurm allocation sets it), else all
that the machine has. Slurm may number each job's GPUs from 0, so under Slurm the claims are kept
per Slurm job: the allocation has already made them exclusive.
"""

import fcntl
import os
import re
import sys
import time
from pathlib import Path

POLL_SECONDS = 10.0
_claimed = {}  # this process's claim, kept for its life: {"index": i, "handle": open lock file}


def visible_devices() -> list[str]:
    """The GPUs this process may use, as CUDA names them, in CUDA's order."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [name.strip() for name in listed.split(",") if name.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def claims_directory() -> Path:
    """Where the claims of this machine's jobs live: one directory per user, and per Slurm job under Slurm."""
    directory = Path("/tmp") / f"icl-gpu-claims-{os.getuid()}"
    slurm_job = os.environ.get("SLURM_JOB_ID")
    return directory / f"slurm-{slurm_job}" if slurm_job else directory


def _slot_file(directory: Path, device: str, slot: int) -> Path:
    return directory / f"gpu-{re.sub(r'[^A-Za-z0-9_.-]', '_', device)}-slot{slot}.lock"


def _try_claim(path: Path):
    """The open, locked file of a free slot, or None when another process holds it."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.truncate(0)
    handle.write(f"pid {os.getpid()}\n")
    handle.flush()
    return handle


def claim_slot(devices: list[str], jobs_per_gpu: int, directory: Path, poll_seconds: float = POLL_SECONDS) -> int:
    """Wait for a free slot on one of `devices` and hold it until this process ends; return the device's index.

    The first slot of every device is tried before any second slot, so jobs spread over the GPUs before
    they share one.
    """
    if "index" in _claimed:  # a job that builds several trainers keeps its one GPU
        return _claimed["index"]
    if not devices:
        raise RuntimeError("no GPU to claim: CUDA_VISIBLE_DEVICES is empty or torch sees no CUDA device")
    directory.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    waiting = False
    while True:
        for slot in range(jobs_per_gpu):
            for index, device in enumerate(devices):
                handle = _try_claim(_slot_file(directory, device, slot))
                if handle is not None:
                    _claimed.update(index=index, handle=handle)
                    waited = f" after waiting {time.monotonic() - started:.0f} s" if waiting else ""
                    print(f"claimed GPU {device} (slot {slot + 1} of {jobs_per_gpu}){waited}", file=sys.stderr, flush=True)
                    return index
        if not waiting:
            print(
                f"all {len(devices)} GPUs ({', '.join(devices)}) are taken by {jobs_per_gpu} job(s) each "
                f"(execution.jobs_per_gpu); waiting for one to be released (claims in {directory})",
                file=sys.stderr, flush=True,
            )
            waiting = True
        time.sleep(poll_seconds)


def claim(execution: dict):
    """Claim a GPU for this job (see the module's docstring) and make it torch's current device."""
    import torch

    devices = visible_devices()[: torch.cuda.device_count()]
    index = claim_slot(devices, execution["jobs_per_gpu"], claims_directory())
    torch.cuda.set_device(index)
    return torch.device("cuda", index)
