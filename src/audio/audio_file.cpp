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
