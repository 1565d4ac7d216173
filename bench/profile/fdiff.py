#!/usr/bin/env python3
"""Function by function, two callgrind dumps of percall.sh side by side.

    bench/profile/fdiff.py A.callgrind B.callgrind [LAYER_REGEX] [-n CALLS] [--top N]

Own instructions per call of every function whose layer (split.py's
`LAYERS`) matches LAYER_REGEX (default: all), in A and in B, sorted by the
size of the difference. For comparing two builds, or our server with a
reference server, inside one layer (e.g. "h2 \\+ hyper HTTP/2"). Names are
cut at 110 characters, so monomorphized copies of one function with long
type arguments may be summed together; that is the point when two servers
instantiate the same hyper/h2 code with different types.
"""
import argparse
import importlib.util
import os
import re
from collections import defaultdict

here = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("split", os.path.join(here, "split.py"))
split = importlib.util.module_from_spec(spec)
spec.loader.exec_module(split)


def per_function(path, layer_rx, calls):
    _, own, _ = split.read_dump(path)
    out = defaultdict(float)
    for sym, ir in own.items():
        if layer_rx.search(split.layer_of(sym)):
            out[sym[:110]] += ir / calls
    return out


def main():
    p = argparse.ArgumentParser()
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("layer", nargs="?", default="")
    p.add_argument("-n", type=int, default=2000, help="calls in each dump (percall.sh -n)")
    p.add_argument("--top", type=int, default=40)
    args = p.parse_args()
    rx = re.compile(args.layer)
    a = per_function(args.a, rx, args.n)
    b = per_function(args.b, rx, args.n)
    print(f"| A | B | B - A | function (own instructions per call) |")
    print("|---:|---:|---:|---|")
    print(f"| {sum(a.values()):,.0f} | {sum(b.values()):,.0f} | {sum(b.values()) - sum(a.values()):+,.0f} | **all matching** |")
    rows = sorted(set(a) | set(b), key=lambda k: -abs(b.get(k, 0) - a.get(k, 0)))
    for k in rows[: args.top]:
        va, vb = a.get(k, 0), b.get(k, 0)
        if round(va) == round(vb):
            break
        print(f"| {va:,.0f} | {vb:,.0f} | {vb - va:+,.0f} | `{k}` |")


if __name__ == "__main__":
    main()
