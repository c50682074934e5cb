#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds and runs plumb's tests. Installs what it needs first (Debian packages).
#
#   tests/run.sh               the quick check (5.5 minutes on 2 cores): GCC 12 with warnings
#                              as errors; every behaviour test, the examples, the compile-fail
#                              and package tests, the stress harness and the [stress] tests x3
#   tests/run.sh --all         everything CI runs (.ci/run; 43 minutes): docs gcc clang asan tsan
#   tests/run.sh asan tsan     only those configurations, as --all runs them
#   --stress N                 run the [stress] tests N times per configuration (quick: 3,
#                              otherwise 50; PLUMB_STRESS_REPEAT sets it too)
#
# gcc, clang: Debug builds with -Werror; behaviour tests, examples, compile-fail tests; the
#             package tests (plumb's CMake package: one compiler is enough) in gcc. With --all
#             or when named, the benchmarks build too, and (gcc) every public header must
#             compile on its own.
# asan:       Clang 14, AddressSanitizer + UndefinedBehaviorSanitizer, all behaviour tests.
# tsan:       Clang 14, ThreadSanitizer, the behaviour tests, one at a time (31 instrumented
#             threads sharing 2 cores with another test starve; hangs still fail, after 120 s).
#             Not the process-mode tests and examples (nor are those examples built): TSan
#             sees one process, so slots recycled through a worker process look like races to
#             it; those rest on ASan and the stress loop. Tests that cover several modes leave
#             out their worker-process rows in a TSan build (tests/support/modes.hpp).
# docs:       the API reference (docs/api.sh: doxygen, any warning fails) and the Graphviz
#             sources of docs/diagrams and docs/images (each must render). First: it takes
#             seconds, and fails fast.
# The stress harness (tests/stress/plumb_stress.cpp, docs/stress.md) runs as two CTest entries:
# stress.sweep (every mode, faults on) everywhere but tsan; stress.threads (threads and fused
# stages only) everywhere.
#
# A configuration's steps run one after another, and configurations too: each build uses both
# cores, and tests beside another configuration's tests or build starve (timeouts, not bugs).
# Every step runs even after a failure, so that one run reports everything; the exit status is
# non-zero if anything failed. The end of the output is the report: each configuration's times,
# the slowest tests, what failed, and one summary line.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
results_dir="$root/build/test-results"
source "$root/tests/report.sh"

usage() { sed -n '3,12p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

configs=()
quick=1
repeat=${PLUMB_STRESS_REPEAT:-}
while (($#)); do
  case $1 in
    --all) quick=0; configs=(docs gcc clang asan tsan) ;;
    --stress) repeat=${2:?--stress needs a count}; shift ;;
    -h | --help) usage; exit 0 ;;
    gcc | clang | asan | tsan | docs) quick=0; configs+=("$1") ;;
    *) echo "tests/run.sh: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
  shift
done
if ((quick)); then
  configs=(gcc)
  repeat=${repeat:-3}
fi
repeat=${repeat:-50}
jobs=$(nproc)

deps=()  # every group
((quick)) && deps=(build tests)  # GCC only: no Clang, doxygen or benchmark libraries
"$root/.ci/install-deps.sh" "${deps[@]}" || { echo "plumb tests: installing the Debian packages failed" >&2; exit 1; }
report_start "$results_dir"

# ctest with the given arguments in build directory $1, its results recorded for configuration $2.
run_ctest() {
  local build=$1 config=$2 step=$3
  shift 3
  (cd "$build" && ctest --output-on-failure "$@") 2>&1 | tee "$results_dir/$config-$step.log"
  local status=${PIPESTATUS[0]}
  report_ctest "$config" "$results_dir/$config-$step.log"
  return "$status"
}

