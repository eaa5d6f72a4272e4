// The site's service worker, registered by web/js/boot.js once the first visit's model is
// ready. It controls the page from the next load on (and the first one from its activation
// on) and does two things:
//
// 1. Threads. It adds COOP + COEP to this site's own responses, network or cached alike, so
//    the page is cross-origin isolated on static hosts that cannot send headers and the wasm
//    backend may use threads (SharedArrayBuffer needs both).
// 2. Offline. It keeps one complete build of the site in a cache, so a visitor who opens the
//    page again without a network still dreams.
//
// BUILD is written by scripts/build_site.py: the build's version (a hash of every file and
// of this code) and each file's SHA-256 as a subresource-integrity string (null in web/ as
// committed: then it only adds the headers). A new build changes this file's bytes, so the
// browser installs the new worker, which fills a cache of its own: files unchanged since the
// last version are copied from the old cache, the rest fetched with their integrity, so a
// file from another build (a half-finished upload, a stale proxy) fails the install instead
// of joining it. Only a complete cache is switched to, on activate, which deletes the older
// versions; a failed install deletes its partial cache and the old worker keeps serving.
//
// Most files are kept at install. BUILD.lazy ones (the classic model's graph and weights,
// Pyodide) are large and not needed for the default dream: they are kept once the page
// fetches them (or if the browser's HTTP cache holds them at install), and only if their
// bytes are this version's.
//
// Network first, the cache only when the network fails: a visitor expects a reload to show a
// new deploy at once (cache first shows it one load later, after the new worker installed
// in the background), and without a network the fetch fails at once and the cache answers.
// Online, the site behaves as it would without a worker (a tab left open across a deploy can
// meet newer files, as on any site); offline, every answer comes from one complete build.
// Network responses are never written into the cache, except a lazy file of this version.
//
// Caches are named after the worker's scope, so copies of the site under other sub-paths of
// the same origin keep their own. The page's Content-Security-Policy travels inside
// index.html, and a host's headers are kept with each cached response, so a page served from
// the cache is under the same policy. Nothing outside this origin is touched.
//
// { version, files: { path: 'sha256-…' }, lazy: [path] }, or null:
const BUILD = null;

const SCOPE = self.registration.scope;
const PREFIX = `dreamframe ${SCOPE} `;
const CACHE = BUILD ? PREFIX + BUILD.version : null;
const STAMP = 'X-Dreamframe-Integrity'; // on every cached response: the hash it was checked for
const lazy = new Set(BUILD ? BUILD.lazy : []);

// The build's path for a URL of this site ('index.html' for the scope's root), or null.
function sitePath(href) {
  const url = new URL(href);
  const full = url.origin + url.pathname;
  if (!full.startsWith(SCOPE)) return null;
  const path = decodeURIComponent(full.slice(SCOPE.length)) || 'index.html';
  return BUILD && Object.hasOwn(BUILD.files, path) ? path : null;
}

const keyOf = (path) => new URL(path, SCOPE).href;

async function integrityOf(buffer) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', buffer));
  return `sha256-${btoa(String.fromCharCode(...digest))}`;
}

// A copy of `response` with `body`, stamped with the integrity it was checked against.
function stamped(response, body, integrity) {
  const headers = new Headers(response.headers);
  headers.set(STAMP, integrity);
  return new Response(body, { status: response.status, statusText: response.statusText, headers });
}

// A cached response for `path` with this version's bytes, from any cache of this scope.
async function reusable(path, names) {
  for (const name of names) {
    const response = await caches.match(keyOf(path), { cacheName: name }); // opens, never creates
    if (response && response.headers.get(STAMP) === BUILD.files[path]) return response;
  }
  return null;
}

async function precache() {
  const names = (await caches.keys()).filter((name) => name.startsWith(PREFIX));
  const cache = await caches.open(CACHE);
  const order = [CACHE, ...names.filter((name) => name !== CACHE)]; // a retried install first
  await Promise.all(Object.entries(BUILD.files).map(async ([path, integrity]) => {
    const old = await reusable(path, order);
    if (old) {
      await cache.put(keyOf(path), old);
      return;
    }
    if (lazy.has(path)) {
      // Only what the browser already holds (a first visit that chose the classic model);
      // `integrity` refuses another build's copy.
      const held = await fetch(keyOf(path), { cache: 'only-if-cached', mode: 'same-origin',
                                              integrity }).catch(() => null);
      if (held && held.ok) await cache.put(keyOf(path), stamped(held, await held.blob(), integrity));
      return;
    }
    const response = await fetch(keyOf(path), { cache: 'no-cache', integrity });
    if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
    await cache.put(keyOf(path), stamped(response, await response.blob(), integrity));
  }));
}

self.addEventListener('install', (event) => {
  self.skipWaiting();
  if (!BUILD) return;
  event.waitUntil(precache().catch(async (error) => {
    await caches.delete(CACHE);
    throw error;
  }));
});

self.addEventListener('activate', (event) => event.waitUntil((async () => {
  const old = (await caches.keys()).filter((name) => name.startsWith(PREFIX) && name !== CACHE);
  await Promise.all(old.map((name) => caches.delete(name)));
  await self.clients.claim();
})()));

// Keeps a lazy file the page fetched, if its bytes are this version's.
async function keep(path, response) {
  const body = await response.arrayBuffer();
  const integrity = BUILD.files[path];
  if (await integrityOf(body) !== integrity) return; // another build's file: never mixed in
  if (!(await caches.has(CACHE))) return; // this version was replaced meanwhile
  await (await caches.open(CACHE)).put(keyOf(path), stamped(response, body, integrity));
}

function isolated(response) {
  if (response.status === 0) return response; // opaque: its headers cannot be set
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  return new Response(response.body,
    { status: response.status, statusText: response.statusText, headers });
}

async function respond(event) {
  const { request } = event;
  const path = request.method === 'GET' ? sitePath(request.url) : null;
  let response;
  try {
    response = await fetch(request);
  } catch (error) {
    const cached = path && await caches.match(keyOf(path), { cacheName: CACHE });
    if (!cached) throw error;
    return isolated(cached);
  }
  if (path && lazy.has(path) && response.status === 200) {
    event.waitUntil(keep(path, response.clone()).catch(() => {}));
  }
  return isolated(response);
}

self.addEventListener('fetch', (event) => {
  const { request } = event;
  if (new URL(request.url).origin !== self.location.origin) return;
  if (request.cache === 'only-if-cached' && request.mode !== 'same-origin') return;
  event.respondWith(respond(event));
});
