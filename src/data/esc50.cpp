// ESC-50 layout reader (datasets.h): ROOT/meta/esc50.csv lists every clip of ROOT/audio/ with its
// fold, target and category.
#include <algorithm>
#include <cctype>
#include <map>
#include <sstream>

#include "hear/data/datasets.h"
#include "hear/error.h"
#include "hear/io/file_util.h"

namespace hear::data {
namespace fs = std::filesystem;
namespace {

constexpr int kEsc50MaxFold = 5;

std::vector<std::string> esc50_split_commas(const std::string& line) {
  std::vector<std::string> out;
  std::string field;
  std::istringstream in(line);
  while (std::getline(in, field, ',')) out.push_back(field);
  if (!line.empty() && line.back() == ',') out.emplace_back();
  return out;
}

std::string esc50_trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

// A small non-negative decimal integer; false for anything else ("1.0", "-1", "", "x").
bool esc50_parse_int(const std::string& s, int64_t& value) {
  if (s.empty() || s.size() > 9 ||
      !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
    return false;
  }
  value = std::stoll(s);
  return true;
}

}  // namespace

DatasetSplits read_esc50(const fs::path& root_in) {
  std::error_code ec;
  if (!fs::is_directory(root_in, ec)) {
    throw Error("ESC-50: root '" + root_in.string() + "' is not a directory");
  }
  const fs::path root = fs::absolute(root_in).lexically_normal();
  const fs::path csv = root / "meta" / "esc50.csv";
  const fs::path audio_dir = root / "audio";
  if (!fs::is_regular_file(csv, ec)) {
    throw Error("ESC-50: '" + csv.string() + "' not found (expected ROOT/meta/esc50.csv)");
  }
  if (!fs::is_directory(audio_dir, ec)) {
    throw Error("ESC-50: '" + audio_dir.string() + "' is not a directory (expected ROOT/audio)");
  }

  std::istringstream in(io::read_file(csv));
  std::string line;
  int64_t line_no = 0;
  std::vector<std::string> header;
  size_t col_filename = 0, col_fold = 0, col_target = 0, col_category = 0;
  std::map<std::string, int64_t> target_of;         // category -> target
  std::map<int64_t, std::string> category_of;       // target -> category
  std::map<std::string, int64_t> line_of_category;  // where a category was first seen
  std::map<std::string, int64_t> listed;            // filename -> line
  std::map<int64_t, std::vector<ManifestEntry>> by_fold;
  int64_t prefix_disagreements = 0;
  std::string first_disagreement;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto where = [&] { return csv.string() + ":" + std::to_string(line_no) + ": "; };
    if (esc50_trim(line).empty()) continue;
    auto cols = esc50_split_commas(line);
    for (auto& c : cols) c = esc50_trim(c);
    if (header.empty()) {
      header = cols;
      auto find = [&](const std::string& name) {
        auto it = std::find(header.begin(), header.end(), name);
        if (it == header.end()) {
          throw Error(where() + "the header lacks the column '" + name +
                      "' (expected filename,fold,target,category,esc10,src_file,take), got '" +
                      line + "'");
        }
        return static_cast<size_t>(it - header.begin());
      };
      col_filename = find("filename");
      col_fold = find("fold");
      col_target = find("target");
      col_category = find("category");
      continue;
    }
    if (cols.size() != header.size()) {
      throw Error(where() + "expected " + std::to_string(header.size()) +
                  " comma-separated columns as in the header, got " + std::to_string(cols.size()) +
                  " in '" + line + "'");
    }
    const std::string& filename = cols[col_filename];
    if (filename.empty() || filename.find_first_of("/\\") != std::string::npos || filename == "." ||
        filename == "..") {
      throw Error(where() + "bad filename '" + filename + "' (a file name inside ROOT/audio)");
    }
    int64_t fold = 0, target = 0;
    if (!esc50_parse_int(cols[col_fold], fold) || fold < 1 || fold > kEsc50MaxFold) {
      throw Error(where() + "bad fold '" + cols[col_fold] + "' of '" + filename + "' (1.." +
                  std::to_string(kEsc50MaxFold) + ")");
    }
    if (!esc50_parse_int(cols[col_target], target)) {
      throw Error(where() + "bad target '" + cols[col_target] + "' of '" + filename +
                  "' (a non-negative integer)");
    }
    const std::string& category = cols[col_category];
    if (category.empty()) throw Error(where() + "empty category for '" + filename + "'");
    auto [t_it, new_category] = target_of.emplace(category, target);
    if (!new_category && t_it->second != target) {
      throw Error(where() + "category '" + category + "' has target " + std::to_string(target) +
                  " but target " + std::to_string(t_it->second) + " on line " +
                  std::to_string(line_of_category[category]));
    }
    if (new_category) line_of_category[category] = line_no;
    auto [c_it, new_target] = category_of.emplace(target, category);
    if (!new_target && c_it->second != category) {
      throw Error(where() + "target " + std::to_string(target) + " is category '" + category +
                  "' here but '" + c_it->second + "' on line " +
                  std::to_string(line_of_category[c_it->second]));
    }
    auto [l_it, new_file] = listed.emplace(filename, line_no);
    if (!new_file) {
      throw Error(where() + "'" + filename + "' is listed twice (also on line " +
                  std::to_string(l_it->second) + ")");
    }
    const fs::path file = audio_dir / filename;
    if (!fs::is_regular_file(file, ec)) {
      throw Error(where() + "listed file '" + file.string() + "' does not exist");
    }
    ManifestEntry e;
    e.path = file;
    e.label = category;
    try {
      e.num_samples = probe_manifest_entry(file).num_samples;
    } catch (const Error& err) {
      throw Error(where() + err.what());
    }
    // The name's fold prefix is informative only: the CSV column is the split.
    const std::string prefix = filename.substr(0, filename.find('-'));
    if (prefix != std::to_string(fold)) {
      if (prefix_disagreements++ == 0) {
        first_disagreement =
            filename + " (line " + std::to_string(line_no) + ", fold " + std::to_string(fold) + ")";
      }
    }
    by_fold[fold].push_back(std::move(e));
  }
  if (header.empty()) throw Error("ESC-50: '" + csv.string() + "' is empty");
  if (listed.empty()) throw Error("ESC-50: '" + csv.string() + "' lists no clips");

