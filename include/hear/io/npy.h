#pragma once
// NumPy .npy (format 1.0) writer and reader for the dtypes we exchange: float32, float64,
// int64, int32, bool. Files load with numpy.load.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <string>

namespace hear::io {

// Serializes a tensor (copied to contiguous CPU) as .npy bytes, C order, little-endian.
std::string serialize_npy(const at::Tensor& tensor);
// Writes atomically (temp file, then rename).
void save_npy(const std::filesystem::path& path, const at::Tensor& tensor);
// Reads .npy bytes written by numpy or by save_npy (C order, little-endian, the dtypes above).
at::Tensor parse_npy(const std::string& bytes, const std::string& source);
at::Tensor load_npy(const std::filesystem::path& path);

}  // namespace hear::io
