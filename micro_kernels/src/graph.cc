#include "graph.h"

namespace tflm_train {

Status IndexGraph(Network* net, Message* why) {
  for (int t = 0; t < net->num_tensors; ++t) net->producer[t] = -1;
  for (int i = 0; i < net->num_ops; ++i) {
    OpRuntime& op = net->ops[i];
    bool needs_grad = op.layer >= 0;
    for (int j = 0; j < 2; ++j) {
      const int t = op.inputs[j];
      op.input_root[j] = -1;
      if (t < 0) continue;
      if (t != net->input && net->producer[t] < 0) {
        why->Add("operator ").Add(i).Add(" reads tensor ").Add(t).Add(" before any operator writes it");
        return Status::kInvalidModel;
      }
      const int producer = net->producer[t];
      op.input_root[j] = producer < 0 ? -1 : net->ops[producer].output_root;
      if (producer >= 0 && net->ops[producer].needs_grad) needs_grad = true;
    }
    if (op.output == net->input || net->producer[op.output] >= 0 || op.output == op.inputs[0] ||
        op.output == op.inputs[1]) {
      why->Add("operator ").Add(i).Add(" writes tensor ").Add(op.output).Add(", which already has a value");
      return Status::kInvalidModel;
    }
    net->producer[op.output] = i;
    op.output_root = Has(op, kAliasesInput) ? op.input_root[0] : i;
    op.needs_grad = needs_grad;
  }
  // Every output feeds a later operator or is the model's output: an operator whose
  // result nobody reads would still be trained (TFLite's converter leaves none).
  for (int i = 0; i < net->num_ops; ++i) {
    const int32_t t = net->ops[i].output;
    bool read = t == net->output;
    for (int j = i + 1; j < net->num_ops && !read; ++j) read = net->ops[j].inputs[0] == t || net->ops[j].inputs[1] == t;
    if (!read) {
      why->Add("operator ").Add(i).Add(" writes tensor ").Add(t).Add(", which no operator reads");
      return Status::kInvalidModel;
    }
  }
  return Status::kOk;
}

bool NeededByBackward(const Network& net, int root) {
  const OpRuntime& last = net.ops[net.num_ops - 1];
  // The loss reads the model output and, when it folds the last op, that op's input.
  if (root == last.output_root || (net.loss_op < net.num_ops && root == last.input_root[0])) return true;
  for (int j = 0; j < net.loss_op; ++j) {
    const OpRuntime& op = net.ops[j];
    if (!op.needs_grad) continue;  // no backward for this op
    const bool reads_output = ReadsOutputInBackward(op) || (net.keeps_layer_outputs && op.layer >= 0);
    if (reads_output && op.output_root == root) return true;
    if (ReadsInputInBackward(op) && op.input_root[0] == root) return true;
  }
  return false;
}

int LastReader(const Network& net, int root) {
  int last = -1;
  for (int j = 0; j < net.num_ops; ++j) {
    const OpRuntime& op = net.ops[j];
    if (Has(op, kAliasesInput)) continue;  // an alias, not a read
    for (int k = 0; k < 2; ++k) {
      if (op.inputs[k] >= 0 && op.input_root[k] == root) last = j;
    }
  }
  return last;
}

int NextWriter(const Network& net, int op) {
  for (int j = op + 1; j < net.num_ops; ++j) {
    if (!Has(net.ops[j], kAliasesInput)) return j;
  }
  return net.num_ops;
}

}  // namespace tflm_train
