#include "hear/io/config.h"

#include <gtest/gtest.h>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "test_util.h"

namespace hear::io {
namespace {

struct ConfigTestModel {
  int64_t hidden_size = 384;
  double dropout = 0.1;
  std::vector<int64_t> sizes{1, 2};
  void define(ConfigSchema& s) {
    s.field("hidden_size", hidden_size, "width").min(1);
    s.field("dropout", dropout, "dropout probability").range(0.0, 1.0);
    s.field("sizes", sizes, "some sizes").min(0);
  }
};

struct ConfigTestTrain {
  double lr = 3e-4;
  bool clip = false;
  std::string schedule = "cosine";
  std::vector<std::string> tags;
  int threads = 1;
  void define(ConfigSchema& s) {
    s.field("lr", lr, "peak learning rate").range(0.0, 1.0);
    s.field("clip", clip, "clip gradients");
    s.field("schedule", schedule, "schedule").choices({"cosine", "constant"});
    s.field("tags", tags, "free tags");
    s.field("threads", threads, "intra-op threads").min(1);
  }
};

struct ConfigTestRun {
  std::string name = "run";
  ConfigTestModel model;
  ConfigTestTrain train;
  void define(ConfigSchema& s) {
    s.field("name", name, "run name");
    s.section("model", model);
    s.section("train", train);
  }
};

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Config, DefaultsYamlAndOverrides) {
  test::TempDir dir;
  write_file_atomic(dir / "c.yaml",
                    "name: demo\nmodel:\n  hidden_size: 128\n  sizes: [3, 4, 5]\n"
                    "train:\n  lr: 1e-3\n  tags: [a, b]\n");
  auto c = load_config<ConfigTestRun>(dir / "c.yaml", {"train.lr=5e-4", "model.dropout=0.2",
                                                       "train.clip=true", "model.sizes=[7,8]"});
  EXPECT_EQ(c.name, "demo");
  EXPECT_EQ(c.model.hidden_size, 128);
  EXPECT_DOUBLE_EQ(c.model.dropout, 0.2);
  EXPECT_EQ(c.model.sizes, (std::vector<int64_t>{7, 8}));
  EXPECT_DOUBLE_EQ(c.train.lr, 5e-4);
  EXPECT_TRUE(c.train.clip);
  EXPECT_EQ(c.train.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.train.schedule, "cosine");  // untouched default
}

TEST(Config, DumpRoundTripsExactly) {
  ConfigTestRun c;
  c.name = "x: y";         // needs quoting
  c.train.lr = 0.1 + 0.2;  // not representable in few digits
  c.model.sizes = {};
  c.train.tags = {"with space", "q'uote"};
  const std::string text = config_to_yaml(c);
  auto back = config_from_yaml_text<ConfigTestRun>(text, "dump");
  EXPECT_EQ(back.name, c.name);
  EXPECT_EQ(back.train.lr, c.train.lr);
  EXPECT_EQ(back.model.sizes, c.model.sizes);
  EXPECT_EQ(back.train.tags, c.train.tags);
  EXPECT_EQ(config_to_yaml(back), text);
  EXPECT_NE(text.find("peak learning rate"), std::string::npos);  // docs as comments
}

TEST(Config, UnknownKeysListTheValidOnes) {
  ConfigTestRun c;
  auto msg = error_of([&] { load_config_into(c, std::nullopt, {"train.lrr=1"}); });
  EXPECT_NE(msg.find("'train.lrr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("lr, clip, schedule, tags, threads"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"trian.lr=1"}); });
  EXPECT_NE(msg.find("'trian.lr'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("name, model, train"), std::string::npos) << msg;
  test::TempDir dir;
  write_file_atomic(dir / "bad.yaml", "model:\n  hiden_size: 3\n");
  msg = error_of([&] { load_config_into(c, dir / "bad.yaml", {}); });
  EXPECT_NE(msg.find("bad.yaml"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'model.hiden_size'"), std::string::npos) << msg;
}

TEST(Config, WrongTypesAndRangesNameKeyAndValue) {
  ConfigTestRun c;
  auto msg = error_of([&] { load_config_into(c, std::nullopt, {"model.hidden_size=abc"}); });
  EXPECT_NE(msg.find("'model.hidden_size'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("abc"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"model.dropout=1.5"}); });
  EXPECT_NE(msg.find("'model.dropout'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1.5"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"model.hidden_size=0"}); });
  EXPECT_NE(msg.find("below the minimum"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"train.schedule=linear"}); });
  EXPECT_NE(msg.find("not one of: cosine, constant"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"train.clip=maybe"}); });
  EXPECT_NE(msg.find("true or false"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"train.threads=3000000000"}); });
  EXPECT_NE(msg.find("int"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"model.sizes=[1,-2]"}); });
  EXPECT_NE(msg.find("below the minimum"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"novalue"}); });
  EXPECT_NE(msg.find("key=value"), std::string::npos) << msg;
  test::TempDir dir;
  write_file_atomic(dir / "t.yaml", "train: 3\n");
  msg = error_of([&] { load_config_into(c, dir / "t.yaml", {}); });
  EXPECT_NE(msg.find("'train' must be a mapping"), std::string::npos) << msg;
  write_file_atomic(dir / "u.yaml", "model: {hidden_size: [1, 2]}\n");
  msg = error_of([&] { load_config_into(c, dir / "u.yaml", {}); });
  EXPECT_NE(msg.find("'model.hidden_size'"), std::string::npos) << msg;
  write_file_atomic(dir / "v.yaml", "model: {hidden_size: 3\n");
  msg = error_of([&] { load_config_into(c, dir / "v.yaml", {}); });
  EXPECT_NE(msg.find("invalid YAML"), std::string::npos) << msg;
  msg = error_of([&] { load_config_into(c, dir / "missing.yaml", {}); });
  EXPECT_NE(msg.find("missing.yaml' not found"), std::string::npos) << msg;
}

TEST(Config, DescribeListsEveryKey) {
  ConfigTestRun c;
  ConfigSchema s;
  c.define(s);
  const auto d = describe(s);
  EXPECT_NE(d.find("model.hidden_size (int) = 384"), std::string::npos) << d;
  EXPECT_NE(d.find("train.schedule (string) = cosine"), std::string::npos) << d;
}

}  // namespace
}  // namespace hear::io
