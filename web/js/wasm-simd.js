// One loop tfjs's wasm backend lacks, as WebAssembly SIMD over the backend's own heap: the
// ReLU6 gradient (dy where 0 < x <= 6, else 0). Written in JavaScript it ran at ~7 ns a value
// here, a quarter of a 512 px step; wasm's own Relu6 runs at ~1 ns. The module is 162 bytes,
// assembled below instruction by instruction (our own code, no toolchain), and imports the
// backend's memory, so it reads and writes tensors where they are: no copy in or out.
//
// relu6_grad(x, dy, out, bytes): for each 16-byte lane group i < bytes,
//   out[i] = dy[i] & ((x[i] > 0) & (x[i] <= 6))    (f32x4 compares give all-ones masks)
// A NaN compares false both ways, so its gradient is 0, as in tfjs's own gradient.

const SIX = [0x00, 0x00, 0xc0, 0x40]; // 6.0f, little-endian
const v128Const = (bytes) => [0xfd, 0x0c, ...bytes];
const MEMARG = [0x02, 0x00]; // align 2^2, offset 0

// An unsigned LEB128 number, as wasm writes sizes.
function leb(n) {
  const out = [];
  do {
    const low = n & 0x7f;
    n >>>= 7;
    out.push(n ? low | 0x80 : low);
  } while (n);
  return out;
}

function section(id, bytes) {
  return [id, ...leb(bytes.length), ...bytes];
}

function moduleBytes(shared) {
  // The memory import must declare what the backend's memory is: a shared memory (the
  // threaded build) must be imported as shared, with a maximum (the largest wasm32 allows).
  const limits = shared ? [0x03, 0x00, 0x80, 0x80, 0x04] : [0x00, 0x00];
  const name = (s) => [s.length, ...Array.from(s, (c) => c.charCodeAt(0))];
  const body = [
    0x02, 0x01, 0x7f, 0x01, 0x7b, // locals: i (i32, local 4), v (v128, local 5)
    0x02, 0x40, 0x03, 0x40, // block, loop
    0x20, 0x04, 0x20, 0x03, 0x4f, 0x0d, 0x01, // if i >= bytes: break
    0x20, 0x02, 0x20, 0x04, 0x6a, // address out + i (for the store)
    0x20, 0x00, 0x20, 0x04, 0x6a, 0xfd, 0x00, ...MEMARG, 0x22, 0x05, // v = load x + i
    ...v128Const(Array(16).fill(0)), 0xfd, 0x44, // v > 0
    0x20, 0x05, ...v128Const([...SIX, ...SIX, ...SIX, ...SIX]), 0xfd, 0x45, // v <= 6
    0xfd, 0x4e, // and
    0x20, 0x01, 0x20, 0x04, 0x6a, 0xfd, 0x00, ...MEMARG, 0xfd, 0x4e, // and load dy + i
    0xfd, 0x0b, ...MEMARG, // store
    0x20, 0x04, 0x41, 0x10, 0x6a, 0x21, 0x04, // i += 16
    0x0c, 0x00, 0x0b, 0x0b, // continue; end loop; end block
    0x0b, // end function
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(0x01, [0x01, 0x60, 0x04, 0x7f, 0x7f, 0x7f, 0x7f, 0x00]), // (i32 x4) -> ()
    ...section(0x02, [0x01, ...name('env'), ...name('memory'), 0x02, ...limits]),
    ...section(0x03, [0x01, 0x00]),
    ...section(0x07, [0x01, ...name('relu6_grad'), 0x00, 0x00]),
    ...section(0x0a, [0x01, ...leb(body.length), ...body]),
  ]);
}

// The backend's WebAssembly.Memory: the plain SIMD build exports it; the threaded build
// creates it in JavaScript and may not hand it out (then there is no SIMD loop: null).
function backendMemory(backend) {
  const module = backend.wasm;
  const memory = module?.wasmMemory ?? module?.asm?.memory ?? module?.wasmExports?.memory;
  return memory instanceof WebAssembly.Memory ? memory : null;
}

const cache = new WeakMap();

// relu6Grad(xOffset, dyOffset, outOffset, count) over the backend's heap (byte offsets; wasm
// loads need no alignment), for the first count - count % 4 values (the rest are the
// caller's), or
// null where this browser or backend cannot run it.
export function simdRelu6Grad(backend) {
  if (cache.has(backend)) return cache.get(backend);
  let run = null;
  const memory = backendMemory(backend);
  if (memory) {
    try {
      const shared = typeof SharedArrayBuffer !== 'undefined'
        && memory.buffer instanceof SharedArrayBuffer;
      const instance = new WebAssembly.Instance(
        new WebAssembly.Module(moduleBytes(shared)), { env: { memory } });
      const loop = instance.exports.relu6_grad;
      run = (x, dy, out, count) => loop(x, dy, out, (count >> 2) << 4);
    } catch (e) {
      run = null; // no WebAssembly SIMD here (or the memory would not import)
    }
  }
  cache.set(backend, run);
  return run;
}
