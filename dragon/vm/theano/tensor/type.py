"""Theano's tensor types, the variable constructors and the dtype rules.

A ``TensorType`` is a dtype and a broadcastable pattern (one bool per axis: True
where the axis is known to have size 1). Calling it makes a symbolic input::

    import dragon.vm.theano.tensor as T
    x = T.fmatrix("x")                                   # float32, (False, False)
    a, b = T.dmatrices("a", "b")
    img = T.TensorType("float32", (False, True, False, False))("img")
    T.row().broadcastable                                # (True, False)

Dtype prefixes: b int8, w int16, i int32, l int64, f float32, d float64; no prefix
is ``theano.config.floatX``.
"""
from __future__ import annotations

import numpy as np

from dragon.vm.theano.configparser import config

FLOAT_DTYPES = ("float16", "float32", "float64")
INT_DTYPES = ("int8", "int16", "int32", "int64")
UINT_DTYPES = ("uint8", "uint16", "uint32", "uint64")
DISCRETE_DTYPES = ("bool",) + INT_DTYPES + UINT_DTYPES
ALL_DTYPES = DISCRETE_DTYPES + FLOAT_DTYPES

_PATTERN_NAMES = {(): "scalar", (False,): "vector", (True, False): "row",
                  (False, True): "col", (False, False): "matrix"}


# -- dtype rules ---------------------------------------------------------------------

def upcast(*dtypes) -> str:
    """The dtype an elementwise op on ``dtypes`` gives (numpy's promotion of array dtypes).

    >>> upcast("int32", "float32"), upcast("int8", "float32")
    ('float64', 'float32')
    """
    return str(np.result_type(*[np.dtype(d) for d in dtypes]))


def upgrade_to_float(dtype) -> str:
    """The float dtype of a float-valued op on ``dtype`` (sqrt, exp, log, ...)."""
    dtype = str(np.dtype(dtype))
    if dtype in FLOAT_DTYPES:
        return dtype
    if dtype == "bool":
        return config.floatX
    if dtype in ("int8", "int16", "uint8", "uint16"):
        return "float32"
    return "float64"


def true_div_dtype(*dtypes) -> str:
    """Theano's ``/``: floatX when every operand is discrete, else the upcast."""
    if all(str(np.dtype(d)) in DISCRETE_DTYPES for d in dtypes):
        return config.floatX
    return upcast(*dtypes)


def sum_dtype(dtype) -> str:
    """Accumulating dtype of sum/prod: small ints widen to int64 (uint64), floats stay."""
    dtype = str(np.dtype(dtype))
    if dtype in ("bool",) + INT_DTYPES:
        return "int64"
    if dtype in UINT_DTYPES:
        return "uint64"
    return dtype


def mean_dtype(dtype) -> str:
    dtype = str(np.dtype(dtype))
    return dtype if dtype in FLOAT_DTYPES else "float64"


def autocast_python_scalar(value) -> np.ndarray:
    """A Python number as Theano types it: ints in the smallest int type holding them,
    floats in floatX when that is float32 (else the smallest exact float type)."""
    if isinstance(value, (bool, np.bool_)):
        return np.asarray(value, dtype="int8")
    if isinstance(value, int):
        for dtype in INT_DTYPES:
            if np.iinfo(dtype).min <= value <= np.iinfo(dtype).max:
                return np.asarray(value, dtype=dtype)
        return np.asarray(value)
    if isinstance(value, float):
        if config.floatX != "float64":
            return np.asarray(value, dtype=config.floatX)
        single = np.asarray(value, dtype="float32")
        exact = float(single) == value or (np.isnan(value) and np.isnan(single))
        return single if exact else np.asarray(value, dtype="float64")
    return np.asarray(value)


def as_value_array(value, dtype=None) -> np.ndarray:
    """A constant's value as an array with Theano's dtype (Python scalars autocast)."""
    if dtype is not None:
        return np.asarray(value, dtype=dtype)
    if isinstance(value, (bool, int, float, np.bool_)) and not isinstance(value, np.generic):
        return autocast_python_scalar(value)
    array = np.asarray(value)
    if array.dtype == object:
        raise TypeError(f"cannot make a tensor constant of {value!r}")
    return array


