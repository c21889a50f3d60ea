#include "hear/bench/cost_model.h"

#include <cmath>

#include "hear/error.h"

namespace hear::bench {
namespace {

// One relative-position Transformer layer over T tokens: 4 projections, 4 attention products
// (QK^T, Q·E_K^T, P·V, P·E_V: each T·T·d per head = T·T·H), the feed-forward pair.
void add_relative_layers(ModuleCost& cost, int64_t layers, int64_t runs, int64_t tokens,
                         int64_t hidden, int64_t ffn, const std::string& prefix) {
  const int64_t projections = layers * runs * tokens * 4 * hidden * hidden;
  const int64_t products = layers * runs * 4 * tokens * tokens * hidden;
  const int64_t feed_forward = layers * runs * tokens * 2 * hidden * ffn;
  cost.items.push_back({prefix + ".qkv_out_projections", projections});
  cost.items.push_back({prefix + ".attention_products", products});
  cost.items.push_back({prefix + ".feed_forward", feed_forward});
  cost.macs += projections + products + feed_forward;
}

ModuleCost named(const std::string& name) {
  ModuleCost c;
  c.name = name;
  return c;
}

void add(ModuleCost& cost, const std::string& name, int64_t macs) {
  cost.items.push_back({cost.name + "." + name, macs});
  cost.macs += macs;
}

}  // namespace

ClipGeometry clip_geometry(int64_t samples, const audio::FrontendOptions& frontend,
                           const models::AcousticModelOptions& acoustic) {
  if (samples <= 0)
    throw Error("cost model: clip length must be positive, got " + std::to_string(samples) +
                " samples");
  ClipGeometry g;
  g.samples = samples;
  g.frames = audio::frame_count(samples, frontend);
  g.patches = audio::patch_count(samples, frontend);
  const int64_t L = acoustic.max_length;
  const int64_t stride = L - acoustic.overlap;
  if (g.patches <= L || !acoustic.sliding_window) {
    g.windows = 1;
    g.window_tokens = g.patches;
    return g;
  }
  // Windows start at w * stride; window w > 0 runs only if the clip reaches past the previous
  // window's end (length > start + overlap), as in AcousticModel.
  g.window_tokens = L;
  g.windows = 1;
  for (int64_t start = stride; start < g.patches; start += stride) {
    if (g.patches > start + acoustic.overlap) ++g.windows;
  }
  return g;
}

HearCost count_hear_classifier(const models::HearClassifierOptions& options, int64_t samples,
                               const audio::FrontendOptions& frontend) {
  const auto& am = options.acoustic_model;
  const auto& tm = options.task_model;
  const auto& head = options.decoder;
  HearCost cost;
  cost.geometry = clip_geometry(samples, frontend, am);
  const auto& g = cost.geometry;
  const int64_t P = g.patches;

  ModuleCost acoustic = named("acoustic_model");
  add(acoustic, "feature_extractor", P * am.hidden_size * am.n_mels * 2);
  add_relative_layers(acoustic, am.num_transformer_layers, g.windows, g.window_tokens,
                      am.hidden_size, am.intermediate_size, "acoustic_model.contextual_encoder");
  cost.modules.push_back(acoustic);

  if (options.use_spectrogram) {
    ModuleCost gate = named("spectrogram_mixture");
    add(gate, "gate_linear", P * am.hidden_size * am.hidden_size);
    add(gate, "spectrum_linear", P * 2 * options.spectrum_bins * am.hidden_size);
    add(gate, "mixture", P * 2 * am.hidden_size * tm.hidden_size);
    cost.modules.push_back(gate);
  }

  ModuleCost task = named("task_model");
  add(task, "in_proj", P * 3 * tm.hidden_size * tm.hidden_size);
  add(task, "attention_products", 2 * P * P * tm.hidden_size);
  add(task, "out_proj", P * tm.hidden_size * tm.hidden_size);
  add(task, "feed_forward", P * 2 * tm.hidden_size * tm.intermediate_size);
  cost.modules.push_back(task);

  ModuleCost decoder = named("decoder");
  add(decoder, "linear", 3 * tm.hidden_size * head.hidden_size);
  add(decoder, "out", head.hidden_size * head.num_classes);
  cost.modules.push_back(decoder);

  for (const auto& m : cost.modules) cost.total_macs += m.macs;

  // Frontend estimate: two real FFTs per frame (power and mel branches share framing, the
  // reference computes both), ~ (n/2)·log2(n) complex MACs = 2·n·log2(n) real MACs each, plus
  // the mel projection. Listed separately; the paper's count excludes it.
  ModuleCost fe = named("frontend");
  const double n = frontend.n_fft;
  const auto fft = static_cast<int64_t>(2.0 * n * std::log2(n));
  add(fe, "stft", 2 * g.frames * fft);
  add(fe, "mel_projection", g.frames * (frontend.n_fft / 2 + 1) * frontend.n_mels);
  cost.frontend = fe;
  return cost;
}

int64_t count_tokenizer_macs(const models::TokenizerOptions& options, int64_t samples,
                             const audio::FrontendOptions& frontend) {
  const int64_t P = audio::patch_count(samples, frontend);
  if (P > options.max_length) {
    throw Error("cost model: the tokenizer takes at most " + std::to_string(options.max_length) +
                " patches, got " + std::to_string(P));
  }
  ModuleCost c = named("tokenizer");
  add(c, "feature_extractor", P * options.hidden_size * options.n_mels * 2);
  add_relative_layers(c, options.num_transformer_layers, 1, P, options.hidden_size,
                      options.intermediate_size, "tokenizer.encoder");
  add(c, "linear", P * options.hidden_size * options.num_codebooks);
  return c.macs;
}

int64_t teacher_parameters(const TeacherShape& s) {
  const int64_t E = s.embed;
  const int64_t patches = s.frames / 2;
  const int64_t patch_embed = E * s.n_mels * 2 + E;
  const int64_t tokens = 2 * E + (patches + 2) * E;  // cls, dist, pos_embed
  const int64_t block = 2 * E /*norm1*/ + 3 * E * E + 3 * E /*qkv*/ + E * E + E /*proj*/ +
                        2 * E /*norm2*/ + E * s.mlp + s.mlp + s.mlp * E + E;
  return patch_embed + tokens + s.blocks * block + 2 * E /*final norm*/;
}

int64_t teacher_macs(const TeacherShape& s) {
  const int64_t E = s.embed;
  const int64_t T = s.frames / 2 + 2;
  const int64_t patch_embed = (s.frames / 2) * E * s.n_mels * 2;
  const int64_t block = T * 4 * E * E + 2 * T * T * E + T * 2 * E * s.mlp;
  return patch_embed + s.blocks * block;
}

}  // namespace hear::bench
