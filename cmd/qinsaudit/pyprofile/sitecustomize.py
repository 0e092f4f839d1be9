"""Written by `qinsaudit profile`: boots qinsaudit_marks, then runs the
sitecustomize this one shadows, if any."""
import os
import sys

import qinsaudit_marks

qinsaudit_marks._boot()

_here = os.path.dirname(os.path.abspath(__file__))
_path = [p for p in sys.path if os.path.abspath(p or ".") != _here]
del sys.modules["sitecustomize"]
_saved = sys.path
try:
    sys.path = _path
    import sitecustomize  # noqa: F401  (the original, if there is one)
except ImportError:
    pass
finally:
    sys.path = _saved