def broadcastable_of(shape) -> tuple:
    return tuple(d == 1 for d in shape)


# -- TensorType ----------------------------------------------------------------------

class TensorType:
    """A dtype and a broadcastable pattern; calling it makes a symbolic variable.

    >>> T.TensorType("float32", (False, False))("x").type
    TensorType(float32, matrix)
    """

    def __init__(self, dtype, broadcastable, name=None, sparse_grad=False):
        dtype = config.floatX if dtype == "floatX" or dtype is None else str(np.dtype(dtype))
        if dtype not in ALL_DTYPES:
            raise TypeError(f"TensorType: unsupported dtype {dtype!r} (complex numbers are "
                            f"not supported); use one of {ALL_DTYPES}")
        self.dtype = dtype
        self.broadcastable = tuple(bool(b) for b in broadcastable)
        self.name = name

    @property
    def ndim(self):
        return len(self.broadcastable)

    @property
    def numpy_dtype(self):
        cached = self.__dict__.get("_numpy_dtype")
        if cached is None:
            cached = self.__dict__["_numpy_dtype"] = np.dtype(self.dtype)
        return cached

    def __call__(self, name=None):
        from dragon.vm.theano.tensor.var import TensorVariable
        return TensorVariable(self, name=name)

    make_variable = __call__

    def clone(self, dtype=None, broadcastable=None):
        return TensorType(self.dtype if dtype is None else dtype,
                          self.broadcastable if broadcastable is None else broadcastable)

    def __eq__(self, other):
        return (type(other) is TensorType and other.dtype == self.dtype
                and other.broadcastable == self.broadcastable)

    def __hash__(self):
        return hash((self.dtype, self.broadcastable))

    def __str__(self):
        if self.name:
            return self.name
        kind = _PATTERN_NAMES.get(self.broadcastable, f"{self.ndim}D")
        return f"TensorType({self.dtype}, {kind})"

    __repr__ = __str__

    # -- values --------------------------------------------------------------------
    def filter(self, data, strict=False, allow_downcast=None):
        """``data`` as an array of this type, or TypeError (Theano's conversion rules).

        Without ``allow_downcast`` a value converts only without loss: an array whose
        dtype upcasts to this one, a Python float into floatX, or numbers that survive
        the conversion exactly.
        """
        if type(data) is np.ndarray and data.dtype == self.numpy_dtype \
                and data.ndim == self.ndim and not any(self.broadcastable):
            return data   # the common case, kept cheap: it runs on every call
        if strict:
            if not isinstance(data, np.ndarray) or str(data.dtype) != self.dtype:
                raise TypeError(f"{self} expected an ndarray of dtype {self.dtype} (strict), "
                                f"got {type(data).__name__} {getattr(data, 'dtype', '')}")
            array = data
        elif hasattr(data, "dtype") and hasattr(data, "shape") and str(data.dtype) == self.dtype:
            array = np.asarray(data)
        elif allow_downcast:
            array = np.asarray(data, dtype=self.dtype)
        elif isinstance(data, (np.ndarray, np.generic)):
            if upcast(self.dtype, data.dtype) != self.dtype:
                raise TypeError(
                    f"{self} cannot store a value of dtype {data.dtype} without risking loss "
                    f"of precision. If you do not mind this loss, you can: 1) explicitly cast "
                    f"your data to {self.dtype}, or 2) set \"allow_input_downcast=True\" when "
                    f"calling \"function\".")
            array = np.asarray(data, dtype=self.dtype)
        elif allow_downcast is None and type(data) is float and self.dtype == config.floatX:
            array = np.asarray(data, dtype=self.dtype)
        else:
            raw = np.asarray(data)
            if raw.dtype == object:
                raise TypeError(f"{self} cannot store {data!r}")
            with np.errstate(all="ignore"):
                array = raw.astype(self.dtype)
                if raw.dtype.kind in "fc":
                    both_nan = np.isnan(array.astype("float64")) & np.isnan(raw.astype("float64"))
                    equal = (array == raw) | both_nan
                else:
                    equal = array == raw
                same = raw.shape == array.shape and bool(np.all(equal))
            if not same:
                text = str(data)
                text = text if len(text) <= 80 else text[:75] + "(...)"
                raise TypeError(
                    f"{self} cannot store accurately value {text}, it would be represented as "
                    f"{array}. If you do not mind this precision loss, you can: 1) explicitly "
                    f"convert your data to a numpy array of dtype {self.dtype}, or 2) set "
                    f"\"allow_input_downcast=True\" when calling \"function\".")
        if array.ndim != self.ndim:
            raise TypeError(f"Wrong number of dimensions: {self} expected {self.ndim}, got "
                            f"{array.ndim} with shape {array.shape}.")
        for axis, (b, size) in enumerate(zip(self.broadcastable, array.shape)):
            if b and size != 1:
                raise TypeError(f"Non-unit value on shape on a broadcastable dimension: {self} "
                                f"has axis {axis} broadcastable, got shape {array.shape}.")
        return array

    def is_valid_value(self, data):
        try:
            self.filter(data, strict=True)
            return True
        except TypeError:
            return False

    def value_zeros(self, shape):
        return np.zeros(shape, dtype=self.dtype)

    def convert_variable(self, var):
        """``var`` if it fits this type (same dtype and ndim, compatible pattern), else None."""
        if var.type.dtype != self.dtype or var.type.ndim != self.ndim:
            return None
        if all(not b or vb for b, vb in zip(self.broadcastable, var.type.broadcastable)):
            return var
        return None


