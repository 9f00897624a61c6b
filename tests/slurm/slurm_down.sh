#!/usr/bin/env bash
# Stop the test cluster started by slurm_up.sh: exactly the pids recorded in
# $ICL_SLURM_STATE/pids (never pkill by name - a developer may run other
# munge/slurm processes). Idempotent: missing or dead pids are skipped.
set -euo pipefail

STATE="${ICL_SLURM_STATE:-/tmp/icl-slurm}"
PIDS="$STATE/pids"

log() { echo "[slurm_down] $*" >&2; }

# Is $1 still the daemon we started? (guards against pid reuse)
ours() { [[ "$(cat "/proc/$1/comm" 2>/dev/null)" == "$2" ]]; }

# Jobs still running (e.g. the run was killed by its timeout) would keep
# their slurmstepd processes alive after slurmd exits: cancel them first.
# The cluster is private to this harness, so "all jobs" are ours.
if [[ -s $PIDS/slurmctld.pid ]] && ours "$(cat "$PIDS/slurmctld.pid")" slurmctld; then
    jobs_left="$(timeout 10 squeue -h -t PENDING,RUNNING,CONFIGURING,COMPLETING -o %i 2>/dev/null || true)"
    if [[ -n $jobs_left ]]; then
        log "cancelling leftover jobs: $(echo $jobs_left)"
        timeout 10 scancel $jobs_left 2>/dev/null || true
        for _ in $(seq 30); do
            [[ -z "$(timeout 5 squeue -h -t RUNNING,COMPLETING -o %i 2>/dev/null || true)" ]] && break
            sleep 1
        done
    fi
fi

# Reverse start order: slurmd, slurmctld, then munged (both need munge to shut down cleanly).
for name in slurmd slurmctld munged; do
    f="$PIDS/$name.pid"
    [[ -s $f ]] || continue
    pid="$(cat "$f")"
    if ours "$pid" "$name"; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 50); do ours "$pid" "$name" || break; sleep 0.2; done
        if ours "$pid" "$name"; then
            log "$name ($pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "stopped $name ($pid)"
    fi
    rm -f "$f"
done
