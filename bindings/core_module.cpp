// tflm_train._core: the host binding over micro_kernels' Trainer. It owns an
// aligned copy of the model bytes (trained in place) and the arena, converts
// arrays, and turns failing statuses into tflm_train.errors exceptions. No
// training logic lives here.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "model_reader.h"
#include "op_unit.h"
#include "tflm_train/trainer.h"

namespace py = pybind11;
using tflm_train::Status;

namespace {

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<uint8_t, AlignedFree>;

// The exception classes, one per failing Status, made here (tflm_train.errors
// re-exports them): TrainerError(RuntimeError) and, per status, a subclass that is
// also the Python exception a caller would expect (ValueError, FloatingPointError).
// Raw references, kept for the process's life (no destructor runs after Python exits).
constexpr int kNumStatuses = static_cast<int>(Status::kStorageError) + 1;
PyObject* g_errors[kNumStatuses] = {};

py::object MakeError(py::module_& m, const char* name, const char* doc, std::initializer_list<py::handle> bases,
                     Status status) {
  py::tuple base_tuple(bases.size());
  size_t i = 0;
  for (py::handle base : bases) base_tuple[i++] = py::reinterpret_borrow<py::object>(base);
  const std::string qualified = std::string("tflm_train.errors.") + name;
  py::object cls = py::reinterpret_steal<py::object>(
      PyErr_NewExceptionWithDoc(qualified.c_str(), doc, base_tuple.ptr(), nullptr));
  if (!cls) throw py::error_already_set();
  cls.attr("status") = tflm_train::StatusName(status);
  m.attr(name) = cls;
  g_errors[static_cast<int>(status)] = cls.inc_ref().ptr();
  return cls;
}

void RegisterErrors(py::module_& m) {
  py::object trainer = MakeError(m, "TrainerError", "A call into the C++ trainer failed; the trainer and its "
                                 "weights are unchanged.", {PyExc_RuntimeError}, Status::kOk);
  py::handle value = PyExc_ValueError;
  MakeError(m, "InvalidArgumentError", "A bad argument: a size, a count, data of the wrong shape.", {trainer, value},
            Status::kInvalidArgument);
  py::object model = MakeError(m, "InvalidModelError", "The bytes are not a valid .tflite (truncated, corrupt).",
                               {trainer, value}, Status::kInvalidModel);
  MakeError(m, "MissingPlanError", "A valid .tflite without a tflm_train training plan: convert it first.", {model},
            Status::kMissingPlan);
  MakeError(m, "UnsupportedPlanVersionError", "A plan written for another version of the trainer.", {model},
            Status::kUnsupportedPlanVersion);
  MakeError(m, "InvalidPlanError", "The training plan does not fit the model it rides in.", {model},
            Status::kInvalidPlan);
  MakeError(m, "UnsupportedModelError", "An operator, option, type or shape the trainer does not run.",
            {trainer, value}, Status::kUnsupportedModel);
  py::object arena = MakeError(m, "ArenaTooSmallError", "The arena cannot hold the trainer; `required_bytes` says "
                               "what would.", {trainer, value}, Status::kArenaTooSmall);
  arena.attr("required_bytes") = 0;
  MakeError(m, "BadInputError", "Input values that are not finite.", {trainer, value}, Status::kBadInput);
  MakeError(m, "BadLabelError", "A label out of range or not finite.", {trainer, value}, Status::kBadLabel);
  MakeError(m, "NonFiniteError", "The step would have written NaN/Inf; it was refused and weights are unchanged.",
            {trainer, PyExc_FloatingPointError}, Status::kNonFinite);
  MakeError(m, "NotInitializedError", "The trainer's Init has not succeeded.", {trainer}, Status::kNotInitialized);
  MakeError(m, "StorageError", "The checkpoint storage refused a read, erase or program.", {trainer, PyExc_OSError},
            Status::kStorageError);
}

[[noreturn]] void Raise(Status status, const std::string& message, size_t required = 0) {
  const int index = static_cast<int>(status);
  py::handle cls = index > 0 && index < kNumStatuses ? g_errors[index] : g_errors[0];
  py::object error = cls(message);
  if (status == Status::kArenaTooSmall) error.attr("required_bytes") = required;
  PyErr_SetObject(cls.ptr(), error.ptr());
  throw py::error_already_set();
}

AlignedBytes AllocateAligned(size_t size, const char* what) {
  const size_t rounded = ((size + 15) / 16) * 16;
  auto* p = rounded < size ? nullptr
                           : static_cast<uint8_t*>(std::aligned_alloc(16, rounded == 0 ? 16 : rounded));
  if (p == nullptr) {
    Raise(Status::kInvalidArgument, "cannot allocate " + std::to_string(size) + " bytes for the " + what +
                                        " on this host; ask for less memory");
  }
  return AlignedBytes(p);
}

// A checkpoint region in host memory: the raw image a device's flash holds,
// under NOR's rules (erase to 0xFF; program whole units of erased bytes only), so
// the host writes exactly the image a device would.
class ImageStorage final : public tflm_train::FlashStorage {
 public:
  ImageStorage(std::string* image, uint32_t page, uint32_t program) : image_(*image), page_(page), program_(program) {}
  uint32_t page_size() const override { return page_; }
  uint32_t program_size() const override { return program_; }
  uint32_t size() const override { return static_cast<uint32_t>(image_.size()); }
  bool Read(uint32_t offset, void* dst, uint32_t n) override {
    if (!InRange(offset, n)) return false;
    std::memcpy(dst, image_.data() + offset, n);
    return true;
  }
  bool ErasePage(uint32_t offset) override {
    if (page_ == 0 || offset % page_ != 0 || !InRange(offset, page_)) return false;
    std::memset(&image_[offset], 0xFF, page_);
    return true;
  }
  bool Program(uint32_t offset, const void* src, uint32_t n) override {
    if (program_ == 0 || offset % program_ != 0 || n % program_ != 0 || !InRange(offset, n)) return false;
    for (uint32_t i = 0; i < n; ++i) {
      if (static_cast<uint8_t>(image_[offset + i]) != 0xFF) return false;
    }
    std::memcpy(&image_[offset], src, n);
    return true;
  }

