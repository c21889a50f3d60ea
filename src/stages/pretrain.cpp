#include "hear/stages/pretrain.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "hear/error.h"
#include "hear/io/safetensors.h"
#include "hear/models/weights.h"

namespace hear::stages {

PretrainDataConfig::PretrainDataConfig() {
  // The paper's pre-training rule: random segments of at most 6 s, clips under 1 s skipped.
  loader.segments.mode = data::SegmentMode::kRandomCrop;
  loader.segments.max_seconds = 6.0;
  loader.segments.min_seconds = 1.0;
  loader.sampler.batch_size = 128;
  loader.sampler.drop_last = true;
}

void PretrainDataConfig::define(io::ConfigSchema& s) {
  s.field("train_manifest", train_manifest, "unlabelled training clips (TSV manifest)");
  s.field("valid_manifest", valid_manifest, "held-out clips (empty: no validation)");
  s.field("valid_max_batches", valid_max_batches, "validation batches (0: all)").min(0);
  s.section("loader", loader);
}

PretrainConfig::PretrainConfig() {
  // Paper §III-A: AdamW, peak 5e-4, 10k warm-up, cosine, 450k steps, batch 128, mask 40 %.
  train.steps = 450000;
  train.optimizer.lr = 5e-4;
  train.schedule.warmup_steps = 10000;
  train.best_metric = "valid_loss";
  train.best_mode = train::BestMode::kMin;
  train.validate_every = 5000;
}

void PretrainConfig::define(io::ConfigSchema& s) {
  s.field("run_dir", run_dir, "output folder (config, log, metrics, checkpoints)");
  s.field("tokenizer_weights", tokenizer_weights, "frozen stage-1 tokenizer (safetensors)");
  s.section("model", model);
  s.section("data", data);
  s.section("train", train);
}

namespace {

// The tokenizer part of a weights file: a TokenizerTrainFramework/PretrainFramework file
// (`tokenizer.*`) or a bare Tokenizer state_dict (`encoder.*`, `linear.*`).
void load_tokenizer(models::Tokenizer& tokenizer, const std::string& path) {
  if (path.empty()) {
    throw Error(
        "config key 'tokenizer_weights' is required: MAM predicts the codes of a "
        "trained stage-1 tokenizer (hear-tokenizer-train exports one)");
  }
  const auto file = io::load_safetensors(path);
  models::LoadOptions options;
  for (const auto& [key, value] : file.tensors) {
    if (key.rfind("tokenizer.", 0) == 0 || key.rfind("module.tokenizer.", 0) == 0) {
      options.prefix = "tokenizer.";
      break;
    }
  }
  models::load_state(*tokenizer, file.tensors, options, path);
}

struct MamBatchStats {
  double loss, accuracy, mask_fraction;
};

}  // namespace

PretrainResult run_pretrain(const PretrainConfig& config, const RunRequest& request) {
  namespace fs = std::filesystem;
  io::validate_config(config);
  auto train_entries = read_manifest_for(config.data.train_manifest, "data.train_manifest");
  std::vector<data::ManifestEntry> valid_entries;
  if (!config.data.valid_manifest.empty()) {
    valid_entries = read_manifest_for(config.data.valid_manifest, "data.valid_manifest");
  }
  const fs::path run_dir = config.run_dir;
  prepare_run_dir(run_dir, request);

  torch::manual_seed(config.train.seed);
  models::MamModel model(config.model);
  load_tokenizer(model->tokenizer, config.tokenizer_weights);
  for (auto& p : model->tokenizer->parameters()) p.set_requires_grad(false);
  spdlog::info("model: {}", c10::str(*model));

  data::DataLoader loader(train_entries, config.data.loader,
                          data::LabelMap(std::vector<std::string>{}));
  spdlog::info(
      "data: {} training clips -> {} segments per epoch ({} skipped: shorter than {} s), "
      "{} batches per epoch",
      train_entries.size(), loader.segments_per_epoch(), loader.skipped_clips(),
      config.data.loader.segments.min_seconds, loader.batches_per_epoch());
  if (loader.batches_per_epoch() == 0) {
    throw Error("data.train_manifest '" + config.data.train_manifest +
                "' yields no batch (all clips shorter than data.loader.segments.min_seconds, or "
                "fewer segments than a batch with drop_last)");
  }
  const audio::Frontend frontend;

  auto mam_step = [&](const data::Batch& batch, const at::Tensor& mask) {
    const auto f = batch_features(frontend, batch);
    return model->forward(f.log_mel, f.lengths, mask);
  };
  auto stats_of = [](const models::MamOutput& out) {
    const at::Tensor hits = (out.logits.argmax(-1) == out.labels) & out.mask;
    const double masked = out.mask.sum().item<double>();
    const double valid = out.lengths.sum().item<double>();
    return MamBatchStats{out.loss.item<double>(),
                         masked > 0 ? hits.sum().item<double>() / masked : 0.0,
                         valid > 0 ? masked / valid : 0.0};
  };

  train::TrainerCallbacks callbacks;
  callbacks.train_metric_names = {"loss", "masked_acc", "mask_fraction"};
  callbacks.loss = [&](const data::Batch& batch, int64_t) {
    auto out = mam_step(batch, {});
    const auto s = stats_of(out);
    return train::StepResult{
        out.loss,
        {{"loss", s.loss}, {"masked_acc", s.accuracy}, {"mask_fraction", s.mask_fraction}}};
  };
  if (!valid_entries.empty()) {
    callbacks.valid_metric_names = {"valid_loss", "valid_masked_acc"};
    callbacks.validate = [&](int64_t) {
      // The same masks at every validation: a fixed generator, and whole clips cut into
      // consecutive <= 6 s segments in manifest order.
      auto options = config.data.loader;
      options.sampler.shuffle = false;
      options.sampler.drop_last = false;
      options.segments.mode = data::SegmentMode::kConsecutive;
      options.max_epochs = 1;
      data::DataLoader valid(valid_entries, options, data::LabelMap(std::vector<std::string>{}));
      auto generator = at::make_generator<at::CPUGeneratorImpl>(1234);
      double loss_sum = 0, hits = 0, masked = 0;
      int64_t batches = 0;
      while (auto batch = valid.next()) {
        const auto f = batch_features(frontend, *batch);
        const int64_t P = f.log_mel.size(2) / 2;
        const at::Tensor mask = models::make_mam_mask(f.lengths / 2, P, config.model.mask_rate,
                                                      config.model.mask_rule, generator);
        auto out = model->forward(f.log_mel, f.lengths, mask);
        const double m = out.mask.sum().item<double>();
        loss_sum += out.loss.item<double>() * m;
        hits += ((out.logits.argmax(-1) == out.labels) & out.mask).sum().item<double>();
        masked += m;
        if (++batches == config.data.valid_max_batches) break;
      }
      if (masked == 0) throw Error("validation: no masked patch in data.valid_manifest");
      return train::MetricValues{{"valid_loss", loss_sum / masked},
                                 {"valid_masked_acc", hits / masked}};
    };
  }

  std::vector<torch::Tensor> params;
  for (auto& p : model->encoder->parameters()) params.push_back(p);
  for (auto& p : model->out_linear->parameters()) params.push_back(p);
  train::Trainer trainer(config.train, run_dir, *model, loader, callbacks, request.config_yaml,
                         params);
  if (request.resume) trainer.resume();
  PretrainResult result;
  result.fit = trainer.fit();
  if (!result.fit.interrupted) {
    const fs::path out = run_dir / "acoustic_model.safetensors";
    models::save_weights(*model->encoder, out,
                         {{"stage", "mam-pretrain"},
                          {"step", std::to_string(result.fit.step)},
                          {"config", request.config_yaml}});
    result.acoustic_weights = out.string();
    spdlog::info("acoustic model written to {}", out.string());
  }
  return result;
}

}  // namespace hear::stages
