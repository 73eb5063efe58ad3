"""Cases for dragon/ops/python_callback.py: a two-input, two-output callback.

The callback computes (X0 * X1, X0 + 2 X1) and its backward; the gradient check
by finite differences exercises PythonCallbackGradient.
"""
import numpy as np

from dragon.ops import python_callback
from dragon.ops.registry import Spec
from tests.ops.opcase import Case, rand


class ProductAndSum:
    """Y0 = X0 * X1, Y1 = X0 + 2 X1 on numpy arrays."""

    def infer(self, specs):
        a, b = specs
        return [Spec(a.shape, a.dtype), Spec(a.shape, a.dtype)]

    def forward(self, inputs, outputs):
        a, b = inputs
        np.multiply(a, b, out=outputs[0])
        np.add(a, 2 * b, out=outputs[1])

    def backward(self, inputs, outputs, grad_outputs, grad_inputs):
        a, b = inputs
        dy0, dy1 = grad_outputs
        if grad_inputs[0] is not None:
            grad_inputs[0] += dy0 * b + dy1
        if grad_inputs[1] is not None:
            grad_inputs[1] += dy0 * a + 2 * dy1


KEY = python_callback.register_callback(ProductAndSum(), "tests.ops.product_and_sum")


def _reference(a, b, callback, output_count):
    return a * b, a + 2 * b


CASES = [
    Case("PythonCallback", [rand(3, 4), rand(3, 4, seed=1)],
         args={"callback": KEY, "output_count": 2}, reference=_reference),
    Case("PythonCallback", [rand(2, 5), rand(2, 5, seed=2)],
         args={"callback": KEY, "output_count": 2}, reference=_reference, grad=(1,),
         name="second_input_only"),
]
