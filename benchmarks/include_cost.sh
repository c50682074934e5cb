#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Measures what including plumb costs a translation unit, side by side with oneTBB's pipeline.
#
#   benchmarks/include_cost.sh [--runs N] [--against REF] [--headers] [--max-ratio R]
#
# Compiles each file below to an object with g++-12 -std=c++20 -O2 and the flags plumb's CMake
# target gives its users (-DFMT_SHARED -Iinclude; Boost, fmt, oneTBB and CLI11 from the system),
# all of one group alternately, N times over (default 3), and prints the fastest time of each,
# its ratio to its baseline, and its preprocessed line count (g++ -E | wc -l):
#   - a file that only includes <plumb/plumb.hpp>, against one that only includes oneTBB's
#     <tbb/parallel_pipeline.h>;
#   - examples/quickstart.cpp, against the same pipeline written with oneTBB
#     (benchmarks/include_cost/quickstart_tbb.cpp). The quickstart also parses its command line
#     with CLI11 (examples/support/cli.hpp), which the oneTBB version does not: that header's
#     own cost is printed under it.
# --against REF  also times the same plumb files as of git revision REF (e.g. main), in the same
#                groups, so that a change is measured against what it changes in one run.
# --headers      also prints the preprocessed lines of a file including only each public header.
# --max-ratio R  exits 1 when <plumb/plumb.hpp> takes more than R times as long as oneTBB's.
# CXX overrides the compiler. Installs what it needs first (Debian packages: the build and
# benchmarks groups of .ci/install-deps.sh). The quickstart rows need CLI11 too (libcli11-dev,
# from the tests group) and are skipped without it. About a minute on 2 cores (two with
# --against); the machine should be otherwise idle, and only ratios within one run mean much.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=3
against=""
headers=0
max_ratio=""
usage="usage: $0 [--runs N] [--against REF] [--headers] [--max-ratio R]"
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --against) against=$2; shift 2 ;;
    --headers) headers=1; shift ;;
    --max-ratio) max_ratio=$2; shift 2 ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "include_cost: --runs needs a positive whole number" >&2; exit 2; }
