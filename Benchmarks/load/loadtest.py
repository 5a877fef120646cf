#!/usr/bin/env python3
"""Load and fault checks against a release `micrograd serve` on loopback (issue 7). Run through scripts/load-test.

Phases (each starts its own server, so one phase's memory does not colour the next):
  mixed    wrk at 256 connections mixing the small seed graph and a 10,000-node chain; every body checked
  leak     RSS after 100,000 and after 1,000,000 small requests (must be within 10%)
  big      peak RSS and time for one 1,000,000-node graph
  idle     500 idle connections open while wrk clients are served
  limit    connections past --connection-limit are refused quickly; service recovers once they close
  sigterm  SIGTERM during a wrk run (with a 1,000,000-node request in flight): it completes, exit 0

Every loop is bounded in count and time; every figure is printed. Exit status 1 if any check fails.
"""
import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MIXED_LUA = os.path.join(HERE, "mixed.lua")
failures = []


def log(message):
    print(message, flush=True)


def check(condition, what):
    log(("  PASS " if condition else "  FAIL ") + what)
    if not condition:
        failures.append(what)


def proc_status(pid, field):
    """A /proc/PID/status field in MiB (VmRSS, VmHWM, ...)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, binary, port, extra=()):
        self.port = port
        self.log_path = f"/tmp/micrograd-loadtest-{port}.log"
        self.log_file = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "error", *extra],
            stdout=self.log_file, stderr=subprocess.STDOUT)
        deadline = time.time() + 15
        while time.time() < deadline:
            try:
                if http("GET", "/healthz", port=port, timeout=2)[0] == 200:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server on {port} did not become healthy; see {self.log_path}")

    @property
    def pid(self):
        return self.process.pid

    def rss(self):
        return proc_status(self.pid, "VmRSS")

    def hwm(self):
        return proc_status(self.pid, "VmHWM")

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log_file.close()
        return self.process.returncode


def http(method, path, body=b"", port=0, timeout=30, headers=()):
    """One request on a fresh connection; returns (status, body bytes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        head = f"{method} {path} HTTP/1.1\r\nHost: load\r\nConnection: close\r\n"
        for name, value in headers:
            head += f"{name}: {value}\r\n"
        if body:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        s.sendall(head.encode() + b"\r\n" + body)
        data = bytearray()
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            data += chunk
    head, _, payload = bytes(data).partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.") else 0
    return status, payload


SEED = (b'{"nodes":[{"id":"a","value":2.0},{"id":"b","value":-3.0},{"id":"c","value":10.0},'
        b'{"id":"e","op":"mul","inputs":["a","b"]},{"id":"d","op":"add","inputs":["e","c"]}],"output":"d"}')


def chain(n):
    """An n-node chain of negations from 1.5: value -1.5 when n is even."""
    parts = ['{"nodes":[{"id":"n0","value":1.5}']
    parts += [f',{{"id":"n{i}","op":"neg","inputs":["n{i - 1}"]}}' for i in range(1, n)]
    parts.append("]}")
    return "".join(parts).encode()


def wrk(port, seconds, connections, env=None, threads=2, timeout="10s"):
    """Runs wrk with mixed.lua; returns the CHECK figures as a dict (plus the raw output)."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout}", "--latency",
               "-s", MIXED_LUA, f"http://127.0.0.1:{port}/evaluate"]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})},
                            timeout=seconds + 60)
    out = result.stdout + result.stderr
    figures = {}
    for line in out.splitlines():
        if line.startswith("CHECK "):
            figures = {k: float(v) for k, v in (kv.split("=") for kv in line.split()[1:])}
        elif line.startswith("SAMPLE "):
            log("  " + line)
    if not figures:
        log(out)
        raise RuntimeError("wrk printed no CHECK line")
    figures["raw"] = out
    return figures


def show_wrk(label, f):
    log(f"  {label}: requests={f['requests']:.0f} ({f['rps']:.0f}/s) small_ok={f['small_ok']:.0f} "
        f"large_ok={f['large_ok']:.0f} wrong_body={f['wrong_body']:.0f} non200={f['non200']:.0f} "
        f"errors connect/read/write/timeout={f['connect_err']:.0f}/{f['read_err']:.0f}/{f['write_err']:.0f}/"
        f"{f['timeout_err']:.0f} latency p50={f['p50_ms']:.2f}ms p99={f['p99_ms']:.2f}ms max={f['max_ms']:.0f}ms")


def clean(f, expect_requests=True):
    return ((f["requests"] > 0 or not expect_requests) and f["wrong_body"] == 0 and f["non200"] == 0
            and f["connect_err"] == 0 and f["read_err"] == 0 and f["write_err"] == 0 and f["timeout_err"] == 0)


def phase_mixed(args):
    log(f"== mixed: wrk {args.duration}s, {args.connections} connections, 1 in {args.large_every} requests a 10,000-node graph")
    server = Server(args.binary, args.port)
    try:
        f = wrk(args.port, args.duration, args.connections, {"LARGE_EVERY": str(args.large_every)})
        show_wrk("mixed", f)
        log(f"  server RSS after: {server.rss():.1f} MiB (peak {server.hwm():.1f} MiB)")
        check(clean(f) and f["large_ok"] > 0, "mixed run: every response 200 with the right value, no socket errors")
    finally:
        check(server.stop() == 0, "server exits 0 on SIGTERM after the mixed run")


def phase_leak(args):
    first, total = args.leak_first, args.leak_total
    log(f"== leak: RSS after {first:,} and {total:,} small requests (64 connections)")
    server = Server(args.binary, args.port)
    try:
        # wrk runs for a duration, not a count: each round asks every wrk thread (2) to stop after its share of
        # what is left (STOP_AFTER) with a duration estimated from the last rate, and rounds repeat until the count
        # is reached (at most 8 rounds). A slow round only means another round.
        # The rate comes from a 3 s calibration and from any round that ran its whole duration (wrk's own
        # requests/s is diluted by the idle tail of a round whose threads stopped early).
        calibration = wrk(args.port, 3, 64, {"LARGE_EVERY": "0"})
        state = {"rate": max(calibration["rps"], 500.0)}
        log(f"  calibration: {calibration['rps']:.0f} small requests/s ({calibration['requests']:,.0f} requests)")

        def run(count):
            sums = {"requests": 0.0, "small_ok": 0.0, "large_ok": 0.0, "wrong_body": 0.0, "non200": 0.0,
                     "connect_err": 0.0, "read_err": 0.0, "write_err": 0.0, "timeout_err": 0.0,
                     "p50_ms": 0.0, "p99_ms": 0.0, "max_ms": 0.0, "rps": 0.0}
            elapsed = 0.0
            for _ in range(8):
                left = count - sums["requests"]
                if left <= 0:
                    break
                seconds = max(3, int(left / state["rate"] * 1.3) + 2)
                started = time.time()
                f = wrk(args.port, seconds, 64, {"LARGE_EVERY": "0", "STOP_AFTER": str(int(left // 2) + 1)})
                elapsed += time.time() - started
                if f["requests"] < left:
                    state["rate"] = max(f["rps"], 500.0)
                for key in sums:
                    if key in ("p50_ms", "p99_ms", "max_ms"):
                        sums[key] = max(sums[key], f[key])
                    elif key != "rps":
                        sums[key] += f[key]
            sums["rps"] = sums["requests"] / max(elapsed, 1e-9)
            return sums

        a = run(first - calibration["requests"])
        for key in ("requests", "small_ok", "wrong_body", "non200", "connect_err", "read_err", "write_err", "timeout_err"):
            a[key] += calibration[key]
        rss_a = server.rss()
        show_wrk(f"first {first:,}", a)
        b = run(total - first)
        rss_b = server.rss()
        show_wrk(f"next {total - first:,}", b)
        done = a["requests"] + b["requests"]
        growth = (rss_b - rss_a) / rss_a * 100
        log(f"  RSS after {a['requests']:,.0f} requests: {rss_a:.1f} MiB; after {done:,.0f}: {rss_b:.1f} MiB "
            f"({growth:+.1f}%); peak {server.hwm():.1f} MiB")
        check(clean(a) and clean(b), "leak runs: every response 200 and right")
        check(a["requests"] >= first and done >= total, f"at least {first:,} then {total:,} requests were made ({done:,.0f})")
        check(abs(growth) <= 10, "RSS after the larger run within 10% of after the first")
    finally:
        check(server.stop() == 0, "server exits 0 after the leak runs")


def phase_big(args):
    log("== big: one 1,000,000-node graph")
    body = chain(1_000_000)
    server = Server(args.binary, args.port)
    try:
        before_rss, before_hwm = server.rss(), server.hwm()
        started = time.time()
        status, payload = http("POST", "/evaluate", body, port=args.port, timeout=120)
        elapsed = time.time() - started
        after_rss, after_hwm = server.rss(), server.hwm()
        log(f"  request {len(body) / 1e6:.1f} MB, response {len(payload) / 1e6:.1f} MB, status {status}, {elapsed:.2f} s")
        log(f"  RSS before {before_rss:.1f} MiB, peak {after_hwm:.1f} MiB (+{after_hwm - before_hwm:.1f}), "
            f"after {after_rss:.1f} MiB")
        check(status == 200 and b'"value":-1.5' in payload[:300],
              "1,000,000-node graph evaluates (200, value -1.5)")
        check(http("POST", "/evaluate", SEED, port=args.port)[0] == 200, "still serves small requests afterwards")
    finally:
        check(server.stop() == 0, "server exits 0 after the big graph")


def open_idle(port, count, timeout=10):
    sockets = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        sockets.append(s)
    return sockets


def phase_idle(args):
    log(f"== idle: {args.idle} idle connections while wrk (32 connections, {args.idle_seconds}s) is served")
    server = Server(args.binary, args.port)
    idle = []
    try:
        idle = open_idle(args.port, args.idle)
        time.sleep(0.5)
        f = wrk(args.port, args.idle_seconds, 32, {"LARGE_EVERY": "20"})
        show_wrk("with idle", f)
        alive = sum(1 for s in idle if not closed_by_peer(s))
        log(f"  idle connections still open after the run: {alive}/{len(idle)}")
        check(clean(f) and f["requests"] > 1000, f"clients served normally beside {args.idle} idle connections")
    finally:
        for s in idle:
            s.close()
        check(server.stop() == 0, "server exits 0 after the idle phase")


def closed_by_peer(s):
    s.setblocking(False)
    try:
        return s.recv(1) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True
    finally:
        s.setblocking(True)


def phase_limit(args):
    limit = args.connection_limit
    log(f"== limit: --connection-limit {limit}; {limit} idle connections, then new ones")
    server = Server(args.binary, args.port, ["--connection-limit", str(limit)])
    idle = []
    try:
        idle = open_idle(args.port, limit)
        time.sleep(1.0)  # let the server accept them all
        refused, served, times = 0, 0, []
        for _ in range(20):
            started = time.time()
            try:
                status, _ = http("POST", "/evaluate", SEED, port=args.port, timeout=2)
                served += status == 200
                refused += status != 200
            except OSError:
                refused += 1
            times.append(time.time() - started)
        log(f"  at the limit: {refused}/20 new connections refused, {served} served; "
            f"time to refusal max {max(times) * 1000:.1f} ms, mean {sum(times) / len(times) * 1000:.1f} ms")
        check(refused == 20 and max(times) < 1.0, "at the limit new connections are refused within 1 s")
        for s in idle:
            s.close()
        idle = []
        started = time.time()
        recovered = None
        while time.time() - started < 10:
            try:
                if http("POST", "/evaluate", SEED, port=args.port, timeout=2)[0] == 200:
                    recovered = time.time() - started
                    break
            except OSError:
                time.sleep(0.05)
        log(f"  after closing them: first request served after {recovered if recovered is not None else float('nan'):.3f} s")
        check(recovered is not None, "service recovers once the idle connections close")
        f = wrk(args.port, 5, 64, {"LARGE_EVERY": "0"})
        show_wrk("after recovery", f)
        check(clean(f), "full service after recovery")
    finally:
        for s in idle:
            s.close()
        check(server.stop() == 0, "server exits 0 after the limit phase")


class ProbeClients:
    """Threads sending the seed graph, one request per connection, classifying each attempt exactly: refused before
    the request was sent (fine once a stop began), answered completely, or sent but never fully answered (a
    dropped in-flight request: the failure SIGTERM must not cause)."""

    def __init__(self, port, threads=8):
        self.port, self.stop, self.lock = port, threading.Event(), threading.Lock()
        self.counts = {"ok": 0, "wrong": 0, "refused": 0, "dropped": 0}
        self.threads = [threading.Thread(target=self.run) for _ in range(threads)]
        for t in self.threads:
            t.start()

    def count(self, key):
        with self.lock:
            self.counts[key] += 1

    def run(self):
        request = (b"POST /evaluate HTTP/1.1\r\nHost: probe\r\nConnection: close\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(SEED)) + SEED
        deadline = time.time() + 120
        while not self.stop.is_set() and time.time() < deadline:
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=10)
            except OSError:
                self.count("refused")
                time.sleep(0.01)
                continue
            with s:
                try:
                    s.sendall(request)
                except OSError:
                    self.count("refused")
                    continue
                data = bytearray()
                try:
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                except OSError:
                    pass
            head, _, body = bytes(data).partition(b"\r\n\r\n")
            match = re.search(rb"Content-Length: (\d+)", head, re.I)
            if not head.startswith(b"HTTP/1.1 ") or not match or len(body) < int(match.group(1)):
                self.count("dropped")
            elif head.startswith(b"HTTP/1.1 200") and b'"value":4.0' in body:
                self.count("ok")
            else:
                self.count("wrong")

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        return self.counts


def phase_sigterm(args):
    log(f"== sigterm: SIGTERM {args.sigterm_after}s into a wrk run (256 connections) with 8 probe clients and a "
        "1,000,000-node request in flight")
    server = Server(args.binary, args.port, ["--grace-period", "20"])
    body = chain(1_000_000)
    result = {}

    def run_wrk():
        result["wrk"] = wrk(args.port, args.sigterm_after + 8, 256, {"LARGE_EVERY": "10"})

    def big_request():
        try:
            result["big"] = http("POST", "/evaluate", body, port=args.port, timeout=60)
        except OSError as error:
            result["big"] = (0, str(error).encode())

    load = threading.Thread(target=run_wrk)
    load.start()
    probes = ProbeClients(args.port)
    time.sleep(args.sigterm_after)
    big = threading.Thread(target=big_request)
    big.start()
    time.sleep(0.4)  # the 49 MB body is on its way or being evaluated
    signalled = time.time()
    server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        code = None
    exit_seconds = time.time() - signalled
    big.join(timeout=60)
    time.sleep(0.5)
    counts = probes.finish()
    load.join(timeout=60)
    server.log_file.close()
    status, payload = result.get("big", (0, b""))
    log(f"  server exit code {code} after {exit_seconds:.2f} s; in-flight 1,000,000-node request: status {status}, "
        f"{len(payload) / 1e6:.1f} MB")
    log(f"  probe clients: {counts['ok']} answered 200, {counts['wrong']} wrong, {counts['dropped']} sent but not "
        f"answered, {counts['refused']} refused before sending (after the listener closed)")
    f = result["wrk"]
    show_wrk("wrk across the stop", f)
    log("  (wrk counts its reconnects to the closed listener as write/read errors; the probes tell those apart)")
    check(code == 0, "exit 0 on SIGTERM during load")
    check(status == 200 and b'"value":-1.5' in payload[:300], "the in-flight 1,000,000-node request completed (200)")
    check(counts["ok"] > 0 and counts["dropped"] == 0 and counts["wrong"] == 0,
          "every probe request that reached the server was answered completely")
    check(f["wrong_body"] == 0 and f["non200"] == 0 and f["timeout_err"] == 0,
          "wrk: no wrong or non-200 response across the stop")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--port", type=int, default=18190)
    parser.add_argument("--duration", type=int, default=60, help="mixed wrk run, seconds")
    parser.add_argument("--connections", type=int, default=256)
    parser.add_argument("--large-every", type=int, default=10)
    parser.add_argument("--leak-first", type=int, default=100_000)
    parser.add_argument("--leak-total", type=int, default=1_000_000)
    parser.add_argument("--idle", type=int, default=500)
    parser.add_argument("--idle-seconds", type=int, default=10)
    parser.add_argument("--connection-limit", type=int, default=1000)
    parser.add_argument("--sigterm-after", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="short run: 10 s mixed, 20k/200k leak requests")
    parser.add_argument("--phases", default="mixed,leak,big,idle,limit,sigterm")
    args = parser.parse_args()
    if args.quick:
        args.duration, args.leak_first, args.leak_total, args.idle_seconds = 10, 20_000, 200_000, 5
    phases = {"mixed": phase_mixed, "leak": phase_leak, "big": phase_big, "idle": phase_idle,
              "limit": phase_limit, "sigterm": phase_sigterm}
    started = time.time()
    for name in args.phases.split(","):
        try:
            phases[name](args)
        except Exception as error:  # a phase that breaks is a failure, the others still run
            check(False, f"phase {name} raised {error!r}")
    log(f"== done in {time.time() - started:.0f} s: {len(failures)} failure(s)")
    for failure in failures:
        log("  FAILED: " + failure)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
