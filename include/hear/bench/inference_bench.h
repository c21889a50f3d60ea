#pragma once
// hear-bench's inference benchmark as a library call: the machine, parameters per module, MACs per
// module for each clip length (analytic, cross-checked against the products a forward executes)
// and the real-time factor of each stage. Returns the results as JSON and as the text report.
#include <string>
#include <vector>

#include "hear/models/hear_classifier.h"

namespace hear::bench {

struct InferenceBenchOptions {
  models::HearClassifierOptions model;
  std::vector<double> seconds = {10.0};  // clip lengths
  int warmup = 3;                        // untimed runs first (at most 1 above 60 s)
  int runs = 10;                         // timed runs (at most 3 above 60 s)
  bool timing = true;                    // false: parameters and MACs only
  bool executed_check = true;            // count the products a forward executes
  c10::Device device = c10::kCPU;        // where the model runs (--device)
  bool int8 = false;  // also time the stages with int8 linear layers (nn/int8_linear.h)
};

struct BenchReport {
  std::string json;  // {"machine", "parameters", "lengths": [...]}
  std::string text;  // the human-readable report
};

// Runs on the calling thread's intra-op pool (at::set_num_threads before).
BenchReport run_inference_bench(const InferenceBenchOptions& options);

// "1,6,10" -> {1, 6, 10}; throws hear::Error naming `what` and the bad item.
std::vector<double> parse_seconds_list(const std::string& text, const std::string& what);

}  // namespace hear::bench
