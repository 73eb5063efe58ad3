"""Brew helpers: each adds the operators (and the parameters) of one layer to a model.

``brew`` calls them with the model's arg_scope applied; call them through brew::

    fc1 = brew.fc(model, data, "fc1", dim_in=784, dim_out=500)
"""
