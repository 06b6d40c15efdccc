// The Trainer against an independent float32 re-implementation of its step for
// Dense stacks ending in Softmax with sparse categorical cross-entropy: forward,
// p - onehot, sparse backward through the kept rows (old weights), Keras SGD with
// momentum, weight decay and the cosine schedule. Every policy, batch 1 (direct
// row updates) and batches (accumulated gradients): the same k per layer, Ymax,
// MAC counts, and weights within 1e-6 after every step.
#include <math.h>
#include <stdio.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "kernels/fully_connected.h"
#include "kernels/softmax.h"
#include "model_reader.h"
#include "sgd.h"
#include "sparsity_policy.h"
#include "trainer_fixture.h"

using namespace test;  // NOLINT: the fixture's names
namespace kernels = tflm_train::kernels;
namespace tfl = tflm_train::tflite;

namespace {

// Brute force: sort by |v| descending, ties by lower index; keep k; ascending.
std::vector<int32_t> ReferenceTopK(const float* v, int n, int k) {
  std::vector<int32_t> idx(n);
  std::iota(idx.begin(), idx.end(), 0);
  std::sort(idx.begin(), idx.end(), [v](int32_t a, int32_t b) {
    const float fa = fabsf(v[a]), fb = fabsf(v[b]);
    if (fa != fb) return fa > fb;
    return a < b;
  });
  idx.resize(k);
  std::sort(idx.begin(), idx.end());
  return idx;
}

double ReferenceRate(double peak, uint64_t step, uint32_t decay, uint32_t warmup, double alpha, double initial) {
  const double t = static_cast<double>(step);
  if (warmup > 0 && t < warmup) return (peak - initial) * (t / warmup) + initial;
  const double s = std::min(t - warmup, static_cast<double>(decay));
  const double c = 0.5 * (1.0 + cos(M_PI * s / decay));
  return peak * ((1.0 - alpha) * c + alpha);
}

// The trainable layers of a model and its plan's settings, read with the model
// reader (not the Trainer): pointers into the bytes given.
struct LayerView {
  float* w;
  float* b;
  int n_in, n_out;
  kernels::FusedAct act;
};
struct ModelFacts {
  bool ok = false;
  std::vector<LayerView> layers;
  float lr = 0, momentum = 0, weight_decay = 0, alpha = 0, warmup_initial = 0;
  uint8_t schedule = 0;
  uint32_t decay_steps = 0, warmup_steps = 0, batch_size = 0;
};

ModelFacts ReadFacts(uint8_t* model, size_t size) {
  ModelFacts f;
  char why_buffer[200];
  tflm_train::Message why(why_buffer, sizeof(why_buffer));
  tflm_train::ModelView view(model, size);
  if (tflm_train::ReadModel(&view, &why) != Status::kOk) return f;
  const tflm_train::plan::TrainingPlan& p = view.plan;
  for (uint32_t l = 0; l < p.layers().size(); ++l) {
    const tfl::Operator op = view.op(p.layers(l).op_index());
    if (view.BuiltinCode(op) != static_cast<int32_t>(tfl::BuiltinOperator::FULLY_CONNECTED)) return f;
    const int32_t weights = op.inputs().Get<int32_t>(1, -1), bias = op.inputs().Get<int32_t>(2, -1);
    tflm_train::Dims d;
    if (!tflm_train::TensorDims(view, weights, &d) || d.rank != 2) return f;
    LayerView lv;
    lv.n_out = d.d[0];
    lv.n_in = d.d[1];
    lv.w = tflm_train::ConstantFloats(view, model, weights, int64_t{lv.n_out} * lv.n_in, &why);
    lv.b = bias >= 0 ? tflm_train::ConstantFloats(view, model, bias, lv.n_out, &why) : nullptr;
    const auto fused = tfl::FullyConnectedOptions(op.builtin_options().table()).fused_activation_function();
    lv.act = fused == tfl::ActivationFunctionType::RELU ? kernels::FusedAct::kRelu : kernels::FusedAct::kNone;
    if (lv.w == nullptr || (fused != tfl::ActivationFunctionType::NONE && fused != tfl::ActivationFunctionType::RELU)) {
      return f;
    }
    f.layers.push_back(lv);
  }
  const tflm_train::plan::Optimizer o = p.optimizer();
  f.lr = o.learning_rate();
  f.momentum = o.momentum();
  f.weight_decay = o.weight_decay();
  f.schedule = static_cast<uint8_t>(o.schedule());
  f.decay_steps = o.decay_steps();
  f.warmup_steps = o.warmup_steps();
  f.alpha = o.alpha();
  f.warmup_initial = o.warmup_initial();
  f.batch_size = p.batch_size();
  f.ok = p.loss() == tflm_train::plan::LossKind::SparseCategoricalCrossentropy;
  return f;
}

// An independent float32 re-implementation of the trainer's step for
// Dense stacks ending in Softmax with sparse categorical cross-entropy:
// forward, p - onehot, sparse backward through kept rows (old weights), then
// Keras SGD. The top-k is the brute-force reference.
struct ReferenceTrainer {
  std::vector<LayerView> layers;  // into the reference's own copy of the model
  PolicyParams policy;
  float momentum, weight_decay;
  bool accumulate;
  std::vector<std::vector<float>> vw, vb, gw, gb;
  std::vector<float> ymax;

