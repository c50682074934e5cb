#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# CTest entry example.file_index: indexes a directory of known files in every mode and checks
# each record (hash, sizes, kind) and that the three modes agree.
#
#   bash examples/file_index_test.sh build/dev/examples/example_file_index
set -euo pipefail
tool=$(realpath "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/in/sub"
printf 'hello, plumb\n' >"$work/in/hello.txt"
: >"$work/in/empty"
printf 'hello, plumb\n' | gzip -c >"$work/in/hello.gz"
cp "$(type -P true)" "$work/in/sub/true"
head -c 100000 /dev/urandom >"$work/in/sub/random.bin"
for i in $(seq 1 40); do seq 1 "$((i * 50))" >"$work/in/sub/numbers$i.txt"; done

fail() { echo "FAIL: $*" >&2; exit 1; }
for mode in sequential thread process; do
  "$tool" --dir "$work/in" --out "$work/$mode.tsv" --mode "$mode" 2>"$work/$mode.err" ||
    fail "$mode: $(cat "$work/$mode.err")"
  [ "$(wc -l <"$work/$mode.tsv")" -eq 46 ] || fail "$mode: $(wc -l <"$work/$mode.tsv") lines, not 46"
  line() { grep -F "$work/in/$1"$'\t' "$work/$mode.tsv"; }
  # FNV-1a 64 of "hello, plumb\n", and the empty file's (the offset basis).
  [[ "$(line hello.txt)" == *$'\t13\t'*$'\ttext' ]] || fail "$mode: hello.txt: $(line hello.txt)"
  [[ "$(line empty)" == *$'\tcbf29ce484222325\t0\t'*$'\tempty' ]] || fail "$mode: empty: $(line empty)"
  [[ "$(line hello.gz)" == *$'\tgzip' ]] || fail "$mode: hello.gz: $(line hello.gz)"
  [[ "$(line sub/true)" == *$'\tELF' ]] || fail "$mode: true: $(line sub/true)"
  [[ "$(line sub/random.bin)" == *$'\t100000\t'*$'\tbinary' ]] || fail "$mode: random.bin: $(line sub/random.bin)"
  echo "$mode: ok"
done
cmp "$work/sequential.tsv" "$work/thread.tsv" || fail "sequential and thread mode differ"
cmp "$work/sequential.tsv" "$work/process.tsv" || fail "sequential and process mode differ"
hello=$(grep -F "$work/in/hello.txt" "$work/thread.tsv" | cut -f2)
expected=$(printf 'hello, plumb\n' | python3 -c '
import sys
h = 14695981039346656037
for b in sys.stdin.buffer.read():
    h ^= b
    h = (h * 1099511628211) % 2**64
print(format(h, "x"))')
[ "$hello" = "$expected" ] || fail "hello.txt hash $hello, expected $expected"
echo "all modes agree"
