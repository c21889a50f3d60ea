#include "hear/audio/audio_file.h"

#include <sndfile.h>
#include <soxr.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "hear/error.h"
#include "hear/io/file_util.h"

namespace hear::audio {
namespace {

struct SndfileCloser {
  void operator()(SNDFILE* file) const {
    if (file) sf_close(file);
  }
};
using SndfilePtr = std::unique_ptr<SNDFILE, SndfileCloser>;

std::string quoted(const std::filesystem::path& path) {
  return "'" + path.string() + "'";
}

// Opens for reading with the checks every reader needs; fills `info`.
SndfilePtr open_for_reading(const std::filesystem::path& path, SF_INFO& info) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("audio file " + quoted(path) + " does not exist");
  if (!fs::is_regular_file(path, ec)) {
    throw Error("audio file " + quoted(path) + " is not a regular file");
  }
  if (fs::file_size(path, ec) == 0)
    throw Error("audio file " + quoted(path) + " is empty (0 bytes)");
  std::memset(&info, 0, sizeof(info));
  SndfilePtr file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) {
    throw Error("cannot read " + quoted(path) +
                " as audio (not audio or an unsupported format): " + sf_strerror(nullptr));
  }
  if (info.channels <= 0 || info.samplerate <= 0) {
    throw Error("audio file " + quoted(path) + " has an invalid header (" +
                std::to_string(info.channels) + " channels, " + std::to_string(info.samplerate) +
                " Hz)");
  }
  // A stream whose end libsndfile cannot find (an Ogg file cut short has no end-of-stream page)
  // reports SF_COUNT_MAX frames.
  if (info.frames < 0 || info.frames == std::numeric_limits<sf_count_t>::max()) {
    throw Error("audio file " + quoted(path) + " has an unknown length (truncated stream?)");
  }
  return file;
}

std::string major_format_name(int format) {
  SF_FORMAT_INFO format_info;
  std::memset(&format_info, 0, sizeof(format_info));
  format_info.format = format & SF_FORMAT_TYPEMASK;
  if (sf_command(nullptr, SFC_GET_FORMAT_INFO, &format_info, sizeof(format_info)) != 0 ||
      !format_info.name) {
    return "unknown";
  }
  return format_info.name;
}

// libsndfile silently shortens a WAV/AIFF whose data chunk claims more bytes than the file holds
// (a copy cut short): it reads the bytes that exist and only notes the mismatch in its log, as
// "data : 32000 (should be 19956)". 0xFFFFFFFF is the "unknown size" of streamed writers.
void reject_short_data_chunk(SNDFILE* file, const std::filesystem::path& path) {
  std::vector<char> log(16384, '\0');
  sf_command(file, SFC_GET_LOG_INFO, log.data(), static_cast<int>(log.size()));
  static const std::regex kShortChunk(R"((data|SSND) *: *(\d+) *\(should be (\d+)\))");
  std::string text(log.data());
  std::smatch match;
  if (std::regex_search(text, match, kShortChunk)) {
    const unsigned long long claimed = std::stoull(match[2].str());
    const unsigned long long present = std::stoull(match[3].str());
    if (claimed > present && claimed != 0xFFFFFFFFull) {
      throw Error("audio file " + quoted(path) + " is truncated: its header announces " +
                  match[2].str() + " data bytes, the file holds " + match[3].str());
    }
  }
}

}  // namespace

AudioInfo probe_audio(const std::filesystem::path& path) {
  SF_INFO sf_info;
  SndfilePtr file = open_for_reading(path, sf_info);
  AudioInfo info;
  info.sample_rate = sf_info.samplerate;
  info.channels = sf_info.channels;
  info.frames = sf_info.frames;
  info.duration_s = static_cast<double>(sf_info.frames) / sf_info.samplerate;
  info.format = major_format_name(sf_info.format);
  return info;
}

