"""Caffe2's Toy Regression tutorial, and the optimizers on a small regression."""
import numpy as np
import pytest

from dragon.vm.caffe2.python import brew, core, model_helper, optimizer, workspace


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def _toy_nets():
    init_net = core.Net("init")
    W_gt = init_net.GivenTensorFill([], "W_gt", shape=[1, 2], values=[2.0, 1.5])
    B_gt = init_net.GivenTensorFill([], "B_gt", shape=[1], values=[0.5])
    ONE = init_net.ConstantFill([], "ONE", shape=[1], value=1.)
    ITER = init_net.ConstantFill([], "ITER", shape=[1], value=0, dtype=core.DataType.INT32)
    W = init_net.UniformFill([], "W", shape=[1, 2], min=-1., max=1.)
    B = init_net.ConstantFill([], "B", shape=[1], value=0.0)

    train_net = core.Net("train")
    X = train_net.GaussianFill([], "X", shape=[64, 2], mean=0.0, std=1.0, run_once=0)
    Y_gt = X.FC([W_gt, B_gt], "Y_gt")
    noise = train_net.GaussianFill([], "noise", shape=[64, 1], mean=0.0, std=1.0, run_once=0)
    Y_noise = Y_gt.Add(noise, "Y_noise")
    Y_noise = Y_noise.StopGradient([], "Y_noise")
    Y_pred = X.FC([W, B], "Y_pred")
    dist = train_net.SquaredL2Distance([Y_noise, Y_pred], "dist")
    loss = dist.AveragedLoss([], ["loss"])
    gradient_map = train_net.AddGradientOperators([loss])
    train_net.Iter(ITER, ITER)
    LR = train_net.LearningRate(ITER, "LR", base_lr=-0.1, policy="step", stepsize=20,
                                gamma=0.9)
    train_net.WeightedSum([W, ONE, gradient_map[W], LR], W)
    train_net.WeightedSum([B, ONE, gradient_map[B], LR], B)
    return init_net, train_net, gradient_map


def test_toy_regression_learns_the_ground_truth():
    init_net, train_net, gradient_map = _toy_nets()
    assert gradient_map["W"] == "W_grad" and gradient_map["B"] == "B_grad"
    assert "Y_noise" not in gradient_map  # StopGradient cut it
    workspace.RunNetOnce(init_net)
    workspace.CreateNet(train_net)
    for _ in range(100):
        workspace.RunNet(train_net.Proto().name)
    W, B = workspace.FetchBlob("W"), workspace.FetchBlob("B")
    np.testing.assert_allclose(W, [[2.0, 1.5]], atol=0.1)
    np.testing.assert_allclose(B, [0.5], atol=0.1)
    assert workspace.FetchBlob("ITER").dtype == np.int32 and workspace.FetchBlob("ITER")[0] == 100
    assert workspace.FetchBlob("LR") == pytest.approx(-0.1 * 0.9 ** 5)
    for blob in ("X", "Y_pred", "dist", "loss", "W_grad", "Y_pred_grad", "loss_autogen_grad"):
        assert workspace.HasBlob(blob), blob


def _regression_model(name):
    model = model_helper.ModelHelper(name=name)
    pred = brew.fc(model, "x", "pred", dim_in=3, dim_out=1)
    dist = model.SquaredL2Distance([pred, "target"], "dist")
    loss = model.AveragedLoss(dist, "loss")
    model.AddGradientOperators([loss])
    return model


BUILDERS = [
    ("sgd", lambda m: optimizer.build_sgd(m, 0.1)),
    ("momentum", lambda m: optimizer.build_sgd(m, 0.05, momentum=0.9)),
    ("nesterov", lambda m: optimizer.build_sgd(m, 0.05, momentum=0.9, nesterov=True,
                                                policy="step", stepsize=50, gamma=0.5)),
    ("adam", lambda m: optimizer.build_adam(m, 0.05)),
    ("adagrad", lambda m: optimizer.build_adagrad(m, 0.5)),
    ("rms_prop", lambda m: optimizer.build_rms_prop(m, 0.02)),
]


@pytest.mark.parametrize("build", [b for _, b in BUILDERS], ids=[n for n, _ in BUILDERS])
def test_optimizers_fit_a_linear_model(build):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    target = (x @ np.array([[1.0], [-2.0], [0.5]], np.float32) + 0.3).astype(np.float32)
    model = _regression_model("regression")
    build(model)
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("target", target)
    workspace.RunNetOnce(model.param_init_net)
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net, num_iter=200)
    assert float(workspace.FetchBlob("loss")) < 5e-3
    assert workspace.FetchBlob("optimizer_iteration")[0] == 200
    np.testing.assert_allclose(workspace.FetchBlob("pred_w"), [[1.0, -2.0, 0.5]], atol=0.1)


def test_weight_decay_adds_to_weight_gradients_only():
    model = _regression_model("decayed")
    optimizer.add_weight_decay(model, 0.5)
    decays = [op for op in model.net.Proto().op if op.type == "WeightedSum"]
    assert [list(op.input)[::2] for op in decays] == [["pred_w_grad", "pred_w"]]
    workspace.FeedBlob("x", np.zeros((4, 3), np.float32))
    workspace.FeedBlob("target", np.zeros((4, 1), np.float32))
    workspace.RunNetOnce(model.param_init_net)
    w = workspace.FetchBlob("pred_w")
    workspace.RunNetOnce(model.net)
    np.testing.assert_allclose(workspace.FetchBlob("pred_w_grad"), 0.5 * w, rtol=1e-6)
