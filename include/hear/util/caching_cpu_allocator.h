#pragma once
// A CPU allocator for training and inference loops that keeps freed blocks for reuse.
//
// LibTorch's default CPU allocator hands every tensor to malloc, and glibc serves blocks above its
// mmap threshold (at most 32 MiB) with fresh mmap()s that free() unmaps again: each step of a
// training loop then page-faults its large activations and gradients in anew (the zero-fill of a
// 46 MB attention-skew gradient costs ~45 ms faulted vs ~1 ms warm on this 2-core VM). This
// allocator rounds requests of at least 64 KiB up to one of 8 sizes per power of two (at most
// 12.5% slack), and keeps freed blocks on per-size free lists, so a loop whose shapes repeat
// reuses warm memory. The cache is bounded: a freed block that would take it past the limit goes
// back to the system. Smaller requests go to malloc directly. Thread-safe.
//
// Installing it is process-wide (c10::SetCPUAllocator) and only affects tensors allocated after;
// tensors allocated before keep their own deleter, so it is safe at any point.
#include <cstddef>
#include <cstdint>

namespace hear::util {

struct CpuAllocatorStats {
  int64_t reused = 0;        // requests served from the cache
  int64_t fresh = 0;         // requests served by the system (cached sizes only)
  int64_t cached_bytes = 0;  // free blocks held now
  int64_t in_use_bytes = 0;  // blocks handed out now (cached sizes only)
  int64_t peak_in_use_bytes = 0;
};

// Makes LibTorch's CPU allocations go through the cache (idempotent; a second call only changes
// the limit). max_cached_bytes bounds the free blocks kept.
void install_caching_cpu_allocator(size_t max_cached_bytes = size_t{4} << 30);
bool caching_cpu_allocator_installed();
CpuAllocatorStats caching_cpu_allocator_stats();
// Returns every cached free block to the system (blocks in use are unaffected).
void release_cached_cpu_memory();

// The programs' policy: installs the cache unless the environment variable HEAR_CPU_ALLOCATOR is
// "system" ("caching" or unset installs it; anything else throws hear::Error naming the variable).
void apply_cpu_allocator_from_environment();

}  // namespace hear::util
