// Speech Commands v0.01 / v0.02 reader: the official split rule (TF input_data.which_set), the
// 12-class KS1 protocol with HEAR's fixed silence slices (gscv1) and the 35-word protocol (gscv2).
#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <set>

#include "hear/audio/audio_file.h"
#include "hear/data/datasets.h"
#include "hear/error.h"
#include "hear/util/strings.h"

namespace hear::data {
namespace fs = std::filesystem;
namespace {

constexpr const char* kScBackground = "_background_noise_";
constexpr const char* kScUnknown = "_unknown_";
constexpr const char* kScSilence = "_silence_";

const std::vector<std::string>& gscv1_labels() {
  static const std::vector<std::string> labels = {"yes",  "no",    "up",       "down",
                                                  "left", "right", "on",       "off",
                                                  "stop", "go",    kScUnknown, kScSilence};
  return labels;
}

// The 35 words of v0.02, sorted (v0.01's 30 plus backward, follow, forward, learn, visual).
const std::vector<std::string>& gscv2_labels() {
  static const std::vector<std::string> labels = {
      "backward", "bed",  "bird", "cat",   "dog",    "down",  "eight",  "five",   "follow",
      "forward",  "four", "go",   "happy", "house",  "learn", "left",   "marvin", "nine",
      "no",       "off",  "on",   "one",   "right",  "seven", "sheila", "six",    "stop",
      "three",    "tree", "two",  "up",    "visual", "wow",   "yes",    "zero"};
  return labels;
}

bool is_wav(const fs::path& p) {
  std::string ext = p.extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext == ".wav";
}

std::vector<fs::path> sorted_subdirs(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& d : fs::directory_iterator(dir)) {
    if (d.is_directory()) out.push_back(d.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<fs::path> sorted_wavs(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& d : fs::directory_iterator(dir)) {
    if (d.is_regular_file() && is_wav(d.path())) out.push_back(d.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

enum class ScSplit { kTrain, kValid, kTest };

// validation_list.txt / testing_list.txt: "word/file.wav" per line -> split. Lines are checked
// against the clips found on disk by the caller; here only their form.
struct ScListedFile {
  ScSplit split;
  fs::path list;
  size_t line;
};

void read_list(const fs::path& list, ScSplit split, std::map<std::string, ScListedFile>& out,
               size_t& lines_read) {
  std::ifstream in(list);
  if (!in) throw Error("speech commands: cannot read '" + list.string() + "'");
  std::string line;
  size_t number = 0;
  while (std::getline(in, line)) {
    ++number;
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t begin = 0;
    while (begin < line.size() && std::isspace(static_cast<unsigned char>(line[begin]))) ++begin;
    line.erase(0, begin);
    if (line.empty()) continue;
    const std::string where = list.string() + ":" + std::to_string(number) + ": ";
    const size_t slash = line.find('/');
    if (line.find('\\') != std::string::npos || slash == std::string::npos || slash == 0 ||
        slash + 1 == line.size() || line.find('/', slash + 1) != std::string::npos) {
      throw Error(where + "'" + line +
                  "' is not a relative path '<word>/<file>.wav' with a forward slash");
    }
    const std::string folder = line.substr(0, slash);
    if (folder == "." || folder == ".." || folder == kScBackground) {
      throw Error(where + "'" + line + "' is not a clip of a word folder");
    }
    ++lines_read;
    auto [it, inserted] = out.emplace(line, ScListedFile{split, list, number});
    if (!inserted && it->second.split != split) {
      throw Error(where + "'" + line + "' is also listed in " + it->second.list.string() + ":" +
                  std::to_string(it->second.line));
    }
  }
}

std::string class_counts(const std::vector<ManifestEntry>& entries, const LabelMap& labels) {
  std::vector<int64_t> counts(static_cast<size_t>(labels.size()), 0);
  for (const auto& e : entries) ++counts[static_cast<size_t>(labels.index(e.label))];
  std::string out;
  for (int64_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ' ';
    out += labels.name(i) + "=" + std::to_string(counts[static_cast<size_t>(i)]);
  }
  return out;
}

}  // namespace

std::string speech_commands_split(const std::string& filename, double validation_percent,
                                  double testing_percent) {
  // Only the basename counts, and everything from the first "_nohash_" on is dropped, so all the
  // clips of one speaker land in one split.
  const size_t sep = filename.find_last_of('/');
  std::string key = sep == std::string::npos ? filename : filename.substr(sep + 1);
  const size_t nohash = key.find("_nohash_");
  if (nohash != std::string::npos) key.erase(nohash);

  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(key.data(), key.size(), md, &len, EVP_sha1(), nullptr) != 1 || len != 20) {
    throw Error("speech_commands_split: OpenSSL SHA-1 failed for '" + filename + "'");
  }
  // int(hexdigest, 16) % 2^27 keeps the low 27 bits, i.e. the tail of the big-endian digest.
  const uint32_t tail = (uint32_t(md[16]) << 24) | (uint32_t(md[17]) << 16) |
                        (uint32_t(md[18]) << 8) | uint32_t(md[19]);
  constexpr uint32_t kMaxNumWavsPerClass = (1u << 27) - 1;
  const double percentage =
      static_cast<double>(tail & kMaxNumWavsPerClass) * (100.0 / kMaxNumWavsPerClass);
  if (percentage < validation_percent) return "validation";
  if (percentage < testing_percent + validation_percent) return "testing";
  return "training";
}

DatasetSplits read_speech_commands(const SpeechCommandsOptions& options) {
  const fs::path& root = options.root;
  const bool gscv1 = options.protocol == "gscv1";
  if (!gscv1 && options.protocol != "gscv2") {
    throw Error("speech commands: unknown protocol '" + options.protocol +
                "' (expected gscv1 or gscv2)");
  }
  std::error_code ec;
  if (!fs::is_directory(root, ec)) {
    throw Error("speech commands: root '" + root.string() + "' is not a directory");
  }
  if (!options.test_root.empty() && !fs::is_directory(options.test_root, ec)) {
    throw Error("speech commands: test_root '" + options.test_root.string() +
                "' is not a directory");
  }
  if (gscv1 && !(options.silence_seconds > 0 && options.silence_hop_seconds > 0)) {
    throw Error("speech commands: silence_seconds and silence_hop_seconds must be > 0 (got " +
                std::to_string(options.silence_seconds) + ", " +
                std::to_string(options.silence_hop_seconds) + ")");
  }

  DatasetSplits out;
  const std::vector<std::string>& classes = gscv1 ? gscv1_labels() : gscv2_labels();
  out.labels = LabelMap(classes);
  const std::string tag = "speech commands (" + options.protocol + ")";

  // Word folders. Every folder is checked before any file is probed, so a wrong root or protocol
  // fails at once.
  std::vector<fs::path> word_dirs;
  std::vector<std::string> ignored_dirs;
  bool has_background = false;
  for (const auto& dir : sorted_subdirs(root)) {
    const std::string name = dir.filename().string();
    if (name == kScBackground) {
      has_background = true;
      continue;
    }
    // Like HEAR's glob "[!_]*/*.wav": other underscore folders (and hidden ones) are not words.
    if (name.empty() || name[0] == '_' || name[0] == '.') {
      ignored_dirs.push_back(name);
      continue;
    }
    if (!gscv1 && !out.labels.contains(name)) {
      throw Error(tag + ": folder '" + dir.string() + "' is not one of the 35 words of v0.02 (" +
                  util::join(classes) + ")");
    }
    word_dirs.push_back(dir);
  }
  if (word_dirs.empty()) {
    throw Error(tag + ": no word folders under '" + root.string() + "'");
  }

  std::map<std::string, ScListedFile> listed;
  for (const auto& [file, split] :
       {std::pair<const char*, ScSplit>{"validation_list.txt", ScSplit::kValid},
        {"testing_list.txt", ScSplit::kTest}}) {
    const fs::path list = root / file;
    if (!fs::exists(list, ec)) {
      out.notes.push_back(std::string(file) + " absent: its split follows the hash rule alone");
      continue;
    }
    size_t lines = 0;
    read_list(list, split, listed, lines);
    out.notes.push_back(std::string(file) + ": " + std::to_string(lines) + " files");
  }

  // Clips of the word folders, placed by the lists, else by the hash rule. The lists are checked
  // against the folders before any header is read, so a broken copy fails at once.
  struct Clip {
    fs::path path;
    std::string label;
    ScSplit split;
  };
  std::vector<Clip> clips;
  std::set<std::string> found;
  int64_t by_hash[3] = {0, 0, 0};
  for (const auto& dir : word_dirs) {
    const std::string word = dir.filename().string();
    const std::string label = gscv1 && !out.labels.contains(word) ? kScUnknown : word;
    for (auto& file : sorted_wavs(dir)) {
      const std::string rel = word + "/" + file.filename().string();
      found.insert(rel);
      ScSplit split;
      const auto it = listed.find(rel);
      if (it != listed.end()) {
        split = it->second.split;
      } else {
        const std::string rule = speech_commands_split(rel);
        split = rule == "validation" ? ScSplit::kValid
                                     : (rule == "testing" ? ScSplit::kTest : ScSplit::kTrain);
        ++by_hash[static_cast<int>(split)];
      }
      clips.push_back({std::move(file), label, split});
    }
  }
  for (const auto& [rel, where] : listed) {
    if (found.count(rel) == 0) {
      const fs::path path = root / rel;
      throw Error(where.list.string() + ":" + std::to_string(where.line) + ": listed file '" +
                  path.string() + "' " +
                  (fs::exists(path, ec) ? "is not a .wav clip of a word folder" : "is missing"));
    }
  }
  std::vector<ManifestEntry> listed_test;  // test when there is no separate test set
  for (auto& clip : clips) {
    // With a separate test set the main root's test clips are dropped (never in train or valid).
    if (clip.split == ScSplit::kTest && !options.test_root.empty()) continue;
    ManifestEntry e;
    e.num_samples = probe_manifest_entry(clip.path).num_samples;
    e.path = std::move(clip.path);
    e.label = std::move(clip.label);
    (clip.split == ScSplit::kTrain   ? out.train
     : clip.split == ScSplit::kValid ? out.valid
                                     : listed_test)
        .push_back(std::move(e));
  }
  out.notes.push_back(
      "unlisted clips placed by the hash rule: train " + std::to_string(by_hash[0]) + ", valid " +
      std::to_string(by_hash[1]) + ", test " + std::to_string(by_hash[2]) +
      (options.test_root.empty() ? ""
                                 : "; the root's testing clips (listed or by hash) are dropped: "
                                   "separate test set"));
  if (!ignored_dirs.empty()) {
    out.notes.push_back("ignored folders (not words): " + util::join(ignored_dirs, " "));
  }

  // _silence_: windows of the background recordings (HEAR: range(0, len - window, hop), so a
  // window must end strictly before the end of the file).
  if (gscv1) {
    if (!has_background) {
      out.notes.push_back(std::string("no ") + kScBackground + " folder: no _silence_ clips");
      spdlog::warn("{}: no {} folder under '{}': train/valid have no _silence_ clips", tag,
                   kScBackground, root.string());
    } else {
      const int64_t window = std::llround(options.silence_seconds * audio::kSampleRate);
      const int64_t hop =
          std::max<int64_t>(1, std::llround(options.silence_hop_seconds * audio::kSampleRate));
      int64_t files = 0, slices[2] = {0, 0};
      for (const auto& file : sorted_wavs(root / kScBackground)) {
        ++files;
        const int64_t length = probe_manifest_entry(file).num_samples;
        const bool valid = file.filename().string().rfind("running_tap", 0) == 0;
        for (int64_t start = 0; start + window < length; start += hop) {
          ManifestEntry e;
          e.path = file;
          e.offset = start;
          e.num_samples = window;
          e.label = kScSilence;
          (valid ? out.valid : out.train).push_back(std::move(e));
          ++slices[valid ? 1 : 0];
        }
      }
      if (slices[1] == 0) {
        spdlog::warn("{}: no running_tap* recording in {}: valid has no _silence_ clips", tag,
                     (root / kScBackground).string());
      }
      out.notes.push_back(std::string(kScBackground) + ": " + std::to_string(files) +
                          " files -> _silence_ slices: train " + std::to_string(slices[0]) +
                          ", valid " + std::to_string(slices[1]) + " (running_tap*)");
    }
  } else if (has_background) {
    out.notes.push_back(std::string(kScBackground) + " not used by gscv2");
  }

  // Test set.
  if (options.test_root.empty()) {
    out.test = std::move(listed_test);
    out.notes.push_back("test = testing_list.txt plus unlisted clips the hash rule puts there" +
                        std::string(gscv1 ? " (no _silence_)" : ""));
  } else {
    for (const auto& dir : sorted_subdirs(options.test_root)) {
      const std::string label = dir.filename().string();
      if (!label.empty() && label[0] == '.') continue;
      if (!out.labels.contains(label)) {
        throw Error(tag + ": test folder '" + dir.string() + "' is not a class of " +
                    options.protocol + " (" + util::join(classes) + ")");
      }
      for (const auto& file : sorted_wavs(dir)) {
        ManifestEntry e;
        e.path = file;
        e.num_samples = probe_manifest_entry(file).num_samples;
        e.label = label;
        out.test.push_back(std::move(e));
      }
    }
    if (out.test.empty()) {
      throw Error(tag + ": test_root '" + options.test_root.string() + "' holds no .wav clips");
    }
    out.notes.push_back("test = the class folders of '" + options.test_root.string() + "'");
  }

  if (out.train.empty()) throw Error(tag + ": no training clips under '" + root.string() + "'");
  out.notes.push_back("clips: train " + std::to_string(out.train.size()) + ", valid " +
                      std::to_string(out.valid.size()) + ", test " +
                      std::to_string(out.test.size()));
  for (const auto* split : {&out.train, &out.valid, &out.test}) {
    const char* name = split == &out.train ? "train" : split == &out.valid ? "valid" : "test";
    out.notes.push_back(std::string(name) + " per class: " + class_counts(*split, out.labels));
  }
  return out;
}

}  // namespace hear::data
