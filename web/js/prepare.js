// Compile before the click (issue 18): the JS half of preparing a GPU backend's shader
// programs while the visitor is still choosing a photo (pyscript_app/prepare.py decides what
// to prepare and when). tfjs's compile-only mode runs a computation without computing:
// every kernel builds its program (WebGL: shaders compiled and linked; WebGPU: a pipeline
// created asynchronously) and nothing is drawn or dispatched.
//   - beginCompileOnly / endCompileOnly bracket one synchronous piece of tfjs work (one
//     dream step, issued from Python between the two calls without awaiting anything). At
//     the end the programs it created are taken OUT of tfjs's cache into a batch: until they
//     are usable (WebGL: linked and their uniforms located; WebGPU: the pipeline's promise
//     resolved) nothing else on the page can pick one up. Anything that runs meanwhile (a
//     preview, a dream, a test's own tfjs call) compiles its own copy the usual way.
//   - settle(batch) makes the batch usable without blocking the page, a few programs at a
//     time: WebGL's compile and link calls, recorded during the pass, are made now and
//     compiled in the background (in Chromium's GPU process, and in the driver's threads
//     with KHR_parallel_shader_compile) while a fence is polled between the browser's tasks;
//     WebGPU's pipelines are awaited. Each ready program goes (back) into tfjs's cache.
// Only WebGL and WebGPU compile programs; wasm and cpu have nothing to prepare. Python holds
// batches and jobs by number (web/js/guard.js would wrap an object handed back and forth).

const FLAGS = { webgl: 'ENGINE_COMPILE_ONLY', webgpu: 'WEBGPU_ENGINE_COMPILE_ONLY' };
const CHUNK_MS = 8; // at most about this long checking programs before the browser's turn

const nextTask = () => new Promise((resolve) => setTimeout(resolve, 0));

// Whether the running backend compiles programs (WebGL, WebGPU): only those are prepared.
export function compiles(tf) {
  return tf.getBackend() in FLAGS;
}

function cacheOf(tf) {
  const backend = tf.backend();
  if (tf.getBackend() === 'webgl') return backend.binaryCache;
  if (tf.getBackend() === 'webgpu') return backend.pipelineCache;
  return null;
}

// How many programs (WebGL) or pipelines (WebGPU) the running backend holds; 0 on wasm/cpu.
export function programCount(tf) {
  const cache = cacheOf(tf);
  return cache ? Object.keys(cache).length : 0;
}

let open = null; // the compile-only pass under way: {name, backend, before, calls}
let counter = 0;
const batches = new Map(); // id -> {name, backend, entries: [[key, program]], calls}
const jobs = new Map(); // id -> {stopped, onProgress, longest}
// The WebGL calls that hand a shader's source to the GPU process and compile and link it.
// During a pass they are recorded, not made: issued all at once they fill Chromium's
// command buffer faster than the GPU process compiles, and the page then waits for room
// (a pass blocked for up to 2.9 s on SwiftShader). settle() issues them a few programs at a
// time instead.
const DEFERRED = ['shaderSource', 'compileShader', 'attachShader', 'linkProgram'];
const PROGRAMS_PER_SLICE = 8;

// Starts a compile-only pass on the running backend (see above). Returns whether it did:
// false on a backend without programs, where the caller simply skips the pass.
export function beginCompileOnly(tf) {
  if (!compiles(tf)) return false;
  const name = tf.getBackend();
  const backend = tf.backend();
  open = { name, backend, before: new Set(Object.keys(cacheOf(tf))), calls: [] };
  // (tfjs checks its vertex shader as it makes it, with the first program ever: that one is
  // made the usual way, as the model's warm-up made it before the page was ready.)
  if (name === 'webgl' && backend.gpgpu.vertexShader != null) {
    const gl = backend.gpgpu.gl;
    const calls = open.calls;
    for (const method of DEFERRED) gl[method] = (...args) => { calls.push([method, args]); };
  }
  tf.env().set(FLAGS[name], true);
  return true;
}

