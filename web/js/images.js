// Image glue between the browser and tfjs: decode what the visitor gives (respecting EXIF
// orientation, scaling huge photos down), turn it into a tensor, draw tensors, make PNGs.
// Kept in JS because these are browser APIs (createImageBitmap, canvas, Blob); the page's
// logic that decides what to do with them is Python (pyscript_app/app.py).

export const MAX_PIXELS = 80e6; // files claiming more are refused before decoding

// Width and height from the file header (PNG, GIF, JPEG, WebP, BMP), or null when the format
// is not one of these. Read before decoding, so that a file claiming 50000x50000 pixels is
// refused instead of allocated.
export async function headerSize(blob) {
  const bytes = new Uint8Array(await blob.slice(0, 262144).arrayBuffer());
  const be16 = (i) => (bytes[i] << 8) | bytes[i + 1];
  const le16 = (i) => bytes[i] | (bytes[i + 1] << 8);
  const le24 = (i) => le16(i) | (bytes[i + 2] << 16);
  const be32 = (i) => ((bytes[i] << 24) >>> 0) + (bytes[i + 1] << 16) + (bytes[i + 2] << 8) + bytes[i + 3];
  const text = (i, n) => String.fromCharCode(...bytes.slice(i, i + n));
  if (bytes.length >= 24 && bytes[0] === 0x89 && text(1, 3) === 'PNG') {
    return { width: be32(16), height: be32(20) };
  }
  if (bytes.length >= 10 && text(0, 4) === 'GIF8') return { width: le16(6), height: le16(8) };
  if (bytes.length >= 26 && text(0, 2) === 'BM') {
    return { width: Math.abs(le16(18) | (le16(20) << 16)), height: Math.abs(le16(22) | (le16(24) << 16)) };
  }
  if (bytes.length >= 30 && text(0, 4) === 'RIFF' && text(8, 4) === 'WEBP') {
    const chunk = text(12, 4);
    if (chunk === 'VP8X') return { width: 1 + le24(24), height: 1 + le24(27) };
    if (chunk === 'VP8 ') return { width: le16(26) & 0x3fff, height: le16(28) & 0x3fff };
    if (chunk === 'VP8L') {
      const b = bytes;
      return { width: 1 + (b[21] | ((b[22] & 0x3f) << 8)),
               height: 1 + ((b[22] >> 6) | (b[23] << 2) | ((b[24] & 0x0f) << 10)) };
    }
  }
  if (bytes.length >= 4 && bytes[0] === 0xff && bytes[1] === 0xd8) {
    for (let i = 2; i + 9 < bytes.length;) {
      if (bytes[i] !== 0xff) { i += 1; continue; }
      const marker = bytes[i + 1];
      if (marker === 0xff) { i += 1; continue; }
      if (marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker)) {
        return { width: be16(i + 7), height: be16(i + 5) };
      }
      if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) { i += 2; continue; }
      i += 2 + be16(i + 2);
    }
  }
  return null;
}

// Whether the file starts like an image this browser reads (JPEG, PNG, GIF, WebP, BMP).
async function looksLikeImage(blob) {
  const b = new Uint8Array(await blob.slice(0, 12).arrayBuffer());
  const text = (i, n) => String.fromCharCode(...b.slice(i, i + n));
  return (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) || (b[0] === 0x89 && text(1, 3) === 'PNG')
    || text(0, 4) === 'GIF8' || (text(0, 4) === 'RIFF' && text(8, 4) === 'WEBP') || text(0, 2) === 'BM';
}

