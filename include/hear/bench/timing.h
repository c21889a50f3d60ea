#pragma once
// A timing harness: warm-up runs, then N timed runs of a callable; median and p90.
#include <functional>
#include <vector>

namespace hear::bench {

struct TimingStats {
  std::vector<double> seconds;  // every timed run, in order
  double median = 0.0;
  double p90 = 0.0;
  double min = 0.0;
  double mean = 0.0;
};

TimingStats summarize(std::vector<double> seconds);

TimingStats time_runs(const std::function<void()>& run, int warmup, int repeats);

}  // namespace hear::bench
