"""``theano.tensor.nnet.conv``: the old conv2d interface (image_shape, 'valid' or 'full').

    from dragon.vm.theano.tensor.nnet import conv
    conv_out = conv.conv2d(input=x, filters=W, filter_shape=(20, 1, 5, 5),
                           image_shape=(500, 1, 28, 28))

A true convolution (flipped kernels), as the new ``conv2d`` with ``filter_flip=True``.
"""
from __future__ import annotations

from dragon.vm.theano.tensor.nnet import abstract_conv


def conv2d(input, filters, image_shape=None, filter_shape=None,  # noqa: A002 - Theano's name
           border_mode="valid", subsample=(1, 1), **kargs):
    """Convolve a 4-d batch of images with a 4-d bank of filters ('valid' or 'full').

    image_shape / filter_shape: optional shapes, checked when the function runs. Other
    keyword arguments (ConvOp's tuning options) are accepted and ignored.
    """
    if border_mode not in ("valid", "full"):
        raise ValueError(f"the old conv2d takes border_mode 'valid' or 'full', got "
                         f"{border_mode!r} (theano.tensor.nnet.conv2d takes more)")
    # ConvOp's tuning options (unroll_batch, unroll_kern, openmp, verbose, ...) change only
    # how Theano's C code runs; logical shapes changed results and are not supported.
    if kargs.get("imshp_logical") is not None or kargs.get("kshp_logical") is not None:
        raise NotImplementedError("conv2d with imshp_logical / kshp_logical is not supported")
    return abstract_conv.conv2d(input, filters, input_shape=image_shape,
                                filter_shape=filter_shape, border_mode=border_mode,
                                subsample=subsample, filter_flip=True)
