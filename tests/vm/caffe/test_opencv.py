"""The zoo's deploy nets against OpenCV DNN, an independent Caffe importer.

For each net: build ``caffe.Net(prototxt, caffe.TEST)`` at batch 1, fill every
parameter with deterministic random values scaled so activations stay O(1)
(BatchNorm variances positive, scale factor 1), ``net.save`` a caffemodel, load
prototxt + caffemodel with ``cv2.dnn.readNetFromCaffe`` and compare both
forward results on the same random input: the final output, and the blob the
final Softmax reads (the logits), within 1e-4 of each output's scale.
"""
from pathlib import Path

import numpy as np
import pytest

import dragon.vm.caffe as caffe

cv2 = pytest.importorskip("cv2", reason="OpenCV DNN (opencv-python-headless) is the reference "
                                        "Caffe importer these tests compare against")

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "caffe"

ZOO = {
    "lenet": "examples/mnist/lenet.prototxt",
    "cifar10_quick": "examples/cifar10/cifar10_quick.prototxt",
    "cifar10_full": "examples/cifar10/cifar10_full.prototxt",
    "alexnet": "models/bvlc_alexnet/deploy.prototxt",
    "caffenet": "models/bvlc_reference_caffenet/deploy.prototxt",
    "googlenet": "models/bvlc_googlenet/deploy.prototxt",
    "resnet50": "models/resnet/ResNet-50-deploy.prototxt",
    "squeezenet_v1.1": "models/squeezenet/squeezenet_v1.1_deploy.prototxt",
    "mobilenet_v1": "models/mobilenet/mobilenet_deploy.prototxt",
}

# Deploy-net blob shapes Caffe computes (batch of the prototxt), as a check on geometry.
EXPECTED_SHAPES = {
    "alexnet": {"conv1": (10, 96, 55, 55), "pool1": (10, 96, 27, 27), "pool5": (10, 256, 6, 6),
                "prob": (10, 1000)},
    "googlenet": {"pool1/3x3_s2": (10, 64, 56, 56), "inception_3a/output": (10, 256, 28, 28),
                  "pool5/7x7_s1": (10, 1024, 1, 1), "prob": (10, 1000)},
    "resnet50": {"pool1": (1, 64, 56, 56), "res2c": (1, 256, 56, 56), "res5c": (1, 2048, 7, 7),
                 "prob": (1, 1000)},
    "squeezenet_v1.1": {"pool1": (10, 64, 56, 56), "fire9/concat": (10, 512, 14, 14),
                        "pool10": (10, 1000, 1, 1)},
    "mobilenet_v1": {"conv5_6/sep": (1, 1024, 7, 7), "pool6": (1, 1024, 1, 1)},
    "lenet": {"pool2": (64, 50, 4, 4), "ip2": (64, 10)},
    "cifar10_quick": {"pool3": (1, 64, 4, 4), "ip2": (1, 10)},
}


def prototxt(name):
    path = DATA / ZOO[name]
    if not path.is_file():
        pytest.skip(f"the model-zoo file {path} is absent")
    return path


def randomize(net, seed):
    """Deterministic random params keeping activations O(1), as the module docstring says."""
    rng = np.random.default_rng(seed)
    for layer, blobs in net.params.items():
        kind = net.layer_dict[layer].type
        for i, blob in enumerate(blobs):
            shape = blob.data.shape
            if kind == "BatchNorm":
                value = [rng.normal(0, 0.1, shape), rng.uniform(0.5, 1.5, shape),
                         np.ones(shape)][i]
            elif kind == "Scale":
                value = rng.uniform(0.8, 1.2, shape) if i == 0 else rng.normal(0, 0.1, shape)
            elif kind == "PReLU":
                value = rng.uniform(0.1, 0.3, shape)
            elif len(shape) > 1:
                fan_in = int(np.prod(shape[1:])) if kind != "Deconvolution" else shape[0]
                value = rng.normal(0, np.sqrt(2.0 / fan_in), shape)
            else:
                value = rng.normal(0, 0.1, shape)
            blob.data[...] = value


def logits_blob(net):
    """The blob the final Softmax reads, or None when the net does not end in one."""
    last = list(net.layer_dict)[-1]
    if net.layer_dict[last].type != "Softmax":
        return None
    return net.bottom_names[last][0]


def producer(net, blob):
    """The last layer writing ``blob`` (OpenCV names outputs by layer)."""
    return [name for name in net.layer_dict if blob in net.top_names[name]][-1]


@pytest.mark.parametrize("name", list(ZOO))
def test_zoo_net_matches_opencv(tmp_path, name):
    path = prototxt(name)
    net = caffe.Net(str(path), caffe.TEST)
    for blob, shape in EXPECTED_SHAPES.get(name, {}).items():
        assert net.blobs[blob].data.shape == shape, blob
    data = net.inputs[0]
    single = (1,) + net.blobs[data].data.shape[1:]
    net.blobs[data].reshape(*single)
    net.reshape()
    randomize(net, seed=len(name))
    weights = tmp_path / f"{name}.caffemodel"
    net.save(str(weights))

    x = np.random.default_rng(7).uniform(-1, 1, single).astype(np.float32)
    net.blobs[data].data[...] = x
    out_name = net.outputs[0]
    ours = net.forward()[out_name].copy()

    reference = cv2.dnn.readNetFromCaffe(str(path), str(weights))
    reference.setInput(x)
    theirs = reference.forward()
    assert theirs.size == ours.size
    scale = max(1.0, float(np.abs(theirs).max()))
    diff = float(np.abs(ours.reshape(theirs.shape) - theirs).max())
    assert diff <= 1e-4 * scale, f"{name}: output '{out_name}' differs by {diff} (scale {scale})"

    logits = logits_blob(net)
    if logits is not None:
        reference.setInput(x)
        theirs = reference.forward(producer(net, logits))
        mine = net.blobs[logits].data
        scale = max(1.0, float(np.abs(theirs).max()))
        diff = float(np.abs(mine.reshape(theirs.shape) - theirs).max())
        assert diff <= 1e-4 * scale, f"{name}: logits '{logits}' differ by {diff} (scale {scale})"
