#include "hear/data/datasets.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "hear/audio/audio_file.h"
#include "hear/data/loader.h"
#include "hear/error.h"
#include "hear/io/file_util.h"
#include "test_util.h"

namespace hear::data {
namespace {

namespace fs = std::filesystem;

at::Tensor datasets_tone(int64_t frames, int rate, double hz, double amplitude) {
  return torch::sin(torch::arange(frames, torch::kDouble) * (2 * M_PI * hz / rate))
      .mul(amplitude)
      .to(torch::kFloat);
}

bool datasets_note_has(const DatasetSplits& s, const std::string& needle) {
  for (const auto& n : s.notes) {
    if (n.find(needle) != std::string::npos) return true;
  }
  return false;
}

const std::string kEscHeader = "filename,fold,target,category,esc10,src_file,take\n";

// A small ESC-50 copy: 2 classes x 5 folds of 0.25 s mono 16 kHz clips, listed with the dog
// rows after the chirping_birds rows (so the class order can only come from `target`), plus one
// stereo 44.1 kHz clip in fold 3, one clip whose name says fold 1 but whose CSV row says fold 4,
// and one audio file missing from the CSV.
std::string make_esc50_replica(const fs::path& root) {
  std::string rows_birds, rows_dog;
  for (int fold = 1; fold <= 5; ++fold) {
    const std::string bird = std::to_string(fold) + "-10" + std::to_string(fold) + "-A-1.wav";
    const std::string dog = std::to_string(fold) + "-20" + std::to_string(fold) + "-A-0.wav";
    audio::write_audio(root / "audio" / bird, datasets_tone(4000, 16000, 880, 0.3), 16000);
    audio::write_audio(root / "audio" / dog, datasets_tone(4000, 16000, 220, 0.3), 16000);
    rows_birds += bird + "," + std::to_string(fold) + ",1,chirping_birds,False,10" +
                  std::to_string(fold) + ",A\n";
    rows_dog += dog + "," + std::to_string(fold) + ",0,dog,True,20" + std::to_string(fold) + ",A\n";
  }
  // Stereo 44.1 kHz: left 0.5 sin, right 0.1 sin -> mono 0.3 sin.
  const auto left = datasets_tone(12345, 44100, 440, 0.5);
  const auto right = datasets_tone(12345, 44100, 440, 0.1);
  audio::write_audio(root / "audio" / "3-300-B-0.wav", torch::stack({left, right}), 44100);
  rows_dog += "3-300-B-0.wav,3,0,dog,True,300,B\n";
  audio::write_audio(root / "audio" / "1-400-A-1.wav", datasets_tone(4000, 16000, 660, 0.3), 16000);
  rows_birds += "1-400-A-1.wav,4,1,chirping_birds,False,400,A\n";
  audio::write_audio(root / "audio" / "9-999-A-0.wav", datasets_tone(1600, 16000, 100, 0.3), 16000);
  const std::string csv = kEscHeader + rows_birds + rows_dog;
  io::write_file_atomic(root / "meta" / "esc50.csv", csv);
  return csv;
}

TEST(Esc50Reader, FoldsFromTheCsvClassesByTargetLengthsAt16k) {
  test::TempDir dir;
  make_esc50_replica(dir / "ESC-50-master");
  const auto s = read_esc50(dir / "ESC-50-master");
  EXPECT_TRUE(s.train.empty() && s.valid.empty() && s.test.empty());
  ASSERT_EQ(s.folds.size(), 5u);
  const std::vector<size_t> sizes = {2, 2, 3, 3, 2};
  for (size_t k = 0; k < 5; ++k) EXPECT_EQ(s.folds[k].size(), sizes[k]) << "fold " << k + 1;
  // Class order follows target, not the CSV order nor the alphabet.
  EXPECT_EQ(s.labels.names(), (std::vector<std::string>{"dog", "chirping_birds"}));
  // The CSV's fold wins over the "1-" prefix of the file name.
  bool in_fold4 = false;
  for (const auto& e : s.folds[3]) in_fold4 |= e.path.filename() == "1-400-A-1.wav";
  EXPECT_TRUE(in_fold4);
  for (const auto& e : s.folds[0]) EXPECT_NE(e.path.filename(), "1-400-A-1.wav");
  EXPECT_TRUE(datasets_note_has(s, "CSV wins")) << s.notes[0];
  EXPECT_TRUE(datasets_note_has(s, "9-999-A-0.wav"));  // unlisted file: ignored, with a note
  // Lengths come from the headers, converted to 16 kHz (rounded down).
  const ManifestEntry* stereo = nullptr;
  for (const auto& e : s.folds[2]) {
    EXPECT_TRUE(e.path.is_absolute());
    EXPECT_EQ(e.offset, 0);
    if (e.path.filename() == "3-300-B-0.wav") {
      stereo = &e;
    } else {
      EXPECT_EQ(e.num_samples, 4000);
    }
  }
  ASSERT_NE(stereo, nullptr);
  EXPECT_EQ(stereo->num_samples, 4478);  // floor(12345 * 16000 / 44100)
  EXPECT_EQ(stereo->label, "dog");

  // The stereo 44.1 kHz file goes through the loader as mono 16 kHz.
  LoaderOptions o;
  o.segments.mode = SegmentMode::kWhole;
  o.segments.min_seconds = 0;
  o.sampler.batch_size = 8;
  o.sampler.shuffle = false;
  o.num_workers = 0;
  DataLoader loader(s.folds[2], o, s.labels);
  const auto b = loader.next();
  ASSERT_TRUE(b.has_value());
  ASSERT_EQ(b->waveforms.dim(), 2);
  int64_t row = -1;
  for (int64_t r = 0; r < b->size(); ++r) {
    if (fs::path(b->paths[r]).filename() == "3-300-B-0.wav") row = r;
  }
  ASSERT_GE(row, 0);
  const int64_t len = b->lengths[row].item<int64_t>();
  EXPECT_GE(len, 4477);
  EXPECT_LE(len, 4478);
  EXPECT_EQ(b->labels[row].item<int64_t>(), 0);
  const at::Tensor w = b->waveforms[row].narrow(0, 0, len);
  // A 440 Hz sine at 16 kHz: channels averaged (peak 0.3), the right pitch after resampling.
  const double peak = w.narrow(0, 200, len - 400).abs().max().item<double>();
  EXPECT_NEAR(peak, 0.3, 0.01);
  const at::Tensor want = datasets_tone(len, 16000, 440, 0.3);
  EXPECT_LT(test::max_abs_diff(w.narrow(0, 200, len - 400), want.narrow(0, 200, len - 400)), 0.01);
}

TEST(Esc50Reader, ErrorsNameTheCsvLine) {
  test::TempDir dir;
  const fs::path root = dir / "esc";
  const std::string csv = make_esc50_replica(root);
  const fs::path csv_path = root / "meta" / "esc50.csv";
  auto with_row = [&](const std::string& row) {
    io::write_file_atomic(csv_path, csv + row);
    return [&] { read_esc50(root); };
  };
  const std::string next_line = "esc50.csv:14:";  // header + 12 rows, then the added one
  test::expect_error_containing(with_row("5-777-A-0.wav,5,0,dog,True,777,A\n"),
                                {next_line, "5-777-A-0.wav", "does not exist"});
  test::expect_error_containing(with_row("9-999-A-0.wav,6,0,dog,True,999,A\n"),
                                {next_line, "bad fold '6'"});
  test::expect_error_containing(with_row("9-999-A-0.wav,x,0,dog,True,999,A\n"),
                                {next_line, "bad fold 'x'"});
  test::expect_error_containing(with_row("9-999-A-0.wav,0,0,dog,True,999,A\n"),
                                {next_line, "bad fold '0'"});
  test::expect_error_containing(with_row("9-999-A-0.wav,1,0,dog\n"), {next_line, "columns"});
  test::expect_error_containing(with_row("9-999-A-0.wav,1,-2,dog,True,999,A\n"),
                                {next_line, "bad target '-2'"});
  test::expect_error_containing(with_row("9-999-A-0.wav,1,7,dog,True,999,A\n"),
                                {next_line, "category 'dog' has target 7"});
  test::expect_error_containing(with_row("9-999-A-0.wav,1,1,cat,True,999,A\n"),
                                {next_line, "target 1 is category 'cat'"});
  test::expect_error_containing(with_row("1-101-A-1.wav,1,1,chirping_birds,False,101,A\n"),
                                {next_line, "listed twice"});
  io::write_file_atomic(csv_path, "filename,fold,category\n");
  test::expect_error_containing([&] { read_esc50(root); }, {"esc50.csv:1:", "'target'"});
  // A CSV whose folds skip one cannot be cross-validated fold by fold.
  io::write_file_atomic(csv_path, kEscHeader + "1-101-A-1.wav,1,1,chirping_birds,False,101,A\n" +
                                      "3-103-A-1.wav,3,1,chirping_birds,False,103,A\n");
  test::expect_error_containing([&] { read_esc50(root); }, {"no clip in fold 2"});
  test::expect_error_containing([&] { read_esc50(dir / "nope"); }, {"not a directory"});
  fs::remove(csv_path);
  test::expect_error_containing([&] { read_esc50(root); }, {"esc50.csv", "not found"});
}

// VoxCeleb1: two wav roots (dev and test speakers), listed in iden_split.txt out of id order.
void make_voxceleb_replica(const fs::path& root) {
  auto clip = [&](const std::string& sub, const std::string& rel, int64_t frames) {
    audio::write_audio(root / sub / "wav" / rel, datasets_tone(frames, 16000, 300, 0.2), 16000);
  };
  clip("vox1_dev_wav", "id10003/aaaaaaaaaaa/00001.wav", 3200);
  clip("vox1_dev_wav", "id10003/aaaaaaaaaaa/00002.wav", 4800);
  clip("vox1_dev_wav", "id10001/bbbbbbbbbbb/00001.wav", 1600);
  clip("vox1_dev_wav", "id10001/ccccccccccc/00001.wav", 8000);
  clip("vox1_test_wav", "id10270/ddddddddddd/00001.wav", 6400);
  clip("vox1_test_wav", "id10270/eeeeeeeeeee/00003.wav", 9600);
  fs::create_directories(root / "notes");  // a folder without wav/ is not a root
  io::write_file_atomic(root / "iden_split.txt",
                        "1 id10270/ddddddddddd/00001.wav\r\n"
                        "1 id10003/aaaaaaaaaaa/00001.wav\r\n"
                        "1 id10001/bbbbbbbbbbb/00001.wav\r\n"
                        "2 id10003/aaaaaaaaaaa/00002.wav\r\n"
                        "3 id10001/ccccccccccc/00001.wav\r\n"
                        "3 id10270/eeeeeeeeeee/00003.wav\r\n");
}

TEST(VoxCeleb1Reader, SplitsFromIdenSplitAcrossWavRoots) {
  test::TempDir dir;
  make_voxceleb_replica(dir / "voxceleb1");
  const auto s = read_voxceleb1(dir / "voxceleb1");
  ASSERT_EQ(s.train.size(), 3u);
  ASSERT_EQ(s.valid.size(), 1u);
  ASSERT_EQ(s.test.size(), 2u);
  EXPECT_TRUE(s.folds.empty());
  // Dense labels: the speaker ids sorted.
  EXPECT_EQ(s.labels.names(), (std::vector<std::string>{"id10001", "id10003", "id10270"}));
  EXPECT_EQ(s.train[0].label, "id10270");
  EXPECT_EQ(s.train[0].path.parent_path().parent_path().parent_path().parent_path().filename(),
            "vox1_test_wav");
  EXPECT_EQ(s.train[0].num_samples, 6400);
  EXPECT_EQ(s.train[1].path.parent_path().parent_path().parent_path().parent_path().filename(),
            "vox1_dev_wav");
  EXPECT_EQ(s.valid[0].label, "id10003");
  EXPECT_EQ(s.valid[0].num_samples, 4800);
  EXPECT_EQ(s.test[0].label, "id10001");
  EXPECT_EQ(s.test[0].num_samples, 8000);
  EXPECT_EQ(s.test[1].path.filename(), "00003.wav");
  EXPECT_TRUE(fs::is_regular_file(s.test[1].path));
}

TEST(VoxCeleb1Reader, ErrorsNameTheSplitLine) {
  test::TempDir dir;
  const fs::path root = dir / "vox";
  make_voxceleb_replica(root);
  const std::string good = io::read_file(root / "iden_split.txt");
  auto with_line = [&](const std::string& line) {
    io::write_file_atomic(root / "iden_split.txt", good + line);
    return [&] { read_voxceleb1(root); };
  };
  test::expect_error_containing(with_line("4 id10001/bbbbbbbbbbb/00001.wav\n"),
                                {"iden_split.txt:7:", "bad split '4'"});
  test::expect_error_containing(with_line("0 id10001/bbbbbbbbbbb/00002.wav\n"),
                                {"iden_split.txt:7:", "bad split '0'"});
  test::expect_error_containing(
      with_line("1 id10002/zzzzzzzzzzz/00001.wav\n"),
      {"iden_split.txt:7:", "id10002/zzzzzzzzzzz/00001.wav", "vox1_dev_wav", "vox1_test_wav"});
  test::expect_error_containing(with_line("1\n"), {"iden_split.txt:7:", "expected"});
  test::expect_error_containing(with_line("1 a b\n"), {"iden_split.txt:7:", "expected"});
  test::expect_error_containing(with_line("2 id10003/aaaaaaaaaaa/00001.wav\n"),
                                {"iden_split.txt:7:", "listed twice", "line 2"});
  test::expect_error_containing(with_line("2 ../id10003/aaaaaaaaaaa/00001.wav\n"),
                                {"iden_split.txt:7:", "bad path"});
  fs::remove_all(root / "vox1_dev_wav");
  fs::remove_all(root / "vox1_test_wav");
  test::expect_error_containing([&] { read_voxceleb1(root); }, {"no ROOT/wav or ROOT/*/wav"});
}

TEST(VoxCeleb1Reader, AcceptsTheOfficialArchivesUnpackedInPlace) {
  // ROOT/wav/idXXXXX/... beside ROOT/iden_split.txt (no vox1_*_wav folders).
  test::TempDir dir;
  const fs::path root = dir / "vox";
  make_voxceleb_replica(root);
  for (const char* sub : {"vox1_dev_wav", "vox1_test_wav"}) {
    for (const auto& speaker : fs::directory_iterator(root / sub / "wav")) {
      fs::create_directories(root / "wav");
      fs::rename(speaker.path(), root / "wav" / speaker.path().filename());
    }
    fs::remove_all(root / sub);
  }
  const auto s = read_voxceleb1(root);
  ASSERT_EQ(s.train.size(), 3u);
  ASSERT_EQ(s.test.size(), 2u);
  EXPECT_EQ(s.train[0].path.parent_path().parent_path().parent_path().filename(), "wav");
  EXPECT_EQ(s.train[0].num_samples, 6400);
}

}  // namespace
}  // namespace hear::data
