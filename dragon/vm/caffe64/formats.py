"""network.txt and optim.txt: what a Caffe64 network is and how it is trained.

    net = Network.from_file("mnist/network5.txt")
    [layer.kind for layer in net.layers]      # ['inp', 'lin', 'rel', 'lin', 'sce']
    net.features, net.batch, net.outputs     # (784, 100, 10)
    opt = Optim.from_file("mnist/optimsetting.txt")
    opt.lr, opt.epochs                       # (0.0001, 15)

Every error names the file and the line at fault.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dragon.vm.caffe64.errors import Caffe64Error

#: layer name -> number of integer arguments it takes
LAYER_ARGS = {"inp": 2, "lin": 2, "rel": 0, "tnh": 0, "smx": 0, "sce": 0, "l2l": 0}
LOSSES = ("sce", "l2l")
#: 10^E must be a usable float32 standard deviation
EXPONENT_RANGE = range(-30, 31)


@dataclass(frozen=True)
class Layer:
    """One line of network.txt: its kind, sizes in and out, and where it was written.

    ``inputs``/``outputs`` are features per sample (F and K); ``exponent`` is a
    ``lin`` layer's initial weight scale 10^E.
    """
    kind: str
    inputs: int
    outputs: int
    line: int
    exponent: int = 0

    @property
    def param_count(self) -> int:
        """Parameters in weights.bin: F*K weights and K biases for ``lin``, else 0."""
        return (self.inputs + 1) * self.outputs if self.kind == "lin" else 0

    def describe(self) -> str:
        return f"layer {self.kind} (line {self.line})"


@dataclass(frozen=True)
class Network:
    """A parsed network.txt: ``inp`` first, then layers, a loss (``sce``/``l2l``) last if any.

    >>> net = Network.from_text("3\\ninp 2 4\\nlin 1 -1\\nl2l\\n")
    >>> net.loss, net.outputs
    ('l2l', 1)
    """
    layers: tuple
    batch: int
    path: str = "<network>"

    @classmethod
    def from_file(cls, path) -> "Network":
        """Parse the network file at ``path``."""
        return cls.from_text(_read_text(path), str(path))

    @classmethod
    def from_text(cls, text: str, path: str = "<network>") -> "Network":
        """Parse network text; ``path`` names it in errors."""
        lines = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1)]
        lines = [(n, tokens) for n, tokens in lines if tokens]
        if not lines:
            raise Caffe64Error(f"{path}: empty; the first line must give the number of layers")
        head_line, head = lines[0]
        if len(head) != 1 or not _is_int(head[0]) or int(head[0]) < 2:
            raise Caffe64Error(f"{path} line {head_line}: expected the number of layers "
                               f"(an integer >= 2), got '{' '.join(head)}'")
        count = int(head[0])
        specs = lines[1:]
        if len(specs) < count:
            last = specs[-1][0] if specs else head_line
            raise Caffe64Error(f"{path} line {last}: the file declares {count} layers "
                               f"but holds {len(specs)}")
        if len(specs) > count:
            raise Caffe64Error(f"{path} line {specs[count][0]}: the file declares {count} "
                               f"layers, this line would be layer {count + 1}")
        layers, batch = [], 0
        for index, (number, tokens) in enumerate(specs):
            kind, args = tokens[0], tokens[1:]
            where = f"{path} line {number}"
            if kind not in LAYER_ARGS:
                raise Caffe64Error(f"{where}: unknown layer '{kind}' "
                                   f"(expected one of {', '.join(LAYER_ARGS)})")
            if len(args) != LAYER_ARGS[kind] or not all(_is_int(a) for a in args):
                raise Caffe64Error(f"{where}: '{kind}' takes {_arg_help(kind)}, "
                                   f"got '{' '.join(tokens)}'")
            values = [int(a) for a in args]
            if (kind == "inp") != (index == 0):
                raise Caffe64Error(f"{where}: 'inp' must be the first layer, and only the first")
            if kind in LOSSES and index != count - 1:
                raise Caffe64Error(f"{where}: the loss '{kind}' must be the last layer")
            if kind == "inp":
                features, batch = values
                if features < 1 or batch < 1:
                    raise Caffe64Error(f"{where}: 'inp' needs features >= 1 and batch >= 1, "
                                       f"got {features} and {batch}")
                layers.append(Layer("inp", features, features, number))
            elif kind == "lin":
                outputs, exponent = values
                if outputs < 1:
                    raise Caffe64Error(f"{where}: 'lin' needs at least 1 output, got {outputs}")
                if exponent not in EXPONENT_RANGE:
                    raise Caffe64Error(f"{where}: 'lin' scale exponent {exponent} is outside "
                                       f"{EXPONENT_RANGE.start}..{EXPONENT_RANGE.stop - 1}")
                layers.append(Layer("lin", layers[-1].outputs, outputs, number, exponent))
            else:
                width = layers[-1].outputs
                layers.append(Layer(kind, width, width, number))
        return cls(tuple(layers), batch, path)

    @property
    def features(self) -> int:
        """F: numbers per input sample."""
        return self.layers[0].outputs

    @property
    def outputs(self) -> int:
        """K: numbers per output sample (a class count for ``sce``)."""
        return self.layers[-1].outputs

    @property
    def loss(self):
        """``'sce'``, ``'l2l'`` or None (a network that can only be tested)."""
        kind = self.layers[-1].kind
        return kind if kind in LOSSES else None

    def param_counts(self) -> list[int]:
        """Parameters of each layer, in weights.bin order (``inp`` included, with 0)."""
        return [layer.param_count for layer in self.layers]


@dataclass(frozen=True)
class Optim:
    """A parsed optim.txt: SGD with momentum, the LR multiplied by ``factor`` every ``step`` epochs.

    >>> Optim.from_text("0.01\\n5\\n0.1\\n0.0001\\n0.9\\n15\\n").epochs
    15
    """
    lr: float
    step: int
    factor: float
    weight_decay: float
    momentum: float
    epochs: int
    path: str = "<optim>"

    FIELDS = ("base learning rate", "LR step in epochs", "LR drop factor", "weight decay",
              "momentum", "number of epochs")

    @classmethod
    def from_file(cls, path) -> "Optim":
        """Parse the optim file at ``path``."""
        return cls.from_text(_read_text(path), str(path))

    @classmethod
    def from_text(cls, text: str, path: str = "<optim>") -> "Optim":
        """Parse six numbers (one a line in the original's files; any spacing is read)."""
        numbers = []
        for number, line in enumerate(text.splitlines(), 1):
            for token in line.split():
                if len(numbers) == len(cls.FIELDS):
                    raise Caffe64Error(f"{path} line {number}: more than {len(cls.FIELDS)} "
                                       f"numbers; expected {', '.join(cls.FIELDS)}")
                try:
                    value = float(token)
                except ValueError:
                    raise Caffe64Error(f"{path} line {number}: '{token}' is not a number "
                                       f"({cls.FIELDS[len(numbers)]})") from None
                numbers.append((value, number))
        if len(numbers) < len(cls.FIELDS):
            raise Caffe64Error(f"{path}: holds {len(numbers)} numbers, expected "
                               f"{len(cls.FIELDS)}: {', '.join(cls.FIELDS)} (missing: "
                               f"{', '.join(cls.FIELDS[len(numbers):])})")
        (lr, _), (step, step_line), (factor, _), (decay, decay_line), (momentum, m_line), \
            (epochs, epochs_line) = numbers
        # The original converts the two counts with round-to-nearest.
        step, epochs = round(step), round(epochs)
        checks = [(step >= 1, step_line, f"LR step must be >= 1 epoch, got {step}"),
                  (epochs >= 1, epochs_line, f"number of epochs must be >= 1, got {epochs}"),
                  (decay >= 0, decay_line, f"weight decay must be >= 0, got {decay}"),
                  (momentum >= 0, m_line, f"momentum must be >= 0, got {momentum}")]
        for ok, line, message in checks:
            if not ok:
                raise Caffe64Error(f"{path} line {line}: {message}")
        return cls(lr, step, factor, decay, momentum, epochs, path)


def _read_text(path) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise Caffe64Error(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise Caffe64Error(f"{path}: not a text file") from None


def _is_int(token: str) -> bool:
    return token.lstrip("+-").isdigit()


_ARG_HELP = {"inp": "two integers (features, minibatch size)",
             "lin": "two integers (outputs, initial weight scale exponent)"}


def _arg_help(kind):
    return _ARG_HELP.get(kind, "no arguments")