# run_config NAME compiler=... [key=value...]; keys:
#   flags       compiler and linker flags (sanitizers)
#   skip        a CTest regex of behaviour tests this configuration skips
#   checks      a CTest regex of the compiler-heavy tests it runs after the behaviour tests
#               (compile-fail, package); none in the sanitizer builds
#   benchmarks  ON: build the benchmarks too (with --all or when named)
#   targets     what to build (default: all)
#   timeout     seconds before a behaviour test counts as hung (default 30)
#   test_jobs   behaviour tests run at once (default: the cores)
#   stress      the Catch2 filter of the [stress] loop (default [stress])
#   headers     1: also check that every public header compiles on its own (one compiler is enough)
#   lendings    the behaviour tests run once per setting of PLUMB_TEST_LENDING listed (adaptive:
#               the default engine; always: every worker that may be lent is, from its first
#               packet; never: none is, as with Scheduling::pinned). Default: adaptive.
#               GCC runs adaptive; Clang never; the sanitizer builds `always` (every lent
#               path instrumented, and so each setting runs once). More would take .ci/run past
#               45 minutes (a GCC `always` pass was 1m12s of a 44-minute run).
#   stress_minutes  the most minutes of each stress harness entry (default 2; the sanitizer
#               builds 1: they reach a fraction of the runs in the time, and the optimized
#               builds run the 600). The sweep runs in the adaptive pass only; stress.threads in
#               every pass
#   sanitizer_rounds  at most this many rounds of the [stress] loop (the sanitizer builds: 8)
run_config() {
  local name=$1
  shift
  local compiler flags="" skip="" checks="" benchmarks=OFF targets=all timeout=30
  local test_jobs=$jobs stress="[stress]" headers=0 lendings="adaptive" stress_minutes=2 sanitizer_rounds=0
  local "$@"
  local build="$root/build/test-$name"
  ((quick)) && headers=0 benchmarks=OFF
  echo "=== plumb tests: $name ($compiler $flags)"

  step_begin "$name" build
  # shellcheck disable=SC2086 # targets is a list
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_CXX_COMPILER="$compiler" -DCMAKE_CXX_FLAGS="$flags" \
    -DCMAKE_EXE_LINKER_FLAGS="$flags" -DPLUMB_TEST_TIMEOUT="$timeout" -DPLUMB_STRESS_MINUTES="$stress_minutes" \
    -DPLUMB_BUILD_BENCHMARKS="$benchmarks" >/dev/null &&
    cmake --build "$build" -j "$jobs" --target $targets &&
    { ((!headers)) || cmake --build "$build" --target all_verify_interface_header_sets -j "$jobs"; }
  step_end $? || return 0  # nothing to test without a build

  # Behaviour tests first, then (where they run) the compiler-heavy compile-fail and package
  # tests: compilers beside the concurrency tests starve them (measured: 0.7 s became 55 s).
  local lending label
  for lending in $lendings; do
    label=$name
    [[ $lending != adaptive ]] && label+=".lending-$lending"
    # The stress sweep (every mode, process faults included) once, with the default engine;
    # stress.threads (where lending happens) in every pass.
    local pass_skip=$skip
    [[ $lending != adaptive ]] && pass_skip+="${pass_skip:+|}^stress\\.sweep\$"
    step_begin "$label" tests
    PLUMB_TEST_LENDING=$lending run_ctest "$build" "$label" tests -j "$test_jobs" --timeout 120 \
      -E "^compile_fail\\.|^package\\.|^docs\\.${pass_skip:+|$pass_skip}"
    step_end $?
  done
  if [[ -n $checks ]]; then
    local checks_step=compile-fail
    [[ $checks == *package* ]] && checks_step+=+package
    step_begin "$name" "$checks_step"
    run_ctest "$build" "$name" checks -j "$jobs" --timeout 300 -R "$checks"
    step_end $?
  fi

  local rounds=$repeat
  ((sanitizer_rounds > 0 && repeat > sanitizer_rounds)) && rounds=$sanitizer_rounds
  step_begin "$name" "stress x$rounds"
  echo "=== plumb tests: $name: [stress] tests x $rounds"
  local i status=0
  for ((i = 1; i <= rounds; ++i)); do
    timeout 300 "$build/tests/plumb_tests" "$stress" >"$results_dir/$name-stress.log" 2>&1 ||
      { status=$?; echo "stress run $i of $repeat failed:"; cat "$results_dir/$name-stress.log"; break; }
  done
  report_stress "$name" "$rounds" "$i" "$status"
  step_end "$status"
}

# -O0: instrumenting at -O1 made the sanitizer builds the slowest step of the matrix (measured:
# ASan 11m19s, TSan 4m52s; 4m49s and 3m02s at -O0). The behaviour tests take the same time
# either way (they wait more than they compute), the [stress] loop about 2 s more per round
# under ASan; and the stress harness is optimized in every configuration (tests/CMakeLists.txt).
sanitizer_common="-O0 -g -fno-omit-frame-pointer -fno-sanitize-recover=all"
# Under TSan: the test binaries and the examples without worker processes (TSan sees one
# process: see above). Only these are built there; the other examples run in gcc, clang, asan.
tsan_examples=(redis_worker stats)
tsan_targets="plumb_tests plumb_redis_tests plumb_stress $(printf 'example_%s ' "${tsan_examples[@]}")"
tsan_skip_examples=$(for source in "$root"/examples/*.cpp; do
  name=$(basename "$source" .cpp)
  [[ " ${tsan_examples[*]} " == *" $name "* ]] || printf '%s|' "$name"
done)
for config in "${configs[@]}"; do
  case $config in
    # The lending settings are split between the builds: GCC runs adaptive (the default),
    # Clang never (the engine without lending), ASan and TSan always, so each runs once.
    gcc) run_config gcc compiler=g++-12 checks="^compile_fail\\.|^package\\.|^docs\\." benchmarks=ON headers=1 ;;
    # The package tests check plumb's CMake package, not the compiler: GCC runs them. The
    # benchmarks are built (and so checked for warnings) by GCC, the compiler benchmarks/run.sh
    # uses.
    clang) run_config clang compiler=clang++-14 checks="^compile_fail\\.|^docs\\." lendings=never ;;
    asan) ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
            run_config asan compiler=clang++-14 flags="-fsanitize=address,undefined $sanitizer_common" \
            timeout=120 lendings=always stress_minutes=1 sanitizer_rounds=8 ;;
    tsan) TSAN_OPTIONS="halt_on_error=1 suppressions=$root/tests/tsan.supp" \
            run_config tsan compiler=clang++-14 flags="-fsanitize=thread $sanitizer_common" \
            skip="^process mode|^mixed: |^redis \\(process mode\\)|^stress.sweep$|^example\\.(${tsan_skip_examples%|})" \
            targets="$tsan_targets" timeout=120 test_jobs=1 stress="[stress]~[process]" lendings=always \
            stress_minutes=1 sanitizer_rounds=8 ;;
    docs) echo "=== plumb tests: docs"
          step_begin docs api
          bash "$root/docs/api.sh" "$root/build/docs/api"
          step_end $?
          step_begin docs diagrams
          status=0
          for source in "$root"/docs/diagrams/*.dot "$root"/docs/images/*.dot; do
            dot -Tsvg "$source" -o /dev/null || { echo "$source does not render"; status=1; }
          done
          step_end $status ;;
  esac
done
report_end "$( ((quick)) && echo quick || echo "${configs[*]}")"
