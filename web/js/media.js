// Reading and writing videos in the page, for dreaming a video frame by frame: `openVideo`
// decodes a visitor's file into scaled canvases, `createVideoWriter` encodes dreamt frames
// into a new file that keeps the source's timing and sound. Both run on mediabunny over
// WebCodecs (vendor/video/, copied from npm by the build); nothing leaves the device.
// Loaded only when needed, through `window.dreamframe.loadMedia()` (web/js/boot.js).

import {
  ALL_FORMATS, AudioSampleSink, AudioSampleSource, BlobSource, CanvasSink, EncodedAudioPacketSource,
  EncodedPacketSink, Input, QUALITY_HIGH, getFirstEncodableAudioCodec,
} from '../vendor/video/mediabunny.min.mjs';
import { createEncoder, even } from './video.js';

const CODEC_NAMES = { avc: 'H.264', hevc: 'HEVC', vp8: 'VP8', vp9: 'VP9', av1: 'AV1' };

// What a visitor is told when a file cannot be dreamt: one sentence each.
const fail = (message) => { throw new Error(message); };

// "HEVC (hev1)": the codec's name and the four letters of its codec string, which is what
// players and converters show.
async function codecLabel(track) {
  const codec = await track.getCodec();
  const tag = (await track.getCodecParameterString())?.split('.')[0];
  const name = CODEC_NAMES[codec] ?? codec ?? 'an unknown codec';
  return tag && tag !== codec ? `${name} (${tag})` : name;
}

// The frames' size: the picture upright, the longer side at most `maxSide`, both sides even
// (what the video encoders take), the aspect kept to within a pixel.
function scaledSize(width, height, maxSide) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return [even(Math.round(width * scale)), even(Math.round(height * scale))];
}

// Opens a video file (a Blob or File) for reading: {width, height (the frames' size),
// sourceWidth, sourceHeight (the picture upright, before scaling), rotation (degrees
// clockwise, from the file; applied to the frames), fps, duration (s), frameCount, hasAudio,
// audioTrack (for createVideoWriter), codec, truncated, frames(), close()}.
// `frames()` yields {canvas, timestamp, duration, index} in presentation order, timestamps in
// seconds as the file has them; each canvas is reused two frames later, so draw it or encode
// it before asking for the one after next. A file cut short yields the frames that are there
// and then sets `truncated` (frameCount and duration become what was read). Rejects with an
// Error whose message is one sentence for the visitor when the file cannot be dreamt.
export async function openVideo(blob, { maxSide = 720 } = {}) {
  const input = new Input({ formats: ALL_FORMATS, source: new BlobSource(blob) });
  try {
    if (!(await input.canRead())) fail('This file is not a video this page can read.');
    const tracks = await input.getTracks();
    // An MP4 or MOV whose index (written last by most cameras) was cut off, or holds no frame.
    if (!tracks.length) fail('This file has no track that can be read: it may be empty or cut short.');
    const track = await input.getPrimaryVideoTrack();
    const audioTrack = await input.getPrimaryAudioTrack();
    if (!track) {
      fail(audioTrack ? 'This file has no video track, only sound.' : 'This file has no video track.');
    }
    if (!(await track.canDecode())) {
      fail(`This browser cannot decode this video's codec, ${await codecLabel(track)}.`);
    }
    const stats = await track.computePacketStats();
    // A WebM cut inside its only cluster holds no whole frame, yet its header says how long it was.
    const announced = await input.getDurationFromMetadata();
    if (!stats.packetCount) {
      fail(announced ? 'This video was cut short before its first frame.' : 'This video has no frames.');
    }
    const sourceWidth = await track.getDisplayWidth();
    const sourceHeight = await track.getDisplayHeight();
    const [width, height] = scaledSize(sourceWidth, sourceHeight, maxSide);
    const first = await track.getFirstTimestamp();
    // The rate the frames' timestamps lie on (24 for a 24 fps file even when it was cut short),
    // rather than the packet stats' average (frames over time, 25.3 for 19 frames of 0.75 s).
    const fps = (await track.computeFrameRateMetrics()).bestGuessFrameRate || stats.averagePacketRate;
    // Cut short between clusters (WebM), the readable part ends well before the announced length.
    const readable = await input.computeDuration();
    const video = {
      width, height, sourceWidth, sourceHeight, rotation: await track.getRotation(), fps,
      duration: (await track.computeDuration()) - first, frameCount: stats.packetCount,
      hasAudio: audioTrack !== null, audioTrack, codec: await codecLabel(track),
      truncated: announced !== null && readable < announced - Math.max(0.1, 2 / fps),
      async *frames() {
        // The rotation in the file is applied by the sink (its default), before scaling.
        const sink = new CanvasSink(track, { width, height, fit: 'fill', poolSize: 2 });
        let index = 0;
        let end = first;
        try {
          for await (const { canvas, timestamp, duration } of sink.canvases()) {
            yield { canvas, timestamp, duration, index };
            index += 1;
            end = timestamp + duration;
          }
        } catch (error) {
          if (!index) fail("This browser could not decode this video's frames.");
          video.truncated = true; // data that stops decoding part-way: keep what came before
          console.warn('dreamframe: the video stopped decoding after frame', index, error);
        }
        // An MP4 cut short keeps its index of every frame, but the frames past the cut are
        // not there: mediabunny ends the iteration early, without an error.
        if (index < video.frameCount) video.truncated = true;
        if (video.truncated) Object.assign(video, { frameCount: index, duration: end - first });
      },
      close: () => input.dispose(),
    };
    return video;
  } catch (error) {
    input.dispose();
    throw error;
  }
}

