// expect-error: plumb::Pipeline: take the plumb::Stream<T> parameter by value
// expect-error: stream_taken_by_value<plumb::detail::at_stage<1>,
// The sink takes its Stream by lvalue reference.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
long total(plumb::Stream<int>& in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(total)};
  (void)pipeline;
}
