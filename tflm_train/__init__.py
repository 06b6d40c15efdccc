"""tflm_train: train TensorFlow Lite Micro models on the microcontroller.

    model_bytes = tflm_train.convert(keras_model, loss="sparse_categorical_crossentropy",
                                     optimizer=tflm_train.SGD(0.05))
    trainer = tflm_train.MicroTrainer(model_bytes, policy=tflm_train.TinyPropV2())
    trainer.fit(x, y, epochs=3)
    trainer.save("trained.tflite")   # still runs in stock TFLM
"""

import importlib.util as _util

if _util.find_spec(__name__ + "._core") is None:
    raise ImportError(
        "tflm_train is being imported from its source tree, which lacks the compiled trainer "
        "(tflm_train._core). Install it (`bash scripts/setup.sh` or `pip install .`) and run from "
        "outside the checkout; run the tests with `pytest`, not `python -m pytest` (which puts the "
        "checkout first on sys.path).")

from ._quiet import quiet_tensorflow
from .callbacks import Callback, EarlyStopping, History, LambdaCallback
from .converter import ModelInfo, convert, convert_tflite, read_model_info
from .errors import (ArenaTooSmallError, BadInputError, BadLabelError, ConversionError, InvalidArgumentError,
                     InvalidDtypeError, InvalidModelError, InvalidPlanError, MissingPlanError, NonFiniteError, NotInitializedError,
                     StorageError, TrainerError, UnsupportedModelError, UnsupportedPlanVersionError)
from .optimizers import SGD, CosineDecay
from .policies import BiasOnly, Full, LastLayers, SparseUpdate, StaticTopK, TinyProp, TinyPropV2, TinyTrain
from .trainer import MicroTrainer, StepResult

__version__ = "0.1.0"

__all__ = [
    "convert", "convert_tflite", "read_model_info", "ModelInfo", "MicroTrainer", "StepResult", "SGD", "CosineDecay",
    "Full", "StaticTopK", "TinyProp", "TinyPropV2", "LastLayers", "BiasOnly", "SparseUpdate", "TinyTrain", "Callback", "History", "LambdaCallback", "EarlyStopping",
    "TrainerError", "ConversionError", "InvalidArgumentError", "InvalidDtypeError", "InvalidModelError", "MissingPlanError",
    "UnsupportedPlanVersionError", "InvalidPlanError", "UnsupportedModelError", "ArenaTooSmallError",
    "BadInputError", "BadLabelError", "NonFiniteError", "NotInitializedError", "StorageError", "quiet_tensorflow",
]
