#include "hear/train/metrics.h"

#include <gtest/gtest.h>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "test_util.h"

namespace hear::train {
namespace {

TEST(Metrics, FixedColumnsAndResumeTruncation) {
  test::TempDir dir;
  {
    MetricsWriter w(dir.path(), {"loss", "lr"});
    for (int s = 1; s <= 5; ++s) w.write(s, {{"loss", 1.0 / s}, {"lr", 0.5}, {"other", 7}});
    w.write(5, {{"valid_acc", 0.5}, {"loss", NAN}});
  }
  std::string csv = io::read_file(dir / "metrics.csv");
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "step,loss,lr");
  EXPECT_NE(csv.find("\n2,0.5,0.5\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("\n5,,\n"), std::string::npos) << csv;  // NaN and absent values: empty
  std::string jsonl = io::read_file(dir / "metrics.jsonl");
  EXPECT_NE(jsonl.find("\"other\":7"), std::string::npos) << jsonl;
  EXPECT_NE(jsonl.find("\"loss\":null"), std::string::npos) << jsonl;
  {
    MetricsWriter w(dir.path(), {"loss", "lr"}, 3);  // resume after step 3: rows 4, 5 go
    w.write(4, {{"loss", 9.0}});
  }
  csv = io::read_file(dir / "metrics.csv");
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5) << csv;  // header, 1, 2, 3, new 4
  EXPECT_NE(csv.find("\n4,9,\n"), std::string::npos) << csv;
  jsonl = io::read_file(dir / "metrics.jsonl");
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 4) << jsonl;
  EXPECT_THROW(MetricsWriter(dir.path(), {"loss"}, 3), Error);  // different columns
  MetricsWriter fresh(dir.path(), {"loss"});                    // a fresh run starts new files
  EXPECT_EQ(io::read_file(dir / "metrics.csv"), "step,loss\n");
}

TEST(Report, FormatsStepLossesLrThroughputAndEta) {
  ReportLine l;
  l.step = 1200;
  l.total_steps = 450000;
  l.epoch = 3;
  l.losses = {{"loss", 2.34567}, {"acc", 0.12}};
  l.lr = 3e-4;
  l.clips_per_s = 85.34;
  l.eta_s = 2 * 86400 + 3 * 3600 + 59;
  EXPECT_EQ(
      format_report(l),
      "step 1200/450000 ep 3 | loss 2.3457 acc 0.1200 | lr 3.00e-04 | 85.3 clips/s | ETA 2d03h");
  l.phase_ms = {{"data", 3.2}, {"fwd", 120.4}, {"bwd", 250.0}, {"optim", 19.6}};
  EXPECT_EQ(format_report(l),
            "step 1200/450000 ep 3 | loss 2.3457 acc 0.1200 | lr 3.00e-04 | 85.3 clips/s | data 3 "
            "fwd 120 bwd 250 optim 20 ms | ETA 2d03h");
  EXPECT_EQ(format_duration(45), "45s");
  EXPECT_EQ(format_duration(725), "12m05s");
  EXPECT_EQ(format_duration(3 * 3600 + 7 * 60 + 1), "3h07m");
  EXPECT_EQ(format_duration(-1), "?");
  ProgressBar off(10, false);
  EXPECT_FALSE(off.enabled());
  off.update(5);  // prints nothing
}

}  // namespace
}  // namespace hear::train