 private:
  bool InRange(uint32_t offset, uint32_t n) const { return offset <= image_.size() && n <= image_.size() - offset; }
  std::string& image_;
  uint32_t page_, program_;
};

// The typed records the binding hands out (Counters, ArenaReport, PolicyParams) are
// classes with one attribute per field. They also read like a mapping (r["steps"],
// dict(r), ==), so they compare with the plain dicts of the Python reference trainer.
template <typename T>
void AddFields(py::class_<T>& cls, std::vector<std::string> fields) {
  cls.def("__copy__", [](const T& self) { return T(self); })
      .def("__deepcopy__", [](const T& self, py::dict) { return T(self); })
      .def("keys", [fields](const T&) { return fields; })
      .def("__getitem__", [fields](py::object self, const std::string& key) {
        if (std::find(fields.begin(), fields.end(), key) == fields.end()) throw py::key_error(key);
        return self.attr(key.c_str());
      })
      .def("__eq__", [fields](py::object self, py::object other) {
        if (!py::hasattr(other, "keys")) return false;
        py::dict mine, theirs;
        for (const std::string& f : fields) mine[f.c_str()] = self.attr(f.c_str());
        for (py::handle key : other.attr("keys")()) theirs[key] = other[key];
        return mine.equal(theirs);
      })
      .def("__repr__", [fields, name = std::string(py::str(cls.attr("__name__")))](py::object self) {
        std::string text = name + "(";
        for (size_t i = 0; i < fields.size(); ++i) {
          text += (i ? ", " : "") + fields[i] + "=" + std::string(py::repr(self.attr(fields[i].c_str())));
        }
        return text + ")";
      });
}

void BindRecords(py::module_& m) {
  py::class_<tflm_train::Counters> counters(m, "Counters", "Cumulative steps, samples and MACs of a trainer.");
  counters.def_readonly("steps", &tflm_train::Counters::steps)
      .def_readonly("updates", &tflm_train::Counters::updates)
      .def_readonly("samples", &tflm_train::Counters::samples)
      .def_readonly("trained", &tflm_train::Counters::trained)
      .def_readonly("skipped", &tflm_train::Counters::skipped)
      .def_readonly("forward_macs", &tflm_train::Counters::forward_macs)
      .def_readonly("backward_macs", &tflm_train::Counters::backward_macs)
      .def_readonly("selection_ops", &tflm_train::Counters::selection_ops)
      .def_readonly("epochs", &tflm_train::Counters::epochs);
  AddFields(counters, {"steps", "updates", "samples", "trained", "skipped", "forward_macs", "backward_macs",
                       "selection_ops", "epochs"});
  py::class_<tflm_train::ArenaReport> report(m, "ArenaReport", "Where the arena goes, in bytes.");
  report.def_readonly("required_bytes", &tflm_train::ArenaReport::required_bytes)
      .def_readonly("complete", &tflm_train::ArenaReport::complete)
      .def_readonly("activation_bytes", &tflm_train::ArenaReport::activation_bytes)
      .def_readonly("gradient_bytes", &tflm_train::ArenaReport::gradient_bytes)
      .def_readonly("optimizer_bytes", &tflm_train::ArenaReport::optimizer_bytes)
      .def_readonly("scratch_bytes", &tflm_train::ArenaReport::scratch_bytes)
      .def_readonly("bookkeeping_bytes", &tflm_train::ArenaReport::bookkeeping_bytes);
  AddFields(report, {"required_bytes", "complete", "activation_bytes", "gradient_bytes", "optimizer_bytes",
                     "scratch_bytes", "bookkeeping_bytes"});
  py::class_<tflm_train::PolicyParams> policy(m, "PolicyParams", "A sparsity policy's parameters (kind: the plan "
                                              "schema's PolicyKind).");
  policy.def(py::init<>())
      .def_property("kind", [](const tflm_train::PolicyParams& p) { return static_cast<int>(p.kind); },
                    [](tflm_train::PolicyParams& p, int kind) { p.kind = static_cast<tflm_train::PolicyKind>(kind); })
      .def_readwrite("ratio", &tflm_train::PolicyParams::ratio)
      .def_readwrite("s_min", &tflm_train::PolicyParams::s_min)
      .def_readwrite("s_max", &tflm_train::PolicyParams::s_max)
      .def_readwrite("zeta", &tflm_train::PolicyParams::zeta)
      .def_readwrite("ymax_decay", &tflm_train::PolicyParams::ymax_decay)
      .def_readwrite("d_min", &tflm_train::PolicyParams::d_min)
      .def_readwrite("d_max", &tflm_train::PolicyParams::d_max)
      .def_readwrite("beta", &tflm_train::PolicyParams::beta)
      .def_readwrite("tau", &tflm_train::PolicyParams::tau)
      .def_readwrite("dense_output", &tflm_train::PolicyParams::dense_output)
      .def_readwrite("budget", &tflm_train::PolicyParams::budget)
      .def_readwrite("budget_rate", &tflm_train::PolicyParams::budget_rate)
      .def_readwrite("budget_gain", &tflm_train::PolicyParams::budget_gain)
      .def_readwrite("last_layers", &tflm_train::PolicyParams::last_layers)
      .def_readwrite("bias_layers", &tflm_train::PolicyParams::bias_layers)
      .def_property(
          "weight_ratios",
          [](const tflm_train::PolicyParams& p) {
            // By position from the output; trailing zeros dropped.
            int n = tflm_train::kMaxTrainableLayers;
            while (n > 0 && p.weight_ratios[n - 1] == 0.0f) --n;
            return std::vector<float>(p.weight_ratios, p.weight_ratios + n);
          },
          [](tflm_train::PolicyParams& p, const std::vector<float>& ratios) {
            if (ratios.size() > static_cast<size_t>(tflm_train::kMaxTrainableLayers)) {
              throw py::value_error("weight_ratios has more entries than a trainer has layers");
            }
            std::fill(p.weight_ratios, p.weight_ratios + tflm_train::kMaxTrainableLayers, 0.0f);
            std::copy(ratios.begin(), ratios.end(), p.weight_ratios);
          })
      .def_readwrite("samples", &tflm_train::PolicyParams::samples)
      .def_readwrite("mac_budget", &tflm_train::PolicyParams::mac_budget)
      .def_readwrite("memory_budget", &tflm_train::PolicyParams::memory_budget);
  AddFields(policy, {"kind", "ratio", "s_min", "s_max", "zeta", "ymax_decay", "d_min", "d_max", "beta", "tau",
                     "dense_output", "budget", "budget_rate", "budget_gain", "last_layers", "bias_layers",
                     "weight_ratios", "samples", "mac_budget", "memory_budget"});
}

tflm_train::TrainerOptions MakeOptions(uint32_t batch_size, const py::object& policy,
                                       bool restore_state = true) {
  tflm_train::TrainerOptions options;
  options.batch_size = batch_size;
  options.restore_state = restore_state;
  if (!policy.is_none()) {
    options.override_policy = true;
    options.policy = policy.cast<tflm_train::PolicyParams>();
  }
  return options;
}

using FloatArray = py::array_t<float, py::array::c_style>;

// Measures the arena a model needs: a first Init without arena sizes the
// bookkeeping, a second one with that much measures the rest (ArenaReport).
tflm_train::ArenaReport Measure(uint8_t* model, size_t model_size, const tflm_train::TrainerOptions& options,
                                size_t* state_bytes = nullptr) {
  tflm_train::Trainer trainer;
  Status s = trainer.Init(model, model_size, nullptr, 0, options);
  if (s != Status::kArenaTooSmall) Raise(s, trainer.error_message());
  if (!trainer.arena_report().complete) {
    AlignedBytes scratch = AllocateAligned(trainer.arena_report().required_bytes, "arena");
    s = trainer.Init(model, model_size, scratch.get(), trainer.arena_report().required_bytes, options);
    if (s != Status::kArenaTooSmall && s != Status::kOk) Raise(s, trainer.error_message());
  }
  if (state_bytes != nullptr) *state_bytes = trainer.StateBytes();
  return trainer.arena_report();
}

class PyTrainer {
 public:
  PyTrainer(const py::bytes& model, size_t arena_size, uint32_t batch_size, const py::object& policy,
            bool restore_state) {
    std::string bytes = model;
    model_size_ = bytes.size();
    model_ = AllocateAligned(model_size_, "model");
    std::memcpy(model_.get(), bytes.data(), model_size_);
    const tflm_train::TrainerOptions options = MakeOptions(batch_size, policy, restore_state);
    if (arena_size == 0) arena_size = Measure(model_.get(), model_size_, options).required_bytes;
    arena_size_ = arena_size;
    arena_ = AllocateAligned(arena_size_, "arena");
    Status s = trainer_.Init(model_.get(), model_size_, arena_.get(), arena_size_, options);
    if (s == Status::kArenaTooSmall && !trainer_.arena_report().complete) {
      // Too small even for the bookkeeping: measure the whole need, to say it exactly.
      const size_t needed = Measure(model_.get(), model_size_, options).required_bytes;
      Raise(s, "arena of " + std::to_string(arena_size_) + " bytes is too small: this model needs " +
                   std::to_string(needed) + " bytes", needed);
    }
    if (s != Status::kOk) Raise(s, trainer_.error_message(), trainer_.arena_report().required_bytes);
  }

