#pragma once
// Manifests: the list of audio clips a stage reads, as a tab-separated text file
//
//   path<TAB>duration_or_num_samples[<TAB>label[<TAB>offset]]
//
// - `path`: absolute, or relative to the folder holding the manifest.
// Lengths are in samples at audio::kSampleRate (16 kHz).
// - second column: a value containing '.' is a duration in seconds ("2.5"); otherwise it is a
//   sample count at 16 kHz ("40000"). Either way it is stored as samples at 16 kHz
//   (seconds * 16000, rounded). The writer always writes sample counts.
// - `label` (optional): a class name or number; an empty/missing label means unlabelled.
// - `offset` (optional): first sample of the clip inside the file, as a sample count at 16 kHz
//   (integer). Missing or 0: the clip starts at the beginning of the file. With an offset > 0 the
//   entry is a slice of a longer file and its length column is the slice's length.
// - An optional first line whose first column is `path` is a header and is skipped. Blank lines and
//   lines starting with '#' are ignored.
//
// The length is a hint used for segmenting and bucketing; decoding reads the real file, so a file
// whose rate is not 16 kHz can decode to a sample count that differs from it by a sample or two.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace hear::data {

struct ManifestEntry {
  std::filesystem::path path;  // absolute or resolved against the manifest's folder
  int64_t num_samples = 0;     // length at 16 kHz
  std::string label;           // empty: unlabelled
  // First sample (16 kHz) of the clip inside the file: > 0 for slices of a longer file (e.g.
  // Speech Commands' _silence_ windows of the background recordings); num_samples is then the
  // slice's length.
  int64_t offset = 0;
};

struct ReadManifestOptions {
  bool check_files = true;  // stat every path; missing files are an error listing them
  bool allow_empty = false;
};

// Throws hear::Error naming the manifest and line ("m.tsv:12: ...") for malformed lines, bad
// lengths, missing files (the first ones are listed, with their line numbers) and empty manifests.
std::vector<ManifestEntry> read_manifest(const std::filesystem::path& manifest,
                                         const ReadManifestOptions& options = {});

// Writes a header line and one line per entry (sample counts). Paths under the manifest's folder
// are written relative to it, others absolute. The offset column (header
// `path<TAB>num_samples<TAB>label<TAB>offset`) is written only when some entry has offset != 0.
// Written atomically. Throws for paths containing a tab or newline and for negative lengths or
// offsets.
void write_manifest(const std::filesystem::path& manifest,
                    const std::vector<ManifestEntry>& entries);

struct ScanOptions {
  std::vector<std::string> extensions = {"wav", "flac", "ogg", "opus", "mp3", "aiff", "aif", "au"};
  bool recursive = true;
  bool label_from_parent = false;  // label = name of the file's parent folder
  bool skip_unreadable = true;     // unreadable files are logged and skipped; false: error
};

struct ScanResult {
  std::vector<ManifestEntry> entries;  // sorted by path
  std::vector<std::string> skipped;    // "path: reason" for unreadable files
};

// An entry for one audio file: its length from the header (hear::audio::probe_audio), converted
// to 16 kHz and rounded down; no label. Throws hear::Error for files that cannot be read.
ManifestEntry probe_manifest_entry(const std::filesystem::path& path);

// Finds audio files (extension match is case-insensitive) under `root` and probes their headers
// (hear::audio::probe_audio) for their length, converted to 16 kHz and rounded down.
ScanResult scan_directory(const std::filesystem::path& root, const ScanOptions& options = {});

// Folders (scanned with `options`) and audio files -> one list of entries with absolute,
// normalized paths, sorted by path. Unreadable files are listed in `skipped` (with
// options.skip_unreadable) or an error; an input that is neither a folder nor a file, a file
// reached twice (overlapping inputs) and no readable file at all are errors naming them.
ScanResult scan_inputs(const std::vector<std::string>& inputs, const ScanOptions& options = {});

// Class names <-> indices 0..N-1. Names that are all integers sort numerically ("2" < "10"),
// otherwise lexicographically; so numeric labels 0..N-1 keep their values as indices.
class LabelMap {
 public:
  LabelMap() = default;
  explicit LabelMap(std::vector<std::string> names);  // names in index order; must be unique
  static LabelMap from_entries(const std::vector<ManifestEntry>& entries);

  int64_t size() const { return static_cast<int64_t>(names_.size()); }
  const std::vector<std::string>& names() const { return names_; }
  const std::string& name(int64_t index) const;
  bool contains(const std::string& name) const { return index_.count(name) > 0; }
  // Throws hear::Error naming the label when it is not in the map.
  int64_t index(const std::string& name) const;

 private:
  std::vector<std::string> names_;
  std::map<std::string, int64_t> index_;
};

// A run's class order as a file (RUN_DIR/labels.tsv): one line "<index>\t<name>" per class, in
// index order. Written atomically; the reader checks that the indices are 0..N-1 in order and
// throws hear::Error naming the file and line otherwise.
void write_labels(const std::filesystem::path& path, const LabelMap& labels);
LabelMap read_labels(const std::filesystem::path& path);

}  // namespace hear::data
