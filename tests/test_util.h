#pragma once
// Helpers shared by the tests: golden-data paths and self-removing temporary directories.
#include <ATen/core/Tensor.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "hear/error.h"

namespace hear::test {

// tests/golden/<name> (golden vectors, described in tests/golden/README.md)
std::filesystem::path data_path(const std::string& name);

// A fresh directory under the system temp dir, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

// max |a - b| as a double (shapes must match; throws otherwise).
double max_abs_diff(const at::Tensor& a, const at::Tensor& b);

// A TCP port on 127.0.0.1 that the kernel reports free now (for loopback process groups).
int free_loopback_port();

// Runs a shell command, returns its exit status (stdout/stderr captured into `output` if given).
int run_command(const std::string& command, std::string* output = nullptr);

// Runs `fn` and expects a hear::Error whose message contains every needle.
template <class Fn>
void expect_error_containing(Fn fn, const std::vector<std::string>& needles) {
  try {
    fn();
    FAIL() << "expected hear::Error";
  } catch (const Error& e) {
    for (const auto& n : needles) {
      EXPECT_NE(std::string(e.what()).find(n), std::string::npos)
          << "'" << n << "' not in: " << e.what();
    }
  }
}

}  // namespace hear::test
