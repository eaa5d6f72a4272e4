"""Guided dreams: a second image steers what the dream paints ("controlling dreams").

As in the original DeepDream notebook: the guide's features at the chosen layers are
computed once, and the dream, instead of amplifying whatever the photo's features already
are, pulls each of its feature vectors x_i towards the guide feature g*(i) it already
resembles most (largest dot product). The loss per layer is

    mean over positions i and channels of  x_i * g*(i)     (= mean_i x_i . g*(i) / channels)

with the choice of g*(i) treated as a constant, so its gradient at x_i is g*(i) itself: the
photo grows the guide's textures and parts where it is already closest to them. It is
computed as the largest entry of each row of X G^T (`ops.dots`, `ops.row_max`): x_i . g*(i)
is exactly max_j x_i . g_j, and the gradient of a max flows only to its largest entry, which
is the constant choice without a stop-gradient (tfjs has none) or a gather by argmax (tfjs
cannot differentiate past a gather's integer indices). Dividing by the channel count keeps
the value on the scale of the plain objective's mean activation, so `mix` (1 = guide only,
0 = the plain objective only) blends two terms of similar size.

The guide's features are held as at most `max_vectors` rows per layer (every n-th pixel in
both directions, divided by the channel count), so memory and the per-step cost of the
matching stay bounded whatever the guide's size. The objective owns those tensors:
`dispose(ops)` frees them.
"""

_SERIAL = [0]  # one number per guide: the compiled-function cache key must tell guides apart


class GuideObjective:
    """The Objective interface (`layers`, `key`, `check`, `__call__`) for a guided dream."""

    def __init__(self, layers: list, mix: float = 1.0, plain: object = None,
                 max_vectors: int = 1024) -> None:
        if not layers:
            raise ValueError("the guide needs at least one layer")
        if not 0.0 <= mix <= 1.0:
            raise ValueError("the guide's mix must be between 0 and 1 (got " + str(mix) + ")")
        if mix < 1.0 and plain is None:
            raise ValueError("a mix below 1 needs a plain objective to mix with")
        if max_vectors < 1:
            raise ValueError("max_vectors must be at least 1")
        self.guide_layers = list(layers)
        self.mix = float(mix)
        self.plain = plain if mix < 1.0 else None  # mix 1: its layers are not computed at all
        self.max_vectors = int(max_vectors)
        self.features = None  # one (m, c) tensor per guide layer, after `set_guide`
        self.serial = None

    @property
    def layers(self) -> list:
        """Guide layers first, then the plain objective's that are not among them."""
        names = list(self.guide_layers)
        if self.plain is not None:
            for name in self.plain.layers:
                if name not in names:
                    names.append(name)
        return names

    @property
    def key(self) -> tuple:
        """Unique to this guide (a backend may compile one function per key, with the guide's
        features inside it)."""
        plain_key = None if self.plain is None else self.plain.key
        return ("guide", self.serial, tuple(self.guide_layers), self.mix, plain_key)

    def check(self, outputs: list) -> None:
        """Refuse layers the model does not have, listing the valid ones."""
        valid = [out["layer"] for out in outputs]
        for name in self.guide_layers:
            if name not in valid:
                raise ValueError("unknown guide layer " + repr(name) + "; valid layers: "
                                 + ", ".join(valid))
        if self.plain is not None:
            self.plain.check(outputs)

    def set_guide(self, ops: object, guide: object) -> None:
        """Compute and keep the guide's features; `guide` is (1, h, w, 3) in the model's
        range, any size the model takes (its manifest's input.min_side). Frees the features
        of an earlier guide."""
        self.dispose(ops)
        self.features = ops.tidy(lambda: self._features(ops, guide))
        _SERIAL[0] += 1
        self.serial = _SERIAL[0]

    def _features(self, ops: object, guide: object) -> list:
        result = []
        for act in ops.activations(guide, self.guide_layers):
            height, width = ops.size(act)
            step = 1
            while (-(-height // step)) * (-(-width // step)) > self.max_vectors:
                step += 1
            # Stored divided by the channel count (NHWC: shape[3] on both backends), so that
            # the loss needs no shapes and the best match (a positive scale) is unchanged.
            result.append(ops.scale(ops.rows(act, step), 1.0 / int(act.shape[3])))
        return result

    def dispose(self, ops: object) -> None:
        """Free the guide's features (the objective cannot be used until `set_guide`)."""
        if self.features is not None:
            for tensor in self.features:
                ops.dispose(tensor)
        self.features = None
        self.serial = None

    def __call__(self, ops: object, image: object, scale: object) -> object:
        """The scalar to maximise for one tile (see the module docstring)."""
        if self.features is None:
            raise ValueError("the guide objective has no guide: call set_guide first")
        activations = ops.activations(image, self.layers)
        total = None
        if self.mix > 0.0:  # mix 0: the plain objective alone, no matching at all
            for index in range(len(self.guide_layers)):
                x = ops.rows(activations[index], 1)
                term = ops.mean(ops.row_max(ops.dots(x, self.features[index])))
                total = term if total is None else ops.add(total, term)
            total = ops.scale(total, self.mix / len(self.guide_layers))
        if self.plain is not None:
            by_name = {}
            for name, act in zip(self.layers, activations):
                by_name[name] = act
            plain = self.plain.loss(ops, [by_name[name] for name in self.plain.layers], 1.0)
            plain = ops.scale(plain, 1.0 - self.mix)
            total = plain if total is None else ops.add(total, plain)
        return ops.scale(total, scale)
