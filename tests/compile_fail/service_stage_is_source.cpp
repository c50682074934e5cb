// expect-error: plumb::Service: every stage takes a plumb::Stream<In> as its first parameter; a Service has no source stage
// A Service starts with a source: submit() is what feeds its first stage.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
plumb::Generator<int> twice(plumb::Stream<int> in) {
  for (int x : in) co_yield 2 * x;
}

int main() {
  plumb::Service service{plumb::stage(numbers, 3), plumb::stage(twice)};
  service.start();
}
