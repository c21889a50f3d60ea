#include "hear/io/config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <sstream>

#include "hear/error.h"
#include "hear/io/file_util.h"
#include "hear/util/strings.h"

namespace hear::io {
namespace detail {

int64_t parse_int(const std::string& text, const std::string& key) {
  const std::string t = util::trim(text);
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(t.c_str(), &end, 10);
  if (t.empty() || *end != '\0' || errno == ERANGE) {
    // Accept integral floats written like 1e4 or 10000.0.
    char* fend = nullptr;
    const double d = std::strtod(t.c_str(), &fend);
    if (!t.empty() && *fend == '\0' && std::isfinite(d) && d == std::floor(d) &&
        std::fabs(d) < 9.0e15) {
      return static_cast<int64_t>(d);
    }
    throw Error("config key '" + key + "': expected an integer, got '" + text + "'");
  }
  return v;
}

double parse_float(const std::string& text, const std::string& key) {
  const std::string t = util::trim(text);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(t.c_str(), &end);
  if (t.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(v)) {
    throw Error("config key '" + key + "': expected a finite number, got '" + text + "'");
  }
  return v;
}

bool parse_bool(const std::string& text, const std::string& key) {
  const std::string t = util::trim(text);
  if (t == "true" || t == "True" || t == "yes" || t == "on" || t == "1") return true;
  if (t == "false" || t == "False" || t == "no" || t == "off" || t == "0") return false;
  throw Error("config key '" + key + "': expected true or false, got '" + text + "'");
}

std::string format_float(double v) {
  std::string s = util::format_double_exact(v);
  // Keep the YAML type visible: 1 -> 1.0.
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

}  // namespace detail

namespace {

using detail::format_float;

std::string join_keys(const ConfigSchema& schema) {
  std::string out;
  for (const auto& f : schema.node().fields) out += (out.empty() ? "" : ", ") + f.name;
  for (const auto& s : schema.node().sections) out += (out.empty() ? "" : ", ") + s.first;
  return out;
}

// Splits an override's list value "[a, b]" or "a,b" into elements.
std::vector<std::string> split_list(const std::string& text, const std::string& key) {
  std::string t = util::trim(text);
  if (!t.empty() && t.front() == '[') {
    if (t.back() != ']') throw Error("config key '" + key + "': unterminated list '" + text + "'");
    t = t.substr(1, t.size() - 2);
  }
  std::vector<std::string> out;
  if (util::trim(t).empty()) return out;
  std::stringstream ss(t);
  std::string item;
  while (std::getline(ss, item, ',')) out.push_back(util::trim(item));
  return out;
}

std::string format_bound(const ConfigSchema::Field& f, double v) {
  if (f.type == "int" || f.type == "list[int]") return std::to_string(static_cast<int64_t>(v));
  return format_float(v);
}

void check_number(const ConfigSchema::Field& f, double v, const std::string& key,
                  const std::string& text) {
  if (f.min && v < *f.min) {
    throw Error("config key '" + key + "': value " + text + " is below the minimum " +
                format_bound(f, *f.min));
  }
  if (f.max && v > *f.max) {
    throw Error("config key '" + key + "': value " + text + " is above the maximum " +
                format_bound(f, *f.max));
  }
}

void apply_node(ConfigSchema& schema, const YAML::Node& node, const std::string& prefix,
                const std::string& source);

void set_from_yaml(ConfigSchema::Field& f, const YAML::Node& value, const std::string& key,
                   const std::string& source) {
  try {
    if (f.is_list) {
      if (value.IsNull()) {
        f.set({}, key);
        return;
      }
      if (!value.IsSequence()) {
        throw Error("config key '" + key + "': expected a list (" + f.type + ")");
      }
      std::vector<std::string> items;
      for (const auto& item : value) {
        if (!item.IsScalar()) throw Error("config key '" + key + "': list items must be scalars");
        items.push_back(item.Scalar());
      }
      f.set(items, key);
    } else {
      if (!value.IsScalar()) {
        throw Error("config key '" + key + "': expected a " + f.type + " value, got a " +
                    (value.IsMap()        ? "mapping"
                     : value.IsSequence() ? "list"
                                          : "null"));
      }
      f.set({value.Scalar()}, key);
    }
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
}

void apply_node(ConfigSchema& schema, const YAML::Node& node, const std::string& prefix,
                const std::string& source) {
  if (node.IsNull()) return;
  if (!node.IsMap()) {
    throw Error(source + ": '" + (prefix.empty() ? "<top level>" : prefix) +
                "' must be a mapping of keys to values");
  }
  for (const auto& kv : node) {
    // A complex key ("? [a, b]: 1", found by tests/fuzz/config_fuzz.cpp) has no name.
    if (!kv.first.IsScalar()) {
      throw Error(source + ": a key" + (prefix.empty() ? "" : " in '" + prefix + "'") +
                  " is not a plain name (line " + std::to_string(kv.first.Mark().line + 1) + ")");
    }
    const std::string name = kv.first.as<std::string>();
    const std::string key = prefix.empty() ? name : prefix + "." + name;
    if (auto* f = schema.find_field(name)) {
      set_from_yaml(*f, kv.second, key, source);
    } else if (auto* s = schema.find_section(name)) {
      apply_node(*s, kv.second, key, source);
    } else {
      throw Error(source + ": unknown config key '" + key + "'; valid keys" +
                  (prefix.empty() ? "" : " in '" + prefix + "'") + ": " + join_keys(schema));
    }
  }
}

void validate_node(const ConfigSchema& schema, const std::string& prefix) {
  for (const auto& f : schema.node().fields) {
    const std::string key = prefix.empty() ? f.name : prefix + "." + f.name;
    for (const auto& v : f.get()) {
      if (!f.choices.empty()) {
        bool ok = false;
        for (const auto& c : f.choices) ok = ok || c == v;
        if (!ok) {
          const std::string allowed = util::join(f.choices);
          throw Error("config key '" + key + "': value '" + v + "' is not one of: " + allowed);
        }
      }
      if ((f.min || f.max) && f.type != "string" && f.type != "list[string]") {
        check_number(f, std::strtod(v.c_str(), nullptr), key, v);
      }
    }
  }
  for (const auto& [name, child] : schema.node().sections) {
    validate_node(*child, prefix.empty() ? name : prefix + "." + name);
  }
}

// The structs' own checks, innermost sections first (a section may rely on its parts).
void run_checks(const ConfigSchema& schema, const ConfigCheck& where) {
  for (const auto& [name, child] : schema.node().sections) run_checks(*child, where.section(name));
  for (const auto& check : schema.node().checks) check(where);
}

void emit(YAML::Emitter& out, const ConfigSchema& schema) {
  out << YAML::BeginMap;
  for (const auto& f : schema.node().fields) {
    out << YAML::Key << f.name << YAML::Value;
    const auto values = f.get();
    auto emit_scalar = [&](const std::string& v) {
      if (f.type == "string" || f.type == "list[string]") {
        out << YAML::DoubleQuoted << v;
      } else {
        out << v;
      }
    };
    if (f.is_list) {
      out << YAML::Flow << YAML::BeginSeq;
      for (const auto& v : values) emit_scalar(v);
      out << YAML::EndSeq;
    } else {
      emit_scalar(values.at(0));
    }
    // After the value: yaml-cpp writes a comment at the end of the line it is on.
    if (!f.doc.empty()) out << YAML::Comment(f.doc);
  }
  for (const auto& [name, child] : schema.node().sections) {
    out << YAML::Key << name << YAML::Value;
    emit(out, *child);
  }
  out << YAML::EndMap;
}

void describe_node(const ConfigSchema& schema, const std::string& prefix, std::ostream& os) {
  for (const auto& f : schema.node().fields) {
    const std::string key = prefix.empty() ? f.name : prefix + "." + f.name;
    std::string value = util::join(f.get());
    if (f.is_list) value = "[" + value + "]";
    os << "  " << key << " (" << f.type << ") = " << value;
    if (f.min || f.max) {
      os << "  range [" << (f.min ? format_float(*f.min) : "-inf") << ", "
         << (f.max ? format_float(*f.max) : "inf") << "]";
    }
    if (!f.choices.empty()) {
      std::string c;
      for (const auto& x : f.choices) c += (c.empty() ? "" : "|") + x;
      os << "  {" << c << "}";
    }
    if (!f.doc.empty()) os << "  # " << f.doc;
    os << "\n";
  }
  for (const auto& [name, child] : schema.node().sections) {
    describe_node(*child, prefix.empty() ? name : prefix + "." + name, os);
  }
}

}  // namespace

ConfigSchema::Field& ConfigSchema::add(Field f) {
  for (const auto& existing : node_.fields) {
    if (existing.name == f.name) throw Error("config schema: duplicate key '" + f.name + "'");
  }
  node_.fields.push_back(std::move(f));
  return node_.fields.back();
}

ConfigSchema::Field* ConfigSchema::find_field(const std::string& name) {
  for (auto& f : node_.fields) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

ConfigSchema* ConfigSchema::find_section(const std::string& name) {
  for (auto& s : node_.sections) {
    if (s.first == name) return s.second.get();
  }
  return nullptr;
}

ConfigSchema& ConfigSchema::min(double lo) {
  if (node_.fields.empty()) throw Error("config schema: min() before any field");
  node_.fields.back().min = lo;
  return *this;
}

ConfigSchema& ConfigSchema::max(double hi) {
  if (node_.fields.empty()) throw Error("config schema: max() before any field");
  node_.fields.back().max = hi;
  return *this;
}

ConfigSchema& ConfigSchema::choices(std::vector<std::string> allowed) {
  if (node_.fields.empty()) throw Error("config schema: choices() before any field");
  node_.fields.back().choices = std::move(allowed);
  return *this;
}

void apply_yaml(ConfigSchema& schema, const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    throw Error(source + ": invalid YAML: " + e.what());
  }
  apply_node(schema, root, "", source);
}

void apply_override(ConfigSchema& schema, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    throw Error("config override '" + assignment + "': expected key=value (e.g. train.lr=3e-4)");
  }
  const std::string key = util::trim(assignment.substr(0, eq));
  const std::string value = assignment.substr(eq + 1);
  if (key.empty()) {  // found by tests/fuzz/config_fuzz.cpp: "=x" split into no key parts
    throw Error("config override '" + assignment + "': the key before '=' is empty");
  }
  ConfigSchema* node = &schema;
  std::string prefix;
  std::stringstream ss(key);
  std::vector<std::string> parts;
  std::string part;
  while (std::getline(ss, part, '.')) parts.push_back(part);
  for (size_t i = 0; i + 1 < parts.size(); ++i) {
    ConfigSchema* child = node->find_section(parts[i]);
    if (!child) {
      throw Error("config override: unknown config key '" + key + "'; valid keys" +
                  (prefix.empty() ? "" : " in '" + prefix + "'") + ": " + join_keys(*node));
    }
    prefix += (prefix.empty() ? "" : ".") + parts[i];
    node = child;
  }
  ConfigSchema::Field* f = node->find_field(parts.back());
  if (!f) {
    throw Error("config override: unknown config key '" + key + "'; valid keys" +
                (prefix.empty() ? "" : " in '" + prefix + "'") + ": " + join_keys(*node));
  }
  try {
    f->set(f->is_list ? split_list(value, key) : std::vector<std::string>{value}, key);
  } catch (const Error& e) {
    throw Error("config override: " + std::string(e.what()));
  }
}

void validate(const ConfigSchema& schema, const std::string& prefix) {
  validate_node(schema, prefix);
  run_checks(schema, ConfigCheck(prefix));
}

std::string dump_yaml(const ConfigSchema& schema) {
  YAML::Emitter out;
  emit(out, schema);
  return std::string(out.c_str()) + "\n";
}

std::string describe(const ConfigSchema& schema) {
  std::ostringstream os;
  describe_node(schema, "", os);
  return os.str();
}

std::string read_config_file(const std::filesystem::path& path) {
  if (!std::filesystem::exists(path)) throw Error("config file '" + path.string() + "' not found");
  std::string text = read_file(path);
  // ${CONFIG_DIR}: the file's own folder, so a config shipped beside its weights finds them from
  // any working directory (the resolved, absolute path is what run dirs and checkpoints keep).
  const std::string key = "${CONFIG_DIR}";
  const std::string dir = std::filesystem::absolute(path).parent_path().lexically_normal().string();
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + dir.size())) {
    text.replace(at, key.size(), dir);
  }
  return text;
}

}  // namespace hear::io
