// The Trainer end to end on the fixture models: arena sizing (the two-step
// measure), alignment, options, Predict, sample checks, learning, batches of
// twins, the TinyPropV2 gate, reports, and no heap use in Init or any step.
// (Bad model bytes: test_bad_models.cc; the float32 reference trainer:
// test_trainer_reference.cc; saved states: test_training_state.cc.)
#include <math.h>
#include <string.h>

#include <vector>

#include "heap_counter.h"
#include "kernels/fully_connected.h"
#include "kernels/softmax.h"
#include "model_reader.h"
#include "trainer_fixture.h"

using namespace test;  // NOLINT: the fixture's names
namespace kernels = tflm_train::kernels;

namespace {

// The plan's own memory plan: what the converter measured with this trainer.
tflm_train::plan::MemoryPlan PlannedMemory(const Model& m, uint32_t* arena_bytes) {
  tflm_train::ModelView view(m.data(), m.size());
  char why_buffer[200];
  tflm_train::Message why(why_buffer, sizeof(why_buffer));
  *arena_bytes = tflm_train::ReadModel(&view, &why) == Status::kOk ? view.plan.memory().arena_bytes() : 0;
  return view.plan.memory();
}

void CheckSizing(const Model& src, const char* name, bool momentum) {
  Bytes model(src);
  Trainer t;
  // Step 1: no arena at all. Only the bookkeeping can be measured.
  CHECK_STATUS(t.Init(model.data(), model.size(), nullptr, 0), Status::kArenaTooSmall);
  const tflm_train::ArenaReport first = t.arena_report();
  CHECK_MSG(!first.complete && first.required_bytes > 0 && first.required_bytes == first.bookkeeping_bytes,
            "%s: first measure complete=%d required %zu bookkeeping %zu", name, first.complete,
            first.required_bytes, first.bookkeeping_bytes);
  CHECK(first.activation_bytes == 0 && first.gradient_bytes == 0 && first.scratch_bytes == 0);
  CHECK(strlen(t.error_message()) > 0);
  // Less than the bookkeeping, in a real arena: still only the bookkeeping.
  Bytes small(first.required_bytes);
  CHECK_STATUS(t.Init(model.data(), model.size(), small.data(), first.required_bytes - 16), Status::kArenaTooSmall);
  CHECK(!t.arena_report().complete && t.arena_report().required_bytes == first.required_bytes);
  // Step 2: exactly the bookkeeping. Now the whole arena is measured.
  CHECK_STATUS(t.Init(model.data(), model.size(), small.data(), small.size()), Status::kArenaTooSmall);
  const tflm_train::ArenaReport r = t.arena_report();
  CHECK_MSG(r.complete && r.required_bytes > first.required_bytes, "%s: second measure complete=%d %zu", name,
            r.complete, r.required_bytes);
  CHECK(r.bookkeeping_bytes == first.bookkeeping_bytes);
  const size_t state_bytes = t.StateBytes();  // known once the whole model is measured
  CHECK(state_bytes > 0);
  CHECK(r.activation_bytes > 0 && r.gradient_bytes > 0 && r.scratch_bytes > 0);
  CHECK(momentum ? r.optimizer_bytes > 0 : r.optimizer_bytes == 0);
  CHECK_MSG(r.bookkeeping_bytes + r.activation_bytes + r.gradient_bytes + r.optimizer_bytes + r.scratch_bytes ==
                r.required_bytes,
            "%s: parts %zu+%zu+%zu+%zu+%zu vs required %zu", name, r.bookkeeping_bytes, r.activation_bytes,
            r.gradient_bytes, r.optimizer_bytes, r.scratch_bytes, r.required_bytes);
  uint32_t planned = 0;
  const tflm_train::plan::MemoryPlan memory = PlannedMemory(src, &planned);
  CHECK_MSG(planned == r.required_bytes, "%s: the plan says %u, Init measured %zu", name, planned, r.required_bytes);
  CHECK(memory.activation_bytes() == r.activation_bytes && memory.gradient_bytes() == r.gradient_bytes &&
        memory.optimizer_bytes() == r.optimizer_bytes && memory.scratch_bytes() == r.scratch_bytes);
  const size_t need = r.required_bytes;
  CHECK(RequiredArena(src) == need);

  Bytes arena(need + 64);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need - 1), Status::kArenaTooSmall);
  CHECK(t.arena_report().complete && t.arena_report().required_bytes == need);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), first.required_bytes + 16), Status::kArenaTooSmall);
  CHECK(t.arena_report().complete && t.arena_report().required_bytes == need);
  std::vector<float> x(t.input_size() > 0 ? t.input_size() : 1, 0.25f), out(8);
  CHECK_STATUS(t.Predict(x.data(), x.size(), out.data(), 2), Status::kNotInitialized);  // a failed Init: unusable
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need), Status::kOk);
  CHECK(strlen(t.error_message()) == 0);
  CHECK(t.arena_report().required_bytes == need && t.arena_report().complete);
  CHECK(t.StateBytes() == state_bytes);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need + 64), Status::kOk);  // more is fine
  CHECK(t.arena_report().required_bytes == need);
}

}  // namespace

