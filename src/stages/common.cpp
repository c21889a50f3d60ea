#include "hear/stages/common.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/models/weights.h"
#include "hear/train/metrics.h"
#include "hear/util/device.h"
#include "hear/util/directory_lock.h"

namespace hear::stages {
namespace fs = std::filesystem;

CorpusDataConfig::CorpusDataConfig(int64_t batch_size) {
  // The paper's pre-training rule: segments of at most 6 s, clips under 1 s skipped.
  loader.segments.mode = data::SegmentMode::kRandomCrop;
  loader.segments.max_seconds = 6.0;
  loader.segments.min_seconds = 1.0;
  loader.sampler.batch_size = batch_size;
  loader.sampler.drop_last = true;
}

void CorpusDataConfig::define(io::ConfigSchema& s) {
  s.field("train_manifest", train_manifest, "unlabelled training clips (TSV manifest)");
  s.field("valid_manifest", valid_manifest, "held-out clips (empty: no validation)");
  s.field("valid_max_batches", valid_max_batches, "validation batches (0: all)").min(0);
  data::define_on_error(s, loader.on_error);
  s.section("loader", loader);
}

CorpusEntries read_corpus(const CorpusDataConfig& data) {
  CorpusEntries out;
  out.train = read_manifest_for(data.train_manifest, "data.train_manifest");
  if (!data.valid_manifest.empty()) {
    out.valid = read_manifest_for(data.valid_manifest, "data.valid_manifest");
  }
  return out;
}

std::vector<data::ManifestEntry> read_manifest_for(const std::string& path, const std::string& key,
                                                   bool allow_empty) {
  if (path.empty()) throw Error("config key '" + key + "' is required (a manifest TSV)");
  try {
    data::ReadManifestOptions options;
    options.allow_empty = allow_empty;
    return data::read_manifest(path, options);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (from config key '" + key + "')");
  }
}

data::LoaderOptions evaluation_loader_options(data::LoaderOptions options) {
  options.sampler.shuffle = false;
  options.sampler.drop_last = false;
  options.sampler.bucket_pool = 0;
  options.max_epochs = 1;
  if (options.segments.crop_position == data::CropPosition::kRandom) {
    options.segments.crop_position = data::CropPosition::kCenter;
  }
  options.segments.min_seconds = 0.0;  // every clip of the set is scored
  return options;
}

std::unique_ptr<data::DataLoader> make_training_loader(
    const std::vector<data::ManifestEntry>& entries, const data::LoaderOptions& options,
    const data::LabelMap& labels, const std::string& manifest_key) {
  auto loader = std::make_unique<data::DataLoader>(entries, options, labels);
  spdlog::info(
      "data: {} training clips -> {} segments per epoch ({} skipped: shorter than {} s), {} "
      "batches per epoch",
      entries.size(), loader->segments_per_epoch(), loader->skipped_clips(),
      options.segments.min_seconds, loader->batches_per_epoch());
  if (loader->batches_per_epoch() == 0) {
    throw Error(manifest_key +
                " yields no batch (all clips shorter than data.loader.segments.min_seconds, or "
                "fewer segments than a batch with drop_last)");
  }
  return loader;
}

void prepare_run_dir(const fs::path& run_dir, const RunRequest& request) {
  if (!request.resume && fs::exists(run_dir / "checkpoints" / "last")) {
    throw Error("run directory '" + run_dir.string() +
                "' already holds a run (checkpoints/last); resume it with --resume or choose "
                "another run_dir");
  }
  if (request.resume && !fs::exists(run_dir / "checkpoints" / "last") &&
      !fs::exists(run_dir / "checkpoints" / "last.old")) {
    throw Error("cannot resume: '" + (run_dir / "checkpoints" / "last").string() + "' not found");
  }
  fs::create_directories(run_dir);
  io::write_file_atomic(run_dir / "config.yaml", request.config_yaml);
  train::add_log_file(run_dir);
}

std::shared_ptr<train::DataParallel> join_process_group(const train::TrainerOptions& train) {
  train::ProcessGroupConfig group = train::process_group_config_from_environment();
  const c10::Device device = util::parse_device(train.device, "train.device", group.local_rank);
  if (device.is_cuda() && train::nccl_available()) group.backend = "nccl";
  return std::make_shared<train::DataParallel>(group);
}

StageRun::StageRun(fs::path run_dir, RunRequest request, const train::TrainerOptions& train)
    : dir_(std::move(run_dir)), request_(std::move(request)) {
  parallel_ = request_.parallel ? request_.parallel : join_process_group(train);
  // Under torchrun "cuda" is this rank's GPU, cuda:LOCAL_RANK.
  device_ = util::parse_device(train.device, "train.device", parallel_->local_rank());
  if (parallel_->is_main()) {
    lock_ = std::make_unique<util::DirectoryLock>(dir_);
    prepare_run_dir(dir_, request_);
  } else {
    spdlog::set_level(spdlog::level::warn);
  }
  // A rank 0 that failed to prepare RUN_DIR has exited: the others fail here, not later.
  parallel_->barrier();
  if (parallel_->world_size() > 1) {
    spdlog::info("data parallel: {} processes ({}); batch_size is per process",
                 parallel_->world_size(),
                 device_.is_cuda() && train::nccl_available() ? "NCCL" : "Gloo");
  }
  if (!device_.is_cpu()) spdlog::info("device: {}", device_.str());
  train::seed_torch(static_cast<uint64_t>(train.seed));
}

StageRun::~StageRun() = default;

data::LoaderOptions StageRun::sharded(data::LoaderOptions options) const {
  options.sampler.shard_rank = parallel_->rank();
  options.sampler.shard_count = parallel_->world_size();
  return options;
}

fs::path StageRun::checkpoint_dir(const std::string& name) const {
  return dir_ / "checkpoints" / name;
}

train::FitResult StageRun::fit(const train::TrainerOptions& options, torch::nn::Module& model,
                               data::DataLoader& loader, train::TrainerCallbacks callbacks,
                               std::vector<at::Tensor> params) {
  auto trainer_options = options;
  trainer_options.device = device_.str();
  if (!callbacks.validate && !trainer_options.best_metric.empty()) {
    // A config that selects `best` by validation, run without a validation set (e.g. the paper's
    // pre-training config, whose data.valid_manifest is empty): `last` is the result.
    spdlog::info("no validation set: no `best` checkpoint by train.best_metric '{}'",
                 trainer_options.best_metric);
    trainer_options.best_metric.clear();
  }
  train::Trainer trainer(trainer_options, dir_, model, loader, std::move(callbacks),
                         request_.config_yaml, std::move(params));
  trainer.set_data_parallel(parallel_.get());
  if (request_.resume) trainer.resume();
  const train::FitResult result = trainer.fit();
  parallel_->barrier();  // rank 0's checkpoints are complete before any rank reads them
  return result;
}

std::string StageRun::export_weights(const torch::nn::Module& module, const std::string& file,
                                     const std::string& stage, int64_t step,
                                     io::Metadata extra) const {
  const fs::path out = dir_ / file;
  if (!parallel_->is_main()) return out.string();  // rank 0 writes it
  extra["stage"] = stage;
  extra["step"] = std::to_string(step);
  extra["config"] = request_.config_yaml;
  models::save_weights(module, out, extra);
  spdlog::info("{} weights written to {}", stage, out.string());
  return out.string();
}

int64_t for_each_validation_batch(const std::vector<data::ManifestEntry>& entries,
                                  const data::LoaderOptions& training, int64_t max_batches,
                                  const std::function<void(const data::Batch&)>& score,
                                  const train::DataParallel* parallel) {
  auto options = evaluation_loader_options(training);
  // The corpus stages' rule (<= 6 s blocks, < 1 s skipped) in a fixed cut: the same blocks at
  // every validation.
  options.segments.mode = data::SegmentMode::kConsecutive;
  options.segments.min_seconds = training.segments.min_seconds;
  data::DataLoader loader(entries, options, data::LabelMap(std::vector<std::string>{}));
  const int64_t rank = parallel ? parallel->rank() : 0;
  const int64_t world = parallel ? parallel->world_size() : 1;
  int64_t batches = 0;
  while (auto batch = loader.next()) {
    if (batches % world == rank) score(*batch);  // data parallel: every world-th batch
    if (++batches == max_batches) break;
  }
  return batches;
}

audio::Features batch_features(const audio::Frontend& frontend, const data::Batch& batch,
                               const c10::Device& device) {
  return frontend(batch.waveforms.to(device), batch.lengths.to(device));
}

}  // namespace hear::stages
