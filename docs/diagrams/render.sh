#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# Renders every Graphviz source in docs/diagrams/ (*.dot) to an SVG beside it. Installs Debian's
# graphviz with apt-get first if `dot` is missing (as root, or through sudo).
#
#   bash docs/diagrams/render.sh
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

if ! command -v dot >/dev/null 2>&1; then
  echo "render.sh: dot not found; installing graphviz" >&2
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends graphviz
fi

shopt -s nullglob
sources=("$here"/*.dot)
if [ ${#sources[@]} -eq 0 ]; then
  echo "render.sh: no .dot files in $here" >&2
  exit 1
fi
for source in "${sources[@]}"; do
  dot -Tsvg "$source" -o "${source%.dot}.svg"
  echo "rendered ${source%.dot}.svg"
done
