"""Keras (or a plain float .tflite) -> trainable .tflite, and what a trainable .tflite holds."""

from .convert import convert, convert_tflite
from .model_info import ModelInfo, read_model_info

__all__ = ["convert", "convert_tflite", "read_model_info", "ModelInfo"]
