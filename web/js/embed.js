// Messages between an embedded Dreamframe and the page that embeds it (see
// docs/embedding.md). Only transport lives here: the Python side decides what a message
// means and validates every setting (pyscript_app/settings.py).
//   to the parent:   {source: 'dreamframe', type: 'ready' | 'progress' | 'done' | 'error', ...}
//   from the parent: {type: 'dream' | 'zoom', image?: Blob, guide?: Blob, settings?: {...},
//                     id?} | {type: 'video', video: Blob, settings?, id?} | {type: 'stop'}
// A request's `id` (a short string or a number) comes back in every reply to it.

export const embedded = window.parent !== window;

export function post(message) {
  if (!embedded) return;
  window.parent.postMessage({ source: 'dreamframe', ...message }, '*');
}

// Calls handler(type, settingsJson, image, id, guide) for well-formed messages from the parent window
// only (a video request's `video` comes as the image); anything else (other senders, other
// shapes) is dropped without a word.
export function listen(handler) {
  window.addEventListener('message', (event) => {
    if (!embedded || event.source !== window.parent) return;
    const data = event.data;
    if (data === null || typeof data !== 'object' || Array.isArray(data)) return;
    if (!['dream', 'zoom', 'video', 'stop'].includes(data.type)) return;
    const media = data.type === 'video' ? data.video : data.image;
    const image = media instanceof Blob ? media : null;
    const guide = data.guide instanceof Blob ? data.guide : null;
    let settings = '{}';
    try {
      if (data.settings && typeof data.settings === 'object') settings = JSON.stringify(data.settings);
    } catch {
      settings = '{}';
    }
    if (settings.length > 20000) settings = '{}';
    const id = (typeof data.id === 'string' && data.id.length <= 100)
      || (typeof data.id === 'number' && Number.isFinite(data.id)) ? data.id : null;
    handler(data.type, settings, image, id, guide);
  });
}
