"""The GPU readiness check runs end to end in its quick CPU mode and writes a summary with real numbers
in every section: throughput, the profile, peak memory per model and the Table 1 correctness run."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
NUMBER = r"\d+(?:\.\d+)?(?:e[-+]?\d+)?"


def sections(text: str) -> dict:
    """Each `## ` heading's text, up to the next; a line inside a ``` block is never a heading (the profiler
    names compiled graphs `## Call CompiledFxGraph ...`)."""
    found, heading, fenced = {}, None, False
    for line in text.splitlines(keepends=True):
        fenced ^= line.startswith("```")
        if line.startswith("## ") and not fenced:
            heading = line[3:].strip()
            found[heading] = ""
        elif heading is not None:
            found[heading] += line
    return found


def table_rows(section: str) -> list[list[str]]:
    rows = [line.strip("|").split("|") for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row] for row in rows[2:]]  # past the header and its rule


def test_quick_check_writes_real_numbers_in_every_section(tmp_path):
    out = tmp_path / "performance.md"
    result = subprocess.run(
        ["bash", str(REPO / "benchmarks" / "gpu_check.sh"), "--device", "cpu", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    text = out.read_text()
    assert text in result.stdout  # the summary is printed as well as written
    found = sections(text)
    assert list(found) == ["Throughput", "Profile of the fastest settings", "Peak memory per model", "Table 1 correctness run"]

    rates = [row for row in table_rows(found["Throughput"]) if re.fullmatch(NUMBER, row[4])]
    assert {row[0] for row in rates} == {"SL", "UL"}, "a measured rate for both layer types"
    assert all(float(row[4]) > 0 and float(row[7]) > 0 for row in rates)
    assert {row[2] for row in table_rows(found["Throughput"])} >= {"off", "default"}, "eager and compiled settings are tried"

    profile = found["Profile of the fastest settings"]
    assert "```" in profile and re.search(r"Self CPU time total: " + NUMBER, profile)

    memory = table_rows(found["Peak memory per model"])
    assert memory and all(float(row[5]) > 0 for row in memory)

    table1 = table_rows(found["Table 1 correctness run"])
    assert len(table1) == 12  # 3 tasks x 2 masks x SL, UL
    scored = [row for row in table1 if re.fullmatch(NUMBER, row[3])]
    assert scored, "at least one group trained and evaluated within the budget"
    assert all(int(row[2]) >= 10 and float(row[3]) >= 0 and float(row[5]) > 0 for row in scored)
