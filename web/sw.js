// Makes the page cross-origin isolated on static hosts that cannot send headers, so that the
// wasm backend may use threads (SharedArrayBuffer needs COOP + COEP). It adds the two headers
// to this site's own responses and touches nothing else; it caches nothing.
// Registered by web/js/boot.js; isolation starts with the next load of the page.
self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));
self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
  event.respondWith(fetch(request).then((response) => {
    if (response.status === 0) return response;
    const headers = new Headers(response.headers);
    headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
    headers.set('Cross-Origin-Opener-Policy', 'same-origin');
    return new Response(response.body,
      { status: response.status, statusText: response.statusText, headers });
  }));
});
