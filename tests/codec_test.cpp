// SPDX-License-Identifier: MIT
// tests/codec_test.cpp: what may cross a process boundary, and that it survives the trip.

#include <plumb/codec.hpp>
#include <plumb/plumb.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
#include <limits>
#include <new>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <unordered_set>
#include <variant>
#include <vector>

namespace {

struct Point {
  double x;
  double y;
  bool operator==(const Point&) const = default;
};

struct Record {
  std::string name;
  std::vector<std::int32_t> values;
  std::map<std::string, Point> places;
  std::optional<long> id;
  std::variant<int, std::string, std::vector<Point>> payload;
  bool operator==(const Record&) const = default;
};

struct Nested {
  Record record;
  std::array<Point, 2> corners;
  std::tuple<int, std::string> tagged;
  std::pair<std::uint8_t, std::vector<std::string>> named;
  bool operator==(const Nested&) const = default;
};

struct WithPointer {
  int* pointer;
};

struct WithView {
  std::string_view text;
};

class Opaque {  // trivially copyable, not an aggregate: crosses as bytes
 public:
  explicit Opaque(int value = 0) : value_(value) {}
  [[nodiscard]] int value() const { return value_; }

 private:
  int value_;
};

// A type with private state and a user Codec.
class Image {
 public:
  Image() = default;
  Image(int width, std::vector<std::uint8_t> pixels) : width_(width), pixels_(std::move(pixels)) {}
  [[nodiscard]] int width() const { return width_; }
  [[nodiscard]] const std::vector<std::uint8_t>& pixels() const { return pixels_; }
  std::unique_ptr<int> cache;  // not serializable by the built-in rules

 private:
  int width_ = 0;
  std::vector<std::uint8_t> pixels_;
};

// --- Plain structs that Boost.PFR cannot take apart -------------------------------------------

struct PixelRow {  // a C-array member
  int width;
  unsigned char pixels[16];
};
struct Corner {
  int x;
  int y;
};
struct LabelledCorner : Corner {  // a base class
  int label;
};
struct Flags {  // bit-fields
  unsigned ready : 1;
  unsigned level : 3;
  int delta : 12;
};
struct Grid {  // C arrays of structs, nested
  Corner corners[2][3];
};
struct PointersInArray {
  int* pointers[2];
};
struct OnPointerBase : WithPointer {
  int extra;
};
// Not trivially copyable, and beyond PFR: only a Codec could say how they cross.
struct NamedRow {
  std::string name;
  int cells[4];
};
struct NamedCorner : Corner {
  std::string name;
};
struct NamedFlags {  // not trivially copyable, with bit-fields: field by field
  std::string name;
  unsigned level : 3;
  int delta : 12;
};
struct ConstMember {  // field by field
  const int id;
  double value;
};

// A type with its own Codec, inside containers and structs: the Codec is used there too.
struct Celsius {
  double degrees;
};
struct Reading {
  Celsius temperature;
  int sensor;
};
struct ReadingPair {  // Codecs inside a C array: only a Codec<ReadingPair> could say how
  Celsius temperatures[2];
};

// Counts the largest allocation (in bytes) made through it.
inline std::size_t largest_allocation = 0;
template <class T>
struct CountingAllocator {
  using value_type = T;
  CountingAllocator() = default;
  template <class U>
  explicit CountingAllocator(const CountingAllocator<U>&) noexcept {}
  T* allocate(std::size_t count) {
    largest_allocation = std::max(largest_allocation, count * sizeof(T));
    return std::allocator<T>{}.allocate(count);
  }
  void deallocate(T* pointer, std::size_t count) noexcept { std::allocator<T>{}.deallocate(pointer, count); }
  bool operator==(const CountingAllocator&) const = default;
};
using CountedString = std::basic_string<char, std::char_traits<char>, CountingAllocator<char>>;

// A message that claims `count` elements (or bytes) and then holds `tail` zero bytes.
std::vector<std::byte> claim(std::uint64_t count, std::size_t tail) {
  std::vector<std::byte> bytes(sizeof count + tail);
  std::memcpy(bytes.data(), &count, sizeof count);
  return bytes;
}

template <class T>
void require_decode_error(const std::vector<std::byte>& bytes) {
  plumb::Reader reader(bytes);
  CHECK_THROWS_AS(reader.read<T>(), plumb::DecodeError);
}

template <class T>
T round_trip(const T& value) {
  std::vector<std::byte> buffer(plumb::serialized_size(value));
  plumb::Writer writer(buffer);
  writer.write(value);
  REQUIRE(writer.size() == buffer.size());
  plumb::Reader reader(buffer);
  T copy = reader.read<T>();
  CHECK(reader.remaining() == 0);
  return copy;
}

}  // namespace

