// The Connect for Node peer of `cargo xtask bench`: @connectrpc/connect-node
// serving article.v1.ArticleService/ListArticles from memory over gRPC (h2c)
// and gRPC-web (HTTP/1.1), the Connect protocol too, on two ports (below).
//
// No generated code and no protoc: the service and message types come at
// run time from the FileDescriptorSet of proto/article/v1/article.proto that
// the benchmark writes (protox, through the `proto` crate), read with
// protobuf-es' createFileRegistry.
//
// The page is the one the benchmark captured from article-server (grpc.body
// in --responses DIR, one framed message, the file limit-server and the
// other peers read), decoded once at start. Every call answers that message
// object; connect-node serializes it on each call (its handlers return
// messages, not bytes).
//
// Two ports: Node's cleartext HTTP/2 server does not fall back to HTTP/1.1
// (`allowHTTP1` is for TLS only), and handing a sniffed connection to it
// loses the bytes read (it reads the socket's handle, not the JS stream),
// unless the socket is wrapped in a JS stream, which would slow every call.
// So gRPC-web (HTTP/1.1) gets a port of its own, printed first as
// `grpc-web on http://HOST:PORT`; the h2c port is the `listening on` line.
//
// Usage: node server.mjs --descriptors FILE --responses DIR [--host HOST]
// (both ports are picked by the system).

import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as http2 from "node:http2";
import { join } from "node:path";
import { parseArgs } from "node:util";

import { createFileRegistry, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";
import { connectNodeAdapter } from "@connectrpc/connect-node";

const { values: args } = parseArgs({
  options: {
    descriptors: { type: "string" },
    responses: { type: "string" },
    host: { type: "string", default: "127.0.0.1" },
  },
});
if (!args.descriptors || !args.responses) {
  console.error("usage: node server.mjs --descriptors FILE --responses DIR [--host HOST]");
  process.exit(2);
}

const registry = createFileRegistry(
  fromBinary(FileDescriptorSetSchema, readFileSync(args.descriptors)),
);
const service = registry.getService("article.v1.ArticleService");
const responseSchema = registry.getMessage("article.v1.ListArticlesResponse");
if (!service || !responseSchema) {
  throw new Error(`${args.descriptors} has no article.v1.ArticleService`);
}

const framed = readFileSync(join(args.responses, "grpc.body"));
if (framed.length < 5) {
  throw new Error("grpc.body is shorter than a frame header");
}
const page = fromBinary(responseSchema, framed.subarray(5));

// Only ListArticles; connect answers the other methods UNIMPLEMENTED.
const handler = connectNodeAdapter({
  routes(router) {
    router.service(service, {
      listArticles() {
        return page;
      },
    });
  },
});

const h1 = http.createServer(handler);
const h2 = http2.createServer(handler);
for (const server of [h1, h2]) {
  server.on("connection", (socket) => socket.setNoDelay(true));
}

await listen(h1, "grpc-web on");
await listen(h2, "listening on");

for (const signal of ["SIGTERM", "SIGINT"]) {
  process.on(signal, () => process.exit(0));
}

function listen(server, what) {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, args.host, () => {
      const { address, port } = server.address();
      console.log(`${what} http://${address}:${port}`);
      resolve();
    });
  });
}
