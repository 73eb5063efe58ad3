"""Reading graphs: ``theano.pp`` (one line) and ``theano.printing.debugprint`` (a tree).

An op may render itself in ``pp`` by defining ``pp(self, input_texts) -> str``.

    theano.pp(T.grad(y, x))
    theano.printing.debugprint(f)        # the graph of each output of a function
    text = theano.printing.debugprint(y, file="str")
"""
from __future__ import annotations

import sys

from dragon.vm.theano.tensor.var import TensorConstant, TensorSharedVariable

_INFIX = {"add": "+", "sub": "-", "mul": "*", "true_div": "/", "int_div": "//", "mod": "%",
          "pow": "**", "lt": "<", "gt": ">", "le": "<=", "ge": ">=", "eq": "==", "neq": "!=",
          "and_": "&", "or_": "|", "xor": "^"}


def pp(var):
    """A one-line infix rendering of ``var``'s expression.

    >>> theano.pp((x + 1) * y)
    '((x + TensorConstant{1}) * y)'
    """
    memo = {}
    order = []
    stack = [(var, False)]
    while stack:  # post-order, iteratively: graphs can be deep
        v, expanded = stack.pop()
        if id(v) in memo:
            continue
        if v.owner is None:
            memo[id(v)] = _leaf(v)
            continue
        if not expanded:
            stack.append((v, True))
            stack.extend((i, False) for i in reversed(v.owner.inputs) if id(i) not in memo)
            continue
        node = v.owner
        args = [memo[id(i)] for i in node.inputs]
        name = str(node.op)
        if hasattr(node.op, "pp"):
            text = node.op.pp(args)
        elif name in _INFIX and len(args) == 2:
            text = f"({args[0]} {_INFIX[name]} {args[1]})"
        elif name == "neg" and len(args) == 1:
            text = f"-{args[0]}"
        else:
            text = f"{name}({', '.join(args)})"
        if len(node.outputs) > 1:
            text = f"{text}[{v.index}]"
        memo[id(v)] = text
        order.append(v)
    return memo[id(var)]


def _leaf(v):
    if isinstance(v, TensorConstant):
        return str(v)
    if v.name is not None:
        return v.name
    return f"<{v.type}>"


def debugprint(obj, depth=-1, print_type=False, file=None, ids="CHAR", stop_on_name=False,
               done=None, print_storage=False, print_clients=False, used_ids=None):
    """Print the graph of a variable, a list of them or a compiled function as a tree.

    Each node shows its op, an id (repeated nodes are shown once) and its name;
    ``print_type`` adds types. ``file='str'`` returns the text instead of printing.
    """
    from dragon.vm.theano.compile.function import Function
    if isinstance(obj, Function):
        roots = list(obj.outputs) + [new for _, new in obj.updates]
    elif isinstance(obj, (list, tuple)):
        roots = list(obj)
    else:
        roots = [obj]
    labels = {}
    lines = []

    def label(node):
        if id(node) not in labels:
            labels[id(node)] = _id_text(len(labels))
        return labels[id(node)]

    for root in roots:
        stack = [(root, 0)]
        while stack:
            v, level = stack.pop()
            prefix = " |" * level
            node = v.owner
            kind = f" {v.type}" if print_type else ""
            name = f" '{v.name}'" if v.name else " ''"
            if node is None:
                shared = " (shared)" if isinstance(v, TensorSharedVariable) else ""
                lines.append(f"{prefix}{_leaf(v)}{shared}{kind}")
                continue
            seen = id(node) in labels
            out = f".{v.index}" if len(node.outputs) > 1 else ""
            lines.append(f"{prefix}{node.op}{out} [id {label(node)}]{name}{kind}")
            if seen or (depth >= 0 and level + 1 > depth) or (stop_on_name and v.name and level):
                continue
            for inp in reversed(node.inputs):
                stack.append((inp, level + 1))
    text = "\n".join(lines) + "\n"
    if file == "str":
        return text
    (file or sys.stdout).write(text)
    return file or sys.stdout


def _id_text(n):
    letters = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        letters = chr(65 + r) + letters
    return letters


def pydotprint(*args, **kwargs):
    """Not available: graphs print as text here (use debugprint)."""
    raise NotImplementedError("pydotprint needs pydot and graphviz; use "
                              "theano.printing.debugprint for a text tree")


class Print:
    """``Print(message)(x)``: x unchanged (the message is not printed at run time here)."""

    def __init__(self, message="", attrs=("__str__",), global_fn=None):
        self.message = message

    def __call__(self, x):
        return x
