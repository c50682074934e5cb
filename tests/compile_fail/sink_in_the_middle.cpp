// expect-error: plumb::Pipeline: only the last stage may be a sink
// expect-error: middle_stage_returns_generator<plumb::detail::at_stage<1>,
// The middle stage returns a value instead of a Generator.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}
long total_long(plumb::Stream<long> in) {
  long sum = 0;
  for (long x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(total), plumb::stage(total_long)};
  (void)pipeline;
}
