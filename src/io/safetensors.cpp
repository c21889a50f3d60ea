#include "hear/io/safetensors.h"

#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <vector>

#include "hear/error.h"
#include "hear/io/file_util.h"

namespace hear::io {
namespace {

// Headers above this size are refused before anything is allocated for them.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

struct DtypeInfo {
  const char* name;
  at::ScalarType type;
  int64_t bytes;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", at::kDouble, 8},    {"F32", at::kFloat, 4}, {"F16", at::kHalf, 2},
    {"BF16", at::kBFloat16, 2}, {"I64", at::kLong, 8},  {"I32", at::kInt, 4},
    {"I16", at::kShort, 2},     {"I8", at::kChar, 1},   {"U8", at::kByte, 1},
    {"BOOL", at::kBool, 1},
};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes) {
    if (name == d.name) return &d;
  }
  return nullptr;
}

const DtypeInfo& dtype_by_type(at::ScalarType type) {
  for (const auto& d : kDtypes) {
    if (d.type == type) return d;
  }
  throw Error(std::string("safetensors: unsupported tensor dtype ") + c10::toString(type));
}

uint64_t read_u64_le(const char* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

}  // namespace

SafetensorsContent parse_safetensors(const std::string& bytes, const std::string& source) {
  auto fail = [&](const std::string& what) -> Error {
    return Error("safetensors file '" + source + "': " + what);
  };
  if (bytes.size() < 8)
    throw fail("too short to hold a header (" + std::to_string(bytes.size()) + " bytes)");
  const uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > kMaxHeaderBytes) {
    throw fail("header length " + std::to_string(header_len) + " exceeds the 100 MiB limit");
  }
  if (header_len > bytes.size() - 8) {
    throw fail("header length " + std::to_string(header_len) + " runs past the end of the file (" +
               std::to_string(bytes.size()) + " bytes)");
  }
  const uint64_t data_size = bytes.size() - 8 - header_len;
  const char* data = bytes.data() + 8 + header_len;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes.begin() + 8, bytes.begin() + 8 + header_len);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw fail("header is not a JSON object");

  SafetensorsContent out;
  std::vector<Entry> entries;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& key = it.key();
    const auto& value = it.value();
    if (key == "__metadata__") {
      if (!value.is_object()) throw fail("__metadata__ is not an object");
      for (auto m = value.begin(); m != value.end(); ++m) {
        if (!m.value().is_string()) throw fail("__metadata__['" + m.key() + "'] is not a string");
        out.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    if (!value.is_object() || !value.contains("dtype") || !value.contains("shape") ||
        !value.contains("data_offsets")) {
      throw fail("tensor '" + key + "' lacks dtype, shape or data_offsets");
    }
    const auto& jd = value["dtype"];
    if (!jd.is_string()) throw fail("tensor '" + key + "': dtype is not a string");
    Entry e;
    e.name = key;
    e.dtype = dtype_by_name(jd.get<std::string>());
    if (!e.dtype) throw fail("tensor '" + key + "': unknown dtype '" + jd.get<std::string>() + "'");
    const auto& js = value["shape"];
    if (!js.is_array()) throw fail("tensor '" + key + "': shape is not an array");
    // The element count is checked against the byte range, so overflow is refused early.
    uint64_t numel = 1;
    for (const auto& d : js) {
      if (!d.is_number_unsigned())
        throw fail("tensor '" + key + "': shape has a non-natural entry");
      const uint64_t dim = d.get<uint64_t>();
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) ||
          (dim != 0 && numel > data_size / dim + 1)) {
        throw fail("tensor '" + key + "': shape is larger than the file");
      }
      numel *= dim;
      e.shape.push_back(static_cast<int64_t>(dim));
    }
    const auto& jo = value["data_offsets"];
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() ||
        !jo[1].is_number_unsigned()) {
      throw fail("tensor '" + key + "': data_offsets must be two natural numbers");
    }
    e.begin = jo[0].get<uint64_t>();
    e.end = jo[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_size) {
      throw fail("tensor '" + key + "': data_offsets [" + std::to_string(e.begin) + ", " +
                 std::to_string(e.end) + ") out of the data range (" + std::to_string(data_size) +
                 " bytes)");
    }
    if (numel > data_size || numel * static_cast<uint64_t>(e.dtype->bytes) != e.end - e.begin) {
      throw fail(
          "tensor '" + key + "': shape x dtype size (" + std::to_string(numel * e.dtype->bytes) +
          " bytes) does not match its byte range (" + std::to_string(e.end - e.begin) + " bytes)");
    }
    entries.push_back(std::move(e));
  }
  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const Entry* a, const Entry* b) { return a->begin < b->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i]->begin < by_offset[i - 1]->end) {
      throw fail("tensors '" + by_offset[i - 1]->name + "' and '" + by_offset[i]->name +
                 "' have overlapping byte ranges");
    }
  }
  for (const auto& e : entries) {
    at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
    if (e.dtype->type == at::kBool) {
      // Any byte other than 0/1 would be an invalid bool in C++; normalize it.
      auto* p = reinterpret_cast<uint8_t*>(t.data_ptr());
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] != 0;
    }
    out.tensors.emplace(e.name, std::move(t));
  }
  return out;
}

SafetensorsContent load_safetensors(const std::filesystem::path& path) {
  return parse_safetensors(read_file(path), path.string());
}

std::string serialize_safetensors(const TensorMap& tensors, const Metadata& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<at::Tensor> ordered;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw Error("safetensors: '__metadata__' is not a tensor name");
    at::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const auto& dtype = dtype_by_type(t.scalar_type());
    const uint64_t nbytes = static_cast<uint64_t>(t.numel()) * dtype.bytes;
    header[name] = {{"dtype", dtype.name},
                    {"shape", t.sizes().vec()},
                    {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    ordered.push_back(t);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // align the data to 8 bytes
  std::string out(8, '\0');
  uint64_t len = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  out += json;
  out.reserve(out.size() + offset);
  for (const auto& t : ordered) {
    out.append(reinterpret_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  }
  return out;
}

void save_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                      const Metadata& metadata) {
  write_file_atomic(path, serialize_safetensors(tensors, metadata));
}

}  // namespace hear::io
