// expect-error: plumb::Pipeline: a stage's input must match the previous stage's output
// expect-error: input_matches_previous_output<plumb::detail::at_stage<1>, std::(__cxx11::)?basic_string<char(, std::char_traits<char>, std::allocator<char>)?>, int>
// The source yields strings, the sink reads ints.
#include <plumb/plumb.hpp>

#include <string>

plumb::Generator<std::string> words() {
  co_yield std::string("plumb");
}
long total(plumb::Stream<int> in) {
  long sum = 0;
  for (int x : in) sum += x;
  return sum;
}

int main() {
  plumb::Pipeline pipeline{plumb::stage(words), plumb::stage(total)};
  (void)pipeline;
}
