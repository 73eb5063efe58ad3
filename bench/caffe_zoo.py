"""Caffe model-zoo inference, batch 1 and 8: dragon.vm.caffe vs OpenCV DNN on the same files.

    python bench/caffe_zoo.py [--nets alexnet,resnet50] [--batches 1,8] [--threads 2]
                              [--repeat 10] [--json out.json] [--keep-blas-env]

Each deploy prototxt is built with ``caffe.Net``, given random weights, saved
with ``net.save`` and read back by ``cv2.dnn.readNetFromCaffe``; both forward
the same input in this process with ``--threads`` threads (OpenCV's own pool
and the BLAS pool numpy uses). Prints median ms per forward and the ratio
Dragon / OpenCV (target <= 1.0).
"""
import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._common import best_time, blas_description, report, use_native_blas_kernel  # noqa: E402

use_native_blas_kernel()

import numpy as np  # noqa: E402

import dragon.vm.caffe as caffe  # noqa: E402

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "caffe"
ZOO = {
    "lenet": "examples/mnist/lenet.prototxt",
    "cifar10_quick": "examples/cifar10/cifar10_quick.prototxt",
    "alexnet": "models/bvlc_alexnet/deploy.prototxt",
    "caffenet": "models/bvlc_reference_caffenet/deploy.prototxt",
    "googlenet": "models/bvlc_googlenet/deploy.prototxt",
    "resnet50": "models/resnet/ResNet-50-deploy.prototxt",
    "squeezenet_v1.1": "models/squeezenet/squeezenet_v1.1_deploy.prototxt",
    "mobilenet_v1": "models/mobilenet/mobilenet_deploy.prototxt",
}


def randomize(net, rng):
    """Random params keeping activations O(1) (BatchNorm statistics valid, factor 1)."""
    for layer, blobs in net.params.items():
        kind = net.layer_dict[layer].type
        for i, blob in enumerate(blobs):
            shape = blob.data.shape
            if kind == "BatchNorm":
                value = [np.zeros(shape), np.ones(shape), np.ones(shape)][i]
            elif kind == "Scale":
                value = np.ones(shape) if i == 0 else np.zeros(shape)
            elif len(shape) > 1:
                value = rng.normal(0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
            else:
                value = np.zeros(shape)
            blob.data[...] = value


def limit_threads(threads):
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print("threadpoolctl is not installed: numpy's BLAS uses its default thread count")
        return None
    return threadpool_limits(limits=threads, user_api="blas")


def bench_net(name, batches, repeat, workdir, cv2):
    path = DATA / ZOO[name]
    if not path.is_file():
        print(f"{name}: {path} is absent, skipped")
        return []
    net = caffe.Net(str(path), caffe.TEST)
    data = net.inputs[0]
    randomize(net, np.random.default_rng(0))
    weights = Path(workdir) / f"{name}.caffemodel"
    net.save(str(weights))
    reference = cv2.dnn.readNetFromCaffe(str(path), str(weights))
    reference.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
    reference.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
    rows = []
    for batch in batches:
        shape = (batch,) + tuple(net.blobs[data].data.shape[1:])
        net.blobs[data].reshape(*shape)
        net.reshape()
        x = np.random.default_rng(batch).uniform(-1, 1, shape).astype(np.float32)

        def ours():
            net.blobs[data].data[...] = x
            return net.forward()

        def theirs():
            reference.setInput(x)
            return reference.forward()

        d_median, _ = best_time(ours, repeat=repeat, warmup=2)
        o_median, _ = best_time(theirs, repeat=repeat, warmup=2)
        rows.append({"workload": f"{name} forward, batch {batch}", "dragon_s": d_median,
                     "peer": f"opencv {cv2.__version__}", "peer_s": o_median})
        print(f"  {name} batch {batch}: dragon {d_median * 1e3:.2f} ms, "
              f"opencv {o_median * 1e3:.2f} ms", flush=True)
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--nets", default=",".join(ZOO))
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--json")
    parser.add_argument("--keep-blas-env", action="store_true")
    args = parser.parse_args()
    try:
        import cv2
    except ImportError:
        sys.exit("OpenCV is not installed (pip install opencv-python-headless): no peer to time")
    cv2.setNumThreads(args.threads)
    limiter = limit_threads(args.threads)
    print(f"BLAS: {blas_description()}; OpenCV {cv2.__version__} with {cv2.getNumThreads()} "
          f"threads")
    batches = [int(b) for b in args.batches.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        for name in args.nets.split(","):
            rows += bench_net(name, batches, args.repeat, workdir, cv2)
    report(rows, args.json)
    if limiter is not None:
        limiter.restore_original_limits()


if __name__ == "__main__":
    main()
