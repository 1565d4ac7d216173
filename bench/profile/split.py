#!/usr/bin/env python3
"""Splits a callgrind dump into instructions per call by layer.

    split.py CALLGRIND_OUT CALLS

Each function's own (exclusive) instructions go to the first layer whose
pattern matches its symbol, in the order of LAYERS below; a generic
function of core/alloc (a Vec clone, drop glue) goes to the first crate
named inside its type arguments, so `drop_in_place<tonic::...>` counts as
tonic's. Inlined code counts where it was inlined. Then the inclusive
instructions of a few entry points, for orientation (nested: they overlap).
"""

import re
import sys
from collections import defaultdict

# (layer, regex on the symbol); first match wins. Symbols are Rust paths as
# callgrind_annotate prints them (legacy mangling, hashes dropped).
LAYERS = [
    ("malloc/free", r"^(__rustc::__rdl_|__rustc::__rust_|malloc|free|realloc|calloc|cfree|_int_malloc|_int_free|_int_realloc|malloc_consolidate|tcache_|__libc_malloc|__libc_free|__libc_realloc|__libc_calloc|unlink_chunk|alloc_perturb|checked_request2size|sysmalloc|__rust_alloc|__rust_dealloc|__rust_realloc|__rdl_|_rjem_|mi_|__default_morecore)"),
    ("memcpy/memmove/memset", r"^(__memcpy|__memmove|__memset|memcpy|memmove|memset|__mempcpy|__memcmp|memcmp|bcmp|__nss_database_lookup|__strlen|strlen)"),
    ("kernel calls (libc wrappers)", r"^(writev|__writev|write|__libc_write|recv|read|__libc_read|epoll_wait|__GI_|syscall|__lll_|futex|pthread_|__pthread|clock_gettime|__clock_gettime|__vdso|sched_yield|send|sendmsg|recvfrom|__libc_recv|__libc_send|accept4|__futex)"),
    ("hyper HTTP/1.1", r"(hyper::proto::h1|httparse::)"),
    ("h2 + hyper HTTP/2", r"(^|[<( ,&])(h2::|hyper::proto::h2)"),
    ("hyper (other)", r"hyper::"),
    ("hyper-util auto", r"hyper_util::"),
    ("connect-rust (connectrpc, buffa)", r"(connectrpc::|buffa::|connect_rust_peer::)"),
    ("runtime: request id (uuid, tower-http)", r"(uuid::|tower_http::request_id|grpc_runtime::request_id|rand::|getrandom)"),
    ("runtime: deadline (grpc-timeout)", r"grpc_runtime::deadline"),
    ("runtime: CORS (tower-http)", r"(tower_http::cors|grpc_runtime::cors)"),
    ("runtime: dispatch", r"grpc_runtime::dispatch"),
    ("runtime: message limit", r"grpc_runtime::limit"),
    ("runtime: overload (tower limit/load-shed)", r"(tower::limit|tower::load_shed|grpc_runtime::overload|tokio::sync::semaphore|tokio::sync::batch_semaphore)"),
    ("runtime: observe (call record)", r"grpc_runtime::observe"),
    ("runtime: metrics", r"(metrics::|metrics_exporter_prometheus|metrics_util|grpc_runtime::metrics|quanta::|sketches_ddsketch|portable_atomic)"),
    ("runtime: log line (tracing)", r"(tracing_subscriber|tracing_appender|tracing_core|tracing::|nu_ansi_term|crossbeam_channel|sharded_slab|article_server::telemetry)"),
    ("runtime: drain/accept/serve", r"grpc_runtime::(drain|accept|serve)"),
    ("runtime: gRPC-web translation", r"grpc_runtime::grpc_web"),
    ("runtime (other)", r"grpc_runtime::"),
    ("tonic-web translation", r"tonic_web::"),
    ("tonic codec (decode, encode body)", r"tonic::codec"),
    ("tonic server (Grpc::unary, routes)", r"tonic::"),
    ("axum routing", r"(axum::|matchit::)"),
    ("tower (buffer, util, boxing)", r"(tower::|tower_layer::|tower_service::)"),
    ("prost encode/decode", r"(prost::|tonic_prost::|article_proto::codec)"),
    ("handler + cache (article-server)", r"(article_server::|article_proto::)"),
    ("bench reference servers", r"(limit_server::|tonic_floor::)"),
    ("http/bytes/body types", r"(http::|http_body::|http_body_util::|bytes::)"),
    ("formatting (core::fmt)", r"(core::fmt|alloc::fmt|itoa::|ryu::|std::io::Write)"),
    ("tokio (scheduler, io, time)", r"(tokio::|mio::|atomic_waker::|futures_util::|futures_core::|parking_lot|std::sys::.*(sync|thread))"),
    ("hashing", r"(hashbrown|core::hash|std::hash|siphash|foldhash|ahash)"),
]