  py::array_t<float> Predict(const FloatArray& x) {
    const size_t n = CheckBatch(x, trainer_.input_size(), "x");
    py::array_t<float> out({n, trainer_.output_size()});
    Status s = Status::kOk;
    {
      py::gil_scoped_release release;
      for (size_t i = 0; i < n && s == Status::kOk; ++i) {
        s = trainer_.Predict(x.data() + i * trainer_.input_size(), trainer_.input_size(),
                             out.mutable_data() + i * trainer_.output_size(), trainer_.output_size());
      }
    }
    if (s != Status::kOk) Raise(s, trainer_.error_message());
    return out;
  }

  py::dict TrainStep(const FloatArray& x, const FloatArray& y) {
    const size_t n = CheckPair(x, y);
    const int layers = trainer_.num_trainable_layers();
    std::vector<tflm_train::SampleResult> samples(n);
    tflm_train::StepResult step;
    Status s;
    {
      py::gil_scoped_release release;
      s = trainer_.TrainStep(x.data(), trainer_.input_size(), y.data(), trainer_.target_size(),
                             static_cast<uint32_t>(n), &step, samples.data());
    }
    if (s != Status::kOk) Raise(s, trainer_.error_message());
    py::array_t<int32_t> k({n, static_cast<size_t>(layers)});
    py::array_t<float> loss(n), correct(n);
    py::array_t<bool> skipped(n);
    py::array_t<uint64_t> fwd(n), bwd(n), sel(n);
    for (size_t i = 0; i < n; ++i) {
      for (int l = 0; l < layers; ++l) k.mutable_at(i, l) = samples[i].k[l];
      loss.mutable_at(i) = samples[i].loss;
      correct.mutable_at(i) = samples[i].correct;
      skipped.mutable_at(i) = samples[i].skipped;
      fwd.mutable_at(i) = samples[i].forward_macs;
      bwd.mutable_at(i) = samples[i].backward_macs;
      sel.mutable_at(i) = samples[i].selection_ops;
    }
    py::dict d;
    d["loss"] = step.loss;
    d["correct"] = step.correct;
    d["samples"] = step.samples;
    d["trained"] = step.trained;
    d["skipped"] = step.skipped;
    d["updated"] = step.updated;
    d["learning_rate"] = step.learning_rate;
    d["forward_macs"] = step.forward_macs;
    d["backward_macs"] = step.backward_macs;
    d["selection_ops"] = step.selection_ops;
    d["sample_loss"] = loss;
    d["sample_correct"] = correct;
    d["sample_skipped"] = skipped;
    d["sample_k"] = k;
    d["sample_forward_macs"] = fwd;
    d["sample_backward_macs"] = bwd;
    d["sample_selection_ops"] = sel;
    return d;
  }

