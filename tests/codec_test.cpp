// SPDX-License-Identifier: MIT
// tests/codec_test.cpp: what may cross a process boundary, and that it survives the trip.

#include <plumb/codec.hpp>

#include <catch2/catch.hpp>

#include <array>
#include <cstdint>
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
