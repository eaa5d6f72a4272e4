"""Native TensorFlow side of the dream engine: the reference backend and the command line.

The algorithm itself lives in `pyscript_app/dreamengine/` and is shared with the page;
this package only supplies TensorFlow tensor operations and file input/output.
"""

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ENGINE_DIR = REPO / "pyscript_app"
if str(ENGINE_DIR) not in sys.path:  # the engine is imported as `dreamengine`, as in the page
    sys.path.insert(0, str(ENGINE_DIR))
