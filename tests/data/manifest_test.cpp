#include "hear/data/manifest.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>

#include "hear/audio/audio_file.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "test_util.h"

namespace hear::data {
namespace {

void manifest_touch(const std::filesystem::path& p) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream(p) << "x";
}

TEST(Manifest, RoundTripsRelativeAndAbsolutePathsAndLabels) {
  test::TempDir dir;
  test::TempDir other;
  std::vector<ManifestEntry> in = {
      {dir / "sub" / "a.wav", 16000, "dog"},
      {dir / "b.flac", 96001, "cat"},
      {other / "c.wav", 1, ""},
  };
  for (const auto& e : in) manifest_touch(e.path);
  const auto m = dir / "train.tsv";
  write_manifest(m, in);
  const std::string text = io::read_file(m);
  EXPECT_EQ(text.substr(0, text.find('\n')), "path\tnum_samples\tlabel");
  EXPECT_NE(text.find("\nsub/a.wav\t16000\tdog\n"), std::string::npos) << text;
  EXPECT_NE(text.find("\n" + (other / "c.wav").string() + "\t1\t\n"), std::string::npos) << text;

  const auto out = read_manifest(m);
  ASSERT_EQ(out.size(), in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(std::filesystem::weakly_canonical(out[i].path),
              std::filesystem::weakly_canonical(in[i].path));
    EXPECT_EQ(out[i].num_samples, in[i].num_samples);
    EXPECT_EQ(out[i].label, in[i].label);
  }
  // No temporary file is left beside the manifest.
  int files = 0;
  for (const auto& d : std::filesystem::directory_iterator(dir.path()))
    files += d.is_regular_file();
  EXPECT_EQ(files, 2);  // train.tsv, b.flac
}

TEST(Manifest, ParsesSecondsSamplesHeaderCommentsAndCrlf) {
  test::TempDir dir;
  const auto m = dir / "m.tsv";
  io::write_file_atomic(m,
                        "PATH\tduration\n"
                        "# a comment\n"
                        "x.wav\t2.5\n"
                        "\n"
                        "y.wav\t16000\t3\r\n"
                        "/abs/z.wav\t0.0000625\n");
  ReadManifestOptions o;
  o.check_files = false;
  const auto e = read_manifest(m, o);
  ASSERT_EQ(e.size(), 3u);
  EXPECT_EQ(e[0].path, dir / "x.wav");
  EXPECT_EQ(e[0].num_samples, 40000);
  EXPECT_EQ(e[0].label, "");
  EXPECT_EQ(e[1].num_samples, 16000);
  EXPECT_EQ(e[1].label, "3");
  EXPECT_EQ(e[2].path, std::filesystem::path("/abs/z.wav"));
  EXPECT_EQ(e[2].num_samples, 1);
}

TEST(Manifest, ErrorsNameTheFileAndLine) {
  test::TempDir dir;
  ReadManifestOptions no_check;
  no_check.check_files = false;
  const auto m = dir / "bad.tsv";
  io::write_file_atomic(m, "a.wav\t100\nb.wav\n");
  test::expect_error_containing([&] { read_manifest(m, no_check); },
                                {"bad.tsv:2", "2 to 4", "b.wav"});
  io::write_file_atomic(m, "a.wav\t100\n\nc.wav\t1.5s\n");
  test::expect_error_containing([&] { read_manifest(m, no_check); }, {"bad.tsv:3", "'1.5s'"});
  io::write_file_atomic(m, "a.wav\t-5\n");
  test::expect_error_containing([&] { read_manifest(m, no_check); }, {"bad.tsv:1", "'-5'"});
  io::write_file_atomic(m, "a.wav\t1\tx\t0\ty\n");
  test::expect_error_containing([&] { read_manifest(m, no_check); }, {"bad.tsv:1", "got 5"});

  // Missing files are listed with their lines; existing ones are not.
  manifest_touch(dir / "here.wav");
  io::write_file_atomic(
      m, "path\tnum_samples\nhere.wav\t10\ngone1.wav\t10\nhere.wav\t3\ngone2.wav\t4\n");
  test::expect_error_containing(
      [&] { read_manifest(m); },
      {"2 listed file(s) do not exist", "bad.tsv:3: ", "gone1.wav", "bad.tsv:5: ", "gone2.wav"});
  EXPECT_EQ(read_manifest(m, no_check).size(), 4u);

  io::write_file_atomic(m, "path\tnum_samples\n# nothing\n");
  test::expect_error_containing([&] { read_manifest(m); }, {"bad.tsv", "no entries"});
  ReadManifestOptions allow;
  allow.allow_empty = true;
  EXPECT_TRUE(read_manifest(m, allow).empty());

  test::expect_error_containing([&] { read_manifest(dir / "absent.tsv"); }, {"absent.tsv"});
  test::expect_error_containing(
      [&] {
        write_manifest(m, {{dir / "a\tb.wav", 1, ""}});
      },
      {"tab or newline"});
}

TEST(Manifest, ScannerProbesGeneratedAudio) {
  test::TempDir dir;
  auto tone = [](int64_t n, int rate) {
    return torch::sin(torch::arange(n, torch::kFloat) * (2 * M_PI * 440.0 / rate)) * 0.5;
  };
  audio::write_audio(dir / "dog" / "a.wav", tone(16000, 16000), 16000);
  audio::write_audio(dir / "dog" / "b.flac", tone(24000, 16000), 16000);
  audio::write_audio(dir / "cat" / "c.WAV", tone(8000, 8000), 8000);          // 1 s at 8 kHz
  audio::write_audio(dir / "cat" / "d.wav", torch::zeros({2, 4410}), 44100);  // stereo 0.1 s
  std::ofstream(dir / "cat" / "notes.txt") << "not audio";
  std::ofstream(dir / "cat" / "broken.wav") << "RIFF but not really audio";

  ScanOptions o;
  o.label_from_parent = true;
  ScanResult r = scan_directory(dir.path(), o);
  ASSERT_EQ(r.entries.size(), 4u);
  ASSERT_EQ(r.skipped.size(), 1u);
  EXPECT_NE(r.skipped[0].find("broken.wav"), std::string::npos);
  // Sorted by path: cat/c.WAV, cat/d.wav, dog/a.wav, dog/b.flac.
  EXPECT_EQ(r.entries[0].path.filename(), "c.WAV");
  EXPECT_EQ(r.entries[0].num_samples, 16000);  // converted to 16 kHz
  EXPECT_EQ(r.entries[0].label, "cat");
  EXPECT_EQ(r.entries[1].num_samples, 1600);  // 4410 frames at 44.1 kHz
  EXPECT_EQ(r.entries[2].num_samples, 16000);
  EXPECT_EQ(r.entries[3].num_samples, 24000);
  EXPECT_EQ(r.entries[3].label, "dog");

  write_manifest(dir / "all.tsv", r.entries);
  const auto back = read_manifest(dir / "all.tsv");  // every listed file exists
  ASSERT_EQ(back.size(), 4u);
  EXPECT_EQ(back[3].num_samples, 24000);
  EXPECT_EQ(back[3].label, "dog");

  o.skip_unreadable = false;
  test::expect_error_containing([&] { scan_directory(dir.path(), o); }, {"broken.wav"});
  test::expect_error_containing([&] { scan_directory(dir / "nope"); }, {"not a directory"});
}

TEST(Manifest, LabelMapSortsNumericLabelsNumerically) {
  std::vector<ManifestEntry> e = {{"a", 1, "10"}, {"b", 1, "2"}, {"c", 1, ""}, {"d", 1, "0"}};
  LabelMap m = LabelMap::from_entries(e);
  EXPECT_EQ(m.names(), (std::vector<std::string>{"0", "2", "10"}));
  EXPECT_EQ(m.index("10"), 2);
  e.push_back({"e", 1, "dog"});
  LabelMap n = LabelMap::from_entries(e);
  EXPECT_EQ(n.names(), (std::vector<std::string>{"0", "10", "2", "dog"}));
  test::expect_error_containing([&] { n.index("cat"); }, {"'cat'", "4 known classes"});
  test::expect_error_containing([&] { LabelMap({"a", "a"}); }, {"duplicate label 'a'"});
}

TEST(Manifest, OffsetColumnRoundTripsAndIsOnlyWrittenWhenUsed) {
  test::TempDir dir;
  manifest_touch(dir / "noise.wav");
  manifest_touch(dir / "a.wav");
  // Without any offset the file keeps its three columns.
  write_manifest(dir / "plain.tsv", {{dir / "a.wav", 16000, "dog"}});
  EXPECT_EQ(io::read_file(dir / "plain.tsv"), "path\tnum_samples\tlabel\na.wav\t16000\tdog\n");
  EXPECT_EQ(read_manifest(dir / "plain.tsv")[0].offset, 0);

  std::vector<ManifestEntry> in = {{dir / "noise.wav", 16000, "_silence_", 8000},
                                   {dir / "noise.wav", 16000, "_silence_", 16000},
                                   {dir / "a.wav", 12000, "", 0}};
  write_manifest(dir / "slices.tsv", in);
  EXPECT_EQ(io::read_file(dir / "slices.tsv"),
            "path\tnum_samples\tlabel\toffset\n"
            "noise.wav\t16000\t_silence_\t8000\n"
            "noise.wav\t16000\t_silence_\t16000\n"
            "a.wav\t12000\t\t0\n");
  const auto out = read_manifest(dir / "slices.tsv");
  ASSERT_EQ(out.size(), 3u);
  for (size_t i = 0; i < in.size(); ++i) {
    EXPECT_EQ(out[i].offset, in[i].offset);
    EXPECT_EQ(out[i].num_samples, in[i].num_samples);
    EXPECT_EQ(out[i].label, in[i].label);
  }
  // An empty offset column means 0; a bad one names the file and line.
  io::write_file_atomic(dir / "m.tsv", "a.wav\t100\tx\t\nnoise.wav\t100\tx\t-5\n");
  test::expect_error_containing([&] { read_manifest(dir / "m.tsv"); },
                                {"m.tsv:2:", "bad offset '-5'"});
  io::write_file_atomic(dir / "m.tsv", "a.wav\t100\tx\t\nnoise.wav\t100\tx\t0.5\n");
  test::expect_error_containing([&] { read_manifest(dir / "m.tsv"); },
                                {"m.tsv:2:", "bad offset '0.5'"});
  io::write_file_atomic(dir / "m.tsv", "a.wav\t100\tx\t\n");
  EXPECT_EQ(read_manifest(dir / "m.tsv")[0].offset, 0);
  io::write_file_atomic(dir / "m.tsv", "a.wav\t100\tx\t1\t2\n");
  test::expect_error_containing([&] { read_manifest(dir / "m.tsv"); }, {"m.tsv:1:", "got 5"});
  in[0].offset = -1;
  test::expect_error_containing([&] { write_manifest(dir / "neg.tsv", in); }, {"negative offset"});
}

TEST(Manifest, LabelsFileRoundTripsAndNamesBadLines) {
  test::TempDir dir;
  const LabelMap labels(std::vector<std::string>{"dog", "rain", "sea waves"});
  write_labels(dir / "labels.tsv", labels);
  EXPECT_EQ(io::read_file(dir / "labels.tsv"), "0\tdog\n1\train\n2\tsea waves\n");
  EXPECT_EQ(read_labels(dir / "labels.tsv").names(), labels.names());
  io::write_file_atomic(dir / "gap.tsv", "0\tdog\n2\train\n");
  test::expect_error_containing([&] { read_labels(dir / "gap.tsv"); },
                                {"gap.tsv:2", "expected '1<TAB>class name'"});
  io::write_file_atomic(dir / "twice.tsv", "0\tdog\n1\tdog\n");
  test::expect_error_containing([&] { read_labels(dir / "twice.tsv"); }, {"twice.tsv"});
  test::expect_error_containing([&] { read_labels(dir / "none.tsv"); }, {"none.tsv", "not found"});
}

}  // namespace
}  // namespace hear::data
