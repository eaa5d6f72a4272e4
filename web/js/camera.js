// The camera as a source of frames for the live dream (pyscript_app/camera_panel.py):
// getUserMedia into a muted, unseen <video>, each frame grabbed onto a canvas at the dream's
// size. Nothing is sent anywhere; `stop()` releases the camera (the browser's "in use"
// light goes out). Fetched only when the visitor presses Camera.

// Opens the camera; frames are scaled to at most `maxSide` px on the longer side (even
// sides, for the video encoder). Rejects with an Error whose `name` is getUserMedia's
// (NotAllowedError, NotFoundError, ...; 'NoMediaDevices' where the page gets no camera at
// all), which pagelogic.camera_problem turns into a sentence.
export async function openCamera({ maxSide = 288 } = {}) {
  if (!navigator.mediaDevices?.getUserMedia) {
    const error = new Error('no camera API on this page');
    error.name = 'NoMediaDevices';
    throw error;
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  const video = document.createElement('video');
  video.muted = true;
  video.playsInline = true;
  video.srcObject = stream;
  try {
    await video.play();
    if (!video.videoWidth) await new Promise((resolve) => { video.onloadedmetadata = resolve; });
  } catch (error) {
    stream.getTracks().forEach((track) => track.stop());
    throw error;
  }
  const scale = Math.min(1, maxSide / Math.max(video.videoWidth, video.videoHeight));
  const even = (n) => Math.max(2, Math.round(n * scale) & ~1);
  const width = even(video.videoWidth);
  const height = even(video.videoHeight);
  const canvas = document.createElement('canvas');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d', { willReadFrequently: true });
  let stopped = false;
  const stop = () => {
    stopped = true;
    stream.getTracks().forEach((track) => track.stop());
    video.srcObject = null;
    document.removeEventListener('visibilitychange', onVisibility);
    window.removeEventListener('pagehide', stop);
  };
  // A hidden page (another tab, a locked phone) or one being left keeps no camera: the
  // dream loop sees `live` turn false and ends.
  const onVisibility = () => { if (document.visibilityState === 'hidden') stop(); };
  document.addEventListener('visibilitychange', onVisibility);
  window.addEventListener('pagehide', stop);
  return {
    width,
    height,
    label: stream.getVideoTracks()[0]?.label ?? 'camera',
    get live() { return !stopped && stream.getVideoTracks().some((t) => t.readyState === 'live'); },
    // The current frame, scaled, on a canvas the caller reads before the next grab.
    grab() {
      context.drawImage(video, 0, 0, width, height);
      return canvas;
    },
    stop,
  };
}
