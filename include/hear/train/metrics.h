#pragma once
// Run-directory metrics, the one-line report and the terminal progress bar.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace hear::train {

using MetricValues = std::vector<std::pair<std::string, double>>;

// Appends rows to RUN_DIR/metrics.jsonl and RUN_DIR/metrics.csv.
//
// The CSV has a fixed column set chosen at construction: "step" then `columns`. A row leaves the
// columns it does not set empty, and values whose name is not a column go to the JSONL only (which
// takes every value of every row). Non-finite values are written as empty CSV cells / JSON null.
//
// `resume_step`: nullopt starts both files afresh. Otherwise existing rows with step > resume_step
// are dropped (they come from steps after the checkpoint that will be run again) and new rows are
// appended; an existing CSV with a different header is an error naming the file.
class MetricsWriter {
 public:
  MetricsWriter(const std::filesystem::path& run_dir, std::vector<std::string> columns,
                std::optional<int64_t> resume_step = std::nullopt);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void write(int64_t step, const MetricValues& values);
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  std::filesystem::path jsonl_path_, csv_path_;
  std::vector<std::string> columns_;
  std::FILE* jsonl_ = nullptr;
  std::FILE* csv_ = nullptr;
};

struct ReportLine {
  int64_t step = 0;
  int64_t total_steps = 0;
  int64_t epoch = 0;
  MetricValues losses;  // printed in order: "loss 0.1234 acc 0.5600"
  double lr = 0.0;
  double clips_per_s = 0.0;
  MetricValues phase_ms;  // mean ms per step of each phase ("data", "fwd", ...); may be empty
  double eta_s = -1.0;    // < 0: unknown
};

// "step 1200/450000 ep 3 | loss 2.3456 acc 0.1200 | lr 3.00e-04 | 85.3 clips/s
//  | data 3 fwd 120 bwd 250 optim 20 ms | ETA 2d03h"
std::string format_report(const ReportLine& line);
// "45s", "12m05s", "3h07m", "2d03h"
std::string format_duration(double seconds);

// "\r[#####-----] 50% 1200/2400 <suffix>" on stdout, only when stdout is a terminal (or forced).
class ProgressBar {
 public:
  explicit ProgressBar(int64_t total, std::optional<bool> enabled = std::nullopt, int width = 30);
  ~ProgressBar();
  void update(int64_t done, const std::string& suffix = "");
  void clear();  // erases the bar so that a log line can be printed
  bool enabled() const { return enabled_; }
  static bool stdout_is_terminal();

 private:
  int64_t total_;
  bool enabled_;
  int width_;
  bool shown_ = false;
};

// Adds RUN_DIR/log.txt (appending) as a sink of spdlog's default logger.
void add_log_file(const std::filesystem::path& run_dir);

}  // namespace hear::train
