"""Caffe2's MNIST tutorial with brew, on Dragon: LeNet trained from LMDBs of TensorProtos.

    python examples/caffe2/mnist.py [--data ../shared/data/mnist] [--epochs 4]

Writes the LMDBs (the first 8,000 images of the IDX set to train on, the rest to
test on) into a temporary folder with ``dragon.vm.caffe2.python.mnist_lmdb``,
trains with a train model, tests with a test model sharing its parameters
(init_params=False), then classifies a few images with a deploy model.
"""
import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from dragon.vm.caffe2.python import brew, core, mnist_lmdb, model_helper, optimizer, workspace

DEFAULT_DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "mnist"


def add_input(model, batch_size, db):
    data_uint8, label = model.TensorProtosDBInput([], ["data_uint8", "label"],
                                                  batch_size=batch_size, db=db, db_type="lmdb")
    data = model.Cast(data_uint8, "data", to=core.DataType.FLOAT)
    data = model.Scale(data, data, scale=1.0 / 256)
    return model.StopGradient(data, data), label


def add_lenet(model, data):
    conv1 = brew.conv(model, data, "conv1", dim_in=1, dim_out=20, kernel=5)
    pool1 = brew.max_pool(model, conv1, "pool1", kernel=2, stride=2)
    conv2 = brew.conv(model, pool1, "conv2", dim_in=20, dim_out=50, kernel=5)
    pool2 = brew.max_pool(model, conv2, "pool2", kernel=2, stride=2)
    fc3 = brew.fc(model, pool2, "fc3", dim_in=50 * 4 * 4, dim_out=500)
    fc3 = brew.relu(model, fc3, fc3)
    pred = brew.fc(model, fc3, "pred", 500, 10)
    return brew.softmax(model, pred, "softmax")


def add_training(model, softmax, label, learning_rate, momentum):
    xent = model.LabelCrossEntropy([softmax, label], "xent")
    loss = model.AveragedLoss(xent, "loss")
    brew.accuracy(model, [softmax, label], "accuracy")
    model.AddGradientOperators([loss])
    optimizer.build_sgd(model, learning_rate, policy="step", stepsize=1, gamma=0.999,
                        momentum=momentum)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder with t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--lr", type=float, default=0.2)
    parser.add_argument("--momentum", type=float, default=0.0)
    args = parser.parse_args()
    images = args.data / "t10k-images-idx3-ubyte.gz"
    labels = args.data / "t10k-labels-idx1-ubyte.gz"
    with tempfile.TemporaryDirectory() as tmp:
        train_db, test_db = f"{tmp}/mnist-train-nchw-lmdb", f"{tmp}/mnist-test-nchw-lmdb"
        mnist_lmdb.write_lmdb(images, labels, train_db, start=0, count=8000)
        mnist_lmdb.write_lmdb(images, labels, test_db, start=8000)

        train_model = model_helper.ModelHelper(name="mnist_train", arg_scope={"order": "NCHW"})
        data, label = add_input(train_model, 64, train_db)
        add_training(train_model, add_lenet(train_model, data), label, args.lr, args.momentum)

        test_model = model_helper.ModelHelper(name="mnist_test", init_params=False)
        data, label = add_input(test_model, 100, test_db)
        brew.accuracy(test_model, [add_lenet(test_model, data), label], "accuracy")

        deploy_model = model_helper.ModelHelper(name="mnist_deploy", init_params=False)
        add_lenet(deploy_model, "data")

        workspace.RunNetOnce(train_model.param_init_net)
        workspace.CreateNet(train_model.net, overwrite=True)
        start = time.perf_counter()
        iterations = args.epochs * 8000 // 64
        for i in range(iterations):
            workspace.RunNet(train_model.net)
            if i % 50 == 0:
                print(f"iteration {i:4d}: loss {float(workspace.blobs['loss']):.3f}, "
                      f"batch accuracy {float(workspace.blobs['accuracy']):.3f}")
        print(f"trained {iterations} iterations in {time.perf_counter() - start:.1f} s")

        workspace.RunNetOnce(test_model.param_init_net)
        workspace.CreateNet(test_model.net, overwrite=True)
        accuracy = []
        for _ in range(20):
            workspace.RunNet(test_model.net.Proto().name)
            accuracy.append(float(workspace.FetchBlob("accuracy")))
        print(f"test accuracy on 2,000 images: {np.mean(accuracy):.4f}")

    batch = mnist_lmdb.read_idx_images(images)[-5:].astype(np.float32)[:, None] / 256
    workspace.FeedBlob("data", batch)
    workspace.RunNetOnce(deploy_model.net)
    print("deploy model predicts", workspace.FetchBlob("softmax").argmax(axis=1),
          "for labels", mnist_lmdb.read_idx_labels(labels)[-5:])


if __name__ == "__main__":
    main()
