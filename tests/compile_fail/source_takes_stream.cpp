// expect-error: plumb::Pipeline: the first stage must be a source, callable as Generator<T>.constants.... without a plumb::Stream parameter
// expect-error: source_takes_no_stream<plumb::detail::at_stage<0>,
// The first stage consumes a Stream: nothing feeds it.
#include <plumb/plumb.hpp>

plumb::Generator<int> plus_one(plumb::Stream<int> in) {
  for (int x : in) co_yield x + 1;
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(plus_one), plumb::stage(total)};
  (void)pipeline;
}
