// The model reader, graph indexing (graph.h) and arena planning
// (arena_planner.h), below the Trainer: hand-built op records for the graph
// facts and its errors; the fixture models prepared through their op units for
// the planner, whose measure and commit must agree to the byte, with every
// buffer aligned, inside the arena, and apart from every buffer alive with it.
#include <stdint.h>
#include <string.h>

#include <memory>
#include <vector>

#include "arena_allocator.h"
#include "arena_planner.h"
#include "graph.h"
#include "model_reader.h"
#include "network.h"
#include "op_unit.h"
#include "trainer_fixture.h"

using namespace test;  // NOLINT: the fixture's names
namespace tt = tflm_train;
namespace tfl = tflm_train::tflite;

namespace {

// A network over vectors, for the graph functions.
struct Graph {
  std::vector<tt::OpRuntime> ops;
  std::vector<float*> data, grad;
  std::vector<int32_t> producer;
  tt::Network net;
  Graph(int tensors, int input) : data(tensors), grad(tensors), producer(tensors) {
    net.num_tensors = tensors;
    net.input = input;
  }
  void Add(tfl::BuiltinOperator code, int in, int out, int layer = -1, int in2 = -1) {
    tt::OpRuntime op{};
    op.unit = tt::FindOpUnit(static_cast<int32_t>(code));
    op.index = static_cast<int32_t>(ops.size());
    op.layer = layer;
    op.inputs[0] = in;
    op.inputs[1] = in2;
    op.output = out;
    op.n_in = op.n_out = 4;
    ops.push_back(op);
  }
  tt::Status Index(int loss_op) {
    net.ops = ops.data();
    net.num_ops = static_cast<int32_t>(ops.size());
    net.tensor_data = data.data();
    net.tensor_grad = grad.data();
    net.producer = producer.data();
    net.loss_op = loss_op;
    net.output = ops.empty() ? -1 : ops.back().output;  // the last op writes the model output
    char buffer[200];
    tt::Message why(buffer, sizeof(buffer));
    return tt::IndexGraph(&net, &why);
  }
};

// A fixture model prepared as Init does it, through the op units, with its
// trainable layers marked from the plan; the loss folds the final SOFTMAX.
struct Prepared {
  Bytes model;
  std::unique_ptr<tt::ModelView> view;
  std::vector<tt::OpRuntime> ops;
  std::vector<tt::TrainableLayer> layers;
  std::vector<float*> data, grad;
  std::vector<int32_t> producer;
  tt::Network net;
  bool ok = false;

