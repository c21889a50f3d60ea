#include "hear/stages/pretrain.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "hear/error.h"
#include "hear/models/weights.h"

namespace hear::stages {

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
  models::LoadOptions options;
  options.prefix = models::kAutoPrefix;
  options.auto_prefixes = {"tokenizer."};
  models::load_weights(*tokenizer, path, options);
}

struct MamBatchStats {
  double loss, accuracy, mask_fraction;
};

}  // namespace

PretrainResult run_pretrain(const PretrainConfig& config, const RunRequest& request) {
  io::validate_config(config);
  const auto corpus = read_corpus(config.data);
  StageRun run(config.run_dir, request, config.train);

  models::MamModel model(config.model);
  load_tokenizer(model->tokenizer, config.tokenizer_weights);
  for (auto& p : model->tokenizer->parameters()) p.set_requires_grad(false);
  spdlog::info("model: {}", c10::str(*model));
  const auto loader = make_training_loader(
      corpus.train, run.sharded(config.data.loader), data::LabelMap(std::vector<std::string>{}),
      "data.train_manifest '" + config.data.train_manifest + "'");
  const audio::Frontend frontend;

  auto stats_of = [](const models::MamOutput& out) {
    const at::Tensor hits = (out.logits.argmax(-1) == out.labels) & out.mask;
    const double masked = out.mask.sum().item<double>();
    const double valid = out.lengths.sum().item<double>();
    return MamBatchStats{out.loss.item<double>(),
                         masked > 0 ? hits.sum().item<double>() / masked : 0.0,
                         valid > 0 ? masked / valid : 0.0};
  };

  train::TrainerCallbacks callbacks;
  callbacks.train_metric_names = {"masked_acc", "mask_fraction"};
  callbacks.loss = [&](const data::Batch& batch, int64_t) {
    const auto f = batch_features(frontend, batch);
    auto out = model->forward(f.log_mel, f.lengths, {});
    const auto s = stats_of(out);
    return train::StepResult{out.loss,
                             {{"masked_acc", s.accuracy}, {"mask_fraction", s.mask_fraction}}};
  };
  if (!corpus.valid.empty()) {
    callbacks.valid_metric_names = {"valid_loss", "valid_masked_acc"};
    callbacks.validate = [&](int64_t) {
      double loss_sum = 0, hits = 0, masked = 0;
      for_each_validation_batch(
          corpus.valid, config.data.loader, config.data.valid_max_batches,
          [&](const data::Batch& batch) {
            // The same masks at every validation, whichever rank scores the batch: a generator
            // of its own per batch.
            auto generator = at::make_generator<at::CPUGeneratorImpl>(1234 + batch.index);
            const auto f = batch_features(frontend, batch, run.device());
            const int64_t P = f.log_mel.size(2) / 2;
            const at::Tensor mask = models::make_mam_mask(f.lengths / 2, P, config.model.mask_rate,
                                                          config.model.mask_rule, generator);
            auto out = model->forward(f.log_mel, f.lengths, mask);
            const double m = out.mask.sum().item<double>();
            loss_sum += out.loss.item<double>() * m;
            hits += ((out.logits.argmax(-1) == out.labels) & out.mask).sum().item<double>();
            masked += m;
          },
          &run.parallel());
      const auto sums = run.parallel().sum({loss_sum, hits, masked});
      loss_sum = sums[0], hits = sums[1], masked = sums[2];
      if (masked == 0) throw Error("validation: no masked patch in data.valid_manifest");
      return train::MetricValues{{"valid_loss", loss_sum / masked},
                                 {"valid_masked_acc", hits / masked}};
    };
  }

  std::vector<torch::Tensor> params;
  for (auto& p : model->encoder->parameters()) params.push_back(p);
  for (auto& p : model->out_linear->parameters()) params.push_back(p);
  PretrainResult result;
  result.fit = run.fit(config.train, *model, *loader, callbacks, params);
  if (!result.fit.interrupted) {
    result.acoustic_weights = run.export_weights(*model->encoder, "acoustic_model.safetensors",
                                                 "mam-pretrain", result.fit.step);
  }
  return result;
}

}  // namespace hear::stages
