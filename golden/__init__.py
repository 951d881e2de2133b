"""spinpim's golden model: pure numpy, bit-exact statement of what the hardware computes.

Imports neither amaranth, cocotb nor torch, and nothing else of spinpim's.
"""

from . import addnet, layers, model, pim
from .layers import (adder_conv2d, adder_linear, avg_pool2d, max_pool2d, mul_conv2d, mul_linear,
                     relu, requantize)
from .model import (Layer, Model, ModelFormatError, accuracy, bundled_model_path, infer_float,
                    infer_int, load_model, make_model, save_model)

__all__ = [
    "addnet", "layers", "model", "pim",
    "adder_conv2d", "adder_linear", "avg_pool2d", "max_pool2d", "mul_conv2d", "mul_linear",
    "relu", "requantize",
    "Layer", "Model", "ModelFormatError", "accuracy", "bundled_model_path", "infer_float",
    "infer_int", "load_model", "make_model", "save_model",
]
