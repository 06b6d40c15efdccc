// The training state (training_state.cc): SaveState/LoadState round trips that
// resume bit for bit, corrupt or foreign states refused without changing
// anything, and the copy the model carries ("tflm_train_state"): after
// StoreStateInModel a new Init over the same bytes resumes; restore_state =
// false starts fresh.
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <vector>

#include "model_reader.h"
#include "trainer_fixture.h"

using namespace test;  // NOLINT: the fixture's names

namespace {

constexpr size_t kHeaderBytes = 5 * sizeof(uint32_t);  // magic, version, layers, momentum, parameters

struct Shape {
  int inputs, classes;
};
Shape ShapeOf(const Trainer& t) { return {static_cast<int>(t.input_size()), static_cast<int>(t.output_size())}; }

void Train(Trainer* t, Lcg* rng, int steps) {
  const Shape s = ShapeOf(*t);
  const uint32_t batch = t->batch_size();
  std::vector<float> xs, ys;
  tflm_train::StepResult r;
  for (int i = 0; i < steps; ++i) {
    MakeSamples(*rng, static_cast<int>(batch), s.inputs, s.classes, &xs, &ys);
    CHECK_STATUS(t->TrainStep(xs.data(), s.inputs, ys.data(), 1, batch, &r, nullptr), Status::kOk);
  }
}

std::vector<uint8_t> Saved(Trainer* t) {
  std::vector<uint8_t> state(t->StateBytes());
  CHECK_STATUS(t->SaveState(state.data(), state.size()), Status::kOk);
  return state;
}

void PutWord(std::vector<uint8_t>* state, size_t at, uint32_t v) { memcpy(state->data() + at, &v, 4); }
void PutFloat(std::vector<uint8_t>* state, size_t at, float v) { memcpy(state->data() + at, &v, 4); }

// Saves A's state after some steps, loads it into B over a copy of A's bytes;
// then both must train identically.
void StateRoundTrip(const Model& src, const TrainerOptions& options, const char* label) {
  Session a(src, options);
  CHECK_STATUS(a.init, Status::kOk);
  Lcg rng(55);
  Train(&a.trainer, &rng, 7);
  const size_t n = a.trainer.StateBytes();
  CHECK(n > kHeaderBytes);
  std::vector<uint8_t> state(n + 1);
  CHECK_STATUS(a.trainer.SaveState(state.data(), n - 1), Status::kInvalidArgument);
  CHECK_STATUS(a.trainer.SaveState(state.data(), n + 1), Status::kInvalidArgument);
  CHECK_STATUS(a.trainer.SaveState(nullptr, n), Status::kInvalidArgument);
  state = Saved(&a.trainer);

  Session b(a.model.ToModel(), options);
  Session c(a.model.ToModel(), options);  // without the state
  CHECK_STATUS(b.init, Status::kOk);
  CHECK(b.trainer.StateBytes() == n);
  CHECK_STATUS(b.trainer.LoadState(state.data(), n - 1), Status::kInvalidArgument);
  CHECK_STATUS(b.trainer.LoadState(nullptr, n), Status::kInvalidArgument);
  CHECK_STATUS(b.trainer.LoadState(state.data(), n), Status::kOk);
  const tflm_train::Counters& ca = a.trainer.counters();
  const tflm_train::Counters& cb = b.trainer.counters();
  CHECK(ca.steps == cb.steps && ca.samples == cb.samples && ca.trained == cb.trained &&
        ca.forward_macs == cb.forward_macs && ca.selection_ops == cb.selection_ops);
  CHECK(a.trainer.LearningRate() == b.trainer.LearningRate());
  for (int l = 0; l < a.trainer.num_trainable_layers(); ++l) CHECK(a.trainer.layer_ymax(l) == b.trainer.layer_ymax(l));
  CHECK(Saved(&b.trainer) == state);
  CHECK(a.model.Same(b.model));
  Lcg ra(56), rb(56), rc(56);
  Train(&a.trainer, &ra, 5);
  Train(&b.trainer, &rb, 5);
  Train(&c.trainer, &rc, 5);
  CHECK_MSG(a.model.Same(b.model), "%s: model bytes differ after loading the state", label);
  printf("    %s: %zu state bytes; without the state the weights %s\n", label, n,
         a.model.Same(c.model) ? "happen to match" : "differ (state matters)");
}

// The offset of `text` in the model bytes (the first one), or -1.
long Find(const Bytes& m, const char* text) {
  const size_t n = strlen(text);
  for (size_t i = 0; i + n <= m.size(); ++i) {
    if (memcmp(m.data() + i, text, n) == 0) return static_cast<long>(i);
  }
  return -1;
}

}  // namespace

