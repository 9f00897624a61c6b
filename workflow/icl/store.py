"""The store of trained runs: every model is trained once, whatever groups, sweeps or targets ask for it.

A run's files live in its own directory under results/runs, named by its key (icl.runs), which is a
hash of its whole resolved config. Those files are the store. They are not Snakemake outputs, so
Snakemake never deletes them, not when a group changes, nor when a job fails or is rerun. A train
job's declared output is a manifest of its group: the runs and the digest of each one's files. The
job trains only the runs whose model is not in the store yet; an evaluate job likewise scores only
the runs that have no metrics for their test file. A group that is regrouped, resized or
shared by a new sweep so costs a manifest, not a retraining.

A run is trained when its model.pt exists: training writes it last, atomically, and read-only, so
that `rm` asks before deleting it. To train or evaluate again on purpose (after a change to the
training code), force the stage: `snakemake --forcerun train` (or evaluate, or --forceall) sets
FORCE_VARIABLE, and the forced jobs then redo all their runs. To retrain one run alone, delete its
directory and force its group's manifest (--forcerun results/groups/<group>/trained.json): Snakemake
does not see the store, so without that it has nothing to rerun.
"""

import hashlib
import json
import os
import stat

from .files import write_text

FORCE_VARIABLE = "ICL_FORCE"  # comma-separated stages to redo although stored: train, evaluate
STAGES = ("train", "evaluate")
MODEL = "model.pt"
CURVE = "curve.parquet"  # a run's training curve, written before its model


def forced(stage: str) -> bool:
    """Whether this job must redo its runs although they are stored."""
    return stage in os.environ.get(FORCE_VARIABLE, "").split(",")


def forced_environment(forcerun, forceall: bool) -> dict:
    """The environment that tells jobs which stages Snakemake was asked to force (--forcerun RULE, --forceall)."""
    stages = [stage for stage in STAGES if forceall or stage in forcerun]
    return {FORCE_VARIABLE: ",".join(stages)} if stages else {}


def is_trained(run) -> bool:
    return run.file(MODEL).exists()


def to_train(runs) -> list:
    """The runs a train job must train: those not in the store, or all when training is forced."""
    return list(runs) if forced("train") else [run for run in runs if not is_trained(run)]


def to_evaluate(runs, x_shifts) -> list:
    """The runs an evaluate job must score: those without metrics on this test file, or all when forced."""
    return list(runs) if forced("evaluate") else [run for run in runs if not run.metrics(x_shifts).exists()]


def forget(run) -> None:
    """Remove a run's model and every result made from it, before it is trained again."""
    for path in [run.file(MODEL), *run.directory.glob("metrics-*.parquet")]:
        path.unlink(missing_ok=True)


def protect(path) -> None:
    """Make a stored file read-only, as Snakemake's protected() does (replacing or unlinking it still works)."""
    os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def digest(path) -> str:
    """The sha256 of a stored file's content."""
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def write_manifest(path, runs, files) -> None:
    """A group's manifest: each run's key, directory and the digest of its `files(run)`.

    The same stored files give the same bytes, so an unchanged group's manifest is identical and
    nothing downstream of it changes.
    """
    entries = [
        {"key": run.key, "directory": str(run.directory), "files": {str(p): digest(p) for p in files(run)}}
        for run in runs
    ]
    write_text(path, json.dumps({"runs": entries}, indent=1, sort_keys=True) + "\n")


def manifest_files(path) -> list:
    """The stored files a manifest lists, in its order."""
    return [file for entry in json.loads(open(path).read())["runs"] for file in entry["files"]]
