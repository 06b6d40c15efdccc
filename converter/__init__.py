"""Keras -> trainable .tflite (installed as tflm_train.converter)."""

from .convert import convert
from .plan_reader import ModelInfo, read_model_info

__all__ = ["convert", "read_model_info", "ModelInfo"]