  ReferenceTrainer(const ModelFacts& f, const PolicyParams& pol, bool acc)
      : layers(f.layers), policy(pol), momentum(f.momentum), weight_decay(f.weight_decay), accumulate(acc) {
    for (const auto& l : layers) {
      vw.emplace_back(static_cast<size_t>(l.n_out) * l.n_in, 0.0f);
      vb.emplace_back(l.n_out, 0.0f);
      gw.emplace_back(static_cast<size_t>(l.n_out) * l.n_in, 0.0f);
      gb.emplace_back(l.n_out, 0.0f);
      ymax.push_back(0.0f);
    }
  }

  void Update(float* w, float* v, const float* g, float scale, int n, float lr) const {
    for (int i = 0; i < n; ++i) {
      float wi = w[i];
      if (weight_decay != 0.0f) wi = wi - wi * weight_decay * lr;
      const float gi = g[i] * scale;
      if (momentum > 0.0f) {
        v[i] = -gi * lr + v[i] * momentum;
        wi = wi + v[i];
      } else {
        wi = wi - gi * lr;
      }
      w[i] = wi;
    }
  }

  // One batch; returns the number of samples trained (not skipped).
  int Step(const float* xs, int input_len, const float* labels, int num, float lr,
           std::vector<std::vector<int>>* ks) {
    const int L = static_cast<int>(layers.size());
    int trained = 0;
    ks->assign(num, std::vector<int>(L, 0));
    for (int s = 0; s < num; ++s) {
      std::vector<std::vector<float>> acts(L + 1);
      acts[0].assign(xs + s * input_len, xs + (s + 1) * input_len);
      for (int l = 0; l < L; ++l) {
        const LayerView& ly = layers[l];
        acts[l + 1].resize(ly.n_out);
        // The forward kernel (checked against a float64 sum in test_kernels.cc)
        // fixes the summation order, so the reference reproduces its rounding.
        kernels::FullyConnected(acts[l].data(), ly.n_in, ly.w, ly.b, ly.n_out, ly.act, acts[l + 1].data());
      }
      const std::vector<float>& z = acts[L];
      std::vector<float> p(z.size());
      kernels::Softmax(z.data(), 1, static_cast<int>(z.size()), p.data());
      std::vector<std::vector<float>> delta(L);
      std::vector<std::vector<int32_t>> rows(L);
      delta[L - 1] = p;
      delta[L - 1][static_cast<int>(labels[s])] -= 1.0f;
      bool skipped = false;
      for (int l = L - 1; l >= 0; --l) {
        const LayerView& ly = layers[l];
        std::vector<float>& d = delta[l];
        if (ly.act == kernels::FusedAct::kRelu) {
          for (int o = 0; o < ly.n_out; ++o) if (!(acts[l + 1][o] > 0.0f)) d[o] = 0.0f;
        }
        float y = 0.0f;
        for (float v : d) y += fabsf(v);
        const float decayed = ymax[l] * policy.ymax_decay;
        ymax[l] = y > decayed ? y : decayed;
        const int position = L - 1 - l;
        if (position == 0 && policy.kind == PolicyKind::kTinyPropV2) {
          const float alpha = ymax[l] > 0.0f ? y / ymax[l] : 0.0f;
          const float dd = (policy.d_min + alpha * (policy.d_max - policy.d_min)) * policy.beta;
          if (!(dd > policy.tau)) {
            skipped = true;
            break;
          }
        }
        const int k = tflm_train::KeptOutputs(policy, ly.n_out, position, y, ymax[l]);
        (*ks)[s][l] = k;
        rows[l] = ReferenceTopK(d.data(), ly.n_out, k);
        if (accumulate) {
          for (int32_t o : rows[l]) {
            for (int i = 0; i < ly.n_in; ++i) gw[l][o * ly.n_in + i] += d[o] * acts[l][i];
          }
          for (int o = 0; o < ly.n_out; ++o) gb[l][o] += d[o];
        }
        if (l > 0) {
          delta[l - 1].assign(layers[l - 1].n_out, 0.0f);
          for (int32_t o : rows[l]) {
            for (int i = 0; i < ly.n_in; ++i) delta[l - 1][i] += ly.w[o * ly.n_in + i] * d[o];
          }
        }
      }
      if (skipped) continue;
      ++trained;
      if (accumulate) continue;
      const bool every_row = momentum != 0.0f || weight_decay != 0.0f;
      for (int l = 0; l < L; ++l) {
        const LayerView& ly = layers[l];
        std::vector<float> g(ly.n_in);
        for (int o = 0; o < ly.n_out; ++o) {
          const bool kept = std::find(rows[l].begin(), rows[l].end(), o) != rows[l].end();
          if (!kept && !every_row) continue;
          const float d = kept ? delta[l][o] : 0.0f;
          for (int i = 0; i < ly.n_in; ++i) g[i] = d * acts[l][i];
          Update(ly.w + o * ly.n_in, vw[l].data() + o * ly.n_in, g.data(), 1.0f, ly.n_in, lr);
        }
        if (ly.b) Update(ly.b, vb[l].data(), delta[l].data(), 1.0f, ly.n_out, lr);
      }
    }
    if (accumulate && trained > 0) {
      const float scale = 1.0f / static_cast<float>(trained);
      for (int l = 0; l < L; ++l) {
        const LayerView& ly = layers[l];
        Update(ly.w, vw[l].data(), gw[l].data(), scale, ly.n_out * ly.n_in, lr);
        if (ly.b) Update(ly.b, vb[l].data(), gb[l].data(), scale, ly.n_out, lr);
      }
    }
    if (accumulate) {
      for (auto& v : gw) std::fill(v.begin(), v.end(), 0.0f);
      for (auto& v : gb) std::fill(v.begin(), v.end(), 0.0f);
    }
    return trained;
  }
};

double MaxWeightDiff(const std::vector<LayerView>& a, const std::vector<LayerView>& b) {
  double worst = 0.0;
  for (size_t l = 0; l < a.size(); ++l) {
    for (int i = 0; i < a[l].n_out * a[l].n_in; ++i) {
      worst = std::max(worst, fabs(static_cast<double>(a[l].w[i]) - b[l].w[i]) / (1.0 + fabs(b[l].w[i])));
    }
    for (int o = 0; a[l].b && o < a[l].n_out; ++o) {
      worst = std::max(worst, fabs(static_cast<double>(a[l].b[o]) - b[l].b[o]) / (1.0 + fabs(b[l].b[o])));
    }
  }
  return worst;
}

// Trains `steps` batches with the trainer and the reference side by side.
void CompareWithReference(const Model& src, const TrainerOptions& options,
                                 int steps, int batch, uint64_t seed, const char* label) {
  Session s(src, options);
  CHECK_MSG(s.init == Status::kOk, "%s: Init %s", label, tflm_train::StatusName(s.init));
  if (s.init != Status::kOk) return;
  Bytes ref_bytes(src);
  const ModelFacts tf = ReadFacts(s.model.data(), s.model.size());
  const ModelFacts rf = ReadFacts(ref_bytes.data(), ref_bytes.size());
  CHECK(tf.ok && rf.ok);
  if (!tf.ok || !rf.ok) return;
  const PolicyParams policy = options.override_policy ? options.policy : s.trainer.policy();
  ReferenceTrainer ref(rf, policy, s.trainer.batch_size() > 1);
  Lcg rng(seed);
  const int L = static_cast<int>(rf.layers.size());
  int trained_total = 0, skipped_total = 0;
  double worst = 0.0;
  for (int step = 0; step < steps; ++step) {
    const int num = batch > 1 ? rng.Int(1, batch) : 1;
    std::vector<float> xs, ys;
    MakeSamples(rng, num, 4, 2, &xs, &ys);
    const float lr = tflm_train::ScheduledLearningRate(rf.schedule, rf.lr, static_cast<uint64_t>(step),
                                                       rf.decay_steps, rf.warmup_steps, rf.alpha,
                                                       rf.warmup_initial);
    CHECK_MSG(s.trainer.LearningRate() == lr, "%s step %d: LearningRate %.9g vs %.9g", label, step,
              s.trainer.LearningRate(), lr);
    tflm_train::StepResult r;
    std::vector<tflm_train::SampleResult> per(num);
    const Status st = s.trainer.TrainStep(xs.data(), 4, ys.data(), 1, num, &r, per.data());
    CHECK_MSG(st == Status::kOk, "%s step %d: %s (%s)", label, step, tflm_train::StatusName(st),
              s.trainer.error_message());
    std::vector<std::vector<int>> ks;
    const int trained = ref.Step(xs.data(), 4, ys.data(), num, lr, &ks);
    CHECK_MSG(static_cast<int>(r.trained) == trained, "%s step %d: trained %u vs reference %d", label,
              step, r.trained, trained);
    CHECK(static_cast<int>(r.samples) == num && static_cast<int>(r.skipped) == num - trained);
    CHECK(r.updated == (trained > 0));
    CHECK(r.learning_rate == lr);
    uint64_t backward_total = 0, selection_total = 0;
    for (int i = 0; i < num; ++i) {
      // docs/algorithm.md effort: weight gradient k*n_in per layer, plus input
      // gradient k*n_in for all but the first trainable layer.
      uint64_t macs = 0;
      bool all_rows = true;
      for (int l = 0; l < L; ++l) {
        CHECK_MSG(per[i].k[l] == ks[i][l], "%s step %d sample %d layer %d: k %d vs reference %d", label,
                  step, i, l, per[i].k[l], ks[i][l]);
        macs += static_cast<uint64_t>(ks[i][l]) * rf.layers[l].n_in * (l > 0 ? 2 : 1);
        all_rows = all_rows && ks[i][l] == rf.layers[l].n_out;
      }
      CHECK_MSG(per[i].backward_macs == macs, "%s step %d sample %d: backward MACs %llu vs %llu", label,
                step, i, static_cast<unsigned long long>(per[i].backward_macs),
                static_cast<unsigned long long>(macs));
      CHECK(per[i].forward_macs == 4 * 3 + 3 * 2);
      CHECK(per[i].skipped == (ks[i][L - 1] == 0));
      CHECK(per[i].num_layers == L);
      if (all_rows) CHECK(per[i].selection_ops == 0);  // k == n needs no selection
      if (!all_rows && !per[i].skipped) CHECK(per[i].selection_ops > 0);
      backward_total += per[i].backward_macs;
      selection_total += per[i].selection_ops;
    }
    CHECK(r.backward_macs == backward_total && r.selection_ops == selection_total);
    for (int l = 0; l < L; ++l) {
      CHECK_MSG(s.trainer.layer_ymax(l) == ref.ymax[l], "%s step %d layer %d: ymax %.9g vs %.9g", label,
                step, l, s.trainer.layer_ymax(l), ref.ymax[l]);
    }
    const double diff = MaxWeightDiff(tf.layers, rf.layers);
    worst = std::max(worst, diff);
    CHECK_MSG(diff <= 1e-6, "%s step %d: weights differ from the reference by %.3g", label, step, diff);
    trained_total += trained;
    skipped_total += num - trained;
  }
  printf("    %s: %d steps, %d trained, %d skipped, max weight diff %.3g\n", label, steps, trained_total,
         skipped_total, worst);
}

}  // namespace

