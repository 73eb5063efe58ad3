"""Caffe2's core module: nets, blob references, operators, arguments and scopes."""
import numpy as np
import pytest
from google.protobuf import text_format

from dragon.vm.caffe2.proto import caffe2_pb2
from dragon.vm.caffe2.python import core, utils, workspace


@pytest.fixture(autouse=True)
def fresh_workspace():
    workspace.ResetWorkspace()
    yield
    workspace.ResetWorkspace()


def test_net_names_are_made_unique():
    a, b = core.Net("uniq"), core.Net("uniq")
    assert (a.Name(), b.Name()) == ("uniq", "uniq_1")
    assert core.Net(a.Proto()).Name() == "uniq_2"
    assert str(a) == "uniq"


def test_automatic_output_names():
    net = core.Net("auto")
    x = net.ConstantFill([], shape=[2], value=1.0)
    assert x == "auto/ConstantFill" and x.Net() is net
    y = net.Relu(x)
    z = net.Relu(y)
    assert (y, z) == ("auto/Relu", "auto/Relu_2")
    parts = net.Split(z, 2, axis=0)
    assert parts == ("auto/Split:0", "auto/Split:1")
    assert net.NextName() == "auto_blob_0" and net.NextName() == "auto_blob_1"
    assert net.NextBlob("tmp") == "tmp" and net.NextBlob("tmp") == "tmp_auto_0"


def test_blob_reference_chaining_and_external_inputs():
    net = core.Net("chain")
    x = net.GaussianFill([], ["X"], shape=[2, 3])
    y = x.FC(["W", "b"], "Y")
    op = net.Proto().op[-1]
    assert (op.type, list(op.input), list(op.output)) == ("FC", ["X", "W", "b"], ["Y"])
    assert list(net.Proto().external_input) == ["W", "b"]
    assert y.Relu([], "R") == "R"
    net.AddExternalOutput(y)
    assert list(net.Proto().external_output) == ["Y"]
    with pytest.raises(AssertionError):
        net.AddExternalInput("W")
    ref = core.BlobReference("a/b")
    assert (ref.GetNameScope(), ref.GetUnscopedName(), repr(ref)) == \
        ("a/", "b", 'BlobReference("a/b")')
    assert ref + "_grad" == "a/b_grad" and "x_" + ref == "x_a/b"
    assert {ref: 1}["a/b"] == 1
    with pytest.raises(AttributeError):
        ref.Relu()          # no net to add the operator to


def test_create_operator_arguments():
    op = core.CreateOperator("Foo", ["x"], ["y"], name="n", engine="CUDNN", i=3, f=0.5, s="text",
                             b=b"raw", flag=True, ints=[1, 2], floats=[0.5, 1.5],
                             strings=["a", b"b"], arr=np.array([1.0, 2.0], np.float32),
                             npint=np.int64(4), net=caffe2_pb2.NetDef(name="sub"))
    args = {a.name: a for a in op.arg}
    assert (op.type, op.name, op.engine) == ("Foo", "n", "CUDNN")
    assert args["i"].i == 3 and args["f"].f == 0.5 and args["s"].s == b"text"
    assert args["b"].s == b"raw" and args["flag"].i == 1 and args["npint"].i == 4
    assert list(args["ints"].ints) == [1, 2] and list(args["floats"].floats) == [0.5, 1.5]
    assert list(args["strings"].strings) == [b"a", b"b"]
    assert list(args["arr"].floats) == [1.0, 2.0] and args["net"].n.name == "sub"
    with pytest.raises(ValueError):
        core.CreateOperator("Relu", ["x"], ["y"], bad=None)
    with pytest.raises(ValueError):
        utils.MakeArgument("mixed", [1, 2.5])
    seeded = core.CreateOperator("GaussianFill", [], ["g"], random_seed=5)
    assert seeded.device_option.random_seed == 5 and not seeded.arg


def test_proto_text_matches_caffe2():
    net = core.Net("text_net")
    x = net.GaussianFill([], ["X"], mean=0.0, std=1.0, shape=[2, 3], run_once=0)
    x.FC(["W", "b"], ["Y"])
    expected = """
    name: "text_net"
    op { output: "X" name: "" type: "GaussianFill"
         arg { name: "mean" f: 0.0 } arg { name: "std" f: 1.0 }
         arg { name: "shape" ints: 2 ints: 3 } arg { name: "run_once" i: 0 } }
    op { input: "X" input: "W" input: "b" output: "Y" name: "" type: "FC" }
    external_input: "W" external_input: "b"
    """
    assert net.Proto() == text_format.Parse(expected, caffe2_pb2.NetDef())
    assert 'name: ""' in str(net.Proto())


