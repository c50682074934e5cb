#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Installs what plumb's tests, examples and benchmarks need, from Debian packages only.
# Installs only what is missing (apt-get update first); runs apt-get as root, or through sudo.
set -euo pipefail

packages=(
  cmake ninja-build g++-12 clang-14 libclang-rt-14-dev  # toolchains; clang's sanitizer runtimes
  libboost1.81-dev libfmt-dev                           # plumb's dependencies
  catch2 libbenchmark-dev libtbb-dev                    # tests; benchmarks and their baseline
  gdb                                                   # stacks of a hung stress trial
  graphviz                                              # stats_test renders Stats::dot()
  zlib1g-dev gzip pigz                                  # example parallel_gzip, its test and benchmark
  libcli11-dev                                          # the examples' command lines
  doxygen                                               # the API reference (docs/api.sh)
  libhiredis-dev redis-server                           # plumb::redis, its tests (each starts a server)
)

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
