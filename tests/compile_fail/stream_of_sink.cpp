// expect-error: plumb::Pipeline: stream\(\) iterates the packets of a last stage that yields \(returns plumb::Generator<T>\), but this pipeline ends in a sink; call run\(\)
// The pipeline ends with a sink, and is stream()ed instead of run().
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
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(total)};
  for (auto& x : pipeline.stream()) (void)x;
}
