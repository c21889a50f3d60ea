#include "hear/bench/timing.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>

#include "hear/error.h"

namespace hear::bench {

TimingStats summarize(std::vector<double> seconds) {
  if (seconds.empty()) throw Error("timing: no runs to summarize");
  TimingStats s;
  s.seconds = seconds;
  std::sort(seconds.begin(), seconds.end());
  const size_t n = seconds.size();
  s.median = n % 2 ? seconds[n / 2] : 0.5 * (seconds[n / 2 - 1] + seconds[n / 2]);
  // Nearest-rank 90th percentile.
  const size_t rank = static_cast<size_t>(std::ceil(0.9 * static_cast<double>(n)));
  s.p90 = seconds[std::max<size_t>(rank, 1) - 1];
  s.min = seconds.front();
  s.mean = std::accumulate(seconds.begin(), seconds.end(), 0.0) / static_cast<double>(n);
  return s;
}

TimingStats time_runs(const std::function<void()>& run, int warmup, int repeats) {
  if (repeats < 1) throw Error("timing: repeats must be >= 1, got " + std::to_string(repeats));
  for (int i = 0; i < warmup; ++i) run();
  std::vector<double> seconds;
  for (int i = 0; i < repeats; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    const auto t1 = std::chrono::steady_clock::now();
    seconds.push_back(std::chrono::duration<double>(t1 - t0).count());
  }
  return summarize(seconds);
}

}  // namespace hear::bench
