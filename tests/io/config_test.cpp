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
  std::vector<double> weights{0.5};
  void define(ConfigSchema& s) {
    s.field("hidden_size", hidden_size, "width").min(1);
    s.field("dropout", dropout, "dropout probability").range(0.0, 1.0);
    s.field("sizes", sizes, "some sizes").min(0);
    s.field("weights", weights, "some weights").range(0.0, 1.0);
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
  auto c = load_config<ConfigTestRun>(
      dir / "c.yaml", {"train.lr=5e-4", "model.dropout=0.2", "train.clip=true", "model.sizes=[7,8]",
                       "model.weights=[0.25, 1]"});
  EXPECT_EQ(c.name, "demo");
  EXPECT_EQ(c.model.hidden_size, 128);
  EXPECT_DOUBLE_EQ(c.model.dropout, 0.2);
  EXPECT_EQ(c.model.sizes, (std::vector<int64_t>{7, 8}));
  EXPECT_EQ(c.model.weights, (std::vector<double>{0.25, 1.0}));
  EXPECT_DOUBLE_EQ(c.train.lr, 5e-4);
  EXPECT_TRUE(c.train.clip);
  EXPECT_EQ(c.train.tags, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(c.train.schedule, "cosine");  // untouched default
}

TEST(Config, ConfigDirExpandsToTheFilesFolder) {
  test::TempDir dir;
  std::filesystem::create_directories(dir / "models" / "m");
  write_file_atomic(dir / "models" / "m" / "c.yaml",
                    "name: ${CONFIG_DIR}/weights.safetensors\ntrain:\n  tags: [${CONFIG_DIR}]\n");
  const auto c = load_config<ConfigTestRun>(dir / "models" / "m" / "c.yaml", {});
  const std::string folder =
      std::filesystem::absolute(dir / "models" / "m").lexically_normal().string();
  EXPECT_EQ(c.name, folder + "/weights.safetensors");
  EXPECT_EQ(c.train.tags, (std::vector<std::string>{folder}));
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
  // Each key's doc is a comment on the key's own line (not the next key's).
  EXPECT_NE(text.find("lr: 0.30000000000000004  # peak learning rate\n"), std::string::npos)
      << text;
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

TEST(Config, FuzzFindingsAreClearErrors) {
  // tests/fuzz/config_fuzz.cpp found "=value" (an empty key) reading an empty vector's back().
  ConfigTestRun c;
  for (const char* o : {"=x", "  =mode: random_crop", "."}) {
    const auto msg = error_of([&] { load_config_into(c, std::nullopt, {o}); });
    EXPECT_NE(msg.find("config override"), std::string::npos) << o << ": " << msg;
  }
  EXPECT_NE(error_of([&] { load_config_into(c, std::nullopt, {"train..lr=1"}); }).find("unknown"),
            std::string::npos);
  // ... and a complex YAML key ("? sampler:"), which escaped as YAML::TypedBadConversion.
  test::TempDir dir;
  write_file_atomic(dir / "complex.yaml", "train:\n? lr:\n");
  const auto msg = error_of([&] { load_config_into(c, dir / "complex.yaml", {}); });
  EXPECT_NE(msg.find("complex.yaml: a key is not a plain name (line 2)"), std::string::npos) << msg;
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
  msg = error_of([&] { load_config_into(c, std::nullopt, {"model.weights=[0.5, 2]"}); });
  EXPECT_NE(msg.find("'model.weights'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("above the maximum"), std::string::npos) << msg;
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

// ---------------------------------------------------------------- validate() inside the schema

// Cross-field checks: validate(const ConfigCheck&) is found and run by the schema.
struct ConfigTestWindow {
  int64_t length = 10;
  int64_t overlap = 2;
  void define(ConfigSchema& s) {
    s.field("length", length, "window length").min(1);
    s.field("overlap", overlap, "overlap").min(0);
  }
  void validate(const ConfigCheck& check) const {
    check.require(overlap < length, "overlap",
                  "must be below " + check.key("length") + " (" + std::to_string(length) + ")");
  }
};

struct ConfigTestEncoder {
  ConfigTestWindow window;
  int64_t width = 8;
  int64_t heads = 2;
  void define(ConfigSchema& s) {
    s.section("window", window);
    s.field("width", width, "width").min(1);
    s.field("heads", heads, "heads").min(1);
  }
  void validate(const ConfigCheck& check) const {
    if (width % heads != 0) check.fail("width", "must be a multiple of heads");
    // Innermost checks run first: the window is already known to be consistent here.
    if (window.overlap >= window.length) check.fail("window", "parent check ran before its part");
  }
};

struct ConfigTestTop {
  ConfigTestEncoder encoder;
  int64_t total = 100;
  void define(ConfigSchema& s) {
    s.section("encoder", encoder);
    s.field("total", total, "total").min(0);
    // An explicit check works as well as a validate() method.
    s.check([this](const ConfigCheck& c) {
      c.require(total >= encoder.window.length, "total", "shorter than one window");
    });
  }
};

TEST(Config, CrossFieldChecksNameTheFullKey) {
  ConfigTestTop c;
  auto msg = error_of([&] { load_config_into(c, std::nullopt, {"encoder.window.overlap=10"}); });
  EXPECT_NE(msg.find("config key 'encoder.window.overlap': must be below encoder.window.length"),
            std::string::npos)
      << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"encoder.heads=3"}); });
  EXPECT_NE(msg.find("config key 'encoder.width': must be a multiple of heads"), std::string::npos)
      << msg;
  msg = error_of([&] { load_config_into(c, std::nullopt, {"total=5"}); });
  EXPECT_NE(msg.find("config key 'total': shorter than one window"), std::string::npos) << msg;
  // Field constraints come before the cross-field checks.
  msg = error_of([&] {
    load_config_into(c, std::nullopt, {"encoder.window.overlap=-1", "encoder.heads=3"});
  });
  EXPECT_NE(msg.find("'encoder.window.overlap': value -1 is below the minimum 0"),
            std::string::npos)
      << msg;
  EXPECT_EQ(c.encoder.window.overlap, 2);  // untouched by the failed loads
  // YAML text is checked the same way, and so is a config built in C++.
  msg = error_of(
      [] { config_from_yaml_text<ConfigTestTop>("encoder: {width: 9, heads: 2}\n", "x.yaml"); });
  EXPECT_NE(msg.find("'encoder.width'"), std::string::npos) << msg;
  ConfigTestEncoder hand;
  hand.window.length = 1;
  msg = error_of([&] { validate_config(hand, "model.encoder"); });
  EXPECT_NE(msg.find("config key 'model.encoder.window.overlap'"), std::string::npos) << msg;
  hand.window.length = 0;  // the field constraint, with the prefix too
  msg = error_of([&] { validate_config(hand, "model.encoder"); });
  EXPECT_NE(msg.find("'model.encoder.window.length': value 0 is below the minimum 1"),
            std::string::npos)
      << msg;
  EXPECT_NO_THROW(validate_config(ConfigTestTop{}));
}

// ------------------------------------------------------------------------------------- enums

enum class ConfigTestColor { kRed, kDarkBlue, kNone };
constexpr std::array<std::pair<ConfigTestColor, const char*>, 3> enum_names(ConfigTestColor) {
  return {{{ConfigTestColor::kRed, "red"},
           {ConfigTestColor::kDarkBlue, "dark_blue"},
           {ConfigTestColor::kNone, ""}}};
}

struct ConfigTestPaint {
  ConfigTestColor color = ConfigTestColor::kRed;
  std::vector<ConfigTestColor> palette{ConfigTestColor::kRed};
  void define(ConfigSchema& s) {
    s.field("color", color, "the colour");
    s.field("palette", palette, "some colours");
  }
};

TEST(Config, EnumsParseDumpAndRoundTrip) {
  static_assert(has_enum_names_v<ConfigTestColor>);
  static_assert(!has_enum_names_v<int>);
  EXPECT_EQ(to_string(ConfigTestColor::kDarkBlue), "dark_blue");
  EXPECT_EQ(to_string(ConfigTestColor::kNone), "");
  EXPECT_EQ(parse_enum<ConfigTestColor>("dark_blue", "k"), ConfigTestColor::kDarkBlue);
  EXPECT_EQ(parse_enum<ConfigTestColor>("", "k"), ConfigTestColor::kNone);
  EXPECT_EQ(enum_choices<ConfigTestColor>(), (std::vector<std::string>{"red", "dark_blue", ""}));
  test::expect_error_containing([] { parse_enum<ConfigTestColor>("Red", "paint.color"); },
                                {"config key 'paint.color'", "'Red'", "red, dark_blue, ''"});

  auto c =
      load_config<ConfigTestPaint>(std::nullopt, {"color=dark_blue", "palette=[dark_blue, red]"});
  EXPECT_EQ(c.color, ConfigTestColor::kDarkBlue);
  EXPECT_EQ(c.palette,
            (std::vector<ConfigTestColor>{ConfigTestColor::kDarkBlue, ConfigTestColor::kRed}));
  const std::string text = config_to_yaml(c);
  EXPECT_NE(text.find("color: \"dark_blue\""), std::string::npos) << text;  // same as a string
  auto back = config_from_yaml_text<ConfigTestPaint>(text, "dump");
  EXPECT_EQ(back.color, c.color);
  EXPECT_EQ(back.palette, c.palette);
  EXPECT_EQ(config_to_yaml(back), text);
  c.color = ConfigTestColor::kNone;
  EXPECT_EQ(config_from_yaml_text<ConfigTestPaint>(config_to_yaml(c), "dump").color,
            ConfigTestColor::kNone);

  auto msg = error_of([&] { load_config_into(c, std::nullopt, {"color=blue"}); });
  EXPECT_NE(msg.find("config key 'color'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("not one of: red, dark_blue, ''"), std::string::npos) << msg;
  test::TempDir dir;
  write_file_atomic(dir / "p.yaml", "palette: [red, green]\n");
  msg = error_of([&] { load_config_into(c, dir / "p.yaml", {}); });
  EXPECT_NE(msg.find("p.yaml: config key 'palette'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'green'"), std::string::npos) << msg;

  ConfigSchema s;
  ConfigTestPaint p;
  s.bind(p);
  const auto d = describe(s);
  EXPECT_NE(d.find("color (string) = red  {red|dark_blue|}"), std::string::npos) << d;
  EXPECT_NE(d.find("palette (list[string]) = [red]"), std::string::npos) << d;
}

}  // namespace
}  // namespace hear::io
