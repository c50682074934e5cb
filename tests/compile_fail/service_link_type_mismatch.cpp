// expect-error: plumb::Pipeline: a stage's input must match the previous stage's output
// A Service's stages follow the Pipeline's rules: each takes what the stage before it yields.
#include <plumb/plumb.hpp>

plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
plumb::Generator<long> widen(plumb::Stream<short> in) {
  for (short x : in) co_yield x;
}

int main() {
  plumb::Service service{plumb::stage(twice), plumb::stage(widen)};
  service.start();
}
