#pragma once
// NumPy .npy (format 1.0) writer and reader for the dtypes we exchange: float32, float64,
// int64, int32, bool. Files load with numpy.load.
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>

namespace hear::io {

// Serializes a tensor (copied to contiguous CPU) as .npy bytes, C order, little-endian.
std::string serialize_npy(const at::Tensor& tensor);
// Writes atomically (temp file, then rename).
void save_npy(const std::filesystem::path& path, const at::Tensor& tensor);
// Reads .npy bytes written by numpy or by save_npy (C order, little-endian, the dtypes above).
at::Tensor parse_npy(const std::string& bytes, const std::string& source);
at::Tensor load_npy(const std::filesystem::path& path);

// A float32 (rows, cols) .npy written row block by row block, for outputs too long to hold
// (hear-embed --stream): the row count is known up front, close() renames the temp file into
// place once all rows are in; destroyed before that, it removes the temp file.
class NpyRowWriter {
 public:
  NpyRowWriter(const std::filesystem::path& path, int64_t rows, int64_t cols);
  ~NpyRowWriter();
  NpyRowWriter(const NpyRowWriter&) = delete;
  NpyRowWriter& operator=(const NpyRowWriter&) = delete;
  void append(const at::Tensor& block);  // (n, cols)
  void close();                          // throws unless exactly `rows` rows were appended

 private:
  std::filesystem::path path_, tmp_;
  std::ofstream out_;
  int64_t rows_, cols_, written_ = 0;
  bool closed_ = false;
};

}  // namespace hear::io
