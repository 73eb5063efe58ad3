"""The engine: tensors, graphs, autodiff, passes, executor and workspaces."""
