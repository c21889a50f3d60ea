#include "hear/io/base64.h"

#include <gtest/gtest.h>

#include "hear/error.h"

namespace hear::io {
namespace {

TEST(Base64, RoundTripsEveryTailLength) {
  std::string bytes;
  for (int n = 0; n < 7; ++n) {
    EXPECT_EQ(base64_decode(base64_encode(bytes)), bytes) << n;
    bytes += static_cast<char>(250 - 37 * n);
  }
  EXPECT_EQ(base64_encode("Man"), "TWFu");
  EXPECT_EQ(base64_encode("Ma"), "TWE=");
  EXPECT_THROW(base64_decode("TW=u"), Error);
  EXPECT_THROW(base64_decode("TWF"), Error);
}

}  // namespace
}  // namespace hear::io
