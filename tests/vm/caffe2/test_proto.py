"""Caffe2's protobuf schema (dragon.vm.caffe2.proto.caffe2_pb2)."""
import numpy as np
import pytest

from dragon.vm.caffe2.proto import caffe2_pb2

FIELD_NUMBERS = {
    caffe2_pb2.OperatorDef: dict(input=1, output=2, name=3, type=4, arg=5, device_option=6,
                                 engine=7, control_input=8, is_gradient_op=9, debug_info=10,
                                 domain=11, op_version=12),
    caffe2_pb2.NetDef: dict(name=1, op=2, type=3, num_workers=4, device_option=5, arg=6,
                            external_input=7, external_output=8),
    caffe2_pb2.Argument: dict(name=1, f=2, i=3, s=4, floats=5, ints=6, strings=7, n=8,
                              nets=9),
    caffe2_pb2.DeviceOption: dict(device_type=1, device_id=2, random_seed=3, node_name=4),
    caffe2_pb2.TensorProto: dict(dims=1, data_type=2, float_data=3, int32_data=4,
                                 byte_data=5, string_data=6, name=7, device_detail=8,
                                 double_data=9, int64_data=10, segment=11, raw_data=13),
    caffe2_pb2.TensorProto.Segment: dict(begin=1, end=2),
    caffe2_pb2.TensorProtos: dict(protos=1),
    caffe2_pb2.TensorShape: dict(dims=1, data_type=2, unknown_dims=3, unknown_shape=4,
                                 name=5),
    caffe2_pb2.BlobProto: dict(name=1, type=2, tensor=3, content=4),
}


@pytest.mark.parametrize("message_cls", list(FIELD_NUMBERS), ids=lambda c: c.__name__)
def test_field_numbers_match_caffe2(message_cls):
    fields = message_cls.DESCRIPTOR.fields_by_name
    assert set(FIELD_NUMBERS[message_cls]) <= set(fields)
    for name, number in FIELD_NUMBERS[message_cls].items():
        assert fields[name].number == number, "%s.%s" % (message_cls.__name__, name)


def test_spot_checks():
    assert caffe2_pb2.OperatorDef.DESCRIPTOR.fields_by_name["type"].number == 4
    assert caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["n"].number == 8
    assert caffe2_pb2.Argument.DESCRIPTOR.fields_by_name["nets"].number == 9
    assert caffe2_pb2.TensorProto.DESCRIPTOR.fields_by_name["raw_data"].number == 13
    assert "cuda_gpu_id" not in caffe2_pb2.DeviceOption.DESCRIPTOR.fields_by_name


def test_enums():
    t = caffe2_pb2.TensorProto
    assert [t.FLOAT, t.INT32, t.BYTE, t.STRING, t.BOOL, t.UINT8, t.INT8, t.UINT16, t.INT16,
            t.INT64, t.FLOAT16, t.DOUBLE] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 13]
    assert (caffe2_pb2.CPU, caffe2_pb2.CUDA) == (0, 1)


def test_defaults():
    assert caffe2_pb2.TensorProto().data_type == caffe2_pb2.TensorProto.FLOAT
    assert caffe2_pb2.DeviceOption().device_type == caffe2_pb2.CPU
    assert caffe2_pb2.OperatorDef().is_gradient_op is False


def test_packed_fields():
    fields = caffe2_pb2.TensorProto.DESCRIPTOR.fields_by_name
    for name in ("float_data", "int32_data", "double_data", "int64_data"):
        assert fields[name].is_packed, name


def _net():
    net = caffe2_pb2.NetDef(name="toy", type="simple")
    net.external_input.extend(["X", "W", "b"])
    net.external_output.append("Y")
    op = net.op.add(type="FC", input=["X", "W", "b"], output=["Y"], name="fc",
                    engine="", is_gradient_op=False)
    op.device_option.device_type = caffe2_pb2.CUDA
    op.device_option.device_id = 1
    op.arg.add(name="axis", i=1)
    op.arg.add(name="alpha", f=0.5)
    op.arg.add(name="order", s=b"NCHW")
    op.arg.add(name="shape", ints=[2, 3])
    op.arg.add(name="scales", floats=[0.5, 2.0])
    op.arg.add(name="names", strings=[b"a", b"b"])
    body = caffe2_pb2.NetDef(name="body")
    body.op.add(type="Relu", input=["Y"], output=["Y"])
    op.arg.add(name="net", n=body)
    op.arg.add(name="nets", nets=[body, body])
    return net


def test_netdef_round_trip():
    net = _net()
    data = net.SerializeToString()
    back = caffe2_pb2.NetDef()
    back.ParseFromString(data)
    assert back == net
    op = back.op[0]
    assert (op.type, list(op.input), op.device_option.device_id) == ("FC", ["X", "W", "b"], 1)
    args = {a.name: a for a in op.arg}
    assert args["axis"].i == 1 and args["order"].s == b"NCHW"
    assert list(args["shape"].ints) == [2, 3] and len(args["nets"].nets) == 2
    assert args["net"].n.op[0].type == "Relu"


def test_operator_wire_bytes():
    # type is field 4 (LEN): tag 0x22.
    assert caffe2_pb2.OperatorDef(type="Relu").SerializeToString() == b"\x22\x04Relu"


def test_tensor_protos_round_trip():
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    protos = caffe2_pb2.TensorProtos()
    t = protos.protos.add(name="x", dims=x.shape, data_type=caffe2_pb2.TensorProto.FLOAT)
    t.float_data.extend(x.ravel().tolist())
    h = protos.protos.add(name="h", dims=[2], data_type=caffe2_pb2.TensorProto.FLOAT16)
    h.raw_data = np.array([1.0, -2.0], np.float16).tobytes()
    label = protos.protos.add(name="label", dims=[1], data_type=caffe2_pb2.TensorProto.INT32,
                              int32_data=[7])
    label.segment.begin, label.segment.end = 0, 1

    back = caffe2_pb2.TensorProtos.FromString(protos.SerializeToString())
    assert back == protos
    y = np.array(back.protos[0].float_data, np.float32).reshape(tuple(back.protos[0].dims))
    np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(np.frombuffer(back.protos[1].raw_data, np.float16),
                                  [1.0, -2.0])
    assert back.protos[2].segment.end == 1
