"""``theano.compile``: function, In/Out, shared variables and modes.

    from dragon.vm.theano.compile import function, shared, In
"""
from dragon.vm.theano.compile.function import (Function, MissingInputError,  # noqa: F401
                                               UnusedInputError, function)
from dragon.vm.theano.compile.io import In, Out, Param  # noqa: F401
from dragon.vm.theano.compile.mode import (FAST_COMPILE, FAST_RUN, DebugMode, Mode,  # noqa: F401
                                           NanGuardMode, get_default_mode, get_mode)
from dragon.vm.theano.compile.sharedvalue import SharedVariable, shared  # noqa: F401

function_module = function
