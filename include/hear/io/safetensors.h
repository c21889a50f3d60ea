#pragma once
// safetensors reader and writer (https://github.com/huggingface/safetensors format):
//   8-byte little-endian header length N, N bytes of JSON
//   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}},
//   then the raw little-endian tensor bytes. Offsets are relative to the end of the header.
//
// Reading validates everything before allocating: header length against the file size, JSON syntax,
// dtype names, shape x dtype size against the byte range, ranges inside the data and not
// overlapping.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace hear::io {

using TensorMap = std::map<std::string, at::Tensor>;
using Metadata = std::map<std::string, std::string>;

struct SafetensorsContent {
  TensorMap tensors;  // CPU tensors, contiguous, owning their memory
  Metadata metadata;  // the "__metadata__" object (string values only, as the format defines)
};

// One tensor of a header: its dtype, shape and byte range relative to the data start.
struct SafetensorsEntry {
  at::ScalarType dtype = at::kFloat;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;
};

struct SafetensorsHeader {
  std::map<std::string, SafetensorsEntry> tensors;
  Metadata metadata;
  uint64_t data_start = 0;  // file offset of the first data byte (8 + header length)
};

// Reads and validates only the header of a file (for readers that fetch tensors lazily, e.g. the
// teacher feature cache); the same checks as load_safetensors. Throws naming the file.
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// Parses a whole safetensors image held in memory; `source` names it in error messages.
SafetensorsContent parse_safetensors(const std::string& bytes, const std::string& source);

// Reads a file. Throws hear::Error naming the file on any problem.
SafetensorsContent load_safetensors(const std::filesystem::path& path);

// Serializes tensors (any device, any layout; they are copied to contiguous CPU) in key order.
std::string serialize_safetensors(const TensorMap& tensors, const Metadata& metadata = {});

// Writes atomically: to `path.tmp.<pid>` first, then renamed over `path`.
void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const Metadata& metadata = {});

}  // namespace hear::io