  explicit Prepared(const Model& src) : model(src), view(new tt::ModelView(model.data(), model.size())) {
    char buffer[200];
    tt::Message why(buffer, sizeof(buffer));
    if (tt::ReadModel(view.get(), &why) != Status::kOk) return;
    const int num_ops = static_cast<int>(view->num_operators());
    ops.resize(num_ops);
    for (int i = 0; i < num_ops; ++i) {
      tt::OpRuntime& op = ops[i];
      op = tt::OpRuntime();
      op.unit = tt::FindOpUnit(view->BuiltinCode(view->op(i)));
      op.index = i;
      op.layer = -1;
      op.inputs[0] = op.inputs[1] = -1;
      const tt::PrepareContext ctx{*view, model.data(), i, view->op(i), &why, nullptr};
      if (op.unit == nullptr || op.unit->prepare(ctx, &op) != Status::kOk) return;
    }
    const uint32_t num_layers = view->plan.layers().size();
    layers.resize(num_layers);
    for (uint32_t l = 0; l < num_layers; ++l) {
      const int32_t index = view->plan.layers(l).op_index();
      tt::OpRuntime& op = ops[index];
      op.layer = static_cast<int32_t>(l);
      tt::TrainableLayer& layer = layers[l];
      layer = tt::TrainableLayer();
      layer.op = index;
      layer.position = static_cast<int32_t>(num_layers - 1 - l);
      layer.n_out = op.n_out;
      layer.weights = op.weights;
      layer.n_weights = op.n_weights;
      layer.bias = op.bias;
      layer.n_bias = op.n_bias;
    }
    const int tensors = static_cast<int>(view->num_tensors());
    data.resize(tensors);
    grad.resize(tensors);
    producer.resize(tensors);
    net.ops = ops.data();
    net.num_ops = num_ops;
    net.layers = layers.data();
    net.num_layers = static_cast<int32_t>(num_layers);
    net.tensor_data = data.data();
    net.tensor_grad = grad.data();
    net.producer = producer.data();
    net.num_tensors = tensors;
    net.input = view->subgraph.inputs().Get<int32_t>(0);
    net.output = view->subgraph.outputs().Get<int32_t>(0);
    tt::Dims in, out;
    if (!tt::TensorDims(*view, net.input, &in) || !tt::TensorDims(*view, net.output, &out)) return;
    net.input_size = static_cast<size_t>(tt::Elements(in));
    net.output_size = static_cast<size_t>(tt::Elements(out));
    if (tt::IndexGraph(&net, &why) != Status::kOk) return;
    net.loss_op = num_ops - 1;
    ok = ops[num_ops - 1].unit->code == tfl::BuiltinOperator::SOFTMAX;
  }
};

struct Region {
  const uint8_t* start;
  size_t bytes;
  int first, last;  // ops during which it is alive (activations); everything else: always
  const char* what;
  int index;
};

bool Overlap(const Region& a, const Region& b) {
  return a.bytes > 0 && b.bytes > 0 && a.start < b.start + b.bytes && b.start < a.start + a.bytes;
}

constexpr int kForever = 1 << 30;

// Plans `net` into an arena of exactly the measured size and checks the layout;
// returns the pairs of buffers that share storage at different times.
int CheckLayout(const char* name, tt::Network* network, const tt::PlannerOptions& options, tt::ArenaReport* report) {
  tt::Network& net = *network;
  char buffer[200];
  tt::Message why(buffer, sizeof(buffer));
  tt::ArenaAllocator measure(nullptr, 0);
  tt::ArenaReport measured;
  CHECK_STATUS(tt::PlanArena(&net, options, &measure, &measured, &why), Status::kOk);
  Bytes arena(measure.used());
  tt::ArenaAllocator commit(arena.data(), arena.size());
  tt::ArenaReport committed;
  CHECK_STATUS(tt::PlanArena(&net, options, &commit, &committed, &why), Status::kOk);
  CHECK_MSG(commit.used() == measure.used() && !commit.overflow(), "%s: measured %zu, committed %zu", name,
            measure.used(), commit.used());
  CHECK(measured.activation_bytes == committed.activation_bytes && measured.gradient_bytes == committed.gradient_bytes &&
        measured.optimizer_bytes == committed.optimizer_bytes && measured.scratch_bytes == committed.scratch_bytes);
  CHECK(measured.activation_bytes + measured.gradient_bytes + measured.optimizer_bytes + measured.scratch_bytes ==
        measure.used());
  *report = measured;

  std::vector<Region> regions;
  auto add = [&](const void* ptr, size_t bytes, int first, int last, const char* what, int index) {
    if (bytes == 0) return;
    const uint8_t* start = static_cast<const uint8_t*>(ptr);
    CHECK_MSG(start != nullptr, "%s: %s %d has no storage", name, what, index);
    // Blocks start 16-byte aligned; an activation placed at the top end of the
    // shared region is float-aligned only, which is all the kernels need.
    const uintptr_t alignment = strcmp(what, "activation of op") == 0 ? alignof(float) : 16;
    CHECK_MSG((reinterpret_cast<uintptr_t>(start) & (alignment - 1)) == 0, "%s: %s %d is not %d-byte aligned", name,
              what, index, static_cast<int>(alignment));
    CHECK_MSG(start >= arena.data() && start + bytes <= arena.data() + arena.size(), "%s: %s %d leaves the arena",
              name, what, index);
    regions.push_back(Region{start, bytes, first, last, what, index});
  };
  // Activations, by storage root (-1: the model input), alive from the op that
  // writes them to the last that reads them; to the end when backward reads them.
  for (int root = -1; root < net.num_ops; ++root) {
    if (root >= 0 && Has(net.ops[root], tt::kAliasesInput)) continue;
    const bool kept = tt::NeededByBackward(net, root);
    const int reader = tt::LastReader(net, root);
    const int last = kept ? kForever : (reader > root ? reader : root);
    const size_t floats = root < 0 ? net.input_size : static_cast<size_t>(net.ops[root].n_out);
    const float* storage = root < 0 ? net.tensor_data[net.input] : net.tensor_data[net.ops[root].output];
    add(storage, floats * sizeof(float), root, last, "activation of op", root);
  }
  // Everything below is alive during the whole step.
  int errors = 0;
  for (int i = 0; i < net.loss_op; ++i) {
    const tt::OpRuntime& op = net.ops[i];
    CHECK_MSG((net.tensor_grad[op.output] != nullptr) == op.needs_grad, "%s: op %d error buffer", name, i);
    if (!op.needs_grad || Has(op, tt::kAliasesInput)) continue;
    const float* g = net.tensor_grad[op.output];
    CHECK(g >= net.error_region && g + op.n_out <= net.error_region + net.error_region_floats);
    add(g, static_cast<size_t>(op.n_out) * sizeof(float), -1, kForever, "error of op", i);
    ++errors;
  }
  CHECK(errors > 0 && net.tensor_grad[net.ops[net.loss_op - 1].output] != nullptr);
  int32_t widest = 0;
  for (int l = 0; l < net.num_layers; ++l) {
    const tt::TrainableLayer& layer = net.layers[l];
    const bool fc = net.ops[layer.op].unit->code == tfl::BuiltinOperator::FULLY_CONNECTED;
    CHECK_MSG(layer.direct == (fc && !options.accumulate), "%s: layer %d direct %d", name, l, layer.direct);
    CHECK((layer.rows != nullptr) == layer.direct && (layer.weight_grad == nullptr) == layer.direct);
    CHECK((layer.weight_velocity != nullptr) == options.momentum);
    const size_t w = static_cast<size_t>(layer.n_weights) * sizeof(float);
    const size_t b = static_cast<size_t>(layer.n_bias) * sizeof(float);
    add(layer.rows, layer.rows ? static_cast<size_t>(layer.n_out) * 4 : 0, -1, kForever, "kept rows of layer", l);
    add(layer.weight_grad, layer.weight_grad ? w : 0, -1, kForever, "weight gradient of layer", l);
    add(layer.bias_grad, layer.bias_grad ? b : 0, -1, kForever, "bias gradient of layer", l);
    add(layer.weight_velocity, layer.weight_velocity ? w : 0, -1, kForever, "weight velocity of layer", l);
    add(layer.bias_velocity, layer.bias_velocity ? b : 0, -1, kForever, "bias velocity of layer", l);
    for (size_t i = 0; layer.weight_grad != nullptr && i < static_cast<size_t>(layer.n_weights); ++i) {
      CHECK(layer.weight_grad[i] == 0.0f);
    }
    if (layer.n_out > widest) widest = layer.n_out;
  }
  add(net.select_index, static_cast<size_t>(widest) * 4, -1, kForever, "top-k index scratch", 0);
  add(net.select_mask, static_cast<size_t>(widest), -1, kForever, "top-k mask scratch", 0);
  add(net.select_rows, static_cast<size_t>(widest) * 4, -1, kForever, "top-k rows scratch", 0);
  int shared = 0;
  for (size_t i = 0; i < regions.size(); ++i) {
    for (size_t j = i + 1; j < regions.size(); ++j) {
      const Region& a = regions[i];
      const Region& b = regions[j];
      const bool together = a.first <= b.last && b.first <= a.last;
      if (!Overlap(a, b)) continue;
      if (!together) {
        ++shared;
        continue;
      }
      CHECK_MSG(false, "%s: %s %d and %s %d overlap while both are alive", name, a.what, a.index, b.what, b.index);
    }
  }
  // Op records point at the planned storage.
  for (int i = 0; i < net.num_ops; ++i) {
    const tt::OpRuntime& op = net.ops[i];
    CHECK(op.out == net.tensor_data[op.output] && op.d_out == net.tensor_grad[op.output]);
    CHECK(op.in == (op.inputs[0] >= 0 ? net.tensor_data[op.inputs[0]] : nullptr));
  }
  printf("    %s: %zu bytes planned, %zu regions, %d pairs share storage at different times\n", name, measure.used(),
         regions.size(), shared);
  return shared;
}

}  // namespace

