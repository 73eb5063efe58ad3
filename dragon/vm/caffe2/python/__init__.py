"""Caffe2's ``caffe2.python`` package: workspace, core, model_helper, brew, optimizer, utils.

    from dragon.vm.caffe2.python import workspace, core, model_helper, brew, optimizer
"""

# Operators the Caffe translator emits (Max, Slice) must exist whenever a translated
# predict_net is loaded, not only after the translator was imported.
from dragon.vm.caffe2.python import operators_extra  # noqa: E402,F401
