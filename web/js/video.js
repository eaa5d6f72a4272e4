// Turns canvas frames into a video file, in the browser, one frame at a time: WebCodecs'
// VideoEncoder (VP9) into a WebM file (webm-muxer from npm), or, where WebCodecs or VP9 is
// missing, an animated GIF (gifenc from npm). Frames are encoded as they arrive and only the
// compressed file grows, so memory stays flat over hundreds of frames; nothing leaves the
// device. Both libraries are copied from their pinned npm packages into vendor/ by the build.

import { ArrayBufferTarget, Muxer } from '../vendor/video/webm-muxer.mjs';
import { GIFEncoder, applyPalette, quantize } from '../vendor/video/gifenc.esm.js';

const CODEC = 'vp09.00.10.08';
// WebKitGTK (WebKit's Linux builds: Epiphany, MiniBrowser) has WebCodecs, but asking its
// VideoEncoder anything, even isConfigSupported, kills the page's process (2.50 here, with
// GStreamer's vp9enc installed): it makes GIFs. Safari's WebKit (macOS, iOS) says neither
// Linux nor X11.
const WEBKIT_GTK = /AppleWebKit/.test(navigator.userAgent) && /Linux|X11/.test(navigator.userAgent)
  && !/Chrome|Chromium|Android/.test(navigator.userAgent);

async function webmRecorder(width, height, fps) {
  if (typeof VideoEncoder === 'undefined') return null;
  const config = { codec: CODEC, width, height, bitrate: 4e6, framerate: fps };
  try {
    if (!(await VideoEncoder.isConfigSupported(config)).supported) return null;
  } catch {
    return null;
  }
  const muxer = new Muxer({ target: new ArrayBufferTarget(), video: { codec: 'V_VP9', width, height, frameRate: fps } });
  let failure = null;
  const encoder = new VideoEncoder({
    output: (chunk, meta) => muxer.addVideoChunk(chunk, meta),
    error: (error) => { failure = error; },
  });
  encoder.configure(config);
  let count = 0;
  return {
    kind: 'webm', type: 'video/webm', extension: 'webm', why: null,
    get frames() { return count; },
    add(canvas) {
      if (failure) throw failure;
      const frame = new VideoFrame(canvas, {
        timestamp: Math.round((count * 1e6) / fps), duration: Math.round(1e6 / fps),
        visibleRect: { x: 0, y: 0, width, height } });
      encoder.encode(frame, { keyFrame: count % (fps * 2) === 0 });
      frame.close();
      count += 1;
    },
    async finish() {
      await encoder.flush();
      encoder.close();
      if (failure) throw failure;
      muxer.finalize();
      return new Blob([muxer.target.buffer], { type: 'video/webm' });
    },
  };
}

function gifRecorder(width, height, fps, why) {
  const gif = GIFEncoder();
  let count = 0;
  return {
    kind: 'gif', type: 'image/gif', extension: 'gif', why,
    get frames() { return count; },
    add(canvas) {
      const { data } = canvas.getContext('2d').getImageData(0, 0, width, height);
      const palette = quantize(data, 256);
      gif.writeFrame(applyPalette(data, palette), width, height, { palette, delay: Math.round(1000 / fps) });
      count += 1;
    },
    async finish() {
      gif.finish();
      return new Blob([gif.bytes()], { type: 'image/gif' });
    },
  };
}

// A recorder for width x height frames at `fps`: {kind, type, extension, why, frames,
// add(canvas), finish() -> Promise<Blob>}; `why` says why a GIF is made instead of a WebM
// (null for a WebM). `prefer: 'gif'` skips WebCodecs (for tests and for browsers whose
// encoder misbehaves).
export async function createRecorder(width, height, fps = 12, { prefer = 'webm' } = {}) {
  // VP9 wants even sizes: a frame one pixel wider or taller is encoded as the even size below.
  const even = (n) => Math.max(2, n - (n % 2));
  if (prefer !== 'webm') return gifRecorder(width, height, fps, 'asked for a GIF');
  if (WEBKIT_GTK) return gifRecorder(width, height, fps, "WebKitGTK's video encoder crashes the page");
  const recorder = await webmRecorder(even(width), even(height), fps);
  return recorder ?? gifRecorder(width, height, fps, 'this browser has no WebCodecs VP9 encoder');
}