TEST(MatchesReference) {
  TrainerOptions full;
  CompareWithReference(PlainModel(), full, 25, 1, 1, "Full");
  TrainerOptions topk;
  topk.override_policy = true;
  topk.policy.kind = PolicyKind::kStaticTopK;
  topk.policy.dense_output = false;  // this reference follows the papers: no exemption
  topk.policy.ratio = 0.5f;
  CompareWithReference(PlainModel(), topk, 25, 1, 2, "StaticTopK(0.5)");
  TrainerOptions tp;
  tp.override_policy = true;
  tp.policy.kind = PolicyKind::kTinyProp;
  tp.policy.dense_output = false;  // this reference follows the papers: no exemption
  tp.policy.ymax_decay = 0.9f;
  CompareWithReference(PlainModel(), tp, 40, 1, 3, "TinyProp(decay 0.9)");
  TrainerOptions v2;
  v2.override_policy = true;
  v2.policy.kind = PolicyKind::kTinyPropV2;
  v2.policy.dense_output = false;  // this reference follows the papers: no exemption
  CompareWithReference(PlainModel(), v2, 40, 1, 4, "TinyPropV2");
  TrainerOptions full_batch = full;
  full_batch.batch_size = 4;
  CompareWithReference(PlainModel(), full_batch, 20, 4, 5, "Full batch 4");
  TrainerOptions v2_batch = v2;
  v2_batch.batch_size = 5;
  CompareWithReference(PlainModel(), v2_batch, 20, 5, 6, "TinyPropV2 batch 5");
  TrainerOptions tp_batch = tp;
  tp_batch.batch_size = 3;
  CompareWithReference(PlainModel(), tp_batch, 20, 3, 7, "TinyProp batch 3");
}