// Decodes a Blob/File into an ImageBitmap at most `maxSide` on its longer side and at most
// `maxPixels` in all (null: no such limit; the running GPU's largest texture sets it).
// `minSide`: smaller images cannot dream. The limits come from the Python side
// (pyscript_app/limits.py, the engine's schedule), their one source.
// Resolves {bitmap, width, height, originalWidth, originalHeight}; rejects with a message a
// visitor can read.
export async function decode(blob, { maxSide, maxPixels = null, minSide }) {
  if (!(blob instanceof Blob)) throw new Error('not an image file');
  if (blob.size === 0) throw new Error('the file is empty');
  const claimed = await headerSize(blob);
  if (claimed && claimed.width * claimed.height > MAX_PIXELS) {
    throw new Error(`the image is too large to open: ${claimed.width}×${claimed.height} pixels `
      + `(at most ${MAX_PIXELS / 1e6} megapixels)`);
  }
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    // The header said it is an image this browser reads: then the file is cut short or
    // damaged (a partial download). Otherwise it is not an image (or not one it reads).
    throw new Error(await looksLikeImage(blob)
      ? 'the image file is damaged or incomplete'
      : `that file is not an image this browser can read (${blob.type || 'unknown type'})`);
  }
  const originalWidth = bitmap.width;
  const originalHeight = bitmap.height;
  let scale = Math.min(1, maxSide / Math.max(originalWidth, originalHeight));
  if (maxPixels) scale = Math.min(scale, Math.sqrt(maxPixels / (originalWidth * originalHeight)));
  if (Math.min(originalWidth, originalHeight) * scale < minSide) {
    bitmap.close();
    throw new Error(`the image is too small or too thin to dream: ${originalWidth}×${originalHeight} `
      + `pixels (at least ${minSide} px on each side, after scaling to fit)`);
  }
  if (scale < 1) {
    const width = Math.max(1, Math.floor(originalWidth * scale));
    const height = Math.max(1, Math.floor(originalHeight * scale));
    const scaled = await createImageBitmap(bitmap, {
      resizeWidth: width, resizeHeight: height, resizeQuality: 'high',
    });
    bitmap.close();
    bitmap = scaled;
  }
  return { bitmap, width: bitmap.width, height: bitmap.height, originalWidth, originalHeight };
}

// The model's input range, [low, high] for pixels 0 and 255: its manifest's input.range, the
// one source of it (web/js/boot.js sets it whenever a model loads).
let range = null;

export function useRange(modelRange) {
  range = [Number(modelRange[0]), Number(modelRange[1])];
}

// [1, h, w, 3] float32 in the model's input range from an ImageBitmap/canvas/image (alpha
// dropped).
export function toTensor(tf, source) {
  const [low, high] = range;
  return tf.tidy(() => tf.browser.fromPixels(source).toFloat().div(255 / (high - low)).add(low)
    .expandDims(0));
}

// The [h, w, 3] int32 pixels (0-255) of a [1, h, w, 3] tensor in the model's input range:
// what drawTensor reads back (also run by pyscript_app/prepare.py, to build its programs).
export function previewPixels(tf, tensor) {
  const [low, high] = range;
  return tf.tidy(() => tensor.squeeze([0]).sub(low).mul(255 / (high - low)).round()
    .clipByValue(0, 255).toInt());
}

// Draws a [1, h, w, 3] tensor in the model's input range onto a canvas. Asynchronous: a synchronous read
// (dataSync) stalls a GPU backend's pipeline, and on WebGPU it lost the device here. `read`
// (the page's, which also notices a lost GPU) reads a tensor's values. The caller keeps the
// tensor alive until the returned promise settles.
export async function drawTensor(tf, tensor, canvas, read = (t) => t.data()) {
  const [, height, width] = tensor.shape;
  const pixels = previewPixels(tf, tensor);
  let rgb;
  try {
    rgb = await read(pixels);
  } finally {
    pixels.dispose();
  }
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0, j = 0; i < rgb.length; i += 3, j += 4) {
    rgba[j] = rgb[i]; rgba[j + 1] = rgb[i + 1]; rgba[j + 2] = rgb[i + 2]; rgba[j + 3] = 255;
  }
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(rgba, width, height), 0, 0);
}

export function drawBitmap(bitmap, canvas) {
  canvas.width = bitmap.width;
  canvas.height = bitmap.height;
  canvas.getContext('2d').drawImage(bitmap, 0, 0);
}

export function toPng(canvas) {
  return new Promise((resolve, reject) => canvas.toBlob(
    (blob) => (blob ? resolve(blob) : reject(new Error('could not encode the PNG'))), 'image/png'));
}

// Saves a Blob as a file through a temporary link (no navigation, no other origin).
export function save(blob, filename) {
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

// A neutral grey image with a little seeded noise, [1, size, size, 3] in [-1, 1]: where the
// channel explorer starts each feature's picture, so it shows the feature, not a photo.
export function greyNoise(tf, size, seed, amplitude) {
  return tf.randomUniform([1, size, size, 3], -amplitude, amplitude, 'float32', seed);
}

// Calls onVisible(index) when element `index` of `elements` scrolls into view of `root` (a
// scrolling container; the page's viewport when null), once each.
export function watchVisible(elements, onVisible, root = null) {
  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      onVisible(Number(entry.target.dataset.index));
    }
  }, { root });
  elements.forEach((element) => observer.observe(element));
  return observer;
}
