// expect-error: plumb::Pipeline: a sink must return void or a value, not a reference
// expect-error: sink_returns_a_value<plumb::detail::at_stage<1>,
// The sink returns a reference that would dangle.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
long stored = 0;
long& total(plumb::Stream<int> in) {
  for (int x : in) stored += x;
  return stored;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(total)};
  (void)pipeline;
}