TEST(ReadsTheFixtureModels) {
  for (const Model& src : {PlainModel(), MomentumModel(), CnnModel()}) {
    Bytes m(src);
    tt::ModelView view(m.data(), m.size());
    char buffer[200];
    tt::Message why(buffer, sizeof(buffer));
    CHECK_STATUS(tt::ReadModel(&view, &why), Status::kOk);
    CHECK(view.plan.version() == tt::kPlanVersion && view.plan.layers().size() >= 2);
    CHECK(view.state != nullptr && view.state_size == view.plan.state_bytes());
    CHECK(view.state >= m.data() && view.state + view.state_size <= m.data() + m.size());
    CHECK(view.plan.memory().present() && view.plan.memory().arena_bytes() > 0);
    for (uint32_t l = 0; l < view.plan.layers().size(); ++l) {
      const tfl::Operator op = view.op(view.plan.layers(l).op_index());
      CHECK(tt::FindOpUnit(view.BuiltinCode(op)) != nullptr);
      CHECK(view.plan.layers(l).name() != nullptr);
    }
    CHECK(!view.tensor(-1).present() && !view.tensor(static_cast<int>(view.num_tensors())).present());
    tt::Dims d;
    CHECK(!tt::TensorDims(view, -1, &d) && tt::TensorType(view, 100000) == -1);
  }
  CHECK(tt::FindOpUnit(-1) == nullptr && tt::FindOpUnit(1000) == nullptr);
  CHECK(tt::FindOpUnit(98) == nullptr);  // LEAKY_RELU: not run
}

