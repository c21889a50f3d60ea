// Model-level properties: exact parameter counts at the paper's sizes, key names, batch
// invariance, gradient flow (and freezing), sliding-window weights, option validation, printing.
// Plus a DISABLED_ timing of the full-size model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <sstream>

#include "hear/io/config.h"
#include "hear/models/hear_classifier.h"
#include "hear/models/mam.h"
#include "hear/models/tokenizer.h"
#include "hear/models/weights.h"
#include "hear/nn/blocked_attention.h"
#include "hear/nn/relative_attention.h"
#include "model_test_util.h"
#include "small_hear.h"

namespace hear::models {
namespace {

int64_t props_count(const torch::nn::Module& m) {
  return nn::count_parameters(m);
}

HearClassifierOptions paper_hear_options(int64_t classes) {
  HearClassifierOptions o;
  o.decoder.num_classes = classes;
  return o;
}

TEST(ModelProperties, ParameterCountsAtPaperConfig) {
  HearClassifier hear(paper_hear_options(50));
  EXPECT_EQ(props_count(*hear), 15097394);
  EXPECT_EQ(props_count(*hear->acoustic_model), 11445888);
  EXPECT_EQ(props_count(*hear->spectrogram_mixture), 838272);
  EXPECT_EQ(props_count(*hear->task_model), 2350464);
  EXPECT_EQ(props_count(*hear->decoder), 462770);
  EXPECT_EQ(props_count(*Tokenizer(TokenizerOptions{})), 1588096);
  TokenizerTrainingModel stage1;
  EXPECT_EQ(props_count(*stage1->vector_quantizer), 36992);
  EXPECT_EQ(props_count(*stage1->decoder), 623232);
  EXPECT_EQ(props_count(*MamHead(384, 1024)), 394240);
  // state_dict entry counts of the reference (less the 3 preprocessor buffers).
  EXPECT_EQ(module_state(*hear->acoustic_model).size(), 134u);
  EXPECT_EQ(module_state(*hear).size(), 167u - 3u);
  EXPECT_EQ(module_state(*stage1->tokenizer).size(), 136u);
  EXPECT_EQ(module_state(*stage1).size(), 194u - 3u);
  EXPECT_EQ(module_state(*MamModel(MamOptions{})).size(), 275u - 3u);
  auto keys = module_state(*hear);
  for (const char* k :
       {"acoustic_model.contextual_encoder.layers.5.self_attn.query_bias2",
        "task_model.transformer.self_attn.in_proj_weight",
        "task_model.transformer.self_attn.out_proj.bias", "decoder.batch_norm.num_batches_tracked",
        "spectrogram_mixture.mixture.weight"}) {
    EXPECT_TRUE(keys.count(k)) << k;
  }
  EXPECT_EQ(keys.at("spectrogram_mixture.spectrum_linear.weight").sizes(),
            (std::vector<int64_t>{384, 1026}));
  std::ostringstream printed;
  printed << *hear;
  EXPECT_NE(printed.str().find("params=15,097,394"), std::string::npos) << printed.str();
  EXPECT_NE(printed.str().find("RelativePositionAttention(hidden=384, heads=4"), std::string::npos);
}

TEST(ModelProperties, OptionsBindToConfigs) {
  auto o = io::config_from_yaml_text<HearClassifierOptions>(
      "acoustic_model:\n  hidden_size: 64\n  overlap: 25\ndecoder:\n  num_classes: 7\n"
      "use_spectrogram: false\ntask_model:\n  hidden_size: 64\n",
      "test.yaml");
  EXPECT_EQ(o.acoustic_model.hidden_size, 64);
  EXPECT_EQ(o.acoustic_model.overlap, 25);
  EXPECT_EQ(o.acoustic_model.num_transformer_layers, 6);
  EXPECT_EQ(o.decoder.num_classes, 7);
  EXPECT_FALSE(o.use_spectrogram);
  EXPECT_THROW(
      io::config_from_yaml_text<HearClassifierOptions>("decoder:\n  num_classes: -1\n", "x"),
      hear::Error);
  auto stage1 = io::config_from_yaml_text<TokenizerTrainingOptions>(
      "gumbel:\n  init_temperature: 1.5\nloss_weights:\n  diversity: 0.2\n", "t.yaml");
  EXPECT_DOUBLE_EQ(stage1.gumbel.init_temperature, 1.5);
  EXPECT_DOUBLE_EQ(stage1.loss_weights.diversity, 0.2);
  auto mam = io::config_from_yaml_text<MamOptions>("mask_rule: reference_gaussian\n", "m.yaml");
  EXPECT_EQ(mam.mask_rule, MaskRule::kReferenceGaussian);
  EXPECT_THROW(io::config_from_yaml_text<MamOptions>("mask_rule: uniform\n", "m.yaml"),
               hear::Error);
  EXPECT_NE(io::config_to_yaml(mam).find("num_codebooks"), std::string::npos);
}

// The golden hear_tiny model: real weights, so batch effects would show.
HearClassifier props_hear_tiny() {
  HearClassifierOptions o;
  o.acoustic_model = model_testing::acoustic_options_from(
      model_testing::golden_config("hear_tiny.safetensors", "acoustic_model"));
  o.task_model.hidden_size = 32;
  o.task_model.intermediate_size = 64;
  o.decoder.hidden_size = 32;
  o.decoder.num_classes = 5;
  HearClassifier model(o);
  LoadOptions lo;
  lo.prefix = "weights/";
  load_state(*model, model_testing::golden("hear_tiny.safetensors").tensors, lo);
  return model;
}

audio::Features props_batch(const std::vector<at::Tensor>& mels,
                            const std::vector<at::Tensor>& pows) {
  int64_t t_max = 0;
  for (const auto& m : mels) t_max = std::max(t_max, m.size(1));
  std::vector<at::Tensor> mel_p, pow_p;
  std::vector<int64_t> lengths;
  for (size_t i = 0; i < mels.size(); ++i) {
    mel_p.push_back(torch::constant_pad_nd(mels[i], {0, t_max - mels[i].size(1)}));
    pow_p.push_back(torch::constant_pad_nd(pows[i], {0, t_max - pows[i].size(1)}));
    lengths.push_back(mels[i].size(1));
  }
  return {torch::stack(mel_p), torch::stack(pow_p), torch::tensor(lengths, torch::kLong)};
}

TEST(ModelProperties, BatchInvariance) {
  auto model = props_hear_tiny();
  model->eval();
  torch::NoGradGuard no_grad;
  const char* f = "hear_tiny.safetensors";
  auto mel0 = model_testing::golden_tensor(f, "clip0/log_mel"),
       pow0 = model_testing::golden_tensor(f, "clip0/log_power");
  auto mel1 = model_testing::golden_tensor(f, "clip1/log_mel"),
       pow1 = model_testing::golden_tensor(f, "clip1/log_power");
  // Three lengths: 365 patches (2 windows), 105 (short), 225 (one window when alone).
  std::vector<at::Tensor> mels{mel1, mel0, mel0.narrow(1, 0, 451)};
  std::vector<at::Tensor> pows{pow1, pow0, pow0.narrow(1, 0, 451)};
  auto batched = model->forward_all(props_batch(mels, pows));
  EXPECT_TRUE(torch::equal(batched.lengths, torch::tensor({105, 365, 225}, torch::kLong)));
  double worst = 0.0;
  for (size_t i = 0; i < mels.size(); ++i) {
    auto alone = model->forward_all(props_batch({mels[i]}, {pows[i]}));
    const int64_t p = alone.lengths.item<int64_t>();
    worst = std::max(worst, test::max_abs_diff(batched.logits[i], alone.logits[0]));
    EXPECT_LE(test::max_abs_diff(batched.logits[i], alone.logits[0]), 1e-5) << i;
    EXPECT_LE(test::max_abs_diff(batched.task[i].narrow(0, 0, p), alone.task[0]), 1e-5) << i;
  }
  std::cout << "[batch] max |logits(batch) - logits(alone)| = " << worst << "\n";
}

void expect_grads(torch::nn::Module& module, const std::string& what) {
  for (const auto& item : module.named_parameters()) {
    const auto& g = item.value().grad();
    if (!item.value().requires_grad()) {
      EXPECT_FALSE(g.defined() && g.abs().sum().item<double>() > 0)
          << what << " frozen " << item.key();
      continue;
    }
    ASSERT_TRUE(g.defined()) << what << " no grad for " << item.key();
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>()) << what << " " << item.key();
    // Softmax cancels the key bias: relative attention leaves it out (exactly zero gradient).
    const std::string key = item.key();
    if (key.size() > 23 && key.compare(key.size() - 23, 23, "self_attn.linear_k.bias") == 0) {
      EXPECT_EQ(g.abs().sum().item<double>(), 0.0) << what << " " << key;
      continue;
    }
    EXPECT_GT(g.abs().sum().item<double>(), 0.0) << what << " zero grad for " << item.key();
  }
}

audio::Features props_random_features(std::vector<int64_t> frames) {
  const int64_t t = *std::max_element(frames.begin(), frames.end());
  return {torch::randn({static_cast<int64_t>(frames.size()), 128, t}),
          torch::randn({static_cast<int64_t>(frames.size()), 513, t}),
          torch::tensor(frames, torch::kLong)};
}

TEST(ModelProperties, GradientFlowAndFreezing) {
  torch::manual_seed(5);
  auto features = props_random_features({60, 35, 17});
  auto labels = torch::tensor({0, 2, 1}, torch::kLong);
  for (bool freeze : {false, true}) {
    HearClassifier model(model_testing::small_hear_options(freeze, true));
    model->train();
    EXPECT_EQ(model->acoustic_model->is_training(), !freeze);
    auto loss = torch::nn::functional::cross_entropy(model(features), labels);
    loss.backward();
    expect_grads(*model, freeze ? "frozen hear" : "hear");
    if (freeze) {
      for (auto& p : model->acoustic_model->parameters()) EXPECT_FALSE(p.grad().defined());
      EXPECT_LT(nn::count_parameters(*model, true), nn::count_parameters(*model));
    }
  }
  // Stage 1: the straight-through estimator reaches the tokenizer.
  TokenizerTrainingOptions to;
  to.tokenizer.hidden_size = 16;
  to.tokenizer.intermediate_size = 32;
  to.tokenizer.num_transformer_layers = 1;
  to.tokenizer.num_codebooks = 12;
  to.decoder.hidden_size = 16;
  to.decoder.intermediate_size = 32;
  to.decoder.num_transformer_layers = 1;
  to.decoder.knowledge_hidden_size = 10;
  to.decoder.code_vector_size = 4;
  TokenizerTrainingModel stage1(to);
  stage1->train();
  auto tout = stage1(features.log_mel, features.lengths, torch::randn({3, 40, 10}));
  tout.losses.total.backward();
  expect_grads(*stage1, "tokenizer training");
  // Stage 2: the tokenizer is frozen; the detach option reproduces the reference's dead conv.
  for (bool detach : {false, true}) {
    MamOptions mo;
    mo.encoder = model_testing::small_hear_options(false, true).acoustic_model;
    mo.encoder.max_length = 40;
    mo.tokenizer = to.tokenizer;
    mo.detach_masked_embeddings = detach;
    MamModel mam(mo);
    mam->train();
    EXPECT_FALSE(mam->tokenizer->is_training());
    auto mask = torch::zeros({3, 30}, torch::kBool);
    mask.narrow(1, 0, 10).fill_(true);
    mam(features.log_mel, features.lengths, mask).loss.backward();
    for (auto& p : mam->tokenizer->parameters()) EXPECT_FALSE(p.grad().defined());
    if (detach) {
      EXPECT_FALSE(mam->encoder->feature_extractor->conv->weight.grad().defined());
      EXPECT_TRUE(mam->encoder->contextual_encoder->parameters()[0].grad().defined());
    } else {
      expect_grads(*mam->encoder, "mam encoder");
      expect_grads(*mam->out_linear, "mam head");
    }
  }
}

TEST(ModelProperties, MamLossOnlyOnMaskedPositions) {
  auto logits = torch::randn({2, 5, 7}, torch::requires_grad());
  auto labels = torch::randint(0, 7, {2, 5}, torch::kLong);
  auto mask = torch::zeros({2, 5}, torch::kBool);
  mask[0][1] = true;
  mask[1][4] = true;
  auto loss = mam_loss(logits, labels, mask);
  auto expected =
      0.5 *
      (torch::nn::functional::cross_entropy(logits[0][1].unsqueeze(0), labels[0][1].unsqueeze(0)) +
       torch::nn::functional::cross_entropy(logits[1][4].unsqueeze(0), labels[1][4].unsqueeze(0)));
  EXPECT_NEAR(loss.item<double>(), expected.item<double>(), 1e-6);
  loss.backward();
  EXPECT_EQ(logits.grad()[0][0].abs().sum().item<double>(), 0.0);
  auto none = mam_loss(logits, labels, torch::zeros({2, 5}, torch::kBool));
  EXPECT_EQ(none.item<double>(), 0.0);  // not NaN
}

TEST(ModelProperties, SlidingWindowWeightsAndLimits) {
  AcousticModel paper;
  auto w = paper->window_weights();
  ASSERT_EQ(w.size(0), 300);
  EXPECT_FLOAT_EQ(w[0].item<float>(), 1e-3f);
  EXPECT_FLOAT_EQ(w[49].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(w[150].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(w[299].item<float>(), 1e-3f);
  // Overlapping ramps (window w's tail on window w+1's head) sum to 1 inside the clamp.
  auto sum = w.narrow(0, 250, 50) + w.narrow(0, 0, 50);
  EXPECT_LE((sum - 1).abs().max().item<float>(), 1.01e-3f);
  // A model without sliding window refuses long inputs with a clear error.
  auto o = model_testing::small_hear_options(false, true).acoustic_model;
  o.sliding_window = false;
  AcousticModel plain(o);
  torch::NoGradGuard no_grad;
  EXPECT_NO_THROW(plain(torch::randn({1, 128, 24}), torch::tensor({24})));
  EXPECT_THROW(plain(torch::randn({1, 128, 26}), torch::tensor({26})), hear::Error);
  // Windowed: a clip that fits one window is unaffected by the windowing of a longer batch mate.
  AcousticModel windowed(model_testing::small_hear_options(false, true).acoustic_model);
  windowed->eval();
  auto x = torch::randn({2, 128, 70});
  auto both = windowed(x, torch::tensor({70, 20}));
  auto alone = windowed(x.narrow(0, 1, 1).narrow(2, 0, 20), torch::tensor({20}));
  EXPECT_LE(test::max_abs_diff(both.values[1].narrow(0, 0, 10), alone.values[0]), 1e-5);
  // Inference runs many windows a few at a time; training runs them in one batch. Without
  // dropout both give the same values (2 clips x up to 14 windows here).
  auto no_dropout = model_testing::small_hear_options(false, true).acoustic_model;
  no_dropout.dropout_probability = 0.0;
  AcousticModel many(no_dropout);
  auto long_x = torch::randn({2, 128, 700});
  const auto lengths = torch::tensor({700, 333});
  many->eval();
  auto chunked = many(long_x, lengths);
  many->train();
  auto batched = many(long_x, lengths);
  EXPECT_LE(test::max_abs_diff(chunked.values, batched.values), 1e-5);
  AcousticModelOptions bad;
  bad.overlap = 300;
  EXPECT_THROW(AcousticModel{bad}, hear::Error);
}

TEST(ModelProperties, OptionsAndTaskLimits) {
  auto o = model_testing::small_hear_options(false, false);
  HearClassifier no_spectrum(o);
  auto keys = module_state(*no_spectrum);
  for (const auto& [k, v] : keys)
    EXPECT_EQ(k.rfind("spectrogram_mixture.", 0), std::string::npos) << k;
  no_spectrum->eval();
  torch::NoGradGuard no_grad;
  audio::Features f{torch::randn({1, 128, 40}), at::Tensor(), torch::tensor({40}, torch::kLong)};
  EXPECT_EQ(no_spectrum(f).sizes(), (std::vector<int64_t>{1, 3}));
  o.task_model.hidden_size = 24;
  EXPECT_THROW(HearClassifier{o}, hear::Error);  // widths differ without the mixture
  HearClassifierOptions no_classes;
  EXPECT_THROW(HearClassifier{no_classes}, hear::Error);
  TaskModelOptions to;
  to.hidden_size = 8;
  to.num_attention_heads = 2;
  to.intermediate_size = 16;
  to.max_length = 10;
  TaskModel task(to);
  EXPECT_THROW(task(torch::randn({1, 11, 8}), torch::tensor({11})), hear::Error);
}

// Single-thread forward time of the full-size model on a 10 s clip (1001 frames, 500 patches,
// two acoustic windows), fast vs naive (T, T, d) attention. Run with
//   hear_tests --gtest_also_run_disabled_tests --gtest_filter='*DISABLED_Timing*'
// Long clips: in inference the task model's attention runs in query x key blocks with an online
// softmax (nn/blocked_attention.h). Against the direct softmax over all scores, with padding keys
// that fill whole key blocks and parts of others, and block sizes that do not divide T.
TEST(ModelProperties, BlockedAttentionEqualsDirectSoftmax) {
  torch::InferenceMode guard;
  torch::manual_seed(3);
  const int64_t b = 2, h = 2, t = 6000, d = 4;
  const auto q = torch::randn({b, h, t, d}) * 2.0;  // peaked rows: the running max matters
  const auto k = torch::randn({b, h, t, d});
  const auto v = torch::randn({b, h, t, d});
  auto padding = torch::zeros({b, 1, 1, t}, torch::kBool);
  padding[1].narrow(-1, 3100, t - 3100).fill_(true);
  padding[0].narrow(-1, 0, 700).fill_(true);  // the first key blocks padded entirely
  const auto scores = torch::matmul(q, k.transpose(-1, -2))
                          .masked_fill(padding, std::numeric_limits<float>::lowest());
  const auto want = torch::matmul(torch::softmax(scores, -1), v);
  for (auto [rows, cols] :
       {std::pair<int64_t, int64_t>{nn::kQueryBlock, nn::kKeyBlock}, {333, 1000}, {t, 7}}) {
    const auto got = nn::blocked_attention(q, k, v, padding, rows, cols);
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-5) << rows << " x " << cols;
  }
  const auto unpadded = torch::matmul(torch::softmax(torch::matmul(q, k.transpose(-1, -2)), -1), v);
  EXPECT_LT((nn::blocked_attention(q, k, v, {}) - unpadded).abs().max().item<double>(), 1e-5);
  EXPECT_THROW(nn::blocked_attention(q, k.narrow(-1, 0, 2), v, {}), hear::Error);
}

// The whole classifier on 6,400 patches (128 s at 20 ms): inference (blocked task attention)
// against an eval-mode forward with autograd on (the direct path), logits within 1e-5.
TEST(ModelProperties, LongClipLogitsEqualDirectAttention) {
  torch::manual_seed(4);
  auto options = model_testing::small_hear_options();
  options.task_model.max_length = 6400;
  HearClassifier model(options);
  model->eval();
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  auto features = props_random_features({12800, 9001});
  const auto direct = [&] {
    torch::AutoGradMode grad(true);
    auto x = model->forward_all(features);
    return x.logits;
  }();
  torch::NoGradGuard no_grad;
  const auto blocked = model(features);
  EXPECT_LT((blocked - direct).abs().max().item<double>(), 1e-5);
}

TEST(ModelProperties, DISABLED_TimingFullSize10s) {
  at::set_num_threads(1);
  torch::manual_seed(0);
  HearClassifier model(paper_hear_options(50));
  model->eval();
  torch::NoGradGuard no_grad;
  auto f = props_random_features({1001});
  auto time_it = [&](bool naive) {
    nn::set_naive_attention(*model, naive);
    for (int i = 0; i < 2; ++i) model(f);
    std::vector<double> ms;
    for (int i = 0; i < 10; ++i) {
      auto t0 = std::chrono::steady_clock::now();
      model(f);
      ms.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(ms.begin(), ms.end());
    return 0.5 * (ms[4] + ms[5]);
  };
  const double fast = time_it(false), naive = time_it(true);
  std::cout << "[timing] full-size HearClassifier, 10 s clip, 1 thread: fast " << fast
            << " ms (RTF " << fast / 10000.0 << "), naive (T,T,d) " << naive << " ms\n";
  nn::set_naive_attention(*model, false);
  auto a = model(f);
  nn::set_naive_attention(*model, true);
  EXPECT_LE(test::max_abs_diff(a, model(f)), 1e-4);
}

}  // namespace
}  // namespace hear::models
