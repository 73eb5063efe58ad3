"""Text data files: fast numpy parsing, and errors that name the line."""
import re

import numpy as np
import pytest

from dragon.vm.caffe64 import Caffe64Error, read_labels, read_matrix, write_matrix
from dragon.vm.caffe64 import data

from ._shared import write


def test_reads_integers_and_decimals(tmp_path):
    path = write(tmp_path / "x.txt", "1 -2 3\n0.500000 -0.250000 +7\n-128 127 0.000001\n")
    X = read_matrix(path, rows=3, cols=3)
    assert X.dtype == np.float32
    np.testing.assert_array_equal(X, np.array([[1, -2, 3], [0.5, -0.25, 7],
                                               [-128, 127, 1e-6]], np.float32))


def test_matches_numpy_on_random_percent_f_text(tmp_path):
    values = np.random.default_rng(0).standard_normal((300, 17)) * 1000
    np.savetxt(tmp_path / "f.txt", values, fmt="%f")
    expected = np.loadtxt(tmp_path / "f.txt", dtype=np.float32)
    np.testing.assert_array_equal(read_matrix(tmp_path / "f.txt", 300, 17), expected)


def test_chunks_split_only_at_line_ends(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "CHUNK", 64)   # many chunks, lines longer than some of them
    values = np.arange(50 * 30).reshape(50, 30) - 700
    write_matrix(tmp_path / "x.txt", values, fmt="%d")
    np.testing.assert_array_equal(read_matrix(tmp_path / "x.txt", 50, 30), values)
    write(tmp_path / "bad.txt", "1 2 3\n" * 40 + "1 2\n")
    with pytest.raises(Caffe64Error, match=r"bad\.txt line 41: 2 numbers, expected 3"):
        read_matrix(tmp_path / "bad.txt", 41, 3)


def test_blank_lines_crlf_and_extra_rows(tmp_path):
    path = write(tmp_path / "x.txt", "\n1 2\r\n\n3 4\r\n5 6\n7 8")
    np.testing.assert_array_equal(read_matrix(path, 3, 2), [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(read_matrix(path, 4, 2)[-1], [7, 8])


def test_wrong_number_of_columns_names_the_line(tmp_path):
    path = write(tmp_path / "X.txt", "1 2 3 4\n5 6 7 8\n9 10 11\n1 2 3 4\n")
    with pytest.raises(Caffe64Error) as info:
        read_matrix(path, rows=4, cols=4)
    assert str(path) in str(info.value)
    assert "line 3: 3 numbers, expected 4" in str(info.value)


def test_too_few_samples(tmp_path):
    path = write(tmp_path / "X.txt", "1 2\n3 4\n")
    with pytest.raises(Caffe64Error, match=r"X\.txt: holds 2 samples, 5 were asked for"):
        read_matrix(path, rows=5, cols=2)


@pytest.mark.parametrize("token", ["1.2.3", "--4", "4-", "-", ".", "abc", "1,5"])
def test_a_token_that_is_no_number_names_the_line(tmp_path, token):
    path = write(tmp_path / "X.txt", f"1 2\n3 {token}\n")
    with pytest.raises(Caffe64Error) as info:
        read_matrix(path, rows=2, cols=2)
    assert f"line 2: '{token}' is not a number" in str(info.value)


def test_exponents_are_read_by_the_slower_general_parser(tmp_path):
    path = write(tmp_path / "X.txt", "1e-3 2.5E2\n-3 4\n")
    np.testing.assert_allclose(read_matrix(path, 2, 2), [[1e-3, 250], [-3, 4]])


def test_labels(tmp_path):
    path = write(tmp_path / "Y.txt", "0\n9\n3.000000\n")
    assert read_labels(path, rows=3, classes=10).tolist() == [0, 9, 3]
    write(tmp_path / "bad.txt", "0\n1\n\n10\n")
    with pytest.raises(Caffe64Error, match=r"bad\.txt line 4: class index 10 is not an integer "
                                           r"in 0\.\.9"):
        read_labels(tmp_path / "bad.txt", rows=3, classes=10)
    write(tmp_path / "frac.txt", "0.5\n")
    with pytest.raises(Caffe64Error, match=r"line 1: class index 0\.5"):
        read_labels(tmp_path / "frac.txt", rows=1, classes=10)


def test_write_matrix_formats(tmp_path):
    write_matrix(tmp_path / "p.txt", np.array([[0.25, 1 / 3], [-2.0, 10.0]]))
    lines = (tmp_path / "p.txt").read_text().splitlines()
    assert lines == ["0.250000 0.333333", "-2.000000 10.000000"]
    ints = np.array([[-128, 0, 127], [5, -7, 31]])
    write_matrix(tmp_path / "i.txt", ints, fmt="%d")
    assert (tmp_path / "i.txt").read_text() == "-128 0 127\n5 -7 31\n"
    assert [p.name for p in tmp_path.iterdir()] != [] and \
        not any(re.match(r"\..*\.tmp$", p.name) for p in tmp_path.iterdir())


def test_long_numbers_take_the_general_parser(tmp_path):
    path = write(tmp_path / "X.txt", "123456789012345678901234 0.5\n-0.00000000000000000001 7\n")
    np.testing.assert_allclose(read_matrix(path, 2, 2, dtype=np.float64),
                               [[1.23456789012345678901234e23, 0.5], [-1e-20, 7]])


def test_nine_and_eighteen_digit_numbers_are_exact(tmp_path):
    path = write(tmp_path / "X.txt", "999999999 -99999.9999\n123456789012.345678 1\n")
    np.testing.assert_array_equal(read_matrix(path, 2, 2, dtype=np.float64),
                                  [[999999999, -99999.9999], [123456789012.345678, 1]])