TEST(AllocationCounterWorks) {
  if (!kCountsHeap) {
    printf("    (no allocator interposition on this C library: heap checks are skipped)\n");
    return;
  }
  // The interposed malloc must see allocations, or the no-heap checks mean nothing.
  const unsigned long before = g_heap_calls;
  void* volatile p = malloc(32);
  free(p);
  std::vector<int>* v = new std::vector<int>(100);
  delete v;
  CHECK_MSG(g_heap_calls - before >= 3, "counted %lu allocations", g_heap_calls - before);
}

TEST(StatusNames) {
  CHECK(strcmp(tflm_train::StatusName(Status::kOk), "Ok") == 0);
  CHECK(strcmp(tflm_train::StatusName(Status::kArenaTooSmall), "ArenaTooSmall") == 0);
  CHECK(strcmp(tflm_train::StatusName(Status::kUnsupportedPlanVersion), "UnsupportedPlanVersion") == 0);
  CHECK(strcmp(tflm_train::StatusName(Status::kNotInitialized), "NotInitialized") == 0);
  CHECK(strcmp(tflm_train::StatusName(static_cast<Status>(99)), "Unknown") == 0);
}

TEST(ArenaSizingTwoStepMeasure) {
  CheckSizing(PlainModel(), "plain", false);
  CheckSizing(MomentumModel(), "momentum", true);
  CheckSizing(CnnModel(), "cnn", false);
  Session s(PlainModel());
  CHECK_STATUS(s.init, Status::kOk);
  Trainer& t = s.trainer;
  CHECK(t.input_size() == 4 && t.output_size() == 2 && t.target_size() == 1);
  CHECK(t.num_trainable_layers() == 2 && t.layer_outputs(0) == 3 && t.layer_outputs(1) == 2);
  CHECK(t.layer_outputs(2) == 0 && t.layer_outputs(-1) == 0);
  CHECK(t.batch_size() == 1 && t.policy().kind == PolicyKind::kFull && t.LearningRate() == 0.1f);
  CHECK(t.num_ops() == 3);
}

TEST(ArenaGrowsWithBatchAndMomentum) {
  const size_t one = RequiredArena(PlainModel());
  TrainerOptions batch4;
  batch4.batch_size = 4;
  const size_t four = RequiredArena(PlainModel(), batch4);
  CHECK_MSG(four > one, "batch 4 needs %zu, batch 1 %zu (gradient buffers)", four, one);
  TrainerOptions batch1;
  batch1.batch_size = 1;
  CHECK(RequiredArena(MomentumModel(), batch1) < RequiredArena(MomentumModel()));
}

TEST(RejectsMisalignment) {
  const Model src = PlainModel();
  Bytes model(src);
  const size_t need = RequiredArena(src);
  Trainer t;
  Bytes arena(need + 64);
  for (size_t off : {1, 2, 4, 8}) {
    CHECK_STATUS(t.Init(model.data(), model.size(), arena.data() + off, need), Status::kInvalidArgument);
  }
  for (size_t off : {1, 2, 8}) {
    Bytes shifted(src, off);
    CHECK_STATUS(t.Init(shifted.data(), shifted.size(), arena.data(), need), Status::kInvalidArgument);
  }
  CHECK_STATUS(t.Init(nullptr, model.size(), arena.data(), need), Status::kInvalidArgument);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need), Status::kOk);
}

