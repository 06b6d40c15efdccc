"""Serializes a training plan (schema/training_plan.fbs) with flatbuffers' Builder,
field by field from the schema's generated description (plan_schema.py): no
generated table code, and each field id and default is written down once."""

import flatbuffers

from . import plan_schema as S

PLAN_VERSION = 3  # 3 appended Policy.dense_output; the C++ also reads 2
PLAN_METADATA_NAME = "tflm_train"
STATE_METADATA_NAME = "tflm_train_state"  # room for the training state; a zero first word = fresh
LOSSES = {
    "sparse_categorical_crossentropy": S.LossKind.SparseCategoricalCrossentropy,
    "categorical_crossentropy": S.LossKind.CategoricalCrossentropy,
    "mean_squared_error": S.LossKind.MeanSquaredError,
    "binary_crossentropy": S.LossKind.BinaryCrossentropy,
}
# FlatBuffers scalar -> the Builder's Prepend*Slot suffix.
_SLOTS = {"bool": "Bool", "byte": "Int8", "ubyte": "Uint8", "short": "Int16", "ushort": "Uint16", "int": "Int32",
          "uint": "Uint32", "long": "Int64", "ulong": "Uint64", "float": "Float32", "double": "Float64"}


def _table(builder, name, values):
    """Builds table `name` from a dict of field values (absent fields keep their
    default); nested tables are dicts, vectors of tables lists of dicts, vectors of
    4-byte scalars lists of numbers."""
    fields = S.TABLES[name]
    unknown = set(values) - {field for field, _, _ in fields}
    if unknown:
        raise ValueError(f"{name} has no field(s) {sorted(unknown)}")
    offsets = {}  # children are built before the table that refers to them
    for field, kind, _ in fields:
        value = values.get(field)
        if value is None:
            continue
        if kind == "string":
            offsets[field] = builder.CreateString(value)
        elif kind.startswith("[") and kind[1:-1] in _SLOTS:  # a vector of scalars
            scalar = kind[1:-1]
            builder.StartVector(4, len(value), 4)
            for item in reversed(value):
                getattr(builder, f"Prepend{_SLOTS[scalar]}")(item)
            offsets[field] = builder.EndVector()
        elif kind.startswith("["):
            children = [_table(builder, kind[1:-1], child) for child in value]
            builder.StartVector(4, len(children), 4)
            for child in reversed(children):
                builder.PrependUOffsetTRelative(child)
            offsets[field] = builder.EndVector()
        elif kind in S.TABLES:
            offsets[field] = _table(builder, kind, value)
    builder.StartObject(len(fields))
    for slot, (field, kind, default) in enumerate(fields):
        value = values.get(field)
        if field in offsets:
            builder.PrependUOffsetTRelativeSlot(slot, offsets[field], 0)
        elif value is not None:
            scalar = S.ENUM_TYPES.get(kind, kind)
            getattr(builder, f"Prepend{_SLOTS[scalar]}Slot")(slot, type(default)(value), default)
    return builder.EndObject()


def build_plan(layers, loss, sgd, policy, batch_size, memory=None, state_bytes=0):
    """Plan flatbuffer bytes.

    layers: dicts with op_index (the weight operator in subgraph 0), name, and
      optionally bias_op_index and has_bias (see the schema), in forward order;
    loss: a key of LOSSES; sgd: a tflm_train.SGD; policy: a tflm_train policy;
    memory: the C++ planner's ArenaReport (measure_arena) or None; state_bytes: the
      size of the training state.
    """
    plan = {
        "version": PLAN_VERSION,
        "layers": layers,
        "loss": int(LOSSES[loss]),
        "optimizer": {"learning_rate": sgd.learning_rate, "momentum": sgd.momentum,
                      "weight_decay": sgd.weight_decay},
        "policy": policy.to_dict(len(layers)),
        "batch_size": batch_size,
        "state_bytes": state_bytes,
    }
    if sgd.schedule is not None:
        plan["optimizer"].update(schedule=int(S.ScheduleKind.CosineDecay), decay_steps=sgd.schedule.decay_steps,
                                 warmup_steps=sgd.schedule.warmup_steps, alpha=sgd.schedule.alpha,
                                 warmup_initial=sgd.schedule.warmup_initial)
    if memory is not None:
        plan["memory"] = {"arena_bytes": memory.required_bytes, "activation_bytes": memory.activation_bytes,
                          "gradient_bytes": memory.gradient_bytes, "optimizer_bytes": memory.optimizer_bytes,
                          "scratch_bytes": memory.scratch_bytes}
    builder = flatbuffers.Builder(1024)
    builder.Finish(_table(builder, S.ROOT, plan), file_identifier=S.FILE_IDENTIFIER)
    return bytes(builder.Output())