  // Many consecutive batches in one call (fit's fast path): per batch, its mean
  // loss, correct count, trained/skipped samples and MACs. Stops at the first
  // failing batch and raises, after the batches before it have trained.
  py::dict TrainSteps(const FloatArray& x, const FloatArray& y, uint32_t batch_size) {
    const size_t n = CheckPair(x, y);
    if (batch_size == 0 || batch_size > trainer_.batch_size()) {
      throw py::value_error("batch_size must be 1 to the trainer's batch size");
    }
    const size_t batches = (n + batch_size - 1) / batch_size;
    py::array_t<float> loss(batches), correct(batches);
    py::array_t<uint32_t> trained(batches), skipped(batches);
    py::array_t<uint64_t> fwd(batches), bwd(batches);
    Status s = Status::kOk;
    {
      py::gil_scoped_release release;
      for (size_t b = 0; b < batches && s == Status::kOk; ++b) {
        const size_t first = b * batch_size;
        const uint32_t count = static_cast<uint32_t>(std::min<size_t>(batch_size, n - first));
        tflm_train::StepResult step;
        s = trainer_.TrainStep(x.data() + first * trainer_.input_size(), trainer_.input_size(),
                               y.data() + first * trainer_.target_size(), trainer_.target_size(), count,
                               &step, nullptr);
        loss.mutable_data()[b] = step.loss;
        correct.mutable_data()[b] = step.correct;
        trained.mutable_data()[b] = step.trained;
        skipped.mutable_data()[b] = step.skipped;
        fwd.mutable_data()[b] = step.forward_macs;
        bwd.mutable_data()[b] = step.backward_macs;
      }
    }
    if (s != Status::kOk) Raise(s, trainer_.error_message());
    py::dict d;
    d["loss"] = loss;
    d["correct"] = correct;
    d["trained"] = trained;
    d["skipped"] = skipped;
    d["forward_macs"] = fwd;
    d["backward_macs"] = bwd;
    return d;
  }

