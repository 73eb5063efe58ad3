"""``theano.In`` and ``theano.Out``: how a function takes an input and returns an output.

    x, y, w = T.dscalars("x", "y", "w")
    f = theano.function([x, theano.In(y, value=1), theano.In(w, value=2, name="w_by_name")],
                        (x + y) * w)
    f(33)                    # array(68.)
    f(33, w_by_name=1, y=0)  # array(33.)
"""
from __future__ import annotations

from dragon.vm.theano.tensor.var import Variable

_NO_VALUE = object()


class In:
    """A function input: the variable, an optional default ``value`` and keyword ``name``.

    mutable/borrow/strict/allow_downcast are accepted; inputs are never modified here.
    """

    def __init__(self, variable, name=None, value=_NO_VALUE, update=None, mutable=None,
                 strict=False, allow_downcast=None, autoname=True, implicit=None, borrow=None,
                 shared=False):
        if not isinstance(variable, Variable):
            raise TypeError(f"In() needs a symbolic variable, got {variable!r}")
        if update is not None:
            raise NotImplementedError("In(update=...) is not supported; use the function's "
                                      "updates with a shared variable")
        self.variable = variable
        self.name = name if name is not None else (variable.name if autoname else None)
        self.value = value
        self.mutable = bool(mutable)
        self.strict = strict
        self.allow_downcast = allow_downcast
        self.borrow = borrow
        self.implicit = implicit

    @property
    def has_default(self):
        return self.value is not _NO_VALUE

    def __repr__(self):
        default = f", value={self.value!r}" if self.has_default else ""
        return f"In({self.variable}{default})"


Param = In  # Theano's old name


class Out:
    """A function output; ``borrow=True`` is accepted (outputs are fresh arrays anyway)."""

    def __init__(self, variable, borrow=False):
        self.variable = variable
        self.borrow = borrow

    def __repr__(self):
        return f"Out({self.variable})"
