// Lays the arena out after the network's bookkeeping: the activations backward
// reads get their own storage, the others share one region used from both ends in
// turn; then the per-sample error region, per-layer gradient and momentum buffers,
// and the top-k scratch. The same routine measures (with a measuring allocator)
// and commits, so the measured size is exactly what the layout takes.
#ifndef TFLM_TRAIN_ARENA_PLANNER_H_
#define TFLM_TRAIN_ARENA_PLANNER_H_

#include "arena_allocator.h"
#include "message.h"
#include "network.h"
#include "tflm_train/trainer.h"

namespace tflm_train {

struct PlannerOptions {
  bool accumulate;  // batch size > 1: every layer accumulates into gradient buffers
  bool momentum;    // layers keep velocities
};

// Fills the report's activation, gradient, optimizer and scratch bytes and, when
// `a` commits, every buffer pointer of the network and its layers.
Status PlanArena(Network* net, const PlannerOptions& options, ArenaAllocator* a, ArenaReport* report,
                 Message* why);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_ARENA_PLANNER_H_
