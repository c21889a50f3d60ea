// VoxCeleb1 identification reader (datasets.h): ROOT/iden_split.txt assigns every segment to
// train (1), valid (2) or test (3); the files live under ROOT/wav/ (the official archives
// unpacked in place) and/or one of ROOT/*/wav/ (s3prl's layout).
#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include "hear/data/datasets.h"
#include "hear/error.h"
#include "hear/io/file_util.h"

namespace hear::data {
namespace fs = std::filesystem;

DatasetSplits read_voxceleb1(const fs::path& root_in) {
  std::error_code ec;
  if (!fs::is_directory(root_in, ec)) {
    throw Error("VoxCeleb1: root '" + root_in.string() + "' is not a directory");
  }
  const fs::path root = fs::absolute(root_in).lexically_normal();
  const fs::path split_file = root / "iden_split.txt";
  if (!fs::is_regular_file(split_file, ec)) {
    throw Error("VoxCeleb1: '" + split_file.string() +
                "' not found (expected ROOT/iden_split.txt)");
  }
  // The official archives unpacked in place keep ROOT/wav/idXXXXX/... (searched first); s3prl
  // globs ROOT/*/wav/<path>: every ROOT/<dir>/wav folder is a candidate, searched in name order
  // (vox1_dev_wav before vox1_test_wav).
  std::vector<fs::path> wav_roots;
  for (const auto& d : fs::directory_iterator(root)) {
    if (d.is_directory() && fs::is_directory(d.path() / "wav", ec)) {
      wav_roots.push_back(d.path() / "wav");
    }
  }
  std::sort(wav_roots.begin(), wav_roots.end());
  if (fs::is_directory(root / "wav", ec)) wav_roots.insert(wav_roots.begin(), root / "wav");
  if (wav_roots.empty()) {
    throw Error("VoxCeleb1: no ROOT/wav or ROOT/*/wav folder under '" + root.string() +
                "' (expected ROOT/wav/idXXXXX/..., or vox1_dev_wav/wav and vox1_test_wav/wav)");
  }
  std::string searched;
  for (const auto& w : wav_roots) searched += (searched.empty() ? "" : ", ") + w.string();

  std::istringstream in(io::read_file(split_file));
  std::string line;
  int64_t line_no = 0;
  std::map<std::string, int64_t> listed;  // relative path -> line
  std::set<std::string> speakers;
  DatasetSplits out;
  std::map<fs::path, int64_t> per_root;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const auto where = [&] { return split_file.string() + ":" + std::to_string(line_no) + ": "; };
    std::istringstream fields(line);
    std::string set, rel, extra;
    if (!(fields >> set)) continue;  // blank line
    if (!(fields >> rel) || (fields >> extra)) {
      throw Error(where() + "expected '<1|2|3> idXXXXX/<video>/<NNNNN>.wav', got '" + line + "'");
    }
    if (set != "1" && set != "2" && set != "3") {
      throw Error(where() + "bad split '" + set + "' (1 train, 2 valid, 3 test) in '" + line + "'");
    }
    const fs::path rel_path = fs::path(rel).lexically_normal();
    if (rel_path.is_absolute() || rel_path.empty() || *rel_path.begin() == ".." ||
        std::distance(rel_path.begin(), rel_path.end()) < 2) {
      throw Error(where() + "bad path '" + rel + "' (expected idXXXXX/<video>/<NNNNN>.wav)");
    }
    auto [it, fresh] = listed.emplace(rel_path.generic_string(), line_no);
    if (!fresh) {
      throw Error(where() + "'" + rel + "' is listed twice (also on line " +
                  std::to_string(it->second) + ")");
    }
    ManifestEntry e;
    for (const auto& w : wav_roots) {
      if (fs::is_regular_file(w / rel_path, ec)) {
        e.path = w / rel_path;
        ++per_root[w];
        break;
      }
    }
    if (e.path.empty()) {
      throw Error(where() + "listed file '" + rel + "' is in none of the wav folders (" + searched +
                  ")");
    }
    try {
      e.num_samples = probe_manifest_entry(e.path).num_samples;
    } catch (const Error& err) {
      throw Error(where() + err.what());
    }
    e.label = rel_path.begin()->string();
    speakers.insert(e.label);
    (set == "1" ? out.train : set == "2" ? out.valid : out.test).push_back(std::move(e));
  }
  if (listed.empty()) throw Error("VoxCeleb1: '" + split_file.string() + "' lists no files");
  // Dense class indices in speaker-id order (id10001..id11251 -> 0..1250 on the full set).
  out.labels = LabelMap(std::vector<std::string>(speakers.begin(), speakers.end()));
  out.notes.push_back(
      "VoxCeleb1 '" + root.string() + "': " + std::to_string(listed.size()) + " files, " +
      std::to_string(speakers.size()) + " speakers; train " + std::to_string(out.train.size()) +
      ", valid " + std::to_string(out.valid.size()) + ", test " + std::to_string(out.test.size()));
  for (const auto& [w, n] : per_root) {
    out.notes.push_back(std::to_string(n) + " file(s) found under '" + w.string() + "'");
  }
  return out;
}

}  // namespace hear::data
