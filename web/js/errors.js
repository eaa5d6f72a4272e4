// What went wrong in this page, for browser drivers that cannot read the console
// (Firefox's Marionette, WebKitWebDriver): uncaught errors (a script or image that failed to
// load included), unhandled rejections, CSP violations and console.error calls, in order, as
// text, on `window.dreamframeErrors`. The cross-browser tests read it; a visitor never sees
// it. The first script of the page, so that nothing happens before it listens.
(() => {
  const seen = [];
  const note = (kind, text) => seen.push(`${kind}: ${text}`);
  addEventListener('error', (event) => {
    note('error', event.message || `cannot load ${event.target?.src || event.target?.href}`);
  }, true);
  addEventListener('unhandledrejection', (event) => {
    note('unhandled rejection', event.reason?.message || String(event.reason));
  });
  addEventListener('securitypolicyviolation', (event) => {
    note('CSP', `${event.violatedDirective} blocked ${event.blockedURI}`);
  });
  const original = console.error.bind(console);
  console.error = (...args) => {
    note('console.error', args.map(String).join(' '));
    original(...args);
  };
  window.dreamframeErrors = seen;
})();