// The source's sound, carried into the writer's output (a `companion` of video.js's writer):
// its packets copied where the container takes its codec (AAC or Opus into MP4, Opus into
// WebM), else decoded and encoded again in a codec this browser encodes (Opus first; this
// Chromium encodes no AAC). Packets are added up to each frame's time, interleaved with the
// video as the containers want, and the sound stops where the last frame ends.
function carryAudio(track) {
  return async (output) => {
    const codec = await track.getCodec();
    const accepted = output.format.getSupportedAudioCodecs();
    const decoderConfig = await track.getDecoderConfig();
    let source;
    let items;
    let audio;
    if (codec && decoderConfig && accepted.includes(codec)) {
      source = new EncodedAudioPacketSource(codec);
      items = new EncodedPacketSink(track).packets();
      audio = { codec, copied: true };
    } else {
      const options = { numberOfChannels: await track.getNumberOfChannels(),
                        sampleRate: await track.getSampleRate() };
      // Opus, then AAC, then whatever else the container takes (uncompressed PCM, at worst).
      const preferred = [...new Set(['opus', 'aac', ...accepted])].filter((c) => accepted.includes(c));
      const target = (await track.canDecode()) ? await getFirstEncodableAudioCodec(preferred, options) : null;
      if (!target) return null; // nothing this browser can carry over: a silent video
      source = new AudioSampleSource({ codec: target, quality: QUALITY_HIGH });
      items = new AudioSampleSink(track).samples();
      audio = { codec: target, copied: false, from: codec };
    }
    output.addAudioTrack(source);
    let next = null;
    let first = true;
    // Adds the source's packets (or samples) that start before `t`.
    const until = async (t) => {
      for (;;) {
        next ??= await items.next();
        if (next.done || next.value.timestamp >= t) return;
        const item = next.value;
        next = null;
        if (audio.copied) {
          await source.add(item, first ? { decoderConfig } : undefined);
        } else {
          await source.add(item);
          item.close();
        }
        first = false;
      }
    };
    // Lets go of the sample read ahead and of the source's reader (its decoder, if any).
    const release = async () => {
      if (next && !next.done && !audio.copied) next.value.close();
      await items.return();
    };
    return {
      audio,
      before: until,
      async end(t) {
        await until(t);
        await release();
        source.close();
      },
      cancel: release,
    };
  };
}

// A writer of width x height frames: {kind ('mp4', 'webm' or 'gif'), type, extension, why
// (why a GIF, else null), audio (null, or {codec, copied} for the sound carried over),
// frames, add(canvas, timestamp, duration), finish() -> Blob, cancel()}. MP4 (H.264) where
// this browser encodes it, else WebM (VP9), else GIF, as the zoom video (video.js). Frames
// keep the timestamps given (seconds, e.g. a source video's), so its rate and length are
// kept; await each `add` (it settles once the frame is encoded) to keep memory flat.
// `audioFrom`: an opened video (openVideo) whose sound goes into the file (not into a GIF).
export async function createVideoWriter({ width, height, fps, audioFrom = null, prefer = 'mp4' }) {
  const companion = audioFrom?.audioTrack ? carryAudio(audioFrom.audioTrack) : null;
  return createEncoder({ width, height, fps, prefer, companion });
}
