#!/usr/bin/env python3
"""The Python baseline of issue 5: the obvious program for a POST /evaluate graph-form request.

    reference.py REQUEST.json OUT.json

json.loads, karpathy's micrograd (PyPI 0.1.0) building the Values in request order, backward() (its topological
sort recurses, so the recursion limit is raised), json.dumps of every node's data and grad in the service's
response shape (so the two outputs can be compared byte for byte, graph id aside). Prints the seconds spent from
reading the request to writing the response (interpreter start-up and imports excluded), wall and CPU, on stderr.
"""
import json
import sys
import time

from micrograd.engine import Value


def main():
    started = time.perf_counter()
    started_cpu = time.process_time()
    with open(sys.argv[1], "rb") as f:
        request = json.loads(f.read())
    nodes = request["nodes"]
    values = {}
    for node in nodes:
        op = node.get("op")
        if op is None:
            v = Value(node["value"])
        else:
            args = [values[i] for i in node["inputs"]]
            if op == "mul":
                v = args[0] * args[1]
            elif op == "add":
                v = args[0] + args[1]
            elif op == "relu":
                v = args[0].relu()
            else:
                raise SystemExit("reference.py: op %r is not in this benchmark" % op)
        values[node["id"]] = v
    output_id = request.get("output", nodes[-1]["id"])
    out = values[output_id]
    sys.setrecursionlimit(max(10_000, 4 * len(nodes) + 1000))
    out.backward()
    result = []
    for node in nodes:
        v = values[node["id"]]
        entry = {"id": node["id"]}
        if "op" in node:
            entry["op"] = node["op"]
            entry["inputs"] = node["inputs"]
        entry["data"] = float(v.data)
        entry["grad"] = float(v.grad)
        result.append(entry)
    text = json.dumps({"id": "python", "output": output_id, "value": float(out.data), "nodes": result},
                      separators=(",", ":"))
    with open(sys.argv[2], "w") as f:
        f.write(text)
    print("%.6f %.6f" % (time.perf_counter() - started, time.process_time() - started_cpu), file=sys.stderr)


if __name__ == "__main__":
    main()