TEST(MomentumMatchesReference) {
  const Model momentum = MomentumModel();
  Bytes m(momentum);
  const ModelFacts f = ReadFacts(m.data(), m.size());
  CHECK(f.ok);
  CHECK(f.momentum == 0.9f && f.weight_decay == 0.01f && f.schedule == 1 && f.decay_steps == 100 &&
        f.warmup_steps == 5 && f.batch_size == 4);
  CHECK_NEAR(f.lr, 0.1, 1e-7);
  CHECK_NEAR(f.alpha, 0.1, 1e-7);
  CHECK_NEAR(f.warmup_initial, 0.01, 1e-9);
  TrainerOptions plan_defaults;  // batch 4 from the plan: accumulated updates
  CompareWithReference(MomentumModel(), plan_defaults, 30, 4, 11, "momentum+decay+cosine batch 4");
  TrainerOptions direct;
  direct.batch_size = 1;  // direct updates of every row (momentum)
  CompareWithReference(MomentumModel(), direct, 30, 1, 12, "momentum+decay+cosine batch 1");
  TrainerOptions sparse = direct;
  sparse.override_policy = true;
  sparse.policy.kind = PolicyKind::kStaticTopK;
  sparse.policy.dense_output = false;  // this reference follows the papers: no exemption
  sparse.policy.ratio = 0.34f;
  CompareWithReference(MomentumModel(), sparse, 30, 1, 13, "momentum StaticTopK(0.34) batch 1");
  TrainerOptions sparse_batch = sparse;
  sparse_batch.batch_size = 4;
  CompareWithReference(MomentumModel(), sparse_batch, 30, 4, 14, "momentum StaticTopK(0.34) batch 4");
  // The schedule the trainer follows, against float64 Keras.
  Session s(MomentumModel(), direct);
  CHECK_STATUS(s.init, Status::kOk);
  tflm_train::StepResult r;
  const float x[4] = {0.1f, 0.2f, 0.3f, 0.4f}, y = 1.0f;
  for (int step = 0; step < 120; ++step) {
    const double want = ReferenceRate(f.lr, step, 100, 5, f.alpha, f.warmup_initial);
    CHECK_MSG(fabs(s.trainer.LearningRate() - want) <= 1e-6 * want, "step %d: %.9g vs %.9g", step,
              s.trainer.LearningRate(), want);
    CHECK_STATUS(s.trainer.TrainStep(x, 4, &y, 1, 1, &r, nullptr), Status::kOk);
  }
}

int main() { return test::RunAll(); }