TEST(RejectsBadOptions) {
  const Model src = PlainModel();
  Bytes model(src), arena(1 << 16);
  Trainer t;
  TrainerOptions big_batch;
  big_batch.batch_size = 70000;
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), arena.size(), big_batch), Status::kInvalidArgument);
  TrainerOptions bad_policy = WithPolicy(PolicyKind::kStaticTopK);
  bad_policy.policy.ratio = 0.0f;
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), arena.size(), bad_policy), Status::kInvalidArgument);
  CHECK(strlen(t.error_message()) > 0);
  TrainerOptions unknown = WithPolicy(static_cast<PolicyKind>(8));
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), arena.size(), unknown), Status::kInvalidArgument);
  CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), arena.size()), Status::kOk);
}

TEST(PredictMatchesKernels) {
  Session s(PlainModel());
  CHECK_STATUS(s.init, Status::kOk);
  Lcg rng(31);
  for (int iter = 0; iter < 20; ++iter) {
    float x[4], out[2] = {-1.0f, -1.0f};
    for (float& v : x) v = rng.Uniform(-5.0f, 5.0f);
    CHECK_STATUS(s.trainer.Predict(x, 4, out, 2), Status::kOk);
    CHECK_NEAR(out[0] + out[1], 1.0, 1e-6);
    CHECK(out[0] >= 0.0f && out[0] <= 1.0f && out[1] >= 0.0f && out[1] <= 1.0f);
    // The same kernels over the layers' weights give the same bits.
    std::vector<float> a(x, x + 4);
    for (int l = 0; l < 2; ++l) {
      tflm_train::OpDescription d;
      CHECK(s.trainer.DescribeOp(l, &d) && d.layer == l);
      size_t n_w = 0, n_b = 0;
      const float* w = s.trainer.layer_weights(l, &n_w);
      const float* b = s.trainer.layer_bias(l, &n_b);
      const int n_out = static_cast<int>(s.trainer.layer_outputs(l));
      std::vector<float> next(static_cast<size_t>(n_out));
      kernels::FullyConnected(a.data(), static_cast<int>(a.size()), w, b, n_out,
                              static_cast<kernels::FusedAct>(d.activation), next.data());
      a = next;
    }
    float p[2];
    kernels::Softmax(a.data(), 1, 2, p);
    CHECK(p[0] == out[0] && p[1] == out[1]);
  }
  float x[4] = {0, 0, 0, 0}, out[3];
  CHECK_STATUS(s.trainer.Predict(x, 3, out, 2), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.Predict(x, 4, out, 3), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.Predict(x, 4, nullptr, 2), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.Predict(nullptr, 4, out, 2), Status::kInvalidArgument);
  x[2] = INFINITY;
  CHECK_STATUS(s.trainer.Predict(x, 4, out, 2), Status::kBadInput);
  Trainer fresh;
  CHECK_STATUS(fresh.Predict(x, 4, out, 2), Status::kNotInitialized);
  tflm_train::StepResult r;
  const float label = 0.0f;
  CHECK_STATUS(fresh.TrainStep(x, 4, &label, 1, 1, &r, nullptr), Status::kNotInitialized);
  float loss, correct;
  CHECK_STATUS(fresh.EvaluateSample(x, 4, &label, 1, &loss, &correct), Status::kNotInitialized);
  CHECK_STATUS(fresh.CheckSample(x, 4, &label, 1), Status::kNotInitialized);
  CHECK(fresh.num_trainable_layers() == 0 && fresh.num_ops() == 0 && fresh.layer_ymax(0) == 0.0f);
  tflm_train::OpDescription d;
  CHECK(!fresh.DescribeOp(0, &d));
}

