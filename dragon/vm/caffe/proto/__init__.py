"""Caffe's protobuf schema, mirrored as ``caffe.proto.caffe_pb2``.

    from dragon.vm.caffe.proto import caffe_pb2
    net = caffe_pb2.NetParameter(name="lenet")
    net.layer.add(name="data", type="Input", top=["data"])

``caffe_pb2.py`` is generated from ``caffe.proto`` in this directory:
``python -m grpc_tools.protoc -I. --python_out=. caffe.proto``.
"""
