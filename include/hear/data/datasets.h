#pragma once
// Readers for the real on-disk layouts of the downstream datasets. Each turns a dataset root into
// labelled manifest entries per split, following the official split rules, so that a researcher
// points hear-finetune at an unpacked copy (`data.format` in the fine-tuning config) instead of
// writing manifests by hand. Lengths come from the files' headers (resampled to 16 kHz), so
// 44.1 kHz stereo files (ESC-50) are listed with their 16 kHz length; decoding resamples.
//
// Errors are hear::Error naming the file and line (a missing file listed in a split, a malformed
// CSV or split line, a fold outside 1..5, an unknown class folder in a closed vocabulary).
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "hear/data/manifest.h"

namespace hear::data {

// The splits of one dataset. Entries carry class names; `labels` fixes the class order of the
// dataset (ESC-50: by target number; Speech Commands: the protocol's list; VoxCeleb1: speaker ids
// sorted, i.e. a dense remap of the sparse id10001..id11251).
struct DatasetSplits {
  std::vector<ManifestEntry> train, valid, test;
  // Cross-validation datasets (ESC-50): folds[k] = the clips of fold k+1; train/valid/test empty.
  std::vector<std::vector<ManifestEntry>> folds;
  LabelMap labels;
  std::vector<std::string> notes;  // what the reader decided (counts, skipped files), for the log
};

// ESC-50: ROOT/audio/*.wav + ROOT/meta/esc50.csv (header
// `filename,fold,target,category,esc10,src_file,take`). Folds come from the CSV column, never the
// file name; label = category, class index = target (a category with two targets is an error).
// Fills `folds` (one per fold value, in fold order).
DatasetSplits read_esc50(const std::filesystem::path& root);

// Speech Commands v0.01 / v0.02: ROOT/<word>/<speaker>_nohash_<n>.wav, ROOT/_background_noise_/,
// ROOT/validation_list.txt, ROOT/testing_list.txt.
struct SpeechCommandsOptions {
  std::filesystem::path root;
  // "gscv1": the 12-class KS1 task (yes no up down left right on off stop go + _unknown_ for
  //          every other word + _silence_) with HEAR's fixed silence slices and no class balancing.
  //          Not SUPERB's training protocol, which draws random 1 s noise crops as silence and
  //          samples classes evenly; the separate test set is the same. "gscv2": the 35 words of v0.02 (an unknown folder is an
  //          error).
  std::string protocol = "gscv1";
  // Optional separate test-set root (speech_commands_test_set_v0.0X: one folder per class of the
  // protocol, including _silence_ and _unknown_ for gscv1; label = folder name, a folder outside
  // the protocol's classes is an error). The root's testing clips are then in no split. Empty:
  // test = testing_list.txt (+ unlisted clips the rule puts in testing), without _silence_.
  std::filesystem::path test_root;
  // _silence_ items (gscv1): every background file sliced into windows of this length with this
  // hop, exactly as HEAR's range(0, len - window, hop): a window must end strictly before the end
  // of the file (a 3.2 s file gives 5 one-second slices, a 2.0 s file 2). Entries point into the
  // background file (ManifestEntry::offset). Slices of running_tap* go to valid, the others to
  // train. gscv2 ignores _background_noise_.
  double silence_seconds = 1.0;
  double silence_hop_seconds = 0.5;
};
// Files listed in validation_list.txt / testing_list.txt (relative `<word>/<file>.wav` paths with
// forward slashes) go to those splits; a listed file that is missing is an error naming the list
// and line. Unlisted files follow the official rule (speech_commands_split below), so a testing
// clip never reaches train even when the lists are incomplete or absent. Folders starting with
// '_' or '.' other than _background_noise_ are not words (ignored, as HEAR's "[!_]*" glob); files
// at the root (README.md, LICENSE) are ignored. Entries are sorted by word folder, then file;
// _silence_ slices follow. Labels: gscv1 in protocol order (yes no up down left right on off stop
// go _unknown_ _silence_), gscv2 the 35 words sorted. Clips shorter than 1 s keep their true
// length and are zero-padded by the loader (segments.pad_to_seconds: 1.0 in the gscv configs).
DatasetSplits read_speech_commands(const SpeechCommandsOptions& options);

// The official split rule (TF input_data.which_set): h = basename with `_nohash_.*$` removed;
// p = (int(sha1(h), 16) mod 2^27) * (100 / (2^27 - 1)); p < valid% -> "validation", p < (valid +
// test)% -> "testing", else "training".
std::string speech_commands_split(const std::string& filename, double validation_percent = 10.0,
                                  double testing_percent = 10.0);

// VoxCeleb1 identification: ROOT/iden_split.txt lines `<1|2|3> idXXXXX/<video>/<NNNNN>.wav`
// (1 train, 2 valid, 3 test); each file is found as ROOT/*/wav/<path> (vox1_dev_wav, vox1_test_wav,
// dev, test, ...). Label = speaker id; `labels` = the sorted speaker ids (dense indices).
DatasetSplits read_voxceleb1(const std::filesystem::path& root);

}  // namespace hear::data
