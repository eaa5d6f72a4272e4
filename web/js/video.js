// Turns canvas frames into a video file, in the browser, one frame at a time: an MP4 (H.264)
// or a WebM (VP9) through mediabunny over WebCodecs, or, where neither can be encoded, an
// animated GIF (gifenc). Frames are encoded as they arrive and only the compressed file grows,
// so memory stays flat over hundreds of frames; nothing leaves the device. Both libraries are
// copied from their pinned npm packages into vendor/ by the build. The zoom video uses
// `createRecorder`; web/js/media.js builds its video writer on `createEncoder`.

import {
  BufferTarget, Mp4OutputFormat, Output, QUALITY_HIGH, VideoSample, VideoSampleSource,
  WebMOutputFormat, canEncodeVideo,
} from '../vendor/video/mediabunny.min.mjs';
import { GIFEncoder, applyPalette, quantize } from '../vendor/video/gifenc.esm.js';

// WebKitGTK (WebKit's Linux builds: Epiphany, MiniBrowser) has WebCodecs, but asking its
// VideoEncoder anything, even isConfigSupported, kills the page's process (2.50 here, with
// GStreamer's vp9enc installed): it makes GIFs. Safari's WebKit (macOS, iOS) says neither
// Linux nor X11.
const WEBKIT_GTK = /AppleWebKit/.test(navigator.userAgent) && /Linux|X11/.test(navigator.userAgent)
  && !/Chrome|Chromium|Android/.test(navigator.userAgent);

// MP4 with H.264 first: every browser and phone plays it. WebM with VP9 where H.264 cannot
// be encoded (Chromium builds without a licensed encoder, some Firefox set-ups).
const FORMATS = {
  mp4: { codec: 'avc', container: () => new Mp4OutputFormat() },
  webm: { codec: 'vp9', container: () => new WebMOutputFormat() },
};

// H.264 and VP9 encoders take even sizes only: an odd last row or column is left out.
export const even = (n) => Math.max(2, n - (n % 2));

// The format a width x height video at `fps` is made in: {kind: 'mp4'|'webm'|'gif', why},
// `why` saying why a GIF (null otherwise). `prefer`: 'mp4' (default), 'webm' (tried first),
// or 'gif' (skips WebCodecs: for tests, and browsers whose encoder misbehaves).
export async function chooseFormat(width, height, fps, prefer = 'mp4') {
  if (prefer === 'gif') return { kind: 'gif', why: 'asked for a GIF' };
  if (WEBKIT_GTK) return { kind: 'gif', why: "WebKitGTK's video encoder crashes the page" };
  if (typeof VideoEncoder === 'undefined') {
    return { kind: 'gif', why: 'this browser has no WebCodecs video encoder' };
  }
  const order = prefer === 'webm' ? ['webm', 'mp4'] : ['mp4', 'webm'];
  for (const kind of order) {
    try {
      const options = { width: even(width), height: even(height), frameRate: fps, quality: QUALITY_HIGH };
      if (await canEncodeVideo(FORMATS[kind].codec, options)) return { kind, why: null };
    } catch {
      // An encoder that throws on the question cannot be trusted with the video either.
    }
  }
  return { kind: 'gif', why: 'this browser encodes neither H.264 nor VP9 video' };
}

