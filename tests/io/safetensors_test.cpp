#include "hear/io/safetensors.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "test_util.h"

namespace hear::io {
namespace {

std::string with_header(const std::string& json, const std::string& data) {
  std::string out(8, '\0');
  uint64_t n = json.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + json + data;
}

void expect_error(const std::string& bytes, const std::string& needle) {
  try {
    parse_safetensors(bytes, "bad.safetensors");
    FAIL() << "expected an error containing '" << needle << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("bad.safetensors"), std::string::npos) << e.what();
  }
}

TEST(Safetensors, RoundTripsAllDtypesAndMetadata) {
  TensorMap in;
  in["f32"] = torch::randn({3, 4});
  in["f16"] = torch::randn({5}).to(torch::kHalf);
  in["bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  in["i64"] = torch::arange(7, torch::kLong);
  in["i32"] = torch::arange(6, torch::kInt).reshape({2, 3});
  in["bool"] = torch::tensor({true, false, true});
  in["scalar"] = torch::tensor(3.5);
  in["empty"] = torch::zeros({0, 4});
  in["strided"] = torch::randn({4, 3}).t();  // non-contiguous input is written in logical order
  Metadata meta{{"config", "{\"a\": 1}"}, {"note", "hello"}};
  test::TempDir dir;
  save_safetensors(dir / "x.safetensors", in, meta);
  auto out = load_safetensors(dir / "x.safetensors");
  ASSERT_EQ(out.tensors.size(), in.size());
  for (const auto& [name, t] : in) {
    ASSERT_TRUE(out.tensors.count(name)) << name;
    EXPECT_EQ(out.tensors[name].scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(torch::equal(out.tensors[name], t)) << name;
  }
  EXPECT_EQ(out.metadata, meta);
}

TEST(Safetensors, ReadsTheGoldenFiles) {
  auto g = load_safetensors(test::data_path("hear_tiny.safetensors"));
  ASSERT_TRUE(g.tensors.count("clip0/waveform"));
  EXPECT_EQ(g.tensors["clip0/waveform"].dim(), 1);
  EXPECT_EQ(g.tensors["clip0/waveform"].scalar_type(), torch::kFloat);
  EXPECT_FALSE(g.metadata.empty());
}

TEST(Safetensors, RejectsEachKindOfCorruption) {
  const std::string four(4, '\0');
  // Header length beyond the file.
  {
    std::string b = with_header("{}", "");
    b[0] = 100;
    expect_error(b, "runs past the end");
  }
  // Absurd header length: refused before allocating.
  {
    std::string b(8, '\xff');
    expect_error(b, "exceeds");
  }
  expect_error(with_header("{not json", ""), "not valid JSON");
  expect_error(with_header("[1,2]", ""), "not a JSON object");
  expect_error(with_header(R"({"a":{"dtype":"F99","shape":[1],"data_offsets":[0,4]}})", four),
               "unknown dtype 'F99'");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,8]}})", four),
               "out of the data range");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", four),
               "does not match");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", four),
               "out of the data range");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", four),
               "non-natural");
  expect_error(
      with_header(
          R"({"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,4]}})", four),
      "larger than the file");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
                           std::string(8, '\0')),
               "overlapping");
  expect_error(with_header(R"({"a":{"dtype":"F32","shape":[1]}})", four), "lacks");
  expect_error(with_header(R"({"__metadata__":{"x":1}})", ""), "not a string");
}

TEST(Safetensors, MissingFileNamesThePath) {
  try {
    load_safetensors("/nonexistent/dir/w.safetensors");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/w.safetensors"), std::string::npos);
  }
}

TEST(Safetensors, PythonNumpyReadsWhatWeWrite) {
  if (test::run_command("/usr/bin/python3 -c 'import numpy'") != 0) {
    GTEST_SKIP() << "Debian python3-numpy not installed";
  }
  test::TempDir dir;
  TensorMap in;
  in["w"] = torch::arange(12, torch::kFloat).reshape({3, 4}) * 0.5;
  in["n"] = torch::tensor({-3, 7}, torch::kLong);
  save_safetensors(dir / "p.safetensors", in, {{"k", "v"}});
  // An independent reader written from the format description.
  const std::string script = R"PY(
import json, struct, sys, numpy as np
b = open(sys.argv[1], 'rb').read()
n = struct.unpack('<Q', b[:8])[0]
h = json.loads(b[8:8+n]); d = b[8+n:]
def get(k, dt):
    s, e = h[k]['data_offsets']
    return np.frombuffer(d[s:e], dtype=dt).reshape(h[k]['shape'])
assert h['__metadata__'] == {'k': 'v'}
assert (get('w', '<f4') == np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5).all()
assert (get('n', '<i8') == np.array([-3, 7])).all()
print('ok')
)PY";
  write_file_atomic(dir / "check.py", script);
  std::string out;
  EXPECT_EQ(test::run_command("/usr/bin/python3 " + (dir / "check.py").string() + " " +
                                  (dir / "p.safetensors").string(),
                              &out),
            0)
      << out;
}

}  // namespace
}  // namespace hear::io
