#include "hear/data/manifest.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

#include "hear/audio/audio_file.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/util/strings.h"

namespace hear::data {
namespace fs = std::filesystem;
namespace {

bool all_digits(const std::string& s) {
  return !s.empty() &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
}

// Seconds (with '.') or a 16 kHz sample count; returns false when the text is neither.
bool parse_length(const std::string& text, int64_t& samples) {
  if (text.find('.') != std::string::npos) {
    try {
      size_t used = 0;
      double seconds = std::stod(text, &used);
      if (used != text.size() || !std::isfinite(seconds) || seconds < 0) return false;
      samples = std::llround(seconds * audio::kSampleRate);
      return true;
    } catch (const std::exception&) {
      return false;
    }
  }
  if (!all_digits(text) || text.size() > 18) return false;
  samples = std::stoll(text);
  return true;
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<ManifestEntry> read_manifest(const fs::path& manifest,
                                         const ReadManifestOptions& options) {
  const std::string text = io::read_file(manifest);
  const fs::path base = manifest.has_parent_path() ? manifest.parent_path() : fs::path(".");
  std::vector<ManifestEntry> entries;
  std::vector<std::string> missing;
  size_t num_missing = 0;
  std::istringstream in(text);
  std::string line;
  int64_t line_no = 0;
  bool first_content_line = true;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto where = [&] { return manifest.string() + ":" + std::to_string(line_no) + ": "; };
    if (line.find_first_not_of(" \t") == std::string::npos || line[0] == '#') continue;
    auto cols = util::split(line, '\t');
    const bool header = first_content_line && lower(cols[0]) == "path";
    first_content_line = false;
    if (header) continue;
    if (cols.size() < 2 || cols.size() > 4) {
      throw Error(where() + "expected 2 to 4 tab-separated columns " +
                  "(path, duration_or_num_samples[, label[, offset]]), got " +
                  std::to_string(cols.size()) + " in '" + line + "'");
    }
    if (cols[0].empty()) throw Error(where() + "empty path");
    ManifestEntry e;
    e.path = fs::path(cols[0]);
    if (e.path.is_relative()) e.path = base / e.path;
    if (!parse_length(cols[1], e.num_samples)) {
      throw Error(where() + "bad duration_or_num_samples '" + cols[1] +
                  "' (seconds need a '.', e.g. 2.0; sample counts are integers)");
    }
    if (cols.size() >= 3) e.label = cols[2];
    if (cols.size() == 4 && !cols[3].empty()) {
      if (!all_digits(cols[3]) || cols[3].size() > 18) {
        throw Error(where() + "bad offset '" + cols[3] +
                    "' (a sample count at 16 kHz: a non-negative integer)");
      }
      e.offset = std::stoll(cols[3]);
    }
    if (options.check_files) {
      std::error_code ec;
      if (!fs::is_regular_file(e.path, ec)) {
        if (missing.size() < 10) missing.push_back(where() + e.path.string());
        ++num_missing;
      }
    }
    entries.push_back(std::move(e));
  }
  if (num_missing > 0) {
    std::string msg = "manifest '" + manifest.string() + "': " + std::to_string(num_missing) +
                      " listed file(s) do not exist:";
    for (const auto& m : missing) msg += "\n  " + m;
    if (num_missing > missing.size()) msg += "\n  ...";
    throw Error(msg);
  }
  if (entries.empty() && !options.allow_empty) {
    throw Error("manifest '" + manifest.string() + "' has no entries");
  }
  return entries;
}

void write_manifest(const fs::path& manifest, const std::vector<ManifestEntry>& entries) {
  const fs::path base = fs::absolute(manifest).parent_path().lexically_normal();
  const bool labelled = std::any_of(entries.begin(), entries.end(),
                                    [](const ManifestEntry& e) { return !e.label.empty(); });
  const bool with_offsets = std::any_of(entries.begin(), entries.end(),
                                        [](const ManifestEntry& e) { return e.offset != 0; });
  std::string out = with_offsets ? "path\tnum_samples\tlabel\toffset\n"
                    : labelled   ? "path\tnum_samples\tlabel\n"
                                 : "path\tnum_samples\n";
  for (const auto& e : entries) {
    fs::path p = fs::absolute(e.path).lexically_normal();
    fs::path rel = p.lexically_relative(base);
    const bool under_base = !rel.empty() && *rel.begin() != "..";
    std::string shown = under_base ? rel.generic_string() : p.string();
    for (const std::string& field : {shown, e.label}) {
      if (field.find_first_of("\t\n\r") != std::string::npos) {
        throw Error("write_manifest('" + manifest.string() + "'): '" + field +
                    "' contains a tab or newline");
      }
    }
    if (e.num_samples < 0) {
      throw Error("write_manifest('" + manifest.string() + "'): negative length for '" +
                  e.path.string() + "'");
    }
    if (e.offset < 0) {
      throw Error("write_manifest('" + manifest.string() + "'): negative offset for '" +
                  e.path.string() + "'");
    }
    out += shown + "\t" + std::to_string(e.num_samples);
    if (labelled || with_offsets) out += "\t" + e.label;
    if (with_offsets) out += "\t" + std::to_string(e.offset);
    out += "\n";
  }
  io::write_file_atomic(manifest, out);
}

ManifestEntry probe_manifest_entry(const fs::path& path) {
  const auto info = audio::probe_audio(path);
  ManifestEntry e;
  e.path = path;
  // Rounded down so that a crop computed from it never asks for samples past the end.
  e.num_samples = static_cast<int64_t>(
      std::floor(static_cast<double>(info.frames) * audio::kSampleRate / info.sample_rate));
  return e;
}

ScanResult scan_directory(const fs::path& root, const ScanOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw Error("scan: '" + root.string() + "' is not a directory");
  std::vector<std::string> exts;
  for (const auto& e : options.extensions) exts.push_back("." + lower(e));
  std::vector<fs::path> files;
  auto consider = [&](const fs::directory_entry& d) {
    if (!d.is_regular_file()) return;
    const std::string ext = lower(d.path().extension().string());
    if (std::find(exts.begin(), exts.end(), ext) != exts.end()) files.push_back(d.path());
  };
  if (options.recursive) {
    for (const auto& d :
         fs::recursive_directory_iterator(root, fs::directory_options::follow_directory_symlink))
      consider(d);
  } else {
    for (const auto& d : fs::directory_iterator(root)) consider(d);
  }
  std::sort(files.begin(), files.end());
  ScanResult result;
  for (const auto& f : files) {
    try {
      ManifestEntry e = probe_manifest_entry(f);
      if (options.label_from_parent) e.label = f.parent_path().filename().string();
      result.entries.push_back(std::move(e));
    } catch (const Error& err) {
      if (!options.skip_unreadable) throw;
      spdlog::warn("scan: skipping {}", err.what());
      result.skipped.push_back(f.string() + ": " + err.what());
    }
  }
  return result;
}

ScanResult scan_inputs(const std::vector<std::string>& inputs, const ScanOptions& options) {
  ScanResult out;
  for (const auto& input : inputs) {
    std::error_code ec;
    if (fs::is_directory(input, ec)) {
      auto r = scan_directory(input, options);
      if (r.entries.empty()) spdlog::warn("{}: no audio files with the given extensions", input);
      out.entries.insert(out.entries.end(), r.entries.begin(), r.entries.end());
      out.skipped.insert(out.skipped.end(), r.skipped.begin(), r.skipped.end());
    } else if (fs::is_regular_file(input, ec)) {
      try {
        auto e = probe_manifest_entry(fs::absolute(input).lexically_normal());
        if (options.label_from_parent) e.label = e.path.parent_path().filename().string();
        out.entries.push_back(std::move(e));
      } catch (const Error& err) {
        if (!options.skip_unreadable) throw;
        out.skipped.push_back(input + ": " + err.what());
      }
    } else {
      throw Error("input '" + input + "' is neither a folder nor a file");
    }
  }
  for (auto& e : out.entries) e.path = fs::absolute(e.path).lexically_normal();
  std::sort(out.entries.begin(), out.entries.end(),
            [](const auto& a, const auto& b) { return a.path < b.path; });
  for (size_t i = 1; i < out.entries.size(); ++i) {
    if (out.entries[i].path == out.entries[i - 1].path) {
      throw Error("'" + out.entries[i].path.string() + "' is given twice (overlapping inputs?)");
    }
  }
  if (out.entries.empty()) throw Error("no readable audio file found in the inputs");
  return out;
}

LabelMap::LabelMap(std::vector<std::string> names) : names_(std::move(names)) {
  for (size_t i = 0; i < names_.size(); ++i) {
    if (!index_.emplace(names_[i], static_cast<int64_t>(i)).second) {
      throw Error("label map: duplicate label '" + names_[i] + "'");
    }
  }
}

LabelMap LabelMap::from_entries(const std::vector<ManifestEntry>& entries) {
  std::vector<std::string> names;
  for (const auto& e : entries) {
    if (!e.label.empty()) names.push_back(e.label);
  }
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  const bool numeric = std::all_of(names.begin(), names.end(), [](const std::string& s) {
    return all_digits(s) && s.size() <= 18;
  });
  if (numeric) {
    std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
      return std::stoll(a) < std::stoll(b);
    });
  }
  return LabelMap(std::move(names));
}