TEST(RoundTripResumesExactly) {
  StateRoundTrip(PlainModel(), TrainerOptions(), "Full");
  TrainerOptions tp = WithPolicy(PolicyKind::kTinyProp);
  tp.policy.ymax_decay = 0.95f;
  StateRoundTrip(PlainModel(), tp, "TinyProp");
  TrainerOptions direct;
  direct.batch_size = 1;
  StateRoundTrip(MomentumModel(), direct, "momentum batch 1");
  StateRoundTrip(MomentumModel(), TrainerOptions(), "momentum batch 4");
  StateRoundTrip(CnnModel(), WithPolicy(PolicyKind::kTinyPropV2), "cnn TinyPropV2");
}

TEST(StateLayout) {
  // Header words, Counters, one Ymax per layer, then the velocities with momentum.
  Session plain(PlainModel()), momentum(MomentumModel()), cnn(CnnModel());
  CHECK(plain.trainer.StateBytes() == kHeaderBytes + sizeof(tflm_train::Counters) + 2 * sizeof(float));
  const size_t velocities = (3 * 4 + 3 + 2 * 3 + 2) * sizeof(float);
  CHECK(momentum.trainer.StateBytes() == kHeaderBytes + sizeof(tflm_train::Counters) + 2 * sizeof(float) + velocities);
  CHECK(cnn.trainer.StateBytes() == kHeaderBytes + sizeof(tflm_train::Counters) + 3 * sizeof(float));
  std::vector<uint8_t> state = Saved(&momentum.trainer);
  uint32_t header[5];
  memcpy(header, state.data(), sizeof(header));
  CHECK(header[0] == 0x54535454u && header[1] == 2 && header[2] == 2 && header[3] == 1 &&
        header[4] == 3 * 4 + 3 + 2 * 3 + 2);
}

TEST(CorruptStatesRefusedUnchanged) {
  Session a(MomentumModel());
  CHECK_STATUS(a.init, Status::kOk);
  Lcg rng(9);
  Train(&a.trainer, &rng, 3);
  const std::vector<uint8_t> good = Saved(&a.trainer);
  Session b(MomentumModel());
  Train(&b.trainer, &rng, 2);
  const std::vector<uint8_t> before = Saved(&b.trainer);
  const size_t ymax_at = kHeaderBytes + sizeof(tflm_train::Counters);
  const size_t velocity_at = ymax_at + 2 * sizeof(float);
  struct Edit {
    const char* what;
    size_t at;
    uint32_t word;
    bool is_float;
    float value;
  };
  const Edit edits[] = {
      {"magic", 0, 0x12345678u, false, 0}, {"format 1 magic (TTS1)", 0, 0x31535454u, false, 0},
      {"version 1", 4, 1, false, 0},       {"version 3", 4, 3, false, 0},
      {"layer count", 8, 3, false, 0},     {"momentum flag", 12, 0, false, 0},
      {"parameter count", 16, 24, false, 0}, {"negative Ymax", ymax_at, 0, true, -1.0f},
      {"NaN Ymax", ymax_at + 4, 0, true, NAN}, {"infinite Ymax", ymax_at, 0, true, INFINITY},
      {"NaN velocity", velocity_at, 0, true, NAN}, {"infinite velocity", good.size() - 4, 0, true, -INFINITY},
  };
  for (const Edit& e : edits) {
    std::vector<uint8_t> bad = good;
    if (e.is_float) {
      PutFloat(&bad, e.at, e.value);
    } else {
      PutWord(&bad, e.at, e.word);
    }
    CHECK_MSG(b.trainer.LoadState(bad.data(), bad.size()) == Status::kInvalidArgument, "%s accepted", e.what);
    CHECK_MSG(strlen(b.trainer.error_message()) > 0, "%s: no message", e.what);
    CHECK_MSG(Saved(&b.trainer) == before, "%s: a refused state changed the trainer", e.what);
  }
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  CHECK_STATUS(b.trainer.LoadState(longer.data(), longer.size()), Status::kInvalidArgument);
  CHECK_STATUS(b.trainer.LoadState(good.data(), kHeaderBytes - 1), Status::kInvalidArgument);
  CHECK(Saved(&b.trainer) == before);
  CHECK_STATUS(b.trainer.LoadState(good.data(), good.size()), Status::kOk);
  CHECK(Saved(&b.trainer) == good);
  // A state without momentum does not load into a trainer with momentum, and back.
  Session plain(PlainModel());
  const std::vector<uint8_t> plain_state = Saved(&plain.trainer);
  CHECK_STATUS(b.trainer.LoadState(plain_state.data(), plain_state.size()), Status::kInvalidArgument);
  CHECK_STATUS(plain.trainer.LoadState(good.data(), good.size()), Status::kInvalidArgument);
  // Nor does another model's state of the right size (the CNN has 3 layers).
  Session cnn(CnnModel());
  const std::vector<uint8_t> cnn_state = Saved(&cnn.trainer);
  CHECK_STATUS(plain.trainer.LoadState(cnn_state.data(), cnn_state.size()), Status::kInvalidArgument);
}

