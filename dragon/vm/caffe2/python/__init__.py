"""Caffe2's ``caffe2.python`` package: workspace, core, model_helper, brew, optimizer, utils.

    from dragon.vm.caffe2.python import workspace, core, model_helper, brew, optimizer
"""