TEST(DescribesTheCnn) {
  Session s(CnnModel());
  CHECK_STATUS(s.init, Status::kOk);
  const char* kinds[] = {"CONV_2D", "MAX_POOL_2D", "DEPTHWISE_CONV_2D", "RESHAPE", "FULLY_CONNECTED", "SOFTMAX"};
  const int layers[] = {0, -1, 1, -1, 2, -1};
  CHECK(s.trainer.num_ops() == 6 && s.trainer.num_trainable_layers() == 3);
  for (int i = 0; i < 6; ++i) {
    tflm_train::OpDescription d;
    CHECK(s.trainer.DescribeOp(i, &d));
    CHECK_MSG(strcmp(d.kind, kinds[i]) == 0 && d.layer == layers[i], "op %d: %s layer %d", i, d.kind, d.layer);
  }
  tflm_train::OpDescription conv, pool, dw;
  s.trainer.DescribeOp(0, &conv);
  s.trainer.DescribeOp(1, &pool);
  s.trainer.DescribeOp(2, &dw);
  CHECK(conv.filter_h == 3 && conv.filter_w == 3 && conv.stride_h == 1 && conv.pad_top == 1 && conv.pad_left == 1);
  CHECK(conv.activation == 1 && conv.n_weights == 3 * 3 * 3 * 2 && conv.n_bias == 3 && conv.weights != nullptr);
  CHECK(pool.filter_h == 2 && pool.stride_w == 2 && pool.n_weights == 0 && pool.layer == -1);
  CHECK(dw.depth_multiplier == 2 && dw.filter_h == 2 && dw.n_weights == 2 * 2 * 6 && dw.n_bias == 6);
  CHECK(s.trainer.layer_outputs(0) == 6 * 6 * 3 && s.trainer.layer_outputs(1) == 2 * 2 * 6 &&
        s.trainer.layer_outputs(2) == 3);
  tflm_train::OpDescription none;
  CHECK(!s.trainer.DescribeOp(6, &none) && !s.trainer.DescribeOp(-1, &none));
  size_t n = 99;
  CHECK(s.trainer.layer_weights(3, &n) == nullptr && n == 0);
  CHECK(s.trainer.layer_bias(-1, &n) == nullptr && n == 0);
}

TEST(RejectsBadSamplesUnchanged) {
  Session s(PlainModel());
  CHECK_STATUS(s.init, Status::kOk);
  const Bytes before(s.model.data(), s.model.size());
  const float x[4] = {0.5f, -1.0f, 0.25f, 1.0f};
  tflm_train::StepResult r;
  for (float label : {2.0f, 3.0f, -1.0f, 0.5f, 1.0001f, NAN, INFINITY, -INFINITY, 1e9f}) {
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, &r, nullptr), Status::kBadLabel);
    CHECK_STATUS(s.trainer.CheckSample(x, 4, &label, 1), Status::kBadLabel);
    CHECK(strlen(s.trainer.error_message()) > 0);
  }
  const float label = 1.0f;
  for (float bad : {NAN, INFINITY, -INFINITY}) {
    for (int at = 0; at < 4; ++at) {
      float xb[4] = {0.5f, -1.0f, 0.25f, 1.0f};
      xb[at] = bad;
      CHECK_STATUS(s.trainer.TrainStep(xb, 4, &label, 1, 1, &r, nullptr), Status::kBadInput);
      CHECK_STATUS(s.trainer.CheckSample(xb, 4, nullptr, 0), Status::kBadInput);
    }
  }
  CHECK_STATUS(s.trainer.CheckSample(x, 4, &label, 1), Status::kOk);
  CHECK_STATUS(s.trainer.TrainStep(x, 3, &label, 1, 1, &r, nullptr), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 2, 1, &r, nullptr), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 0, &r, nullptr), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 2, &r, nullptr), Status::kInvalidArgument);  // batch 1
  CHECK_STATUS(s.trainer.TrainStep(x, 4, nullptr, 1, 1, &r, nullptr), Status::kInvalidArgument);
  CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, nullptr, nullptr), Status::kInvalidArgument);
  float loss, correct;
  const float bad_label = 5.0f;
  CHECK_STATUS(s.trainer.EvaluateSample(x, 4, &bad_label, 1, &loss, &correct), Status::kBadLabel);
  CHECK_STATUS(s.trainer.EvaluateSample(x, 4, &label, 1, nullptr, &correct), Status::kInvalidArgument);
  CHECK(before.Same(s.model));  // nothing trained, nothing written
  CHECK(s.trainer.counters().steps == 0 && s.trainer.counters().samples == 0);
  // A bad sample anywhere in a batch trains nothing.
  TrainerOptions batch3;
  batch3.batch_size = 3;
  Session b(PlainModel(), batch3);
  CHECK_STATUS(b.init, Status::kOk);
  const Bytes b_before(b.model.data(), b.model.size());
  float xs[12] = {0.5f, -1.0f, 0.25f, 1.0f, 0.1f, 0.2f, 0.3f, 0.4f, 1, 2, 3, 4};
  float ys[3] = {0.0f, 1.0f, 7.0f};
  CHECK_STATUS(b.trainer.TrainStep(xs, 4, ys, 1, 3, &r, nullptr), Status::kBadLabel);
  ys[2] = 1.0f;
  xs[9] = NAN;
  CHECK_STATUS(b.trainer.TrainStep(xs, 4, ys, 1, 3, &r, nullptr), Status::kBadInput);
  CHECK(b_before.Same(b.model));
  xs[9] = 2.0f;
  CHECK_STATUS(b.trainer.TrainStep(xs, 4, ys, 1, 3, &r, nullptr), Status::kOk);
  CHECK(!b_before.Same(b.model));
  CHECK(r.samples == 3 && r.trained == 3 && r.updated);
}

