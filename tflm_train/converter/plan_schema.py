"""Generated from schema/training_plan.fbs by scripts/generate_schema_code.py; do not edit."""

import enum

FILE_IDENTIFIER = b"TTPL"
ROOT = "TrainingPlan"


class LossKind(enum.IntEnum):
    SparseCategoricalCrossentropy = 0
    CategoricalCrossentropy = 1
    MeanSquaredError = 2
    BinaryCrossentropy = 3


class ScheduleKind(enum.IntEnum):
    Constant = 0
    CosineDecay = 1


class PolicyKind(enum.IntEnum):
    Full = 0
    StaticTopK = 1
    TinyProp = 2
    TinyPropV2 = 3
    LastLayers = 4
    BiasOnly = 5
    SparseUpdate = 6
    TinyTrain = 7


# Per table, in field-id order: (field, kind, default), kind being a scalar
# (FlatBuffers' name), an enum, 'string', a table or '[element]'.
TABLES = {
    'Layer': [
        ('op_index', 'int', -1),
        ('name', 'string', None),
        ('bias_op_index', 'int', -1),
        ('has_bias', 'bool', True),
    ],
    'Optimizer': [
        ('learning_rate', 'float', 0.01),
        ('momentum', 'float', 0.0),
        ('weight_decay', 'float', 0.0),
        ('schedule', 'ScheduleKind', 0),
        ('decay_steps', 'uint', 0),
        ('warmup_steps', 'uint', 0),
        ('alpha', 'float', 0.0),
        ('warmup_initial', 'float', 0.0),
    ],
    'Policy': [
        ('kind', 'PolicyKind', 0),
        ('ratio', 'float', 1.0),
        ('s_min', 'float', 0.1),
        ('s_max', 'float', 0.9),
        ('zeta', 'float', 0.5),
        ('ymax_decay', 'float', 1.0),
        ('d_min', 'float', 0.0),
        ('d_max', 'float', 1.0),
        ('beta', 'float', 1.0),
        ('tau', 'float', 0.5),
        ('dense_output', 'bool', False),
        ('budget', 'float', 0.0),
        ('budget_rate', 'float', 0.01),
        ('budget_gain', 'float', 0.05),
        ('last_layers', 'uint', 1),
        ('bias_layers', 'uint', 0),
        ('weight_ratios', '[float]', None),
        ('samples', 'uint', 10),
        ('mac_budget', 'float', 0.1),
        ('memory_budget', 'uint', 0),
    ],
    'MemoryPlan': [
        ('arena_bytes', 'uint', 0),
        ('activation_bytes', 'uint', 0),
        ('gradient_bytes', 'uint', 0),
        ('optimizer_bytes', 'uint', 0),
        ('scratch_bytes', 'uint', 0),
    ],
    'TrainingPlan': [
        ('version', 'uint', 0),
        ('layers', '[Layer]', None),
        ('loss', 'LossKind', 0),
        ('optimizer', 'Optimizer', None),
        ('policy', 'Policy', None),
        ('batch_size', 'uint', 1),
        ('memory', 'MemoryPlan', None),
        ('state_bytes', 'uint', 0),
    ],
}
# The scalar type of each enum.
ENUM_TYPES = {'LossKind': 'ubyte', 'ScheduleKind': 'ubyte', 'PolicyKind': 'ubyte'}
