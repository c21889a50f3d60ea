// Parity of stage 1 (tokenizer, Gumbel quantizer, decoder, losses) with the reference
// (tests/golden/tokenizer_tiny.safetensors), with the reference's Gumbel codes injected.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "hear/models/tokenizer.h"
#include "hear/models/weights.h"
#include "model_test_util.h"

namespace hear::models {
namespace {

constexpr const char* kTokenizerGolden = "tokenizer_tiny.safetensors";

TokenizerTrainingOptions tokenizer_tiny_options() {
  TokenizerTrainingOptions o;
  o.tokenizer = model_testing::tokenizer_options_from(
      model_testing::golden_config(kTokenizerGolden, "tokenizer"));
  auto d = model_testing::golden_config(kTokenizerGolden, "decoder");
  o.decoder.hidden_size = d.at("hidden_size");
  o.decoder.intermediate_size = d.at("intermediate_size");
  o.decoder.num_attention_heads = d.at("num_attention_heads");
  o.decoder.num_transformer_layers = d.at("num_transformer_layers");
  o.decoder.knowledge_hidden_size = d.at("knowledge_hidden_size");
  o.decoder.code_vector_size = d.at("code_vector_size");
  o.gumbel.init_temperature =
      std::stod(model_testing::golden(kTokenizerGolden).metadata.at("temperature"));
  return o;  // loss weights: the defaults 0.3 / 0.7 / 0.1, as the golden file's
}

TokenizerTrainingModel load_tokenizer_tiny() {
  TokenizerTrainingModel model(tokenizer_tiny_options());
  LoadOptions lo;
  lo.prefix = "weights/";
  load_state(*model, model_testing::golden(kTokenizerGolden).tensors, lo, kTokenizerGolden);
  model->eval();
  return model;
}

const at::Tensor& tok_golden(const std::string& key) {
  return model_testing::golden_tensor(kTokenizerGolden, key);
}

void expect_tokenizer_close(const std::string& name, const at::Tensor& got, const at::Tensor& ref) {
  ASSERT_EQ(got.sizes(), ref.sizes()) << name;
  const double err = model_testing::scaled_error(got, ref);
  std::cout << "[parity] tokenizer_tiny " << name << " max abs err " << test::max_abs_diff(got, ref)
            << " (scaled " << err << ")\n";
  EXPECT_LE(err, 1e-4) << name;
}

TEST(TokenizerParity, MatchesReferenceWithInjectedCodes) {
  auto model = load_tokenizer_tiny();
  torch::NoGradGuard no_grad;
  auto log_mel = tok_golden("log_mel").unsqueeze(0);
  auto lengths = torch::tensor({log_mel.size(2)}, torch::kLong);
  QuantizerInjection inject;
  inject.codes = tok_golden("gumbel_codes").unsqueeze(0);
  auto out = model->forward(log_mel, lengths, tok_golden("teacher_features").unsqueeze(0), inject);

  expect_tokenizer_close("tokenizer_logits", out.logits.squeeze(0), tok_golden("tokenizer_logits"));
  EXPECT_TRUE(torch::equal(out.quantizer.codes.squeeze(0), tok_golden("gumbel_codes")));
  expect_tokenizer_close("quantized", out.quantizer.quantized.squeeze(0), tok_golden("quantized"));
  expect_tokenizer_close("decoder_mel", out.decoded.mel.squeeze(0), tok_golden("decoder_mel"));
  expect_tokenizer_close("decoder_knowledge", out.decoded.knowledge.squeeze(0),
                         tok_golden("decoder_knowledge"));
  expect_tokenizer_close("loss_reconstruction", out.losses.reconstruction.view({1}),
                         tok_golden("loss_reconstruction"));
  expect_tokenizer_close("loss_distillation", out.losses.distillation.view({1}),
                         tok_golden("loss_distillation"));
  expect_tokenizer_close("loss_diversity", out.losses.diversity.view({1}),
                         tok_golden("loss_diversity"));
  EXPECT_NEAR(out.losses.total.item<double>(),
              (tok_golden("loss_reconstruction") + tok_golden("loss_distillation") +
               tok_golden("loss_diversity"))
                  .item<double>(),
              1e-4);
}

TEST(TokenizerParity, StandaloneTokenizerLoadsByPrefix) {
  Tokenizer tokenizer(tokenizer_tiny_options().tokenizer);
  LoadOptions lo;
  lo.prefix = "weights/tokenizer.";
  auto report = load_state(*tokenizer, model_testing::golden(kTokenizerGolden).tensors, lo);
  EXPECT_EQ(report.loaded.size(), 2u + 2u + 2u * 22u);  // conv, linear, 2 layers x 22 tensors
  tokenizer->eval();
  torch::NoGradGuard no_grad;
  auto log_mel = tok_golden("log_mel").unsqueeze(0);
  auto out = tokenizer(log_mel, torch::tensor({log_mel.size(2)}, torch::kLong));
  EXPECT_LE(model_testing::scaled_error(out.values.squeeze(0), tok_golden("tokenizer_logits")),
            1e-4);
}

TEST(TokenizerParity, InjectedNoiseDrivesTheCodes) {
  auto model = load_tokenizer_tiny();
  torch::NoGradGuard no_grad;
  auto logits = tok_golden("tokenizer_logits").unsqueeze(0);
  auto lengths = torch::tensor({logits.size(1)}, torch::kLong);
  QuantizerInjection zero_noise;
  zero_noise.noise = torch::zeros_like(logits);
  auto out = model->vector_quantizer(logits, lengths, zero_noise);
  EXPECT_TRUE(torch::equal(out.codes, logits.argmax(-1)));
  // Noise that is huge on code 3 forces code 3 everywhere.
  QuantizerInjection forced;
  forced.noise = torch::zeros_like(logits);
  forced.noise.select(2, 3).fill_(1e4);
  out = model->vector_quantizer(logits, lengths, forced);
  EXPECT_TRUE((out.codes == 3).all().item<bool>());
  auto w = model->vector_quantizer->linear->weight, b = model->vector_quantizer->linear->bias;
  auto expected = torch::linear(model->vector_quantizer->code_book[0][3], w, b);
  EXPECT_LE(test::max_abs_diff(out.quantized[0][17], expected), 1e-5);
  // The diversity loss ignores padded positions: padding the logits with junk changes nothing.
  auto padded = torch::cat({logits, torch::randn({1, 7, logits.size(2)}) * 10}, 1);
  QuantizerInjection padded_noise;
  padded_noise.noise = torch::zeros_like(padded);
  auto div_padded = model->vector_quantizer(padded, lengths, padded_noise).diversity_loss;
  EXPECT_NEAR(div_padded.item<double>(), out.diversity_loss.item<double>(), 1e-7);
  // Uniform logits are exactly on target.
  auto uniform = model->vector_quantizer(torch::zeros_like(logits), lengths, zero_noise);
  EXPECT_NEAR(uniform.diversity_loss.item<double>(), 0.0, 1e-12);
}

TEST(TokenizerParity, TemperatureAnnealsOnlyInTraining) {
  GumbelQuantizer q(16, 4, 8);
  auto logits = torch::randn({2, 5, 16});
  auto lengths = torch::tensor({5, 3}, torch::kLong);
  q->eval();
  q(logits, lengths);
  EXPECT_DOUBLE_EQ(q->temperature(), 2.0);
  q->train();
  q(logits, lengths);
  EXPECT_DOUBLE_EQ(q->temperature(), 2.0 * 0.999995);
  q->set_temperature(2.0);
  int64_t steps = 0;
  while (q->temperature() > 0.5) {
    q->step_temperature();
    ++steps;
  }
  // ln(0.25) / ln(0.999995) = 277,258.2: the floor is reached after about 277,259 updates.
  EXPECT_NEAR(static_cast<double>(steps), 277259.0, 2.0);
  EXPECT_DOUBLE_EQ(q->temperature(), 0.5);
  q->step_temperature();
  EXPECT_DOUBLE_EQ(q->temperature(), 0.5);
  EXPECT_THROW(q->set_temperature(0.0), hear::Error);
}

}  // namespace
}  // namespace hear::models
