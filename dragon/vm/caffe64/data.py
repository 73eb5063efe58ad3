"""Caffe64 data files: plain text, one sample a line, space-separated numbers.

    X = read_matrix("trainX.txt", rows=8000, cols=784)      # (8000, 784) float32
    y = read_labels("trainY.txt", rows=8000, classes=10)     # (8000,) int64
    write_matrix("p.txt", posteriors)                        # rows of "%f" numbers

The reader parses about a megabyte at a time with a few numpy passes (no
Python work per value): the original's files hold millions of numbers, and
reading them is a large part of a Caffe64 run. Numbers are decimals as the original writes and reads
them (``-12``, ``0.250000``); a file with anything else (exponents, ``nan``)
goes through a slower line-by-line parser that accepts whatever Python's
``float`` does and names the line of a token it cannot read.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from dragon.vm.caffe64.errors import Caffe64Error

_SPACE_MAX = 32          # bytes <= 32 (space, tab, CR, LF, ...) separate numbers
_DIGIT0, _DOT, _MINUS, _PLUS, _NEWLINE = 48, 46, 45, 43, 10
_POW10 = 10.0 ** np.arange(128)       # exact up to 1e22, indexed by a count of decimals
#: bytes parsed at a time: the temporaries stay in cache and are recycled by malloc
#: (large fresh arrays cost a page fault per 4 KiB, more than the parsing itself)
CHUNK = 1 << 20
#: longer numbers would overflow the int64 digits of the fast parser
_LONGEST = 18


def read_matrix(path, rows, cols, dtype=np.float32) -> np.ndarray:
    """The first ``rows`` samples of ``path`` as a ``(rows, cols)`` array.

    Blank lines are skipped; every other line must hold exactly ``cols`` numbers
    (the error names the line that does not). Lines after the last sample asked
    for are not read.

    >>> read_matrix("trainX.txt", rows=8000, cols=784).shape
    (8000, 784)
    """
    return _read_rows(path, rows, cols, dtype)[0]


def _read_rows(path, rows, cols, dtype):
    """``(samples (rows, cols), the 1-based line of each sample)``."""
    out = np.empty((rows, cols), dtype)
    lines = np.empty(rows, np.int64)
    flat = out.reshape(-1)
    filled, lines_before = 0, 0
    for chunk in _chunks(path):
        values, per_line = _parse(chunk, path, lines_before)
        used = np.flatnonzero(per_line)[:rows - filled]
        wrong = used[per_line[used] != cols]
        if wrong.size:
            line = int(wrong[0])
            raise Caffe64Error(f"{path} line {lines_before + line + 1}: {per_line[line]} "
                               f"numbers, expected {cols}")
        flat[filled * cols:(filled + used.size) * cols] = values[:used.size * cols]
        lines[filled:filled + used.size] = used + lines_before + 1
        filled += used.size
        lines_before += per_line.size - 1
        if filled == rows:
            break
    if filled < rows:
        raise Caffe64Error(f"{path}: holds {filled} samples, {rows} were asked for")
    return out, lines


def read_labels(path, rows, classes) -> np.ndarray:
    """The first ``rows`` class indices of ``path`` (one integer 0..classes-1 a line).

    >>> read_labels("trainY.txt", rows=8000, classes=10)[:3]
    array([7, 2, 1])
    """
    values, lines = _read_rows(path, rows, 1, np.float64)
    values = values[:, 0]
    labels = values.astype(np.int64)
    bad = (labels != values) | (labels < 0) | (labels >= classes)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise Caffe64Error(f"{path} line {lines[i]}: class index {_show(values[i])} is not an "
                           f"integer in 0..{classes - 1} (the network has {classes} outputs)")
    return labels


def write_matrix(path, values, fmt="%f") -> None:
    """Write a 2-d array (or 1-d: one number a line) as rows of space-separated ``fmt``.

    Integers of a small range (``fmt="%d"``) are formatted with numpy, others row by row.
    The file is written to a temporary name and renamed into place.

    >>> write_matrix("p.txt", np.array([[0.25, 0.75]]))    # "0.250000 0.750000\\n"
    """
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if fmt == "%d" and values.dtype.kind in "iub" and values.size and \
                -32768 <= values.min() and values.max() < 32768:
            tmp.write_bytes(_format_small_ints(values))
        else:
            np.savetxt(tmp, values, fmt=fmt, delimiter=" ")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# -- parsing -------------------------------------------------------------------------------

def _chunks(path):
    """``path``'s bytes in pieces of about CHUNK that end at a line end (the last may not)."""
    try:
        f = open(path, "rb")
    except OSError as e:
        raise Caffe64Error(f"{path}: cannot read: {e.strerror or e}") from None
    with f:
        carry = b""
        while True:
            block = f.read(CHUNK)
            if not block:
                if carry:
                    yield carry
                return
            block = carry + block if carry else block
            cut = block.rfind(b"\n") + 1
            if cut:
                yield memoryview(block)[:cut]
            carry = block[cut:]