limit=""
if [[ -n $max_ratio ]]; then
  # As hundredths: 2 -> 200, 2.5 -> 250.
  [[ $max_ratio =~ ^([0-9]+)(\.([0-9]{1,2}))?$ ]] ||
    { echo "include_cost: --max-ratio needs a number like 2 or 2.5" >&2; exit 2; }
  fraction=${BASH_REMATCH[3]}00
  limit=$((10#${BASH_REMATCH[1]} * 100 + 10#${fraction:0:2}))
fi
"$root/.ci/install-deps.sh" build benchmarks

cxx=${CXX:-g++-12}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [[ -n $against ]]; then
  mkdir "$work/against"
  git -C "$root" archive "$against" include examples | tar -x -C "$work/against"
fi

# Each file compiles with the include directories of its tree: tree[file] is the plumb tree.
declare -A tree
add() {  # file, content (or empty: the file exists), tree
  [[ -n $2 ]] && echo "$2" >"$1"
  tree[$1]=$3
}
add "$work/plumb.cpp" '#include <plumb/plumb.hpp>' "$root"
add "$work/tbb.cpp" '#include <tbb/parallel_pipeline.h>' "$root"
add "$work/cli.cpp" '#include "support/cli.hpp"' "$root"
add "$root/examples/quickstart.cpp" "" "$root"
add "$root/benchmarks/include_cost/quickstart_tbb.cpp" "" "$root"
if [[ -n $against ]]; then
  add "$work/plumb_against.cpp" '#include <plumb/plumb.hpp>' "$work/against"
  add "$work/against/examples/quickstart.cpp" "" "$work/against"
fi

# Sets `flags` (declared local by the caller) to the compile flags of file $1.
flags_of() { flags=(-std=c++20 -O2 -DFMT_SHARED -I"${tree[$1]}/include" -I"${tree[$1]}/examples"); }

# Milliseconds one compile of $1 to an object file takes.
compile_ms() {
  local flags start end
  flags_of "$1"
  start=$(date +%s%N)
  "$cxx" "${flags[@]}" -c "$1" -o "$work/out.o"
  end=$(date +%s%N)
  echo $(((end - start) / 1000000))
}

lines() {
  local flags
  flags_of "$1"
  "$cxx" "${flags[@]}" -E "$1" | wc -l
}

# Times each file given, one after the other, $runs times over; sets fastest[file] (ms).
declare -A fastest
time_alternately() {
  local file ms
  for file in "$@"; do fastest[$file]=""; done
  for ((run = 0; run < runs; ++run)); do
    for file in "$@"; do
      ms=$(compile_ms "$file")
      if [[ -z ${fastest[$file]} ]] || ((ms < fastest[$file])); then fastest[$file]=$ms; fi
    done
  done
}

hundredths() { printf '%d.%02d' $(($1 / 100)) $(($1 % 100)); }  # of a number of hundredths

ratio() { echo $((fastest[$1] * 100 / fastest[$2])); }  # in hundredths

row() {  # label, file, baseline file (or empty)
  local shown=""
  [[ -n $3 ]] && shown=$(hundredths "$(ratio "$2" "$3")")x
  printf '%-50s %8s s %7s %12s\n' "$1" "$(hundredths $((fastest[$2] / 10)))" "$shown" "$(lines "$2")"
}

have_cli11=1
echo '#include <CLI/CLI.hpp>' | "$cxx" -std=c++20 -x c++ -E - >/dev/null 2>&1 || have_cli11=0

headers_group=("$work/plumb.cpp" "$work/tbb.cpp")
quickstart_group=("$root/examples/quickstart.cpp" "$root/benchmarks/include_cost/quickstart_tbb.cpp"
                  "$work/cli.cpp")
if [[ -n $against ]]; then
  headers_group+=("$work/plumb_against.cpp")
  quickstart_group+=("$work/against/examples/quickstart.cpp")
fi

echo "=== include cost: $(date -u +%Y-%m-%d), $("$cxx" --version | head -1), -std=c++20 -O2," \
  "fastest of $runs, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
time_alternately "${headers_group[@]}"
((have_cli11)) && time_alternately "${quickstart_group[@]}"

printf '%-50s %10s %8s %12s\n' "translation unit" "compile" "ratio" "lines (-E)"
row "#include <plumb/plumb.hpp>" "$work/plumb.cpp" "$work/tbb.cpp"
[[ -n $against ]] && row "#include <plumb/plumb.hpp> as of $against" "$work/plumb_against.cpp" "$work/tbb.cpp"
row "#include <tbb/parallel_pipeline.h>" "$work/tbb.cpp" ""
if ((have_cli11)); then
  quickstart_tbb=$root/benchmarks/include_cost/quickstart_tbb.cpp
  row "examples/quickstart.cpp" "$root/examples/quickstart.cpp" "$quickstart_tbb"
  [[ -n $against ]] &&
    row "examples/quickstart.cpp as of $against" "$work/against/examples/quickstart.cpp" "$quickstart_tbb"
  row "  of which examples/support/cli.hpp (CLI11)" "$work/cli.cpp" ""
  row "benchmarks/include_cost/quickstart_tbb.cpp" "$quickstart_tbb" ""
else
  echo "(no quickstart rows: they need CLI11, Debian libcli11-dev: .ci/install-deps.sh tests)"
fi

if ((headers)); then
  echo "=== preprocessed lines of a file including only each public header"
  for header in "$root"/include/plumb/*.hpp; do
    name=plumb/$(basename "$header")
    [[ $name == plumb/redis.hpp ]] && continue  # plumb::redis needs hiredis; not in plumb.hpp
    add "$work/header.cpp" "#include <$name>" "$root"
    printf '%-50s %12s\n' "<$name>" "$(lines "$work/header.cpp")"
  done
fi

if [[ -n $limit ]] && (($(ratio "$work/plumb.cpp" "$work/tbb.cpp") > limit)); then
  echo "include_cost: <plumb/plumb.hpp> takes $(hundredths "$(ratio "$work/plumb.cpp" "$work/tbb.cpp")")x" \
    "as long as oneTBB's header, above --max-ratio $max_ratio" >&2
  exit 1
fi
