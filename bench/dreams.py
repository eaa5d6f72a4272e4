"""A full default dream on wasm at a given size: wall time and peak memory.

Memory figures are tfjs's own: the largest `tf.memory().numBytes` seen after any step (all
live tensors), and the wasm heap at the end (`WebAssembly.Memory` only grows, so that is its
peak). `performance.measureUserAgentSpecificMemory` would need cross-origin isolation.
"""

FULL_DREAM = """async ([sample, width, height]) => {
  const { tf, engine } = window.dreamframe;
  const img = new Image(); img.src = sample; await img.decode();
  const image = tf.tidy(() => tf.image.resizeBilinear(
    window.dreamframe.images.toTensor(tf, img), [height, width]));
  let peak = tf.memory().numBytes, steps = 0;
  const start = performance.now();
  const result = await engine.dream(image, '{}', () => {
    steps += 1; peak = Math.max(peak, tf.memory().numBytes); });
  const seconds = (performance.now() - start) / 1000;
  const shape = result.shape;
  result.dispose(); image.dispose();
  return { seconds, steps, shape, sample, peak_tensor_bytes: peak,
           wasm_heap_bytes: tf.backend().wasm.HEAPU8.buffer.byteLength };
}"""


def full_dream(browser: object, base_url: str, width: int, height: int,
               sample: str = "samples/coffee.jpg") -> dict:
    """Dream `sample` resized to width x height with the default settings, on wasm."""
    page = browser.new_page()
    crashed = []
    page.on("crash", lambda _: crashed.append(True))
    try:
        page.goto(f"{base_url}index.html?backend=wasm")
        page.wait_for_function("() => window.dreamframe && window.dreamframe.engine",
                               timeout=120_000)
        page.set_default_timeout(3_600_000)
        return page.evaluate(FULL_DREAM, [sample, width, height])
    except Exception as error:
        return {"error": ("tab crashed: " if crashed else "") + str(error).splitlines()[0]}
    finally:
        page.close()
