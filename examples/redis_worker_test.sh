#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/redis_worker_test.sh EXE: the scale-out example end to end. Starts a redis-server on
# a free loopback port, two worker instances (EXE) sharing the group "workers", fills the
# stream with examples/redis_producer.sh, and checks that every job has a result, none is left
# pending, and both instances did some of the work; and that one job too large for the read
# link (200 KB) ends in the dead-letter stream instead of stopping an instance.
set -euo pipefail
exe=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
jobs=${PLUMB_REDIS_EXAMPLE_JOBS:-400}
work=$(mktemp -d)
server=""
instances=()
cleanup() {
  if [[ -n $server ]]; then kill -9 "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
  for pid in "${instances[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

for attempt in 1 2 3 4 5; do
  port=$((20000 + RANDOM % 40000))
  redis-server --port "$port" --bind 127.0.0.1 --save "" --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
  server=$!
  for _ in $(seq 100); do
    redis-cli -p "$port" ping >/dev/null 2>&1 && break
    kill -0 "$server" 2>/dev/null || break
    sleep 0.05
  done
  redis-cli -p "$port" ping >/dev/null 2>&1 && break
  kill -9 "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true
  server=""
done
[[ -n $server ]] || { echo "redis_worker_test: redis-server did not start"; exit 1; }
cli() { redis-cli -p "$port" "$@"; }

cli XGROUP CREATE jobs workers '$' MKSTREAM >/dev/null
for name in one two; do
  "$exe" --port "$port" --consumer "$name" --idle-ms 3000 --cpu-us 100 --wait-us 500 >"$work/$name.out" 2>&1 &
  instances+=($!)
done
# Both instances wait on the empty stream before the first job arrives.
for _ in $(seq 400); do
  consumers=$(cli --raw XINFO GROUPS jobs | awk 'previous == "consumers" {print; exit} {previous = $0}')
  [[ ${consumers:-0} -ge 2 ]] && break
  sleep 0.05
done
bash "$here/redis_producer.sh" "$port" "$jobs"
head -c 200000 /dev/zero | tr '\0' x | cli -x XADD jobs '*' text >/dev/null
status=0
for pid in "${instances[@]}"; do
  wait "$pid" || status=1
done
cat "$work/one.out" "$work/two.out"
((status == 0)) || { echo "redis_worker_test: an instance failed"; exit 1; }

results=$(cli HLEN jobs:results)
pending=$(cli --raw XPENDING jobs workers | head -1)
dead=$(cli XLEN jobs:dead)
one=$(sed -n 's/^instance one: \([0-9]*\) jobs acknowledged.*/\1/p' "$work/one.out")
two=$(sed -n 's/^instance two: \([0-9]*\) jobs acknowledged.*/\1/p' "$work/two.out")
echo "redis_worker_test: $results results, $pending pending, $dead dead letters; instance one did ${one:-?}, two did ${two:-?}"
[[ $results == "$jobs" ]] || { echo "redis_worker_test: expected $jobs results"; exit 1; }
[[ $pending == 0 ]] || { echo "redis_worker_test: jobs left pending"; exit 1; }
[[ $dead == 1 ]] || { echo "redis_worker_test: expected the 200 KB job in jobs:dead"; exit 1; }
grep -q "^dead letter .*over Queue::max_job_bytes" "$work/one.out" "$work/two.out" ||
  { echo "redis_worker_test: no instance printed the dead letter"; exit 1; }
[[ $((one + two)) == "$jobs" ]] || { echo "redis_worker_test: the instances acknowledged $((one + two)) jobs"; exit 1; }
((one > 0 && two > 0)) || { echo "redis_worker_test: one instance did all the work"; exit 1; }
echo "redis_worker_test: passed"