template <>
struct plumb::Codec<Celsius> {  // as a float: 4 bytes, not 8
  static void encode(const Celsius& value, plumb::Writer& out) {
    out.write(static_cast<float>(value.degrees));
  }
  static Celsius decode(plumb::Reader& in) { return Celsius{in.read<float>()}; }
};

template <>
struct plumb::Codec<Image> {
  static void encode(const Image& image, plumb::Writer& out) {
    out.write(image.width());
    out.write(image.pixels());
  }
  static Image decode(plumb::Reader& in) {
    const int width = in.read<int>();
    return Image(width, in.read<std::vector<std::uint8_t>>());
  }
};

TEST_CASE("the built-in rules accept values and reject pointers and views", "[codec]") {
  STATIC_REQUIRE(plumb::is_serializable_v<int>);
  STATIC_REQUIRE(plumb::is_serializable_v<double>);
  STATIC_REQUIRE(plumb::is_serializable_v<std::byte>);
  STATIC_REQUIRE(plumb::is_serializable_v<Point>);
  STATIC_REQUIRE(plumb::is_serializable_v<Record>);
  STATIC_REQUIRE(plumb::is_serializable_v<Nested>);
  STATIC_REQUIRE(plumb::is_serializable_v<Opaque>);
  STATIC_REQUIRE(plumb::is_serializable_v<Image>);  // through its Codec
  STATIC_REQUIRE(plumb::is_serializable_v<std::unordered_map<int, std::vector<std::string>>>);
  STATIC_REQUIRE(plumb::is_serializable_v<std::set<std::string>>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<int*>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<WithPointer>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<WithView>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<std::string_view>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<std::span<int>>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<std::unique_ptr<int>>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<std::shared_ptr<int>>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<std::vector<int*>>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<std::optional<std::unique_ptr<int>>>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<std::map<int, WithPointer>>);
}

TEST_CASE("structs, strings, maps and containers survive the trip", "[codec]") {
  const Record record{"name", {1, 2, 3}, {{"a", {1.5, 2.5}}, {"b", {-1, 0}}}, 42L,
                      std::vector<Point>{{1, 2}, {3, 4}}};
  CHECK(round_trip(record) == record);
  const Nested nested{record, {Point{0, 0}, Point{1, 1}}, {7, "seven"}, {9, {"x", "", "zz"}}};
  CHECK(round_trip(nested) == nested);
  CHECK(round_trip(std::string("plumb")) == "plumb");
  CHECK(round_trip(std::u32string(U"wide")) == U"wide");
  CHECK(round_trip(std::unordered_map<int, std::string>{{1, "one"}, {2, "two"}}) ==
        std::unordered_map<int, std::string>{{1, "one"}, {2, "two"}});
  CHECK(round_trip(std::unordered_set<int>{3, 4}) == std::unordered_set<int>{3, 4});
  CHECK(round_trip(std::vector<bool>{true, false, true}) == std::vector<bool>{true, false, true});
  CHECK(round_trip(Opaque(5)).value() == 5);
  CHECK(round_trip(std::optional<std::string>{}) == std::nullopt);
  CHECK(round_trip(std::variant<int, std::string>{std::string("v")}) ==
        std::variant<int, std::string>{std::string("v")});
}

TEST_CASE("zero-length containers survive the trip", "[codec]") {
  CHECK(round_trip(std::vector<int>{}).empty());
  CHECK(round_trip(std::string{}).empty());
  CHECK(round_trip(std::vector<std::vector<int>>{{}, {}, {1}}) == std::vector<std::vector<int>>{{}, {}, {1}});
  CHECK(round_trip(std::map<std::string, std::vector<int>>{{"", {}}}) ==
        std::map<std::string, std::vector<int>>{{"", {}}});
  const Record empty{};
  CHECK(round_trip(empty) == empty);
}

