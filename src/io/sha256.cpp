#include "hear/io/sha256.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "hear/error.h"

namespace hear::io {

void Sha256::CtxFree::operator()(evp_md_ctx_st* ctx) const {
  EVP_MD_CTX_free(ctx);
}

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1) {
    throw Error("Sha256: OpenSSL could not initialise a SHA-256 digest");
  }
}

Sha256::~Sha256() = default;
Sha256::Sha256(Sha256&&) noexcept = default;
Sha256& Sha256::operator=(Sha256&&) noexcept = default;

void Sha256::update(const void* data, size_t size) {
  if (!digest_.empty()) throw Error("Sha256: update after hex_digest");
  if (!ctx_) throw Error("Sha256: update on a moved-from object");
  if (size > 0 && EVP_DigestUpdate(ctx_.get(), data, size) != 1) {
    throw Error("Sha256: OpenSSL EVP_DigestUpdate failed");
  }
}

std::string Sha256::hex_digest() {
  if (digest_.empty()) {
    if (!ctx_) throw Error("Sha256: hex_digest on a moved-from object");
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx_.get(), md, &len) != 1 || len != 32) {
      throw Error("Sha256: OpenSSL EVP_DigestFinal_ex failed");
    }
    static const char* kHex = "0123456789abcdef";
    digest_.reserve(2 * len);
    for (unsigned int i = 0; i < len; ++i) {
      digest_ += kHex[md[i] >> 4];
      digest_ += kHex[md[i] & 0xf];
    }
  }
  return digest_;
}

std::string sha256_hex(const std::string& bytes) {
  Sha256 h;
  h.update(bytes);
  return h.hex_digest();
}

std::string sha256_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path.string() + "' to hash it");
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    const auto got = in.gcount();
    if (got > 0) h.update(buf.data(), static_cast<size_t>(got));
  }
  if (in.bad()) throw Error("error reading '" + path.string() + "' while hashing it");
  return h.hex_digest();
}

}  // namespace hear::io