def test_name_scope_and_device_scope():
    with core.NameScope("outer"):
        with core.NameScope("inner"):
            assert core.ScopedName("w") == "outer/inner/w"
            op = core.CreateOperator("Relu", "x", "y")
        with core.NameScope("reset", reset=True):
            assert core.CurrentNameScope() == "reset/"
    assert core.CurrentNameScope() == ""
    assert (list(op.input), list(op.output)) == (["outer/inner/x"], ["outer/inner/y"])
    explicit = core.CreateOperator("Relu", core.BlobReference("x"), "y")
    assert list(explicit.input) == ["x"]
    gpu = core.DeviceOption(caffe2_pb2.CUDA, 1)
    with core.DeviceScope(gpu):
        assert core.CreateOperator("Relu", "x", "y").device_option.device_id == 1
    assert not core.CreateOperator("Relu", "x", "y").HasField("device_option")


def test_clone_run_all_on_gpu_and_append():
    net = core.Net("original")
    net.Relu("x", "y")
    clone = net.Clone("copy", blob_remap={"x": "x2"})
    assert clone.Name() == "copy" and list(clone.Proto().op[0].input) == ["x2"]
    assert list(clone.Proto().external_input) == ["x2"]
    clone.RunAllOnGPU(gpu_id=0, use_cudnn=True)
    assert clone.Proto().op[0].device_option.device_type == caffe2_pb2.CUDA
    assert clone.Proto().op[0].engine == "CUDNN"
    more = core.Net("more")
    more.Sigmoid("y", "z")
    net.AppendNet(more)
    assert [op.type for op in net.Proto().op] == ["Relu", "Sigmoid"]
    assert net.BlobIsDefined("z") and net.UsesBlob("x")


def test_operator_registry():
    assert core.IsOperator("FC") and core.IsOperator("MomentumSGDUpdate")
    assert not core.IsOperator("Foo")
    net = core.Net("reg")
    assert "FC" in dir(net)
    with pytest.raises(AttributeError, match="Foo"):
        net.Foo([], "y")


def test_gradient_operators_a_program_writes():
    y = np.array([[0.2, 0.8], [0.5, 0.5]], np.float32)
    dy = np.array([[1.0, -1.0], [2.0, 0.5]], np.float32)
    workspace.FeedBlob("y", y)
    workspace.FeedBlob("dy", dy)
    for op_type, expected in (("ReluGradient", dy * (y > 0)),
                              ("SigmoidGradient", dy * y * (1 - y)),
                              ("TanhGradient", dy * (1 - y * y)),
                              ("SoftmaxGradient", y * (dy - (dy * y).sum(1, keepdims=True)))):
        workspace.RunOperatorOnce(core.CreateOperator(op_type, ["y", "dy"], ["dx"]))
        np.testing.assert_allclose(workspace.FetchBlob("dx"), expected, rtol=1e-6,
                                   err_msg=op_type)


def test_gradient_registry_backward_pass():
    ops = [core.CreateOperator("Sigmoid", ["x"], ["y"])]
    grad_ops, grads = core.GradientRegistry.GetBackwardPass(ops, ["y"])
    assert [op.type for op in grad_ops] == ["ConstantFill", "SigmoidGradient"]
    assert grads["x"] == "x_grad"

    @core.GradientRegistry.RegisterGradient("MyOp")
    def _my_grad(op, g_output):
        return [], [None]
    assert "MyOp" in core.GradientRegistry.gradient_registry_


def test_get_ssa():
    net = core.Net("ssa")
    net.Relu("x", "x")
    net.Sigmoid("x", "y")
    ssa, versions = core.get_ssa(net)
    assert ssa == [([("x", 0)], [("x", 1)]), ([("x", 1)], [("y", 1)])]
    assert versions == {"x": 1, "y": 1}


# -- operators the table maps, forward -----------------------------------------------------------

def _run(op_type, inputs, outputs, **args):
    workspace.RunOperatorOnce(core.CreateOperator(op_type, list(inputs), list(outputs), **args))
    return [workspace.FetchBlob(o) for o in outputs]


