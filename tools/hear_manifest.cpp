// hear-manifest: an unlabelled (or folder-labelled) audio collection -> a TSV manifest with each
// file's length, for hear-pretrain / hear-tokenizer-train / hear-teacher-cache.
//
//   hear-manifest /data/corpus /data/more.flac -o corpus.tsv
//
// Folders are scanned (recursively by default) for audio files; the length of each comes from its
// header (no decoding), converted to 16 kHz. Files libsndfile cannot open are listed and skipped
// (--strict: an error). The summary says how much audio the paper's pre-training rule keeps: long
// files cut into <= 6 s segments, anything shorter than 1 s skipped.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "hear/audio/audio_file.h"
#include "hear/data/manifest.h"
#include "hear/data/segmenter.h"
#include "tool_common.h"

namespace {

std::vector<std::string> split_extensions(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    while (!item.empty() && item.front() == '.') item.erase(item.begin());
    if (!item.empty()) out.push_back(item);
  }
  if (out.empty()) throw hear::Error("--extensions '" + text + "' names no extension");
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  return hear::tools::run_tool("hear-manifest", [&]() -> int {
    CLI::App app{"Write a TSV manifest (path, length in 16 kHz samples) of audio files"};
    std::vector<std::string> inputs;
    std::string out, extensions = "wav,flac,ogg,opus,mp3,aiff,aif,au";
    bool no_recursive = false, label_from_parent = false, strict = false;
    double max_seconds = 6.0, min_seconds = 1.0;
    app.add_option("inputs", inputs, "folders to scan and/or audio files")->required();
    app.add_option("-o,--out", out, "manifest to write (TSV; atomically)")->required();
    app.add_option("--extensions", extensions, "comma-separated file extensions to take");
    app.add_flag("--no-recursive", no_recursive, "only the folders' own files");
    app.add_flag("--label-from-parent", label_from_parent,
                 "third column = the name of each file's folder (labelled sets)");
    app.add_flag("--strict", strict, "an unreadable audio file is an error (default: skipped)");
    app.add_option("--max-seconds", max_seconds, "summary: segment length of the cut")
        ->check(CLI::PositiveNumber);
    app.add_option("--min-seconds", min_seconds, "summary: shorter clips/tails are skipped")
        ->check(CLI::NonNegativeNumber);
    HEAR_PARSE(app, argc, argv);

    hear::data::ScanOptions scan;
    scan.extensions = split_extensions(extensions);
    scan.recursive = !no_recursive;
    scan.label_from_parent = label_from_parent;
    scan.skip_unreadable = !strict;

    const auto scanned = hear::data::scan_inputs(inputs, scan);
    const auto& entries = scanned.entries;
    const auto& skipped = scanned.skipped;
    hear::data::write_manifest(out, entries);

    hear::data::SegmentOptions rule;
    rule.mode = hear::data::SegmentMode::kConsecutive;
    rule.max_seconds = max_seconds;
    rule.min_seconds = min_seconds;
    hear::io::validate_config(rule);
    const auto segments = hear::data::make_segments(entries, rule, 0, 0);
    int64_t total = 0, kept = 0;
    for (const auto& e : entries) total += e.num_samples;
    for (const auto& s : segments.segments) kept += s.length;
    const double sr = hear::audio::kSampleRate;
    std::printf("%s: %zu files, %.1f s (%.4f hours)\n", out.c_str(), entries.size(), total / sr,
                total / sr / 3600.0);
    std::printf(
        "pre-training rule (segments <= %g s, < %g s skipped): %zu segments, %.1f s (%.4f hours) "
        "kept, %lld files too short\n",
        max_seconds, min_seconds, segments.segments.size(), kept / sr, kept / sr / 3600.0,
        static_cast<long long>(segments.skipped_clips));
    if (!skipped.empty()) {
      std::printf("%zu unreadable files skipped:\n", skipped.size());
      for (const auto& s : skipped) std::printf("  %s\n", s.c_str());
    }
    return 0;
  });
}
