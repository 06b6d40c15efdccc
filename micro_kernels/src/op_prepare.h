// Per-op validation and set-up (TFLM's "prepare"): checks one plan op against
// its tensors and fills the op record's shapes, geometry and weight pointers.
// Activation and gradient pointers are filled later, by the arena layout.
#ifndef TFLM_TRAIN_OP_PREPARE_H_
#define TFLM_TRAIN_OP_PREPARE_H_

#include <stdint.h>

#include "message.h"
#include "model_reader.h"
#include "trainer_internal.h"
#include "tflm_train/status.h"

namespace tflm_train {

// Validates op `index` of the plan and fills `r` (kind, act, sizes, geometry,
// fan_in, weight counts and pointers into `model`). On failure writes why to `m`.
Status PrepareOp(const ModelView& view, uint8_t* model, int index, OpRuntime* r, Message* m);

// Number of activation tensors op `op` reads (2 for Add, else 1).
int OpInputCount(const plan::Op* op);

// Whether the op's backward reads its own output (a fused or standalone activation).
bool BackwardReadsOutput(const plan::Op* op);

}  // namespace tflm_train

#endif  // TFLM_TRAIN_OP_PREPARE_H_
