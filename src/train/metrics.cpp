#include "hear/train/metrics.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <sstream>

#include "hear/error.h"
#include "hear/io/file_util.h"

namespace hear::train {
namespace fs = std::filesystem;
namespace {

std::string csv_header(const std::vector<std::string>& columns) {
  std::string h = "step";
  for (const auto& c : columns) h += "," + c;
  return h;
}

// Keeps the lines whose step is <= max_step; `step_of` returns -1 for unparsable lines (dropped).
template <class StepOf>
std::string filter_lines(const std::string& text, int64_t max_step, bool keep_first,
                         StepOf step_of) {
  std::istringstream in(text);
  std::string line, out;
  bool first = true;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if ((first && keep_first) || (step_of(line) >= 0 && step_of(line) <= max_step)) {
      out += line + "\n";
    }
    first = false;
  }
  return out;
}

std::FILE* open_append(const fs::path& path) {
  std::FILE* f = std::fopen(path.c_str(), "a");
  if (!f) throw Error("cannot open '" + path.string() + "' for writing: " + std::strerror(errno));
  return f;
}

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

}  // namespace

MetricsWriter::MetricsWriter(const fs::path& run_dir, std::vector<std::string> columns,
                             std::optional<int64_t> resume_step)
    : jsonl_path_(run_dir / "metrics.jsonl"),
      csv_path_(run_dir / "metrics.csv"),
      columns_(std::move(columns)) {
  for (const auto& c : columns_) {
    if (c.find_first_of(",\"\n") != std::string::npos || c == "step") {
      throw Error("metrics column '" + c + "' is reserved or holds a comma/quote/newline");
    }
  }
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  if (ec) throw Error("cannot create run directory '" + run_dir.string() + "': " + ec.message());
  const std::string header = csv_header(columns_);
  std::string csv_text = header + "\n", jsonl_text;
  if (resume_step) {
    if (fs::exists(csv_path_, ec)) {
      const std::string old = io::read_file(csv_path_);
      const std::string old_header = old.substr(0, old.find('\n'));
      if (old_header != header) {
        throw Error("'" + csv_path_.string() + "' has columns '" + old_header +
                    "', this run writes '" + header + "'");
      }
      csv_text = filter_lines(old, *resume_step, true, [](const std::string& line) -> int64_t {
        try {
          return std::stoll(line.substr(0, line.find(',')));
        } catch (const std::exception&) {
          return -1;
        }
      });
    }
    if (fs::exists(jsonl_path_, ec)) {
      jsonl_text = filter_lines(io::read_file(jsonl_path_), *resume_step, false,
                                [](const std::string& line) -> int64_t {
                                  auto j = nlohmann::json::parse(line, nullptr, false);
                                  if (j.is_discarded() || !j.is_object() || !j.contains("step") ||
                                      !j["step"].is_number_integer()) {
                                    return -1;
                                  }
                                  return j["step"].get<int64_t>();
                                });
    }
  }
  io::write_file_atomic(csv_path_, csv_text);
  io::write_file_atomic(jsonl_path_, jsonl_text);
  csv_ = open_append(csv_path_);
  jsonl_ = open_append(jsonl_path_);
}

MetricsWriter::~MetricsWriter() {
  if (csv_) std::fclose(csv_);
  if (jsonl_) std::fclose(jsonl_);
}

void MetricsWriter::write(int64_t step, const MetricValues& values) {
  nlohmann::json j;
  j["step"] = step;
  for (const auto& [k, v] : values) {
    if (std::isfinite(v)) {
      j[k] = v;
    } else {
      j[k] = nullptr;
    }
  }
  const std::string jline = j.dump() + "\n";
  std::string cline = std::to_string(step);
  for (const auto& c : columns_) {
    cline += ",";
    for (auto it = values.rbegin(); it != values.rend(); ++it) {
      if (it->first == c) {
        if (std::isfinite(it->second)) cline += format_number(it->second);
        break;
      }
    }
  }
  cline += "\n";
  if (std::fputs(jline.c_str(), jsonl_) < 0 || std::fputs(cline.c_str(), csv_) < 0 ||
      std::fflush(jsonl_) != 0 || std::fflush(csv_) != 0) {
    throw Error("cannot append to '" + csv_path_.string() + "' / '" + jsonl_path_.string() +
                "': " + std::strerror(errno));
  }
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const int64_t s = static_cast<int64_t>(std::llround(seconds));
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof(buf), "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof(buf), "%lldm%02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof(buf), "%lldh%02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>((s % 3600) / 60));
  } else {
    std::snprintf(buf, sizeof(buf), "%lldd%02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>((s % 86400) / 3600));
  }
  return buf;
}

std::string format_report(const ReportLine& line) {
  char buf[64];
  std::string out = "step " + std::to_string(line.step);
  if (line.total_steps > 0) out += "/" + std::to_string(line.total_steps);
  out += " ep " + std::to_string(line.epoch) + " |";
  for (const auto& [name, v] : line.losses) {
    std::snprintf(buf, sizeof(buf), " %s %.4f", name.c_str(), v);
    out += buf;
  }
  std::snprintf(buf, sizeof(buf), " | lr %.2e | %.1f clips/s", line.lr, line.clips_per_s);
  out += buf;
  if (!line.phase_ms.empty()) {
    out += " |";
    for (const auto& [name, ms] : line.phase_ms) {
      std::snprintf(buf, sizeof(buf), " %s %.0f", name.c_str(), ms);
      out += buf;
    }
    out += " ms";
  }
  if (line.eta_s >= 0) out += " | ETA " + format_duration(line.eta_s);
  return out;
}

bool ProgressBar::stdout_is_terminal() {
  return ::isatty(STDOUT_FILENO) == 1;
}

ProgressBar::ProgressBar(int64_t total, std::optional<bool> enabled, int width)
    : total_(total), enabled_(enabled ? *enabled : stdout_is_terminal()), width_(width) {}

ProgressBar::~ProgressBar() {
  if (shown_) {
    std::fputs("\n", stdout);
    std::fflush(stdout);
  }
}

void ProgressBar::update(int64_t done, const std::string& suffix) {
  if (!enabled_) return;
  const double frac = total_ > 0 ? std::clamp(static_cast<double>(done) / total_, 0.0, 1.0) : 0.0;
  const int filled = static_cast<int>(frac * width_);
  std::string bar = "\r[" + std::string(static_cast<size_t>(filled), '#') +
                    std::string(static_cast<size_t>(width_ - filled), '-') + "] ";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%3d%% %lld/%lld ", static_cast<int>(frac * 100),
                static_cast<long long>(done), static_cast<long long>(total_));
  bar += buf + suffix + "\x1b[K";
  std::fputs(bar.c_str(), stdout);
  std::fflush(stdout);
  shown_ = true;
}

void ProgressBar::clear() {
  if (!enabled_ || !shown_) return;
  std::fputs("\r\x1b[K", stdout);
  std::fflush(stdout);
  shown_ = false;
}

void add_log_file(const fs::path& run_dir) {
  std::error_code ec;
  fs::create_directories(run_dir, ec);
  try {
    auto sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>((run_dir / "log.txt").string(),
                                                                    /*truncate=*/false);
    spdlog::default_logger()->sinks().push_back(sink);
  } catch (const spdlog::spdlog_ex& e) {
    throw Error("cannot open '" + (run_dir / "log.txt").string() + "': " + e.what());
  }
}

}  // namespace hear::train
