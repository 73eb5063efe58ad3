"""caffe.io: blob/datum conversions, image loading, resizing, 10-crop, Transformer."""
import io as _io
from pathlib import Path

import numpy as np
import pytest

import dragon.vm.caffe as caffe
from dragon.vm.caffe import io as cio
from dragon.vm.caffe.proto import caffe_pb2

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
CAT = DATA / "cat.jpg"


def _cat():
    if not CAT.is_file():
        pytest.skip(f"the test image {CAT} is absent")
    return CAT


def test_caffe_io_is_this_module():
    assert caffe.io is cio


# ---------------------------------------------------------------------------
# Blobs and datums


def test_blobproto_round_trip_with_diff():
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    blob = cio.array_to_blobproto(arr, diff=-arr)
    assert list(blob.shape.dim) == [2, 3, 4]
    np.testing.assert_array_equal(cio.blobproto_to_array(blob), arr)
    np.testing.assert_array_equal(cio.blobproto_to_array(blob, return_diff=True), -arr)
    again = caffe_pb2.BlobProto.FromString(blob.SerializeToString())
    np.testing.assert_array_equal(cio.blobproto_to_array(again), arr)


def test_blobproto_legacy_4d_shape_wins():
    blob = caffe_pb2.BlobProto(num=1, channels=3, height=2, width=2, data=range(12))
    assert cio.blobproto_to_array(blob).shape == (1, 3, 2, 2)


def test_blobproto_double_data_and_bad_count():
    blob = caffe_pb2.BlobProto(double_data=[0.1, 0.2])
    blob.shape.dim.extend([2])
    np.testing.assert_array_equal(cio.blobproto_to_array(blob), [0.1, 0.2])
    bad = caffe_pb2.BlobProto(data=[1, 2, 3])
    bad.shape.dim.extend([2, 2])
    with pytest.raises(ValueError, match=r"3 data values but its shape \(2, 2\) holds 4"):
        cio.blobproto_to_array(bad)


def test_blobprotovector_strings():
    arrays = [np.ones((2, 2)), np.arange(3.0)]
    text = cio.arraylist_to_blobprotovector_str(arrays)
    back = cio.blobprotovector_str_to_arraylist(text)
    assert len(back) == 2
    for a, b in zip(arrays, back):
        np.testing.assert_array_equal(a, b)


def test_datum_uint8_and_float():
    img = np.arange(60, dtype=np.uint8).reshape(3, 4, 5)
    datum = cio.array_to_datum(img, label=3)
    assert (datum.channels, datum.height, datum.width, datum.label) == (3, 4, 5, 3)
    assert len(datum.data) == 60 and not len(datum.float_data)
    np.testing.assert_array_equal(cio.datum_to_array(datum), img)
    floats = np.linspace(0, 1, 12).reshape(1, 3, 4)
    datum = cio.array_to_datum(floats)
    assert not len(datum.data)
    np.testing.assert_allclose(cio.datum_to_array(datum), floats, rtol=1e-6)
    with pytest.raises(ValueError, match="CxHxW"):
        cio.array_to_datum(np.zeros((4, 5)))


def test_encoded_datum_decodes_like_caffe():
    from PIL import Image
    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 0] = 200          # red
    rgb[..., 2] = 10           # a little blue
    buf = _io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    datum = caffe_pb2.Datum(data=buf.getvalue(), encoded=True, label=1)
    chw = cio.datum_to_array(datum)
    assert chw.shape == (3, 4, 6) and chw.dtype == np.uint8
    # Caffe's data layer decodes with OpenCV: BGR order.
    assert (chw[0] == 10).all() and (chw[2] == 200).all()
    gray = _io.BytesIO()
    Image.fromarray(np.full((3, 3), 77, np.uint8)).save(gray, format="PNG")
    one = cio.datum_to_array(caffe_pb2.Datum(data=gray.getvalue(), encoded=True))
    assert one.shape == (1, 3, 3) and (one == 77).all()


# ---------------------------------------------------------------------------
# Images


def test_load_image_color_and_gray():
    path = _cat()
    im = cio.load_image(str(path))
    assert im.ndim == 3 and im.shape[2] == 3 and im.dtype == np.float32
    assert 0.0 <= im.min() and im.max() <= 1.0 and im.max() > 0.5
    gray = cio.load_image(str(path), color=False)
    assert gray.shape == im.shape[:2] + (1,)
    expected = im.astype(np.float64) @ np.array([0.2125, 0.7154, 0.0721])
    np.testing.assert_allclose(gray[..., 0], expected, atol=1e-5)


def test_load_image_grayscale_file_tiles_to_color(tmp_path):
    from PIL import Image
    path = tmp_path / "g.png"
    Image.fromarray(np.full((5, 7), 51, np.uint8)).save(path)
    im = cio.load_image(str(path))
    assert im.shape == (5, 7, 3)
    np.testing.assert_allclose(im, 0.2, atol=1e-6)
    rgba = tmp_path / "a.png"
    Image.fromarray(np.full((2, 2, 4), 255, np.uint8)).save(rgba)
    assert cio.load_image(str(rgba)).shape == (2, 2, 3)