TEST(ModelCarriesItsState) {
  for (const Model& src : {PlainModel(), MomentumModel()}) {
    Session a(src);
    CHECK_STATUS(a.init, Status::kOk);
    CHECK(a.trainer.HasStateInModel());
    CHECK(a.trainer.counters().steps == 0);  // the converter's zeros: a fresh state
    Lcg rng(56);
    Train(&a.trainer, &rng, 5);
    a.trainer.CountEpoch();
    CHECK_STATUS(a.trainer.StoreStateInModel(), Status::kOk);
    const Model saved = a.model.ToModel();
    Session b(saved);
    CHECK_STATUS(b.init, Status::kOk);
    CHECK(b.trainer.counters().steps == 5 && b.trainer.counters().epochs == 1);
    CHECK(b.trainer.LearningRate() == a.trainer.LearningRate());
    for (int l = 0; l < a.trainer.num_trainable_layers(); ++l) CHECK(a.trainer.layer_ymax(l) == b.trainer.layer_ymax(l));
    CHECK(Saved(&b.trainer) == Saved(&a.trainer));
    Lcg ra(57), rb(57);
    Train(&a.trainer, &ra, 4);
    Train(&b.trainer, &rb, 4);
    CHECK_MSG(a.model.Same(b.model), "training resumed from the model's own state differs");
    TrainerOptions fresh;
    fresh.restore_state = false;
    Session c(saved, fresh);
    CHECK_STATUS(c.init, Status::kOk);
    CHECK(c.trainer.counters().steps == 0 && c.trainer.counters().epochs == 0 && c.trainer.layer_ymax(0) == 0.0f);
    CHECK(c.trainer.HasStateInModel());
  }
}

TEST(CorruptStateInModel) {
  Session a(PlainModel());
  Lcg rng(58);
  Train(&a.trainer, &rng, 2);
  CHECK_STATUS(a.trainer.StoreStateInModel(), Status::kOk);
  Bytes corrupt(a.model.data(), a.model.size());
  const uint8_t magic[4] = {'T', 'T', 'S', 'T'};
  long at = -1;
  for (size_t i = 0; i + 4 <= corrupt.size(); ++i) {
    if (memcmp(corrupt.data() + i, magic, 4) == 0) at = static_cast<long>(i);
  }
  CHECK(at > 0);
  if (at <= 0) return;
  corrupt.data()[at + 4] = 7;  // format version 7
  const Model bad = corrupt.ToModel();
  const size_t need = RequiredArena(bad);
  Bytes model(bad), arena(need);
  Trainer t;
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need), Status::kInvalidArgument);
  CHECK(strstr(t.error_message(), "restore_state") != nullptr);
  float x[4] = {};
  CHECK_STATUS(t.Predict(x, 4, x, 2), Status::kNotInitialized);
  TrainerOptions fresh;
  fresh.restore_state = false;
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need, fresh), Status::kOk);
  // Storing over it repairs it.
  CHECK_STATUS(t.StoreStateInModel(), Status::kOk);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need), Status::kOk);
}

TEST(ModelWithoutStateRoom) {
  Bytes renamed(PlainModel());
  const long at = Find(renamed, "tflm_train_state");
  CHECK(at >= 0);
  if (at < 0) return;
  renamed.data()[at] = 'x';
  Session s(renamed.ToModel());
  CHECK_STATUS(s.init, Status::kOk);
  CHECK(!s.trainer.HasStateInModel());
  CHECK_STATUS(s.trainer.StoreStateInModel(), Status::kInvalidArgument);
  CHECK(Saved(&s.trainer).size() == s.trainer.StateBytes());  // SaveState still works
  // A state room of the wrong size: the model was converted for another trainer.
  Bytes shrunk(PlainModel());
  tflm_train::ModelView view(shrunk.data(), shrunk.size());
  char why_buffer[200];
  tflm_train::Message why(why_buffer, sizeof(why_buffer));
  CHECK_STATUS(tflm_train::ReadModel(&view, &why), Status::kOk);
  CHECK(view.state != nullptr && view.state_size == s.trainer.StateBytes());
  if (view.state == nullptr) return;
  uint32_t length = 0;
  uint8_t* length_at = shrunk.data() + (view.state - shrunk.data()) - 4;
  memcpy(&length, length_at, 4);
  CHECK(length == view.state_size);
  length -= 4;
  memcpy(length_at, &length, 4);
  Bytes arena(RequiredArena(PlainModel()));
  Trainer t;
  CHECK_STATUS(t.Init(shrunk.data(), shrunk.size(), arena.data(), arena.size()), Status::kInvalidPlan);
  CHECK(!t.HasStateInModel() || t.num_trainable_layers() == 0);
}

int main() { return test::RunAll(); }