// The MP4 or WebM writer: {kind, type, extension, why, frames, audio, add, finish, cancel}.
// `add(canvas, timestamp, duration)` (seconds) copies the canvas at once, so the caller may
// draw the next frame straight away, and returns a promise that settles when the frame is
// encoded (await it to keep memory flat: frames not yet encoded are held). `companion`
// (media.js's audio) adds a track to the output before it starts and gets `before(t)` ahead
// of every frame at t and `end(t)` once the last frame ends at t, to interleave its packets
// (or `cancel()`).
async function videoWriter(kind, width, height, frameRate, companion) {
  const { codec, container } = FORMATS[kind];
  const output = new Output({ format: container(), target: new BufferTarget() });
  const source = new VideoSampleSource({ codec, quality: QUALITY_HIGH });
  output.addVideoTrack(source, frameRate ? { frameRate } : {});
  const extra = companion ? await companion(output) : null;
  await output.start();
  const visibleRect = { left: 0, top: 0, width: even(width), height: even(height) };
  const type = output.format.mimeType;
  let queue = Promise.resolve();
  let failure = null;
  let count = 0;
  let end = 0;
  return {
    kind, type, extension: kind, why: null, audio: extra ? extra.audio : null,
    get frames() { return count; },
    add(canvas, timestamp, duration) {
      if (failure) return Promise.reject(failure);
      const sample = new VideoSample(canvas, { timestamp, duration, visibleRect });
      count += 1;
      end = Math.max(end, timestamp + duration);
      queue = queue.then(async () => {
        try {
          if (extra) await extra.before(timestamp);
          await source.add(sample);
        } finally {
          sample.close();
        }
      }).catch((error) => { failure ??= error; });
      return queue.then(() => { if (failure) throw failure; });
    },
    async finish() {
      await queue;
      if (failure) throw failure;
      if (!count) throw new Error('no frames were added to the video');
      if (extra) await extra.end(end);
      await output.finalize();
      return new Blob([output.target.buffer], { type });
    },
    async cancel() {
      await queue;
      if (extra) await extra.cancel();
      if (output.state !== 'canceled' && output.state !== 'finalized') await output.cancel();
    },
  };
}

// The animated GIF writer, the same interface; a GIF has no sound. Each frame is drawn into
// the GIF's own canvas first, so any canvas (2D, WebGL, offscreen) of any size will do.
function gifWriter(width, height, fps, why) {
  const gif = GIFEncoder();
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  let count = 0;
  return {
    kind: 'gif', type: 'image/gif', extension: 'gif', why, audio: null,
    get frames() { return count; },
    async add(frame, timestamp, duration) {
      context.drawImage(frame, 0, 0, width, height);
      const { data } = context.getImageData(0, 0, width, height);
      const palette = quantize(data, 256);
      const delay = Math.round((duration || 1 / fps) * 1000); // a frame without a duration: 1/fps
      gif.writeFrame(applyPalette(data, palette), width, height, { palette, delay });
      count += 1;
    },
    async finish() {
      gif.finish();
      return new Blob([gif.bytes()], { type: 'image/gif' });
    },
    async cancel() {},
  };
}

// A writer of width x height frames in the format `chooseFormat` picks (see videoWriter for
// the interface). `frameRate`: the frames come at exactly that rate (timestamps are snapped
// to it); leave it out when timestamps come from elsewhere, e.g. a source video's.
export async function createEncoder({
  width, height, fps, frameRate = null, prefer = 'mp4', companion = null,
}) {
  const { kind, why } = await chooseFormat(width, height, fps, prefer);
  if (kind === 'gif') return gifWriter(width, height, fps, why);
  return videoWriter(kind, width, height, frameRate, companion);
}

// A recorder for width x height frames at `fps`: {kind, type, extension, why, frames,
// add(canvas), finish() -> Promise<Blob>}: an MP4 (H.264) where the browser encodes it, else
// a WebM (VP9), else a GIF, `why` saying why (null for MP4 and WebM). `add` copies the canvas
// at once and encodes it in the background; a failure is thrown by the next `add` or by
// `finish`. `prefer`: see chooseFormat.
export async function createRecorder(width, height, fps = 12, { prefer = 'mp4' } = {}) {
  const writer = await createEncoder({ width, height, fps, frameRate: fps, prefer });
  let failure = null;
  return {
    kind: writer.kind, type: writer.type, extension: writer.extension, why: writer.why,
    get frames() { return writer.frames; },
    add(canvas) {
      if (failure) throw failure;
      const index = writer.frames;
      writer.add(canvas, index / fps, 1 / fps).catch((error) => { failure ??= error; });
    },
    finish: () => writer.finish(),
  };
}