def test_fills():
    xavier, = _run("XavierFill", [], ["xa"], shape=[50, 12])
    assert xavier.dtype == np.float32 and np.abs(xavier).max() <= np.sqrt(3 / 12)
    msra, = _run("MSRAFill", [], ["ms"], shape=[40, 300])
    assert abs(msra.std() - np.sqrt(2 / 40)) < 0.02          # Caffe2 scales by the fan-out
    uniform, = _run("UniformFill", [], ["u"], shape=[1000], min=2.0, max=3.0)
    assert 2.0 <= uniform.min() and uniform.max() <= 3.0
    ints, = _run("GivenTensorIntFill", [], ["gi"], shape=[3], values=[1, 2, 3])
    assert ints.dtype == np.int32 and list(ints) == [1, 2, 3]
    counter, = _run("ConstantFill", [], ["c"], shape=[1], value=0)
    assert counter.dtype == np.int64                           # inferred from an int value
    like, = _run("ConstantFill", ["gi"], ["l"], value=2.0, extra_shape=[2])
    assert like.shape == (3, 2) and like.dtype == np.float32 and (like == 2).all()
    workspace.FeedBlob("shape", np.array([2, 4], np.int64))
    shaped, = _run("ConstantFill", ["shape"], ["s"], input_as_shape=1, value=1.0,
                   dtype=core.DataType.DOUBLE)
    assert shaped.shape == (2, 4) and shaped.dtype == np.float64


def test_array_operators():
    workspace.FeedBlob("a", np.ones((2, 3), np.float32))
    workspace.FeedBlob("b", np.zeros((2, 2), np.float32))
    joined, info = _run("Concat", ["a", "b"], ["ab", "info"], axis=1)
    assert joined.shape == (2, 5) and list(info) == [3, 2] and info.dtype == np.int32
    reshaped, old = _run("Reshape", ["ab"], ["r", "old"], shape=[5, -1])
    assert reshaped.shape == (5, 2) and list(old) == [2, 5] and old.dtype == np.int64
    workspace.FeedBlob("new_shape", np.array([10], np.int64))
    flat, _ = _run("Reshape", ["ab", "new_shape"], ["f", "old2"])
    assert flat.shape == (10,)
    left, right = _run("Split", ["ab"], ["left", "right"], axis=1, split=[4, 1])
    assert left.shape == (2, 4) and right.shape == (2, 1)
    half = _run("Split", ["ab"], ["h0", "h1"], axis=0)
    assert [h.shape for h in half] == [(1, 5), (1, 5)]
    stacked, _ = _run("Concat", ["a", "a"], ["st", "st_info"], axis=0, add_axis=1)
    assert stacked.shape == (2, 2, 3)
    as_int, = _run("Cast", ["a"], ["ai"], to=core.DataType.INT32)
    as_named, = _run("Cast", ["a"], ["an"], to="float16")
    assert as_int.dtype == np.int32 and as_named.dtype == np.float16