at::Tensor load_audio(const std::filesystem::path& path, const LoadOptions& options) {
  if (options.sample_rate <= 0) {
    throw Error("load_audio(" + quoted(path) + "): sample_rate must be > 0, got " +
                std::to_string(options.sample_rate));
  }
  if (!std::isfinite(options.offset_s) || options.offset_s < 0.0) {
    throw Error("load_audio(" + quoted(path) + "): offset_s must be >= 0, got " +
                std::to_string(options.offset_s));
  }
  if (!std::isfinite(options.duration_s) || options.duration_s == 0.0) {
    throw Error("load_audio(" + quoted(path) + "): duration_s must be > 0 (or < 0 for all), got " +
                std::to_string(options.duration_s));
  }
  SF_INFO info;
  SndfilePtr file = open_for_reading(path, info);
  if (info.frames == 0) throw Error("audio file " + quoted(path) + " holds no samples");
  reject_short_data_chunk(file.get(), path);

  const int64_t start = std::llround(options.offset_s * info.samplerate);
  if (start >= info.frames) {
    throw Error("load_audio(" + quoted(path) + "): offset " + std::to_string(options.offset_s) +
                " s is beyond the end of the file (" +
                std::to_string(static_cast<double>(info.frames) / info.samplerate) + " s)");
  }
  int64_t count = info.frames - start;
  if (options.duration_s > 0.0) {
    const int64_t wanted = std::llround(options.duration_s * info.samplerate);
    if (wanted == 0) {
      throw Error("load_audio(" + quoted(path) + "): duration " +
                  std::to_string(options.duration_s) + " s is shorter than one sample");
    }
    count = std::min(count, wanted);
  }
  if (start > 0 && sf_seek(file.get(), start, SEEK_SET) != start) {
    throw Error("cannot seek to frame " + std::to_string(start) + " in " + quoted(path) + ": " +
                sf_strerror(file.get()));
  }

  const int channels = info.channels;
  std::vector<float> interleaved(static_cast<size_t>(count) * channels);
  const sf_count_t got = sf_readf_float(file.get(), interleaved.data(), count);
  if (got < count || sf_error(file.get()) != SF_ERR_NO_ERROR) {
    throw Error("audio file " + quoted(path) + " is truncated or corrupt: read " +
                std::to_string(got) + " of " + std::to_string(count) + " frames (" +
                sf_strerror(file.get()) + ")");
  }
  for (size_t i = 0; i < interleaved.size(); ++i) {
    if (!std::isfinite(interleaved[i])) {
      throw Error("audio file " + quoted(path) +
                  " contains a non-finite sample (NaN or Inf) at frame " +
                  std::to_string(start + static_cast<int64_t>(i / channels)));
    }
  }

  at::Tensor mono;
  if (channels == 1) {
    mono = torch::from_blob(interleaved.data(), {count}, torch::kFloat).clone();
  } else {
    mono = torch::from_blob(interleaved.data(), {count, channels}, torch::kFloat).mean(1);
  }
  if (info.samplerate != options.sample_rate) {
    mono = resample(mono, info.samplerate, options.sample_rate);
    if (mono.size(0) == 0) {
      throw Error("audio file " + quoted(path) + " holds no samples at " +
                  std::to_string(options.sample_rate) + " Hz (" + std::to_string(count) +
                  " frames at " + std::to_string(info.samplerate) + " Hz)");
    }
  }
  return mono;
}

struct AudioStream::State {
  std::filesystem::path path;
  int rate = kSampleRate;
  SF_INFO sf_info{};
  SndfilePtr file;
  AudioInfo info;
  soxr_t resampler = nullptr;
  int64_t file_frames_read = 0;
  int64_t samples_out = 0;
  bool flushed = false;

  void close_resampler() {
    if (resampler) soxr_delete(resampler);
    resampler = nullptr;
  }
  void open_resampler() {
    close_resampler();
    if (info.sample_rate == rate) return;
    const soxr_io_spec_t io_spec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    soxr_error_t error = nullptr;
    resampler = soxr_create(info.sample_rate, rate, 1, &error, &io_spec, &quality, nullptr);
    if (error || !resampler) {
      throw Error("resample " + std::to_string(info.sample_rate) + " -> " + std::to_string(rate) +
                  " Hz for " + quoted(path) + " failed: " + (error ? error : "no resampler"));
    }
  }
  ~State() { close_resampler(); }
};