TEST(LearnsOneSample) {
  Session s(PlainModel());
  CHECK_STATUS(s.init, Status::kOk);
  const float x[4] = {0.5f, -1.0f, 0.25f, 1.0f};
  const float label = 1.0f;
  float loss0 = 0, correct0 = 0;
  CHECK_STATUS(s.trainer.EvaluateSample(x, 4, &label, 1, &loss0, &correct0), Status::kOk);
  CHECK(loss0 > 0.0f && isfinite(loss0));
  tflm_train::StepResult r;
  tflm_train::SampleResult per[1];
  float first_step_loss = -1.0f, last = 0.0f;
  for (int i = 0; i < 20; ++i) {
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, &r, per), Status::kOk);
    if (i == 0) first_step_loss = r.loss;
    last = r.loss;
    CHECK(r.samples == 1 && r.trained == 1 && r.skipped == 0 && r.updated);
    CHECK(r.learning_rate == 0.1f);
    CHECK(per[0].num_layers == 2 && per[0].k[0] == 3 && per[0].k[1] == 2 && !per[0].skipped);
    CHECK(per[0].forward_macs == 4 * 3 + 3 * 2 && r.forward_macs == per[0].forward_macs);
    CHECK(per[0].loss == r.loss);
  }
  CHECK(first_step_loss == loss0);  // the step reports the loss before its update
  float loss1 = 0, correct1 = 0;
  CHECK_STATUS(s.trainer.EvaluateSample(x, 4, &label, 1, &loss1, &correct1), Status::kOk);
  CHECK_MSG(loss1 < 0.5f * loss0, "loss only went from %.6g to %.6g", loss0, loss1);
  CHECK(last < first_step_loss && correct1 == 1.0f);
  const tflm_train::Counters& c = s.trainer.counters();
  CHECK(c.steps == 20 && c.updates == 20 && c.samples == 20 && c.trained == 20 && c.skipped == 0);
  CHECK(c.forward_macs == 20u * 18u);
  // The trained bytes are still a valid trainable model, and predict the same.
  Bytes copy(s.model.data(), s.model.size());
  Trainer again;
  Bytes arena(s.arena.size());
  CHECK_STATUS(again.Init(copy.data(), copy.size(), arena.data(), arena.size()), Status::kOk);
  float o1[2], o2[2];
  CHECK_STATUS(s.trainer.Predict(x, 4, o1, 2), Status::kOk);
  CHECK_STATUS(again.Predict(x, 4, o2, 2), Status::kOk);
  CHECK(o1[0] == o2[0] && o1[1] == o2[1]);
}

TEST(CnnLearnsOneSample) {
  for (PolicyKind kind : {PolicyKind::kFull, PolicyKind::kTinyProp}) {
    Session s(CnnModel(), WithPolicy(kind));
    CHECK_STATUS(s.init, Status::kOk);
    Lcg rng(5);
    std::vector<float> x, y;
    MakeSamples(rng, 1, 72, 3, &x, &y);
    float loss0 = 0, loss1 = 0, correct = 0;
    CHECK_STATUS(s.trainer.EvaluateSample(x.data(), 72, y.data(), 1, &loss0, &correct), Status::kOk);
    tflm_train::StepResult r;
    tflm_train::SampleResult per[1];
    for (int i = 0; i < 30; ++i) {
      CHECK_STATUS(s.trainer.TrainStep(x.data(), 72, y.data(), 1, 1, &r, per), Status::kOk);
      CHECK(per[0].num_layers == 3 && per[0].k[2] >= 1 && per[0].k[0] <= 108);
      CHECK(kind != PolicyKind::kFull || (per[0].k[0] == 108 && per[0].k[1] == 24 && per[0].k[2] == 3));
    }
    // Forward MACs: 108 outputs x 18 + 24 x 4 + 3 x 24.
    CHECK_MSG(per[0].forward_macs == 108 * 18 + 24 * 4 + 3 * 24, "forward MACs %llu",
              static_cast<unsigned long long>(per[0].forward_macs));
    CHECK_STATUS(s.trainer.EvaluateSample(x.data(), 72, y.data(), 1, &loss1, &correct), Status::kOk);
    CHECK_MSG(loss1 < 0.5f * loss0, "policy %d: loss %.6g -> %.6g", static_cast<int>(kind), loss0, loss1);
  }
}

