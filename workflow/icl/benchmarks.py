"""Every job's runtime and memory, from the TSV files of Snakemake's benchmark: directive, in one table.

Each rule's benchmark record mirrors its log: results/benchmarks/<the log's path>.tsv, so the
record's path names the rule's kind of job and the job itself. The Snakefile reads record_path
only, so pandas is imported where the summary is built, not when the workflow is parsed.
"""

from pathlib import Path

from .files import atomic_path

ROOT = Path("results") / "benchmarks"
# Snakemake's columns, renamed for the table: wall-clock seconds, peak resident memory, CPU seconds.
COLUMNS = {"s": "seconds", "max_rss": "max_rss_mb", "cpu_time": "cpu_seconds", "mean_load": "mean_load_pct"}


def record_path(output) -> Path:
    """The benchmark record of a job whose output (or log) lies at `output` under results/."""
    relative = Path(output).relative_to("results")
    if relative.parts[0] == "logs":
        relative = relative.relative_to("logs")
    return ROOT / relative.with_suffix(".tsv")


def summary(paths):
    """One row per job (a pandas DataFrame): its stage (the record's first folder, or theory), the job and what it cost."""
    import pandas as pd

    rows = []
    for path in sorted(map(Path, paths)):
        measured = pd.read_csv(path, sep="\t").iloc[-1]
        relative = path.relative_to(ROOT).with_suffix("")
        stage = relative.parts[0] if len(relative.parts) > 1 else relative.name.split("_")[0]
        rows.append({"stage": stage, "job": relative.as_posix()} | {new: measured.get(old) for old, new in COLUMNS.items()})
    return pd.DataFrame(rows, columns=["stage", "job", *COLUMNS.values()])


def write(paths, out) -> None:
    """The summary as CSV, with a total per stage first."""
    import pandas as pd

    frame = summary(paths)
    totals = frame.groupby("stage", sort=True)[["seconds", "cpu_seconds"]].sum().reset_index()
    totals = totals.assign(job="(all jobs)", max_rss_mb=frame.groupby("stage", sort=True)["max_rss_mb"].max().values)
    with atomic_path(out) as tmp:
        pd.concat([totals, frame], ignore_index=True)[frame.columns].to_csv(tmp, index=False, float_format="%.4g")