TEST_CASE("a user Codec takes precedence and may use the built-in rules for members", "[codec]") {
  const Image image(3, {1, 2, 3});
  const Image copy = round_trip(image);
  CHECK(copy.width() == 3);
  CHECK(copy.pixels() == std::vector<std::uint8_t>{1, 2, 3});
}

TEST_CASE("bulk arrays of plain values start 64-byte aligned, so they can be read in place",
          "[codec]") {
  const std::tuple<std::uint8_t, std::vector<std::int32_t>> value{1, {10, 20, 30}};
  alignas(64) std::array<std::byte, 256> buffer{};
  const std::size_t size = plumb::serialized_size(value);
  REQUIRE(size <= buffer.size());
  plumb::Writer writer(std::span<std::byte>(buffer).first(size));
  writer.write(value);
  // 1 byte, an 8-byte count, padding to 64, then the elements.
  CHECK(size == 64 + 3 * sizeof(std::int32_t));
  std::int32_t first = 0;
  std::memcpy(&first, buffer.data() + 64, sizeof first);
  CHECK(first == 10);
}

TEST_CASE("a truncated message is a DecodeError, not a crash", "[codec]") {
  const std::vector<std::string> value{"abc", "defgh"};
  std::vector<std::byte> buffer(plumb::serialized_size(value));
  plumb::Writer writer(buffer);
  writer.write(value);
  plumb::Reader reader(std::span<const std::byte>(buffer).first(buffer.size() - 2));
  CHECK_THROWS_AS(reader.read<std::vector<std::string>>(), plumb::DecodeError);
  plumb::Reader garbage(std::span<const std::byte>(buffer).first(4));
  CHECK_THROWS_AS(garbage.read<std::vector<std::string>>(), plumb::DecodeError);
}

TEST_CASE("serialized_size counts exactly what write writes", "[codec]") {
  const std::vector<std::int32_t> big(10'000'000, 7);  // 40 MB: one bulk copy
  const std::size_t size = plumb::serialized_size(big);
  CHECK(size == 64 + big.size() * sizeof(std::int32_t));
  std::vector<std::byte> buffer(size);
  plumb::Writer writer(buffer);
  writer.write(big);
  plumb::Reader reader(buffer);
  const auto copy = reader.read<std::vector<std::int32_t>>();
  CHECK(copy.size() == big.size());
  CHECK(copy.back() == 7);
}

TEST_CASE("a hostile string length is a DecodeError before anything is allocated", "[codec]") {
  for (const std::uint64_t length : {std::uint64_t{1} << 30, std::uint64_t{1} << 40,
                                     std::numeric_limits<std::uint64_t>::max()}) {
    INFO("claimed length " << length);
    const auto bytes = claim(length, 0);  // an 8-byte message
    largest_allocation = 0;
    require_decode_error<CountedString>(bytes);
    CHECK(largest_allocation == 0);
    require_decode_error<std::string>(bytes);  // was std::bad_alloc for 2^40
    require_decode_error<std::u32string>(bytes);
  }
  require_decode_error<std::u32string>(claim(3, 11));  // 12 bytes needed, 11 left
}

TEST_CASE("a hostile element count is a DecodeError for every kind of container", "[codec]") {
  const auto huge = claim(std::uint64_t{1} << 40, 64);
  const auto wrapping = claim(0x4000000000000001, 64);  // times 4 wraps to 4
  const auto all_ones = claim(std::numeric_limits<std::uint64_t>::max(), 64);
  for (const auto* bytes : {&huge, &wrapping, &all_ones}) {
    require_decode_error<std::vector<std::int32_t>>(*bytes);
    require_decode_error<std::vector<std::string>>(*bytes);
    require_decode_error<std::vector<bool>>(*bytes);
    require_decode_error<std::vector<std::vector<int>>>(*bytes);
    require_decode_error<std::vector<std::tuple<>>>(*bytes);
    require_decode_error<std::vector<Celsius>>(*bytes);
    require_decode_error<std::map<int, std::string>>(*bytes);
    require_decode_error<std::map<int, std::tuple<>>>(*bytes);
    require_decode_error<std::unordered_map<std::string, int>>(*bytes);
    require_decode_error<std::set<std::tuple<>>>(*bytes);
    require_decode_error<std::unordered_set<int>>(*bytes);
    require_decode_error<std::array<std::string, 2>>(*bytes);
    std::vector<std::byte> present{std::byte{1}};  // an optional that has a value
    present.insert(present.end(), bytes->begin(), bytes->end());
    require_decode_error<std::optional<std::vector<int>>>(present);
    require_decode_error<std::pair<std::uint8_t, std::vector<std::string>>>(present);
  }
  require_decode_error<std::variant<int, std::string>>(claim(2, 8));  // index 2 of 2
}

