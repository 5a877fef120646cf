#!/usr/bin/env python3
"""End-to-end batch measurements of issue 13 against a release `micrograd serve` (client wall time, medians).
  1. POST /graphs/{gid}/evaluate, 100,000-row neuron batch (5 columns in; value + 5 gradient columns out)
     vs python_batch_pipeline.py (json.loads + numpy + json.dumps of the same request and answer)
  2. 16,384-row batch over the 979-node MLP (x0, x1 vary, their gradients back) vs batch_tape.c's compute time
  3. re-evaluation of a registered 100,000-node graph (POST /graphs/{gid}/evaluate, one new value)
     vs POST /evaluate of the same graph
usage: Benchmarks/batch/e2e.py [ROUNDS]   (builds nothing: run `swift build -c release --product micrograd` and
       gcc -O3 -march=native -o .build/batch_tape Benchmarks/batch/batch_tape.c -lm first)"""
import http.client, json, os, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "Benchmarks", "batch")
rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5

def py(*args):
    return subprocess.run([sys.executable, *args], capture_output=True, check=True).stdout

with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
server = subprocess.Popen([os.path.join(ROOT, ".build/release/micrograd"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close(); break
        except OSError:
            time.sleep(0.1)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def post(path, body):
        t0 = time.perf_counter()
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse(); data = r.read()
        dt = time.perf_counter() - t0
        if r.status >= 300: raise SystemExit(f"{path}: {r.status} {data[:300]!r}")
        return dt, data

    def median_post(path, body):
        post(path, body)  # warm-up
        return statistics.median(post(path, body)[0] for _ in range(rounds))

    # 1. neuron
    gid = json.loads(post("/graphs", py(os.path.join(HERE, "make_batch.py"), "neuron-graph"))[1])["graph"]
    neuron_body = py(os.path.join(HERE, "make_batch.py"), "neuron-values", "100000")
    t_neuron = median_post(f"/graphs/{gid}/evaluate", neuron_body)
    _, answer = post(f"/graphs/{gid}/evaluate", neuron_body)
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        f.write(neuron_body); f.flush()
        t_python = float(py(os.path.join(HERE, "python_batch_pipeline.py"), f.name)) / 1e3
    print(f"neuron 100,000 rows: {len(neuron_body) / 1e6:.1f} MB in, {len(answer) / 1e6:.1f} MB out: "
          f"service {t_neuron * 1e3:.1f} ms, Python json+numpy {t_python * 1e3:.1f} ms: {t_python / t_neuron:.1f}x faster (goal >= 20x)")

    # 2. MLP
    gid = json.loads(post("/graphs", py(os.path.join(HERE, "make_batch.py"), "mlp-graph"))[1])["graph"]
    mlp_body = py(os.path.join(HERE, "make_batch.py"), "mlp-values", "16384")
    t_mlp = median_post(f"/graphs/{gid}/evaluate", mlp_body)
    c_ms = []
    for _ in range(rounds):
        out = subprocess.run([os.path.join(ROOT, ".build/batch_tape"), "mlp", "16384"], capture_output=True, text=True).stdout
        c_ms.append(float(out.split("(")[1].split(" ms")[0]))
    t_c = statistics.median(c_ms) / 1e3
    print(f"mlp 16,384 rows end to end: service {t_mlp * 1e3:.1f} ms, C batched compute {t_c * 1e3:.1f} ms: "
          f"ratio {t_mlp / t_c:.2f} (goal <= 1)")

    # 3. 100k-node re-evaluation
    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        subprocess.run([sys.executable, os.path.join(ROOT, "Benchmarks/service/make_chain.py"), "100000", f.name], check=True)
        chain = open(f.name, "rb").read()
    t_evaluate = median_post("/evaluate", chain)
    gid = json.loads(post("/graphs", chain)[1])["graph"]
    t_again = median_post(f"/graphs/{gid}/evaluate", b'{"values": {"x0": 0.75}}')
    print(f"100,000-node graph: POST /evaluate {t_evaluate * 1e3:.1f} ms, re-evaluation {t_again * 1e3:.1f} ms: "
          f"{t_evaluate / t_again:.1f}x faster (goal >= 3x)")
finally:
    server.terminate(); server.wait()
