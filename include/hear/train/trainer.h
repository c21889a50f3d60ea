#pragma once
// The training loop the stages share. One optimizer step is a fixed sequence of phases:
//
//   next batch -> forward + loss (stage callback) -> backward        (x accumulation_steps)
//   -> gradient sync (hook; no-op for one process) -> clip -> AdamW step with lr(step)
//   -> metrics / report -> validation + `best` -> periodic `last`
//
// Run directory (docs/design.md): RUN_DIR/metrics.{jsonl,csv}, RUN_DIR/checkpoints/{last,best}/
// (RUN_DIR/config.yaml and log.txt are the stage skeleton's, hear/stages/common.h).
// Resuming from RUN_DIR/checkpoints/last restores the model, AdamW state, step, loader position,
// torch's CPU RNG, best metric and the stage's extra values, so an interrupted run continues
// exactly: with 1 thread, 20 straight steps and 10 + resume + 10 give bitwise-equal weights.
//
// Device (train.device): the trainer moves the model there at construction and each training
// batch before the loss callback; validation callbacks move their own batches (the model's
// device: nn::module_device). With train.precision fp16 the loss is scaled (train/loss_scaler.h)
// and a step whose gradients overflow is skipped with a warning, its scale kept in checkpoints.
//
// Not thread-safe; one Trainer per process.
#include <torch/types.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "hear/data/loader.h"
#include "hear/io/config.h"
#include "hear/train/checkpoint.h"
#include "hear/train/distributed.h"
#include "hear/train/loss_scaler.h"
#include "hear/train/metrics.h"
#include "hear/train/optimizer.h"
#include "hear/train/precision.h"

namespace torch::nn {
class Module;
}
namespace torch::optim {
class AdamW;
}

namespace hear::train {

enum class NonfiniteAction { kError, kSkip };
constexpr std::array<std::pair<NonfiniteAction, const char*>, 2> enum_names(NonfiniteAction) {
  return {{{NonfiniteAction::kError, "error"}, {NonfiniteAction::kSkip, "skip"}}};
}

enum class BestMode { kMax, kMin };
constexpr std::array<std::pair<BestMode, const char*>, 2> enum_names(BestMode) {
  return {{{BestMode::kMax, "max"}, {BestMode::kMin, "min"}}};
}

struct TrainerOptions {
  int64_t steps = 450000;           // optimizer steps of the whole run (also the schedule length)
  int64_t log_every = 100;          // report line + metrics row every N steps
  int64_t checkpoint_every = 1000;  // `last` every N steps (0: only when the loop ends)
  int64_t validate_every = 0;       // validation every N steps; 0: at the end of every epoch
  int threads = 0;                  // intra-op threads (at::set_num_threads); 0: LibTorch's
                                    // default (physical cores, or OMP_NUM_THREADS)
  NonfiniteAction nonfinite = NonfiniteAction::kError;  // non-finite loss/gradient: error | skip
  int64_t max_consecutive_skips = 20;                   // with skip: more in a row is an error
  int64_t seed = 0;                                     // torch::manual_seed at a fresh start
  std::string best_metric;                 // validation value that selects `best` ("": no `best`)
  BestMode best_mode = BestMode::kMax;     // max | min
  bool progress_bar = true;                // shown only when stdout is a terminal
  Precision precision = Precision::kFp32;  // forward pass: fp32 | bf16 | fp16 (precision.h)
  std::string device = "cpu";              // cpu | cuda | cuda:N (util/device.h)
  OptimizerOptions optimizer;
  ScheduleOptions schedule;

  void define(io::ConfigSchema& s) {
    s.field("steps", steps, "optimizer steps of the run").min(1);
    s.field("log_every", log_every, "steps between report lines").min(1);
    s.field("checkpoint_every", checkpoint_every, "steps between `last` checkpoints (0: at exit)")
        .min(0);
    s.field("validate_every", validate_every, "steps between validations (0: every epoch)").min(0);
    s.field("threads", threads, "intra-op threads (0: LibTorch default = physical cores)").min(0);
    s.field("nonfinite", nonfinite, "on a NaN/Inf loss: error | skip");
    s.field("max_consecutive_skips", max_consecutive_skips, "skipped batches in a row allowed")
        .min(0);
    s.field("seed", seed, "torch seed at a fresh start");
    s.field("best_metric", best_metric, "validation value selecting the `best` checkpoint");
    s.field("best_mode", best_mode, "max | min");
    s.field("progress_bar", progress_bar, "progress bar on a terminal");
    s.field("precision", precision,
            "forward pass: fp32 | bf16 (autocast; weights, gradients, AdamW stay fp32; "
            "validation runs fp32) | fp16 (CUDA only, with a dynamic loss scaler)");
    s.field("device", device,
            "cpu | cuda | cuda:N: model, batches, losses and AdamW state live there "
            "(checkpoints are device-neutral); under torchrun 'cuda' is cuda:LOCAL_RANK");
    s.section("optimizer", optimizer);
    s.section("schedule", schedule);
  }
};

struct StepResult {
  at::Tensor loss;       // scalar to minimize (mean over the batch)
  MetricValues metrics;  // extra values to report (averaged over the report interval); a value
                         // named "loss" is ignored: the trainer reports `loss` itself
};

struct TrainerCallbacks {
  // Required. Forward pass and loss for one batch (the model is in train mode). `step` is the
  // 0-based index of the optimizer step the batch belongs to.
  std::function<StepResult(const data::Batch& batch, int64_t step)> loss;
  // Optional. Runs under NoGradGuard with the model in eval mode; returns named values
  // (e.g. {"valid_loss", ..}, {"valid_acc", ..}); TrainerOptions::best_metric must be among them.
  // The trainer restores torch's global RNG afterwards, so validating does not change the
  // training stream (draw validation noise from a generator of your own to make it repeatable).
  std::function<MetricValues(int64_t step)> validate;
  // Optional. Gradient all-reduce for data-parallel training; called after the last backward
  // (default with set_data_parallel: DataParallel::average_gradients).
  std::function<void(const std::vector<torch::Tensor>& params)> sync_gradients;
  // Optional. Stage values saved in state.yaml `extra` and given back on resume.
  std::function<void(std::map<std::string, std::string>& extra)> save_extra;
  std::function<void(const std::map<std::string, std::string>& extra)> load_extra;
  // CSV columns (metrics.csv has a fixed header): names returned by `loss` and `validate`.
  // Values not listed still go to metrics.jsonl.
  std::vector<std::string> train_metric_names;
  std::vector<std::string> valid_metric_names;
};

struct FitResult {
  int64_t step = 0;             // optimizer steps completed in total
  bool finished = false;        // reached TrainerOptions::steps
  bool interrupted = false;     // stopped by SIGINT/SIGTERM (or request_stop())
  bool data_exhausted = false;  // the loader ran out (max_epochs) before `steps`
  MetricValues last_validation;
};

class Trainer {
 public:
  // `params`: the parameters to train (all of them must belong to `model`); empty: every
  // parameter of `model` that requires grad. `config_yaml` is stored in every checkpoint.
  // The model, loader and callbacks must outlive the trainer.
  Trainer(TrainerOptions options, std::filesystem::path run_dir, torch::nn::Module& model,
          data::DataLoader& loader, TrainerCallbacks callbacks, std::string config_yaml,
          std::vector<torch::Tensor> params = {});
  ~Trainer();