COMPILED = [(name, re.compile(rx)) for name, rx in LAYERS]
GENERIC = re.compile(r"^(<?(core|alloc|std)::|<alloc::|<core::|<std::|<&|<\[|<\(|<T|<F|<\*)")

ENTRY_POINTS = [
    ("hyper h1 dispatcher poll", r"hyper::proto::h1::dispatch::Dispatcher<.*>::poll_catch"),
    ("hyper h2 server poll", r"hyper::proto::h2::server::H2Stream<.*>.*::poll"),
    ("runtime: observe call()", r"grpc_runtime::observe::Observe<S> as tower_service::Service<.*>>::call"),
    ("tonic Grpc::unary", r"tonic::server::grpc::Grpc<T>>::unary::"),
    ("tonic EncodeBody poll_frame", r"tonic::codec::encode::EncodeBody<.*poll_frame"),
    ("tonic-web body poll_frame", r"tonic_web::call::GrpcWebCall<.*poll_frame"),
    ("runtime: gRPC-web body poll_frame", r"grpc_runtime::grpc_web::ResponseBody<.*poll_frame"),
    ("log line (Call::finish)", r"grpc_runtime::observe::Call::finish"),
    ("ListArticles handler", r"article_server::article::grpc::.*list_articles"),
]


def read_dump(path):
    """Self and inclusive instructions per function, read from the dump
    itself: callgrind_annotate 3.19 counts calls that were in progress when
    the counters were zeroed (`calls=0`) as the caller's own cost."""
    names = {}
    own = defaultdict(int)
    calls = defaultdict(int)
    fn = None
    in_call = False
    total = 0

    def name(ref):
        m = re.match(r"\((\d+)\)(?: (.*))?", ref)
        if not m:
            return ref
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names[m.group(1)]

    def base(sym):
        return re.sub(r"'\d+$", "", sym)

    callee = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line.startswith("fn="):
                fn = base(name(line[3:]))
            elif line.startswith("cfn="):
                callee = base(name(line[4:]))
            elif line.startswith("calls="):
                in_call = True
            elif line and (line[0].isdigit() or line[0] in "+-*"):
                parts = line.split()
                if len(parts) < 2:
                    continue
                ir = int(parts[1])
                if in_call:
                    # Inclusive cost of a call; recursion adds nothing new.
                    if callee != fn:
                        calls[fn] += ir
                    in_call = False
                else:
                    own[fn] += ir
                    total += ir
            elif line.startswith("summary:"):
                pass
    inclusive = {f: own.get(f, 0) + calls.get(f, 0) for f in set(own) | set(calls)}
    return total, own, inclusive


def layer_of(sym):
    candidates = [sym]
    if GENERIC.match(sym):
        # The crate named first inside the type arguments.
        inner = sym.split("<", 1)[1] if "<" in sym else sym
        candidates = [inner, sym]
    for text in candidates:
        for name, rx in COMPILED:
            if rx.search(text):
                return name
    return "std/core/alloc generics (Vec, Arc, drop glue)" if GENERIC.match(sym) else "other"


def main():
    path, calls = sys.argv[1], int(sys.argv[2])
    total, own, inc = read_dump(path)
    by_layer = defaultdict(int)
    top = defaultdict(list)
    for sym, ir in own.items():
        name = layer_of(sym)
        by_layer[name] += ir
        top[name].append((ir, sym))
    unnamed = sum(ir for sym, ir in own.items() if sym.startswith("0x"))
    if unnamed > total // 10:
        # Seen once: valgrind read no symbols of a binary it ran (a rerun
        # read them). The split is then meaningless.
        print(f"WARNING: {100 * unnamed // total} % of instructions in functions without a name: run again", file=sys.stderr)
    print(f"dump: {path}")
    print(f"calls: {calls}")
    print(f"total per call: {total // calls}")
    print()
    print("| layer (exclusive instructions) | per call | share |")
    print("|---|---:|---:|")
    for name, ir in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        if ir // calls == 0:
            continue
        print(f"| {name} | {ir // calls:,} | {100 * ir / total:.1f} % |")
    print()
    print("| entry point (inclusive, nested) | per call |")
    print("|---|---:|")
    for label, rx in ENTRY_POINTS:
        r = re.compile(rx)
        best = max((ir for sym, ir in inc.items() if r.search(sym)), default=0)
        if best:
            print(f"| {label} | {best // calls:,} |")
    print()
    print("top functions per layer (exclusive, per call):")
    for name, ir in sorted(by_layer.items(), key=lambda kv: -kv[1]):
        if name not in top:
            continue
        print(f"  {name}: {ir // calls:,}")
        for fir, sym in sorted(top[name], reverse=True)[:6]:
            if fir // calls == 0:
                break
            print(f"    {fir // calls:>8,}  {sym[:160]}")


if __name__ == "__main__":
    main()
