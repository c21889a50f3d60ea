// hear_cpp: the HEAR benchmark API (hear-eval-kit's load_model / get_timestamp_embeddings /
// get_scene_embeddings) on the C++ library, for Debian's python3 without PyTorch training code.
// Audio in: [n, samples] float32 in [-1, 1] at 16 kHz, a numpy array or a torch tensor (answered
// with the same kind). The computation runs without the GIL.
#include <ATen/Parallel.h>
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hear/error.h"
#include "hear/inference/embedder.h"
#include "hear/io/config.h"
#include "hear/nn/int8_linear.h"
#include "hear/nn/onednn_matmul.h"
#include "hear/stages/finetuned_model.h"
#include "hear/util/device.h"

namespace py = pybind11;
namespace fs = std::filesystem;

namespace {

using FloatArray = py::array_t<float, py::array::c_style | py::array::forcecast>;

// A loaded model and what the API reports about it.
struct Model {
  std::unique_ptr<hear::inference::Embedder> embedder;
  std::unique_ptr<hear::nn::Int8Linears> int8;
  hear::inference::EmbeddingKind frames = hear::inference::EmbeddingKind::kAcoustic;
  std::vector<std::string> labels;
  int threads = 1;

  int64_t frame_size() const {
    auto& m = embedder->model();
    return frames == hear::inference::EmbeddingKind::kTask
               ? m->task_model->options().hidden_size
               : m->acoustic_model->options().hidden_size;
  }
  int64_t scene_size() const {
    auto& m = embedder->model();
    return 3 * (embedder->has_task_model() ? m->task_model->options().hidden_size
                                           : m->acoustic_model->options().hidden_size);
  }
};

bool is_torch_tensor(const py::handle& x) {
  const auto type = py::type::of(x);
  return py::str(type.attr("__module__")).cast<std::string>() == "torch" &&
         py::str(type.attr("__name__")).cast<std::string>() == "Tensor";
}

// [n, samples] (or [samples]) -> n clips; throws ValueError-mapped hear::Error on bad input.
std::vector<at::Tensor> clips_of(const py::handle& audio, bool* torch_input) {
  *torch_input = is_torch_tensor(audio);
  py::object array = *torch_input ? audio.attr("detach")().attr("cpu")().attr("numpy")()
                                  : py::reinterpret_borrow<py::object>(audio);
  const auto a = FloatArray::ensure(array);
  if (!a) throw hear::Error("audio: expected a float array [n, samples]");
  if (a.ndim() != 2) {
    throw hear::Error("audio: expected [n, samples] (n clips of 16 kHz samples), got " +
                      std::to_string(a.ndim()) + " dimensions");
  }
  const int64_t n = a.shape(0), samples = a.shape(1);
  if (n < 1) throw hear::Error("audio: no clips (n = 0)");
  if (samples < hear::inference::kMinEmbedSamples) {
    throw hear::Error("audio: clips of " + std::to_string(samples) +
                      " samples are too short (at least " +
                      std::to_string(hear::inference::kMinEmbedSamples) + " at 16 kHz)");
  }
  const at::Tensor all =
      torch::from_blob(const_cast<float*>(a.data()), {n, samples}, torch::kFloat).clone();
  if (!torch::isfinite(all).all().item<bool>()) {
    throw hear::Error("audio: contains NaN or Inf samples");
  }
  std::vector<at::Tensor> clips;
  for (int64_t i = 0; i < n; ++i) clips.push_back(all[i]);
  return clips;
}

py::object to_python(const at::Tensor& t, bool torch_output) {
  const at::Tensor c = t.contiguous();
  py::array out;
  if (c.scalar_type() == torch::kDouble) {
    out = py::array_t<double>(c.sizes().vec(), c.data_ptr<double>());
  } else {
    const at::Tensor f = c.to(torch::kFloat);
    out = py::array_t<float>(f.sizes().vec(), f.data_ptr<float>());
  }
  if (!torch_output) return std::move(out);
  return py::module_::import("torch").attr("from_numpy")(out);
}

std::vector<hear::inference::ClipEmbedding> embed(Model& model, const py::handle& audio,
                                                  hear::inference::EmbeddingKind kind,
                                                  bool* torch_input) {
  auto clips = clips_of(audio, torch_input);
  model.embedder->require(kind);
  py::gil_scoped_release release;
  at::set_num_threads(model.threads);
  return model.embedder->embed(clips, kind);
}

// One value per clip (logits or scene vectors), stacked: [n, ...] as the input's kind.
py::object stacked(Model& model, const py::handle& audio, hear::inference::EmbeddingKind kind) {
  bool torch_input = false;
  const auto out = embed(model, audio, kind, &torch_input);
  std::vector<at::Tensor> rows;
  for (const auto& e : out) rows.push_back(e.values);
  return to_python(torch::stack(rows), torch_input);
}

std::shared_ptr<Model> load_model(const std::string& path, const py::kwargs& kwargs) {
  std::optional<fs::path> config;
  std::vector<std::string> overrides;
  std::string checkpoint = "best", device = "cpu", embedding = "acoustic";
  bool int8 = false;
  auto model = std::make_shared<Model>();
  for (const auto& [key, value] : kwargs) {
    const std::string k = py::str(key);
    if (k == "config") {
      config = py::str(value).cast<std::string>();
    } else if (k == "overrides") {
      overrides = value.cast<std::vector<std::string>>();
    } else if (k == "checkpoint") {
      checkpoint = py::str(value);
    } else if (k == "device") {
      device = py::str(value);
    } else if (k == "threads") {
      model->threads = value.cast<int>();
      if (model->threads < 1) throw hear::Error("load_model: threads must be >= 1");
    } else if (k == "embedding") {
      embedding = py::str(value);
    } else if (k == "int8") {
      int8 = value.cast<bool>();
    } else {
      throw hear::Error("load_model: unknown option '" + k +
                        "' (config, overrides, checkpoint, device, threads, embedding, int8)");
    }
  }
  if (embedding != "acoustic" && embedding != "task") {
    throw hear::Error("load_model: embedding='" + embedding + "': expected acoustic or task");
  }
  const c10::Device where = hear::util::parse_device(device, "device");
  hear::nn::apply_matmul_from_environment();
  py::gil_scoped_release release;
  if (!path.empty() && fs::is_directory(path)) {
    // A hear-finetune run directory: config, labels and weights from its checkpoint.
    auto run = hear::stages::load_finetuned(path, checkpoint);
    model->labels = run.labels.names();
    model->embedder = std::make_unique<hear::inference::Embedder>(run.model, run.checkpoint, where);
  } else {
    if (path.empty()) throw hear::Error("load_model: give a model file or a run directory");
    if (!fs::exists(path)) throw hear::Error("model file '" + path + "' does not exist");
    hear::models::HearClassifierOptions options;
    options.decoder.num_classes = 1;
    hear::io::load_config_into(options, config, overrides);
    model->embedder = std::make_unique<hear::inference::Embedder>(options, path, where);
    const fs::path labels = fs::path(path).parent_path() / "labels.tsv";
    if (fs::exists(labels)) model->labels = hear::data::read_labels(labels).names();
  }
  model->frames = embedding == "task" ? hear::inference::EmbeddingKind::kTask
                                      : hear::inference::EmbeddingKind::kAcoustic;
  model->embedder->require(model->frames);
  if (int8) model->int8 = std::make_unique<hear::nn::Int8Linears>(*model->embedder->model());
  return model;
}

// hear::Error -> ValueError (FileNotFoundError when it says a file does not exist).
void translate(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const hear::Error& e) {
    const std::string what = e.what();
    if (what.find("does not exist") != std::string::npos) {
      PyErr_SetString(PyExc_FileNotFoundError, what.c_str());
    } else {
      PyErr_SetString(PyExc_ValueError, what.c_str());
    }
  }
}

}  // namespace

