// expect-success
// The positive control: every kind of callable the rules accept builds.
#include <plumb/plumb.hpp>

#include <string>
#include <vector>

plumb::Generator<int> numbers(int count) {
  for (int i = 0; i < count; ++i) co_yield i;
}
plumb::Generator<long> widen(plumb::Stream<int> in) noexcept {
  for (int x : in) co_yield static_cast<long>(x);
}
struct Scale {
  long factor;
  plumb::Generator<long> operator()(plumb::Stream<long> in) const {
    for (long x : in) co_yield x * factor;
  }
};
void print(plumb::Stream<std::string> in, const std::string& prefix, std::vector<int>& scratch) {
  for (auto& text : in) scratch.push_back(static_cast<int>((prefix + text).size()));
}

int main() {
  plumb::Generator<int> (*source)(int) = &numbers;
  int calls = 0;
  auto to_text = [calls](plumb::Stream<long> in) mutable -> plumb::Generator<std::string> {
    for (long x : in) {
      ++calls;
      co_yield std::to_string(x);
    }
  };
  auto identity = [](auto in) -> plumb::Generator<std::string> {
    for (auto& text : in) co_yield std::move(text);
  };
  plumb::Pipeline pipeline{
      plumb::stage(source, 3),           plumb::stage(widen),
      plumb::stage(Scale{2}).name("x2"), plumb::stage(to_text),
      plumb::stage(identity),            plumb::stage(print, std::string(">"), std::vector<int>{}),
  };
  static_assert(std::is_void_v<decltype(pipeline)::result_type>);
  pipeline.run(plumb::Mode::sequential);
}
