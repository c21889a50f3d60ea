#include "hear/io/safetensors.h"

#include <torch/types.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
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

}  // namespace

namespace {

Error file_error(const std::string& source, const std::string& what) {
  return Error("safetensors file '" + source + "': " + what);
}

// The header length stored in the first 8 bytes, checked against the limit and the file size.
uint64_t checked_header_length(const char* first8, uint64_t file_size, const std::string& source) {
  const uint64_t header_len = read_u64_le(first8);
  if (header_len > kMaxHeaderBytes) {
    throw file_error(source,
                     "header length " + std::to_string(header_len) + " exceeds the 100 MiB limit");
  }
  if (header_len > file_size - 8) {
    throw file_error(source, "header length " + std::to_string(header_len) +
                                 " runs past the end of the file (" + std::to_string(file_size) +
                                 " bytes)");
  }
  return header_len;
}

SafetensorsHeader parse_header(const char* json_begin, const char* json_end, uint64_t header_len,
                               uint64_t data_size, const std::string& source) {
  auto fail = [&](const std::string& what) { return file_error(source, what); };
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(json_begin, json_end);
  } catch (const nlohmann::json::exception& e) {
    throw fail(std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) throw fail("header is not a JSON object");

  SafetensorsHeader out;
  out.data_start = 8 + header_len;
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
    const DtypeInfo* dtype = dtype_by_name(jd.get<std::string>());
    if (!dtype) throw fail("tensor '" + key + "': unknown dtype '" + jd.get<std::string>() + "'");
    SafetensorsEntry e;
    e.dtype = dtype->type;
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
    if (numel > data_size || numel * static_cast<uint64_t>(dtype->bytes) != e.end - e.begin) {
      throw fail("tensor '" + key + "': shape x dtype size (" +
                 std::to_string(numel * dtype->bytes) + " bytes) does not match its byte range (" +
                 std::to_string(e.end - e.begin) + " bytes)");
    }
    out.tensors.emplace(key, std::move(e));
  }
  std::vector<std::pair<const std::string*, const SafetensorsEntry*>> by_offset;
  for (const auto& [name, e] : out.tensors) by_offset.emplace_back(&name, &e);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    if (by_offset[i].second->begin < by_offset[i - 1].second->end) {
      throw fail("tensors '" + *by_offset[i - 1].first + "' and '" + *by_offset[i].first +
                 "' have overlapping byte ranges");
    }
  }
  return out;
}

}  // namespace

SafetensorsContent parse_safetensors(const std::string& bytes, const std::string& source) {
  if (bytes.size() < 8) {
    throw file_error(source,
                     "too short to hold a header (" + std::to_string(bytes.size()) + " bytes)");
  }
  const uint64_t header_len = checked_header_length(bytes.data(), bytes.size(), source);
  const uint64_t data_size = bytes.size() - 8 - header_len;
  const char* data = bytes.data() + 8 + header_len;
  const SafetensorsHeader header =
      parse_header(bytes.data() + 8, bytes.data() + 8 + header_len, header_len, data_size, source);
  SafetensorsContent out;
  out.metadata = header.metadata;
  for (const auto& [name, e] : header.tensors) {
    at::Tensor t = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype));
    if (e.end > e.begin) std::memcpy(t.data_ptr(), data + e.begin, e.end - e.begin);
    if (e.dtype == at::kBool) {
      // Any byte other than 0/1 would be an invalid bool in C++; normalize it.
      auto* p = reinterpret_cast<uint8_t*>(t.data_ptr());
      for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] != 0;
    }
    out.tensors.emplace(name, std::move(t));
  }
  return out;
}

SafetensorsHeader read_safetensors_header(const std::filesystem::path& path) {
  const std::string source = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) throw file_error(source, "cannot be opened");
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec) throw file_error(source, "cannot be read: " + ec.message());
  char first8[8];
  if (file_size < 8 || !in.read(first8, 8)) {
    throw file_error(source,
                     "too short to hold a header (" + std::to_string(file_size) + " bytes)");
  }
  const uint64_t header_len = checked_header_length(first8, file_size, source);
  std::string json(header_len, '\0');
  if (!in.read(json.data(), static_cast<std::streamsize>(header_len))) {
    throw file_error(source, "cannot read its header");
  }
  return parse_header(json.data(), json.data() + json.size(), header_len,
                      file_size - 8 - header_len, source);
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
