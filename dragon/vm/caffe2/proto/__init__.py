"""Caffe2's protobuf schema, mirrored as ``caffe2.proto.caffe2_pb2``.

    from dragon.vm.caffe2.proto import caffe2_pb2
    op = caffe2_pb2.OperatorDef(type="Relu", input=["X"], output=["Y"])
    net = caffe2_pb2.NetDef(name="net", op=[op])

``caffe2_pb2.py`` is generated from ``caffe2.proto`` in this directory:
``python -m grpc_tools.protoc -I. --python_out=. caffe2.proto``.
"""
