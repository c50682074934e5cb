// expect-error: plumb::stage: the constants do not fit the callable
// expect-error: CheckStage<1, 3,
// The processor needs a constant (the increment) that is not given.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
plumb::Generator<int> plus(plumb::Stream<int> in, int increment) {
  for (int x : in) co_yield x + increment;
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(plus), plumb::stage(total)};
  (void)pipeline;
}