AudioStream::AudioStream(const std::filesystem::path& path, int sample_rate)
    : state_(std::make_unique<State>()) {
  if (sample_rate <= 0) throw Error("AudioStream: sample rate must be > 0");
  auto& s = *state_;
  s.path = path;
  s.rate = sample_rate;
  s.file = open_for_reading(path, s.sf_info);
  if (s.sf_info.frames == 0) throw Error("audio file " + quoted(path) + " holds no samples");
  reject_short_data_chunk(s.file.get(), path);
  s.info.sample_rate = s.sf_info.samplerate;
  s.info.channels = s.sf_info.channels;
  s.info.frames = s.sf_info.frames;
  s.info.duration_s = static_cast<double>(s.info.frames) / s.info.sample_rate;
  s.info.format = major_format_name(s.sf_info.format);
  s.open_resampler();
}

AudioStream::~AudioStream() = default;
AudioStream::AudioStream(AudioStream&&) noexcept = default;
AudioStream& AudioStream::operator=(AudioStream&&) noexcept = default;

const AudioInfo& AudioStream::info() const {
  return state_->info;
}

int64_t AudioStream::total_samples() const {
  const auto& i = state_->info;
  return i.sample_rate == state_->rate
             ? i.frames
             : std::llround(static_cast<double>(i.frames) * state_->rate / i.sample_rate);
}

void AudioStream::rewind() {
  auto& s = *state_;
  if (sf_seek(s.file.get(), 0, SEEK_SET) != 0) {
    throw Error("cannot seek to the start of " + quoted(s.path) + ": " + sf_strerror(s.file.get()));
  }
  s.file_frames_read = 0;
  s.samples_out = 0;
  s.flushed = false;
  s.open_resampler();
}

at::Tensor AudioStream::read(int64_t max_file_frames) {
  if (max_file_frames < 1) throw Error("AudioStream::read: max_file_frames must be >= 1");
  // The resampler holds back its first output (filter delay): read on until some comes out.
  for (;;) {
    at::Tensor out = read_block(max_file_frames);
    if (out.size(0) > 0 || state_->file_frames_read == state_->info.frames) return out;
  }
}

at::Tensor AudioStream::read_block(int64_t max_file_frames) {
  auto& s = *state_;
  const int channels = s.info.channels;
  const int64_t count = std::min(max_file_frames, s.info.frames - s.file_frames_read);
  at::Tensor mono = torch::zeros({0}, torch::kFloat);
  if (count > 0) {
    std::vector<float> interleaved(static_cast<size_t>(count) * channels);
    const sf_count_t got = sf_readf_float(s.file.get(), interleaved.data(), count);
    if (got < count || sf_error(s.file.get()) != SF_ERR_NO_ERROR) {
      throw Error("audio file " + quoted(s.path) + " is truncated or corrupt: read " +
                  std::to_string(s.file_frames_read + got) + " of " +
                  std::to_string(s.info.frames) + " frames (" + sf_strerror(s.file.get()) + ")");
    }
    for (size_t i = 0; i < interleaved.size(); ++i) {
      if (!std::isfinite(interleaved[i])) {
        throw Error("audio file " + quoted(s.path) +
                    " contains a non-finite sample (NaN or Inf) at frame " +
                    std::to_string(s.file_frames_read + static_cast<int64_t>(i / channels)));
      }
    }
    s.file_frames_read += count;
    mono = channels == 1
               ? torch::from_blob(interleaved.data(), {count}, torch::kFloat).clone()
               : torch::from_blob(interleaved.data(), {count, channels}, torch::kFloat).mean(1);
  }
  if (!s.resampler) {
    s.samples_out += mono.size(0);
    return mono;
  }
  // soxr holds back its filter delay until the end; the output stops at load_audio's length.
  const int64_t remaining = total_samples() - s.samples_out;
  if (remaining <= 0 || (count == 0 && s.flushed)) return torch::zeros({0}, torch::kFloat);
  const double ratio = static_cast<double>(s.rate) / s.info.sample_rate;
  std::vector<float> out;
  std::vector<float> buffer(static_cast<size_t>(std::ceil(count * ratio)) + 4096);
  const float* in = mono.data_ptr<float>();
  size_t in_left = static_cast<size_t>(mono.size(0));
  const bool last = s.file_frames_read == s.info.frames;
  for (;;) {
    // A null input tells soxr the input has ended: it then flushes its delay line.
    const bool flushing = last && in_left == 0;
    size_t in_done = 0, out_done = 0;
    const soxr_error_t error = soxr_process(s.resampler, flushing ? nullptr : in, in_left, &in_done,
                                            buffer.data(), buffer.size(), &out_done);
    if (error) throw Error("resampling " + quoted(s.path) + " failed: " + error);
    out.insert(out.end(), buffer.begin(), buffer.begin() + static_cast<std::ptrdiff_t>(out_done));
    if (flushing) {
      if (out_done == 0) {
        s.flushed = true;
        break;
      }
      continue;
    }
    in += in_done;
    in_left -= in_done;
    if (in_left == 0 && !last) break;
  }
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(out.size()), remaining);
  s.samples_out += n;
  return torch::from_blob(out.data(), {n}, torch::kFloat).clone();
}

