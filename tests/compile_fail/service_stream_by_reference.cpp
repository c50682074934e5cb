// expect-error: plumb::Pipeline: take the plumb::Stream<T> parameter by value
// A Service's stages follow the Pipeline's rules: the Stream is taken by value.
#include <plumb/plumb.hpp>

plumb::Generator<int> twice(plumb::Stream<int>& in) {
  for (int x : in) co_yield 2 * x;
}

int main() {
  plumb::Service service{plumb::stage(twice)};
  service.start();
}
