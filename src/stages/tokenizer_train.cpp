#include "hear/stages/tokenizer_train.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>

#include "hear/audio/frontend.h"
#include "hear/error.h"
#include "hear/io/safetensors.h"
#include "hear/models/acoustic_model.h"
#include "hear/models/weights.h"
#include "hear/nn/util.h"
#include "hear/stages/finetune.h"
#include "hear/teacher/feature_cache.h"
#include "hear/train/checkpoint.h"

namespace hear::stages {

TokenizerTrainConfig::TokenizerTrainConfig() {
  // Paper §III-A1: AdamW peak 3e-4, batch 64, 540k steps, 10k warm-up, cosine.
  train.steps = 540000;
  train.optimizer.lr = 3e-4;
  train.schedule.warmup_steps = 10000;
  train.best_metric = "valid_loss";
  train.best_mode = train::BestMode::kMin;
  train.validate_every = 5000;
}

void TokenizerTrainConfig::define(io::ConfigSchema& s) {
  s.field("run_dir", run_dir, "output folder (config, log, metrics, checkpoints)");
  s.section("model", model);
  s.section("teacher", teacher);
  s.section("data", data);
  s.section("train", train);
}

CodebookUsage codebook_usage(const at::Tensor& logits, const at::Tensor& patch_lengths) {
  torch::NoGradGuard no_grad;
  const at::Tensor mask = nn::lengths_to_mask(patch_lengths, logits.size(1)).to(logits.device());
  const at::Tensor valid_logits = logits.detach().index({mask});  // (N, V)
  CodebookUsage u;
  if (valid_logits.size(0) == 0) return u;
  u.distinct_codes = std::get<0>(at::_unique(valid_logits.argmax(-1))).numel();
  const at::Tensor pbar = torch::softmax(valid_logits.to(torch::kDouble), -1).mean(0);
  const double entropy = -(pbar * (pbar + 1e-30).log()).sum().item<double>();
  u.perplexity = std::exp(entropy);
  return u;
}

namespace {

// The distillation target of a batch: (B, >= P, K) or undefined (teacher: none).
using TeacherFn = std::function<at::Tensor(const data::Batch&)>;

TeacherFn make_teacher(const TokenizerTrainConfig& config, std::shared_ptr<void>& keep_alive) {
  const auto& t = config.teacher;
  if (t.kind == TeacherKind::kUnset) {
    throw Error(
        "config key 'teacher.kind' is required: 'ssast' (with teacher.weights, the "
        "paper's method), 'cache' (with teacher.cache), 'hear' (with teacher.weights: a "
        "pre-trained HEAR acoustic model) or 'none' (no distillation)");
  }
  if (t.kind == TeacherKind::kNone) {
    spdlog::warn(
        "teacher.kind = none: no knowledge distillation (beta = 0); the tokenizer is NOT "
        "trained as in the paper");
    return [](const data::Batch&) { return at::Tensor(); };
  }
  if (t.kind == TeacherKind::kHear) {
    if (t.weights.empty()) {
      throw Error(
          "teacher.kind = hear needs teacher.weights (a pre-trained acoustic model, e.g. "
          "hear-pretrain's RUN_DIR/acoustic_model.safetensors)");
    }
    if (t.hear_model.hidden_size != config.model.decoder.knowledge_hidden_size) {
      throw Error("teacher.hear_model.hidden_size (" + std::to_string(t.hear_model.hidden_size) +
                  ") must equal model.decoder.knowledge_hidden_size (" +
                  std::to_string(config.model.decoder.knowledge_hidden_size) + ")");
    }
    auto acoustic = std::make_shared<models::AcousticModel>(t.hear_model);
    load_acoustic_weights(*acoustic, t.weights);  // the rule hear-finetune's `pretrained` follows
    (*acoustic)->eval();
    for (auto& p : (*acoustic)->parameters()) p.set_requires_grad(false);
    keep_alive = acoustic;
    spdlog::info("teacher: HEAR acoustic model {} from {}", c10::str(**acoustic), t.weights);
    auto frontend = std::make_shared<audio::Frontend>();
    return [acoustic, frontend](const data::Batch& batch) {
      torch::NoGradGuard no_grad;
      (*acoustic)->to(batch.waveforms.device());  // train.device (a no-op once there)
      const auto f = (*frontend)(batch.waveforms, batch.lengths);
      return (*acoustic)->forward(f.log_mel, f.lengths).values;  // (B, P, hidden)
    };
  }
  if (t.model.embed_dim != config.model.decoder.knowledge_hidden_size) {
    throw Error("teacher.model.embed_dim (" + std::to_string(t.model.embed_dim) +
                ") must equal model.decoder.knowledge_hidden_size (" +
                std::to_string(config.model.decoder.knowledge_hidden_size) + ")");
  }
  if (t.kind == TeacherKind::kSsast) {
    if (t.weights.empty()) {
      throw Error(
          "teacher.kind = ssast needs teacher.weights (SSAST-Base-Frame-400 converted "
          "with scripts/convert_ssast_checkpoint.py)");
    }
    auto teacher = std::make_shared<teacher::SsastTeacher>(t.model);
    teacher::load_ssast_weights(**teacher, t.weights);
    (*teacher)->eval();
    keep_alive = teacher;
    spdlog::info("teacher: SSAST {} from {}", t.model.summary(), t.weights);
    return [teacher](const data::Batch& batch) {
      torch::NoGradGuard no_grad;
      (*teacher)->to(batch.waveforms.device());  // train.device (a no-op once there)
      return (*teacher)->features(batch.waveforms, batch.lengths).features;
    };
  }
  // cache
  if (t.cache.empty()) throw Error("teacher.kind = cache needs teacher.cache (a directory)");
  if (config.data.loader.segments.mode != data::SegmentMode::kConsecutive) {
    throw Error(
        "teacher.kind = cache needs fixed segments: set "
        "data.loader.segments.mode=consecutive (as hear-teacher-cache cut them)");
  }
  auto cache = std::make_shared<teacher::TeacherFeatureCache>(t.cache);
  const std::string rule = teacher::describe_segment_rule(config.data.loader.segments);
  if (cache->identity().segment_rule != rule) {
    throw Error("teacher cache '" + t.cache + "' was cut with segment rule '" +
                cache->identity().segment_rule + "', the config asks for '" + rule + "'");
  }
  if (cache->embed_dim() != t.model.embed_dim) {
    throw Error("teacher cache '" + t.cache + "' holds " + std::to_string(cache->embed_dim()) +
                "-wide features, teacher.model.embed_dim is " + std::to_string(t.model.embed_dim));
  }
  keep_alive = cache;
  spdlog::info("teacher: feature cache {} ({} segments)", t.cache, cache->size());
  return [cache](const data::Batch& batch) {
    std::vector<std::string> paths(batch.paths.begin(), batch.paths.end());
    const at::Tensor host = batch.lengths.to(at::kCPU, at::kLong).contiguous();
    std::vector<int64_t> lengths(host.data_ptr<int64_t>(), host.data_ptr<int64_t>() + batch.size());
    return cache->batch_features(paths, batch.offsets, lengths).first;
  };
}

}  // namespace

TokenizerTrainResult run_tokenizer_train(const TokenizerTrainConfig& config,
                                         const RunRequest& request) {
  io::validate_config(config);
  const auto corpus = read_corpus(config.data);
  std::shared_ptr<void> teacher_keep_alive;
  TeacherFn teacher = make_teacher(config, teacher_keep_alive);
  auto model_options = config.model;
  if (config.teacher.kind == TeacherKind::kNone) model_options.loss_weights.distillation = 0.0;

  StageRun run(config.run_dir, request, config.train);
  models::TokenizerTrainingModel model(model_options);
  spdlog::info("model: {}", c10::str(*model));
  const auto loader = make_training_loader(
      corpus.train, run.sharded(config.data.loader), data::LabelMap(std::vector<std::string>{}),
      "data.train_manifest '" + config.data.train_manifest + "'");
  const audio::Frontend frontend;

  auto forward = [&](const data::Batch& batch, const models::QuantizerInjection& inject) {
    const auto f = batch_features(frontend, batch, run.device());
    return model->forward(f.log_mel, f.lengths, teacher(batch), inject);
  };

  train::TrainerCallbacks callbacks;
  callbacks.train_metric_names = {"reconstruction", "distillation", "diversity", "tau",
                                  "codes_used",     "perplexity"};
  callbacks.loss = [&](const data::Batch& batch, int64_t) {
    const double tau = model->vector_quantizer->temperature();  // the one this forward uses
    auto out = forward(batch, {});
    const auto usage = codebook_usage(out.logits, out.patch_lengths);
    return train::StepResult{out.losses.total,
                             {{"reconstruction", out.losses.reconstruction.item<double>()},
                              {"distillation", out.losses.distillation.item<double>()},
                              {"diversity", out.losses.diversity.item<double>()},
                              {"tau", tau},
                              {"codes_used", static_cast<double>(usage.distinct_codes)},
                              {"perplexity", usage.perplexity}}};
  };
  callbacks.save_extra = [&](std::map<std::string, std::string>& extra) {
    extra["gumbel_temperature"] = train::format_double(model->vector_quantizer->temperature());
  };
  callbacks.load_extra = [&](const std::map<std::string, std::string>& extra) {
    const auto it = extra.find("gumbel_temperature");
    if (it == extra.end()) throw Error("checkpoint state.yaml lacks extra.gumbel_temperature");
    model->vector_quantizer->set_temperature(
        train::parse_double(it->second, "extra.gumbel_temperature"));
  };
  if (!corpus.valid.empty()) {
    callbacks.valid_metric_names = {"valid_loss", "valid_perplexity"};
    callbacks.validate = [&](int64_t) {
      double loss = 0, perplexity = 0;
      const int64_t batches = for_each_validation_batch(
          corpus.valid, config.data.loader, config.data.valid_max_batches,
          [&](const data::Batch& batch) {
            // Eval mode: the quantizer still draws Gumbel noise, from a generator of its own
            // per batch, so that validations are comparable whichever rank scores a batch (the
            // training stream is not touched).
            models::QuantizerInjection inject;
            inject.generator = at::make_generator<at::CPUGeneratorImpl>(4321 + batch.index);
            auto out = forward(batch, inject);
            loss += out.losses.total.item<double>();
            perplexity += codebook_usage(out.logits, out.patch_lengths).perplexity;
          },
          &run.parallel());
      const auto sums = run.parallel().sum({loss, perplexity});
      loss = sums[0], perplexity = sums[1];
      if (batches == 0) throw Error("validation: data.valid_manifest yields no batch");
      return train::MetricValues{{"valid_loss", loss / batches},
                                 {"valid_perplexity", perplexity / batches}};
    };
  }

  TokenizerTrainResult result;
  result.fit = run.fit(config.train, *model, *loader, callbacks);
  result.temperature = model->vector_quantizer->temperature();
  if (!result.fit.interrupted) {
    result.tokenizer_weights =
        run.export_weights(*model->tokenizer, "tokenizer.safetensors", "tokenizer", result.fit.step,
                           {{"gumbel_temperature", train::format_double(result.temperature)}});
  }
  return result;
}

}  // namespace hear::stages
