#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs plumb's bundled benchmarks. Installs what it needs first (Debian packages).
#
#   benchmarks/run.sh [--filter REGEX] [--json FILE] [--shmem-thp never|advise]
#
# Builds in Release, runs the examples (each must succeed), then the Google Benchmark suite
# (benchmarks/*.cpp: the reference's workloads through every runner, oneTBB, a plain loop, and
# the machine's limits; thread mode's scheduling settings side by side), and prints its results
# as markdown tables with the ratios to oneTBB and to the loop. The plumb, oneTBB and loop rows
# report their context switches (counters ctx_switches, per iteration, and ctx_per_100_msgs).
# Writes Google Benchmark's JSON to FILE (default: benchmark-results.json in the current
# directory). --filter REGEX is passed to --benchmark_filter; names are
# <workload>/<config>/<runner>, e.g. --filter '^small/deep/', and sched/<row>/<adaptive|pinned>
# plus sched/cpu20us/one_thread (--filter '^sched/'). --shmem-thp MODE sets the kernel's
# transparent huge pages for shared memory (/sys/kernel/mm/transparent_hugepage/shmem_enabled, as
# root) for the run and puts the old value back after: process-mode rows of large packets depend
# on it (docs/guide.md, section 4). About 6 minutes on 2 cores where page
# faults are cheap; the big/ rows alone took 15 minutes on a VM where a fault costs 3-12 us.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
json="$PWD/benchmark-results.json"
filter="."
shmem_thp=""
while (($#)); do
  case $1 in
    --json) json=$(realpath -m "$2"); shift 2 ;;
    --filter) filter=$2; shift 2 ;;
    --shmem-thp)
      case $2 in
        never | advise | within_size | always) shmem_thp=$2 ;;
        *) echo "$0: --shmem-thp takes never, advise, within_size or always, not '$2'" >&2; exit 2 ;;
      esac
      shift 2 ;;
    *) echo "usage: $0 [--filter REGEX] [--json FILE] [--shmem-thp never|advise]" >&2; exit 2 ;;
  esac
done
thp_knob=/sys/kernel/mm/transparent_hugepage/shmem_enabled
if [[ -n $shmem_thp && ! -w $thp_knob ]]; then
  echo "$0: --shmem-thp needs $thp_knob to exist and be writable (run as root)" >&2
  exit 2
fi
"$root/.ci/install-deps.sh"

build="$root/build/bench"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++-12 \
  -DPLUMB_BUILD_TESTS=OFF -DPLUMB_BUILD_EXAMPLES=ON -DPLUMB_BUILD_BENCHMARKS=ON -DPLUMB_WITH_REDIS=ON >/dev/null
cmake --build "$build" -j "$(nproc)"

# Each example as its CTest entry runs it: on its own, or through examples/<name>_test.sh.
for example in "$build"/examples/example_*; do
  name=$(basename "$example")
  echo "=== $name"
  script="$root/examples/${name#example_}_test.sh"
  if [[ -f $script ]]; then bash "$script" "$example"; else (cd "$build/examples" && "$example"); fi
done

# --shmem-thp: the kernel's transparent huge pages for shared memory during this run (root only),
# put back as they were at exit; process-mode slots use them where allowed (docs/guide.md).
if [[ -n $shmem_thp ]]; then
  previous=$(sed -E 's/.*\[([a-z_]+)\].*/\1/' "$thp_knob")
  trap 'echo "$previous" > "$thp_knob"' EXIT
  echo "$shmem_thp" > "$thp_knob"
fi

echo "=== benchmarks: $(date -u +%Y-%m-%d), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, $(g++-12 --version | head -1), shared-memory huge pages: $(cat "$thp_knob" 2>/dev/null || echo unknown)"
"$build/benchmarks/plumb_benchmarks" --benchmark_filter="$filter" \
  --benchmark_out="$json" --benchmark_out_format=json
echo "=== results written to $json"
