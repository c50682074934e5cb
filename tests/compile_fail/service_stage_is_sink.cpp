// expect-error: plumb::Service: every stage returns plumb::Generator<Out> and yields one output per input; a Service has no sink stage
// A Service ends with a sink: each item's future needs what the last stage yields.
#include <plumb/plumb.hpp>

plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}
void print(plumb::Stream<int> in) {
  for (int x : in) (void)x;
}

int main() {
  plumb::Service service{plumb::stage(twice), plumb::stage(print)};
  service.start();
}
