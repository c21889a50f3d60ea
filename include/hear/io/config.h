#pragma once
// Typed configuration structs bound to YAML, with dotted command-line overrides and strict
// validation. A config struct describes itself once, and that description serves loading,
// overriding, validation and dumping:
//
//   enum class Schedule { kCosine, kConstant };  // names: see hear/io/enum_names.h
//   constexpr std::array<std::pair<Schedule, const char*>, 2> enum_names(Schedule) {
//     return {{{Schedule::kCosine, "cosine"}, {Schedule::kConstant, "constant"}}};
//   }
//   struct TrainConfig {
//     double lr = 3e-4;
//     int64_t steps = 1000, warmup = 100;
//     Schedule schedule = Schedule::kCosine;  // YAML: cosine | constant
//     void define(hear::io::ConfigSchema& s) {
//       s.field("lr", lr, "peak learning rate").range(0.0, 1.0);
//       s.field("steps", steps, "optimizer steps").min(1);
//       s.field("warmup", warmup, "warm-up steps").min(0);
//       s.field("schedule", schedule, "lr schedule");  // choices: the enum's names
//     }
//     // Optional cross-field check, run after every field constraint (innermost sections
//     // first); `check` names keys in full, e.g. "config key 'train.warmup': ...".
//     void validate(const hear::io::ConfigCheck& check) const {
//       check.require(warmup <= steps, "warmup", "exceeds " + check.key("steps"));
//     }
//   };
//   struct RunConfig {
//     TrainConfig train;
//     void define(hear::io::ConfigSchema& s) { s.section("train", train); }
//   };
//   auto cfg = hear::io::load_config<RunConfig>("run.yaml", {"train.lr=1e-3"});
//
// Unknown keys are errors listing the valid keys; wrong types and out-of-range values are errors
// naming the dotted key and the value. Keys missing from the YAML keep their defaults. A config
// built in C++ is checked the same way with validate_config(config).
#include <cstdint>
#include <filesystem>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "hear/io/enum_names.h"

namespace hear::io {

// Builds the messages of a config struct's cross-field check, `void validate(const ConfigCheck&)
// const`: keys are named in full ("config key 'train.optimizer.betas': ..."), whatever section
// the struct sits in.
class ConfigCheck {
 public:
  explicit ConfigCheck(std::string prefix = "") : prefix_(std::move(prefix)) {}
  // The dotted key of `leaf` in this section ("" : the section itself).
  std::string key(const std::string& leaf) const {
    if (leaf.empty()) return prefix_;
    return prefix_.empty() ? leaf : prefix_ + "." + leaf;
  }
  const std::string& prefix() const { return prefix_; }
  ConfigCheck section(const std::string& name) const { return ConfigCheck(key(name)); }
  // Throws hear::Error("config key 'KEY': message").
  [[noreturn]] void fail(const std::string& leaf, const std::string& message) const {
    throw Error("config key '" + key(leaf) + "': " + message);
  }
  void require(bool ok, const std::string& leaf, const std::string& message) const {
    if (!ok) fail(leaf, message);
  }

 private:
  std::string prefix_;
};

namespace detail {
int64_t parse_int(const std::string& text, const std::string& key);
double parse_float(const std::string& text, const std::string& key);
bool parse_bool(const std::string& text, const std::string& key);
std::string format_float(double v);

template <class S, class = void>
struct has_validate : std::false_type {};
template <class S>
struct has_validate<
    S, std::void_t<decltype(std::declval<const S&>().validate(std::declval<const ConfigCheck&>()))>>
    : std::true_type {};
}  // namespace detail

// How one value type travels as YAML scalar text: its type name (--help-config), parse, format
// and the allowed values (enums). Lists of a supported scalar are lists of it.
template <class T, class = void>
struct FieldTraits;

template <>
struct FieldTraits<int64_t> {
  static constexpr const char* type = "int";
  static int64_t parse(const std::string& s, const std::string& key) {
    return detail::parse_int(s, key);
  }
  static std::string format(int64_t v) { return std::to_string(v); }
  static std::vector<std::string> choices() { return {}; }
};

template <>
struct FieldTraits<int> {
  static constexpr const char* type = "int";
  static int parse(const std::string& s, const std::string& key) {
    const int64_t v = detail::parse_int(s, key);
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
      throw Error("config key '" + key + "': value " + s + " does not fit in an int");
    }
    return static_cast<int>(v);
  }
  static std::string format(int v) { return std::to_string(v); }
  static std::vector<std::string> choices() { return {}; }
};

