#!/usr/bin/env bash
# GPU readiness check (benchmarks/gpu_check.py): throughput against K, precision and compilation at
# the paper's architecture, a profile, peak memory per model and a Table 1 correctness run, in
# under 8 minutes on one H100 or H200. Prints a summary and writes it to docs/performance.md.
#   bash benchmarks/gpu_check.sh                        # on a GPU
#   bash benchmarks/gpu_check.sh --device cpu --quick   # tiny sizes on a CPU (the tests run this)
# Needs only the package's Python dependencies, not Snakemake.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export PYTHONPATH="$repo/workflow${PYTHONPATH:+:$PYTHONPATH}"
exec python "$repo/benchmarks/gpu_check.py" "$@"
