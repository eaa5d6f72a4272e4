"""The dream engine: DeepDream as gradient ascent on the image, written once.

The same code runs in the page (Pyodide or MicroPython under PyScript, over TensorFlow.js)
and natively (CPython over TensorFlow; `native/`), so the browser can be checked against a
reference. It is split the way Lucid's optvis is:

* `objective`  - what to maximise: weighted layers, mean or L2, optionally one channel;
* `schedule`   - how: octaves, steps per octave, step size;
* `transforms` - what keeps it clean: random roll (jitter) and tiling;
* `plan`       - settings in, the three above out: the one front door for every caller;
* `render`     - the loop that ties them together, one step at a time, and the one async
  driver of a dream or a zoom (`zoom`, `guide` build on it);
* a backend    - the tensor operations, the protocol `ops.Ops`: `tfjs_backend.TfjsBackend`
  here, `native.tf_backend.TfBackend` for TensorFlow. Both subclass it, so the algorithm
  never touches a tensor library directly.

Only what both MicroPython and CPython run is used here: no typing, dataclasses, enum or
__future__ imports.
"""