  // Data-parallel training (train/distributed.h; not owned, must outlive the trainer): fit()
  // broadcasts rank 0's parameters and buffers first, gradients are averaged over the ranks
  // before clipping, and only rank 0 writes metrics, checkpoints and report lines. Every rank
  // must see batches of the same shape count (a sharded sampler) and take the same steps; a
  // non-finite loss on any rank skips the step on all of them (train.nonfinite: skip) or stops
  // them all with an error (error). Each forward pass runs inside an nn::BatchShardGuard (shard
  // `rank` of `world_size`), so random tensors, masked means and batch norm are the global
  // batch's; reported losses and metrics are averages over the ranks, clips/s the global rate.
  void set_data_parallel(DataParallel* parallel) { parallel_ = parallel; }

  // True if RUN_DIR/checkpoints/last (or its .old fallback) exists.
  bool can_resume() const;
  // Restores everything from RUN_DIR/checkpoints/last. Call before fit().
  void resume();

  // Trains until options.steps, an interruption, the end of the data, or `stop_at_step` (> 0)
  // steps in total; always saves `last` on the way out (not when an exception escapes).
  FitResult fit(int64_t stop_at_step = -1);

  // Writes RUN_DIR/checkpoints/<name> now.
  void save_checkpoint(const std::string& name);
  std::filesystem::path checkpoint_dir(const std::string& name) const;

  int64_t step() const { return state_.step; }
  const TrainState& state() const { return state_; }
  torch::optim::AdamW& optimizer() { return *optimizer_; }
  const std::vector<torch::Tensor>& parameters() const { return params_; }
  const WarmupCosineSchedule& schedule() const { return schedule_; }
  const c10::Device& device() const { return device_; }
  const LossScaler* loss_scaler() const { return scaler_ ? &*scaler_ : nullptr; }

 private:
  struct Interval;  // metric sums between two report lines
  enum class StepOutcome { kStepped, kSkipped, kNoData };

  StepOutcome train_step(Interval& interval);
  std::optional<data::Batch> next_batch();
  StepResult forward_loss(const data::Batch& batch);
  void backward(const StepResult& result, double scale);
  void sync_gradients();
  double clip();
  void optimizer_step();
  void report(Interval& interval, bool force);
  MetricValues run_validation();
  void handle_nonfinite(const std::string& what, double value, const data::Batch& batch);
  TrainState snapshot_state();

  bool writes() const;       // rank 0 (or a single process)
  bool distributed() const;  // more than one rank

  TrainerOptions options_;
  c10::Device device_ = c10::kCPU;
  std::optional<LossScaler> scaler_;  // fp16
  DataParallel* parallel_ = nullptr;
  std::filesystem::path run_dir_;
  torch::nn::Module* model_;
  data::DataLoader* loader_;
  TrainerCallbacks callbacks_;
  std::string config_yaml_;
  std::vector<torch::Tensor> params_;
  std::unique_ptr<torch::optim::AdamW> optimizer_;
  WarmupCosineSchedule schedule_;
  TrainState state_;
  bool resumed_ = false;
  bool epoch_ended_ = false;
  int64_t consecutive_skips_ = 0;
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<ProgressBar> progress_;
};

// Process-wide stop flag. While a StopSignalGuard lives, SIGINT and SIGTERM set it (and the next
// such signal kills the process the default way); the trainer checks it between steps.
bool stop_requested();
void request_stop();
void clear_stop_request();

class StopSignalGuard {
 public:
  StopSignalGuard();
  ~StopSignalGuard();
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

 private:
  struct Saved;
  std::unique_ptr<Saved> saved_;
};

// torch::manual_seed(seed): the one seed for model initialisation and dropout.
void seed_torch(uint64_t seed);

}  // namespace hear::train