def _parse(chunk, path, lines_before=0):
    """``(values float64, numbers on each line)`` of whole lines of text; the last entry of
    the counts is the (partial or empty) line after the last newline."""
    raw = np.frombuffer(chunk, np.uint8)
    if not _is_plain(raw):
        return _parse_general(bytes(chunk), path, lines_before)
    # A separator on both ends makes every number start and end at a transition.
    b = np.empty(raw.size + 2, np.uint8)
    b[0] = b[-1] = _NEWLINE
    b[1:-1] = raw
    # starts and ends of numbers alternate along the text
    in_number = b > _SPACE_MAX
    edges = np.flatnonzero(in_number[1:] != in_number[:-1]) + 1
    starts, ends = edges[0::2], edges[1::2]
    lengths = ends - starts
    if lengths.size and lengths.max() > _LONGEST:
        return _parse_general(bytes(chunk), path, lines_before)
    values, bad = _decimal_values(b, starts, lengths, has_points=_DOT in raw)
    newlines = np.flatnonzero(raw == _NEWLINE) + 1   # in b, the position of each newline
    if bad is not None:
        line = lines_before + int(np.searchsorted(newlines, starts[bad])) + 1
        token = bytes(b[starts[bad]:ends[bad]]).decode("ascii", "replace")
        raise Caffe64Error(f"{path} line {line}: '{token}' is not a number")
    before = np.searchsorted(starts, newlines)   # numbers before each newline
    per_line = np.diff(before, prepend=0, append=starts.size)
    return values, per_line


def _is_plain(raw):
    """Whether ``raw`` holds only separators, digits, signs and points."""
    printable = raw > _SPACE_MAX
    outside = printable & ((raw - np.uint8(_PLUS)) > np.uint8(_DIGIT0 + 9 - _PLUS))
    return not outside.any() and not (raw == ord(",")).any() and not (raw == ord("/")).any()


def _decimal_values(b, starts, lengths, has_points=True):
    """Values of the plain decimals ``b[starts[i]:starts[i] + lengths[i]]``, and the index
    of the first malformed one (None if all are numbers).

    Reads all numbers left to right at once, one character position a pass
    (Horner's rule on the digits, counting those after the point), so the
    Python loop runs as many times as the longest number has characters.
    Masked ufuncs (``where=``) are slow, so a non-digit multiplies by 1 and adds 0.
    """
    count = starts.size
    if count == 0:
        return np.zeros(0), None
    longest = int(lengths.max())
    mantissa = np.zeros(count, np.int32 if longest <= 9 else np.int64)
    decimals = np.zeros(count, np.int8)
    seen_point = np.zeros(count, bool)
    two_points = np.zeros(count, bool)
    has_digit = np.zeros(count, bool)
    lengths = lengths.astype(np.int16)
    first = None
    for k in range(longest):
        c = np.take(b[k:], starts)
        if k == 0:
            first = c
        digit = c - np.uint8(_DIGIT0)
        is_digit = digit < 10
        inside = lengths > k if k else None
        if inside is not None:
            is_digit &= inside
        mantissa *= is_digit.view(np.int8) * np.int8(9) + np.int8(1)
        mantissa += digit * is_digit
        has_digit |= is_digit
        if has_points:
            decimals += is_digit & seen_point
            is_point = c == _DOT
            if inside is not None:
                is_point &= inside
            two_points |= is_point & seen_point
            seen_point |= is_point
    value = mantissa.astype(np.float64)
    if has_points:
        value /= _POW10[decimals]
    negative = first == _MINUS
    np.negative(value, out=value, where=negative)
    bad = ~has_digit
    bad |= two_points
    # a sign anywhere but first: more signs in the text than at the starts of numbers
    signs_at_starts = np.count_nonzero(negative) + np.count_nonzero(first == _PLUS)
    signs = np.count_nonzero(b == _MINUS) + np.count_nonzero(b == _PLUS)
    if signs != signs_at_starts:
        bad |= _late_sign(b, starts, lengths)
    if bad.any():
        return value, int(np.flatnonzero(bad)[0])
    return value, None


def _late_sign(b, starts, lengths):
    """Numbers with a sign after their first character (the rare malformed case)."""
    late = np.zeros(starts.size, bool)
    for k in range(1, int(lengths.max())):
        c = np.take(b, starts + k, mode="clip")
        late |= ((c == _MINUS) | (c == _PLUS)) & (lengths > k)
    return late


def _parse_general(data: bytes, path, lines_before=0):
    """Line-by-line parsing for text with characters beyond plain decimals."""
    text = data.decode("utf-8", "replace")
    rows, per_line = [], []
    for number, line in enumerate(text.split("\n"), lines_before + 1):
        tokens = line.split()
        try:
            rows.append(np.array(tokens, dtype=np.float64))
        except ValueError:
            bad = next(t for t in tokens if not _is_float(t))
            raise Caffe64Error(f"{path} line {number}: '{bad}' is not a number") from None
        per_line.append(len(tokens))
    values = np.concatenate(rows) if rows else np.zeros(0)
    return values, np.array(per_line, np.int64)


def _is_float(token):
    try:
        float(token)
    except ValueError:
        return False
    return True


def _show(x):
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _format_small_ints(values):
    """``%d`` text of an int array of |v| < 32768, built with numpy (no per-value Python)."""
    low = int(values.min())
    table = [b"%d" % v for v in range(low, int(values.max()) + 1)]
    width = max(len(t) for t in table) + 1
    glyphs = np.zeros((len(table), width), np.uint8)
    for i, t in enumerate(table):
        glyphs[i, :len(t)] = np.frombuffer(t, np.uint8)
        glyphs[i, len(t)] = ord(" ")
    lengths = np.array([len(t) + 1 for t in table], np.int64)
    index = (values.astype(np.int64) - low).ravel()
    chars = glyphs[index]
    keep = np.arange(width) < lengths[index][:, None]
    flat = chars[keep]
    # the separator after each row's last number becomes the newline
    row_ends = np.cumsum(lengths[index].reshape(values.shape).sum(axis=1)) - 1
    flat[row_ends] = _NEWLINE
    return flat.tobytes()
