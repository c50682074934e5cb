#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs plumb's tests. Installs what it needs first (Debian packages).
#
#   tests/run.sh                  every configuration: gcc clang asan tsan docs
#   tests/run.sh gcc asan         only those
#
# gcc, clang: Debug builds with -Werror; all tests, including the compile-fail tests, the
#             package tests and the header self-sufficiency check.
# asan:       Clang 14, AddressSanitizer + UndefinedBehaviorSanitizer, all behaviour tests.
# tsan:       Clang 14, ThreadSanitizer, the behaviour tests, one at a time (31 instrumented
#             threads sharing 2 cores with another test starve; hangs still fail, after 120 s).
#             Not the process-mode tests and examples: TSan sees one process, so slots
#             recycled through a worker process look like races to it; those rest on ASan and
#             the stress loop.
# docs:       the API reference (docs/api.sh: doxygen, any warning fails) and the Graphviz
#             sources of docs/diagrams and docs/images (each must render).
# The [stress] tests run in a loop in every configuration (PLUMB_STRESS_REPEAT, default 50).
# The stress harness (tests/stress/plumb_stress.cpp, docs/stress.md) runs as two CTest entries:
# stress.sweep (every mode, faults on) in gcc, clang and asan; stress.threads (threads and
# fused stages only) in every configuration, tsan included.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/.ci/install-deps.sh"

configs=("$@")
((${#configs[@]})) || configs=(gcc clang asan tsan docs)
repeat=${PLUMB_STRESS_REPEAT:-50}
jobs=$(nproc)

run_config() {
  local name=$1 compiler=$2 flags=$3 exclude=$4 timeout=${5:-30} test_jobs=${6:-$jobs}
  local stress=${7:-[stress]}
  local build="$root/build/test-$name"
  echo "=== plumb tests: $name ($compiler $flags)"
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DPLUMB_TEST_TIMEOUT="$timeout" \
    -DPLUMB_BUILD_BENCHMARKS="$([[ -z $exclude ]] && echo ON || echo OFF)" >/dev/null
  cmake --build "$build" -j "$jobs"
  if [[ -z $exclude ]]; then
    cmake --build "$build" --target all_verify_interface_header_sets -j "$jobs"
  fi
  # Behaviour tests first, then (where they run) the compiler-heavy compile-fail and package
  # tests: compilers beside the concurrency tests starve them (measured: 0.7 s became 55 s).
  (cd "$build" && ctest -j "$test_jobs" --output-on-failure --timeout 120 -E "compile_fail|package${exclude:+|$exclude}")
  if [[ -z $exclude ]]; then
    (cd "$build" && ctest -j "$jobs" --output-on-failure --timeout 300 -R "compile_fail|package")
  fi
  if [[ -x "$build/tests/plumb_tests" ]]; then
    echo "=== plumb tests: $name: [stress] tests x $repeat"
    for ((i = 1; i <= repeat; ++i)); do
      timeout 300 "$build/tests/plumb_tests" "$stress" >/dev/null ||
        { echo "stress run $i of $repeat failed:"; "$build/tests/plumb_tests" "$stress"; return 1; }
    done
  fi
}

sanitizer_common="-O1 -g -fno-omit-frame-pointer -fno-sanitize-recover=all"
# Examples with worker processes: like the process-mode tests, not under TSan.
process_examples="^example\.(documents|image_batch|image_classify|inference_service|log_analytics|parallel_gzip|quickstart|search|tutorial)$"
for config in "${configs[@]}"; do
  case $config in
    gcc) run_config gcc g++-12 "" "" ;;
    clang) run_config clang clang++-14 "" "" ;;
    asan) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            run_config asan clang++-14 "-fsanitize=address,undefined $sanitizer_common" \
            "compile_fail|package" 120 ;;
    tsan) TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan.supp" \
            run_config tsan clang++-14 "-fsanitize=thread $sanitizer_common" \
            "compile_fail|package|^process mode|^mixed: |^redis \\(process mode\\)|^stress.sweep$|$process_examples" 120 1 \
            "[stress]~[process]" ;;
    docs) echo "=== plumb tests: docs"
          bash "$root/docs/api.sh" "$root/build/docs/api"
          for source in "$root"/docs/diagrams/*.dot "$root"/docs/images/*.dot; do
            dot -Tsvg "$source" -o /dev/null || { echo "$source does not render"; exit 1; }
          done ;;
    *) echo "unknown configuration '$config'; use gcc, clang, asan, tsan or docs" >&2; exit 2 ;;
  esac
done
echo "=== plumb tests: all configurations passed: ${configs[*]}"
