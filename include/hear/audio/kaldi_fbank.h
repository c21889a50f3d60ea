#pragma once
// Kaldi-compatible log-mel filterbank, the SSAST teacher's frontend (docs/reference-notes.md §5):
// htk_compat, 128 bins, Hanning (symmetric Hann) window, dither 0, snip_edges, pre-emphasis 0.97,
// per-frame DC removal, 25 ms / 10 ms framing, FFT 512, low 20 Hz, high Nyquist, power spectrum,
// log(max(x, float epsilon)), no energy term. Matches torchaudio.compliance.kaldi.fbank.
#include <ATen/core/Tensor.h>

namespace hear::audio {

struct KaldiFbankOptions {
  int sample_rate = 16000;
  int num_mel_bins = 128;
  double frame_length_ms = 25.0;
  double frame_shift_ms = 10.0;
  double preemphasis = 0.97;
  double low_freq = 20.0;
  double high_freq = 0.0;  // <= 0: Nyquist + high_freq (Kaldi's convention)
  bool remove_dc_offset = true;
};

// waveform: (S,) float32, already mean-removed by the caller if wanted (SSAST subtracts the clip
// mean first: see subtract_mean). Returns (T', num_mel_bins), T' = 1 + (S - 400) / 160
// (0 rows if S < frame length).
at::Tensor kaldi_fbank(const at::Tensor& waveform, const KaldiFbankOptions& options = {});

// waveform - mean(waveform), the mean taken in float32 as SSAST's dataloader does. (S,) -> (S,).
at::Tensor subtract_mean(const at::Tensor& waveform);

// SSAST's dataset normalization, applied after padding to the teacher's frame count:
// (x + 4.2677393) / (2 * 4.5689974).
at::Tensor ssast_normalize(const at::Tensor& fbank);

}  // namespace hear::audio
