#include "hear/train/checkpoint.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <cmath>
#include <cstdio>
#include <set>

#include "hear/error.h"
#include "hear/io/base64.h"
#include "hear/io/file_util.h"
#include "hear/io/sha256.h"
#include "hear/models/weights.h"
#include "hear/util/fault_point.h"
#include "hear/util/strings.h"

namespace hear::train {
namespace fs = std::filesystem;
namespace {

constexpr const char* kCheckpointFormat = "hear-checkpoint-1";

// The key torch::optim keeps per-parameter state under (see torch/csrc/api/src/optim/adamw.cpp).
std::string optimizer_state_key(const torch::Tensor& p) {
  return c10::guts::to_string(p.unsafeGetTensorImpl());
}

std::map<const c10::TensorImpl*, std::string> parameter_names(const torch::nn::Module& model) {
  std::map<const c10::TensorImpl*, std::string> names;
  for (const auto& item : model.named_parameters(/*recurse=*/true)) {
    names.emplace(item.value().unsafeGetTensorImpl(), item.key());
  }
  return names;
}

void rename_or_throw(const fs::path& from, const fs::path& to) {
  std::error_code ec;
  fs::rename(from, to, ec);
  if (ec) {
    throw Error("checkpoint: cannot rename '" + from.string() + "' to '" + to.string() +
                "': " + ec.message());
  }
}

fs::path with_suffix(const fs::path& dir, const std::string& suffix) {
  fs::path p = dir;
  if (!p.has_filename()) p = p.parent_path();  // "last/" -> "last"
  p += suffix;
  return p;
}

// The files a checkpoint's state.yaml vouches for, in the order they are written.
constexpr const char* kDigestedFiles[] = {"model.safetensors", "optimizer.safetensors",
                                          "config.yaml"};

std::string file_digest_yaml(const fs::path& dir) {
  YAML::Emitter out;
  out << YAML::Flow << YAML::BeginMap;
  for (const char* name : kDigestedFiles) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / name, ec)) continue;
    out << YAML::Key << name << YAML::Value << YAML::BeginMap;
    out << YAML::Key << "bytes" << YAML::Value << fs::file_size(dir / name);
    out << YAML::Key << "sha256" << YAML::Value << io::sha256_file(dir / name);
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return out.c_str();
}

}  // namespace

std::string checkpoint_problem(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return "does not exist";
  if (!fs::is_regular_file(dir / "state.yaml", ec)) return "has no state.yaml";
  YAML::Node root;
  try {
    root = YAML::Load(io::read_file(dir / "state.yaml"));
  } catch (const std::exception& e) {
    return std::string("state.yaml is unreadable (") + e.what() + ")";
  }
  if (!root.IsMap()) return "state.yaml is not a mapping";
  if (!fs::is_regular_file(dir / "model.safetensors", ec)) return "has no model.safetensors";
  const YAML::Node files = root["files"];
  if (!files) return "";  // written before checksums existed: nothing to compare
  if (!files.IsMap()) return "state.yaml's 'files' is not a mapping";
  for (const auto& kv : files) {
    if (!kv.first.IsScalar()) return "state.yaml's 'files' has a key that is not a file name";
    const std::string name = kv.first.as<std::string>();
    const fs::path file = dir / name;
    if (!fs::is_regular_file(file, ec)) return name + " is missing";
    try {
      const auto bytes = kv.second["bytes"].as<uintmax_t>();
      const auto size = fs::file_size(file);
      if (size != bytes) {
        return name + " has " + std::to_string(size) + " bytes, state.yaml says " +
               std::to_string(bytes) + " (truncated?)";
      }
      if (io::sha256_file(file) != kv.second["sha256"].as<std::string>()) {
        return name + " does not match its SHA-256 in state.yaml (corrupted)";
      }
    } catch (const YAML::Exception& e) {
      return "state.yaml's entry for " + name + " is malformed (" + e.what() + ")";
    }
  }
  return "";
}

std::string format_double(double v) {
  if (std::isnan(v)) return ".nan";
  if (std::isinf(v)) return v > 0 ? ".inf" : "-.inf";
  return util::format_double_exact(v);
}

