#pragma once
// splitmix64 (Steele, Lea & Flood 2014): a tiny portable generator, so sampling plans and test
// signals are identical on every standard library and platform.
#include <cstdint>

namespace hear::util {

// The splitmix64 output function: a bijective mix of 64 bits.
inline uint64_t splitmix64_mix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// The sequence generator: state advances by the golden-ratio increment.
struct SplitMix64 {
  uint64_t state;
  uint64_t operator()() { return splitmix64_mix(state += 0x9E3779B97F4A7C15ull); }
};

// A well-mixed seed from two values (e.g. (seed, epoch)).
inline uint64_t mix_seed(uint64_t a, uint64_t b) {
  return splitmix64_mix(a * 0x9E3779B97F4A7C15ull + b + 0x632BE59BD9B4E019ull);
}

}  // namespace hear::util
