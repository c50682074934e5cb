// A stage whose author forgot its co_yield: without one the function is not a coroutine, and
// returns nothing. plumb::plumb turns GCC's and Clang's "no return statement" warning into an
// error (-Werror=return-type), so this must not compile (tests/package/CMakeLists.txt).
#include <plumb/plumb.hpp>

plumb::Generator<int> doubled(plumb::Stream<int> in) {
  for (const int x : in) {
    (void)(x * 2);  // meant: co_yield x * 2;
  }
}

int main() {}
