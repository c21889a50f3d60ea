#pragma once
// Measurements hear-bench makes of the downstream HEAR model on a synthetic clip: the time of each
// stage of one forward (frontend, acoustic model, spectrum gate, task model, head), and the
// cross-check of the analytic MAC count against the products a forward really executes.
#include <cstdint>
#include <map>
#include <string>

#include "hear/bench/cost_model.h"
#include "hear/bench/timing.h"
#include "hear/models/hear_classifier.h"

namespace hear::bench {

// The options to run a clip of `samples` with: the task model's max_length raised when the clip
// has more patches (the reference model stops at 30 s); `note` says so ("" when unchanged).
models::HearClassifierOptions options_for_clip(const models::HearClassifierOptions& options,
                                               int64_t samples, std::string* note);

struct StageTimes {
  double seconds = 0.0;                       // clip duration
  std::map<std::string, TimingStats> stages;  // frontend, acoustic_model, spectrogram_mixture
                                              // (with the gate), task_model, decoder, total
};

// One forward of a random clip of `seconds`, batch 1, split into its stages, each timed on its
// own: `warmup` untimed runs, then `runs` timed ones.
StageTimes time_stages(models::HearClassifier& model, double seconds, int warmup, int runs,
                       uint64_t seed = 0);

struct ExecutedMacCheck {
  int64_t executed = 0;        // products one forward executes (aten op observer)
  int64_t analytic = 0;        // cost.total_macs
  int64_t expected_extra = 0;  // 2 · windows · layers · T(T-1) · hidden
  bool agrees = false;         // executed - analytic == expected_extra
};

// The fast relative-position attention multiplies against the 2T-1 distinct offsets, so its two
// position products cost T(2T-1)d instead of the T·T·d the analytic convention counts: exactly
// `expected_extra` more.
ExecutedMacCheck check_executed_macs(models::HearClassifier& model, const HearCost& cost,
                                     int64_t samples);

}  // namespace hear::bench
