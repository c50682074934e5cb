// expect-error: plumb::Pipeline: the first stage .the source. must return plumb::Generator<T>
// expect-error: source_returns_generator<plumb::detail::at_stage<0>,
// The source returns a plain value.
#include <plumb/plumb.hpp>

int answer() { return 42; }
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(answer), plumb::stage(total)};
  (void)pipeline;
}