double parse_double(const std::string& text, const std::string& what) {
  if (text == ".nan" || text == "nan") return std::nan("");
  if (text == ".inf" || text == "inf") return INFINITY;
  if (text == "-.inf" || text == "-inf") return -INFINITY;
  try {
    size_t used = 0;
    double v = std::stod(text, &used);
    if (used == text.size()) return v;
  } catch (const std::exception&) {
  }
  throw Error(what + ": '" + text + "' is not a number");
}

std::string get_torch_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  at::Tensor state;
  {
    std::lock_guard<std::mutex> lock(gen.mutex());
    state = gen.get_state().contiguous();
  }
  return io::base64_encode(
      std::string(static_cast<const char*>(state.data_ptr()), static_cast<size_t>(state.nbytes())));
}

void set_torch_rng_state(const std::string& base64) {
  const std::string bytes = io::base64_decode(base64);
  at::Tensor state = torch::empty({static_cast<int64_t>(bytes.size())}, torch::kUInt8);
  std::memcpy(state.data_ptr(), bytes.data(), bytes.size());
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  try {
    gen.set_state(state);
  } catch (const c10::Error& e) {
    throw Error(std::string("cannot restore the torch RNG state (") + std::to_string(bytes.size()) +
                " bytes): " + e.what_without_backtrace());
  }
}

io::TensorMap optimizer_state(const torch::optim::AdamW& optimizer,
                              const torch::nn::Module& model) {
  const auto names = parameter_names(model);
  io::TensorMap out;
  const auto& states = optimizer.state();
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) {
      auto n = names.find(p.unsafeGetTensorImpl());
      if (n == names.end()) {
        throw Error("optimizer_state: the optimizer holds a parameter of shape " +
                    c10::str(p.sizes()) + " that is not in the model");
      }
      auto s = states.find(optimizer_state_key(p));
      if (s == states.end()) continue;
      const auto& st = static_cast<const torch::optim::AdamWParamState&>(*s->second);
      out[n->second + ".step"] = torch::tensor(st.step(), torch::kLong);
      out[n->second + ".exp_avg"] = st.exp_avg().detach();
      out[n->second + ".exp_avg_sq"] = st.exp_avg_sq().detach();
      if (st.max_exp_avg_sq().defined())
        out[n->second + ".max_exp_avg_sq"] = st.max_exp_avg_sq().detach();
    }
  }
  return out;
}

void load_optimizer_state(torch::optim::AdamW& optimizer, const torch::nn::Module& model,
                          const io::TensorMap& tensors, const std::string& source) {
  const auto names = parameter_names(model);
  std::set<std::string> used;
  auto& states = optimizer.state();
  states.clear();
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) {
      auto n = names.find(p.unsafeGetTensorImpl());
      if (n == names.end()) {
        throw Error(
            "load_optimizer_state: the optimizer holds a parameter that is not in the model");
      }
      const std::string& name = n->second;
      auto step = tensors.find(name + ".step");
      if (step == tensors.end()) continue;
      auto get = [&](const std::string& suffix, bool required) -> torch::Tensor {
        auto it = tensors.find(name + suffix);
        if (it == tensors.end()) {
          if (!required) return {};
          throw Error("'" + source + "': missing '" + name + suffix + "'");
        }
        if (it->second.sizes() != p.sizes()) {
          throw Error("'" + source + "': '" + name + suffix + "' has shape " +
                      c10::str(it->second.sizes()) + ", the parameter has " + c10::str(p.sizes()));
        }
        used.insert(name + suffix);
        return it->second.to(p.device(), p.scalar_type()).clone();
      };
      auto st = std::make_unique<torch::optim::AdamWParamState>();
      if (step->second.numel() != 1)
        throw Error("'" + source + "': '" + name + ".step' is not a scalar");
      st->step(step->second.to(torch::kLong).item<int64_t>());
      used.insert(name + ".step");
      st->exp_avg(get(".exp_avg", true));
      st->exp_avg_sq(get(".exp_avg_sq", true));
      if (auto m = get(".max_exp_avg_sq", false); m.defined()) st->max_exp_avg_sq(m);
      states[optimizer_state_key(p)] = std::move(st);
    }
  }
  for (const auto& [key, t] : tensors) {
    if (!used.count(key)) {
      throw Error("'" + source + "': optimizer state '" + key +
                  "' belongs to no parameter of this optimizer (different model or frozen set?)");
    }
  }
}

