#pragma once
// What every program shares: one clear error line and a non-zero exit instead of a crash.
#include <c10/util/Exception.h>
#include <spdlog/spdlog.h>

#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <exception>
#include <functional>
#include <string>

#include <filesystem>
#include <optional>
#include <vector>
#include "hear/error.h"
#include "hear/io/config.h"
#include "hear/nn/onednn_matmul.h"
#include "hear/util/caching_cpu_allocator.h"

namespace hear::tools {

// Runs `body`; hear::Error and any other exception become "<program>: error: <message>", exit 1.
// Every program reuses freed tensor memory (util/caching_cpu_allocator.h) unless
// HEAR_CPU_ALLOCATOR=system, and runs float32 matrix products on oneDNN (nn/onednn_matmul.h)
// unless HEAR_MATMUL=blas.
inline int run_tool(const char* program, const std::function<int()>& body) {
  spdlog::set_pattern("[%H:%M:%S] %v");
  // A file-size limit (RLIMIT_FSIZE) then fails the write with EFBIG, reported like a full disk,
  // instead of killing the program mid-save.
  std::signal(SIGXFSZ, SIG_IGN);
  try {
    util::apply_cpu_allocator_from_environment();
    nn::apply_matmul_from_environment();
    return body();
  } catch (const hear::Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what_without_backtrace());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: error: %s\n", program, e.what());
  }
  return 1;
}

}  // namespace hear::tools

// Parses argv with CLI11 inside run_tool: usage errors print CLI11's message and exit 2.
#define HEAR_PARSE(app, argc, argv)    \
  try {                                \
    (app).parse((argc), (argv));       \
  } catch (const CLI::ParseError& e) { \
    return (app).exit(e);              \
  }

namespace hear::tools {

// The config options every stage program has: --config FILE, dotted overrides, --resume RUN_DIR
// (which reloads RUN_DIR/config.yaml before the overrides), --print-config, --help-config.
struct ConfigArgs {
  std::string config_path;
  std::vector<std::string> overrides;
  std::string resume_dir;
  bool print_config = false;
  bool help_config = false;

  void add_to(CLI::App& app) {
    app.add_option("--config", config_path, "YAML config (see configs/)");
    app.add_option("overrides", overrides, "dotted overrides: train.optimizer.lr=3e-4 ...");
    app.add_option("--resume", resume_dir,
                   "continue the run in RUN_DIR exactly (its config.yaml, then the overrides)");
    app.add_flag("--print-config", print_config, "print the resolved config and exit");
    app.add_flag("--help-config", help_config, "list every config key with type and default");
  }

  // Resolves the config; returns false when the program should exit (printed what was asked).
  template <class C>
  bool resolve(C& config, std::string& yaml) {
    if (help_config) {
      hear::io::ConfigSchema schema;
      schema.bind(config);
      std::printf("%s", hear::io::describe(schema).c_str());
      return false;
    }
    if (!resume_dir.empty()) {
      if (!config_path.empty()) {
        throw hear::Error(
            "--resume takes the run's own config.yaml; drop --config (overrides "
            "are still applied)");
      }
      const auto path = std::filesystem::path(resume_dir) / "config.yaml";
      hear::io::load_config_into(config, path, overrides);
      // The run continues where it is, whatever run_dir its config named.
      overrides.push_back("run_dir=" + resume_dir);
      hear::io::load_config_into(config, path, overrides);
    } else {
      hear::io::load_config_into(
          config,
          config_path.empty() ? std::nullopt : std::optional<std::filesystem::path>(config_path),
          overrides);
    }
    yaml = hear::io::config_to_yaml(config);
    if (print_config) {
      std::printf("%s", yaml.c_str());
      return false;
    }
    return true;
  }
};

}  // namespace hear::tools