  DatasetSplits out;
  const int64_t num_folds = by_fold.rbegin()->first;
  for (int64_t k = 1; k <= num_folds; ++k) {
    auto it = by_fold.find(k);
    if (it == by_fold.end()) {
      throw Error("ESC-50: '" + csv.string() + "' has folds up to " + std::to_string(num_folds) +
                  " but no clip in fold " + std::to_string(k));
    }
    auto& fold = it->second;
    std::sort(fold.begin(), fold.end(),
              [](const ManifestEntry& a, const ManifestEntry& b) { return a.path < b.path; });
    out.folds.push_back(std::move(fold));
  }
  // Class order = target order (category_of is sorted by target).
  std::vector<std::string> names;
  for (const auto& [target, category] : category_of) names.push_back(category);
  out.labels = LabelMap(names);
  const bool dense = category_of.begin()->first == 0 &&
                     category_of.rbegin()->first == static_cast<int64_t>(category_of.size()) - 1;

  std::string fold_counts;
  for (size_t k = 0; k < out.folds.size(); ++k) {
    fold_counts += (k ? ", " : "") + std::to_string(out.folds[k].size());
  }
  out.notes.push_back("ESC-50 '" + root.string() + "': " + std::to_string(listed.size()) +
                      " clips, " + std::to_string(names.size()) + " classes, " +
                      std::to_string(out.folds.size()) + " folds (clips per fold: " + fold_counts +
                      ")");
  if (!dense) {
    out.notes.push_back("targets are not 0.." + std::to_string(names.size() - 1) +
                        ": class index = rank of the target");
  }
  if (prefix_disagreements > 0) {
    out.notes.push_back(std::to_string(prefix_disagreements) +
                        " file name(s) whose fold prefix differs from the CSV's fold column (the "
                        "CSV wins), e.g. " +
                        first_disagreement);
  }
  // Audio files nobody listed are left out, but said so.
  int64_t unlisted = 0;
  std::string examples;
  for (const auto& d : fs::directory_iterator(audio_dir)) {
    if (!d.is_regular_file()) continue;
    const std::string name = d.path().filename().string();
    if (listed.count(name)) continue;
    if (unlisted++ < 3) examples += (examples.empty() ? "" : ", ") + name;
  }
  if (unlisted > 0) {
    out.notes.push_back(std::to_string(unlisted) + " file(s) in '" + audio_dir.string() +
                        "' are not in esc50.csv and are ignored (e.g. " + examples + ")");
  }
  return out;
}

}  // namespace hear::data
