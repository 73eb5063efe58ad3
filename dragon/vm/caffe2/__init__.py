"""The Caffe2 front end: ``caffe2.python`` and ``caffe2.proto`` as ``dragon.vm.caffe2``.

    from dragon.vm.caffe2.python import core, workspace
    from dragon.vm.caffe2.proto import caffe2_pb2
"""
