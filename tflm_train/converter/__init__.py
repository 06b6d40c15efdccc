"""Keras -> trainable .tflite, and what a trainable .tflite holds."""

from .convert import convert
from .model_info import ModelInfo, read_model_info

__all__ = ["convert", "read_model_info", "ModelInfo"]
