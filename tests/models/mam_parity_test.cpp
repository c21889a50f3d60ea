// Parity of stage 2 (masked audio modeling) with the reference (tests/golden/mam_tiny.safetensors):
// labels from the frozen tokenizer, logits and loss with the reference's mask injected. The
// golden file has only the waveform, so the log-mel comes from model_testing::reference_log_mel,
// itself checked against hear_tiny's golden log-mel.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "hear/models/mam.h"
#include "hear/models/weights.h"
#include "model_test_util.h"

namespace hear::models {
namespace {

constexpr const char* kMamGolden = "mam_tiny.safetensors";

TEST(MamParity, TestFrontendMatchesGoldenLogMel) {
  for (const std::string clip : {"clip0", "clip1"}) {
    auto wav = model_testing::golden_tensor("hear_tiny.safetensors", clip + "/waveform");
    const auto& ref = model_testing::golden_tensor("hear_tiny.safetensors", clip + "/log_mel");
    auto got = model_testing::reference_log_mel(wav);
    ASSERT_EQ(got.sizes(), ref.sizes());
    std::cout << "[parity] test frontend " << clip << "/log_mel max abs err "
              << test::max_abs_diff(got, ref) << "\n";
    EXPECT_LE(model_testing::scaled_error(got, ref), 1e-4) << clip;
  }
}

MamModel load_mam_tiny() {
  MamOptions o;
  o.reference_halved_lengths = true;  // how the golden vectors were made (see MamOptions)
  o.encoder = model_testing::acoustic_options_from(
      model_testing::golden_config(kMamGolden, "acoustic_model"));
  o.tokenizer =
      model_testing::tokenizer_options_from(model_testing::golden_config(kMamGolden, "tokenizer"));
  MamModel model(o);
  LoadOptions lo;
  lo.prefix = "weights/";
  load_state(*model, model_testing::golden(kMamGolden).tensors, lo, kMamGolden);
  model->eval();
  return model;
}

TEST(MamParity, MatchesReferenceLabelsLogitsAndLoss) {
  auto model = load_mam_tiny();
  torch::NoGradGuard no_grad;
  auto log_mel =
      model_testing::reference_log_mel(model_testing::golden_tensor(kMamGolden, "waveform"))
          .unsqueeze(0);
  auto lengths = torch::tensor({log_mel.size(2)}, torch::kLong);
  const auto& mask = model_testing::golden_tensor(kMamGolden, "mask");
  auto out = model->forward(log_mel, lengths, mask.unsqueeze(0));

  const auto& labels = model_testing::golden_tensor(kMamGolden, "labels");
  const int64_t label_mismatches = (out.labels.squeeze(0) != labels).sum().item<int64_t>();
  std::cout << "[parity] mam_tiny labels: " << label_mismatches << " of " << labels.numel()
            << " differ\n";
  EXPECT_EQ(label_mismatches, 0);
  EXPECT_TRUE(torch::equal(out.mask.squeeze(0), mask));

  const auto& ref_logits = model_testing::golden_tensor(kMamGolden, "mam_logits");
  const auto& ref_loss = model_testing::golden_tensor(kMamGolden, "loss");
  std::cout << "[parity] mam_tiny mam_logits max abs err "
            << test::max_abs_diff(out.logits.squeeze(0), ref_logits) << ", loss err "
            << test::max_abs_diff(out.loss.view({1}), ref_loss) << "\n";
  EXPECT_LE(model_testing::scaled_error(out.logits.squeeze(0), ref_logits), 1e-4);
  EXPECT_LE(model_testing::scaled_error(out.loss.view({1}), ref_loss), 1e-4);

  // The loss is the CE over the masked positions of the golden logits and labels.
  auto index = mask.nonzero().squeeze(1);
  auto expected = torch::nn::functional::cross_entropy(ref_logits.index_select(0, index),
                                                       labels.index_select(0, index));
  EXPECT_NEAR(expected.item<double>(), ref_loss.item<double>(), 1e-5);
}

TEST(MamParity, HalvedLengthsQuirkIsWhatTheGoldenShows) {
  // Attending to all 220 patches (the default) gives different logits than the reference's
  // in-place double halving; the difference is confined to what attention sees.
  auto quirk = load_mam_tiny();
  MamOptions o = quirk->options();
  o.reference_halved_lengths = false;
  MamModel fixed(o);
  LoadOptions lo;
  lo.prefix = "weights/";
  load_state(*fixed, model_testing::golden(kMamGolden).tensors, lo);
  fixed->eval();
  torch::NoGradGuard no_grad;
  auto log_mel =
      model_testing::reference_log_mel(model_testing::golden_tensor(kMamGolden, "waveform"))
          .unsqueeze(0);
  auto lengths = torch::tensor({log_mel.size(2)}, torch::kLong);
  auto mask = model_testing::golden_tensor(kMamGolden, "mask").unsqueeze(0);
  auto a = quirk->forward(log_mel, lengths, mask), b = fixed->forward(log_mel, lengths, mask);
  EXPECT_EQ(a.lengths.item<int64_t>(), 110);
  EXPECT_EQ(b.lengths.item<int64_t>(), 220);
  EXPECT_TRUE(torch::equal(a.labels, b.labels));
  EXPECT_GT(test::max_abs_diff(a.logits, b.logits), 1e-2);
}

TEST(MamParity, AcousticModelLoadsFromEncoderPrefix) {
  AcousticModel acoustic(model_testing::acoustic_options_from(
      model_testing::golden_config(kMamGolden, "acoustic_model")));
  LoadOptions lo;
  lo.prefix = "weights/encoder.";
  auto report = load_state(*acoustic, model_testing::golden(kMamGolden).tensors, lo);
  EXPECT_EQ(report.loaded.size(), 2u + 2u * 22u);
  EXPECT_TRUE(torch::equal(
      acoustic->feature_extractor->conv->weight,
      model_testing::golden_tensor(kMamGolden, "weights/encoder.feature_extractor.conv.weight")));
}

TEST(MamParity, MaskRules) {
  torch::manual_seed(3);
  auto lengths = torch::tensor({4000, 2500}, torch::kLong);
  auto valid = nn::lengths_to_mask(lengths, 4000);
  auto bern = make_mam_mask(lengths, 4000, 0.4, MaskRule::kBernoulli);
  EXPECT_FALSE((bern & valid.logical_not()).any().item<bool>());  // never padding
  const double rate = bern.sum().item<double>() / 6500.0;
  EXPECT_NEAR(rate, 0.4, 0.02);
  auto gauss = make_mam_mask(lengths, 4000, 0.4, MaskRule::kReferenceGaussian);
  const double valid_rate = (gauss & valid).sum().item<double>() / 6500.0;
  const double pad_rate = (gauss & valid.logical_not()).sum().item<double>() / 1500.0;
  EXPECT_NEAR(valid_rate, 0.6554, 0.02);  // Phi(0.4)
  EXPECT_NEAR(pad_rate, 0.2743, 0.03);    // Phi(-0.6)
  EXPECT_EQ(parse_mask_rule("reference_gaussian"), MaskRule::kReferenceGaussian);
  EXPECT_THROW(parse_mask_rule("uniform"), hear::Error);
  // A seeded generator makes the draw reproducible.
  auto g1 = at::make_generator<at::CPUGeneratorImpl>(7);
  auto g2 = at::make_generator<at::CPUGeneratorImpl>(7);
  EXPECT_TRUE(torch::equal(make_mam_mask(lengths, 4000, 0.4, MaskRule::kBernoulli, g1),
                           make_mam_mask(lengths, 4000, 0.4, MaskRule::kBernoulli, g2)));
}

}  // namespace
}  // namespace hear::models