// Ends the pass begun by beginCompileOnly; returns the id of its batch of new programs, for
// settle(). Safe to call when no pass is open (the batch is then empty).
export function endCompileOnly(tf) {
  const pass = open;
  open = null;
  const batch = { name: pass?.name ?? null, backend: pass?.backend ?? null, entries: [], calls: new Map() };
  const id = ++counter;
  batches.set(id, batch);
  if (!pass) return id;
  tf.env().set(FLAGS[pass.name], false);
  if (pass.name === 'webgl') {
    const gl = pass.backend.gpgpu.gl;
    for (const method of DEFERRED) delete gl[method]; // the context's own methods again
    // Each shader's and program's calls, in order, to be made when settle() gets to it.
    for (const call of pass.calls) {
      const target = call[1][0];
      if (!batch.calls.has(target)) batch.calls.set(target, []);
      batch.calls.get(target).push(call);
    }
  }
  if (pass.backend !== tf.backend()) return id;
  const cache = cacheOf(tf);
  for (const key of Object.keys(cache)) {
    if (pass.before.has(key)) continue;
    batch.entries.push([key, cache[key]]);
    delete cache[key];
  }
  return id;
}

// How many programs a batch holds.
export function batchSize(id) {
  return batches.get(id)?.entries.length ?? 0;
}

function release(gl, binary) {
  try {
    gl.deleteProgram(binary.webGLProgram);
    gl.deleteShader(binary.fragmentShader);
  } catch {
    // A lost context took it already.
  }
}

// Makes the calls recorded for one program: its fragment shader's, then the program's.
function issue(gl, batch, binary) {
  for (const target of [binary.fragmentShader, binary.webGLProgram]) {
    for (const [method, args] of batch.calls.get(target) ?? []) gl[method](...args);
    batch.calls.delete(target);
  }
}

// Waits, without blocking, until the GPU process has run every command issued so far (the
// compiles and links among them): a fence, polled between the browser's tasks. With
// KHR_parallel_shader_compile the driver's own threads may still be at work: then each
// program's COMPLETION_STATUS is polled the same way.
async function compiled(gl, parallel, binaries) {
  const fence = gl.fenceSync(gl.SYNC_GPU_COMMANDS_COMPLETE, 0);
  gl.flush();
  try {
    while (gl.getSyncParameter(fence, gl.SYNC_STATUS) !== gl.SIGNALED) {
      if (gl.isContextLost()) return;
      await nextTask();
    }
  } finally {
    gl.deleteSync(fence);
  }
  if (!parallel) return;
  for (const binary of binaries) {
    while (!gl.isContextLost()
           && !gl.getProgramParameter(binary.webGLProgram, parallel.COMPLETION_STATUS_KHR)) {
      await nextTask();
    }
  }
}

// Hands one slice's programs to tfjs once linked, with their uniforms located; returns how
// many it looked at.
function adopt(gl, backend, slice) {
  for (const [key, binary] of slice) {
    const all = backend.binaryCache;
    if (key in all || !gl.getProgramParameter(binary.webGLProgram, gl.LINK_STATUS)) {
      // Compiled meanwhile by tfjs itself, or failed: tfjs compiles it again when a kernel
      // needs it and then reports the failure in its own words.
      release(gl, binary);
      continue;
    }
    backend.binaryCache = { [key]: binary };
    try {
      backend.getUniformLocations(); // only this one's: tfjs's helper walks the whole cache
    } finally {
      backend.binaryCache = all;
    }
    all[key] = binary;
  }
  return slice.length;
}

