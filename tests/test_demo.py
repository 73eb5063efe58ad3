"""The README's main job runs and learns (sklearn's digits)."""
import pytest

from dragon import demo


def test_every_front_end_of_the_demo_learns_digits(capsys):
    pytest.importorskip("sklearn", reason="the demo needs scikit-learn (the 'demo' extra)")
    demo.main([])
    out = capsys.readouterr().out
    accuracies = [float(line.split("test accuracy")[1].split("%")[0])
                  for line in out.splitlines() if "test accuracy" in line]
    assert len(accuracies) == len(demo.FRONT_ENDS)
    assert min(accuracies) >= 90.0, out
