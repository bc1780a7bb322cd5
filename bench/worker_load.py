#!/usr/bin/env python3
"""Load generator for `kiln serve` (standard library only).

C concurrent clients send short completions for S seconds over keep-alive
connections and the script reports requests/s, 429 refusals and latency
percentiles (and time to first token for streamed requests).

    python3 bench/worker_load.py --url http://127.0.0.1:8080 -c 16 -s 30 --max-tokens 8 [--stream] [--key KEY]
"""
import argparse
import http.client
import json
import threading
import time
import urllib.parse


def client(args, stop_at, results, lock):
    u = urllib.parse.urlparse(args.url)
    conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
    headers = {"Content-Type": "application/json"}
    if args.key:
        headers["Authorization"] = f"Bearer {args.key}"
    body = json.dumps({"prompt": args.prompt, "max_tokens": args.max_tokens, "temperature": 0,
                       "stream": args.stream})
    local = []
    while time.monotonic() < stop_at:
        t0 = time.monotonic()
        first = None
        try:
            conn.request("POST", "/v1/completions", body=body, headers=headers)
            resp = conn.getresponse()
            if args.stream and resp.status == 200:
                while True:
                    line = resp.readline()
                    if not line:
                        break
                    if first is None and line.startswith(b"data: {"):
                        first = time.monotonic() - t0
            else:
                resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException):
            status = -1
            conn.close()
            conn = http.client.HTTPConnection(u.hostname, u.port or 80, timeout=60)
        local.append((status, time.monotonic() - t0, first))
        if status == 429:
            time.sleep(0.005)
    with lock:
        results.extend(local)


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("-c", "--clients", type=int, default=16)
    ap.add_argument("-s", "--seconds", type=float, default=10)
    ap.add_argument("--max-tokens", type=int, default=8)
    ap.add_argument("--prompt", default="The quick brown fox")
    ap.add_argument("--stream", action="store_true")
    ap.add_argument("--key")
    args = ap.parse_args()
    results, lock = [], threading.Lock()
    stop_at = time.monotonic() + args.seconds
    threads = [threading.Thread(target=client, args=(args, stop_at, results, lock)) for _ in range(args.clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    took = time.monotonic() - start
    ok = [r for r in results if r[0] == 200]
    refused = sum(1 for r in results if r[0] == 429)
    other = len(results) - len(ok) - refused
    lat = [r[1] * 1e3 for r in ok]
    print(f"{args.clients} clients, {took:.1f} s, max_tokens {args.max_tokens}, stream {args.stream}")
    print(f"  answered 200: {len(ok)} ({len(ok) / took:.1f}/s), refused 429: {refused}, other: {other}")
    print(f"  latency ms: p50 {pct(lat, 50):.1f}  p90 {pct(lat, 90):.1f}  p99 {pct(lat, 99):.1f}  max {max(lat or [0]):.1f}")
    ttft = [r[2] * 1e3 for r in ok if r[2] is not None]
    if ttft:
        print(f"  first token ms: p50 {pct(ttft, 50):.1f}  p90 {pct(ttft, 90):.1f}  p99 {pct(ttft, 99):.1f}")
    return 1 if other else 0


if __name__ == "__main__":
    raise SystemExit(main())
