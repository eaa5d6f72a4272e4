// Why every JS call the Python side makes during a dream goes through `guard`:
// MicroPython (1.27, and 1.29 previews) does not turn an exception thrown by a JS function it
// calls into a Python exception. The JS exception unwinds straight through the interpreter's
// C frames, skipping their cleanup: the running coroutine is gone without a trace (the page
// would stay at "Dreaming…" for ever) and the interpreter's exception handling is left
// pointing at dead frames, so a later Python exception can crash it. Out-of-memory in the wasm
// backend ("memory access out of bounds") is the everyday case.
//
// A guarded object's functions never throw: an exception is recorded as the fault and the call
// returns undefined (None in both interpreters). The Python side fails at once on that None
// with an ordinary, clean Python exception, then asks `takeFault()` for the real reason.
// Pyodide converts JS exceptions itself, but runs the same way, so both interpreters take one
// path. Promises pass through untouched: a rejection already arrives in Python as an exception.

let fault = null;
const wrapped = new WeakMap();

function record(error) {
  if (fault === null) {
    fault = String(error?.message || error);
    console.warn('dreamframe: a call from Python failed:', error);
  }
  return undefined;
}

function guardFunction(fn, self) {
  return (...args) => {
    try {
      return wrap(fn.apply(self, args));
    } catch (error) {
      return record(error);
    }
  };
}

// Functions and plain objects (namespaces such as tf.image, the engine, a graph model) are
// guarded; tensors, arrays, typed arrays and promises are handed over as they are.
function wrap(value) {
  if (typeof value === 'function') return guardFunction(value, undefined);
  if (value === null || typeof value !== 'object' || Array.isArray(value)
      || ArrayBuffer.isView(value) || value instanceof Promise
      || (globalThis.tf && value instanceof globalThis.tf.Tensor)) {
    return value;
  }
  return guard(value);
}

// A view of `target` whose methods return undefined instead of throwing (see above). Methods
// keep `target` as `this`. Anything that is not an object guards to undefined, so that
// guarding the None a failed call returned fails in Python, not in JS.
export function guard(target) {
  if (target === null || (typeof target !== 'object' && typeof target !== 'function')) return undefined;
  if (typeof target === 'function') return guardFunction(target, undefined); // e.g. a callback
  if (wrapped.has(target)) return wrapped.get(target);
  // An empty stand-in as the proxy's target: the view returns wrapped values, which a proxy
  // may not do for a frozen target's own properties.
  const view = new Proxy(Object.create(null), {
    get(_, key) {
      const value = Reflect.get(target, key);
      if (typeof value === 'function') return guardFunction(value, target);
      return wrap(value);
    },
    has: (_, key) => key in target,
  });
  wrapped.set(target, view);
  return view;
}

// The message of the first failure since the last call, or null; clears it.
export function takeFault() {
  const first = fault;
  fault = null;
  return first;
}
