// Graph facts the planner and the step code use, computed once at Init from the
// prepared ops: who writes each tensor, which storage ("root": the op whose output
// holds it, aliases resolved, -1 for the model input) each op reads and writes,
// which ops backward visits, and how long each activation lives.
#ifndef TFLM_TRAIN_GRAPH_H_
#define TFLM_TRAIN_GRAPH_H_

#include "message.h"
#include "network.h"
#include "tflm_train/status.h"

namespace tflm_train {

// Fills producer, the roots and needs_grad (an op's output depends on a trainable
// layer). Checks that every activation is written once, before it is read.
Status IndexGraph(Network* net, Message* why);

// Whether the storage of `root` must survive the forward pass: backward (or the loss) reads it.
bool NeededByBackward(const Network& net, int root);
// The last op that reads the storage of `root` (-1 if none).
int LastReader(const Network& net, int root);
// The first op after `op` that writes storage of its own (num_ops if none).
int NextWriter(const Network& net, int op);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_GRAPH_H_
