#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Runs plumb's bundled benchmarks. Installs what it needs first (Debian packages).
#
# The Google Benchmark suite (issue 5) is not there yet; until it is, this builds the examples
# in Release and runs each of them, timing it.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/.ci/install-deps.sh"

build="$root/build/bench"
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_COMPILER=g++-12 \
  -DPLUMB_BUILD_TESTS=OFF -DPLUMB_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$build" -j "$(nproc)"
for example in "$build"/examples/example_*; do
  echo "=== $(basename "$example")"
  start=$(date +%s%N)
  "$example"
  end=$(date +%s%N)
  echo "    ($(((end - start) / 1000000)) ms)"
done
