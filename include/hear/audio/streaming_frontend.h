#pragma once
// The frontend over a stream of samples: the centred STFT framing of audio/frontend.h done
// incrementally. push() returns the frames whose n_fft window the samples so far complete;
// finish() adds the end's reflect padding and returns the rest. The spectra are the offline
// frontend's before its z-norm (natural log, DC mean removed), frame for frame.
#include <ATen/core/Tensor.h>

#include <cstdint>

#include "hear/audio/frontend.h"

namespace hear::audio {

struct SpectrumFrames {
  at::Tensor log_power;  // (n_fft / 2 + 1, n) float32
  at::Tensor log_mel;    // (n_mels, n) float32
  int64_t frames() const { return log_mel.defined() ? log_mel.size(1) : 0; }
};

class StreamingFrontend {
 public:
  // dc_mean: the whole clip's sample mean (ClipStatistics::dc_mean), subtracted in float32.
  StreamingFrontend(const Frontend& frontend, double dc_mean);

  // samples: (S,) float, any S >= 0 -> the frames completed by them.
  SpectrumFrames push(const at::Tensor& samples);
  // The remaining frames; throws hear::Error when the stream held fewer than n_fft / 2 + 1
  // samples (the offline frontend's minimum). Afterwards, frames_emitted() == floor(S / hop) + 1.
  SpectrumFrames finish();

  int64_t samples_seen() const { return samples_seen_; }
  int64_t frames_emitted() const { return next_frame_; }

 private:
  SpectrumFrames frames_of(const at::Tensor& padded_span, int64_t count) const;

  const Frontend& frontend_;
  float dc_mean_;
  at::Tensor buffer_;         // DC-removed samples of the reflect-padded stream from buffer_start_
  int64_t buffer_start_ = 0;  // index of buffer_[0] in padded coordinates
  int64_t samples_seen_ = 0;
  int64_t next_frame_ = 0;
  bool started_ = false;  // the left reflect padding is in place
  bool finished_ = false;
};

// ClipStatistics of a recording from its blocks in two passes: pass 1 add_samples (the DC mean),
// pass 2 add_frames with a StreamingFrontend built on dc_mean() (the spectra's mean and std).
class ClipStatisticsAccumulator {
 public:
  void add_samples(const at::Tensor& samples);  // (S,)
  double dc_mean() const;
  void add_frames(const SpectrumFrames& frames);
  ClipStatistics statistics() const;  // throws hear::Error before any samples or frames

 private:
  struct Moments {  // Chan et al.'s pairwise merge: count, mean, sum of squared deviations
    double count = 0.0, mean = 0.0, m2 = 0.0;
    void add(const at::Tensor& x);
  };
  double sample_sum_ = 0.0;
  int64_t sample_count_ = 0;
  Moments power_, mel_;
};

// The statistics of a whole clip (S,) in memory, as the offline frontend computes them.
ClipStatistics clip_statistics(const Frontend& frontend, const at::Tensor& waveform);

}  // namespace hear::audio