def test_normalization_and_dropout():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 2, 2)).astype(np.float32)
    workspace.FeedBlob("x", x)
    workspace.FeedBlob("s", np.ones(3, np.float32))
    workspace.FeedBlob("bias", np.zeros(3, np.float32))
    workspace.FeedBlob("rm", np.zeros(3, np.float32))
    workspace.FeedBlob("rv", np.ones(3, np.float32))
    y, rm, rv, sm, siv = _run("SpatialBN", ["x", "s", "bias", "rm", "rv"],
                              ["y", "rm", "rv", "sm", "siv"], momentum=0.5, epsilon=1e-5)
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(sm, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(siv, 1 / np.sqrt(var + 1e-5), rtol=1e-4)
    np.testing.assert_allclose(rm, 0.5 * mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rv, 0.5 + 0.5 * var, rtol=1e-5)
    test_y, = _run("SpatialBN", ["x", "s", "bias", "rm", "rv"], ["ty"], is_test=1,
                   epsilon=1e-5)
    expected = (x - rm[:, None, None]) / np.sqrt(rv[:, None, None] + 1e-5)
    np.testing.assert_allclose(test_y, expected, rtol=1e-4, atol=1e-5)
    kept, = _run("Dropout", ["x"], ["kept"], ratio=0.5, is_test=1)
    np.testing.assert_array_equal(kept, x)
    dropped, mask = _run("Dropout", ["x"], ["dropped", "mask"], ratio=0.5)
    assert set(np.unique(mask)) <= {0.0, 2.0}
    np.testing.assert_allclose(dropped, x * mask)
    lrn, scale = _run("LRN", ["x"], ["lrn", "scale"], size=3, alpha=0.3, beta=0.5, bias=1.5)
    padded = np.pad(x ** 2, ((0, 0), (1, 1), (0, 0), (0, 0)))
    window = padded[:, :-2] + padded[:, 1:-1] + padded[:, 2:]
    np.testing.assert_allclose(scale, 1.5 + 0.3 / 3 * window, rtol=1e-5)
    np.testing.assert_allclose(lrn, x * scale ** -0.5, rtol=1e-5)


def test_training_operators():
    workspace.FeedBlob("it", np.array([9], np.int64))
    it, = _run("Iter", ["it"], ["it"])
    assert it[0] == 10
    lr, = _run("LearningRate", ["it"], ["lr"], base_lr=-0.5, policy="multistep",
               stepsizes=[5, 10, 20], gamma=0.1)
    np.testing.assert_allclose(lr, [-0.005])
    workspace.FeedBlob("mutex_free", np.array([3], np.int64))
    workspace.RunOperatorOnce(core.CreateOperator("CreateMutex", [], ["mutex"]))
    it2, = _run("AtomicIter", ["mutex", "mutex_free"], ["mutex_free"])
    assert it2[0] == 4
    g = np.array([1.0, -2.0], np.float32)
    workspace.FeedBlob("g", g)
    workspace.FeedBlob("m", np.array([0.5, 0.5], np.float32))
    workspace.FeedBlob("w", np.array([1.0, 1.0], np.float32))
    workspace.FeedBlob("rate", np.array([0.1], np.float32))
    step, m, w = _run("MomentumSGDUpdate", ["g", "m", "rate", "w"], ["g", "m", "w"],
                      momentum=0.9)
    np.testing.assert_allclose(step, 0.1 * g + 0.45, rtol=1e-6)
    np.testing.assert_allclose(m, step) and np.testing.assert_allclose(w, 1.0 - step)
    total, = _run("WeightedSum", ["w", "rate", "g", "rate"], ["w"])
    np.testing.assert_allclose(total, 0.1 * (1.0 - step) + 0.1 * step, rtol=1e-6)  # g is the step now
    workspace.FeedBlob("probs", np.array([[0.1, 0.7, 0.2], [0.5, 0.2, 0.3]], np.float32))
    workspace.FeedBlob("labels", np.array([1, 2], np.int32))
    top1, = _run("Accuracy", ["probs", "labels"], ["acc1"])
    top2, = _run("Accuracy", ["probs", "labels"], ["acc2"], top_k=2)
    assert float(top1) == 0.5 and float(top2) == 1.0


def test_summarize_and_print(capsys):
    x = np.array([[1.0, 2.0], [3.0, 6.0]], np.float32)
    workspace.FeedBlob("x", x)
    stats, = _run("Summarize", ["x"], ["stats"])
    np.testing.assert_allclose(stats, [1.0, 6.0, 3.0, x.std(ddof=1)], rtol=1e-6)
    workspace.RunOperatorOnce(core.CreateOperator("Print", ["x"], []))
    assert "x (float32, shape (2, 2))" in capsys.readouterr().out


# -- brew helpers and the model helper ------------------------------------------------------------

def test_every_brew_helper_builds_and_trains():
    from dragon.vm.caffe2.python import brew, model_helper, optimizer
    model = model_helper.ModelHelper(name="zoo")
    with brew.arg_scope([brew.conv, brew.fc], weight_init=("GaussianFill", {"std": 0.1})):
        conv = brew.conv(model, "data", "conv", dim_in=2, dim_out=4, kernel=3, pad=1)
    bn = brew.spatial_bn(model, conv, "bn", 4, epsilon=1e-3)
    act = brew.relu(model, bn, bn)
    pooled = brew.max_pool(model, act, "pool", kernel=2, stride=2)
    up = brew.conv_transpose(model, pooled, "up", dim_in=4, dim_out=2, kernel=2, stride=2)
    normed = brew.lrn(model, up, "lrn", size=3, alpha=1e-2, beta=0.5)
    grouped = brew.group_conv(model, "data", "grouped", dim_in=2, dim_out=2, kernel=1, group=2)
    sloped = brew.prelu(model, grouped, "sloped", num_channels=2)
    joined = brew.concat(model, [normed, sloped], "joined")
    deep = brew.depth_concat(model, [joined, "data"], "deep")
    dropped = brew.dropout(model, deep, "dropped", ratio=0.0)
    gap = brew.average_pool(model, dropped, "gap", global_pooling=1)
    fc = brew.fc(model, gap, "fc", dim_in=6, dim_out=3)
    squashed = brew.sum(model, [brew.tanh(model, fc, "t"), brew.sigmoid(model, fc, "s")], "ts")
    turned = brew.transpose(model, squashed, "tr", axes=[1, 0])
    flipped = brew.transpose(model, turned, "back", axes=[1, 0])
    prob = brew.softmax(model, flipped, "prob")
    loss = model.AveragedLoss(model.LabelCrossEntropy([prob, "label"], "xent"), "loss")
    brew.accuracy(model, [prob, "label"], "accuracy")
    model.AddGradientOperators([loss])
    brew.add_weight_decay(model, 1e-4)
    brew.iter(model, "it")
    optimizer.build_sgd(model, 0.01, momentum=0.9)

    names = [str(p) for p in model.GetParams()]
    assert names == ["conv_w", "conv_b", "bn_s", "bn_b", "up_w", "up_b", "grouped_w",
                     "grouped_b", "sloped_slope", "fc_w", "fc_b"]
    assert [str(p) for p in model.GetComputedParams()] == ["bn_rm", "bn_riv"]
    assert [str(w) for w in model.GetWeights()][:2] == ["conv_w", "bn_s"]
    assert model.param_init_net.Proto().op[0].type == "GaussianFill"
    assert set(model.param_to_grad) == set(model.params)

    workspace.FeedBlob("data", np.random.default_rng(0).standard_normal((2, 2, 4, 4))
                       .astype(np.float32))
    workspace.FeedBlob("label", np.array([0, 2], np.int32))
    workspace.RunNetOnce(model.param_init_net)
    assert workspace.FetchBlob("grouped_w").shape == (2, 1, 1, 1)
    assert workspace.FetchBlob("up_w").shape == (4, 2, 2, 2)
    workspace.CreateNet(model.net)
    workspace.RunNet(model.net, num_iter=3)
    assert workspace.FetchBlob("deep").shape == (2, 6, 4, 4)
    assert workspace.FetchBlob("it")[0] == 3
    assert np.isfinite(workspace.FetchBlob("loss"))
    for param in model.params:
        assert np.isfinite(workspace.FetchBlob(model.param_to_grad[param])).all(), param


def test_brew_register_and_model_arg_scope():
    from dragon.vm.caffe2.python import brew, model_helper

    def double_relu(model, blob_in, blob_out, **kwargs):
        return model.net.Relu(model.net.Relu(blob_in, blob_out + "_1"), blob_out)

    brew.Register(double_relu)
    assert brew.has_helper("double_relu") and brew.has_helper(brew.fc)
    with pytest.raises(AttributeError):
        brew.Register(double_relu)
    model = model_helper.ModelHelper(name="scoped", arg_scope={"order": "NCHW", "is_test": 1})
    brew.double_relu(model, "x", "y")
    assert [op.type for op in model.net.Proto().op] == ["Relu", "Relu"]
    brew.spatial_bn(model, "y", "bn", 3)       # is_test comes from the model's arg_scope
    bn = model.net.Proto().op[-1]
    assert list(bn.output) == ["bn"] and any(a.name == "is_test" for a in bn.arg)
    assert not any(a.name == "use_cudnn" for op in model.net.Proto().op for a in op.arg)
    test_model = model_helper.ModelHelper(name="external", init_params=False)
    brew.fc(test_model, "x", "fc", 3, 2)
    assert len(test_model.param_init_net.Proto().op) == 0
    assert [str(p) for p in test_model.params] == ["fc_w", "fc_b"]
    with core.NameScope("tower"):
        brew.fc(test_model, "x", "fc", 3, 2)
    assert [str(p) for p in test_model.GetParams("tower")] == ["tower/fc_w", "tower/fc_b"]


def test_net_drawer():
    pytest.importorskip("pydot", reason="pydot (the draw extra) is not installed")
    from dragon.vm.caffe2.python import net_drawer
    net = core.Net("drawn")
    x = net.GaussianFill([], "x", shape=[2])
    net.Relu(net.Relu(x, x), "y")
    dot = net_drawer.GetPydotGraph(net, rankdir="TB").to_string()
    assert dot.count("shape=octagon") == 3 and dot.count("shape=box") == 3  # x twice: in place
    minimal = net_drawer.GetPydotGraphMinimal(net.Proto()).to_string()
    assert minimal.count("->") == 2
