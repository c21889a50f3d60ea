#pragma once
// An exclusive lock on a directory for as long as one process uses it: DIR/lock holds the
// holder's pid, and flock(2) on it makes a second holder fail at once. The kernel drops the flock
// when the holder exits in any way (kill -9 included), so a stale lock file never blocks a
// restart; the file itself is left in place (removing it would race a new holder).
#include <filesystem>

namespace hear::util {

class DirectoryLock {
 public:
  // Creates `dir` if needed. Throws hear::Error naming the directory and the holder's pid when
  // another process holds it.
  explicit DirectoryLock(const std::filesystem::path& dir);
  ~DirectoryLock();
  DirectoryLock(const DirectoryLock&) = delete;
  DirectoryLock& operator=(const DirectoryLock&) = delete;

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
  int fd_ = -1;
};

}  // namespace hear::util
