#pragma once
// Typed configuration structs bound to YAML, with dotted command-line overrides and strict
// validation. A config struct describes itself once, and that description serves loading,
// overriding, validation and dumping:
//
//   struct TrainConfig {
//     double lr = 3e-4;
//     int64_t steps = 1000;
//     std::string schedule = "cosine";
//     void define(hear::io::ConfigSchema& s) {
//       s.field("lr", lr, "peak learning rate").range(0.0, 1.0);
//       s.field("steps", steps, "optimizer steps").min(1);
//       s.field("schedule", schedule, "lr schedule").choices({"cosine", "constant"});
//     }
//   };
//   struct RunConfig {
//     TrainConfig train;
//     void define(hear::io::ConfigSchema& s) { s.section("train", train); }
//   };
//   auto cfg = hear::io::load_config<RunConfig>("run.yaml", {"train.lr=1e-3"});
//
// Unknown keys are errors listing the valid keys; wrong types and out-of-range values are errors
// naming the dotted key and the value. Keys missing from the YAML keep their defaults.
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace hear::io {

class ConfigSchema {
 public:
  // One leaf value. Values travel as YAML scalar strings (lists as lists of them).
  struct Field {
    std::string name;
    std::string doc;
    std::string
        type;  // "int", "float", "bool", "string", "list[int]", "list[float]", "list[string]"
    bool is_list = false;
    std::function<void(const std::string&)> set;                    // scalar fields
    std::function<void(const std::vector<std::string>&)> set_list;  // list fields
    std::function<std::vector<std::string>()> get;                  // one element for scalars
    std::optional<double> min, max;
    std::vector<std::string> choices;
  };
  struct Node {
    std::vector<Field> fields;
    std::vector<std::pair<std::string, std::unique_ptr<ConfigSchema>>> sections;
  };

  ConfigSchema() = default;
  ConfigSchema(const ConfigSchema&) = delete;
  ConfigSchema& operator=(const ConfigSchema&) = delete;

  ConfigSchema& field(const std::string& name, int& value, const std::string& doc = "");
  ConfigSchema& field(const std::string& name, int64_t& value, const std::string& doc = "");
  ConfigSchema& field(const std::string& name, double& value, const std::string& doc = "");
  ConfigSchema& field(const std::string& name, bool& value, const std::string& doc = "");
  ConfigSchema& field(const std::string& name, std::string& value, const std::string& doc = "");
  ConfigSchema& field(const std::string& name, std::vector<int64_t>& value,
                      const std::string& doc = "");
  ConfigSchema& field(const std::string& name, std::vector<double>& value,
                      const std::string& doc = "");
  ConfigSchema& field(const std::string& name, std::vector<std::string>& value,
                      const std::string& doc = "");

  // Constraints on the field declared last (for lists: on every element).
  ConfigSchema& min(double lo);
  ConfigSchema& max(double hi);
  ConfigSchema& range(double lo, double hi) { return min(lo).max(hi); }
  ConfigSchema& choices(std::vector<std::string> allowed);

  // A nested struct with its own define(ConfigSchema&).
  template <class S>
  ConfigSchema& section(const std::string& name, S& sub) {
    auto child = std::make_unique<ConfigSchema>();
    sub.define(*child);
    node_.sections.emplace_back(name, std::move(child));
    return *this;
  }

  const Node& node() const { return node_; }

 private:
  Field& add(Field f);
  Node node_;
};

// Applies a YAML document (text) to the schema. `source` names it in errors (file name).
void apply_yaml(ConfigSchema& schema, const std::string& yaml_text, const std::string& source);
// Applies one "dotted.key=value" override. Lists: "key=[1, 2, 3]".
void apply_override(ConfigSchema& schema, const std::string& assignment);
// Checks every range/choice constraint against the current values (after loading/overrides).
void validate(const ConfigSchema& schema);
// The current values as a YAML document (with the doc strings as comments).
std::string dump_yaml(const ConfigSchema& schema);
// Every dotted key with its type, default/current value and doc: for --help-config.
std::string describe(const ConfigSchema& schema);

// Fills `config` from an optional YAML file and overrides, then validates it.
template <class C>
void load_config_into(C& config, const std::optional<std::filesystem::path>& yaml_file,
                      const std::vector<std::string>& overrides);

template <class C>
C load_config(const std::optional<std::filesystem::path>& yaml_file,
              const std::vector<std::string>& overrides = {}) {
  C config{};
  load_config_into(config, yaml_file, overrides);
  return config;
}

// Loads a config from YAML text (e.g. a config.yaml stored in a checkpoint).
template <class C>
C config_from_yaml_text(const std::string& yaml_text, const std::string& source) {
  C config{};
  ConfigSchema schema;
  config.define(schema);
  apply_yaml(schema, yaml_text, source);
  validate(schema);
  return config;
}

template <class C>
std::string config_to_yaml(C& config) {
  ConfigSchema schema;
  config.define(schema);
  return dump_yaml(schema);
}

std::string read_config_file(const std::filesystem::path& path);  // throws naming the file

template <class C>
void load_config_into(C& config, const std::optional<std::filesystem::path>& yaml_file,
                      const std::vector<std::string>& overrides) {
  C candidate = config;  // `config` is untouched when anything fails
  ConfigSchema schema;
  candidate.define(schema);
  if (yaml_file) apply_yaml(schema, read_config_file(*yaml_file), yaml_file->string());
  for (const auto& o : overrides) apply_override(schema, o);
  validate(schema);
  config = std::move(candidate);
}

}  // namespace hear::io
