#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Builds plumb's API reference with doxygen (docs/Doxyfile) into OUTDIR (default build/docs/api).
# Usage: bash docs/api.sh [OUTDIR]
# Installs doxygen from Debian packages if it is missing (apt-get as root, or through sudo).
# Fails on any doxygen warning (an undocumented public member, a broken reference); on success,
# prints the path of the generated index.html.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
outdir=${1:-$root/build/docs/api}
mkdir -p "$outdir"          # doxygen creates its output directory, but not the parents
outdir=$(cd "$outdir" && pwd)  # absolute: doxygen runs from the repository root

if ! command -v doxygen >/dev/null 2>&1; then
  sudo=()
  if [[ $(id -u) -ne 0 ]]; then sudo=(sudo); fi
  echo "plumb: installing doxygen"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends doxygen
fi

# QUIET in the Doxyfile: all doxygen prints is its warnings. WARN_AS_ERROR = FAIL_ON_WARNINGS
# makes it exit non-zero after reporting them all.
cd "$root"
if ! PLUMB_API_DIR=$outdir doxygen docs/Doxyfile; then
  echo "plumb: doxygen reported warnings (above); the API reference is incomplete" >&2
  exit 1
fi
echo "$outdir/html/index.html"
