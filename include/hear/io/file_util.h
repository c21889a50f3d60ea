#pragma once
// Small file helpers shared by every writer: whole-file reads and atomic writes.
#include <filesystem>
#include <string>

namespace hear::io {

// Reads a whole file as bytes; throws hear::Error naming the file when it cannot be read.
std::string read_file(const std::filesystem::path& path);

// Writes `bytes` to a temporary file beside `path`, flushes it, then renames it over `path`, so a
// reader never sees a half-written file. Creates missing parent directories.
void write_file_atomic(const std::filesystem::path& path, const std::string& bytes);

}  // namespace hear::io
