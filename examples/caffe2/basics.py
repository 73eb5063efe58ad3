"""Caffe2's Basics, on Dragon: workspaces, blobs, operators and nets.

    python examples/caffe2/basics.py
"""
import numpy as np

from dragon.vm.caffe2.python import core, workspace


def blobs_and_workspaces():
    print("blobs at start:", workspace.Blobs())
    rng = np.random.default_rng(0)
    workspace.FeedBlob("X", rng.standard_normal((2, 3)).astype(np.float32))
    print("after feeding X:", workspace.Blobs(), "has X:", workspace.HasBlob("X"))
    print("X =\n", workspace.FetchBlob("X"))

    workspace.SwitchWorkspace("gutentag", True)
    print(f"in '{workspace.CurrentWorkspace()}':", workspace.Blobs())
    workspace.SwitchWorkspace("default")
    print(f"back in '{workspace.CurrentWorkspace()}':", workspace.Blobs())


def operators():
    relu = core.CreateOperator("Relu", ["X"], ["Y"])
    print("a Relu operator:\n" + str(relu))
    workspace.RunOperatorOnce(relu)
    print("Y = relu(X) =\n", workspace.FetchBlob("Y"))

    fill = core.CreateOperator("GaussianFill", [], ["Z"], shape=[100, 100], mean=1.0, std=1.0)
    workspace.RunOperatorOnce(fill)
    z = workspace.FetchBlob("Z")
    print(f"Z ~ N(1, 1): mean {z.mean():.3f}, std {z.std():.3f}")


def nets():
    net = core.Net("basics_net")
    x = net.GaussianFill([], ["X"], mean=0.0, std=1.0, shape=[2, 3], run_once=0)
    w = net.GaussianFill([], ["W"], mean=0.0, std=1.0, shape=[5, 3], run_once=0)
    b = net.ConstantFill([], ["b"], shape=[5], value=1.0, run_once=0)
    x.FC([w, b], ["Y"])
    print("the net:\n" + str(net.Proto()))

    workspace.ResetWorkspace()
    workspace.RunNetOnce(net)
    print("after RunNetOnce:", workspace.Blobs())

    workspace.ResetWorkspace()
    workspace.CreateNet(net)
    for _ in range(3):
        workspace.RunNet(net.Proto().name)
    print("Y after three runs of the created net =\n", workspace.FetchBlob("Y"))


if __name__ == "__main__":
    blobs_and_workspaces()
    operators()
    nets()
