#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Regenerates the pictures of docs/stats.md: runs examples/stats.cpp (which writes the .dot and
# .mmd files here) and renders each .dot with Graphviz (Debian: apt-get install graphviz).
#
#   docs/images/render.sh [BUILD_DIR]     (default: build/dev; the example must be built)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
build=${1:-$here/../../build/dev}
"$build/examples/example_stats" "$here"
for graph in "$here"/*.dot; do
  dot -Tsvg "$graph" -o "${graph%.dot}.svg"
done