PYBIND11_MODULE(hear_cpp, m) {
  m.doc() = "HEAR (Human-inspired Efficient Audio Representation) on the hear-cpp C++ library";
  py::register_exception_translator(&translate);
  py::class_<Model, std::shared_ptr<Model>>(m, "Model")
      .def_property_readonly("sample_rate", [](const Model&) { return 16000; })
      .def_property_readonly("timestamp_embedding_size", &Model::frame_size)
      .def_property_readonly("scene_embedding_size", &Model::scene_size)
      .def_property_readonly("labels", [](const Model& model) { return model.labels; })
      .def_property_readonly("has_task_model",
                             [](const Model& model) { return model.embedder->has_task_model(); })
      .def(
          "logits",
          [](Model& model, const py::object& audio) {
            return stacked(model, audio, hear::inference::EmbeddingKind::kLogits);
          },
          py::arg("audio"), "classifier outputs [n, num_classes]")
      .def(
          "predict",
          [](Model& model, const py::object& audio) {
            bool torch_input = false;
            const auto out =
                embed(model, audio, hear::inference::EmbeddingKind::kLogits, &torch_input);
            std::vector<py::object> names;
            for (const auto& e : out) {
              const int64_t k = e.values.argmax().item<int64_t>();
              if (k < static_cast<int64_t>(model.labels.size())) {
                names.push_back(py::str(model.labels[k]));
              } else {
                names.push_back(py::int_(k));
              }
            }
            return names;
          },
          py::arg("audio"), "the top class per clip (its name when the model has labels.tsv)");
  m.def("load_model", &load_model, py::arg("model_file_path") = "",
        "load_model(model_file_path, **options): a hear-finetune run directory (its `best` "
        "checkpoint; checkpoint='last' or a directory), a full HEAR model or an acoustic model "
        "(.safetensors, reference key names; config='model.yaml' for its sizes). Options: "
        "config, overrides=['k=v'], checkpoint, device ('cpu', 'cuda'), threads, "
        "embedding ('acoustic' frames, or 'task' for a full model), int8");
  m.def(
      "get_timestamp_embeddings",
      [](const py::object& audio, Model& model) {
        bool torch_input = false;
        const auto out = embed(model, audio, model.frames, &torch_input);
        std::vector<at::Tensor> values, stamps;
        for (const auto& e : out) {
          values.push_back(e.values);
          stamps.push_back(e.timestamps_ms);
        }
        return py::make_tuple(to_python(torch::stack(values), torch_input),
                              to_python(torch::stack(stamps), torch_input));
      },
      py::arg("audio"), py::arg("model"),
      "(embeddings [n, T, D], timestamps_ms [n, T]): frames every 20 ms, timestamps at the "
      "patch centres 20 t + 5 ms");
  m.def(
      "get_scene_embeddings",
      [](const py::object& audio, Model& model) {
        return stacked(model, audio, hear::inference::EmbeddingKind::kScene);
      },
      py::arg("audio"), py::arg("model"),
      "[n, 3 D]: [mean, max, std] over the frames (task-model frames for a full model)");
}