  // Checks every sample and label as TrainStep would, before any is used; the
  // error names the first bad sample. Labels may be None (inputs only).
  void Check(const FloatArray& x, const py::object& y) {
    const bool labels = !y.is_none();
    const size_t n = labels ? CheckPair(x, y.cast<FloatArray>()) : CheckBatch(x, trainer_.input_size(), "x");
    FloatArray targets = labels ? y.cast<FloatArray>() : FloatArray();
    for (size_t i = 0; i < n; ++i) {
      const Status s = trainer_.CheckSample(
          x.data() + i * trainer_.input_size(), trainer_.input_size(),
          labels ? targets.data() + i * trainer_.target_size() : nullptr, trainer_.target_size());
      if (s != Status::kOk) Raise(s, "sample " + std::to_string(i) + ": " + trainer_.error_message());
    }
  }

  // The trainable layers' weights and biases, flat, in forward order.
  std::vector<py::array_t<float>> GetWeights() {
    std::vector<py::array_t<float>> out;
    for (int i = 0; i < trainer_.num_trainable_layers(); ++i) {
      size_t n = 0;
      const float* w = trainer_.layer_weights(i, &n);
      out.emplace_back(n, w);
      const float* b = trainer_.layer_bias(i, &n);
      if (b != nullptr) out.emplace_back(n, b);
    }
    return out;
  }

  void SetWeights(const std::vector<FloatArray>& values) {
    std::vector<std::pair<float*, size_t>> targets;
    for (int i = 0; i < trainer_.num_trainable_layers(); ++i) {
      size_t n = 0;
      float* w = trainer_.layer_weights(i, &n);
      targets.emplace_back(w, n);
      float* b = trainer_.layer_bias(i, &n);
      if (b != nullptr) targets.emplace_back(b, n);
    }
    if (values.size() != targets.size()) {
      Raise(Status::kInvalidArgument, "set_weights takes " + std::to_string(targets.size()) +
                                          " arrays (weights and biases of the trainable layers), got " +
                                          std::to_string(values.size()));
    }
    for (size_t t = 0; t < targets.size(); ++t) {  // check all before writing any
      if (static_cast<size_t>(values[t].size()) != targets[t].second) {
        Raise(Status::kInvalidArgument, "weight array " + std::to_string(t) + " has " +
                                            std::to_string(values[t].size()) + " values; the model's has " +
                                            std::to_string(targets[t].second));
      }
      for (py::ssize_t j = 0; j < values[t].size(); ++j) {
        if (!std::isfinite(values[t].data()[j])) {
          Raise(Status::kBadInput, "weight array " + std::to_string(t) + " holds NaN or Inf");
        }
      }
    }
    for (size_t t = 0; t < targets.size(); ++t) {
      std::memcpy(targets[t].first, values[t].data(), targets[t].second * sizeof(float));
    }
  }

  // Per-sample loss and correctness without training.
  py::tuple Evaluate(const FloatArray& x, const FloatArray& y) {
    const size_t n = CheckPair(x, y);
    py::array_t<float> loss(n), correct(n);
    float* l = loss.mutable_data();
    float* c = correct.mutable_data();
    Status s = Status::kOk;
    {
      py::gil_scoped_release release;
      for (size_t i = 0; i < n && s == Status::kOk; ++i) {
        s = trainer_.EvaluateSample(x.data() + i * trainer_.input_size(), trainer_.input_size(),
                                    y.data() + i * trainer_.target_size(), trainer_.target_size(),
                                    &l[i], &c[i]);
      }
    }
    if (s != Status::kOk) Raise(s, trainer_.error_message());
    return py::make_tuple(loss, correct);
  }