template <>
struct FieldTraits<double> {
  static constexpr const char* type = "float";
  static double parse(const std::string& s, const std::string& key) {
    return detail::parse_float(s, key);
  }
  static std::string format(double v) { return detail::format_float(v); }
  static std::vector<std::string> choices() { return {}; }
};

template <>
struct FieldTraits<bool> {
  static constexpr const char* type = "bool";
  static bool parse(const std::string& s, const std::string& key) {
    return detail::parse_bool(s, key);
  }
  static std::string format(bool v) { return v ? "true" : "false"; }
  static std::vector<std::string> choices() { return {}; }
};

template <>
struct FieldTraits<std::string> {
  static constexpr const char* type = "string";
  static std::string parse(const std::string& s, const std::string&) { return s; }
  static std::string format(const std::string& v) { return v; }
  static std::vector<std::string> choices() { return {}; }
};

// Enums with an enum_names table travel as their names (YAML strings).
template <class E>
struct FieldTraits<E, std::enable_if_t<has_enum_names_v<E>>> {
  static constexpr const char* type = "string";
  static E parse(const std::string& s, const std::string& key) { return parse_enum<E>(s, key); }
  static std::string format(E v) { return hear::io::to_string(v); }
  static std::vector<std::string> choices() { return enum_choices<E>(); }
};

class ConfigSchema {
 public:
  // One leaf value. Values travel as YAML scalar strings (one for scalars, one per list item).
  struct Field {
    std::string name;
    std::string doc;
    std::string
        type;  // "int", "float", "bool", "string", "list[int]", "list[float]", "list[string]"
    bool is_list = false;
    // Parses and stores the items; errors name `key` (the full dotted key).
    std::function<void(const std::vector<std::string>& items, const std::string& key)> set;
    std::function<std::vector<std::string>()> get;  // one element for scalars
    std::optional<double> min, max;
    std::vector<std::string> choices;
  };
  // A cross-field check of a struct (its validate()), run with the struct's key prefix.
  using Check = std::function<void(const ConfigCheck&)>;
  struct Node {
    std::vector<Field> fields;
    std::vector<std::pair<std::string, std::unique_ptr<ConfigSchema>>> sections;
    std::vector<Check> checks;
  };

  ConfigSchema() = default;
  ConfigSchema(const ConfigSchema&) = delete;
  ConfigSchema& operator=(const ConfigSchema&) = delete;

  // A scalar (int, int64_t, double, bool, string, an enum with enum_names) or a list of one.
  template <class T>
  ConfigSchema& field(const std::string& name, T& value, const std::string& doc = "") {
    Field f;
    f.name = name;
    f.doc = doc;
    f.is_list = false;
    f.type = FieldTraits<T>::type;
    f.choices = FieldTraits<T>::choices();
    f.set = [&value](const std::vector<std::string>& items, const std::string& key) {
      if (items.size() != 1) throw Error("config key '" + key + "': expected one value");
      value = FieldTraits<T>::parse(items[0], key);
    };
    f.get = [&value] { return std::vector<std::string>{FieldTraits<T>::format(value)}; };
    add(std::move(f));
    return *this;
  }
  template <class T>
  ConfigSchema& field(const std::string& name, std::vector<T>& value, const std::string& doc = "") {
    Field f;
    f.name = name;
    f.doc = doc;
    f.is_list = true;
    f.type = std::string("list[") + FieldTraits<T>::type + "]";
    f.choices = FieldTraits<T>::choices();
    f.set = [&value](const std::vector<std::string>& items, const std::string& key) {
      std::vector<T> v;
      v.reserve(items.size());
      for (const auto& s : items) v.push_back(FieldTraits<T>::parse(s, key));
      value = std::move(v);
    };
    f.get = [&value] {
      std::vector<std::string> out;
      for (const auto& v : value) out.push_back(FieldTraits<T>::format(v));
      return out;
    };
    add(std::move(f));
    return *this;
  }

