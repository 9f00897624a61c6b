"""Each GPU job claims a GPU of its own: concurrent jobs get distinct GPUs, the next one waits (or shares when
allowed), and a killed job's GPU is claimed again. Checked on the CPU with a stand-in list of GPUs."""

import select
import signal
import subprocess
import sys

import pytest

from icl import gpus

STAND_IN = [str(i) for i in range(8)]  # the names CUDA_VISIBLE_DEVICES would give eight GPUs
# A job: claim a slot, say which GPU, and hold it until its stdin closes or it is killed.
JOB = """
import sys
from pathlib import Path
from icl import gpus
print(gpus.claim_slot(sys.argv[1].split(","), int(sys.argv[2]), Path(sys.argv[3]), poll_seconds=0.05), flush=True)
sys.stdin.read()
"""


def start_job(directory, jobs_per_gpu=1, devices=STAND_IN):
    return subprocess.Popen(
        [sys.executable, "-c", JOB, ",".join(devices), str(jobs_per_gpu), str(directory)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def claimed(job, timeout=60.0):
    """The index of the GPU a job claimed, or None if it claimed none within `timeout` seconds."""
    ready, _, _ = select.select([job.stdout], [], [], timeout)
    return int(job.stdout.readline()) if ready else None


@pytest.fixture
def jobs():
    started = []
    yield started
    for job in started:
        if job.poll() is None:
            job.stdin.close()
            job.wait(timeout=30)


def test_eight_concurrent_jobs_get_eight_distinct_gpus_and_a_ninth_waits_until_one_is_killed(tmp_path, jobs):
    jobs += [start_job(tmp_path) for _ in STAND_IN]  # all started before any has claimed
    held = {claimed(job): job for job in jobs}
    assert sorted(held) == list(range(8))

    ninth = start_job(tmp_path)
    jobs.append(ninth)
    assert claimed(ninth, timeout=2.0) is None
    assert ninth.poll() is None  # waiting, not failed
    assert "waiting for one to be released" in ninth.stderr.readline()

    held[5].send_signal(signal.SIGKILL)  # a crash: no cleanup code runs
    held[5].wait()
    assert claimed(ninth) == 5


def test_with_two_jobs_per_gpu_a_ninth_job_shares_and_a_seventeenth_waits(tmp_path, jobs):
    jobs += [start_job(tmp_path, jobs_per_gpu=2) for _ in STAND_IN]
    assert sorted(claimed(job) for job in jobs) == list(range(8))  # spread over the GPUs before sharing

    jobs += [start_job(tmp_path, jobs_per_gpu=2) for _ in STAND_IN]
    assert sorted(claimed(job) for job in jobs[8:]) == list(range(8))

    seventeenth = start_job(tmp_path, jobs_per_gpu=2)
    jobs.append(seventeenth)
    assert claimed(seventeenth, timeout=2.0) is None


def test_a_job_keeps_the_gpu_it_claimed(tmp_path, monkeypatch):
    monkeypatch.setattr(gpus, "_claimed", {})
    first = gpus.claim_slot(["0", "1"], 1, tmp_path)
    assert gpus.claim_slot(["0", "1"], 1, tmp_path) == first  # a second trainer in the same job
    assert len(list(tmp_path.iterdir())) == 1


def test_the_gpus_are_those_of_cuda_visible_devices_when_it_is_set(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,5")
    assert gpus.visible_devices() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert gpus.visible_devices() == []
    with pytest.raises(RuntimeError, match="no GPU to claim"):
        gpus.claim_slot([], 1, gpus.claims_directory())


def test_under_slurm_each_job_keeps_its_claims_apart(monkeypatch):
    """Slurm may number every job's GPUs from 0: two jobs' GPU 0 must not look like one GPU."""
    monkeypatch.setenv("SLURM_JOB_ID", "41")
    first = gpus.claims_directory()
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    assert gpus.claims_directory() != first
    monkeypatch.delenv("SLURM_JOB_ID")
    assert first.parent == gpus.claims_directory()


def test_a_training_or_evaluation_job_on_cuda_runs_on_the_gpu_it_claimed(tmp_path, monkeypatch):
    import torch

    from icl import runs

    current = []
    monkeypatch.setattr(gpus, "_claimed", {})
    monkeypatch.setattr(gpus, "claims_directory", lambda: tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", current.append)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,7")
    held = start_job(tmp_path, devices=["3", "7"])  # another job holds the first GPU
    try:
        assert claimed(held) == 0
        assert runs.resolve_device({"device": "cuda", "jobs_per_gpu": 1}) == torch.device("cuda", 1)
        assert current == [1]
    finally:
        held.stdin.close()
        held.wait(timeout=30)
    assert runs.resolve_device({"device": "cpu", "jobs_per_gpu": 1}) == torch.device("cpu")