  // The model with its current weights and, where it has room, its training state.
  py::bytes ModelBytes() {
    if (trainer_.HasStateInModel() && trainer_.StoreStateInModel() != Status::kOk) {
      Raise(Status::kInvalidArgument, trainer_.error_message());
    }
    return py::bytes(reinterpret_cast<const char*>(model_.get()), model_size_);
  }

  py::bytes SaveState() {
    std::string out(trainer_.StateBytes(), '\0');
    Status s = trainer_.SaveState(reinterpret_cast<uint8_t*>(&out[0]), out.size());
    if (s != Status::kOk) Raise(s, trainer_.error_message());
    return py::bytes(out);
  }

  void LoadState(const py::bytes& state) {
    std::string in = state;
    Status s = trainer_.LoadState(reinterpret_cast<const uint8_t*>(in.data()), in.size());
    if (s != Status::kOk) Raise(s, trainer_.error_message());
  }

  // Checkpoints into a flash image (docs/checkpoints.md): `image` is the region's
  // bytes, or None for a fresh erased region of the size this model needs.
  py::bytes SaveCheckpoint(const py::object& image, uint32_t page_size, uint32_t program_size) {
    std::string region;
    if (image.is_none()) {
      const size_t size = trainer_.CheckpointStorageBytes(page_size);
      if (size == 0 || size > 0xFFFFFFFFu) {
        Raise(Status::kInvalidArgument, "page_size must be a power of two (got " + std::to_string(page_size) +
                                            ") and the region at most 4 GiB");
      }
      region.assign(size, '\xFF');
    } else {
      region = py::cast<std::string>(image);
    }
    ImageStorage storage = Storage(&region, page_size, program_size);
    const Status s = trainer_.SaveCheckpoint(storage);
    if (s != Status::kOk) Raise(s, trainer_.error_message());
    return py::bytes(region);
  }

  bool LoadCheckpoint(const py::bytes& image, uint32_t page_size, uint32_t program_size) {
    std::string region = image;
    ImageStorage storage = Storage(&region, page_size, program_size);
    bool loaded = false;
    const Status s = trainer_.LoadCheckpoint(storage, &loaded);
    if (s != Status::kOk) Raise(s, trainer_.error_message());
    return loaded;
  }

  std::vector<size_t> LayerOutputs() const {
    std::vector<size_t> out;
    for (int i = 0; i < trainer_.num_trainable_layers(); ++i) out.push_back(trainer_.layer_outputs(i));
    return out;
  }

  std::vector<float> Ymax() const {
    std::vector<float> out;
    for (int i = 0; i < trainer_.num_trainable_layers(); ++i) out.push_back(trainer_.layer_ymax(i));
    return out;
  }

  tflm_train::Trainer& trainer() { return trainer_; }
  size_t arena_size() const { return arena_size_; }

 private:
  static ImageStorage Storage(std::string* region, uint32_t page_size, uint32_t program_size) {
    if (region->size() > 0xFFFFFFFFu) {
      Raise(Status::kInvalidArgument, "a checkpoint region of " + std::to_string(region->size()) +
                                          " bytes is larger than 4 GiB");
    }
    return ImageStorage(region, page_size, program_size);
  }

  // Checks a C-contiguous float32 array of shape (n, width) and returns n.
  static size_t CheckBatch(const FloatArray& a, size_t width, const char* name) {
    if (a.ndim() != 2 || static_cast<size_t>(a.shape(1)) != width || a.shape(0) == 0) {
      throw py::value_error(std::string(name) + " must have shape (samples, " +
                            std::to_string(width) + ") with at least one sample");
    }
    return static_cast<size_t>(a.shape(0));
  }

  // Checks inputs (samples, input_size) and labels (samples, target_size); returns samples.
  size_t CheckPair(const FloatArray& x, const FloatArray& y) const {
    const size_t n = CheckBatch(x, trainer_.input_size(), "x");
    if (CheckBatch(y, trainer_.target_size(), "y") != n) {
      throw py::value_error("x and y hold different numbers of samples");
    }
    return n;
  }

