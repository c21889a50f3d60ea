#include "hear/util/caching_cpu_allocator.h"

#include <c10/core/CPUAllocator.h>

#include <algorithm>
#include <cstdlib>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>
#include <vector>

#include "hear/error.h"

namespace hear::util {
namespace {

constexpr size_t kAlignment = 64;       // c10's CPU alignment (AVX-512 loads)
constexpr size_t kHeader = kAlignment;  // the block's size, in front of the data
constexpr size_t kMinCached = 64 * 1024;

// The smallest of 8 sizes per power of two that holds n (n >= kMinCached).
size_t bucket_size(size_t n) {
  size_t top = size_t{1} << (63 - __builtin_clzll(n));  // largest power of two <= n
  const size_t step = top / 8;
  return (n + step - 1) / step * step;
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) const override {
    if (n == 0) return {nullptr, nullptr, &release, c10::Device(c10::DeviceType::CPU)};
    const size_t size = n >= kMinCached ? bucket_size(n) : n;
    void* base = nullptr;
    if (size >= kMinCached) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        base = it->second.back();
        it->second.pop_back();
        stats_.cached_bytes -= static_cast<int64_t>(size);
        ++stats_.reused;
      } else {
        ++stats_.fresh;
      }
      stats_.in_use_bytes += static_cast<int64_t>(size);
      stats_.peak_in_use_bytes = std::max(stats_.peak_in_use_bytes, stats_.in_use_bytes);
    }
    if (!base && posix_memalign(&base, kAlignment, size + kHeader) != 0) {
      release_cached();  // give the cache back and try once more before failing
      if (posix_memalign(&base, kAlignment, size + kHeader) != 0) {
        if (size >= kMinCached) {
          std::lock_guard<std::mutex> lock(mutex_);
          stats_.in_use_bytes -= static_cast<int64_t>(size);
        }
        throw Error("CPU allocator: out of memory allocating " + std::to_string(n) + " bytes");
      }
    }
    *static_cast<size_t*>(base) = size;
    void* data = static_cast<char*>(base) + kHeader;
    return {data, data, &release, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &release; }

  static void release(void* data) {
    if (!data) return;
    void* base = static_cast<char*>(data) - kHeader;
    const size_t size = *static_cast<size_t*>(base);
    if (size >= kMinCached) {
      CachingCpuAllocator& self = instance();
      std::lock_guard<std::mutex> lock(self.mutex_);
      self.stats_.in_use_bytes -= static_cast<int64_t>(size);
      if (self.stats_.cached_bytes + static_cast<int64_t>(size) <= self.max_cached_) {
        self.free_[size].push_back(base);
        self.stats_.cached_bytes += static_cast<int64_t>(size);
        return;
      }
    }
    std::free(base);
  }

  void release_cached() const {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [size, list] : free_) blocks.insert(blocks.end(), list.begin(), list.end());
      free_.clear();
      stats_.cached_bytes = 0;
    }
    for (void* b : blocks) std::free(b);
  }

  // Never destroyed: tensors freed during static destruction still find it.
  static CachingCpuAllocator& instance() {
    static auto* self = new CachingCpuAllocator();
    return *self;
  }

  mutable std::mutex mutex_;
  mutable std::unordered_map<size_t, std::vector<void*>> free_;
  mutable CpuAllocatorStats stats_;
  int64_t max_cached_ = 0;
  bool installed_ = false;
};

}  // namespace

void install_caching_cpu_allocator(size_t max_cached_bytes) {
  CachingCpuAllocator& a = CachingCpuAllocator::instance();
  {
    std::lock_guard<std::mutex> lock(a.mutex_);
    a.max_cached_ = static_cast<int64_t>(max_cached_bytes);
    if (a.installed_) return;
    a.installed_ = true;
  }
  c10::SetCPUAllocator(&a, /*priority=*/1);  // above the default allocator's 0
}

bool caching_cpu_allocator_installed() {
  CachingCpuAllocator& a = CachingCpuAllocator::instance();
  std::lock_guard<std::mutex> lock(a.mutex_);
  return a.installed_;
}

CpuAllocatorStats caching_cpu_allocator_stats() {
  CachingCpuAllocator& a = CachingCpuAllocator::instance();
  std::lock_guard<std::mutex> lock(a.mutex_);
  return a.stats_;
}

void release_cached_cpu_memory() {
  CachingCpuAllocator::instance().release_cached();
}

void apply_cpu_allocator_from_environment() {
  const char* value = std::getenv("HEAR_CPU_ALLOCATOR");
  const std::string choice = value ? value : "";
  if (choice.empty() || choice == "caching") {
    install_caching_cpu_allocator();
  } else if (choice != "system") {
    throw Error("HEAR_CPU_ALLOCATOR='" + choice + "': expected caching or system");
  }
}

}  // namespace hear::util
