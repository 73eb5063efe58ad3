"""``theano.scan_module``: filled by the third Theano engineer (scan, with its gradient)."""
