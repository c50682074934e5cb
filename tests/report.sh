# SPDX-License-Identifier: MIT
# tests/run.sh's bookkeeping (sourced): the wall time of each step, each test's result and time
# (from CTest's output), and the report at the end. Files in $results_dir, one line per record:
#   steps.tsv  configuration, step, seconds, exit status
#   tests.tsv  configuration, seconds, result (Passed, Failed, Timeout, ...), test name

report_start() {
  results_dir=$1
  mkdir -p "$results_dir"
  : >"$results_dir/steps.tsv"
  : >"$results_dir/tests.tsv"
  report_started=$(date +%s)
}

step_begin() {
  step_config=$1 step_name=$2 step_started=$(date +%s)
}

# Records the step begun last, with its exit status; returns that status.
step_end() {
  printf '%s\t%s\t%s\t%s\n' "$step_config" "$step_name" "$(($(date +%s) - step_started))" "$1" \
    >>"$results_dir/steps.tsv"
  return "$1"
}

# report_ctest CONFIG LOG: the results that lines such as
#   "  7/248 Test   #9: example.search ..........   Passed    0.08 sec"
#   " 17/278 Test  #18: example.x.bad_option ....***Failed  Required regular expression not
#   found. Regex=[...]  0.01 sec"   (the time may come lines later)
# in LOG report.
report_ctest() {
  awk -v config="$1" '
    function flush() { if (name != "") printf "%s\t%s\t%s\t%s\n", config, time, result, name; name = "" }
    /^ *[0-9]+\/[0-9]+ +Test +#[0-9]+: / {
      flush()
      line = $0
      sub(/^ *[0-9]+\/[0-9]+ +Test +#[0-9]+: /, "", line)
      name = line; sub(/ \.+ *(\*\*\*)?[A-Z].*$/, "", name)
      result = "Passed"
      if (match(line, /\*\*\*[A-Za-z]+/)) result = substr(line, RSTART + 3, RLENGTH - 3)
      time = 0
    }
    name != "" && / [0-9.]+ sec$/ { time = $(NF - 1); flush() }
    END { flush() }' "$2" >>"$results_dir/tests.tsv"
}

# report_stress CONFIG REPEAT RUNS STATUS: the [stress] loop, one record for all its runs.
report_stress() {
  local result=Passed
  (($4 == 0)) || result="Failed in run $3"
  printf '%s\t%s\t%s\t%s\n' "$1" "0" "$result" "[stress] tests x$2" >>"$results_dir/tests.tsv"
}

duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

report_end() {
  local total=$(($(date +%s) - report_started)) config
  echo
  echo "=== plumb tests: report ($1)"
  echo "wall time per configuration:"
  for config in $(cut -f1 "$results_dir/steps.tsv" | awk '!seen[$0]++'); do
    awk -F'\t' -v config="$config" '
      function d(s) { return sprintf("%dm%02ds", s / 60, s % 60) }
      $1 == config { sum += $3; steps = steps sep $2 " " d($3) ($4 == 0 ? "" : " FAILED"); sep = ", " }
      END { printf "  %-6s %8s  (%s)\n", config, d(sum), steps }' "$results_dir/steps.tsv"
  done
  echo "slowest tests:"
  grep -v $'\t\\[stress\\] tests x' "$results_dir/tests.tsv" | sort -t$'\t' -k2,2 -rn | head -10 |
    awk -F'\t' '{ printf "  %7.1f s  %-6s %s\n", $2, $1, $4 }'
  local passed failed steps_failed
  passed=$(awk -F'\t' '$3 == "Passed"' "$results_dir/tests.tsv" | grep -vc $'\t\\[stress\\] tests x')
  failed=$(awk -F'\t' '$3 != "Passed"' "$results_dir/tests.tsv" | wc -l)
  steps_failed=$(awk -F'\t' '$4 != 0' "$results_dir/steps.tsv" | wc -l)
  if ((failed > 0)); then
    echo "failed:"
    awk -F'\t' '$3 != "Passed" { printf "  %-6s %s (%s)\n", $1, $4, $3 }' "$results_dir/tests.tsv"
  fi
  local loops
  loops=$(grep $'\t\\[stress\\] tests x' "$results_dir/tests.tsv" | cut -f4 | sort -u | tr '\n' ' ')
  if ((failed == 0 && steps_failed == 0)); then
    echo "plumb tests: PASSED: $passed tests, ${loops:-no [stress] loop }in $(duration "$total") ($1)"
    return 0
  fi
  echo "plumb tests: FAILED: $failed of $((passed + failed)) tests and $steps_failed steps" \
    "failed (see above), in $(duration "$total") ($1)"
  return 1
}