  AlignedBytes model_;
  size_t model_size_ = 0;
  AlignedBytes arena_;
  size_t arena_size_ = 0;
  tflm_train::Trainer trainer_;
};

// (ArenaReport, bytes of the model's training state).
py::tuple MeasureArena(const py::bytes& model, uint32_t batch_size, const py::object& policy) {
  std::string bytes = model;
  AlignedBytes copy = AllocateAligned(bytes.size(), "model");
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  size_t state_bytes = 0;
  const tflm_train::ArenaReport report = Measure(copy.get(), bytes.size(), MakeOptions(batch_size, policy),
                                                 &state_bytes);
  return py::make_tuple(report, state_bytes);
}

// The TFLite builtin operators the trainer runs (its op registry).
std::vector<std::string> SupportedOperators() {
  std::vector<std::string> names;
  for (int32_t code = 0; code < 256; ++code) {
    if (const tflm_train::OpUnit* unit = tflm_train::FindOpUnit(code)) names.emplace_back(unit->name);
  }
  return names;
}

py::tuple Shape(const tflm_train::ModelView& view, int tensor) {
  py::list dims;
  const tflm_train::fb::Vector shape = view.tensor(tensor).shape();
  for (uint32_t i = 0; i < shape.size(); ++i) dims.append(shape.Get<int32_t>(i));
  return py::tuple(dims);
}

std::string TensorName(const tflm_train::ModelView& view, int tensor) {
  const char* name = view.tensor(tensor).name();
  return name != nullptr ? name : "";
}

// What `tflm-train inspect` and tflm_train.read_model_info show: the plan, and
// every operator as the trainer runs it, read by the trainer itself (the file is
// verified and validated first; errors raise as for a trainer).
py::dict Describe(const py::bytes& model) {
  std::string bytes = model;
  AlignedBytes copy = AllocateAligned(bytes.size(), "model");
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  tflm_train::TrainerOptions options;
  options.restore_state = false;
  const size_t arena_size = Measure(copy.get(), bytes.size(), options).required_bytes;
  AlignedBytes arena = AllocateAligned(arena_size, "arena");
  tflm_train::Trainer trainer;
  Status s = trainer.Init(copy.get(), bytes.size(), arena.get(), arena_size, options);
  if (s != Status::kOk) Raise(s, trainer.error_message());
  tflm_train::ModelView view(copy.get(), bytes.size());
  tflm_train::Message why(nullptr, 0);
  if (tflm_train::ReadModel(&view, &why) != Status::kOk) Raise(Status::kInvalidModel, "model changed");

  py::dict d;
  const tflm_train::plan::TrainingPlan& plan = view.plan;
  d["version"] = plan.version();
  d["loss"] = static_cast<int>(plan.loss());
  d["batch_size"] = plan.batch_size();
  d["policy"] = trainer.policy();
  const tflm_train::SgdSettings& sgd = trainer.optimizer();
  py::dict optimizer;
  optimizer["learning_rate"] = sgd.learning_rate;
  optimizer["momentum"] = sgd.momentum;
  optimizer["weight_decay"] = sgd.weight_decay;
  optimizer["schedule"] = sgd.schedule;
  optimizer["decay_steps"] = sgd.decay_steps;
  optimizer["warmup_steps"] = sgd.warmup_steps;
  optimizer["alpha"] = sgd.alpha;
  optimizer["warmup_initial"] = sgd.warmup_initial;
  d["optimizer"] = optimizer;
  py::dict memory;
  const tflm_train::plan::MemoryPlan m = plan.memory();
  if (m.present()) {
    memory["arena_bytes"] = m.arena_bytes();
    memory["activation_bytes"] = m.activation_bytes();
    memory["gradient_bytes"] = m.gradient_bytes();
    memory["optimizer_bytes"] = m.optimizer_bytes();
    memory["scratch_bytes"] = m.scratch_bytes();
  }
  d["memory"] = memory;
  d["input_shape"] = Shape(view, view.subgraph.inputs().Get<int32_t>(0));
  d["output_shape"] = Shape(view, view.subgraph.outputs().Get<int32_t>(0));
  d["state_bytes"] = trainer.StateBytes();
  py::list ops;
  for (int i = 0; i < trainer.num_ops(); ++i) {
    tflm_train::OpDescription op;
    trainer.DescribeOp(i, &op);
    py::dict o;
    o["kind"] = op.kind;
    o["layer"] = op.layer;
    o["int8"] = op.int8;
    o["name"] = op.layer >= 0 ? std::string(plan.layers(static_cast<uint32_t>(op.layer)).name() != nullptr
                                                ? plan.layers(static_cast<uint32_t>(op.layer)).name()
                                                : "")
                              : TensorName(view, op.output);
    o["input_shape"] = Shape(view, op.input);
    o["output_shape"] = Shape(view, op.output);
    o["activation"] = op.activation;
    const tflm_train::fb::Vector inputs = view.op(i).inputs();
    const bool weight_op = op.weights != nullptr;
    o["weight_shape"] = weight_op ? py::object(Shape(view, inputs.Get<int32_t>(1))) : py::object(py::none());
    o["weights_name"] = weight_op ? TensorName(view, inputs.Get<int32_t>(1)) : std::string();
    o["weights"] = weight_op ? py::object(py::array_t<float>(op.n_weights, op.weights)) : py::object(py::none());
    o["bias"] = op.bias != nullptr ? py::object(py::array_t<float>(op.n_bias, op.bias)) : py::object(py::none());
    o["window"] = py::make_tuple(op.filter_h, op.filter_w);
    o["stride"] = py::make_tuple(op.stride_h, op.stride_w);
    o["dilation"] = py::make_tuple(op.dilation_h, op.dilation_w);
    o["pad_top_left"] = py::make_tuple(op.pad_top, op.pad_left);
    o["depth_multiplier"] = op.depth_multiplier;
    o["padding"] = op.padding;
    const size_t rank = py::len(o["input_shape"]);
    py::list before, after;
    for (size_t k = 4 - std::min<size_t>(rank, 4); k < 4; ++k) {
      before.append(op.pad_before[k]);
      after.append(op.pad_after[k]);
    }
    o["pad_before_after"] = std::string(op.kind) == "PAD" ? py::object(py::make_tuple(before, after)) : py::object(py::none());
    ops.append(o);
  }
  d["ops"] = ops;
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Host binding over the micro_kernels C++ trainer.";
  RegisterErrors(m);
  BindRecords(m);
  m.def("supported_operators", &SupportedOperators, "The TFLite builtin operators the trainer runs.");
  m.def("describe", &Describe, py::arg("model"), "The plan and every operator as the trainer runs it.");
  m.def("measure_arena", &MeasureArena, py::arg("model"), py::arg("batch_size") = 0,
        py::arg("policy") = py::none(), "Arena bytes the trainer needs for this model.");
  py::class_<PyTrainer>(m, "Trainer")
      .def(py::init<const py::bytes&, size_t, uint32_t, const py::object&, bool>(), py::arg("model"),
           py::arg("arena_size") = 0, py::arg("batch_size") = 0, py::arg("policy") = py::none(),
           py::arg("restore_state") = true)
      .def("check", &PyTrainer::Check, py::arg("x"), py::arg("y") = py::none())
      .def("get_weights", &PyTrainer::GetWeights)
      .def("set_weights", &PyTrainer::SetWeights)
      .def("count_epoch", [](PyTrainer& t) { t.trainer().CountEpoch(); })
      .def_property_readonly("has_state_in_model", [](PyTrainer& t) { return t.trainer().HasStateInModel(); })
      .def("predict", &PyTrainer::Predict)
      .def("train_step", &PyTrainer::TrainStep)
      .def("train_steps", &PyTrainer::TrainSteps, py::arg("x"), py::arg("y"), py::arg("batch_size"))
      .def("evaluate", &PyTrainer::Evaluate)
      .def("model_bytes", &PyTrainer::ModelBytes)
      .def("save_state", &PyTrainer::SaveState)
      .def("load_state", &PyTrainer::LoadState)
      .def("checkpoint_storage_bytes", [](PyTrainer& t, uint32_t page_size) {
        return t.trainer().CheckpointStorageBytes(page_size);
      }, py::arg("page_size"))
      .def("save_checkpoint", &PyTrainer::SaveCheckpoint, py::arg("image"), py::arg("page_size"),
           py::arg("program_size"))
      .def("load_checkpoint", &PyTrainer::LoadCheckpoint, py::arg("image"), py::arg("page_size"),
           py::arg("program_size"))
      .def("reset_policy_state", [](PyTrainer& t) { t.trainer().ResetPolicyState(); })
      .def_property_readonly("counters", [](PyTrainer& t) { return t.trainer().counters(); })
      .def_property_readonly("arena_report", [](PyTrainer& t) { return t.trainer().arena_report(); })
      .def_property_readonly("arena_size", &PyTrainer::arena_size)
      .def_property_readonly("policy", [](PyTrainer& t) { return t.trainer().policy(); })
      .def_property_readonly("gate_tau", [](PyTrainer& t) { return t.trainer().gate_tau(); })
      .def_property_readonly("budget_spent", [](PyTrainer& t) { return t.trainer().budget_spent(); })
      .def_property_readonly("input_size", [](PyTrainer& t) { return t.trainer().input_size(); })
      .def_property_readonly("output_size", [](PyTrainer& t) { return t.trainer().output_size(); })
      .def_property_readonly("target_size", [](PyTrainer& t) { return t.trainer().target_size(); })
      .def_property_readonly("batch_size", [](PyTrainer& t) { return t.trainer().batch_size(); })
      .def_property_readonly("learning_rate", [](PyTrainer& t) { return t.trainer().LearningRate(); })
      .def_property_readonly("layer_outputs", &PyTrainer::LayerOutputs)
      .def_property_readonly("ymax", &PyTrainer::Ymax);
}
