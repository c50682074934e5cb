#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest entry example.parallel_gzip: compresses inputs of awkward sizes with several workers
# and small chunks (many chunks, finished out of order), then checks that each output passes
# `gzip -t`, decompresses to the exact input, and compresses about as well as `gzip -6`
# (the 32 KiB dictionary carried across chunks); and that errors are clear and leave no output.
#
#   bash examples/parallel_gzip_test.sh build/dev/examples/example_parallel_gzip
set -euo pipefail
tool=$(realpath "$1")
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

fail() { echo "FAIL: $*" >&2; exit 1; }

# Inputs: empty, one byte, exactly one 32 KiB chunk, one byte more, and about 1.2 MB of text
# (plumb's own sources, repeated) with a stretch of random bytes in the middle.
: >empty
printf x >one
head -c 32768 /dev/urandom >chunk
head -c 32769 /dev/urandom >chunk_plus_one
for _ in 1 2 3; do cat "$root"/include/plumb/*.hpp "$root"/include/plumb/detail/*/*.hpp; done >text
head -c 300000 /dev/urandom >>text
cat "$root"/docs/*.md "$root"/tests/*.cpp >>text

for input in empty one chunk chunk_plus_one text; do
  for workers in 1 3; do
    out="$input.$workers.gz"
    "$tool" "$input" "$out" --workers "$workers" --chunk 32 >log 2>&1 ||
      { status=$?; cat log; fail "$input, $workers workers: exit $status"; }
    gzip -t "$out" || fail "$input, $workers workers: gzip -t rejects the output"
    gzip -dc "$out" | cmp - "$input" || fail "$input, $workers workers: the round trip differs"
  done
  echo "ok: $input ($(stat -c %s "$input") bytes)"
done

# The ratio: within 2% of gzip -6 on the same input (the dictionary makes chunking nearly free).
ours=$(stat -c %s text.3.gz)
theirs=$(gzip -6 -c text | wc -c)
((ours * 100 <= theirs * 102)) || fail "text: $ours bytes, gzip -6 makes $theirs"
echo "ok: ratio: $ours bytes against gzip -6's $theirs"

# The default settings (128 KiB chunks, 2 workers) and the statistics table.
"$tool" text text.gz --stats >log
grep -q "compress" log || { cat log; fail "--stats printed no table"; }
gzip -dc text.gz | cmp - text || fail "default settings: the round trip differs"

# Errors: a missing input is named, exits 1, leaves no output and no temporary file, and does
# not touch an existing output; a bad option value is named by CLI11 and exits with CLI11's
# code for it (105, CLI::ExitCodes::ValidationError), before anything is written.
if "$tool" missing out.gz 2>err; then fail "a missing input succeeded"; fi
grep -q "cannot open input 'missing'" err || { cat err; fail "unclear error for a missing input"; }
[[ ! -e out.gz ]] || fail "a failed run left its output behind"
compgen -G "out.gz.partial-*" >/dev/null && fail "a failed run left its temporary file behind"
echo keep >kept.gz
if "$tool" missing kept.gz 2>err; then fail "a missing input succeeded"; fi
[[ $(cat kept.gz) == keep ]] || fail "a failed run changed an existing output"
set +e
"$tool" text out.gz --workers 0 2>err
status=$?
set -e
((status == 105)) || fail "--workers 0: exit $status, expected 105"
grep -q -- "--workers: Value 0 not in range 1 to 128" err || { cat err; fail "unclear usage error"; }
[[ ! -e out.gz ]] || fail "a bad option left an output behind"
echo "ok: errors"