TEST_CASE("a container never reserves more memory than its message has bytes", "[codec]") {
  // 1,000 strings claimed, room for 1,000 empty ones, but the message ends first.
  using Strings = std::vector<std::string, CountingAllocator<std::string>>;
  const auto bytes = claim(1000, 8 * 1000 - 1);
  largest_allocation = 0;
  require_decode_error<Strings>(bytes);
  CHECK(largest_allocation <= bytes.size());
}

TEST_CASE("containers of elements that encode to nothing survive the trip", "[codec]") {
  CHECK(round_trip(std::vector<std::tuple<>>(1000)).size() == 1000);
  CHECK(round_trip(std::map<int, std::tuple<>>{{1, {}}, {2, {}}}).size() == 2);
  CHECK(round_trip(std::set<std::tuple<>>{std::tuple<>{}}).size() == 1);
  CHECK(round_trip(std::vector<std::array<int, 0>>(5)).size() == 5);
  // One byte each on the wire, so that a count is bounded by the message's size.
  CHECK(plumb::serialized_size(std::vector<std::tuple<>>(1000)) == 8 + 1000);
}

TEST_CASE("a user Codec is used inside containers and structs too", "[codec]") {
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<ReadingPair>);
  const auto temperatures = round_trip(std::vector<Celsius>{{1.5}, {-2.25}});
  REQUIRE(temperatures.size() == 2);
  CHECK(temperatures[1].degrees == -2.25);
  // A marker byte and a float each: the Codec's 4 bytes, not the struct's 8.
  CHECK(plumb::serialized_size(std::vector<Celsius>{{1.5}, {-2.25}}) == 8 + 2 * (1 + 4));
  CHECK(plumb::serialized_size(Reading{{20.5}, 7}) == 4 + sizeof(int));
  const Reading reading = round_trip(Reading{{20.5}, 7});
  CHECK(reading.temperature.degrees == 20.5);
  CHECK(reading.sensor == 7);
}

TEST_CASE("structs with C arrays, base classes or bit-fields cross as bytes when trivially "
          "copyable, else field by field or not at all",
          "[codec]") {
  STATIC_REQUIRE(plumb::is_serializable_v<PixelRow>);
  STATIC_REQUIRE(plumb::is_serializable_v<LabelledCorner>);
  STATIC_REQUIRE(plumb::is_serializable_v<Flags>);
  STATIC_REQUIRE(plumb::is_serializable_v<Grid>);
  STATIC_REQUIRE(plumb::detail::kFixedEncodedSize<PixelRow> == sizeof(PixelRow));
  STATIC_REQUIRE(plumb::detail::kFixedEncodedSize<LabelledCorner> == sizeof(LabelledCorner));
  STATIC_REQUIRE(plumb::detail::kFixedEncodedSize<Flags> == sizeof(Flags));
  // Pointers are found inside arrays and base classes too.
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<PointersInArray>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<OnPointerBase>);
  // Not trivially copyable and beyond Boost.PFR: not serializable (a ConfigError in process
  // mode only), instead of a compile error in every mode.
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<NamedRow>);
  STATIC_REQUIRE_FALSE(plumb::is_serializable_v<NamedCorner>);
  STATIC_REQUIRE(plumb::is_serializable_v<ConstMember>);
  STATIC_REQUIRE(plumb::is_serializable_v<NamedFlags>);

  const PixelRow row = round_trip(PixelRow{4, {1, 2, 3, 255}});
  CHECK(row.width == 4);
  CHECK(row.pixels[3] == 255);
  const LabelledCorner corner = round_trip(LabelledCorner{{1, 2}, 3});
  CHECK((corner.x == 1 && corner.y == 2 && corner.label == 3));
  const Flags flags = round_trip(Flags{1, 5, -100});
  CHECK((flags.ready == 1 && flags.level == 5 && flags.delta == -100));
  const NamedFlags named = round_trip(NamedFlags{"flags", 6, -2000});
  CHECK((named.name == "flags" && named.level == 6 && named.delta == -2000));
  const ConstMember constant = round_trip(ConstMember{9, 0.5});
  CHECK((constant.id == 9 && constant.value == 0.5));
}

