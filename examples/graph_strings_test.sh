#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest entry example.graph_strings: the issue's graph in every mode; n4 prints every string's
# three forms (3 lines per generated string) and the example's own check passes.
#
#   bash examples/graph_strings_test.sh build/dev/examples/example_graph_strings
set -euo pipefail
tool=$1
for mode in sequential thread process; do
  out=$("$tool" --count 50 --seed 3 --mode "$mode")
  lines=$(grep -c '^n4: ' <<<"$out")
  [ "$lines" -eq 150 ] || { echo "FAIL: $mode mode printed $lines n4 lines, not 150" >&2; exit 1; }
  grep -q '^complete: n4 received 150 strings' <<<"$out" || { echo "FAIL: $mode: $out" >&2; exit 1; }
  echo "$mode: ok"
done
