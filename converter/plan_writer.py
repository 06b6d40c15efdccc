"""Serializes a training plan with the generated FlatBuffers code (schema:
converter/schema/training_plan.fbs)."""

import flatbuffers

from ..plan import MemoryPlan, Op, Optimizer, Policy, TrainingPlan

PLAN_VERSION = 1
PLAN_METADATA_NAME = "tflm_train"
STATE_METADATA_NAME = "tflm_train_state"  # room for the training state; all zeros = fresh
LOSSES = {
    "sparse_categorical_crossentropy": 0,
    "categorical_crossentropy": 1,
    "mean_squared_error": 2,
    "binary_crossentropy": 3,
}


def _int_vector(builder, values):
    builder.StartVector(4, len(values), 4)
    for v in reversed(values):
        builder.PrependInt32(int(v))
    return builder.EndVector()


def build_plan(ops, input_tensor, output_tensor, loss, sgd, policy, batch_size, memory=None):
    """Plan flatbuffer bytes. `ops` are tflite_graph.PlanOp; `loss` a key of LOSSES."""
    b = flatbuffers.Builder(1024)
    op_offsets = []
    for op in ops:
        name = b.CreateString(op.name)
        inputs = _int_vector(b, op.inputs)
        pads = None
        if op.pad_before is not None:  # Pad only
            pads = _int_vector(b, op.pad_before), _int_vector(b, op.pad_after)
        Op.Start(b)
        Op.AddKind(b, op.kind)
        Op.AddInputs(b, inputs)
        Op.AddOutput(b, op.output)
        Op.AddWeights(b, op.weights)
        Op.AddBias(b, op.bias)
        Op.AddActivation(b, op.activation)
        Op.AddTrainable(b, op.trainable)
        Op.AddName(b, name)
        Op.AddStrideH(b, op.stride_h)
        Op.AddStrideW(b, op.stride_w)
        Op.AddDilationH(b, op.dilation_h)
        Op.AddDilationW(b, op.dilation_w)
        Op.AddPadding(b, op.padding)
        Op.AddFilterH(b, op.filter_h)
        Op.AddFilterW(b, op.filter_w)
        Op.AddDepthMultiplier(b, op.depth_multiplier)
        if pads is not None:
            Op.AddPadBefore(b, pads[0])
            Op.AddPadAfter(b, pads[1])
        op_offsets.append(Op.End(b))
    TrainingPlan.StartOpsVector(b, len(op_offsets))
    for offset in reversed(op_offsets):
        b.PrependUOffsetTRelative(offset)
    ops_vector = b.EndVector()

    Optimizer.Start(b)
    Optimizer.AddLearningRate(b, sgd.learning_rate)
    Optimizer.AddMomentum(b, sgd.momentum)
    Optimizer.AddWeightDecay(b, sgd.weight_decay)
    if sgd.schedule is not None:
        Optimizer.AddSchedule(b, 1)
        Optimizer.AddDecaySteps(b, sgd.schedule.decay_steps)
        Optimizer.AddWarmupSteps(b, sgd.schedule.warmup_steps)
        Optimizer.AddAlpha(b, sgd.schedule.alpha)
        Optimizer.AddWarmupInitial(b, sgd.schedule.warmup_initial)
    optimizer = Optimizer.End(b)

    values = policy.to_dict()
    Policy.Start(b)
    Policy.AddKind(b, values["kind"])
    for key in ("ratio", "s_min", "s_max", "zeta", "ymax_decay", "d_min", "d_max", "beta", "tau"):
        getattr(Policy, "Add" + "".join(part.capitalize() for part in key.split("_")))(b, values[key])
    policy_offset = Policy.End(b)

    memory_offset = None
    if memory is not None:
        MemoryPlan.Start(b)
        MemoryPlan.AddArenaBytes(b, memory["required_bytes"])
        MemoryPlan.AddActivationBytes(b, memory["activation_bytes"])
        MemoryPlan.AddGradientBytes(b, memory["gradient_bytes"])
        MemoryPlan.AddOptimizerBytes(b, memory["optimizer_bytes"])
        MemoryPlan.AddScratchBytes(b, memory["scratch_bytes"])
        memory_offset = MemoryPlan.End(b)

    TrainingPlan.Start(b)
    TrainingPlan.AddVersion(b, PLAN_VERSION)
    TrainingPlan.AddOps(b, ops_vector)
    TrainingPlan.AddInput(b, input_tensor)
    TrainingPlan.AddOutput(b, output_tensor)
    TrainingPlan.AddLoss(b, LOSSES[loss])
    TrainingPlan.AddOptimizer(b, optimizer)
    TrainingPlan.AddPolicy(b, policy_offset)
    TrainingPlan.AddBatchSize(b, batch_size)
    if memory_offset is not None:
        TrainingPlan.AddMemory(b, memory_offset)
    b.Finish(TrainingPlan.End(b), file_identifier=b"TTPL")
    return bytes(b.Output())