std::string train_state_to_yaml(const TrainState& s) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << kCheckpointFormat;
  out << YAML::Key << "step" << YAML::Value << s.step;
  out << YAML::Key << "epoch" << YAML::Value << s.epoch;
  out << YAML::Key << "lr" << YAML::Value << format_double(s.lr);
  out << YAML::Key << "loader" << YAML::Value << YAML::Flow << YAML::BeginMap << YAML::Key
      << "epoch" << YAML::Value << s.loader.epoch << YAML::Key << "batch" << YAML::Value
      << s.loader.batch << YAML::EndMap;
  out << YAML::Key << "skipped_batches" << YAML::Value << s.skipped_batches;
  out << YAML::Key << "best" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "metric" << YAML::Value << s.best_metric;
  out << YAML::Key << "value" << YAML::Value;
  if (s.best_value) {
    out << format_double(*s.best_value);
  } else {
    out << YAML::Null;
  }
  out << YAML::Key << "step" << YAML::Value << s.best_step;
  out << YAML::EndMap;
  out << YAML::Key << "rng" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "torch_cpu" << YAML::Value << s.torch_rng;
  out << YAML::EndMap;
  out << YAML::Key << "extra" << YAML::Value << YAML::BeginMap;
  for (const auto& [k, v] : s.extra)
    out << YAML::Key << k << YAML::Value << YAML::DoubleQuoted << v;
  out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

TrainState train_state_from_yaml(const std::string& text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw Error("'" + source + "': YAML error: " + e.what());
  }
  if (!root.IsMap()) throw Error("'" + source + "': expected a mapping");
  auto need = [&](const YAML::Node& parent, const std::string& key,
                  const std::string& path) -> YAML::Node {
    YAML::Node n = parent[key];
    if (!n) throw Error("'" + source + "': missing key '" + path + "'");
    return n;
  };
  auto as_int = [&](const YAML::Node& n, const std::string& path) -> int64_t {
    try {
      return n.as<int64_t>();
    } catch (const YAML::Exception&) {
      throw Error("'" + source + "': '" + path + "' is not an integer");
    }
  };
  auto as_str = [&](const YAML::Node& n, const std::string& path) -> std::string {
    if (!n.IsScalar()) throw Error("'" + source + "': '" + path + "' is not a scalar");
    return n.as<std::string>();
  };
  const std::string format = as_str(need(root, "format", "format"), "format");
  if (format != kCheckpointFormat) {
    throw Error("'" + source + "': unknown checkpoint format '" + format + "' (expected " +
                kCheckpointFormat + ")");
  }
  TrainState s;
  s.step = as_int(need(root, "step", "step"), "step");
  s.epoch = as_int(need(root, "epoch", "epoch"), "epoch");
  s.lr = parse_double(as_str(need(root, "lr", "lr"), "lr"), "'" + source + "': lr");
  YAML::Node loader = need(root, "loader", "loader");
  s.loader.epoch = as_int(need(loader, "epoch", "loader.epoch"), "loader.epoch");
  s.loader.batch = as_int(need(loader, "batch", "loader.batch"), "loader.batch");
  if (root["skipped_batches"])
    s.skipped_batches = as_int(root["skipped_batches"], "skipped_batches");
  if (YAML::Node best = root["best"]) {
    if (best["metric"] && !best["metric"].IsNull())
      s.best_metric = as_str(best["metric"], "best.metric");
    if (best["value"] && !best["value"].IsNull()) {
      s.best_value =
          parse_double(as_str(best["value"], "best.value"), "'" + source + "': best.value");
    }
    if (best["step"]) s.best_step = as_int(best["step"], "best.step");
  }
  YAML::Node rng = need(root, "rng", "rng");
  s.torch_rng = as_str(need(rng, "torch_cpu", "rng.torch_cpu"), "rng.torch_cpu");
  if (YAML::Node extra = root["extra"]) {
    if (!extra.IsMap() && !extra.IsNull())
      throw Error("'" + source + "': 'extra' is not a mapping");
    for (const auto& kv : extra) {
      s.extra[kv.first.as<std::string>()] =
          as_str(kv.second, "extra." + kv.first.as<std::string>());
    }
  }
  if (s.step < 0 || s.epoch < 0 || s.loader.epoch < 0 || s.loader.batch < 0) {
    throw Error("'" + source + "': negative step/epoch/loader position");
  }
  return s;
}

