#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# examples/redis_producer.sh: fills a Redis Stream with jobs for examples/redis_worker.cpp.
#
#   redis_producer.sh PORT COUNT [STREAM] [HOST]
#
# Each job is a stream entry with the fields n (its number) and text (a sentence to score).
# Uses redis-cli (Debian: redis-tools, a dependency of redis-server); one pipe, so 10 000
# jobs take well under a second.
set -euo pipefail
port=${1:?usage: redis_producer.sh PORT COUNT [STREAM] [HOST]}
count=${2:?usage: redis_producer.sh PORT COUNT [STREAM] [HOST]}
stream=${3:-jobs}
host=${4:-127.0.0.1}
words=(alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu)
for ((n = 0; n < count; ++n)); do
  text="job $n:"
  for ((w = 0; w < 4 + n % 8; ++w)); do text+=" ${words[(n * 7 + w) % ${#words[@]}]}"; done
  printf 'XADD %s * n %d text "%s"\n' "$stream" "$n" "$text"
done | redis-cli -h "$host" -p "$port" >/dev/null
echo "producer: $count jobs added to stream '$stream' on $host:$port"