TEST(BatchOfTwinsEqualsOneSample) {
  // The mean of two identical gradients is that gradient, bit for bit: a batch
  // of twins (accumulated path) must equal one direct step on that sample.
  TrainerOptions batch2;
  batch2.batch_size = 2;
  Session one(PlainModel()), two(PlainModel(), batch2);
  CHECK_STATUS(one.init, Status::kOk);
  CHECK_STATUS(two.init, Status::kOk);
  CHECK(two.trainer.arena_report().gradient_bytes > one.trainer.arena_report().gradient_bytes);
  Lcg rng(21);
  for (int step = 0; step < 10; ++step) {
    std::vector<float> x, y;
    MakeSamples(rng, 1, 4, 2, &x, &y);
    const float xs[8] = {x[0], x[1], x[2], x[3], x[0], x[1], x[2], x[3]};
    const float ys[2] = {y[0], y[0]};
    tflm_train::StepResult r1, r2;
    CHECK_STATUS(one.trainer.TrainStep(x.data(), 4, y.data(), 1, 1, &r1, nullptr), Status::kOk);
    CHECK_STATUS(two.trainer.TrainStep(xs, 4, ys, 1, 2, &r2, nullptr), Status::kOk);
    CHECK(r1.loss == r2.loss && r2.samples == 2 && r2.trained == 2 && r2.correct == 2 * r1.correct);
    CHECK_MSG(one.model.Same(two.model), "step %d: batch of twins differs from one sample", step);
  }
  // And a one-sample batch on the batch trainer equals the direct step too.
  std::vector<float> x, y;
  MakeSamples(rng, 1, 4, 2, &x, &y);
  tflm_train::StepResult r;
  CHECK_STATUS(one.trainer.TrainStep(x.data(), 4, y.data(), 1, 1, &r, nullptr), Status::kOk);
  CHECK_STATUS(two.trainer.TrainStep(x.data(), 4, y.data(), 1, 1, &r, nullptr), Status::kOk);
  CHECK(one.model.Same(two.model));
}

TEST(GateSkipsEverything) {
  TrainerOptions never = WithPolicy(PolicyKind::kTinyPropV2);
  never.policy.tau = 10.0f;  // D <= 1 < tau
  Session s(PlainModel(), never);
  CHECK_STATUS(s.init, Status::kOk);
  const Bytes before(s.model.data(), s.model.size());
  const float x[4] = {0.5f, -1.0f, 0.25f, 1.0f}, label = 0.0f;
  tflm_train::StepResult r;
  tflm_train::SampleResult per[1];
  for (int i = 0; i < 5; ++i) {
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &label, 1, 1, &r, per), Status::kOk);
    CHECK(!r.updated && r.skipped == 1 && r.trained == 0 && per[0].skipped);
    CHECK(per[0].k[0] == 0 && per[0].k[1] == 0 && r.loss > 0.0f);
  }
  CHECK(before.Same(s.model));
  CHECK(s.trainer.counters().steps == 5 && s.trainer.counters().skipped == 5 && s.trainer.counters().updates == 0);
  CHECK(s.trainer.layer_ymax(1) > 0.0f);  // the output layer's Ymax is still tracked
  s.trainer.ResetPolicyState();
  CHECK(s.trainer.layer_ymax(0) == 0.0f && s.trainer.layer_ymax(1) == 0.0f);
}