TEST(IndexesGraphFacts) {
  // input 0 -> FC (frozen) 1 -> RELU 2 -> FC (layer 0) 3 -> RESHAPE 4 -> SOFTMAX 5
  Graph g(6, 0);
  g.Add(tfl::BuiltinOperator::FULLY_CONNECTED, 0, 1);
  g.Add(tfl::BuiltinOperator::RELU, 1, 2);
  g.Add(tfl::BuiltinOperator::FULLY_CONNECTED, 2, 3, 0);
  g.Add(tfl::BuiltinOperator::RESHAPE, 3, 4);
  g.Add(tfl::BuiltinOperator::SOFTMAX, 4, 5);
  CHECK_STATUS(g.Index(4), Status::kOk);
  const tt::Network& net = g.net;
  CHECK(g.producer[0] == -1 && g.producer[1] == 0 && g.producer[3] == 2 && g.producer[5] == 4);
  CHECK(!g.ops[0].needs_grad && !g.ops[1].needs_grad);  // a frozen prefix: no backward
  CHECK(g.ops[2].needs_grad && g.ops[3].needs_grad && g.ops[4].needs_grad);
  CHECK(g.ops[0].input_root[0] == -1 && g.ops[1].input_root[0] == 0 && g.ops[2].input_root[0] == 1);
  CHECK(g.ops[3].output_root == 2 && g.ops[4].input_root[0] == 2);  // RESHAPE aliases op 2's storage
  CHECK(tt::LastReader(net, 0) == 1 && tt::LastReader(net, 2) == 4 && tt::LastReader(net, -1) == 0);
  CHECK(tt::LastReader(net, 4) == -1);
  // The loss folds the final SOFTMAX: it reads op 4's input, which aliases op 2's storage.
  CHECK(tt::NextWriter(net, 2) == 4 && tt::NextWriter(net, 0) == 1 && tt::NextWriter(net, 4) == 5);
  CHECK(tt::NeededByBackward(net, 2));   // the logits (through the alias)
  CHECK(tt::NeededByBackward(net, 4));   // the output
  CHECK(tt::NeededByBackward(net, 1));   // the trainable layer's input
  CHECK(!tt::NeededByBackward(net, 0));  // read only by the frozen RELU
  CHECK(!tt::NeededByBackward(net, -1)); // read only by the frozen first layer
}

