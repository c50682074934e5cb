// expect-error: plumb::Pipeline: a sink must return void or a value
// expect-error: sink_returns_a_value<plumb::detail::at_stage<1>, Pinned>
// A sink whose result cannot be moved out of the run: reported, never a silent no-op.
#include <plumb/plumb.hpp>

struct Pinned {
  int value = 0;
  Pinned() = default;
  Pinned(Pinned&&) = delete;
};
plumb::Generator<int> numbers() {
  co_yield 1;
}
Pinned sink(plumb::Stream<int> in) {
  for (int x : in) (void)x;
  return {};
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers), plumb::stage(sink)};
  (void)pipeline;
}