# -- constructors --------------------------------------------------------------------

def tensor(dtype=None, broadcastable=(), name=None):
    """A symbolic input of any rank: ``T.tensor('float32', (False,) * 3, 'x')``."""
    return TensorType(dtype, broadcastable)(name)


def _constructor(pattern, dtype_fixed=None, kind=""):
    def make(name=None, dtype=None):
        return TensorType(dtype_fixed or dtype or config.floatX, pattern)(name)
    make.__name__ = kind
    make.__doc__ = (f"A symbolic {kind.lstrip('bwilfd') or kind} of dtype "
                    f"{dtype_fixed or 'floatX'}: ``T.{kind}('name')``.")
    return make


def _plural(single):
    def make(*names, dtype=None):
        if len(names) == 1 and isinstance(names[0], int):
            names = [None] * names[0]
        kwargs = {} if dtype is None else {"dtype": dtype}
        return [single(name, **kwargs) for name in names]
    return make


_PATTERNS = {"scalar": (), "vector": (False,), "row": (True, False), "col": (False, True),
             "matrix": (False, False), "tensor3": (False,) * 3, "tensor4": (False,) * 4,
             "tensor5": (False,) * 5}
_PLURALS = {"scalar": "scalars", "vector": "vectors", "row": "rows", "col": "cols",
            "matrix": "matrices", "tensor3": "tensor3s", "tensor4": "tensor4s",
            "tensor5": "tensor5s"}
_PREFIXES = {"": None, "b": "int8", "w": "int16", "i": "int32", "l": "int64",
             "f": "float32", "d": "float64"}

constructors = {}
for _prefix, _dtype in _PREFIXES.items():
    for _kind, _pattern in _PATTERNS.items():
        _single = _constructor(_pattern, _dtype, _prefix + _kind)
        constructors[_prefix + _kind] = _single
        constructors[_prefix + _PLURALS[_kind]] = _plural(_single)
globals().update(constructors)

# Theano's TensorType instances with fixed dtypes (``T.fmatrix`` is also callable as a type).
for _prefix, _dtype in _PREFIXES.items():
    if _dtype is not None:
        for _kind, _pattern in _PATTERNS.items():
            globals()[f"{_prefix}{_kind}_type"] = TensorType(_dtype, _pattern)
