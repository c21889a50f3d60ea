// The SSAST Frame teacher: parity with the official code (tests/golden/ssast_tiny.safetensors, made
// with timm 0.4.5 + SSAST's ASTModel + HEAR's src/ssast.py), the official checkpoint's key layout
// (tests/golden/ssast_base_frame_checkpoint_keys.txt), loading rules and the input recipe.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "hear/audio/frontend.h"
#include "hear/error.h"
#include "hear/io/safetensors.h"
#include "hear/io/sha256.h"
#include "hear/teacher/ssast.h"
#include "test_util.h"

namespace hear::teacher {
namespace {

const io::SafetensorsContent& ssast_golden() {
  static const io::SafetensorsContent content =
      io::load_safetensors(test::data_path("ssast_tiny.safetensors"));
  return content;
}

const at::Tensor& ssast_golden_tensor(const std::string& key) {
  const auto& t = ssast_golden().tensors;
  auto it = t.find(key);
  if (it == t.end()) throw std::runtime_error("ssast_tiny.safetensors has no tensor " + key);
  return it->second;
}

SsastTeacher load_ssast_tiny() {
  SsastTeacher teacher(SsastOptions::tiny());
  load_ssast_state(*teacher, ssast_golden().tensors, "ssast_tiny.safetensors", "weights/");
  return teacher;
}

double expect_ssast_close(const std::string& name, const at::Tensor& got, const at::Tensor& ref,
                          double tolerance = 1e-4) {
  EXPECT_EQ(got.sizes(), ref.sizes()) << name;
  if (got.sizes() != ref.sizes()) return 1e30;
  const double err = test::max_abs_diff(got, ref);
  std::cout << "[parity] ssast_tiny " << name << ": max abs err " << err << " (max |ref| "
            << ref.abs().max().item<double>() << ")\n";
  EXPECT_LE(err, tolerance) << name;
  return err;
}

struct SsastKeyLine {
  std::string dtype;
  std::vector<int64_t> shape;
};

// "name<TAB>dtype<TAB>[a, b]" per line.
std::map<std::string, SsastKeyLine> read_ssast_key_file(const std::string& name) {
  std::ifstream in(test::data_path(name));
  if (!in) throw std::runtime_error("cannot read " + name);
  std::map<std::string, SsastKeyLine> out;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto t1 = line.find('\t'), t2 = line.find('\t', t1 + 1);
    SsastKeyLine k;
    k.dtype = line.substr(t1 + 1, t2 - t1 - 1);
    std::string dims = line.substr(t2 + 1);
    for (char& c : dims) {
      if (c == '[' || c == ']' || c == ',') c = ' ';
    }
    std::istringstream ds(dims);
    int64_t d;
    while (ds >> d) k.shape.push_back(d);
    out[line.substr(0, t1)] = k;
  }
  return out;
}

// The golden weights re-keyed as the official DataParallel checkpoint stores them.
io::TensorMap ssast_tiny_as_checkpoint() {
  io::TensorMap out;
  for (const auto& [key, t] : ssast_golden().tensors) {
    if (key.rfind("weights/v.", 0) == 0) out["module." + key.substr(8)] = t;
  }
  out["module.p_input_fdim"] = torch::tensor(int64_t{128});
  out["module.p_input_tdim"] = torch::tensor(int64_t{1024});
  out["module.mask_embed"] = torch::zeros({1, 1, 64});
  out["module.cpredlayer.0.weight"] = torch::zeros({64, 64});
  out["module.gpredlayer.2.bias"] = torch::zeros({256});
  return out;
}

std::string ssast_load_error(const io::TensorMap& tensors) {
  SsastTeacher teacher(SsastOptions::tiny());
  try {
    load_ssast_state(*teacher, tensors, "test.safetensors");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(SsastParity, HiddenStatesFromNormalizedFbank) {
  auto teacher = load_ssast_tiny();
  auto d = teacher->forward_debug(ssast_golden_tensor("fbank_normalized").unsqueeze(0));
  expect_ssast_close("patch_embed_out", d.patch_embed_out[0],
                     ssast_golden_tensor("debug/patch_embed_out"));
  expect_ssast_close("tokens_in", d.tokens_in[0], ssast_golden_tensor("debug/tokens_in"));
  ASSERT_EQ(d.block_outputs.size(), 2u);
  expect_ssast_close("block0_out", d.block_outputs[0][0], ssast_golden_tensor("debug/block0_out"));
  expect_ssast_close("block1_out", d.block_outputs[1][0], ssast_golden_tensor("debug/block1_out"));
  expect_ssast_close("hidden_states (from fbank_normalized)", d.hidden_states[0],
                     ssast_golden_tensor("hidden_states"));
  EXPECT_TRUE(torch::equal(teacher->forward(ssast_golden_tensor("fbank_normalized").unsqueeze(0)),
                           d.hidden_states));
}

TEST(SsastParity, HiddenStatesFromWaveform) {
  auto teacher = load_ssast_tiny();
  const at::Tensor& wave = ssast_golden_tensor("waveform");
  const at::Tensor input = teacher_input(wave, teacher->options());
  expect_ssast_close("teacher_input vs fbank_normalized", input,
                     ssast_golden_tensor("fbank_normalized"));
  // The 426 padded rows hold the normalized zero, not 0.
  EXPECT_NEAR(input[1023][5].item<double>(), 0.46703237, 1e-6);
  EXPECT_NEAR(input.slice(0, 598).sub(0.46703237).abs().max().item<double>(), 0.0, 1e-6);

  auto out = teacher->features(wave.unsqueeze(0), torch::tensor({wave.size(0)}));
  expect_ssast_close("hidden_states (from waveform)", out.features[0],
                     ssast_golden_tensor("hidden_states"));
  EXPECT_EQ(out.valid_patches[0].item<int64_t>(), 299);  // 598 frames
  EXPECT_EQ(out.features.scalar_type(), torch::kFloat);
  EXPECT_FALSE(out.features.requires_grad());
}

TEST(SsastTeacherTest, ClipResultDoesNotDependOnItsBatch) {
  torch::manual_seed(3);
  SsastTeacher teacher(SsastOptions::tiny());
  at::Tensor a = torch::randn({48000}) * 0.1 + 0.05;  // a DC offset: the mean is per clip
  at::Tensor b = torch::randn({30000}) * 0.2;
  at::Tensor batch = torch::zeros({2, 48000});
  batch[0].copy_(a);
  batch[1].narrow(0, 0, 30000).copy_(b);
  auto both = teacher->features(batch, torch::tensor({48000, 30000}));
  auto alone_a = teacher->features(a.unsqueeze(0), torch::tensor({48000}));
  auto alone_b = teacher->features(b.unsqueeze(0), torch::tensor({30000}));
  EXPECT_LE(test::max_abs_diff(both.features[0], alone_a.features[0]), 1e-5);
  EXPECT_LE(test::max_abs_diff(both.features[1], alone_b.features[0]), 1e-5);
  EXPECT_EQ(both.valid_patches[0].item<int64_t>(), 149);  // 298 frames
  EXPECT_EQ(both.valid_patches[1].item<int64_t>(), 93);   // 1 + 29600 / 160 = 186 frames
  EXPECT_EQ(both.features.sizes(), (std::vector<int64_t>{2, 512, 64}));
}

TEST(SsastTeacherTest, FrozenEvalNoAutograd) {
  SsastTeacher teacher(SsastOptions::tiny());
  EXPECT_FALSE(teacher->is_training());
  for (const auto& p : teacher->parameters()) EXPECT_FALSE(p.requires_grad());
  auto out = teacher->forward(torch::randn({1, 1024, 128}, torch::requires_grad()));
  EXPECT_FALSE(out.requires_grad());
}

TEST(SsastTeacherTest, InputLengthRules) {
  SsastOptions o = SsastOptions::tiny();
  // 164,239 samples give exactly 1024 Kaldi frames (400 + 1023 * 160 + 159), one more gives 1025.
  EXPECT_EQ(kaldi_num_frames(164239), 1024);
  EXPECT_EQ(kaldi_num_frames(164240), 1025);
  EXPECT_EQ(kaldi_num_frames(399), 0);
  EXPECT_EQ(kaldi_num_frames(96000), 598);
  EXPECT_EQ(teacher_valid_patches(96000), 299);
  EXPECT_EQ(audio::patch_count(96000), 300);
  EXPECT_EQ(audio::patch_count(16000), 50);
  EXPECT_EQ(teacher_input(torch::randn({164239}), o).sizes(), (std::vector<int64_t>{1024, 128}));
  try {
    teacher_input(torch::randn({164240}), o);
    FAIL() << "a 1025-frame clip was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("164240 samples"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1025 Kaldi frames"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("at most 164239 samples"), std::string::npos) << e.what();
  }
  // Shorter than one Kaldi frame: all padding, no patch is valid.
  EXPECT_NEAR(teacher_input(torch::randn({300}), o).sub(0.46703237).abs().max().item<double>(), 0.0,
              1e-6);
}

TEST(SsastCheckpoint, BaseModelKeysMatchTheOfficialCheckpoint) {
  const auto file = read_ssast_key_file("ssast_base_frame_checkpoint_keys.txt");
  ASSERT_EQ(file.size(), 166u);
  SsastTeacher base;  // SSAST-Base-Frame-400 defaults
  std::set<std::string> needed;
  int64_t file_numel_needed = 0;
  for (const auto& item : base->named_parameters()) {
    const std::string key = "module." + item.key();
    needed.insert(key);
    auto it = file.find(key);
    ASSERT_NE(it, file.end()) << key << " is not in the official checkpoint";
    EXPECT_EQ(it->second.shape, item.value().sizes().vec()) << key;
    EXPECT_EQ(it->second.dtype, "float32") << key;
    int64_t n = 1;
    for (auto d : it->second.shape) n *= d;
    file_numel_needed += n;
  }
  EXPECT_EQ(needed.size(), 151u);
  EXPECT_TRUE(base->named_buffers().is_empty());
  std::vector<std::string> ignored;
  for (const auto& [key, line] : file) {
    if (needed.count(key)) continue;
    ignored.push_back(key);
    EXPECT_TRUE(is_ignored_ssast_key(key.substr(7))) << key << " would be reported unexpected";
  }
  const std::vector<std::string> want_ignored = {
      "module.cpredlayer.0.bias",   "module.cpredlayer.0.weight", "module.cpredlayer.2.bias",
      "module.cpredlayer.2.weight", "module.gpredlayer.0.bias",   "module.gpredlayer.0.weight",
      "module.gpredlayer.2.bias",   "module.gpredlayer.2.weight", "module.mask_embed",
      "module.p_input_fdim",        "module.p_input_tdim",        "module.v.head.bias",
      "module.v.head.weight",       "module.v.head_dist.bias",    "module.v.head_dist.weight"};
  EXPECT_EQ(ignored, want_ignored);
  // 768 + 768 + 514*768 + (768*256 + 768) + 12 * 7,087,872 + 2 * 768
  EXPECT_EQ(base->parameter_count(), 85649664);
  EXPECT_EQ(file_numel_needed, 85649664);
  EXPECT_EQ(base->options().head_dim(), 64);
}

TEST(SsastCheckpoint, LoadsOfficialLayoutAndReportsBadKeysByName) {
  const io::TensorMap ckpt = ssast_tiny_as_checkpoint();
  SsastTeacher teacher(SsastOptions::tiny());
  auto report = load_ssast_state(*teacher, ckpt, "ckpt.safetensors");
  EXPECT_EQ(report.loaded.size(), 31u);
  EXPECT_EQ(report.ignored.size(), 9u);  // p_input x2, mask_embed, 2 pred layers, 4 v.head*
  auto ref = load_ssast_tiny();
  EXPECT_EQ(teacher_weights_sha256(*teacher), teacher_weights_sha256(*ref));

  auto bad = ckpt;
  bad["module.p_input_tdim"] = torch::tensor(int64_t{512});
  EXPECT_NE(ssast_load_error(bad).find("module.p_input_tdim is 512, expected 1024"),
            std::string::npos)
      << ssast_load_error(bad);

  bad = ckpt;
  bad["module.v.pos_embed"] = torch::zeros({1, 1214, 64});
  auto msg = ssast_load_error(bad);
  EXPECT_NE(msg.find("v.pos_embed: file [1, 1214, 64] vs model [1, 514, 64]"), std::string::npos)
      << msg;
  EXPECT_NE(msg.find("test.safetensors"), std::string::npos) << msg;

  bad = ckpt;
  bad["module.v.patch_embed.proj.weight"] = torch::zeros({64, 1, 16, 16});
  msg = ssast_load_error(bad);
  EXPECT_NE(msg.find("only an SSAST Frame model"), std::string::npos) << msg;

  bad = ckpt;
  bad.erase("module.v.blocks.1.mlp.fc2.bias");
  bad["module.v.blocks.2.norm1.weight"] = torch::zeros({64});
  msg = ssast_load_error(bad);
  EXPECT_NE(msg.find("1 missing: v.blocks.1.mlp.fc2.bias"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1 unexpected: v.blocks.2.norm1.weight"), std::string::npos) << msg;

  // A failed load leaves the weights alone.
  EXPECT_EQ(teacher_weights_sha256(*teacher), teacher_weights_sha256(*ref));
}

// scripts/convert_ssast_checkpoint.py on a DataParallel .pth with the official layout (the golden
// weights under `module.`, int64 p_input_* scalars, pre-training heads) -> load_ssast_weights.
TEST(SsastCheckpoint, ConvertedOfficialPthLoads) {
  test::TempDir dir;
  const std::string script = R"PY(
import collections, sys, torch
sys.path.insert(0, sys.argv[1] + "/scripts")
from convert_reference_checkpoint import read_safetensors
golden, _ = read_safetensors(sys.argv[1] + "/tests/golden/ssast_tiny.safetensors")
sd = collections.OrderedDict()
sd["module.p_input_fdim"] = torch.nn.Parameter(torch.tensor(128), requires_grad=False).data
sd["module.p_input_tdim"] = torch.tensor(1024)
sd["module.mask_embed"] = torch.zeros(1, 1, 64)
for k, v in golden.items():
    if k.startswith("weights/v."):
        sd["module." + k[len("weights/"):]] = v
sd["module.cpredlayer.0.weight"] = torch.zeros(64, 64)
sd["module.gpredlayer.2.bias"] = torch.zeros(256)
torch.save(sd, sys.argv[2])
)PY";
  { std::ofstream(dir / "make.py") << script; }
  const std::string src = HEAR_SOURCE_DIR;
  std::string out;
  ASSERT_EQ(test::run_command("/usr/bin/python3 " + (dir / "make.py").string() + " " + src + " " +
                                  (dir / "ssast.pth").string(),
                              &out),
            0)
      << out;
  ASSERT_EQ(test::run_command("/usr/bin/python3 " + src + "/scripts/convert_ssast_checkpoint.py " +
                                  (dir / "ssast.pth").string() + " " +
                                  (dir / "ssast.safetensors").string(),
                              &out),
            0)
      << out;
  SsastTeacher teacher(SsastOptions::tiny());
  auto report = load_ssast_weights(*teacher, dir / "ssast.safetensors");
  EXPECT_EQ(report.loaded.size(), 31u);
  EXPECT_EQ(report.ignored.size(), 9u);
  const at::Tensor wave = ssast_golden_tensor("waveform");
  auto features = teacher->features(wave.unsqueeze(0), torch::tensor({wave.size(0)}));
  expect_ssast_close("hidden_states (converted .pth)", features.features[0],
                     ssast_golden_tensor("hidden_states"));
}

TEST(SsastCheckpoint, WeightsFingerprintFollowsTheValues) {
  torch::manual_seed(1);
  SsastTeacher a(SsastOptions::tiny());
  SsastTeacher b(SsastOptions::tiny());
  const std::string ha = teacher_weights_sha256(*a);
  EXPECT_EQ(ha.size(), 64u);
  EXPECT_NE(ha, teacher_weights_sha256(*b));
  io::TensorMap state;
  for (const auto& item : a->named_parameters()) state[item.key()] = item.value();
  load_ssast_state(*b, state, "a");
  EXPECT_EQ(ha, teacher_weights_sha256(*b));
  {
    torch::NoGradGuard g;
    b->v->norm->bias[3] += 1e-3;
  }
  EXPECT_NE(ha, teacher_weights_sha256(*b));
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(io::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(io::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(io::sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  io::Sha256 h;  // a million 'a' fed in uneven pieces
  const std::string chunk(997, 'a');
  size_t left = 1000000;
  while (left > 0) {
    const size_t n = std::min(left, chunk.size());
    h.update(chunk.data(), n);
    left -= n;
  }
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  test::TempDir dir;
  std::ofstream(dir / "x.bin", std::ios::binary) << "abc";
  EXPECT_EQ(io::sha256_file(dir / "x.bin"), io::sha256_hex("abc"));
  EXPECT_THROW(io::sha256_file(dir / "missing.bin"), Error);
}

}  // namespace hear::teacher
