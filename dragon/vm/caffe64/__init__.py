"""Caffe64 on Dragon (placeholder while modules are written)."""
