// Runs a wasm32-wasip1 program in node's WASI (preview1):
//
//   node wasi-run.mjs [--original ORIG.wasm] [--stub-asyncify] MODULE.wasm [ARGS...]
//
// The exit status is the program's. Arguments and the environment are passed
// through, and the file system is visible (cargo's tests may read files).
//
// The module may import `stackful_test.run_child` (tests/common/wasm.rs): it runs
// this script again, synchronously, as a child process on the same module (or, when
// asked, on the ORIG module before asyncify, with `--stub-asyncify`), and hands its
// exit status and output back. That is how the wasm suite checks messages printed by
// code that aborts (libtest on wasm cannot spawn processes itself).
//
// A module that still imports `asyncify.*` was not processed by `wasm-opt
// --asyncify`: that is reported here, by name, rather than as a failed import.
// `--stub-asyncify` supplies do-nothing imports instead, which lets a test check the
// message stackful itself prints at the first switch in that case.
import { readFileSync } from 'node:fs';
import { WASI } from 'node:wasi';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

let argv = process.argv.slice(2);
let original = null;
let stubAsyncify = false;
for (;;) {
  if (argv[0] === '--original') { original = argv[1]; argv = argv.slice(2); }
  else if (argv[0] === '--stub-asyncify') { stubAsyncify = true; argv = argv.slice(1); }
  else break;
}
const [modulePath, ...args] = argv;
if (!modulePath) {
  console.error('usage: wasi-run.mjs [--original ORIG.wasm] [--stub-asyncify] MODULE.wasm [ARGS...]');
  process.exit(2);
}

const module = new WebAssembly.Module(readFileSync(modulePath));
const imports = WebAssembly.Module.imports(module);
if (!stubAsyncify && imports.some((i) => i.module === 'asyncify')) {
  console.error(`wasi-run: ${modulePath} imports asyncify.* functions: it was not ` +
    'processed by `wasm-opt --asyncify`, which stackful\'s coroutines need ' +
    '(run it through .ci/wasm-runner, or see the README, "WebAssembly")');
  process.exit(3);
}

const wasi = new WASI({
  version: 'preview1',
  args: [modulePath, ...args],
  env: process.env,
  preopens: { '/': '/' },
  returnOnExit: true,
});

let instance;
const text = new TextDecoder();
const memory = () => new Uint8Array(instance.exports.memory.buffer);
const importObject = {
  wasi_snapshot_preview1: wasi.wasiImport,
  stackful_test: {
    // run_child(args_ptr, args_len, raw, env_ptr, env_len, out_ptr, out_cap, out_len_ptr) -> status
    // args: NUL-separated; env: "NAME=value" NUL-separated; raw != 0: run the module
    // as it was before asyncify, with stub asyncify imports. Output is stderr then
    // stdout, truncated to out_cap; its full length goes to *out_len_ptr.
    run_child(argsPtr, argsLen, raw, envPtr, envLen, outPtr, outCap, outLenPtr) {
      const split = (p, n) => (n === 0 ? [] : text.decode(memory().subarray(p, p + n)).split('\0'));
      const childArgs = split(argsPtr, argsLen);
      const env = { ...process.env };
      for (const kv of split(envPtr, envLen)) {
        const eq = kv.indexOf('=');
        env[kv.slice(0, eq)] = kv.slice(eq + 1);
      }
      const self = fileURLToPath(import.meta.url);
      const target = raw ? ['--stub-asyncify', original ?? modulePath] : ['--original', original ?? modulePath, modulePath];
      const r = spawnSync(process.execPath, ['--no-warnings', self, ...target, ...childArgs], { env, maxBuffer: 64 << 20 });
      const out = Buffer.concat([r.stderr ?? Buffer.alloc(0), r.stdout ?? Buffer.alloc(0)]);
      const mem = memory();
      mem.set(out.subarray(0, outCap), outPtr);
      new DataView(instance.exports.memory.buffer).setUint32(outLenPtr, out.length, true);
      // A child killed by a trap exits with node's uncaught-error status (1) and a
      // RuntimeError on stderr; abort() in WASI is a trap too.
      return r.status ?? 128 + 6;
    },
  },
};
if (stubAsyncify) {
  importObject.asyncify = {
    start_unwind() {}, stop_unwind() {}, start_rewind() {}, stop_rewind() {},
  };
}

instance = new WebAssembly.Instance(module, importObject);
let code;
try {
  code = wasi.start(instance);
} catch (e) {
  // A trap (`unreachable`, e.g. from `std::process::abort`) or a host error.
  console.error(`wasi-run: ${e instanceof WebAssembly.RuntimeError ? 'wasm trap' : 'error'}: ${e.message}`);
  code = 134;
}
process.exit(code);
