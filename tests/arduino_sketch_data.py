"""Reads an Arduino example's data files (arduino/examples/<Sketch>/model_data.cpp/.h,
samples.cpp) back into Python, for comparing the sketch's output with the host trainer:
the values the firmware was compiled with, not a second copy of them."""

import re
from pathlib import Path

import numpy as np

_ARRAY = re.compile(r"const float (\w+)\[[^=]*=\s*\{(.*?)\};", re.S)


class ExampleData:
    def __init__(self, folder):
        folder = Path(folder)
        source = (folder / "model_data.cpp").read_text()
        body = source[source.index("g_model[] = {"):source.index("};")]
        self.model = bytes(int(h, 16) for h in re.findall(r"0x([0-9a-f]{2})", body))
        length = int(re.search(r"g_model_len = (\d+);", source).group(1))
        assert len(self.model) == length, (len(self.model), length)
        header = (folder / "model_data.h").read_text()
        shape = re.search(r"g_model_input_shape\[\] = \{([^}]*)\}", header).group(1)
        self.input_shape = tuple(int(d) for d in shape.split(","))[1:]
        self._arrays = {}
        for name, values in _ARRAY.findall((folder / "samples.cpp").read_text()):
            numbers = re.findall(r"-?\d+\.\d*(?:e-?\d+)?f", values)
            self._arrays[name] = np.array([float(v[:-1]) for v in numbers], np.float32)

    def arrays(self, prefix):
        """(samples shaped (n, *input shape), labels (n,)), float32."""
        labels = self._arrays[f"{prefix}_labels"]
        samples = self._arrays[f"{prefix}_samples"].reshape((len(labels),) + self.input_shape)
        return samples, labels
