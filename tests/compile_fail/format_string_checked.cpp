// expect-error: argument not found
// several-errors: fmt reports a bad format string its own way, in several errors
// plumb's own format strings are checked at compile time where PLUMB_CHECK_FORMAT_STRINGS is
// defined (plumb's tests); this one names two arguments and passes one.
#define PLUMB_CHECK_FORMAT_STRINGS
#include <plumb/detail/core/format.hpp>

int main() { return static_cast<int>(plumb::detail::format("{} {}", 1).size()); }
