"""Acceptance: LeNet from examples/mnist, trained by SGDSolver with lenet_solver.prototxt's
settings on the first 8,000 MNIST images, reaches >= 97% on the last 2,000."""
import logging
from pathlib import Path

import numpy as np
import pytest

import dragon.vm.caffe as caffe
from dragon.vm.caffe import mnist, proto_io
from dragon.vm.caffe.proto import caffe_pb2

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
EXAMPLES = DATA / "caffe" / "examples" / "mnist"
TRAIN_IMAGES, TEST_IMAGES = 8000, 2000
TRAIN_BATCH, TEST_BATCH = 64, 100
ITERATIONS = 800          # 6.4 epochs of the 8,000 images (measured: 97.8% at 700, 98.2% at 800)


def _needs(path):
    if not path.exists():
        pytest.skip(f"{path} is absent: the shared Caffe examples and MNIST are needed")
    return path


def lenet_with_memory_data():
    """lenet_train_test.prototxt with its Data layers turned into MemoryData layers.

    MemoryData does not transform its arrays, so the images are scaled by the
    prototxt's transform scale (1/256) before set_input_arrays.
    """
    net = proto_io.read_net(str(_needs(EXAMPLES / "lenet_train_test.prototxt")))
    for layer in net.layer:
        if layer.type != "Data":
            continue
        train = any(rule.phase == caffe_pb2.TRAIN for rule in layer.include)
        layer.type = "MemoryData"
        layer.ClearField("data_param")
        layer.ClearField("transform_param")
        p = layer.memory_data_param
        p.batch_size = TRAIN_BATCH if train else TEST_BATCH
        p.channels, p.height, p.width = 1, 28, 28
    return net


def lenet_solver(iterations):
    param = proto_io.read_solver(str(_needs(EXAMPLES / "lenet_solver.prototxt")))
    param.ClearField("net")
    param.net_param.CopyFrom(lenet_with_memory_data())
    param.max_iter = iterations
    param.test_iter[:] = [TEST_IMAGES // TEST_BATCH]
    param.test_interval = iterations
    param.display = 100
    param.snapshot = 0
    param.snapshot_after_train = False
    param.random_seed = 1701
    param.test_initialization = False
    return param


def test_lenet_reaches_97_percent(caplog):
    images, labels = mnist.load(_needs(DATA / "mnist"))
    images = images.astype(np.float32) * np.float32(0.00390625)
    labels = labels.astype(np.float32)
    train_x, train_y = images[:TRAIN_IMAGES], labels[:TRAIN_IMAGES]
    test_x, test_y = images[-TEST_IMAGES:], labels[-TEST_IMAGES:]

    solver = caffe.SGDSolver(lenet_solver(ITERATIONS))
    assert solver.param.base_lr == pytest.approx(0.01) and solver.param.lr_policy == "inv"
    solver.net.set_input_arrays(train_x, train_y)
    test_net = solver.test_nets[0]
    test_net.set_input_arrays(test_x, test_y)
    with caplog.at_level(logging.INFO, logger="dragon"):
        solver.solve()
    assert solver.iter == ITERATIONS

    # pycaffe's way of scoring: run the test net over the held-out images.
    correct = 0
    for _ in range(TEST_IMAGES // TEST_BATCH):
        test_net.forward()
        predicted = test_net.blobs["ip2"].data.argmax(axis=1)
        correct += int((predicted == test_net.blobs["label"].data.ravel()).sum())
    accuracy = correct / TEST_IMAGES
    print(f"LeNet on MNIST: {ITERATIONS} iterations, test accuracy {accuracy:.4f}")
    assert accuracy >= 0.97

    # the glog-style lines scripts parse
    lines = [r.getMessage() for r in caplog.records]
    assert f"Iteration {ITERATIONS}, Testing net (#0)" in lines
    reported = [l for l in lines if l.startswith("    Test net output #0: accuracy = ")]
    assert reported and float(reported[-1].rsplit("= ", 1)[1]) >= 0.97
    assert any(l.startswith("Iteration 100 (") and "iter/s" in l and ", loss = " in l
               for l in lines)
    assert any(l.startswith("Iteration 100, lr = 0.00992") for l in lines)
    assert any(l.startswith("    Train net output #0: loss = ") and "(* 1 = " in l
               for l in lines)
    assert "Optimization Done." in lines


def test_mnist_idx_files_read():
    images, labels = mnist.load(_needs(DATA / "mnist"))
    assert images.shape == (10000, 1, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.min() == 0 and labels.max() == 9
    assert list(labels[:5]) == [7, 2, 1, 0, 4]          # t10k's well-known first labels


def test_idx_errors_name_the_file(tmp_path):
    import gzip
    good = tmp_path / "ok-idx1-ubyte.gz"
    with gzip.open(good, "wb") as f:
        f.write(bytes([0, 0, 0x08, 1]) + (3).to_bytes(4, "big") + bytes([5, 6, 7]))
    assert list(mnist.read_idx(good)) == [5, 6, 7]
    bad = tmp_path / "bad-idx"
    bad.write_bytes(b"PK\x03\x04junk")
    with pytest.raises(mnist.IDXError, match="bad-idx: not an IDX file"):
        mnist.read_idx(bad)
    short = tmp_path / "short-idx"
    short.write_bytes(bytes([0, 0, 0x08, 1]) + (4).to_bytes(4, "big") + bytes([1]))
    with pytest.raises(mnist.IDXError, match=r"short-idx: shape \(4,\) needs 4 bytes"):
        mnist.read_idx(short)
