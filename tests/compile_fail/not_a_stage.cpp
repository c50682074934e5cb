// expect-error: plumb::Pipeline: every argument must be a stage, written plumb::stage
// Passing a bare function instead of plumb::stage(function).
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers() {
  for (int i = 0; i < 3; ++i) co_yield i;
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers), total};
  (void)pipeline;
}
