#include "hear/util/strings.h"

#include <gtest/gtest.h>

#include <cstdlib>

#include "hear/error.h"
#include "hear/util/random.h"

namespace hear::util {
namespace {

TEST(Strings, TrimJoinSplitStartsWith) {
  EXPECT_EQ(trim("  a b\t\r\n"), "a b");
  EXPECT_EQ(trim(" \t"), "");
  EXPECT_EQ(join({"a", "b", "c"}), "a, b, c");
  EXPECT_EQ(join({}, "|"), "");
  EXPECT_EQ(split("a\tb\t", '\t'), (std::vector<std::string>{"a", "b", ""}));
  EXPECT_EQ(split("", ','), std::vector<std::string>{""});
  EXPECT_TRUE(starts_with("module.x", "module."));
  EXPECT_FALSE(starts_with("mod", "module."));
}

TEST(Strings, ParseIntNamesTheValue) {
  EXPECT_EQ(parse_int("-42", "x"), -42);
  EXPECT_EQ(parse_int("9223372036854775807", "x"), INT64_MAX);
  for (const char* bad : {"", "4.0", "12a", " 3", "9223372036854775808"}) {
    try {
      parse_int(bad, "index.tsv:3");
      FAIL() << bad;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("index.tsv:3: '" + std::string(bad) + "'"),
                std::string::npos)
          << e.what();
    }
  }
}

TEST(Strings, FormatDoubleExactRoundTripsWithTheFewestDigits) {
  EXPECT_EQ(format_double_exact(0.1), "0.1");
  EXPECT_EQ(format_double_exact(3e-4), "0.0003");
  EXPECT_EQ(format_double_exact(1.0), "1");
  for (double v : {1.0 / 3.0, 2.0 / 3.0 * 1e-300, 123456789.123456789, -0.5e10}) {
    EXPECT_EQ(std::strtod(format_double_exact(v).c_str(), nullptr), v) << v;
  }
}

TEST(Random, SplitMix64IsTheReferenceSequence) {
  // First outputs of splitmix64 seeded with 0 (the published reference values).
  SplitMix64 rng{0};
  EXPECT_EQ(rng(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(rng(), 0x6E789E6AA1B965F4ull);
  EXPECT_NE(mix_seed(1, 2), mix_seed(2, 1));
}

}  // namespace
}  // namespace hear::util
