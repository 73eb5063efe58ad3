"""``theano.config``: Theano's settings, all readable and writable.

    import dragon.vm.theano as theano
    theano.config.floatX = "float32"          # dtype of T.matrix(), T.scalar(), ...
    theano.config.warn.sum_div_dimshuffle_bug = False
    theano.config.gcc.cxxflags = "-O3"        # accepted; the engine compiles no C

Options that change results here: ``floatX`` (default dtype of constructors and of
Python floats), ``device`` (``'cpu'``, ``'cuda'``/``'gpu'`` move the engine to cupy),
``compute_test_value`` (accepted; test values are stored, not checked). The rest are
kept for scripts that set or read them. An option Theano has but this table does
not is readable as ``None`` through nested sections, so ``config.dnn.enabled``
style reads never fail; setting an unknown top-level option works too.
"""
from __future__ import annotations

import numpy as np

_FLOATX = ("float64", "float32", "float16")

_DEFAULTS = {
    "floatX": "float64",
    "device": "cpu",
    "init_gpu_device": "",
    "force_device": False,
    "mode": "Mode",
    "optimizer": "fast_run",
    "optimizer_including": "",
    "optimizer_excluding": "",
    "linker": "cvm",
    "exception_verbosity": "low",
    "compute_test_value": "off",
    "compute_test_value_opt": "off",
    "on_unused_input": "raise",
    "cast_policy": "custom",
    "int_division": "int",
    "allow_gc": True,
    "openmp": False,
    "profile": False,
    "profile_memory": False,
    "print_active_device": True,
    "warn_float64": "ignore",
    "deterministic": "default",
    "cxx": "",
    "blas__ldflags": "",
    "base_compiledir": "",
    "compiledir": "",
    "traceback__limit": 8,
    "scan__allow_gc": False,
    "reoptimize_unpickled_function": False,
    "unpickle_function": True,
}

_SECTIONS = {
    "warn": {"ignore_bug_before": "0.9", "sum_div_dimshuffle_bug": True,
             "subtensor_merge_bug": True, "gpusum_01_011_0111_bug": True,
             "round": True, "identify_1pexp_bug": True, "argmax_pushdown_bug": True,
             "reduce_join": True, "inc_set_subtensor1": True, "signal_conv2d_interface": True,
             "vm_gc_bug": False},
    "gcc": {"cxxflags": ""},
    "blas": {"ldflags": ""},
    "dnn": {"enabled": "auto", "conv": {"algo_fwd": "small", "algo_bwd_data": "none",
                                        "algo_bwd_filter": "none"}},
    "scan": {"allow_gc": False, "allow_output_prealloc": True, "debug": False},
    "nvcc": {"fastmath": False, "flags": ""},
    "gpuarray": {"preallocate": 0.0},
    "lib": {"cnmem": 0.0},
    "traceback": {"limit": 8, "compile_limit": 0},
    "tensor": {"cmp_sloppy": 0, "local_elemwise_fusion": True},
    "NanGuardMode": {"nan_is_error": True, "inf_is_error": True, "big_is_error": True},
    "DebugMode": {"check_c": True, "check_py": True},
    "compile": {"timeout": 120, "wait": 5},
    "cmodule": {"warn_no_version": False, "remove_gxx_opt": False, "compilation_warning": False},
    "numpy": {"seterr_all": "ignore"},
    "metaopt": {"verbose": 0},
    "optdb": {"position_cutoff": float("inf"), "max_use_ratio": 8.0},
    "profiling": {"n_apply": 20, "n_ops": 20},
    "magma": {"enabled": False},
    "ctc": {"root": ""},
}


class ConfigSection:
    """A group of options (``config.warn``, ``config.gcc``); unknown names read as None."""

    def __init__(self, path, values):
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_values", {})
        for key, value in values.items():
            self._values[key] = ConfigSection(f"{path}.{key}", value) \
                if isinstance(value, dict) else value

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        values = object.__getattribute__(self, "_values")
        if name not in values:
            values[name] = ConfigSection(f"{self._path}.{name}", {})
        return values[name]

    def __setattr__(self, name, value):
        self._values[name] = value

    def __bool__(self):
        return bool(self._values)

    def __repr__(self):
        return f"<theano config section '{self._path}': {sorted(self._values)}>"


class TheanoConfig:
    """The object behind ``theano.config``; see the module docstring."""

    def __init__(self):
        object.__setattr__(self, "_values", dict(_DEFAULTS))
        object.__setattr__(self, "_sections", {k: ConfigSection(k, v) for k, v in _SECTIONS.items()})

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        values = object.__getattribute__(self, "_values")
        if name in values:
            return values[name]
        sections = object.__getattribute__(self, "_sections")
        if name not in sections:
            sections[name] = ConfigSection(name, {})
        return sections[name]

    def __setattr__(self, name, value):
        if name == "floatX":
            value = str(np.dtype(value)) if value is not None else value
            if value not in _FLOATX:
                raise ValueError(f"config.floatX must be one of {_FLOATX}, got {value!r}")
        elif name == "device":
            _set_device(value)
        elif name in self._sections and not isinstance(value, ConfigSection):
            raise AttributeError(f"config.{name} is a section of options; set config.{name}.<option>")
        self._values[name] = value

    def change_flags(self, **flags):
        """Context manager setting options for a block (``config.change_flags(floatX='float32')``)."""
        return _ChangeFlags(self, flags)

    def __repr__(self):
        return "\n".join(f"{k} = {v!r}" for k, v in sorted(self._values.items()))


class _ChangeFlags:
    def __init__(self, config, flags):
        self.config, self.flags, self.saved = config, flags, {}

    def __enter__(self):
        for name, value in self.flags.items():
            self.saved[name] = getattr(self.config, name)
            setattr(self.config, name, value)
        return self.config

    def __exit__(self, *exc):
        for name, value in self.saved.items():
            setattr(self.config, name, value)

    def __call__(self, fn):  # used as a decorator
        import functools

        @functools.wraps(fn)
        def wrapped(*args, **kwargs):
            with self:
                return fn(*args, **kwargs)
        return wrapped


def _set_device(value):
    import dragon
    name = str(value).lower()
    if name.startswith(("cuda", "gpu")):
        index = name.lstrip("cudagpu") or "0"
        dragon.config.set_device("cuda", int(index))
    else:
        dragon.config.set_device("cpu")


config = TheanoConfig()
change_flags = config.change_flags
