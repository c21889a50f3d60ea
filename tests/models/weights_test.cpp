// models/weights: loading and saving state dicts under reference key names.
#include "hear/models/weights.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/error.h"
#include "hear/io/safetensors.h"
#include "hear/models/hear_classifier.h"
#include "small_hear.h"
#include "test_util.h"

namespace hear::models {
namespace {

TEST(Weights, SaveLoadAndDiagnostics) {
  torch::manual_seed(9);
  HearClassifier a(model_testing::small_hear_options()), b(model_testing::small_hear_options());
  test::TempDir dir;
  save_weights(*a, dir / "a.safetensors");
  auto report = load_weights(*b, dir / "a.safetensors");
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty());
  for (const auto& [k, v] : module_state(*a))
    EXPECT_TRUE(torch::equal(v, module_state(*b).at(k))) << k;

  auto state = module_state(*a);
  // DataParallel-style "module." prefix.
  io::TensorMap wrapped;
  for (const auto& [k, v] : state) wrapped["module." + k] = v;
  EXPECT_NO_THROW(load_state(*b, wrapped));
  // Missing, unexpected and mis-shaped keys are all named.
  auto broken = state;
  broken.erase("decoder.out.bias");
  broken["decoder.extra"] = torch::zeros({2});
  broken["task_model.pos_embed"] = torch::zeros({1, 7, 16});
  broken["preprocessor.spectrogram.window"] = torch::zeros({400});  // ignored by default
  try {
    load_state(*b, broken, {}, "broken.safetensors");
    FAIL() << "expected an error";
  } catch (const hear::Error& e) {
    const std::string msg = e.what();
    for (const char* needle :
         {"broken.safetensors", "missing: decoder.out.bias", "unexpected: decoder.extra",
          "task_model.pos_embed: file [1, 7, 16]"}) {
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  }
  // Another architecture's weights: each list stops after 8 keys and counts the rest.
  LoadReport many;
  for (int i = 0; i < 300; ++i) many.unexpected.push_back("other.layer" + std::to_string(i));
  const std::string summary = many.summary();
  EXPECT_NE(summary.find("300 unexpected: other.layer0, "), std::string::npos) << summary;
  EXPECT_NE(summary.find("other.layer7, ... (292 more)"), std::string::npos) << summary;
  EXPECT_EQ(summary.find("other.layer8"), std::string::npos) << summary;
  broken["task_model.pos_embed"] = state.at("task_model.pos_embed");
  LoadOptions lenient;
  lenient.allow_missing = true;
  lenient.allow_unexpected = true;
  auto r = load_state(*b, broken, lenient);
  EXPECT_EQ(r.missing, std::vector<std::string>{"decoder.out.bias"});
  EXPECT_EQ(r.unexpected, std::vector<std::string>{"decoder.extra"});
  // Sub-module selection by prefix, and saving under a prefix.
  AcousticModel acoustic(model_testing::small_hear_options().acoustic_model);
  LoadOptions sub;
  sub.prefix = "acoustic_model.";
  EXPECT_EQ(load_state(*acoustic, state, sub).loaded.size(), module_state(*acoustic).size());
  save_weights(*acoustic, dir / "enc.safetensors", {}, "encoder.");
  auto saved = io::load_safetensors(dir / "enc.safetensors");
  EXPECT_TRUE(saved.tensors.count("encoder.feature_extractor.conv.weight"));
}

TEST(Weights, AutoPrefixPicksTheFirstCandidatePresent) {
  torch::manual_seed(4);
  HearClassifier full(model_testing::small_hear_options());
  const auto acoustic_keys = module_state(*full->acoustic_model);
  LoadOptions o;
  o.prefix = kAutoPrefix;
  o.auto_prefixes = {"acoustic_model.", "encoder."};
  // A full model: `acoustic_model.*` (also under DataParallel's `module.`), although the file also
  // has keys of other sub-trees.
  EXPECT_EQ(resolve_prefix(module_state(*full), o), "acoustic_model.");
  io::TensorMap wrapped;
  for (const auto& [k, v] : module_state(*full)) wrapped["module." + k] = v;
  EXPECT_EQ(resolve_prefix(wrapped, o), "acoustic_model.");
  // A MAM checkpoint: `encoder.*` next to `tokenizer.encoder.*` (which must not match).
  io::TensorMap mam;
  for (const auto& [k, v] : acoustic_keys) {
    mam["encoder." + k] = v * 2;
    mam["tokenizer.encoder." + k] = v * 3;
  }
  EXPECT_EQ(resolve_prefix(mam, o), "encoder.");
  AcousticModel target(model_testing::small_hear_options().acoustic_model);
  load_state(*target, mam, o);
  for (const auto& [k, v] : module_state(*target)) {
    EXPECT_TRUE(torch::equal(v, acoustic_keys.at(k) * 2)) << k;
  }
  // Bare keys: no candidate matches, so no prefix.
  EXPECT_EQ(resolve_prefix(acoustic_keys, o), "");
  EXPECT_NO_THROW(load_state(*target, acoustic_keys, o));
  // A literal prefix is used as given.
  o.prefix = "encoder.";
  EXPECT_EQ(resolve_prefix(acoustic_keys, o), "encoder.");
  EXPECT_THROW(load_state(*target, acoustic_keys, o), Error);
}

}  // namespace
}  // namespace hear::models