void save_checkpoint(const fs::path& dir, const torch::nn::Module& model,
                     const torch::optim::AdamW* optimizer, const TrainState& state,
                     const std::string& config_yaml) {
  const fs::path target = with_suffix(dir, "");
  const fs::path tmp = with_suffix(dir, ".tmp");
  const fs::path old = with_suffix(dir, ".old");
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  if (ec) throw Error("checkpoint: cannot create '" + tmp.string() + "': " + ec.message());
  try {
    io::save_safetensors(tmp / "model.safetensors", models::module_state(model),
                         {{"format", kCheckpointFormat}});
    if (optimizer) {
      io::save_safetensors(tmp / "optimizer.safetensors", optimizer_state(*optimizer, model),
                           {{"format", kCheckpointFormat}, {"optimizer", "adamw"}});
    }
    io::write_file_atomic(tmp / "config.yaml", config_yaml);
    util::fault_point("checkpoint.files_written");
    // state.yaml last: it vouches for the files above by size and SHA-256.
    io::write_file_atomic(tmp / "state.yaml",
                          train_state_to_yaml(state) + "files: " + file_digest_yaml(tmp) + "\n");
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  util::fault_point("checkpoint.tmp_complete");
  // NAME -> NAME.old (the previous checkpoint stays, for a NAME found damaged on resume), then
  // NAME.tmp -> NAME. A crash in between leaves NAME.old, which loading falls back to.
  if (fs::exists(target, ec)) {
    fs::remove_all(old, ec);
    rename_or_throw(target, old);
    util::fault_point("checkpoint.previous_moved");
  }
  rename_or_throw(tmp, target);
}

fs::path resolve_checkpoint_dir(const fs::path& dir) {
  const fs::path target = with_suffix(dir, "");
  const fs::path old = with_suffix(dir, ".old");
  const std::string problem = checkpoint_problem(target);
  if (problem.empty()) return target;
  const std::string old_problem = checkpoint_problem(old);
  if (old_problem.empty()) {
    spdlog::warn("checkpoint '{}' {}; using the previous checkpoint '{}'", target.string(), problem,
                 old.string());
    return old;
  }
  std::error_code ec;
  if (!fs::exists(target, ec) && !fs::exists(old, ec)) {
    throw Error("checkpoint '" + target.string() + "' does not exist");
  }
  throw Error("no usable checkpoint: '" + target.string() + "' " + problem + ", and '" +
              old.string() + "' " + old_problem);
}

LoadedCheckpoint load_checkpoint(const fs::path& dir, torch::nn::Module& model,
                                 torch::optim::AdamW* optimizer) {
  LoadedCheckpoint out;
  out.dir = resolve_checkpoint_dir(dir);
  const fs::path state_file = out.dir / "state.yaml";
  out.state = train_state_from_yaml(io::read_file(state_file), state_file.string());
  const fs::path config_file = out.dir / "config.yaml";
  std::error_code ec;
  if (fs::exists(config_file, ec)) out.config_yaml = io::read_file(config_file);
  const fs::path model_file = out.dir / "model.safetensors";
  models::LoadOptions strict;
  strict.ignore_prefixes.clear();  // a checkpoint holds exactly the model's keys
  models::load_weights(model, model_file, strict);
  if (optimizer) {
    const fs::path opt_file = out.dir / "optimizer.safetensors";
    if (!fs::exists(opt_file, ec)) {
      throw Error("checkpoint '" + out.dir.string() +
                  "' has no optimizer.safetensors (a weights-only checkpoint cannot be resumed)");
    }
    load_optimizer_state(*optimizer, model, io::load_safetensors(opt_file).tensors,
                         opt_file.string());
  }
  return out;
}

}  // namespace hear::train
