#pragma once
// The skeleton the three stage programs share around the Trainer:
//
//   manifests (CorpusDataConfig / read_manifest_for) -> StageRun (RUN_DIR, config.yaml, log,
//   seed for model initialisation) -> model -> loader (make_training_loader) -> callbacks
//   -> StageRun::fit (Trainer, --resume, fit) -> StageRun::export_weights
//
// Device placement (train.device) and distributed training are added here, once, for every
// stage.
#include <ATen/core/Tensor.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hear/audio/frontend.h"
#include "hear/data/loader.h"
#include "hear/data/manifest.h"
#include "hear/io/config.h"
#include "hear/io/safetensors.h"
#include "hear/train/distributed.h"
#include "hear/train/trainer.h"

namespace torch::nn {
class Module;
}
namespace hear::util {
class DirectoryLock;
}

namespace hear::stages {

// How a stage is started: fresh, or continuing RUN_DIR/checkpoints/last.
struct RunRequest {
  bool resume = false;
  std::string config_yaml;  // the resolved config, stored in the run dir and every checkpoint
  // A process group already joined (the folds of a cross-validation share one); null: the
  // StageRun joins one from the environment (join_process_group).
  std::shared_ptr<train::DataParallel> parallel;
};

// Joins the data-parallel group of a torchrun-style launch (world size 1 without one): Gloo, or
// NCCL when train.device is CUDA and the LibTorch build has NCCL.
std::shared_ptr<train::DataParallel> join_process_group(const train::TrainerOptions& train);

// The data section of the unlabelled stages (tokenizer, MAM pre-training): the paper's rule of
// segments of at most 6 s with clips under 1 s skipped, and an optional held-out manifest.
struct CorpusDataConfig {
  std::string train_manifest;     // unlabelled clips
  std::string valid_manifest;     // held out ("" : no validation)
  int64_t valid_max_batches = 0;  // 0: the whole validation manifest
  data::LoaderOptions loader;

  explicit CorpusDataConfig(int64_t batch_size);
  void define(io::ConfigSchema& s);
};

struct CorpusEntries {
  std::vector<data::ManifestEntry> train, valid;  // valid: empty without data.valid_manifest
};
CorpusEntries read_corpus(const CorpusDataConfig& data);

// Reads a manifest (paths checked), erroring with the config key that named it.
std::vector<data::ManifestEntry> read_manifest_for(const std::string& path, const std::string& key,
                                                   bool allow_empty = false);

// The loader options for scoring a set: fixed order, one pass, no bucketing, no batch dropped,
// every clip kept, a centred crop instead of a random one. Segment mode as given (finetuning scores
// whole clips; the corpus stages pass `consecutive` segments so validations see the same blocks).
data::LoaderOptions evaluation_loader_options(data::LoaderOptions training);

// A training loader that yields at least one batch; the error names `manifest_key`.
std::unique_ptr<data::DataLoader> make_training_loader(
    const std::vector<data::ManifestEntry>& entries, const data::LoaderOptions& options,
    const data::LabelMap& labels, const std::string& manifest_key);

// Creates RUN_DIR, writes RUN_DIR/config.yaml (atomically) and adds RUN_DIR/log.txt to the log.
// Refuses to start a fresh run over an existing run's checkpoints (resume it, or pick another
// run_dir).
void prepare_run_dir(const std::filesystem::path& run_dir, const RunRequest& request);

// One stage run in RUN_DIR. Construction prepares the directory and seeds torch with the
// training seed, so model initialisation is reproducible (the trainer seeds again at step 0 of
// a fresh run, and a resume restores the RNG from the checkpoint).
// In a data-parallel launch (torchrun's RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT, see
// train/distributed.h) every rank constructs the same StageRun: it joins the process group, rank
// 0 alone prepares RUN_DIR, writes logs, checkpoints and exports, and the other ranks log
// warnings only. Rank 0 holds RUN_DIR/lock (util/directory_lock.h) until the StageRun ends: a
// second program started on the same RUN_DIR refuses with the holder's pid.
class StageRun {
 public:
  // `train`: the seed and train.device (resolved here: "cuda" is cuda:LOCAL_RANK under
  // torchrun; NCCL is used between CUDA ranks where the LibTorch build has it, else Gloo).
  StageRun(std::filesystem::path run_dir, RunRequest request, const train::TrainerOptions& train);
  ~StageRun();

  // The loader options of this process: the sampler sharded across the ranks (unchanged for
  // one process). data.loader.sampler.batch_size is per process.
  data::LoaderOptions sharded(data::LoaderOptions options) const;
  const train::DataParallel& parallel() const { return *parallel_; }
  const c10::Device& device() const { return device_; }  // models and batches live here

  const std::filesystem::path& dir() const { return dir_; }
  const RunRequest& request() const { return request_; }
  std::filesystem::path checkpoint_dir(const std::string& name) const;

  // Trains `params` of `model` (empty: every parameter that requires grad), continuing
  // RUN_DIR/checkpoints/last when the request says resume.
  train::FitResult fit(const train::TrainerOptions& options, torch::nn::Module& model,
                       data::DataLoader& loader, train::TrainerCallbacks callbacks,
                       std::vector<at::Tensor> params = {});

  // Writes RUN_DIR/<file> with `module`'s weights and the metadata {stage, step, config} (+ extra);
  // returns the path.
  std::string export_weights(const torch::nn::Module& module, const std::string& file,
                             const std::string& stage, int64_t step, io::Metadata extra = {}) const;

 private:
  std::filesystem::path dir_;
  RunRequest request_;
  c10::Device device_ = c10::kCPU;
  std::shared_ptr<train::DataParallel> parallel_;
  std::unique_ptr<util::DirectoryLock> lock_;
};

// Runs `score` on every batch of `entries` (evaluation_loader_options with consecutive segments)
// until `max_batches` (0: all); returns the number of batches (of all ranks). For the corpus
// stages' validation. With `parallel` (more than one rank) this rank scores batches
// rank, rank + world, ...: the stage sums its values over the ranks (DataParallel::sum).
int64_t for_each_validation_batch(const std::vector<data::ManifestEntry>& entries,
                                  const data::LoaderOptions& training, int64_t max_batches,
                                  const std::function<void(const data::Batch&)>& score,
                                  const train::DataParallel* parallel = nullptr);

// Frontend features of a batch on `device`: waveforms (B, S) with lengths (B,) samples.
audio::Features batch_features(const audio::Frontend& frontend, const data::Batch& batch,
                               const c10::Device& device = c10::kCPU);

}  // namespace hear::stages