TEST(AccessorsAfterFailedInit) {
  // The measuring call (no arena) is the documented way to size the arena; the
  // accessors must be safe afterwards, and after a good Init followed by a failed one.
  for (const Model& src : {PlainModel(), MomentumModel(), CnnModel()}) {
    Bytes model(src);
    Trainer t;
    CHECK_STATUS(t.Init(model.data(), model.size(), nullptr, 0), Status::kArenaTooSmall);
    (void)t.StateBytes();
    CHECK(isfinite(t.LearningRate()) && t.layer_ymax(0) == 0.0f && t.layer_outputs(0) == 0);
    t.ResetPolicyState();
    t.CountEpoch();
    uint8_t buf[16];
    CHECK_STATUS(t.SaveState(buf, sizeof(buf)), Status::kNotInitialized);
    CHECK_STATUS(t.StoreStateInModel(), Status::kNotInitialized);
    const size_t need = RequiredArena(src);
    Bytes arena(need);
    CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need), Status::kOk);
    CHECK_STATUS(t.Init(model.data(), model.size(), arena.data(), need - 1), Status::kArenaTooSmall);
    CHECK(t.num_trainable_layers() == 0 && t.layer_outputs(0) == 0);
    (void)t.StateBytes();
    float x[72] = {};
    const float label = 0.0f;
    tflm_train::StepResult r;
    CHECK_STATUS(t.TrainStep(x, t.input_size(), &label, 1, 1, &r, nullptr), Status::kNotInitialized);
  }
}

TEST(NoHeapAllocation) {
  if (!kCountsHeap) return;
  TrainerOptions batch3;
  batch3.batch_size = 3;
  TrainerOptions gated = WithPolicy(PolicyKind::kTinyPropV2, 3);
  gated.policy.tau = 0.2f;
  const struct {
    Model model;
    TrainerOptions options;
  } variants[] = {{PlainModel(), TrainerOptions()}, {PlainModel(), gated}, {MomentumModel(), batch3},
                  {MomentumModel(), TrainerOptions()}, {CnnModel(), WithPolicy(PolicyKind::kTinyProp)}};
  int variant = 0;
  for (const auto& v : variants) {
    Bytes model(v.model);
    Bytes arena(RequiredArena(v.model, v.options));
    std::vector<uint8_t> state(1 << 14);
    std::vector<float> xs(3 * 72), out(3);
    for (size_t i = 0; i < xs.size(); ++i) xs[i] = 0.01f * static_cast<float>(i % 37) - 0.2f;
    float ys[3] = {1.0f, 0.0f, 1.0f}, loss, correct;
    tflm_train::StepResult r;
    tflm_train::SampleResult per[3];
    Trainer t;
    const unsigned long start = g_heap_calls;
    Status init = t.Init(model.data(), model.size(), nullptr, 0, v.options);
    init = t.Init(model.data(), model.size(), arena.data(), arena.size(), v.options);
    const unsigned long after_init = g_heap_calls;
    const size_t in = t.input_size();
    Status step = Status::kOk;
    const uint32_t batch = t.batch_size() < 3 ? t.batch_size() : 3;
    for (int i = 0; i < 10 && step == Status::kOk; ++i) {
      step = t.TrainStep(xs.data(), in, ys, 1, batch, &r, (i & 1) ? per : nullptr);
      xs[static_cast<size_t>(i) % xs.size()] += 0.25f;
    }
    const unsigned long after_steps = g_heap_calls;
    const Status single = t.TrainStep(xs.data(), in, ys + 1, 1, 1, &r, nullptr);  // one sample, label 0
    const float bad = 9.0f;
    const Status bad_label = t.TrainStep(xs.data(), in, &bad, 1, 1, &r, nullptr);
    const Status predict = t.Predict(xs.data(), in, out.data(), t.output_size());
    const Status eval = t.EvaluateSample(xs.data(), in, ys, 1, &loss, &correct);
    const size_t n = t.StateBytes();
    const Status save = t.SaveState(state.data(), n);
    const Status load = t.LoadState(state.data(), n);
    const Status store = t.StoreStateInModel();
    t.ResetPolicyState();
    const unsigned long end = g_heap_calls;
    CHECK_STATUS(init, Status::kOk);
    CHECK_STATUS(step, Status::kOk);
    CHECK_STATUS(single, Status::kOk);
    CHECK_STATUS(bad_label, Status::kBadLabel);
    CHECK_STATUS(predict, Status::kOk);
    CHECK_STATUS(eval, Status::kOk);
    CHECK_STATUS(save, Status::kOk);
    CHECK_STATUS(load, Status::kOk);
    CHECK_STATUS(store, Status::kOk);
    CHECK_MSG(after_init == start, "variant %d: Init made %lu heap allocations", variant, after_init - start);
    CHECK_MSG(after_steps == after_init, "variant %d: 10 TrainSteps made %lu heap allocations", variant,
              after_steps - after_init);
    CHECK_MSG(end == after_steps, "variant %d: Predict/Evaluate/State made %lu heap allocations", variant,
              end - after_steps);
    ++variant;
  }
}

int main() { return test::RunAll(); }