at::Tensor resample(const at::Tensor& samples, int from_rate, int to_rate) {
  if (from_rate <= 0 || to_rate <= 0) {
    throw Error("resample: rates must be > 0, got " + std::to_string(from_rate) + " -> " +
                std::to_string(to_rate));
  }
  if (samples.dim() != 1 && samples.dim() != 2) {
    throw Error("resample: expected (S,) or (C, S) samples, got shape " +
                c10::str(samples.sizes()));
  }
  if (!samples.is_floating_point()) {
    throw Error("resample: expected floating-point samples, got " +
                std::string(c10::toString(samples.scalar_type())));
  }
  if (from_rate == to_rate) return samples.to(torch::kFloat).clone();
  const bool mono = samples.dim() == 1;
  at::Tensor planar = (mono ? samples.unsqueeze(0) : samples).to(torch::kCPU, torch::kFloat);
  const int64_t channels = planar.size(0);
  const int64_t in_len = planar.size(1);
  if (channels == 0) {
    throw Error("resample: expected at least one channel, got shape " + c10::str(samples.sizes()));
  }
  const int64_t out_len = std::llround(static_cast<double>(in_len) * to_rate / from_rate);
  at::Tensor interleaved_in = planar.t().contiguous();  // (S, C)
  at::Tensor interleaved_out = torch::zeros({out_len, channels}, torch::kFloat);
  if (in_len > 0 && out_len > 0) {
    const soxr_io_spec_t io_spec = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    const soxr_quality_spec_t quality = soxr_quality_spec(SOXR_HQ, 0);
    size_t in_done = 0;
    size_t out_done = 0;
    soxr_error_t error = soxr_oneshot(
        from_rate, to_rate, static_cast<unsigned>(channels), interleaved_in.data_ptr<float>(),
        static_cast<size_t>(in_len), &in_done, interleaved_out.data_ptr<float>(),
        static_cast<size_t>(out_len), &out_done, &io_spec, &quality, nullptr);
    if (error) {
      throw Error("resample " + std::to_string(from_rate) + " -> " + std::to_string(to_rate) +
                  " Hz failed: " + error);
    }
  }
  at::Tensor out = interleaved_out.t().contiguous();
  out = mono ? out.squeeze(0) : out;
  return out.to(samples.device());
}