namespace {

template <class T>
plumb::Generator<T> repeat(T value, int count) {
  for (int i = 0; i < count; ++i) co_yield T(value);
}

template <class T>
std::vector<T> collect(plumb::Stream<T> in) {
  std::vector<T> all;
  for (T& value : in) all.push_back(std::move(value));
  return all;
}

}  // namespace

TEST_CASE("process mode: structs with C arrays, base classes and bit-fields cross",
          "[codec][process]") {
  plumb::Pipeline rows{plumb::stage(repeat<PixelRow>, PixelRow{2, {7, 8}}, 3),
                       plumb::stage(collect<PixelRow>)};
  const auto received_rows = rows.run(plumb::Mode::process);
  REQUIRE(received_rows.size() == 3);
  CHECK((received_rows[2].width == 2 && received_rows[2].pixels[1] == 8));

  plumb::Pipeline corners{plumb::stage(repeat<LabelledCorner>, LabelledCorner{{4, 5}, 6}, 3),
                          plumb::stage(collect<LabelledCorner>)};
  const auto received_corners = corners.run(plumb::Mode::process);
  REQUIRE(received_corners.size() == 3);
  CHECK((received_corners[0].x == 4 && received_corners[0].y == 5 && received_corners[0].label == 6));

  plumb::Pipeline flags{plumb::stage(repeat<Flags>, Flags{1, 6, -7}, 3), plumb::stage(collect<Flags>)};
  const auto received_flags = flags.run(plumb::Mode::process);
  REQUIRE(received_flags.size() == 3);
  CHECK((received_flags[1].ready == 1 && received_flags[1].level == 6 && received_flags[1].delta == -7));

  const NamedFlags named{"named", 5, 300};
  plumb::Pipeline named_flags{plumb::stage(repeat<NamedFlags>, named, 2), plumb::stage(collect<NamedFlags>)};
  const auto received_named = named_flags.run(plumb::Mode::process);
  REQUIRE(received_named.size() == 2);
  CHECK(received_named[1].name == "named");
  CHECK((received_named[1].level == 5 && received_named[1].delta == 300));
}

TEST_CASE("structs that cannot cross run in one process and are a ConfigError across processes",
          "[codec][process]") {
  const NamedRow row{"row", {1, 2, 3, 4}};
  plumb::Pipeline rows{plumb::stage(repeat<NamedRow>, row, 3).name("rows"),
                       plumb::stage(collect<NamedRow>).name("keep")};
  for (const plumb::Mode mode : {plumb::Mode::sequential, plumb::Mode::thread}) {
    const auto received = rows.run(mode);
    REQUIRE(received.size() == 3);
    CHECK((received[2].name == "row" && received[2].cells[3] == 4));
  }
  CHECK_THROWS_WITH(rows.run(plumb::Mode::process),
                    Catch::Matchers::Contains("stage 0 ('rows') sends") &&
                        Catch::Matchers::Contains("NamedRow to stage 1 ('keep')") &&
                        Catch::Matchers::Contains("specialize plumb::Codec<"));

  const NamedCorner corner{{1, 2}, "corner"};
  plumb::Pipeline corners{plumb::stage(repeat<NamedCorner>, corner, 2).name("corners"),
                          plumb::stage(collect<NamedCorner>).name("keep")};
  CHECK(corners.run(plumb::Mode::thread).size() == 2);
  CHECK_THROWS_AS(corners.run(plumb::Mode::process), plumb::ConfigError);
}

TEST_CASE("process mode: a vector of empty tuples crosses with its size", "[codec][process]") {
  auto empties = []() -> plumb::Generator<std::vector<std::tuple<>>> {
    for (std::size_t size : {0, 1, 1000}) co_yield std::vector<std::tuple<>>(size);
  };
  auto sizes = [](plumb::Stream<std::vector<std::tuple<>>> in) {
    std::vector<std::size_t> all;
    for (const auto& empty : in) all.push_back(empty.size());
    return all;
  };
  plumb::Pipeline pipeline{plumb::stage(empties), plumb::stage(sizes)};
  CHECK(pipeline.run(plumb::Mode::process) == std::vector<std::size_t>{0, 1, 1000});
}
