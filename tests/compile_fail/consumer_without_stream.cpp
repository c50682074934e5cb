// expect-error: plumb::Pipeline: every stage after the first must take a plumb::Stream<T> as its first parameter
// expect-error: consumer_takes_a_stream<plumb::detail::at_stage<1>,
// A second source in the middle of the pipeline.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(numbers, 4), plumb::stage(total)};
  (void)pipeline;
}
