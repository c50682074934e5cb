// expect-error: plumb::Pipeline: a stage's input must match the previous stage's output
// expect-error: input_matches_previous_output<plumb::detail::at_stage<2>, int, double>
// A rejected pipeline whose caller goes on to use run()'s result: the broken rule is the one
// error (no "no conversion" or "invalid operands to ==" error from the lines that use it).
#include <plumb/plumb.hpp>

#include <cstdio>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
long total(plumb::Stream<double> in) {
  double sum = 0;
  for (double x : in) sum += x;
  return static_cast<long>(sum);
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 10), plumb::stage(twice), plumb::stage(total)};
  long sum = pipeline.run(plumb::Mode::thread);
  std::printf("%ld\n", sum);
  return pipeline.run() == 90 ? 0 : 1;
}
