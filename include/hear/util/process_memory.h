#pragma once
// The process's resident memory (Linux /proc/self), for benchmarks that report peak memory.

namespace hear::util {

// Resident set now and its high-water mark, in MiB (0 where /proc is unavailable).
double current_rss_mib();
double peak_rss_mib();
// Resets the high-water mark to the current resident set (Linux >= 4.0: clear_refs "5"), so
// that the peak of one measurement excludes the ones before. Returns false where unsupported.
bool reset_peak_rss();

}  // namespace hear::util
