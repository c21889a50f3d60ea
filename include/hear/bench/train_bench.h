#pragma once
// hear-bench --train: the cost of one optimizer step of a training stage at the paper's model
// sizes on random clips (teacher features random, as a feature cache would give them), split by
// phase, with the matrix-product work the step executes and the GEMM rate of this machine.
//
//   data       random waveforms (B, S), their lengths and the stage's other inputs (stage 1:
//              teacher features, stage 3: labels; the loader's work is not included)
//   frontend   log-mel / log-power features
//   forward    model forward and loss
//   backward   autograd
//   optimizer  gradient clipping, AdamW step, zero_grad
#include <array>
#include <string>
#include <utility>

#include "hear/bench/inference_bench.h"
#include "hear/io/enum_names.h"
#include "hear/models/hear_classifier.h"
#include "hear/models/mam.h"
#include "hear/models/tokenizer.h"
#include "hear/train/optimizer.h"
#include "hear/train/precision.h"

namespace hear::bench {

enum class TrainStage { kTokenizer, kPretrain, kFinetune };
constexpr std::array<std::pair<TrainStage, const char*>, 3> enum_names(TrainStage) {
  return {{{TrainStage::kTokenizer, "tokenizer"},
           {TrainStage::kPretrain, "pretrain"},
           {TrainStage::kFinetune, "finetune"}}};
}

struct TrainBenchOptions {
  TrainStage stage = TrainStage::kFinetune;
  int64_t batch = 8;            // clips per step
  double seconds = 6.0;         // clip length
  int warmup = 1;               // untimed steps first
  int steps = 5;                // timed steps (median and p90 reported)
  int profile_top = 0;          // > 0: profile one more step by operator, report this many rows
  bool profile_shapes = false;  // group the profile by operator and input shapes
  int64_t classes = 50;         // finetune: classifier outputs (ESC-50)
  models::TokenizerTrainingOptions tokenizer;  // stage 1 (paper sizes by default)
  models::MamOptions mam;                      // stage 2
  models::HearClassifierOptions classifier;    // stage 3
  train::OptimizerOptions optimizer;
  train::Precision precision = train::Precision::kFp32;  // the forward pass (train/precision.h)
  c10::Device device = c10::kCPU;  // model, batch and optimizer state (--device)
};

// Runs on the calling thread's intra-op pool (at::set_num_threads before). JSON:
// {"train": {"stage", "batch", "seconds", "threads", "steps", "median_step_s", "p90_step_s",
//  "clips_per_s", "phases": {name: {"median_s", "p90_s"}}, "executed_macs_per_step",
//  "achieved_gflops", "gemm_gflops", "gemm_fraction", "gemm_gflops_1_thread", "of_1_thread_gemm",
//  "profile": {"wall_s", "ops": [{"name", "calls", "self_s", "total_s"}]} (with profile_top)}}
BenchReport run_train_bench(const TrainBenchOptions& options);

// GFLOP/s of a square float32 matrix product of size n on the current intra-op threads (the
// fastest of a few runs): the rate a step's achieved GFLOP/s is compared with.
double measure_gemm_gflops(int64_t n = 1024, const c10::Device& device = c10::kCPU);

}  // namespace hear::bench