// A pipeline of slices: the next few programs are issued and their fence awaited before the
// previous few are checked, because ANGLE may still be linking those on its own thread when
// their fence has passed (a link status asked for too soon blocks until it is done).
async function settleWebgl(tf, batch, job) {
  const backend = batch.backend;
  const gl = backend.gpgpu.gl;
  const parallel = backend.gpgpu.parallelCompilationExtension;
  const usable = () => !gl.isContextLost() && backend === tf.backend();
  let done = 0;
  let slices = 0;
  let waiting = []; // issued and past their fence, not yet checked
  const pending = batch.entries.slice();
  while ((pending.length || waiting.length) && !job.stopped && usable()) {
    const issued = pending.splice(0, PROGRAMS_PER_SLICE);
    if (issued.length) {
      const start = performance.now();
      for (const [, binary] of issued) issue(gl, batch, binary);
      job.longest = Math.max(job.longest, performance.now() - start);
      slices += 1;
      await compiled(gl, parallel, issued.map(([, binary]) => binary));
      if (!usable()) {
        waiting = waiting.concat(issued);
        break;
      }
    }
    if (waiting.length) {
      const start = performance.now();
      done += adopt(gl, backend, waiting);
      job.longest = Math.max(job.longest, performance.now() - start);
      slices += 1;
      job.onProgress?.(done, batch.entries.length, slices);
    }
    waiting = issued;
    await nextTask();
  }
  for (const [, binary] of pending.concat(waiting)) {
    release(gl, binary);
    batch.calls.delete(binary.fragmentShader);
    batch.calls.delete(binary.webGLProgram);
  }
  for (const calls of batch.calls.values()) {
    // Calls of no program in the batch (none are expected): made, so nothing is left half-built.
    for (const [method, args] of calls) gl[method](...args);
  }
  return slices;
}

async function settleWebgpu(tf, batch, job) {
  const backend = batch.backend;
  let done = 0;
  let slices = 0;
  for (const [key, pipeline] of batch.entries) {
    if (job.stopped || backend !== tf.backend()) break;
    let ready = null;
    try {
      ready = await pipeline; // created in the browser's GPU process: nothing blocks here
    } catch {
      ready = null; // tfjs creates it again when a kernel needs it, and reports its error
    }
    done += 1;
    if (ready && !(key in backend.pipelineCache)) backend.pipelineCache[key] = ready;
    slices += 1;
    job.onProgress?.(done, batch.entries.length, slices);
    await nextTask();
  }
  return slices;
}

// A preparation's handle for settle(): `onProgress(done, total, slices)` hears of each few
// programs made ready; stopJob() abandons the batch being settled. Returns its id.
export function newJob(onProgress = null) {
  const id = ++counter;
  jobs.set(id, { stopped: false, onProgress, longest: 0 });
  return id;
}

// The longest the job's settling kept the page busy in one piece, in ms (for the record).
export function longestSettle(id) {
  return jobs.get(id)?.longest ?? 0;
}

export function stopJob(id) {
  const job = jobs.get(id);
  if (job) job.stopped = true;
}

export function dropJob(id) {
  jobs.delete(id);
}

// Makes batch `id`'s programs usable and puts them in tfjs's cache, a few at a time between
// the browser's own tasks. A stopped job abandons the rest (their compiles are lost: a kernel
// that needs one compiles it as usual). Resolves to the number of slices (pieces of work,
// each followed by a task of the browser's).
export async function settle(tf, id, jobId) {
  const batch = batches.get(id);
  batches.delete(id);
  const job = jobs.get(jobId) ?? { stopped: false, onProgress: null, longest: 0 };
  if (!batch?.entries.length) return 0;
  if (batch.name === 'webgl') return settleWebgl(tf, batch, job);
  return settleWebgpu(tf, batch, job);
}

// What the page says about its preparation, for scripts and tests
// (window.dreamframe.preparation): replaced whole on every report.
export function report(tf, state) {
  window.dreamframe.preparation = { ...state, programs: programCount(tf) };
  window.dispatchEvent(new CustomEvent('dreamframe:preparation', { detail: window.dreamframe.preparation }));
}

// A promise with its resolve function outside: what Python awaits for a preparation's end.
export function deferred() {
  let resolve = null;
  const promise = new Promise((done) => { resolve = done; });
  return { promise, resolve: (value) => resolve(value) };
}
