// expect-error: plumb::stage: the callable takes a different number of constants than plumb::stage\(\) was given
// expect-error: constants_count_matches<plumb::detail::at_stage<1>, plumb::detail::takes<1>, plumb::detail::given<0> ?>
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
