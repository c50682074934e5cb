#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what plumb's tests, examples and benchmarks need, from Debian packages only.
# Installs only what is missing (apt-get update first); runs apt-get as root, or through sudo.
#
#   .ci/install-deps.sh                everything (CI, the benchmarks)
#   .ci/install-deps.sh build tests    only those groups (the quick tests/run.sh: GCC only)
set -euo pipefail

declare -A groups=(
  # GCC, CMake, and plumb's own dependencies
  [build]="cmake ninja-build g++-12 libboost1.81-dev libfmt-dev"
  # the tests (Catch2; gdb: stacks of a hung stress trial; graphviz: stats_test renders
  # Stats::dot()), the examples and their tests (zlib, gzip, pigz: parallel_gzip; CLI11: the
  # command lines), plumb::redis and its tests (each starts a redis-server)
  [tests]="catch2 gdb graphviz zlib1g-dev gzip pigz libcli11-dev libhiredis-dev redis-server"
  # the rest of CI's matrix: Clang and its sanitizer runtimes, the API reference
  [matrix]="clang-14 libclang-rt-14-dev doxygen"
  # the benchmarks and their baseline
  [benchmarks]="libbenchmark-dev libtbb-dev"
)

chosen=("$@")
((${#chosen[@]})) || chosen=(build tests matrix benchmarks)
packages=()
for group in "${chosen[@]}"; do
  [[ -v "groups[$group]" ]] || { echo "install-deps: unknown group '$group' (build tests matrix benchmarks)" >&2; exit 2; }
  read -ra list <<<"${groups[$group]}"
  packages+=("${list[@]}")
done

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
echo "plumb: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