TEST(IndexRejectsBadGraphs) {
  {
    Graph g(3, 0);  // reads tensor 2 before anything writes it
    g.Add(tfl::BuiltinOperator::RELU, 2, 1);
    CHECK_STATUS(g.Index(1), Status::kInvalidModel);
  }
  {
    Graph g(3, 0);  // writes the model input
    g.Add(tfl::BuiltinOperator::RELU, 1, 0);
    CHECK_STATUS(g.Index(1), Status::kInvalidModel);
  }
  {
    Graph g(3, 0);  // writes tensor 1 twice
    g.Add(tfl::BuiltinOperator::RELU, 0, 1);
    g.Add(tfl::BuiltinOperator::RELU, 0, 1);
    CHECK_STATUS(g.Index(2), Status::kInvalidModel);
  }
  {
    Graph g(3, 0);  // writes its own input
    g.Add(tfl::BuiltinOperator::RELU, 0, 1);
    g.Add(tfl::BuiltinOperator::ADD, 1, 1, -1, 0);
    CHECK_STATUS(g.Index(2), Status::kInvalidModel);
  }
  {
    Graph g(4, 0);  // a residual ADD of two activations: both roots are read by it
    g.Add(tfl::BuiltinOperator::FULLY_CONNECTED, 0, 1, 0);
    g.Add(tfl::BuiltinOperator::RELU, 1, 2);
    g.Add(tfl::BuiltinOperator::ADD, 2, 3, -1, 1);
    CHECK_STATUS(g.Index(3), Status::kOk);
    CHECK(g.ops[2].input_root[0] == 1 && g.ops[2].input_root[1] == 0 && g.ops[2].needs_grad);
    CHECK(tt::LastReader(g.net, 0) == 2);
  }
  {
    Graph g(4, 0);  // op 0's output is read by nobody (and is not the model output)
    g.Add(tfl::BuiltinOperator::RELU, 0, 1);
    g.Add(tfl::BuiltinOperator::RELU, 0, 2);
    g.Add(tfl::BuiltinOperator::RELU, 2, 3);
    CHECK_STATUS(g.Index(3), Status::kInvalidModel);
  }
}

TEST(PlansFixtureArenas) {
  struct Case {
    const char* name;
    Model model;
    bool accumulate, momentum;
    TrainerOptions options;
  };
  TrainerOptions batch4, batch1;
  batch4.batch_size = 4;
  batch1.batch_size = 1;
  const Case cases[] = {
      {"plain batch 1", PlainModel(), false, false, TrainerOptions()},
      {"plain batch 4", PlainModel(), true, false, batch4},
      {"momentum batch 4", MomentumModel(), true, true, TrainerOptions()},
      {"momentum batch 1", MomentumModel(), false, true, batch1},
      {"cnn batch 1", CnnModel(), false, false, TrainerOptions()},
      {"cnn batch 4", CnnModel(), true, false, batch4},
  };
  for (const Case& c : cases) {
    Prepared p(c.model);
    CHECK_MSG(p.ok, "%s: could not prepare the fixture", c.name);
    if (!p.ok) continue;
    tt::ArenaReport planned;
    CheckLayout(c.name, &p.net, tt::PlannerOptions{c.accumulate, c.momentum}, &planned);
    // The Trainer plans the same sections after its bookkeeping.
    Session s(c.model, c.options);
    CHECK_STATUS(s.init, Status::kOk);
    const tt::ArenaReport& r = s.trainer.arena_report();
    CHECK_MSG(r.activation_bytes == planned.activation_bytes && r.gradient_bytes == planned.gradient_bytes &&
                  r.optimizer_bytes == planned.optimizer_bytes && r.scratch_bytes == planned.scratch_bytes &&
                  r.required_bytes == r.bookkeeping_bytes + planned.activation_bytes + planned.gradient_bytes +
                                          planned.optimizer_bytes + planned.scratch_bytes,
              "%s: the trainer's report differs from the planner's", c.name);
  }
}