const std::string& LabelMap::name(int64_t index) const {
  if (index < 0 || index >= size()) {
    throw Error("label index " + std::to_string(index) + " is outside 0.." +
                std::to_string(size() - 1));
  }
  return names_[static_cast<size_t>(index)];
}

int64_t LabelMap::index(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) {
    throw Error("label '" + name + "' is not one of the " + std::to_string(size()) +
                " known classes");
  }
  return it->second;
}

void write_labels(const fs::path& path, const LabelMap& labels) {
  std::string text;
  for (int64_t i = 0; i < labels.size(); ++i) {
    text += std::to_string(i) + "\t" + labels.name(i) + "\n";
  }
  io::write_file_atomic(path, text);
}

LabelMap read_labels(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw Error("labels file '" + path.string() + "' not found");
  std::istringstream in(io::read_file(path));
  std::vector<std::string> names;
  std::string line;
  for (int64_t number = 1; std::getline(in, line); ++number) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    const auto tab = line.find('\t');
    const std::string expected = std::to_string(names.size());
    if (tab == std::string::npos || line.substr(0, tab) != expected || tab + 1 == line.size()) {
      throw Error(path.string() + ":" + std::to_string(number) + ": expected '" + expected +
                  "<TAB>class name', got '" + line + "'");
    }
    names.push_back(line.substr(tab + 1));
  }
  if (names.empty()) throw Error("labels file '" + path.string() + "' lists no class");
  try {
    return LabelMap(std::move(names));
  } catch (const Error& e) {
    throw Error(path.string() + ": " + e.what());
  }
}

}  // namespace hear::data
