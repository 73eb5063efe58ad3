"""``python -m dragon.vm.caffe64``: see ``dragon.vm.caffe64.cli``."""
import os
import sys

from dragon.vm.caffe64.cli import main

try:
    sys.exit(main())
except BrokenPipeError:  # stdout closed early (e.g. piped into head): stop quietly
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(1)
