#pragma once
// SHA-256 (FIPS 180-4), used to fingerprint teacher weights for the teacher-feature cache.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

namespace hear::teacher {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  // Lower-case hex digest (64 characters). The object must not be updated afterwards.
  std::string hex_digest();

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buffer_[64];
  size_t buffered_ = 0;
  uint64_t total_bytes_ = 0;
  bool finished_ = false;
};

std::string sha256_hex(const std::string& bytes);
// Streams the file; throws hear::Error naming it when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace hear::teacher
