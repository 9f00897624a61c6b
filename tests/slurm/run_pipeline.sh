#!/usr/bin/env bash
# Real-Slurm end-to-end test of the pipeline (developers and CI; needs root).
#
#   bash tests/slurm/run_pipeline.sh [extra snakemake args]
#
# With no arguments it builds Table 1, Fig. 3 and a theory figure of the tiny config: every kind of
# rule (grouped theory and data jobs, GPU training and evaluation, local aggregate, figure and
# table jobs) in about 10 minutes. The whole tiny config queues some 60 GPU jobs on the node's one
# fake GPU; pass `all` to run it anyway.
#
# 1. slurm_up.sh starts a private one-node Slurm cluster (installs it if needed).
# 2. The repo (tracked + untracked-but-not-ignored files, i.e. no results/,
#    no .snakemake/) is copied to a scratch dir and the workflow runs THERE,
#    so it never collides with a local run's results/ or .snakemake/ lock:
#      timeout -s KILL $SLURM_TEST_TIMEOUT snakemake "$@" \
#          --workflow-profile profiles/slurm_ci --configfile tests/data/tiny.yaml
#    (A scratch copy rather than --directory: relative paths in the config and
#    rules then resolve exactly as in a normal run from the repo root.)
#    Fault drill: ICL_FAULT_DRILL=<scratch>/fault_drill.marker (absent at
#    start). The first pipeline job that sees it creates the marker and exits
#    non-zero; snakemake's retry (profile: retries) must then succeed.
# 3. Checks, against Slurm's own job-completion log ($STATE/jobcomp.log):
#    a) every Slurm job snakemake submitted shows up; COMPLETED > 0 and the
#       COMPLETED ids are exactly the submissions snakemake counted as OK;
#    b) >= 1 job FAILED (the drill) and snakemake still exited 0;
#    c) the drill marker exists;
#    d) nothing half-written under the results dir (*.tmp*, *.part*, ...),
#       no snakemake "incomplete" records, and a dry run (same profile,
#       config and extra args) has nothing to do;
#    e) every job ran in the partition of its rule: train and evaluate jobs in
#       "gpu", every other in "cpu" (the rule from the job's Slurm log folder,
#       .snakemake/slurm_logs/rule_<rule>/ or group_<group>/, the partition
#       from the completion log).
# 4. slurm_down.sh always runs (trap), also on failure or Ctrl-C.
#
# Environment knobs:
#   SLURM_TEST_TIMEOUT  hard limit for the snakemake run, seconds (2700)
#   SLURM_TEST_WORKDIR  scratch dir (default: new mktemp -d /tmp/icl-slurm-run.XXXXXX;
#                       kept afterwards for inspection; must not exist or be empty)
#   SLURM_TEST_RESULTS  results dir relative to the repo root (results); it is
#                       not copied into the scratch dir, and is what (d) inspects
#   ICL_SLURM_STATE     cluster state dir shared with slurm_up/down (/tmp/icl-slurm)
# Exit status: 0 = PASS, 1 = a check failed, 2 = setup error.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
export ICL_SLURM_STATE="${ICL_SLURM_STATE:-/tmp/icl-slurm}"
JOBCOMP="$ICL_SLURM_STATE/jobcomp.log"
TIMEOUT="${SLURM_TEST_TIMEOUT:-2700}"
(( $# )) || set -- results/tables/table1.csv results/figures/fig3_probe_layers.pdf results/figures/fig2.pdf
RESULTS="${SLURM_TEST_RESULTS:-results}"

say() { echo "[run_pipeline] $*" >&2; }

# Always tear the cluster down, whatever happens below (also on Ctrl-C / CI
# cancel). `timeout` puts snakemake in its own process group, which an
# interrupt does not reach, so kill that group explicitly first. Jobs still
# queued/running are cancelled by slurm_down.sh.
SNK_PID=
cleanup() {
    if [[ -n $SNK_PID ]] && kill -0 "$SNK_PID" 2>/dev/null; then
        say "killing snakemake (process group $SNK_PID)"
        kill -KILL -- "-$SNK_PID" 2>/dev/null || true
    fi
    bash "$HERE/slurm_down.sh" || say "WARNING: slurm_down.sh failed"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ------------------------------------------------------------- cluster ----
t0=$SECONDS
bash "$HERE/slurm_up.sh" || { say "ERROR: slurm_up.sh failed"; exit 2; }
t_up=$((SECONDS - t0))

# ----------------------------------------------------------- scratch copy --
WORK="${SLURM_TEST_WORKDIR:-$(mktemp -d /tmp/icl-slurm-run.XXXXXX)}"
mkdir -p "$WORK"
[[ -z "$(ls -A "$WORK")" ]] || { say "ERROR: $WORK is not empty"; exit 2; }
WORK="$(cd "$WORK" && pwd)"
# Never copy outputs/state of a local run (they would make snakemake think
# there is nothing to do), even when .gitignore does not list them.
SKIP="^(\.git|\.snakemake|$RESULTS|\.venv|venv|\.pytest_cache)/|(^|/)__pycache__/"
if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked + untracked-not-ignored files; --ignore-failed-read skips
    # tracked files deleted in the work tree.
    (cd "$REPO" && git ls-files -z --cached --others --exclude-standard | sort -zu \
        | { grep -zvE "$SKIP" || true; } | tar --null --ignore-failed-read -T - -cf -) \
        | tar -C "$WORK" -xf -
else
    (cd "$REPO" && find . -type f -printf '%P\0' | { grep -zvE "$SKIP" || true; } \
        | tar --null -T - -cf -) | tar -C "$WORK" -xf -
fi
[[ -d "$WORK/profiles/slurm_ci" && -f "$WORK/tests/data/tiny.yaml" ]] \
    || { say "ERROR: profiles/slurm_ci or tests/data/tiny.yaml missing from the copy"; exit 2; }

export ICL_FAULT_DRILL="$WORK/fault_drill.marker"
rm -f "$ICL_FAULT_DRILL"
LOG="$WORK/snakemake.log"

# ------------------------------------------------------------------ run ----
say "workdir $WORK (kept); log $LOG; timeout ${TIMEOUT}s"
t0=$SECONDS
# timeout -s KILL: with a broken status query the slurm plugin can hang and
# ignore SIGTERM. Run in the background (exec: $! is timeout's pid = its
# process group) so cleanup() can kill it; show the log live with tail.
# Targets and extra arguments go first: --configfile would take them as more config files.
(cd "$WORK" && exec timeout -s KILL "$TIMEOUT" snakemake "$@" \
    --workflow-profile profiles/slurm_ci --configfile tests/data/tiny.yaml) >"$LOG" 2>&1 &
SNK_PID=$!
tail -n +1 -f --pid="$SNK_PID" "$LOG" &
TAIL_PID=$!
rc=0; wait "$SNK_PID" || rc=$?
wait "$TAIL_PID" || true
t_run=$((SECONDS - t0))

# --------------------------------------------------------------- checks ----
fails=0
check() {   # check "description" CONDITION-RESULT(0/1)
    if [[ $2 == 0 ]]; then echo "  PASS  $1"; else echo "  FAIL  $1"; fails=$((fails + 1)); fi
}
ok() { "$@" >/dev/null 2>&1 && echo 0 || echo 1; }

steps="$(grep -E '^[0-9]+ of [0-9]+ steps' "$LOG" | tail -1 || true)"
run_id="$(sed -n 's/.*SLURM run ID: \([^ ]*\).*/\1/p' "$LOG" | head -1)"
# Slurm job ids snakemake submitted / saw failing (plugin 2.8 log lines).
submitted="$(sed -n 's/.*has been submitted with SLURM jobid \([0-9_]*\).*/\1/p' "$LOG" | sort -u)"
# Failures: plain jobs report "SLURM-job '<id>' failed"; group jobs only name
# their Slurm log ".../slurm_logs/<group>/<id>.log (check log file(s)...)".
snk_failed="$( { sed -n "s/.*SLURM-job '\([0-9_]*\)' failed.*/\1/p" "$LOG"
                 sed -n 's|^ *log: .*/slurm_logs/.*/\([0-9_]*\)\.log (check log.*|\1|p' "$LOG"; } | sort -u)"

# Slurm writes the jobcomp record when the job ends; allow it a moment.
comp_ids() { [[ -n $run_id && -f $JOBCOMP ]] || return 0
    grep -F " Name=$run_id " "$JOBCOMP" | sed -n "s/^JobId=\([0-9_]*\) .*JobState=$1 .*/\1/p" | sort -u; }
for _ in $(seq 20); do
    all_ids="$(comp_ids '[A-Z_]*')"
    [[ -z "$(comm -23 <(echo "$submitted") <(echo "$all_ids"))" ]] && break
    sleep 1
done
completed="$(comp_ids COMPLETED)"
failed="$(comp_ids FAILED)"
other="$(comm -23 <(echo "$all_ids") <(printf '%s\n' $completed $failed | sort -u) | grep . || true)"
n() { grep -c . <<<"$1" || true; }
expected_ok="$(comm -23 <(echo "$submitted") <(echo "$snk_failed") | grep . || true)"

leftovers="$( [[ -d $WORK/$RESULTS ]] && find "$WORK/$RESULTS" \( -name '*.tmp*' -o -name '*.part' \
    -o -name '*.partial' -o -name '.nfs*' -o -name '*~' \) -print | head -20 || true)"
incomplete="$( [[ -d $WORK/.snakemake/incomplete ]] && find "$WORK/.snakemake/incomplete" -type f | head -5 || true)"
n_results="$( [[ -d $WORK/$RESULTS ]] && find "$WORK/$RESULTS" -type f | wc -l || echo 0)"

# (e) Each Slurm job's rule, from its log folder, against the partition Slurm ran it in.
partition_of() { sed -n "s/^JobId=$1 .* Partition=\([^ ]*\) .*/\1/p" "$JOBCOMP" | head -1; }
misplaced=""; gpu_jobs=0; cpu_jobs=0
while IFS= read -r slurm_log; do
    folder="${slurm_log#"$WORK/.snakemake/slurm_logs/"}"; folder="${folder%%/*}"
    id="$(basename "$slurm_log" .log)"
    want=cpu
    [[ $folder == rule_train || $folder == rule_evaluate ]] && want=gpu
    got="$(partition_of "$id")"
    [[ $got == "$want" ]] || misplaced+="$folder job $id ran in '${got:-?}', not $want"$'\n'
    if [[ $want == gpu ]]; then gpu_jobs=$((gpu_jobs + 1)); else cpu_jobs=$((cpu_jobs + 1)); fi
done < <(find "$WORK/.snakemake/slurm_logs" -name '*.log' 2>/dev/null)

dry_rc=1
if [[ $rc == 0 ]]; then
    (cd "$WORK" && timeout -s KILL 300 snakemake "$@" -n --workflow-profile profiles/slurm_ci \
        --configfile tests/data/tiny.yaml) >"$WORK/dryrun.log" 2>&1 \
        && grep -q "Nothing to be done" "$WORK/dryrun.log" && dry_rc=0
fi

echo
echo "================ real-Slurm pipeline test ================"
echo "  total: ${SECONDS}s   slurm_up: ${t_up}s   snakemake: ${t_run}s (exit $rc$([[ $rc == 137 ]] && echo ', KILLED by timeout'))"
echo "  run id: ${run_id:-?}   workdir: $WORK"
echo "  snakemake: $(n "$submitted") Slurm submissions, $(n "$snk_failed") reported failed"
echo "  jobcomp:   $(n "$completed") COMPLETED, $(n "$failed") FAILED, other: $(echo ${other:-none})"
check "snakemake exited 0" "$([[ $rc == 0 ]]; echo $?)"
check "(a) jobs ran as Slurm jobs: COMPLETED > 0" "$([[ $(n "$completed") -gt 0 ]]; echo $?)"
check "(a) every submitted job has a Slurm completion record" \
      "$([[ -n $submitted && -z "$(comm -23 <(echo "$submitted") <(echo "$all_ids"))" ]]; echo $?)"
check "(a) Slurm COMPLETED ids == submissions snakemake counted as OK ($(n "$expected_ok"))" \
      "$([[ "$completed" == "$expected_ok" ]]; echo $?)"
check "(b) fault drill: >= 1 Slurm job FAILED, seen by snakemake, run still exit 0" \
      "$([[ $(n "$failed") -ge 1 && "$failed" == "$snk_failed" && $rc == 0 ]]; echo $?)"
check "(b) snakemake reports all steps done: ${steps:-none}" "$([[ $steps == *'(100%)'* ]]; echo $?)"
check "(c) drill marker exists ($ICL_FAULT_DRILL)" "$(ok test -e "$ICL_FAULT_DRILL")"
check "(d) $RESULTS/ has files ($n_results) and no half-written leftovers" \
      "$([[ $n_results -gt 0 && -z $leftovers ]]; echo $?)"
[[ -z $leftovers ]] || echo "$leftovers" | sed 's/^/        /'
check "(d) no snakemake incomplete-output records" "$([[ -z $incomplete ]]; echo $?)"
check "(d) dry run afterwards: nothing to be done" "$dry_rc"
check "(e) every job in its rule's partition ($gpu_jobs in gpu, $cpu_jobs in cpu)" \
      "$([[ $gpu_jobs -gt 0 && $cpu_jobs -gt 0 && -z $misplaced ]]; echo $?)"
[[ -z $misplaced ]] || echo "$misplaced" | sed 's/^/        /' 
if ((fails)); then
    echo "RESULT: FAIL ($fails check(s)); see $LOG and $ICL_SLURM_STATE/log/"
    exit 1
fi
echo "RESULT: PASS"
