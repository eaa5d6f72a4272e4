"""A native backend that keeps tfjs's books: which tensors are alive, and who freed what.

Native TensorFlow frees a tensor when Python drops it, so a loop that forgets to dispose
leaks nothing natively and everything in the page. `Ledger` wraps `TfBackend` with tfjs's
ownership rules: every tensor an op returns is alive until `dispose`d or dropped by the
`tidy` scope it was made in (unless that scope returns it), and using a freed tensor is an
error (in tfjs it reads "Tensor is disposed"). The count of live tensors is then the
page's `tf.memory().numTensors`, measured natively.
"""

import tensorflow as tf

from dreamengine.ops import Ops


class UseAfterDisposeError(AssertionError):
    """An op was given a tensor that its owner had already freed."""


class Ledger:
    """Wraps a backend; `live` is the number of tensors the engine still holds."""

    # Written from the primitives, so they must use the ledger's own tidy, scale and
    # dispose, not the wrapped backend's (which __getattr__ would hand out, unbooked).
    copy = Ops.copy
    dispose_all = Ops.dispose_all

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.scopes = [[]]
        self.alive = {}  # id -> tensor
        self.freed = []  # freed tensors, kept so that their ids are never reused
        self.freed_ids = set()
        self.foreign_disposals = 0  # dispose() of a tensor the engine did not make

    @property
    def live(self) -> int:
        return len(self.alive)

    def _check(self, values: tuple) -> None:
        for value in values:
            if isinstance(value, (list, tuple)):
                self._check(tuple(value))
            elif tf.is_tensor(value) and id(value) in self.freed_ids:
                raise UseAfterDisposeError("an op was given a tensor that was already disposed")

    def _track(self, result: object) -> object:
        items = result if isinstance(result, (list, tuple)) else [result]
        for item in items:
            if tf.is_tensor(item) and id(item) not in self.alive:
                self.alive[id(item)] = item
                self.scopes[-1].append(item)
        return result

    def _free(self, tensor: object) -> None:
        del self.alive[id(tensor)]
        self.freed.append(tensor)
        self.freed_ids.add(id(tensor))

    def __getattr__(self, name: str) -> object:
        attr = getattr(self.inner, name)
        if not callable(attr):
            return attr

        def op(*args: object) -> object:
            self._check(args)
            return self._track(attr(*args))

        return op

    def tidy(self, fn: object) -> list:
        self.scopes.append([])
        try:
            kept = fn()
        finally:
            scope = self.scopes.pop()
        keep = {id(t) for t in kept}
        for tensor in scope:
            if id(tensor) in self.alive and id(tensor) not in keep:
                self._free(tensor)
        for tensor in kept:
            if id(tensor) in self.alive:
                self.scopes[-1].append(tensor)
        return kept

    def dispose(self, tensor: object) -> None:
        if id(tensor) in self.alive:
            self._free(tensor)
        elif id(tensor) not in self.freed_ids:
            self.foreign_disposals += 1

    async def read(self, tensor: object) -> list:
        self._check((tensor,))
        return await self.inner.read(tensor)