def test_resize_image_bilinear_nearest_and_constant():
    im = np.arange(16, dtype=np.float32).reshape(4, 4, 1) / 15.0
    up = cio.resize_image(im, (8, 8))
    assert up.shape == (8, 8, 1) and up.dtype == np.float32
    # pixel-centre bilinear: the image's range is kept, the mean nearly so
    assert up.min() >= im.min() - 1e-6 and up.max() <= im.max() + 1e-6
    assert abs(up.mean() - im.mean()) < 1e-6
    same = cio.resize_image(im, (4, 4))
    np.testing.assert_allclose(same, im, atol=1e-6)
    near = cio.resize_image(im, (2, 2), interp_order=0)
    assert near.shape == (2, 2, 1) and set(near.ravel()) <= set(im.ravel())
    const = cio.resize_image(np.full((3, 3, 3), 0.7, np.float32), (5, 4))
    assert const.shape == (5, 4, 3) and np.all(const == np.float32(0.7))
    cubic = cio.resize_image(np.random.default_rng(0).random((6, 6, 5)), (9, 9), interp_order=3)
    assert cubic.shape == (9, 9, 5)


def test_oversample_ten_crops():
    im = np.random.default_rng(1).random((10, 12, 3)).astype(np.float32)
    crops = cio.oversample([im, im + 1], (6, 8))
    assert crops.shape == (20, 6, 8, 3) and crops.dtype == np.float32
    np.testing.assert_array_equal(crops[0], im[:6, :8])          # top-left
    np.testing.assert_array_equal(crops[1], im[:6, 4:])          # top-right
    np.testing.assert_array_equal(crops[2], im[4:, :8])          # bottom-left
    np.testing.assert_array_equal(crops[3], im[4:, 4:])          # bottom-right
    np.testing.assert_array_equal(crops[4], im[2:8, 2:10])       # centre
    for k in range(5):
        np.testing.assert_array_equal(crops[5 + k], crops[k][:, ::-1])
    np.testing.assert_array_equal(crops[10], im[:6, :8] + 1)


# ---------------------------------------------------------------------------
# Transformer


def _transformer(shape=(1, 3, 8, 10)):
    t = cio.Transformer({"data": shape})
    t.set_transpose("data", (2, 0, 1))
    t.set_channel_swap("data", (2, 1, 0))
    t.set_raw_scale("data", 255.0)
    t.set_mean("data", np.array([104.0, 117.0, 123.0]))
    t.set_input_scale("data", 0.5)
    return t


def test_transformer_preprocess_order():
    rng = np.random.default_rng(2)
    im = rng.random((8, 10, 3)).astype(np.float32)
    out = _transformer().preprocess("data", im)
    assert out.shape == (3, 8, 10) and out.dtype == np.float32
    expected = (im.transpose(2, 0, 1)[[2, 1, 0]] * 255.0
                - np.array([104.0, 117.0, 123.0])[:, None, None]) * 0.5
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-4)
    # the caller's image is not modified
    assert im.max() <= 1.0


def test_transformer_resizes_and_deprocess_inverts():
    t = _transformer()
    im = np.random.default_rng(3).random((16, 20, 3)).astype(np.float32)
    out = t.preprocess("data", im)
    assert out.shape == (3, 8, 10)
    back = t.deprocess("data", out[np.newaxis])
    assert back.shape == (8, 10, 3)
    np.testing.assert_allclose(back, cio.resize_image(im, (8, 10)), atol=1e-5)


def test_transformer_with_cat_and_full_mean():
    im = cio.load_image(str(_cat()))
    t = cio.Transformer({"data": (1, 3, 227, 227)})
    t.set_transpose("data", (2, 0, 1))
    t.set_mean("data", np.full((3, 227, 227), 0.5))
    out = t.preprocess("data", im)
    assert out.shape == (3, 227, 227)
    assert -0.5 - 1e-6 <= out.min() and out.max() <= 0.5 + 1e-6


def test_transformer_checks_name_the_input():
    t = cio.Transformer({"data": (1, 3, 8, 8)})
    with pytest.raises(KeyError, match="'label' is not one of the net inputs"):
        t.set_raw_scale("label", 2)
    with pytest.raises(ValueError, match="needs 3 axes"):
        t.set_transpose("data", (1, 0))
    with pytest.raises(ValueError, match="needs 3 channels"):
        t.set_channel_swap("data", (1, 0))
    with pytest.raises(ValueError, match="mean has 4 channels"):
        t.set_mean("data", np.zeros(4))
    with pytest.raises(ValueError, match="does not fit input 'data'"):
        t.set_mean("data", np.zeros((3, 4, 4)))
    with pytest.raises(ValueError, match="does not fit input 'data'"):
        t.set_mean("data", np.zeros((8, 8)))    # HxW only fits a one-channel input
    gray = cio.Transformer({"data": (1, 1, 8, 8)})
    gray.set_transpose("data", (2, 0, 1))
    gray.set_mean("data", np.ones((8, 8)))
    assert gray.preprocess("data", np.ones((8, 8, 1))).max() == 0.0
