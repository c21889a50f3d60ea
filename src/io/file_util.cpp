#include "hear/io/file_util.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "hear/error.h"

namespace hear::io {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw Error("cannot open '" + path.string() + "': " + std::strerror(errno));
  }
  std::ostringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) throw Error("error while reading '" + path.string() + "'");
  return buffer.str();
}

void write_file_atomic(const std::filesystem::path& path, const std::string& bytes) {
  namespace fs = std::filesystem;
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec) {
      throw Error("cannot create directory '" + path.parent_path().string() + "': " + ec.message());
    }
  }
  fs::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  // POSIX calls rather than a stream, so a failure says why (ENOSPC, EFBIG under RLIMIT_FSIZE).
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot write '" + tmp.string() + "': " + std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    ::close(fd);
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw Error(std::string(what) + " '" + tmp.string() + "' (for '" + path.string() +
                "'): " + std::strerror(err));
  };
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t n = ::write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) fail("error while writing");
    p += n;
    left -= static_cast<size_t>(n);
  }
  // On disk before the rename makes it visible, so a power cut cannot leave a renamed empty file.
  if (::fsync(fd) != 0) fail("error while flushing");
  if (::close(fd) != 0) {
    const int err = errno;
    std::error_code ignored;
    fs::remove(tmp, ignored);
    throw Error("error while closing '" + tmp.string() + "': " + std::strerror(err));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp);
    throw Error("cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
  }
}

}  // namespace hear::io
