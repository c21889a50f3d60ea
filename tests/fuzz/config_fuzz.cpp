// libFuzzer target: the YAML config loader with dotted overrides (io::apply_yaml, apply_override,
// validate) on a real nested schema (data::LoaderOptions: sections, enums, ranges). Input: the YAML
// document, then NUL-separated "key=value" overrides.
#include "fuzz_util.h"
#include "hear/data/loader.h"
#include "hear/io/config.h"

namespace {
struct FuzzConfig {
  hear::data::LoaderOptions loader;
  std::vector<int64_t> folds;
  std::string name;
  double rate = 0.5;
  void define(hear::io::ConfigSchema& s) {
    s.section("loader", loader);
    hear::data::define_on_error(s, loader.on_error);
    s.field("folds", folds, "a list");
    s.field("name", name, "a string");
    s.field("rate", rate, "a bounded float").min(0.0).max(1.0);
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto parts = hear::fuzz::split_parts(data, size, 5);
  return hear::fuzz::run_input([&] {
    FuzzConfig config;
    hear::io::ConfigSchema schema;
    schema.bind(config);
    hear::io::apply_yaml(schema, parts[0], "fuzz.yaml");
    for (size_t i = 1; i < parts.size(); ++i) {
      if (!parts[i].empty()) hear::io::apply_override(schema, parts[i]);
    }
    hear::io::validate(schema);
    (void)hear::io::dump_yaml(schema);
  });
}
