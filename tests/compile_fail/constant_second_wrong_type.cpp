// expect-error: plumb::stage: a constant does not convert to its parameter's type
// expect-error: constant_converts_to_parameter<plumb::detail::at_stage<1>, plumb::detail::constant<1>, const char ?\*, int>
// The middle stage's second constant is a string where it takes an int: the error names the
// stage (1), the constant (1), its type and the parameter's.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
plumb::Generator<int> scale(plumb::Stream<int> in, int factor, int offset) {
  for (int x : in) co_yield x * factor + offset;
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(scale, 2, "one"),
                           plumb::stage(total)};
  (void)pipeline;
}
