"""Caffe2's Toy Regression, on Dragon: learn y = [2.0, 1.5] x + 0.5 from noisy samples.

    python examples/caffe2/toy_regression.py [--iterations 100]
"""
import argparse

from dragon.vm.caffe2.python import core, workspace


def build():
    init = core.Net("toy_init")
    w_true = init.GivenTensorFill([], "W_gt", shape=[1, 2], values=[2.0, 1.5])
    b_true = init.GivenTensorFill([], "B_gt", shape=[1], values=[0.5])
    one = init.ConstantFill([], "ONE", shape=[1], value=1.0)
    counter = init.ConstantFill([], "ITER", shape=[1], value=0, dtype=core.DataType.INT32)
    w = init.UniformFill([], "W", shape=[1, 2], min=-1.0, max=1.0)
    b = init.ConstantFill([], "B", shape=[1], value=0.0)

    train = core.Net("toy_train")
    x = train.GaussianFill([], "X", shape=[64, 2], mean=0.0, std=1.0, run_once=0)
    y_true = x.FC([w_true, b_true], "Y_gt")
    noise = train.GaussianFill([], "noise", shape=[64, 1], mean=0.0, std=1.0, run_once=0)
    target = y_true.Add(noise, "Y_noise").StopGradient([], "Y_noise")
    prediction = x.FC([w, b], "Y_pred")
    loss = train.SquaredL2Distance([target, prediction], "dist").AveragedLoss([], ["loss"])
    grads = train.AddGradientOperators([loss])
    train.Iter(counter, counter)
    lr = train.LearningRate(counter, "LR", base_lr=-0.1, policy="step", stepsize=20, gamma=0.9)
    for param in (w, b):
        train.WeightedSum([param, one, grads[param], lr], param)
    return init, train


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=100)
    args = parser.parse_args()
    init, train = build()
    workspace.RunNetOnce(init)
    workspace.CreateNet(train)
    for i in range(args.iterations):
        workspace.RunNet(train.Proto().name)
        if i % 20 == 0:
            print(f"iteration {i:3d}: loss {float(workspace.FetchBlob('loss')):.4f}")
    print("W =", workspace.FetchBlob("W").ravel(), "(truth [2.0, 1.5])")
    print("B =", workspace.FetchBlob("B").ravel(), "(truth [0.5])")


if __name__ == "__main__":
    main()
