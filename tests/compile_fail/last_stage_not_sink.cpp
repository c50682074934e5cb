// expect-error: plumb::Pipeline: the last stage must be a sink that returns void or a value, not a plumb::Generator, for run\(\); iterate its packets with pipeline.stream\(\)
// expect-error: last_stage_not_sink\.cpp:15:[0-9]+
// The pipeline ends with a processor, and is run() instead of stream()ed.
#include <plumb/plumb.hpp>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
plumb::Generator<int> plus_one(plumb::Stream<int> in) {
  for (int x : in) co_yield x + 1;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(numbers, 3), plumb::stage(plus_one)};
  pipeline.run();
}
