// Lets tfjs's bundled regenerator-runtime start under a Content-Security-Policy without
// 'unsafe-eval': it assigns the global `regeneratorRuntime`, and only when that assignment
// throws (strict mode, no such global) falls back to `Function(...)`, which CSP forbids.
// Declaring the global first makes the plain assignment succeed.
window.regeneratorRuntime = window.regeneratorRuntime || undefined;
