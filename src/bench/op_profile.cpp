#include "hear/bench/op_profile.h"

#include <torch/csrc/autograd/profiler_legacy.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <optional>

namespace hear::bench {
namespace {

namespace prof = torch::autograd::profiler;

std::string shapes_text(const std::vector<std::vector<int64_t>>& shapes) {
  std::string s = "[";
  for (size_t i = 0; i < shapes.size(); ++i) {
    if (i) s += ", ";
    s += "[";
    for (size_t j = 0; j < shapes[i].size(); ++j) {
      if (j) s += ", ";
      s += std::to_string(shapes[i][j]);
    }
    s += "]";
  }
  return s + "]";
}

}  // namespace

OpProfile profile_ops(const std::function<void()>& work, bool by_shape) {
  OpProfile out;
  std::optional<prof::thread_event_lists> events;
  {
    const torch::profiler::impl::ProfilerConfig config(torch::profiler::impl::ProfilerState::CPU,
                                                       /*report_input_shapes=*/by_shape);
    prof::TLSLegacyProfilerGuard guard(
        config, [&](const prof::thread_event_lists& lists) { events = lists; });
    const auto t0 = std::chrono::steady_clock::now();
    work();
    out.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  struct Open {
    const prof::LegacyEvent* push;
    std::string key;
    double child_us = 0;
  };
  std::map<std::string, OpTime> table;
  for (const auto& list : *events) {
    std::vector<Open> stack;
    std::map<std::string, int> depth;  // open calls per key: recursion counted once in total_s
    for (const auto& e : list) {
      if (e.kind() == prof::EventKind::PushRange) {
        std::string key = e.name();
        if (by_shape) key += " " + shapes_text(e.shapes());
        ++depth[key];
        stack.push_back({&e, std::move(key)});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        // Ranges close in order on one thread; match by handle in case one was left open.
        auto it = std::find_if(stack.rbegin(), stack.rend(),
                               [&](const Open& o) { return o.push->handle() == e.handle(); });
        if (it == stack.rend()) continue;
        const size_t index = static_cast<size_t>(std::distance(it, stack.rend())) - 1;
        const Open open = stack[index];
        stack.resize(index);
        const double us = open.push->cpuElapsedUs(e);
        OpTime& row = table[open.key];
        row.name = open.key;
        ++row.calls;
        row.self_s += (us - open.child_us) / 1e6;
        if (--depth[open.key] == 0) row.total_s += us / 1e6;
        if (!stack.empty()) stack.back().child_us += us;
      }
    }
  }
  for (auto& [key, row] : table) out.ops.push_back(std::move(row));
  std::sort(out.ops.begin(), out.ops.end(),
            [](const OpTime& a, const OpTime& b) { return a.self_s > b.self_s; });
  return out;
}

std::string format_op_profile(const OpProfile& profile, int top) {
  std::string text;
  char buf[512];
  std::snprintf(buf, sizeof buf, "  %-58s %7s %9s %6s %9s\n", "operator (by self time)", "calls",
                "self s", "share", "total s");
  text += buf;
  const int n = std::min<int>(top, static_cast<int>(profile.ops.size()));
  for (int i = 0; i < n; ++i) {
    const OpTime& op = profile.ops[static_cast<size_t>(i)];
    std::snprintf(buf, sizeof buf, "  %-58.58s %7lld %9.4f %5.1f%% %9.4f\n", op.name.c_str(),
                  static_cast<long long>(op.calls), op.self_s,
                  100.0 * op.self_s / std::max(profile.wall_s, 1e-12), op.total_s);
    text += buf;
  }
  std::snprintf(buf, sizeof buf, "  profiled wall time %.4f s (profiler overhead included)\n",
                profile.wall_s);
  return text + buf;
}

}  // namespace hear::bench
