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

#include "tflm_train/trainer.h"

namespace py = pybind11;
using tflm_train::Status;

namespace {

struct AlignedFree {
  void operator()(uint8_t* p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<uint8_t, AlignedFree>;

[[noreturn]] void Raise(Status status, const std::string& message, size_t required = 0) {
  py::module_::import("tflm_train.errors")
      .attr("raise_for_status")(tflm_train::StatusName(status), message, required);
  throw py::error_already_set();  // raise_for_status always raises
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

tflm_train::PolicyParams PolicyFromDict(const py::dict& d) {
  tflm_train::PolicyParams p;
  p.kind = static_cast<tflm_train::PolicyKind>(d["kind"].cast<int>());
  p.ratio = d["ratio"].cast<float>();
  p.s_min = d["s_min"].cast<float>();
  p.s_max = d["s_max"].cast<float>();
  p.zeta = d["zeta"].cast<float>();
  p.ymax_decay = d["ymax_decay"].cast<float>();
  p.d_min = d["d_min"].cast<float>();
  p.d_max = d["d_max"].cast<float>();
  p.beta = d["beta"].cast<float>();
  p.tau = d["tau"].cast<float>();
  return p;
}

py::dict PolicyToDict(const tflm_train::PolicyParams& p) {
  py::dict d;
  d["kind"] = static_cast<int>(p.kind);
  d["ratio"] = p.ratio;
  d["s_min"] = p.s_min;
  d["s_max"] = p.s_max;
  d["zeta"] = p.zeta;
  d["ymax_decay"] = p.ymax_decay;
  d["d_min"] = p.d_min;
  d["d_max"] = p.d_max;
  d["beta"] = p.beta;
  d["tau"] = p.tau;
  return d;
}

py::dict ReportToDict(const tflm_train::ArenaReport& r) {
  py::dict d;
  d["required_bytes"] = r.required_bytes;
  d["activation_bytes"] = r.activation_bytes;
  d["gradient_bytes"] = r.gradient_bytes;
  d["optimizer_bytes"] = r.optimizer_bytes;
  d["scratch_bytes"] = r.scratch_bytes;
  d["bookkeeping_bytes"] = r.bookkeeping_bytes;
  return d;
}

tflm_train::TrainerOptions MakeOptions(uint32_t batch_size, const py::object& policy,
                                       bool restore_state = true) {
  tflm_train::TrainerOptions options;
  options.batch_size = batch_size;
  options.restore_state = restore_state;
  if (!policy.is_none()) {
    options.override_policy = true;
    options.policy = PolicyFromDict(policy.cast<py::dict>());
  }
  return options;
}

using FloatArray = py::array_t<float, py::array::c_style>;

class PyTrainer {
 public:
  PyTrainer(const py::bytes& model, size_t arena_size, uint32_t batch_size, const py::object& policy,
            bool restore_state) {
    std::string bytes = model;
    model_size_ = bytes.size();
    model_ = AllocateAligned(model_size_, "model");
    std::memcpy(model_.get(), bytes.data(), model_size_);
    const tflm_train::TrainerOptions options = MakeOptions(batch_size, policy, restore_state);
    if (arena_size == 0) {  // measure, then allocate exactly what is needed
      Status s = trainer_.Init(model_.get(), model_size_, nullptr, 0, options);
      if (s != Status::kArenaTooSmall) Raise(s, trainer_.error_message());
      arena_size = trainer_.arena_report().required_bytes;
    }
    arena_size_ = arena_size;
    arena_ = AllocateAligned(arena_size_, "arena");
    Status s = trainer_.Init(model_.get(), model_size_, arena_.get(), arena_size_, options);
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

  py::dict Counters() const {
    const tflm_train::Counters& c = trainer_.counters();
    py::dict d;
    d["steps"] = c.steps;
    d["updates"] = c.updates;
    d["samples"] = c.samples;
    d["trained"] = c.trained;
    d["skipped"] = c.skipped;
    d["forward_macs"] = c.forward_macs;
    d["backward_macs"] = c.backward_macs;
    d["selection_ops"] = c.selection_ops;
    d["epochs"] = c.epochs;
    return d;
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

// The arena report, plus `state_bytes`: the size of the model's training state.
py::dict MeasureArena(const py::bytes& model, uint32_t batch_size, const py::object& policy) {
  std::string bytes = model;
  AlignedBytes copy = AllocateAligned(bytes.size(), "model");
  std::memcpy(copy.get(), bytes.data(), bytes.size());
  tflm_train::Trainer trainer;
  Status s = trainer.Init(copy.get(), bytes.size(), nullptr, 0, MakeOptions(batch_size, policy));
  if (s != Status::kArenaTooSmall) Raise(s, trainer.error_message());
  py::dict d = ReportToDict(trainer.arena_report());
  d["state_bytes"] = trainer.StateBytes();
  return d;
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "Host binding over the micro_kernels C++ trainer.";
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
      .def("reset_policy_state", [](PyTrainer& t) { t.trainer().ResetPolicyState(); })
      .def_property_readonly("counters", &PyTrainer::Counters)
      .def_property_readonly("arena_report", [](PyTrainer& t) { return ReportToDict(t.trainer().arena_report()); })
      .def_property_readonly("arena_size", &PyTrainer::arena_size)
      .def_property_readonly("policy", [](PyTrainer& t) { return PolicyToDict(t.trainer().policy()); })
      .def_property_readonly("input_size", [](PyTrainer& t) { return t.trainer().input_size(); })
      .def_property_readonly("output_size", [](PyTrainer& t) { return t.trainer().output_size(); })
      .def_property_readonly("target_size", [](PyTrainer& t) { return t.trainer().target_size(); })
      .def_property_readonly("batch_size", [](PyTrainer& t) { return t.trainer().batch_size(); })
      .def_property_readonly("learning_rate", [](PyTrainer& t) { return t.trainer().LearningRate(); })
      .def_property_readonly("layer_outputs", &PyTrainer::LayerOutputs)
      .def_property_readonly("ymax", &PyTrainer::Ymax);
}