namespace {

// libsndfile writes into this buffer, so that the bytes reach the disk through the one atomic
// writer the library has.
struct MemoryFile {
  std::string bytes;
  sf_count_t position = 0;
};

sf_count_t memory_length(void* user) {
  return static_cast<sf_count_t>(static_cast<MemoryFile*>(user)->bytes.size());
}

sf_count_t memory_seek(sf_count_t offset, int whence, void* user) {
  auto* file = static_cast<MemoryFile*>(user);
  sf_count_t base = 0;
  if (whence == SEEK_CUR) base = file->position;
  if (whence == SEEK_END) base = static_cast<sf_count_t>(file->bytes.size());
  const sf_count_t target = base + offset;
  if (target < 0) return -1;
  file->position = target;
  return target;
}

sf_count_t memory_read(void* data, sf_count_t count, void* user) {
  auto* file = static_cast<MemoryFile*>(user);
  const sf_count_t size = static_cast<sf_count_t>(file->bytes.size());
  const sf_count_t n = std::max<sf_count_t>(0, std::min(count, size - file->position));
  if (n > 0) std::memcpy(data, file->bytes.data() + file->position, static_cast<size_t>(n));
  file->position += n;
  return n;
}

sf_count_t memory_write(const void* data, sf_count_t count, void* user) {
  auto* file = static_cast<MemoryFile*>(user);
  const size_t end = static_cast<size_t>(file->position + count);
  if (end > file->bytes.size()) file->bytes.resize(end, '\0');
  std::memcpy(file->bytes.data() + file->position, data, static_cast<size_t>(count));
  file->position += count;
  return count;
}

sf_count_t memory_tell(void* user) {
  return static_cast<MemoryFile*>(user)->position;
}

int output_format(const std::filesystem::path& path, AudioEncoding encoding) {
  std::string ext = path.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  auto pcm = [&](int major, bool float_ok) {
    switch (encoding) {
      case AudioEncoding::kDefault:
      case AudioEncoding::kPcm16:
        return major | SF_FORMAT_PCM_16;
      case AudioEncoding::kPcm24:
        return major | SF_FORMAT_PCM_24;
      case AudioEncoding::kFloat32:
        if (float_ok) return major | SF_FORMAT_FLOAT;
        break;
    }
    throw Error("write_audio(" + quoted(path) + "): " + ext + " cannot hold float samples");
  };
  auto lossy = [&](int format) {
    if (encoding != AudioEncoding::kDefault) {
      throw Error("write_audio(" + quoted(path) + "): " + ext +
                  " is lossy; only the default encoding applies");
    }
    return format;
  };
  if (ext == ".wav") return pcm(SF_FORMAT_WAV, true);
  if (ext == ".flac") return pcm(SF_FORMAT_FLAC, false);
  if (ext == ".ogg" || ext == ".oga") return lossy(SF_FORMAT_OGG | SF_FORMAT_VORBIS);
  if (ext == ".opus") return lossy(SF_FORMAT_OGG | SF_FORMAT_OPUS);
  if (ext == ".mp3") return lossy(SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III);
  throw Error("write_audio(" + quoted(path) + "): unknown extension '" + ext +
              "' (use .wav, .flac, .ogg, .opus or .mp3)");
}

}  // namespace

void write_audio(const std::filesystem::path& path, const at::Tensor& samples, int sample_rate,
                 AudioEncoding encoding) {
  if (samples.dim() != 1 && samples.dim() != 2) {
    throw Error("write_audio(" + quoted(path) + "): expected (S,) or (C, S) samples, got shape " +
                c10::str(samples.sizes()));
  }
  if (sample_rate <= 0) {
    throw Error("write_audio(" + quoted(path) + "): sample_rate must be > 0, got " +
                std::to_string(sample_rate));
  }
  at::Tensor planar =
      (samples.dim() == 1 ? samples.unsqueeze(0) : samples).to(torch::kCPU, torch::kFloat);
  if (planar.size(0) < 1) throw Error("write_audio(" + quoted(path) + "): no channels");
  SF_INFO info;
  std::memset(&info, 0, sizeof(info));
  info.samplerate = sample_rate;
  info.channels = static_cast<int>(planar.size(0));
  info.format = output_format(path, encoding);
  if (!sf_format_check(&info)) {
    throw Error("write_audio(" + quoted(path) + "): libsndfile cannot write " +
                std::to_string(info.channels) + " channels at " + std::to_string(sample_rate) +
                " Hz in this format");
  }
  if ((info.format & SF_FORMAT_SUBMASK) != SF_FORMAT_FLOAT &&
      !planar.isfinite().all().item<bool>()) {
    throw Error("write_audio(" + quoted(path) + "): non-finite samples need the float encoding");
  }
  at::Tensor interleaved = planar.t().contiguous();
  MemoryFile memory;
  SF_VIRTUAL_IO io{memory_length, memory_seek, memory_read, memory_write, memory_tell};
  {
    SndfilePtr file(sf_open_virtual(&io, SFM_WRITE, &info, &memory));
    if (!file) {
      throw Error("write_audio(" + quoted(path) + "): " + sf_strerror(nullptr));
    }
    sf_command(file.get(), SFC_SET_CLIPPING, nullptr, SF_TRUE);
    const sf_count_t frames = interleaved.size(0);
    if (frames > 0 &&
        sf_writef_float(file.get(), interleaved.data_ptr<float>(), frames) != frames) {
      throw Error("write_audio(" + quoted(path) + "): " + sf_strerror(file.get()));
    }
  }  // sf_close finalizes the header
  io::write_file_atomic(path, memory.bytes);
}

}  // namespace hear::audio
