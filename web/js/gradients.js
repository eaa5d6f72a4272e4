// Corrections to tfjs 4.22's gradients, for every backend (a gradient is written with ops, so
// one registration serves them all; each backend's kernels stay its own).
//
// AvgPool with 'same' padding: the forward pass divides each window by the number of real
// pixels in it (as TensorFlow does: InceptionV3's pooling branches near the border), but
// every backend's AvgPoolGrad kernel divides by the whole window size. The gradient is then
// wrong on border pixels (0.24 off in a 7x7 test), and InceptionV3's input gradient drifted
// from TensorFlow's (cosine 0.989 at mixed5). Correct: scale dy by window size / real count
// before that kernel, which then spreads dy_i / count_i over window i exactly.

function correctAvgPoolGradient(tf) {
  tf.registerGradient({
    kernelName: 'AvgPool',
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { filterSize, strides, pad, dimRoundingMode } = attrs;
      return {
        x: () => {
          const [fh, fw] = Array.isArray(filterSize) ? filterSize : [filterSize, filterSize];
          const counts = tf.tidy(() => tf.conv2d(tf.ones([1, x.shape[1], x.shape[2], 1]),
            tf.ones([fh, fw, 1, 1]), strides, pad, 'NHWC', 1, dimRoundingMode));
          const scaled = tf.tidy(() => tf.mul(dy, tf.div(tf.scalar(fh * fw), counts)));
          const dx = tf.engine().runKernel('AvgPoolGrad', { dy: scaled, input: x },
            { filterSize, strides, pad, dimRoundingMode });
          tf.dispose([counts, scaled]);
          return dx;
        },
      };
    },
  });
}

export function registerGradientFixes(tf) {
  correctAvgPoolGradient(tf);
}