  // Constraints on the field declared last (for lists: on every element).
  ConfigSchema& min(double lo);
  ConfigSchema& max(double hi);
  ConfigSchema& range(double lo, double hi) { return min(lo).max(hi); }
  ConfigSchema& choices(std::vector<std::string> allowed);
  // A cross-field check of this section, run by validate() after every field constraint.
  ConfigSchema& check(Check c) {
    node_.checks.push_back(std::move(c));
    return *this;
  }

  // Describes `s` here: its define(ConfigSchema&), and its validate(const ConfigCheck&) const
  // when it has one.
  template <class S>
  ConfigSchema& bind(S& s) {
    s.define(*this);
    if constexpr (detail::has_validate<S>::value) {
      check([&s](const ConfigCheck& c) { s.validate(c); });
    }
    return *this;
  }

  // A nested struct with its own define(ConfigSchema&) (and optional validate).
  template <class S>
  ConfigSchema& section(const std::string& name, S& sub) {
    auto child = std::make_unique<ConfigSchema>();
    child->bind(sub);
    node_.sections.emplace_back(name, std::move(child));
    return *this;
  }

  const Node& node() const { return node_; }
  Node& node() { return node_; }
  Field* find_field(const std::string& name);
  ConfigSchema* find_section(const std::string& name);

 private:
  Field& add(Field f);
  Node node_;
};

// Applies a YAML document (text) to the schema. `source` names it in errors (file name).
void apply_yaml(ConfigSchema& schema, const std::string& yaml_text, const std::string& source);
// Applies one "dotted.key=value" override. Lists: "key=[1, 2, 3]".
void apply_override(ConfigSchema& schema, const std::string& assignment);
// Checks every range/choice constraint against the current values (after loading/overrides),
// then runs the structs' validate() checks, innermost sections first. `prefix` is the dotted key
// of the schema's root ("": the top level).
void validate(const ConfigSchema& schema, const std::string& prefix = "");
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
  schema.bind(config);
  apply_yaml(schema, yaml_text, source);
  validate(schema);
  return config;
}

template <class C>
std::string config_to_yaml(C& config) {
  ConfigSchema schema;
  schema.bind(config);
  return dump_yaml(schema);
}

// Checks a config built in C++ (not loaded): every field constraint and validate() check, as
// loading would. `prefix` names the config's own key in messages (e.g. "train").
template <class C>
void validate_config(const C& config, const std::string& prefix = "") {
  C copy = config;  // define() binds mutable references
  ConfigSchema schema;
  schema.bind(copy);
  validate(schema, prefix);
}

// The file's text with every ${CONFIG_DIR} replaced by its folder (absolute); throws naming the
// file when it is missing.
std::string read_config_file(const std::filesystem::path& path);

template <class C>
void load_config_into(C& config, const std::optional<std::filesystem::path>& yaml_file,
                      const std::vector<std::string>& overrides) {
  C candidate = config;  // `config` is untouched when anything fails
  ConfigSchema schema;
  schema.bind(candidate);
  if (yaml_file) apply_yaml(schema, read_config_file(*yaml_file), yaml_file->string());
  for (const auto& o : overrides) apply_override(schema, o);
  validate(schema);
  config = std::move(candidate);
}

}  // namespace hear::io
