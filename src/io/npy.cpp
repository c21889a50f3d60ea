#include "hear/io/npy.h"

#include <torch/types.h>

#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <regex>

#include "hear/error.h"
#include "hear/io/file_util.h"

namespace hear::io {
namespace {

const char* descr_of(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return "<f4";
    case at::kDouble:
      return "<f8";
    case at::kLong:
      return "<i8";
    case at::kInt:
      return "<i4";
    case at::kBool:
      return "|b1";
    default:
      throw Error(std::string("npy: unsupported dtype ") + c10::toString(t));
  }
}

at::ScalarType type_of(const std::string& descr, const std::string& source) {
  if (descr == "<f4") return at::kFloat;
  if (descr == "<f8") return at::kDouble;
  if (descr == "<i8") return at::kLong;
  if (descr == "<i4") return at::kInt;
  if (descr == "|b1") return at::kBool;
  throw Error("npy file '" + source + "': unsupported dtype '" + descr + "'");
}

}  // namespace

namespace {

// Magic, version 1.0, header length and the header dict padded to a multiple of 64 bytes.
std::string npy_header(at::ScalarType type, at::IntArrayRef sizes) {
  std::string shape = "(";
  for (size_t i = 0; i < sizes.size(); ++i) {
    shape +=
        std::to_string(sizes[i]) + (sizes.size() == 1 ? "," : (i + 1 < sizes.size() ? ", " : ""));
  }
  shape += ")";
  std::string header = std::string("{'descr': '") + descr_of(type) +
                       "', 'fortran_order': False, 'shape': " + shape + ", }";
  // Magic (6) + version (2) + length (2) + header + '\n' padded to a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out = std::string("\x93NUMPY\x01\x00", 8);
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>((header.size() >> 8) & 0xff);
  return out + header;
}

}  // namespace

NpyRowWriter::NpyRowWriter(const std::filesystem::path& path, int64_t rows, int64_t cols)
    : path_(path), rows_(rows), cols_(cols) {
  if (rows < 0 || cols < 1) {
    throw Error("npy file '" + path.string() + "': invalid shape (" + std::to_string(rows) + ", " +
                std::to_string(cols) + ")");
  }
  tmp_ = path;
  tmp_ += ".tmp." + std::to_string(::getpid());
  std::filesystem::create_directories(path.parent_path().empty() ? "." : path.parent_path());
  out_.open(tmp_, std::ios::binary | std::ios::trunc);
  if (!out_) throw Error("cannot write '" + tmp_.string() + "': " + std::strerror(errno));
  const std::string header = npy_header(at::kFloat, {rows, cols});
  out_.write(header.data(), static_cast<std::streamsize>(header.size()));
}

NpyRowWriter::~NpyRowWriter() {
  if (!closed_) {
    out_.close();
    std::error_code ec;
    std::filesystem::remove(tmp_, ec);
  }
}

void NpyRowWriter::append(const at::Tensor& block) {
  if (block.dim() != 2 || block.size(1) != cols_ || written_ + block.size(0) > rows_) {
    throw Error("npy file '" + path_.string() + "': cannot append " + c10::str(block.sizes()) +
                " after " + std::to_string(written_) + " of (" + std::to_string(rows_) + ", " +
                std::to_string(cols_) + ") rows");
  }
  const at::Tensor t = block.detach().to(torch::kCPU, torch::kFloat).contiguous();
  out_.write(reinterpret_cast<const char*>(t.data_ptr()),
             static_cast<std::streamsize>(t.numel() * t.element_size()));
  if (!out_) throw Error("error while writing '" + tmp_.string() + "' (disk full?)");
  written_ += block.size(0);
}

void NpyRowWriter::close() {
  if (written_ != rows_) {
    throw Error("npy file '" + path_.string() + "': " + std::to_string(written_) + " of " +
                std::to_string(rows_) + " rows written");
  }
  out_.flush();
  out_.close();
  if (!out_) throw Error("error while writing '" + tmp_.string() + "' (disk full?)");
  std::error_code ec;
  std::filesystem::rename(tmp_, path_, ec);
  if (ec) {
    throw Error("cannot rename '" + tmp_.string() + "' to '" + path_.string() +
                "': " + ec.message());
  }
  closed_ = true;
}

std::string serialize_npy(const at::Tensor& tensor) {
  at::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
  std::string out = npy_header(t.scalar_type(), t.sizes());
  out.append(reinterpret_cast<const char*>(t.data_ptr()), t.numel() * t.element_size());
  return out;
}

void save_npy(const std::filesystem::path& path, const at::Tensor& tensor) {
  write_file_atomic(path, serialize_npy(tensor));
}

at::Tensor parse_npy(const std::string& bytes, const std::string& source) {
  auto fail = [&](const std::string& what) { return Error("npy file '" + source + "': " + what); };
  if (bytes.size() < 10 || bytes.compare(0, 6, "\x93NUMPY") != 0) throw fail("not a .npy file");
  const int major = static_cast<unsigned char>(bytes[6]);
  size_t header_len = 0, offset = 0;
  if (major == 1) {
    header_len = static_cast<unsigned char>(bytes[8]) | (static_cast<unsigned char>(bytes[9]) << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) throw fail("truncated header");
    header_len = 0;
    for (int i = 3; i >= 0; --i)
      header_len = (header_len << 8) | static_cast<unsigned char>(bytes[8 + i]);
    offset = 12;
  } else {
    throw fail("unsupported format version " + std::to_string(major));
  }
  if (offset + header_len > bytes.size()) throw fail("header runs past the end of the file");
  const std::string header = bytes.substr(offset, header_len);
  std::smatch m;
  if (!std::regex_search(header, m, std::regex("'descr':\\s*'([^']+)'"))) throw fail("no descr");
  const auto type = type_of(m[1], source);
  if (std::regex_search(header, std::regex("'fortran_order':\\s*True"))) {
    throw fail("Fortran-ordered arrays are not supported");
  }
  if (!std::regex_search(header, m, std::regex("'shape':\\s*\\(([^)]*)\\)")))
    throw fail("no shape");
  std::vector<int64_t> shape;
  const std::string dims = m[1];
  std::regex num("\\d+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), num); it != std::sregex_iterator();
       ++it) {
    shape.push_back(std::stoll(it->str()));
  }
  at::Tensor t = torch::empty(shape, torch::TensorOptions().dtype(type));
  const size_t nbytes = t.numel() * t.element_size();
  if (offset + header_len + nbytes != bytes.size()) {
    throw fail("data size does not match the shape " + dims);
  }
  if (nbytes) std::memcpy(t.data_ptr(), bytes.data() + offset + header_len, nbytes);
  return t;
}

at::Tensor load_npy(const std::filesystem::path& path) {
  return parse_npy(read_file(path), path.string());
}

}  // namespace hear::io