// A frozen prefix: its activations are not read by backward, so they share one
// region used from both ends in turn.
TEST(PlansTransientActivations) {
  // input 0 (6) -> FC 1 (10) -> RELU 2 (10) -> FC 3 (7) -> RELU 4 (7) -> FC layer 0, 5 (3) -> SOFTMAX 6 (3)
  Graph g(7, 0);
  const int sizes[] = {10, 10, 7, 7, 3, 3};
  g.Add(tfl::BuiltinOperator::FULLY_CONNECTED, 0, 1);
  g.Add(tfl::BuiltinOperator::RELU, 1, 2);
  g.Add(tfl::BuiltinOperator::FULLY_CONNECTED, 2, 3);
  g.Add(tfl::BuiltinOperator::RELU, 3, 4);
  g.Add(tfl::BuiltinOperator::FULLY_CONNECTED, 4, 5, 0);
  g.Add(tfl::BuiltinOperator::SOFTMAX, 5, 6);
  for (int i = 0; i < 6; ++i) g.ops[i].n_out = sizes[i];
  tt::TrainableLayer layer{};
  layer.op = 4;
  layer.n_out = 3;
  layer.n_weights = 21;
  layer.n_bias = 3;
  g.net.layers = &layer;
  g.net.num_layers = 1;
  g.net.input_size = 6;
  g.net.output = 6;
  CHECK_STATUS(g.Index(5), Status::kOk);
  CHECK(!tt::NeededByBackward(g.net, 0) && !tt::NeededByBackward(g.net, 1) && !tt::NeededByBackward(g.net, 2));
  CHECK(tt::NeededByBackward(g.net, 3));  // the trainable layer's input
  tt::ArenaReport report;
  const int shared = CheckLayout("frozen prefix", &g.net, tt::PlannerOptions{false, false}, &report);
  CHECK(shared > 0);
  // The shared region holds the largest pair alive together: 10 + 10 floats
  // (op 1 reads op 0's output while writing its own), not 10 + 10 + 7.
  CHECK(report.activation_bytes == 16 * ((6 * 4 + 15) / 16) + 16 * ((7 * 4 + 15) / 16) +
                                       16 * ((3 * 4 + 15) / 16) * 2 + 16 * ((20 * 4 + 15) / 16));
}

TEST(ArenaAllocatorMeasuresAndAligns) {
  tt::ArenaAllocator m(nullptr, 0);
  CHECK(m.measuring() && m.Take<float>(3) == nullptr && m.used() == 12);
  CHECK(m.Take<uint8_t>(1) == nullptr && m.used() == 17);  // each block starts 16-aligned
  m.Align();
  CHECK(m.used() == 32 && !m.overflow());
  CHECK(m.Take<double>(~size_t{0} / 4) == nullptr && m.overflow());
  Bytes arena(64);
  tt::ArenaAllocator a(arena.data(), 40);
  float* f = a.Take<float>(3);
  uint8_t* b = a.Take<uint8_t>(8);
  CHECK(f == reinterpret_cast<float*>(arena.data()) && b == arena.data() + 16);
  CHECK(a.Take<uint8_t>(16) == nullptr && a.used() == 48 && !a.overflow());  // past the end: measured only
  tt::ArenaAllocator after(nullptr, 0, 100);  // continues another layout
  after.Take<int32_t>(1);
  CHECK(after.used() == 116);
}

int main() { return test::RunAll(); }
