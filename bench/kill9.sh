#!/usr/bin/env bash
# Never two copies, at length: the kill -9 fault test (tests/it/faults_kill.rs) with many
# more trials than CI runs. Each trial kills warden with SIGKILL 0–200 ms after start or
# restart requests for two programs, restarts it, and counts duplicates, lost programs and
# state/reality mismatches.
#
# Usage: bench/kill9.sh [TRIALS]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
WARDEN_KILL_TRIALS=${1:-300} cargo test --test it -- faults_kill:: --nocapture 2>&1 | grep -E "kill -9 trials|test result|panicked"
