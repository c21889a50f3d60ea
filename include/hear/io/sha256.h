#pragma once
// SHA-256 (FIPS 180-4) through OpenSSL's EVP interface, used to fingerprint teacher weights for
// the teacher-feature cache and checkpoint files (train/checkpoint.h).
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

struct evp_md_ctx_st;  // OpenSSL's EVP_MD_CTX, kept out of this header

namespace hear::io {

class Sha256 {
 public:
  Sha256();  // throws hear::Error when OpenSSL cannot provide SHA-256
  ~Sha256();
  Sha256(Sha256&&) noexcept;
  Sha256& operator=(Sha256&&) noexcept;
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void update(const void* data, size_t size);
  void update(const std::string& bytes) { update(bytes.data(), bytes.size()); }
  // Lower-case hex digest (64 characters); calling it again returns the same digest. The object
  // must not be updated afterwards (hear::Error).
  std::string hex_digest();

 private:
  struct CtxFree {
    void operator()(evp_md_ctx_st* ctx) const;
  };
  std::unique_ptr<evp_md_ctx_st, CtxFree> ctx_;
  std::string digest_;  // set by the first hex_digest()
};

std::string sha256_hex(const std::string& bytes);
// Streams the file; throws hear::Error naming it when it cannot be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace hear::io
