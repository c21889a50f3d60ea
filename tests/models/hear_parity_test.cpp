// Parity of the downstream HEAR model with the reference (tests/golden/hear_tiny.safetensors):
// acoustic (two sliding windows for clip0), mixture, task and logits, in eval mode.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/models/hear_classifier.h"
#include "hear/models/weights.h"
#include "model_test_util.h"

namespace hear::models {
namespace {

constexpr const char* kHearGolden = "hear_tiny.safetensors";

HearClassifierOptions hear_tiny_options() {
  HearClassifierOptions o;
  o.acoustic_model = model_testing::acoustic_options_from(
      model_testing::golden_config(kHearGolden, "acoustic_model"));
  auto task = model_testing::golden_config(kHearGolden, "task_model");
  o.task_model.hidden_size = task.at("hidden_size");
  o.task_model.intermediate_size = task.at("intermediate_size");
  o.task_model.num_attention_heads = task.at("num_attention_heads");
  o.task_model.max_length =
      model_testing::golden_tensor(kHearGolden, "weights/task_model.pos_embed").size(1);
  o.decoder.num_classes = std::stoll(model_testing::golden(kHearGolden).metadata.at("num_classes"));
  o.decoder.hidden_size =
      model_testing::golden_tensor(kHearGolden, "weights/decoder.linear.weight").size(0);
  return o;
}

HearClassifier load_hear_tiny() {
  HearClassifier model(hear_tiny_options());
  LoadOptions lo;
  lo.prefix = "weights/";
  auto report = load_state(*model, model_testing::golden(kHearGolden).tensors, lo, kHearGolden);
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty()) << report.summary();
  model->eval();
  return model;
}

audio::Features hear_tiny_features(const std::string& clip) {
  audio::Features f;
  f.log_mel = model_testing::golden_tensor(kHearGolden, clip + "/log_mel").unsqueeze(0);
  f.log_power = model_testing::golden_tensor(kHearGolden, clip + "/log_power").unsqueeze(0);
  f.lengths = torch::tensor({f.log_mel.size(2)}, torch::kLong);
  return f;
}

TEST(HearParity, MatchesReferenceIntermediatesAndLogits) {
  auto model = load_hear_tiny();
  torch::NoGradGuard no_grad;
  for (const std::string clip : {"clip0", "clip1"}) {
    auto out = model->forward_all(hear_tiny_features(clip));
    const int64_t p = model_testing::golden_tensor(kHearGolden, clip + "/acoustic").size(0);
    EXPECT_EQ(out.lengths.item<int64_t>(), p) << clip;
    for (const std::string name : {"acoustic", "mixture", "task", "logits"}) {
      const auto& ref = model_testing::golden_tensor(kHearGolden, clip + "/" + name);
      at::Tensor got = name == "acoustic"  ? out.acoustic
                       : name == "mixture" ? out.mixture
                       : name == "task"    ? out.task
                                           : out.logits;
      got = got.squeeze(0);
      ASSERT_EQ(got.sizes(), ref.sizes()) << clip << "/" << name;
      const double err = model_testing::scaled_error(got, ref);
      std::cout << "[parity] hear_tiny " << clip << "/" << name << " max abs err "
                << test::max_abs_diff(got, ref) << " (scaled " << err << ")\n";
      EXPECT_LE(err, 1e-4) << clip << "/" << name;
    }
  }
}

TEST(HearParity, LongClipUsesTwoWindows) {
  // clip0 has 365 patches: more than one 300-patch window, so the cross-fade path is exercised;
  // running it unwindowed must fail rather than silently differ.
  auto opts = hear_tiny_options();
  EXPECT_GT(model_testing::golden_tensor(kHearGolden, "clip0/acoustic").size(0),
            opts.acoustic_model.max_length);
  opts.acoustic_model.sliding_window = false;
  HearClassifier model(opts);
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_THROW(model->forward(hear_tiny_features("clip0")), hear::Error);
  EXPECT_NO_THROW(model->forward(hear_tiny_features("clip1")));
}

}  // namespace
}  // namespace hear::models
