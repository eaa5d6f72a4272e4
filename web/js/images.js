// Image glue between the browser and tfjs: decode what the visitor gives (respecting EXIF
// orientation, scaling huge photos down), turn it into a tensor, draw tensors, make PNGs.
// Kept in JS because these are browser APIs (createImageBitmap, canvas, Blob); the page's
// logic that decides what to do with them is Python (pyscript_app/app.py).

export const MAX_SIDE = 2048; // larger photos are scaled to this longer side, with a note

// Decodes a Blob/File into an ImageBitmap at most MAX_SIDE on its longer side.
// Resolves {bitmap, width, height, originalWidth, originalHeight}; rejects with a message a
// visitor can read when the browser cannot decode the file.
export async function decode(blob, maxSide = MAX_SIDE) {
  if (!(blob instanceof Blob)) throw new Error('not an image file');
  if (blob.size === 0) throw new Error('the file is empty');
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob, { imageOrientation: 'from-image' });
  } catch {
    throw new Error(`this browser cannot read that file as an image (${blob.type || 'unknown type'})`);
  }
  const originalWidth = bitmap.width;
  const originalHeight = bitmap.height;
  const scale = Math.min(1, maxSide / Math.max(originalWidth, originalHeight));
  if (scale < 1) {
    const width = Math.max(1, Math.round(originalWidth * scale));
    const height = Math.max(1, Math.round(originalHeight * scale));
    const scaled = await createImageBitmap(bitmap, {
      resizeWidth: width, resizeHeight: height, resizeQuality: 'high',
    });
    bitmap.close();
    bitmap = scaled;
  }
  return { bitmap, width: bitmap.width, height: bitmap.height, originalWidth, originalHeight };
}

// [1, h, w, 3] float32 in [-1, 1] from an ImageBitmap/canvas/image (alpha dropped).
export function toTensor(tf, source) {
  return tf.tidy(() => tf.browser.fromPixels(source).toFloat().div(127.5).sub(1).expandDims(0));
}

// Draws a [1, h, w, 3] tensor in [-1, 1] onto a canvas, synchronously, so the caller may
// dispose the tensor right after (the dream loop frees each step's image at the next step).
export function drawTensor(tf, tensor, canvas) {
  const [, height, width] = tensor.shape;
  const rgb = tf.tidy(() => tensor.squeeze([0]).add(1).mul(127.5).round().clipByValue(0, 255)
    .toInt().dataSync());
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
