// Decode time of one encoded ListArticlesResponse (written by article-bench
// as `list.pb`): prost compiled to WASM (`bench/wasm-decode`) against
// protobuf-es (`@bufbuild/protobuf` v2) with the schema from the API's own
// descriptor set (`article.fds`), in one page, on the same bytes.
//
// The bytes are copied into wasm memory once (timed on its own as `copyMs`,
// which includes the wasm memory's first growth); each prost decode then
// reads them from there, protobuf-es reads the same Uint8Array. After the
// decode samples, the copy alone (into a new buffer, freed again) is timed
// the same way as the decoders (`copyMedianMs`): what handing a response's
// bytes to wasm costs once memory has grown. Both decoders are warmed up, then alternate: every sample
// times a batch of consecutive decodes long enough (>= batchMs) that the
// browser's coarse performance.now() (0.1 ms in Chromium, up to 1 ms in
// Firefox) does not matter, and is divided by the batch length. Garbage the
// JavaScript decoder leaves behind is collected whenever the engine decides,
// so batches include their share of it; prost frees its message inside each
// call.
//
// Parameters (query string): samples, warmupMs, batchMs. The result is a
// promise on `window.decodeBench`, for WebDriver's execute-async.

import init, { EncodedList } from "./wasm/article_wasm_decode.js";
import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const params = new URLSearchParams(location.search);
const samples = Number(params.get("samples") ?? 50);
const warmupMs = Number(params.get("warmupMs") ?? 1000);
const batchMs = Number(params.get("batchMs") ?? 25);

async function fetchBytes(path) {
  const response = await fetch(path);
  if (!response.ok) {
    throw new Error(`GET ${path}: ${response.status}`);
  }
  return new Uint8Array(await response.arrayBuffer());
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

// Milliseconds per call of `decode`, timed over a batch of `n` calls. The
// article counts are summed so no engine can drop a call as unused.
function timeBatch(decode, n) {
  let articles = 0;
  const start = performance.now();
  for (let i = 0; i < n; i++) {
    articles += decode();
  }
  const ms = (performance.now() - start) / n;
  if (articles === 0) {
    throw new Error("decoded no articles");
  }
  return ms;
}

async function run() {
  const [bytes, fds] = await Promise.all([fetchBytes("list.pb"), fetchBytes("article.fds")]);
  await init();
  const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fds));
  const schema = registry.getMessage("article.v1.ListArticlesResponse");
  if (!schema) {
    throw new Error("article.v1.ListArticlesResponse is not in the descriptor set");
  }

  const copyStart = performance.now();
  const encoded = new EncodedList(bytes);
  const copyMs = performance.now() - copyStart;

  const decoders = {
    wasm: () => encoded.decode(),
    js: () => fromBinary(schema, bytes).articles.length,
  };

  // What each decoder read, for the bench's sanity check.
  const jsMessage = fromBinary(schema, bytes);
  const check = {
    wasm: { articles: encoded.decode(), idSum: encoded.idSum() },
    js: {
      articles: jsMessage.articles.length,
      idSum: jsMessage.articles.reduce((sum, a) => sum + Number(a.id), 0),
    },
  };

  // Warm-up: alternate until each has run for warmupMs (long enough for the
  // JavaScript engine to reach its optimizing tier).
  const spent = { wasm: 0, js: 0 };
  let round = 1;
  while (spent.wasm < warmupMs || spent.js < warmupMs) {
    for (const name of ["wasm", "js"]) {
      spent[name] += timeBatch(decoders[name], round) * round;
    }
    round = Math.min(round * 2, 64);
  }
  // Batch length per decoder: doubled until one batch takes batchMs.
  const batch = { wasm: 1, js: 1 };
  for (const name of ["wasm", "js"]) {
    while (timeBatch(decoders[name], batch[name]) * batch[name] < batchMs) {
      batch[name] *= 2;
    }
  }

  const times = { wasm: [], js: [] };
  for (let i = 0; i < samples; i++) {
    // Alternate which goes first, so neither always follows the other.
    const order = i % 2 ? ["js", "wasm"] : ["wasm", "js"];
    for (const name of order) {
      times[name].push(timeBatch(decoders[name], batch[name]));
    }
  }
  encoded.free();

  const copy = () => {
    new EncodedList(bytes).free();
    return 1;
  };
  const spentCopying = performance.now();
  while (performance.now() - spentCopying < warmupMs / 4) {
    timeBatch(copy, 8);
  }
  let copyBatch = 1;
  while (timeBatch(copy, copyBatch) * copyBatch < batchMs) {
    copyBatch *= 2;
  }
  const copyTimes = [];
  for (let i = 0; i < samples; i++) {
    copyTimes.push(timeBatch(copy, copyBatch));
  }

  return {
    bytes: bytes.length,
    copyMs,
    copyMedianMs: median(copyTimes),
    check,
    batch: { ...batch, copy: copyBatch },
    warmupMs,
    wasmMs: times.wasm,
    jsMs: times.js,
    wasmMedianMs: median(times.wasm),
    jsMedianMs: median(times.js),
  };
}

const status = document.getElementById("status");
window.decodeBench = run().then(
  (result) => {
    status.textContent = `prost ${result.wasmMedianMs.toFixed(3)} ms, protobuf-es ${result.jsMedianMs.toFixed(3)} ms`;
    return result;
  },
  (error) => {
    status.textContent = `failed: ${error}`;
    return { error: String(error && error.stack ? error.stack : error) };
  },
);
