// micrograd page: write a program like the lecture's (or paste a graph), evaluate it on the service, look at the
// graph, its values and gradients, check them numerically, step through the backward pass and descend. Plain JS, no dependencies; the page is
// served with `Content-Security-Policy: default-src 'self'`, so nothing here uses inline styles or handlers.
"use strict";

(function () {
  const $ = (id) => document.getElementById(id);

  // ---------- numbers ----------

  // The service writes non-finite numbers as these strings (protobuf's JSON mapping).
  function num(x) {
    if (typeof x === "number") return x;
    if (x === "NaN") return NaN;
    if (x === "Infinity") return Infinity;
    if (x === "-Infinity") return -Infinity;
    return Number(x);
  }
  // Full precision: JS's shortest round-trip form, the same digits the service sent.
  const full = (x) => String(x);
  // Short form for arithmetic lines: 6 significant digits, no trailing zeros.
  function short(x) {
    if (!Number.isFinite(x)) return String(x);
    if (x === 0) return "0";
    const s = String(Number(x.toPrecision(6)));
    return s;
  }
  const paren = (x) => (x < 0 || Object.is(x, -0) ? "(" + short(x) + ")" : short(x));
  // micrograd's draw_dot prints "%.4f"; a tiny negative number rounds to "-0.0000", which reads as a sign error.
  const fixed4 = (x) => (Number.isFinite(x) ? noNegativeZero(x.toFixed(4)) : String(x));
  const noNegativeZero = (text) => text.replace(/-(0\.0+)(?![0-9])/g, "$1");

  // ---------- DOM helpers ----------

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    if (attrs) for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else e.setAttribute(k, v);
    }
    for (const c of children) e.append(c);
    return e;
  }
  function setState(s) { document.body.dataset.state = s; }

  // ---------- the input: a program + values for its unbound names, or graph JSON ----------

  // The neuron's values, remembered so that typing the lecture's neuron needs no typing of numbers.
  const NEURON_VALUES = { x1: "2", w1: "-3", x2: "0", w2: "1", b: "6.881373587019543" };
  const GRAPH_EXAMPLE = JSON.stringify({
    nodes: [
      { id: "a", value: 2.0, label: "a" },
      { id: "b", value: -3.0 },
      { id: "c", value: 10.0 },
      { id: "e", op: "mul", inputs: ["a", "b"] },
      { id: "d", op: "add", inputs: ["e", "c"] },
      { id: "L", op: "pow", inputs: ["d"], exponent: 2 },
    ],
    output: "L",
  }, null, 2);

  // Remembered values by name, so a name that leaves the program and comes back keeps its value.
  const knownValues = new Map(Object.entries(NEURON_VALUES));

  // The table lists exactly the names the service reported as unbound (the page has no parser of its own).
  function tableNames() { return [...$("values-body").querySelectorAll("input")].map((i) => i.dataset.name); }
  function rememberTable() {
    for (const input of $("values-body").querySelectorAll("input")) knownValues.set(input.dataset.name, input.value);
  }
  function setValueRows(names) {
    rememberTable();
    const body = $("values-body");
    body.replaceChildren();
    for (const name of names) {
      const id = "value-" + name;
      const input = el("input", {
        id, type: "text", inputmode: "decimal", class: "mono", autocomplete: "off", spellcheck: "false",
        "aria-describedby": "error",
      });
      input.dataset.name = name;
      input.value = knownValues.get(name) ?? "";
      input.addEventListener("input", markStale);
      body.append(el("tr", null,
        el("th", { scope: "row" }, el("label", { for: id, class: "mono", text: name })),
        el("td", null, input)));
    }
    $("values-table").hidden = names.length === 0;
  }

  function mode() { return $("mode-graph").checked ? "graph" : "expression"; }

  function applyMode() {
    const graph = mode() === "graph";
    $("expression-block").hidden = graph;
    $("graph-block").hidden = !graph;
    if (graph && $("graph-json").value.trim() === "") {
      $("graph-json").value = current ? graphFormOf(current.response) : GRAPH_EXAMPLE;
    }
    clearError();
  }

  // The graph form of an evaluated graph: paste-ready, the same graph the service drew.
  function graphFormOf(resp) {
    const nodes = resp.nodes.map((n) => {
      const out = { id: n.id };
      if (n.label !== undefined) out.label = n.label;
      if (n.op) {
        out.op = n.op;
        out.inputs = n.inputs;
        if (n.exponent !== undefined) out.exponent = n.exponent;
      } else out.value = n.data;
      return out;
    });
    return JSON.stringify({ nodes, output: resp.output }, null, 2);
  }

  // The values the table gives (filled rows only: an empty row is for the service to report), or throws a
  // problem-shaped object for a value that is not a number.
  function tableValues() {
    const values = {};
    for (const input of $("values-body").querySelectorAll("input")) {
      const name = input.dataset.name;
      const text = input.value.trim();
      knownValues.set(name, input.value);
      if (text === "") continue;
      if (text === "NaN" || text === "Infinity" || text === "-Infinity") { values[name] = text; continue; }
      const v = Number(text);
      if (!Number.isFinite(v)) {
        throw {
          title: "That is not a number",
          detail: `${name}: "${text}" is not a number.`,
          pointer: "/values/" + name.replace(/~/g, "~0").replace(/\//g, "~1"),
        };
      }
      values[name] = v;
    }
    return values;
  }

  // ---------- errors next to the input ----------

  function clearError() {
    $("error").hidden = true;
    $("error-where").hidden = true;
    for (const e of document.querySelectorAll("[aria-invalid]")) e.removeAttribute("aria-invalid");
  }

  function decodePointer(p) {
    return p.split("/").slice(1).map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
  }

  // What a learner reads first: what to do, not an HTTP status (the status stays in a data attribute for tools).
  function titleOf(p) {
    const kind = typeof p.type === "string" ? p.type.replace(/^.*\//, "") : "";
    if (Array.isArray(p.unbound) && p.unbound.length) return `Give ${p.unbound.join(", ")} a value`;
    const titles = {
      "invalid-expression": "The program has a mistake",
      "invalid-graph": "This graph cannot be evaluated",
      "malformed-json": "This is not valid JSON",
      "invalid-request": "The request is not shaped right",
      "too-large": "Too large for the service",
      "render-limit": "Too large to draw",
      "renderer-unavailable": "The drawing service is unavailable",
    };
    return titles[kind] || p.title || "Something went wrong";
  }

  function showProblem(p) {
    $("error-title").textContent = titleOf(p);
    $("error").dataset.status = p.status ? String(p.status) : "";
    $("error-detail").textContent = p.detail || "";
    const where = $("error-where");
    where.hidden = true;
    $("error").hidden = false;
    let focusTarget = null;

    if (mode() === "expression") {
      const expr = $("expression");
      const tokens = typeof p.pointer === "string" ? decodePointer(p.pointer) : [];
      if (tokens[0] === "values" && tokens.length >= 2) {
        const input = $("values-body").querySelector(`input[data-name="${CSS.escape(tokens[1])}"]`);
        if (input) { input.setAttribute("aria-invalid", "true"); focusTarget = input; }
      }
      if (Array.isArray(p.unbound)) {
        for (const name of p.unbound) {
          const input = $("values-body").querySelector(`input[data-name="${CSS.escape(name)}"]`);
          if (input && input.value.trim() === "") { input.setAttribute("aria-invalid", "true"); if (!focusTarget) focusTarget = input; }
        }
        if (focusTarget) { focusTarget.focus(); return; }
      }
      if (typeof p.column === "number" && p.column >= 1 && tokens[0] === "expression") {
        // `line` comes with multi-line programs; the column counts characters within that line.
        const lines = expr.value.split("\n");
        const lineNo = typeof p.line === "number" ? Math.min(Math.max(p.line, 1), lines.length) : 1;
        const text = typeof p.line === "number" ? lines[lineNo - 1] : expr.value;
        const chars = [...text];
        const col = Math.min(p.column, chars.length + 1);
        const lineStart = typeof p.line === "number" ? lines.slice(0, lineNo - 1).reduce((n, l) => n + l.length + 1, 0) : 0;
        const offset = lineStart + chars.slice(0, col - 1).join("").length;
        where.textContent = (typeof p.line === "number" ? `line ${p.line}, column ${p.column}:\n` : "") +
          `${text}\n${" ".repeat(col - 1)}^ column ${p.column}`;
        where.hidden = false;
        expr.setAttribute("aria-invalid", "true");
        expr.focus();
        expr.setSelectionRange(offset, Math.min(offset + 1, expr.value.length));
        return;
      }
      if (!focusTarget && (tokens[0] === "expression" || p.status === 422)) {
        expr.setAttribute("aria-invalid", "true");
        focusTarget = expr;
      }
    } else {
      const area = $("graph-json");
      area.setAttribute("aria-invalid", "true");
      focusTarget = area;
      // Text that is not JSON: the browser's parser knows the exact character; the service's pointer (if any)
      // only says which value it was reading.
      const syntax = p.status === 400 || typeof p.pointer !== "string" ? jsonSyntaxError(area.value) : null;
      if (syntax) {
        const before = area.value.slice(0, syntax.offset);
        const lineStart = before.lastIndexOf("\n") + 1;
        const lineEnd = area.value.indexOf("\n", syntax.offset);
        const col = syntax.offset - lineStart + 1;
        where.textContent = [...(typeof p.pointer === "string" ? [`while reading ${p.pointer}`] : []),
          `line ${before.split("\n").length}, column ${col}: ${syntax.message}`,
          area.value.slice(lineStart, lineEnd < 0 ? undefined : lineEnd), " ".repeat(col - 1) + "^"].join("\n");
        where.hidden = false;
        area.focus();
        area.setSelectionRange(syntax.offset, Math.min(syntax.offset + 1, area.value.length));
        return;
      }
      if (typeof p.pointer === "string") {
        const range = locatePointer(area.value, decodePointer(p.pointer));
        const lines = [`at ${p.pointer || "/"}` + nodeNameAt(area.value, p.pointer)];
        if (range) {
          const before = area.value.slice(0, range[0]);
          const line = before.split("\n").length;
          const lineStart = before.lastIndexOf("\n") + 1;
          const lineEnd = area.value.indexOf("\n", range[0]);
          const text = area.value.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
          const col = range[0] - lineStart + 1;
          const width = Math.max(1, Math.min(range[1], lineEnd < 0 ? area.value.length : lineEnd) - range[0]);
          lines.push(`line ${line}, column ${col}:`, text, " ".repeat(col - 1) + "^".repeat(width));
          area.focus();
          area.setSelectionRange(range[0], range[1]);
        }
        where.textContent = lines.join("\n");
        where.hidden = false;
        return;
      }
    }
    if (focusTarget) focusTarget.focus();
  }

  // Where the browser's JSON parser stops, as an offset into `text` (Chromium says "position N", Firefox
  // "line L column C"), or null if the text parses or the message gives no place.
  function jsonSyntaxError(text) {
    try { JSON.parse(text); return null; } catch (e) {
      const message = String(e.message || e);
      let m = /position (\d+)/.exec(message);
      if (m) return { offset: Math.min(Number(m[1]), text.length), message };
      m = /line (\d+) column (\d+)/.exec(message);
      if (m) {
        let offset = 0;
        for (let line = 1; line < Number(m[1]); line++) {
          const next = text.indexOf("\n", offset);
          if (next < 0) break;
          offset = next + 1;
        }
        return { offset: Math.min(offset + Number(m[2]) - 1, text.length), message };
      }
      return null;
    }
  }

  // " (node "p")" when the pointer is inside /nodes/N of a parseable body.
  function nodeNameAt(text, pointer) {
    const t = decodePointer(pointer);
    if (t[0] !== "nodes" || t.length < 2) return "";
    try {
      const n = JSON.parse(text).nodes[Number(t[1])];
      return n && typeof n.id === "string" ? ` (node "${n.id}")` : "";
    } catch (_) { return ""; }
  }

  // [start, end) of the JSON value an RFC 6901 pointer names in `text`, or null. A scanner, not a parser:
  // it descends only along the pointer and skips everything else without recursion.
  function locatePointer(text, tokens) {
    let i = 0;
    const ws = () => { while (i < text.length && " \t\r\n".includes(text[i])) i++; };
    const skipString = () => { // at '"'
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
      i++;
    };
    const skipValue = () => {
      ws();
      if (text[i] === '"') { skipString(); return; }
      if (text[i] === "{" || text[i] === "[") {
        let depth = 0;
        while (i < text.length) {
          const c = text[i];
          if (c === '"') { skipString(); continue; }
          if (c === "{" || c === "[") depth++;
          else if (c === "}" || c === "]") { depth--; if (depth === 0) { i++; return; } }
          i++;
        }
        return;
      }
      while (i < text.length && !",]} \t\r\n".includes(text[i])) i++;
    };
    ws();
    for (const token of tokens) {
      if (text[i] === "{") {
        i++;
        let found = false;
        for (;;) {
          ws();
          if (text[i] !== '"') return null;
          const start = i;
          skipString();
          let key;
          try { key = JSON.parse(text.slice(start, i)); } catch (_) { return null; }
          ws();
          if (text[i] !== ":") return null;
          i++;
          ws();
          if (key === token) { found = true; break; }
          skipValue();
          ws();
          if (text[i] !== ",") return null;
          i++;
        }
        if (!found) return null;
      } else if (text[i] === "[") {
        i++;
        const want = Number(token);
        if (!Number.isInteger(want) || want < 0) return null;
        for (let k = 0; k < want; k++) {
          skipValue();
          ws();
          if (text[i] !== ",") return null;
          i++;
        }
        ws();
        if (text[i] === "]") return null;
      } else return null;
    }
    ws();
    const start = i;
    skipValue();
    return i > start ? [start, i] : null;
  }

  // ---------- evaluating ----------

  let current = null; // { response, byId: Map id -> index, svg, index }
  let evaluations = 0;

  // The RFC 9457 problem in an error response, or one made up from whatever the response was.
  async function problemOf(res) {
    const type = res.headers.get("Content-Type") || "";
    if (type.includes("json")) {
      try { return await res.json(); } catch (_) { /* fall through */ }
    }
    return { title: `HTTP ${res.status}`, status: res.status, detail: (await res.text()).slice(0, 300) };
  }

  async function post(body, path = "/evaluate") {
    const res = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body,
    });
    return res.ok ? { ok: true, response: await res.json(), body } : { ok: false, status: res.status, problem: await problemOf(res) };
  }

  // The expression form, driven by the service's answers: send the values the table has; when the service lists
  // unbound names, make them the table (filled from memory where it can) and try again; when a value the table
  // sent is no longer wanted (the program now assigns that name), ask once without values to learn what is.
  async function evaluateProgram() {
    const program = $("expression").value;
    let values = tableValues();
    for (let attempt = 0; attempt < 3; attempt++) {
      const answer = await post(JSON.stringify({ expression: program, values }));
      if (answer.ok) return answer;
      const p = answer.problem;
      let names = Array.isArray(p.unbound) ? p.unbound : null;
      if (!names && p.status === 422 && Object.keys(values).length > 0) {
        const probe = await post(JSON.stringify({ expression: program }));
        if (probe.ok) { setValueRows([]); return probe; }
        if (!Array.isArray(probe.problem.unbound)) return answer.problem.detail === probe.problem.detail ? answer : probe;
        names = probe.problem.unbound;
      }
      if (!names) return answer;
      const keep = tableNames().filter((n) => names.includes(n));
      setValueRows([...keep, ...names.filter((n) => !keep.includes(n))]);
      values = tableValues();
      if (names.some((n) => !(n in values))) return { ok: false, problem: { ...p, unbound: names.filter((n) => !(n in values)) } };
    }
    return { ok: false, problem: { title: "Could not settle the values", detail: "The service kept asking for other names." } };
  }

  // A descent step: the graph is registered once (POST /graphs, content-addressed) and evaluated again with the
  // leaves' new values (POST /graphs/{gid}/evaluate); a service without /graphs gets the plain request instead.
  async function evaluateStep(request, values) {
    let gid = current.gid;
    if (!gid) {
      const registered = await post(request, "/graphs");
      if (!registered.ok) return [404, 405, 503, 507].includes(registered.status) ? null : registered;
      gid = registered.response.graph;
    }
    const answer = await post(JSON.stringify({ values }), `/graphs/${encodeURIComponent(gid)}/evaluate`);
    if (answer.ok) { answer.body = request; answer.gid = gid; }
    return answer;
  }

  let busy = false;
  async function evaluate(how, step) {
    if (busy) return; // one request at a time: a second Ctrl+Enter must not race the first
    clearError();
    if (how !== "descent") resetDescent();
    setState("busy");
    busy = true;
    $("busy").hidden = false;
    $("evaluate").disabled = true;
    try {
      const answer = (step && await evaluateStep(step.request, step.values)) ||
        (mode() === "graph" ? await post($("graph-json").value) : await evaluateProgram());
      if (!answer.ok) { showProblem(answer.problem); markStale(); setState("error"); return; }
      await showResult(answer.response);
      current.request = answer.body; // what was evaluated, for registering it on the first descent step
      current.gid = answer.gid || null;
      evaluations++;
      document.body.dataset.evaluations = String(evaluations);
      setState("done");
    } catch (e) {
      if (e && e.title && !(e instanceof Error)) showProblem(e);
      else showProblem({ title: "Could not reach the service", detail: String(e && e.message || e) });
      markStale();
      setState("error");
    } finally {
      busy = false;
      $("busy").hidden = true;
      $("evaluate").disabled = false;
    }
  }

  // The shown result no longer matches the input: dim it and say so, until the next successful evaluation.
  function markStale() {
    if (!current) return;
    document.body.dataset.stale = "true";
    $("stale-note").hidden = false;
  }
  function clearStale() {
    delete document.body.dataset.stale;
    $("stale-note").hidden = true;
  }

  async function showResult(response) {
    stopStepping();
    clearStale();
    for (const n of response.nodes) { n.data = num(n.data); n.grad = num(n.grad); }
    const byId = new Map(response.nodes.map((n, i) => [n.id, i]));
    current = { response, byId, svg: null, index: null, steps: null, step: -1 };
    if (mode() === "expression") {
      // Values the program no longer uses leave the table (and stay remembered).
      setValueRows(tableNames().filter((n) => byId.has(n) && !response.nodes[byId.get(n)].op));
    }

    $("placeholder").hidden = true;
    $("result").hidden = false;
    $("output-id").textContent = response.output;
    $("output-value").textContent = full(num(response.value));
    const q = "?id=" + encodeURIComponent(response.id);
    $("download-dot").href = "/graph.dot" + q;
    $("download-svg").href = "/graph.svg" + q;
    $("download-json").href = "/graph.jgf" + q;

    fillTables(response);
    recordDescent(num(response.value));
    hideDetails();
    try {
      await loadSvg(response.id);
    } catch (e) { // the numbers are already shown; only the drawing is missing
      $("graph-message").textContent = `No drawing: ${e && e.message || e}`;
      $("graph-message").hidden = false;
    }
  }

  const nameOf = (n) => (n.label !== undefined && n.label !== "" ? n.label : n.id);
  const isVariable = (n) => !n.op && !n.constant;

  function fillTables(response) {
    const grads = document.createDocumentFragment();
    for (const n of response.nodes) {
      if (!isVariable(n)) continue;
      const learn = el("input", { type: "checkbox", class: "learn", "aria-label": `learn ${nameOf(n)}` });
      learn.checked = !unlearned.has(n.id);
      learn.dataset.id = n.id;
      learn.addEventListener("change", () => { if (learn.checked) unlearned.delete(n.id); else unlearned.add(n.id); });
      const row = el("tr", null,
        el("th", { scope: "row", class: "mono", text: nameOf(n) }),
        el("td", { class: "mono num", text: short(n.data), title: full(n.data) }),
        el("td", { class: "mono num grad", text: short(n.grad), title: full(n.grad) }),
        el("td", { class: "mono num numerical" }),
        el("td", { class: "learn" }, learn));
      row.dataset.id = n.id;
      row.dataset.grad = full(n.grad);
      grads.append(row);
    }
    $("grad-body").replaceChildren(grads);
    fillNumerical();

    // The full table can be large; past a few thousand rows it only slows the page down.
    const limit = 2000;
    const rows = document.createDocumentFragment();
    for (const n of response.nodes.slice(0, limit)) {
      const row = el("tr", null,
        el("td", { class: "mono", text: n.id + (n.label && n.label !== n.id ? ` (${n.label})` : "") }),
        el("td", { class: "mono", text: n.op ? opText(n) : (n.constant ? "constant" : "leaf") }),
        el("td", { class: "mono", text: (n.inputs || []).join(", ") }),
        el("td", { class: "mono num", text: full(n.data) }),
        el("td", { class: "mono num", text: full(n.grad) }));
      row.dataset.id = n.id;
      rows.append(row);
    }
    if (response.nodes.length > limit) {
      rows.append(el("tr", null, el("td", { colspan: "5", text: `... ${response.nodes.length - limit} more nodes` })));
    }
    $("nodes-body").replaceChildren(rows);
  }

  // ---------- the lecture's next steps: a numerical gradient check and gradient descent ----------

  // The forward pass over the evaluated graph, with some leaves moved: f(x + h) for the numerical check.
  function forward(nodes, byId, output, moved) {
    const v = new Float64Array(nodes.length);
    for (let i = 0; i < nodes.length; i++) {
      const n = nodes[i];
      if (!n.op) { v[i] = moved.has(i) ? moved.get(i) : n.data; continue; }
      const a = v[byId.get(n.inputs[0])];
      const b = n.inputs.length > 1 ? v[byId.get(n.inputs[1])] : undefined;
      switch (n.op) {
        case "add": v[i] = a + b; break;
        case "sub": v[i] = a - b; break;
        case "mul": v[i] = a * b; break;
        case "div": v[i] = a / b; break;
        case "neg": v[i] = -a; break;
        case "pow": v[i] = b === undefined ? Math.pow(a, num(n.exponent)) : Math.pow(a, b); break;
        case "exp": v[i] = Math.exp(a); break;
        case "log": v[i] = Math.log(a); break;
        case "tanh": v[i] = Math.tanh(a); break;
        case "relu": v[i] = a > 0 ? a : 0; break;
        case "sigmoid": v[i] = 1 / (1 + Math.exp(-a)); break;
        default: return NaN;
      }
    }
    return v[byId.get(output)];
  }

  // (f(x + h) - f(x)) / h per leaf, next to the grad backward computed.
  function fillNumerical() {
    if (!current) return;
    const h = Number($("num-h").value.trim());
    const { nodes } = current.response;
    const f0 = forward(nodes, current.byId, current.response.output, new Map());
    for (const row of $("grad-body").querySelectorAll("tr")) {
      const i = current.byId.get(row.dataset.id);
      const cell = row.querySelector(".numerical");
      if (!Number.isFinite(h) || h === 0) { cell.textContent = "h?"; delete row.dataset.numerical; continue; }
      const slope = (forward(nodes, current.byId, current.response.output, new Map([[i, nodes[i].data + h]])) - f0) / h;
      cell.textContent = short(slope);
      cell.title = full(slope);
      row.dataset.numerical = full(slope);
      const g = nodes[i].grad;
      cell.classList.toggle("off", Number.isFinite(g) && Math.abs(slope - g) > 0.01 + 100 * Math.abs(h) * Math.max(1, Math.abs(g)));
    }
  }

  const unlearned = new Set(); // leaves the user unchecked in the "learn" column
  let descentHistory = [];
  function resetDescent() { descentHistory = []; }
  function recordDescent(value) {
    descentHistory.push(value);
    const shown = descentHistory.slice(-8).map(short);
    const steps = descentHistory.length - 1;
    $("descent-text").textContent = steps === 0 ? "" :
      `${current.response.output}: ${descentHistory.length > 8 ? "... " : ""}${shown.join(" \u2192 ")} (${steps} step${steps === 1 ? "" : "s"})`;
    const chart = $("descent-chart");
    chart.hidden = steps === 0;
    const finite = descentHistory.filter(Number.isFinite);
    if (steps === 0 || finite.length === 0) return;
    const lo = Math.min(...finite), hi = Math.max(...finite);
    const points = descentHistory.map((v, k) => {
      const x = descentHistory.length === 1 ? 0 : (300 * k) / (descentHistory.length - 1);
      const y = hi === lo ? 30 : 55 - (50 * ((Number.isFinite(v) ? v : hi) - lo)) / (hi - lo);
      return `${x.toFixed(1)},${y.toFixed(1)}`;
    });
    $("descent-line").setAttribute("points", points.join(" "));
  }

  // `name = <number>` in the program gets the number `value` (the statement that made the leaf).
  function reassign(program, name, value) {
    const re = new RegExp(`(^|[;\\n])([ \\t]*${name}[ \\t]*=[ \\t]*)[-+]?(?:\\d+\\.?\\d*|\\.\\d+)(?:[eE][+-]?\\d+)?`);
    return program.replace(re, (_, before, assign) => before + assign + String(value));
  }

  // One step of gradient descent: every leaf marked "learn" moves by -lr * grad; then evaluate again.
  async function descend() {
    if (!current || busy) return;
    const lr = Number($("lr").value.trim());
    if (!Number.isFinite(lr)) {
      showProblem({ title: "lr must be a number", detail: `"${$("lr").value}" is not a number.` });
      return;
    }
    const moves = new Map(), values = {};
    for (const n of current.response.nodes) {
      if (!isVariable(n)) continue;
      const next = n.data - lr * n.grad;
      if (!unlearned.has(n.id) && Number.isFinite(next)) moves.set(n.id, next);
      const v = moves.has(n.id) ? next : n.data; // every leaf, so an unchecked one keeps its current value
      values[n.id] = Number.isFinite(v) ? v : String(v); // "NaN", "Infinity", "-Infinity", as the service writes them
    }
    const step = current.request ? { request: current.request, values } : null;
    if (mode() === "graph") {
      const form = JSON.parse(graphFormOf(current.response));
      for (const n of form.nodes) if (moves.has(n.id)) n.value = moves.get(n.id);
      $("graph-json").value = JSON.stringify(form, null, 2);
    } else {
      let program = $("expression").value;
      for (const [id, value] of moves) {
        const input = $("values-body").querySelector(`input[data-name="${CSS.escape(id)}"]`);
        if (input) { input.value = String(value); knownValues.set(id, input.value); } else program = reassign(program, id, value);
      }
      $("expression").value = program;
    }
    await evaluate("descent", step);
  }

  // "x1 * w1", "tanh(#4)", "d ** 2": how the node reads as an expression over its inputs' names.
  function formulaOf(n) {
    const ins = (n.inputs || []).map((id) => { const m = current.response.nodes[current.byId.get(id)]; return m ? nameOf(m) : id; });
    const infix = { add: "+", sub: "-", mul: "*", div: "/", pow: "**" };
    if (n.op === "pow" && ins.length === 1) return `${ins[0]} ** ${short(num(n.exponent))}`;
    if (infix[n.op] && ins.length === 2) return `${ins[0]} ${infix[n.op]} ${ins[1]}`;
    if (n.op === "neg") return `-${ins[0]}`;
    return `${n.op}(${ins.join(", ")})`;
  }

  const SYMBOLS = { add: "+", sub: "-", mul: "*", div: "/", neg: "neg", pow: "**", exp: "exp", log: "log",
    tanh: "tanh", relu: "ReLU", sigmoid: "sigmoid" };
  function opText(n) {
    const s = SYMBOLS[n.op] ? `${n.op} (${SYMBOLS[n.op]})` : n.op;
    return n.exponent !== undefined ? `${s} ${short(num(n.exponent))}` : s;
  }

  // ---------- the SVG: load, index nodes by id, pan and zoom ----------

  async function loadSvg(id) {
    const view = $("graph-view");
    const message = $("graph-message");
    view.replaceChildren();
    message.hidden = true;
    let res = await fetch("/graph.svg?id=" + encodeURIComponent(id), { headers: { Accept: "image/svg+xml" } });
    if (!res.ok) {
      const p = await problemOf(res);
      message.textContent = `No drawing: ${p.title || "error"}${p.detail ? ": " + p.detail : ""}`;
      message.hidden = false;
      view.hidden = true;
      return;
    }
    const text = await res.text();
    const doc = new DOMParser().parseFromString(text, "image/svg+xml");
    const root = doc.documentElement;
    if (root.nodeName !== "svg" || doc.getElementsByTagName("parsererror").length) {
      message.textContent = "No drawing: the service sent an SVG the browser cannot read.";
      message.hidden = false;
      view.hidden = true;
      return;
    }
    // Graphviz emits no scripts; drop any anyway so the drawing stays inert.
    for (const s of root.querySelectorAll("script, foreignObject")) s.remove();
    for (const e of root.querySelectorAll("*")) {
      for (const a of [...e.attributes]) if (/^on/i.test(a.name)) e.removeAttribute(a.name);
    }
    const svg = document.importNode(root, true);
    svg.removeAttribute("width");
    svg.removeAttribute("height");
    svg.classList.add("graph-svg");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", `Graph of ${current.response.nodes.length} nodes, output ${current.response.output}`);
    view.hidden = false;
    view.append(svg);
    current.svg = svg;
    current.whole = viewBoxOf(svg);
    view.dataset.whole = [current.whole.x, current.whole.y, current.whole.w, current.whole.h].join(" ");
    indexSvg(svg);
    firstView(view, svg);
  }

  // A graph fitted to the box may be unreadably small: the scale stays within [MIN_SCALE, MAX_SCALE] (Graphviz's
  // 14 pt text stays >= ~8 px), showing the inputs first (left end; rankdir=LR); the box takes the drawing's
  // height, up to most of the window, so a small graph is large and a big one is panned.
  const MIN_SCALE = 0.6, MAX_SCALE = 1.6;
  function firstView(view, svg) {
    const whole = current.whole;
    const width = view.clientWidth || 800;
    const maxHeight = Math.max(240, Math.round(window.innerHeight * 0.75));
    const scale = Math.min(MAX_SCALE, Math.max(MIN_SCALE, Math.min(width / whole.w, maxHeight / whole.h)));
    const height = Math.min(maxHeight, Math.max(240, Math.ceil(whole.h * scale) + 16));
    view.style.height = height + "px"; // CSSOM, which the page's CSP allows (unlike style attributes)
    const w = width / scale, h = (view.clientHeight || height) / scale; // clientHeight: inside the border
    const x = w >= whole.w ? whole.x - (w - whole.w) / 2 : whole.x;
    const y = whole.y - (h - whole.h) / 2;
    current.home = { x, y, w, h };
    current.viewWidth = width;
    setViewBox(current.home);
  }

  // A new width (a phone turned, a window resized) gets a fresh first view sized for it.
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => {
      const view = $("graph-view");
      if (current && current.svg && view.clientWidth && view.clientWidth !== current.viewWidth) firstView(view, current.svg);
    }, 150);
  });

  function viewBoxOf(svg) {
    const vb = svg.viewBox.baseVal;
    if (vb && vb.width > 0) return { x: vb.x, y: vb.y, w: vb.width, h: vb.height };
    const b = svg.getBBox();
    return { x: b.x, y: b.y, w: b.width || 1, h: b.height || 1 };
  }
  function setViewBox(v) {
    current.svg.setAttribute("viewBox", `${v.x} ${v.y} ${v.w} ${v.h}`);
  }

  // Graphviz puts each DOT node name in the node's <title>. Two namings are understood: by id (the record is
  // the node's id, its op node the id plus a suffix or prefix) and by position (`n3` / `op3`: node 3 of the
  // topological order). Whichever reads more record labels correctly wins, so an id that happens to look
  // positional ("n3") cannot mislead; records no naming explains fall back to their label text.
  function byIdName(name) {
    const byId = current.byId;
    if (byId.has(name)) return { id: name, op: false };
    for (let k = name.length - 1; k > 0; k--) if (byId.has(name.slice(0, k))) return { id: name.slice(0, k), op: true };
    for (let k = 1; k < name.length; k++) if (byId.has(name.slice(k))) return { id: name.slice(k), op: true };
    return null;
  }
  function byPosition(name) {
    const m = /^(\D*)(\d+)(\D*)$/.exec(name);
    if (!m) return null;
    const i = Number(m[2]);
    const nodes = current.response.nodes;
    return i < nodes.length ? { id: nodes[i].id, op: null } : null;
  }

  function indexSvg(svg) {
    const nodes = current.response.nodes;
    for (const t of svg.querySelectorAll("text")) if (/-0\.0+\b/.test(t.textContent)) t.textContent = noNegativeZero(t.textContent);
    const nodeOf = (id) => nodes[current.byId.get(id)];
    const byLabel = new Map();
    for (const n of nodes) byLabel.set(nameOf(n), byLabel.has(nameOf(n)) ? null : n.id);

    const drawn = [...svg.querySelectorAll("g.node")].map((g) => {
      const title = g.querySelector("title");
      const texts = [...g.querySelectorAll("text")];
      return {
        g, name: title ? title.textContent.trim() : "",
        first: texts.length ? texts[0].textContent.trim() : "",
        gradText: texts.find((t) => /^\s*grad\b/.test(t.textContent)) || null, // only records carry a grad line
      };
    });
    const score = (resolve) => drawn.filter((d) => {
      if (!d.gradText) return false;
      const r = resolve(d.name);
      return r && nameOf(nodeOf(r.id)) === d.first;
    }).length;
    const resolve = score(byPosition) > score(byIdName) ? byPosition : byIdName;
    current.naming = resolve === byPosition ? "position" : "id";

    const index = new Map(); // id -> { record: g, op: g, gradText, gradOriginal, edges: [g] }
    const entry = (id) => { if (!index.has(id)) index.set(id, { record: null, op: null, gradText: null, edges: [] }); return index.get(id); };
    for (const d of drawn) {
      let r = resolve(d.name);
      if (d.gradText && (!r || nameOf(nodeOf(r.id)) !== d.first)) {
        const id = byLabel.get(d.first);
        r = id ? { id } : null;
      }
      if (!r) continue;
      const n = nodeOf(r.id);
      const isRecord = !!d.gradText;
      const e = entry(r.id);
      if (isRecord) { e.record = d.g; e.gradText = d.gradText; e.gradOriginal = d.gradText.textContent; }
      else e.op = d.g;
      const g = d.g;
      g.classList.add("mg-node");
      g.dataset.nodeId = r.id;
      // Not in the Tab order (a big graph would swallow Tab); n and p walk the nodes from the keyboard.
      g.setAttribute("tabindex", "-1");
      g.setAttribute("role", "img");
      g.setAttribute("aria-label", isRecord
        ? `${nameOf(n)}: data ${short(n.data)}, grad ${short(n.grad)}`
        : `operation ${n.op} producing ${nameOf(n)}`);
    }
    const end = (text) => resolve(text.replace(/:[^:]*$/, "").trim()) || resolve(text.trim()); // drop a :port
    for (const g of svg.querySelectorAll("g.edge")) {
      const title = g.querySelector("title");
      const ends = title ? title.textContent.split("->") : [];
      if (ends.length !== 2) continue;
      const tail = end(ends[0]), head = end(ends[1]);
      if (!tail || !head) continue;
      g.dataset.tail = tail.id;
      g.dataset.head = head.id;
      entry(head.id).edges.push(g);
    }
    current.index = index;
    const missing = nodes.filter((n) => !index.has(n.id) || !index.get(n.id).record).length;
    $("graph-view").dataset.unmatched = String(missing);
    $("graph-view").dataset.naming = current.naming;
  }

  // Pan and zoom by rewriting the viewBox; the mapping from screen to SVG units comes from the CTM.
  function zoom(factor, clientX, clientY) {
    if (!current || !current.svg) return;
    const svg = current.svg;
    const v = viewBoxOf(svg);
    let px = v.x + v.w / 2, py = v.y + v.h / 2;
    if (clientX !== undefined) {
      const ctm = svg.getScreenCTM();
      if (ctm) {
        const p = new DOMPoint(clientX, clientY).matrixTransform(ctm.inverse());
        px = p.x; py = p.y;
      }
    }
    const w = v.w * factor, h = v.h * factor;
    // Zooming out stops where text would become unreadable (or at the whole graph, if that is smaller).
    const view = $("graph-view");
    const limitW = Math.max(current.home.w, Math.min(current.whole.w * 1.25, (view.clientWidth || 800) / MIN_SCALE));
    const minW = current.home.w / 50;
    if (w > limitW || w < minW) return;
    setViewBox({ x: px - (px - v.x) * factor, y: py - (py - v.y) * factor, w, h });
  }
  function panPixels(dx, dy) {
    const svg = current && current.svg;
    if (!svg) return;
    const ctm = svg.getScreenCTM();
    const scale = ctm && ctm.a ? ctm.a : 1;
    const v = viewBoxOf(svg);
    setViewBox({ x: v.x - dx / scale, y: v.y - dy / scale, w: v.w, h: v.h });
  }
  // The whole graph when it is readable whole; otherwise the readable minimum zoom on the output end.
  function fit() {
    if (!current || !current.svg) return;
    const view = $("graph-view"), whole = current.whole;
    const W = view.clientWidth || 800, H = view.clientHeight || 400;
    if (Math.min(W / whole.w, H / whole.h) >= MIN_SCALE) { setViewBox(whole); return; }
    const w = W / MIN_SCALE, h = H / MIN_SCALE;
    setViewBox({ x: whole.x + whole.w - w, y: whole.y + (whole.h - h) / 2, w, h });
  }

  // Moves the keyboard focus to the next (+1) or previous (-1) node in topological order that is drawn.
  function focusNode(delta) {
    const nodes = current.response.nodes;
    const at = document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.nodeId : undefined;
    let i = at !== undefined && current.byId.has(at) ? current.byId.get(at) : (delta > 0 ? -1 : nodes.length);
    for (let k = 0; k < nodes.length; k++) {
      i = (i + delta + nodes.length) % nodes.length;
      const e = current.index.get(nodes[i].id);
      const g = e && (e.record || e.op);
      if (g) { g.focus(); reveal(g); showDetails(nodes[i].id); return; }
    }
  }

  // Pans so that an element is visible (used by step-through).
  function reveal(g) {
    const view = $("graph-view").getBoundingClientRect();
    const r = g.getBoundingClientRect();
    let dx = 0, dy = 0;
    if (r.left < view.left) dx = view.left - r.left + 20;
    else if (r.right > view.right) dx = view.right - r.right - 20;
    if (r.top < view.top) dy = view.top - r.top + 20;
    else if (r.bottom > view.bottom) dy = view.bottom - r.bottom - 20;
    if (dx || dy) panPixels(dx, dy);
  }

  function installViewControls() {
    const view = $("graph-view");
    $("zoom-in").addEventListener("click", () => zoom(1 / 1.25));
    $("zoom-out").addEventListener("click", () => zoom(1.25));
    $("zoom-fit").addEventListener("click", fit);
    view.addEventListener("wheel", (e) => {
      if (!current || !current.svg) return;
      e.preventDefault();
      zoom(e.deltaY < 0 ? 1 / 1.15 : 1.15, e.clientX, e.clientY);
    }, { passive: false });

    // One pointer drags; two (a touch pinch) zoom about their midpoint by the change in their distance.
    let drag = null, pinch = null;
    const touches = new Map();
    const spread = () => { const [a, b] = [...touches.values()]; return Math.hypot(a.x - b.x, a.y - b.y); };
    view.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !current || !current.svg) return;
      touches.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (touches.size === 2) {
        drag = null;
        view.classList.remove("dragging");
        pinch = { distance: spread() };
        return;
      }
      drag = { x: e.clientX, y: e.clientY, id: e.pointerId, moved: false };
    });
    view.addEventListener("pointermove", (e) => {
      if (touches.has(e.pointerId)) touches.set(e.pointerId, { x: e.clientX, y: e.clientY });
      if (pinch && touches.size === 2) {
        const d = spread();
        const [a, b] = [...touches.values()];
        if (d > 0 && pinch.distance > 0) zoom(pinch.distance / d, (a.x + b.x) / 2, (a.y + b.y) / 2);
        pinch.distance = d;
        return;
      }
      if (!drag || e.pointerId !== drag.id) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 3) return;
      if (!drag.moved) { drag.moved = true; view.setPointerCapture(e.pointerId); view.classList.add("dragging"); }
      panPixels(dx, dy);
      drag.x = e.clientX; drag.y = e.clientY;
    });
    const end = (e) => {
      touches.delete(e.pointerId);
      if (touches.size < 2) pinch = null;
      if (!drag || e.pointerId !== drag.id) return;
      if (drag.moved && view.hasPointerCapture(e.pointerId)) view.releasePointerCapture(e.pointerId);
      view.classList.remove("dragging");
      drag = null;
    };
    view.addEventListener("pointerup", end);
    view.addEventListener("pointercancel", end);

    view.addEventListener("keydown", (e) => {
      if (!current || !current.svg || e.ctrlKey || e.metaKey || e.altKey) return;
      const step = 60;
      const keys = {
        ArrowLeft: () => panPixels(step, 0), ArrowRight: () => panPixels(-step, 0),
        ArrowUp: () => panPixels(0, step), ArrowDown: () => panPixels(0, -step),
        "+": () => zoom(1 / 1.25), "=": () => zoom(1 / 1.25), "-": () => zoom(1.25), "0": fit,
        n: () => focusNode(1), p: () => focusNode(-1),
      };
      const f = keys[e.key];
      if (f) { e.preventDefault(); f(); }
    });

    const nodeOf = (t) => (t && t.closest ? t.closest("g.mg-node") : null);
    view.addEventListener("mouseover", (e) => { const g = nodeOf(e.target); if (g) showDetails(g.dataset.nodeId); });
    view.addEventListener("focusin", (e) => { const g = nodeOf(e.target); if (g) showDetails(g.dataset.nodeId); });
    view.addEventListener("mouseout", (e) => {
      const g = nodeOf(e.target);
      if (g && !g.contains(e.relatedTarget)) for (const h of view.querySelectorAll(".mg-hover")) h.classList.remove("mg-hover");
    });
    view.addEventListener("mouseleave", () => { if (!view.contains(document.activeElement) || document.activeElement === view) hideDetails(); });
  }

  // ---------- node details (hover or focus), next to the node ----------

  function hideDetails() {
    $("details").hidden = true;
    $("details").replaceChildren();
  }

  // The grad the page shows for node i: the running value while stepping, the service's otherwise.
  function shownGrad(i) { return current.steps && current.step >= 0 ? current.running[i] : current.response.nodes[i].grad; }

  function showDetails(id) {
    if (!current || !current.byId.has(id)) return;
    const i = current.byId.get(id);
    const n = current.response.nodes[i];
    for (const g of current.svg.querySelectorAll(".mg-hover")) g.classList.remove("mg-hover");
    const entry = current.index.get(id);
    if (entry) for (const g of [entry.record, entry.op]) if (g) g.classList.add("mg-hover");

    const dl = el("dl", { class: "kv" });
    const row = (k, v) => dl.append(el("dt", { text: k }), el("dd", { class: "mono", text: v }));
    row("node", n.id + (n.label && n.label !== n.id ? ` (label ${n.label})` : ""));
    row("op", n.op ? opText(n) : (n.constant ? "constant leaf" : "leaf (a value with a gradient)"));
    if (n.op) {
      const ins = (n.inputs || []).map((k) => {
        const m = current.response.nodes[current.byId.get(k)];
        return m ? `${nameOf(m)} = ${short(m.data)}` : k;
      });
      row("inputs", ins.join(", "));
    }
    row("data", full(n.data));
    if (current.steps && current.step >= 0) {
      row("grad so far", full(shownGrad(i)));
      row("final grad", full(n.grad));
    } else row("grad", full(n.grad));
    dl.dataset.nodeId = id;
    const box = $("details");
    box.replaceChildren(dl);
    box.hidden = false;
    // Beside the node (right of it, or left when there is no room), inside the graph's box.
    const g = entry && (entry.record || entry.op);
    const stage = $("graph-stage").getBoundingClientRect();
    const r = g ? g.getBoundingClientRect() : stage;
    const bw = box.offsetWidth, bh = box.offsetHeight;
    let left = r.right - stage.left + 8;
    if (left + bw > stage.width) left = r.left - stage.left - bw - 8;
    left = Math.max(4, Math.min(left, stage.width - bw - 4));
    const top = Math.max(4, Math.min(r.top - stage.top, stage.height - bh - 4));
    box.style.left = left + "px";
    box.style.top = top + "px";
  }

  // ---------- step-through backward ----------

  // The local derivative rules, written the way micrograd's _backward closures read. Each returns the
  // contributions to its inputs: formula (names), numbers (values), and the amount added.
  function contributions(n, nodes, byId, grads) {
    const ins = (n.inputs || []).map((id) => nodes[byId.get(id)]);
    const o = nameOf(n), g = grads[byId.get(n.id)], od = n.data;
    const a = ins[0], b = ins[1];
    const A = a && nameOf(a), B = b && nameOf(b);
    const c = (target, formula, numbers, value) => ({ target: byId.get(target.id), formula: `${nameOf(target)}.grad += ${formula}`, numbers, value });
    switch (n.op) {
      case "add": return [c(a, `${o}.grad`, short(g), g), c(b, `${o}.grad`, short(g), g)];
      case "sub": return [c(a, `${o}.grad`, short(g), g), c(b, `-${o}.grad`, `-${paren(g)}`, -g)];
      case "mul": return [
        c(a, `${B}.data * ${o}.grad`, `${paren(b.data)} * ${paren(g)}`, b.data * g),
        c(b, `${A}.data * ${o}.grad`, `${paren(a.data)} * ${paren(g)}`, a.data * g)];
      case "div": return [
        c(a, `${o}.grad / ${B}.data`, `${paren(g)} / ${paren(b.data)}`, g / b.data),
        c(b, `-${A}.data / ${B}.data**2 * ${o}.grad`, `-${paren(a.data)} / ${paren(b.data)}**2 * ${paren(g)}`,
          (-a.data / (b.data * b.data)) * g)];
      case "neg": return [c(a, `-${o}.grad`, `-${paren(g)}`, -g)];
      case "pow": {
        if (!b) {
          const k = num(n.exponent);
          return [c(a, `${short(k)} * ${A}.data**${short(k - 1)} * ${o}.grad`,
            `${short(k)} * ${paren(a.data)}**${short(k - 1)} * ${paren(g)}`, k * Math.pow(a.data, k - 1) * g)];
        }
        return [
          c(a, `${B}.data * ${A}.data**(${B}.data - 1) * ${o}.grad`,
            `${paren(b.data)} * ${paren(a.data)}**${paren(b.data - 1)} * ${paren(g)}`,
            b.data * Math.pow(a.data, b.data - 1) * g),
          c(b, `log(${A}.data) * ${o}.data * ${o}.grad`, `log(${paren(a.data)}) * ${paren(od)} * ${paren(g)}`,
            Math.log(a.data) * od * g)];
      }
      case "exp": return [c(a, `${o}.data * ${o}.grad`, `${paren(od)} * ${paren(g)}`, od * g)];
      case "log": return [c(a, `${o}.grad / ${A}.data`, `${paren(g)} / ${paren(a.data)}`, g / a.data)];
      case "tanh": return [c(a, `(1 - ${o}.data**2) * ${o}.grad`, `(1 - ${paren(od)}**2) * ${paren(g)}`, (1 - od * od) * g)];
      case "relu": return [c(a, `(${o}.data > 0) * ${o}.grad`, `${od > 0 ? 1 : 0} * ${paren(g)}`, (od > 0 ? 1 : 0) * g)];
      case "sigmoid": return [c(a, `${o}.data * (1 - ${o}.data) * ${o}.grad`, `${paren(od)} * (1 - ${paren(od)}) * ${paren(g)}`,
        od * (1 - od) * g)];
      default: return null;
    }
  }

  // Step 0 seeds the output's grad; then one step per node in reverse topological order. Each step records
  // its updates (before/after) so Back can undo it without snapshots of every grad.
  function startStepping() {
    if (!current) return;
    const nodes = current.response.nodes, byId = current.byId;
    const running = new Float64Array(nodes.length);
    const out = byId.get(current.response.output);
    current.running = running;
    current.steps = [{ node: out, seed: true, updates: [{ target: out, before: 0, after: 1 }] }];
    current.step = -1;
    current.built = nodes.length - 1; // steps for nodes above this index are built lazily as we go
    for (const g of current.svg ? current.svg.querySelectorAll(".mg-done") : []) g.classList.remove("mg-done");
    for (let i = 0; i < nodes.length; i++) setRunningGrad(i, 0);
    document.body.dataset.stepping = "on";
    goTo(0);
  }

  // Steps depend on the grads so far, so step k+1 is built only when step k has been applied.
  function buildNextStep() {
    const nodes = current.response.nodes, byId = current.byId;
    // Leaves pass nothing back: they get no step of their own (the last step lists their final grads).
    while (current.built >= 0 && !nodes[current.built].op) current.built--;
    if (current.built < 0) return false;
    const i = current.built--;
    const n = nodes[i];
    const step = { node: i, updates: [], lines: [] };
    if (n.op) {
      const list = contributions(n, nodes, byId, current.running);
      if (!list) step.unknown = true;
      else {
        const shadow = new Map(); // a node used twice as an input (x*x) receives both contributions in turn
        for (const c of list) {
          const before = shadow.has(c.target) ? shadow.get(c.target) : current.running[c.target];
          const after = before + c.value;
          shadow.set(c.target, after);
          step.updates.push({ target: c.target, before, after });
          step.lines.push({ formula: c.formula, numbers: c.numbers, value: c.value, before, after, target: c.target });
        }
      }
    }
    current.steps.push(step);
    return true;
  }

  function apply(step, forward) {
    const list = forward ? step.updates : [...step.updates].reverse();
    for (const u of list) {
      current.running[u.target] = forward ? u.after : u.before;
      setRunningGrad(u.target, current.running[u.target]);
    }
  }

  function goTo(k) {
    while (current.step < k) {
      if (current.step + 1 >= current.steps.length && !buildNextStep()) break;
      current.step++;
      apply(current.steps[current.step], true);
    }
    while (current.step > k && current.step >= 0) {
      apply(current.steps[current.step], false);
      current.step--;
    }
    renderStep();
  }

  const totalSteps = () => 1 + current.response.nodes.filter((n) => n.op).length;

  // While stepping, every grad on the page (graph, tables, details) shows the running value.
  function setRunningGrad(i, value) {
    const id = current.response.nodes[i].id;
    const row = $("grad-body").querySelector(`tr[data-id="${CSS.escape(id)}"] .grad`);
    if (row) row.textContent = short(value);
    const all = $("nodes-body").querySelector(`tr[data-id="${CSS.escape(id)}"] td:last-child`);
    if (all) all.textContent = full(value);
    const e = current.index && current.index.get(id);
    // Keep the service's wording ("grad 1.0000", "grad: 1.0000"...), change only the number.
    if (e && e.gradText) e.gradText.textContent = e.gradOriginal.replace(/^(\s*grad[\s:=]*)\S+/, (_, lead) => lead + fixed4(value));
  }

  function renderStep() {
    const nodes = current.response.nodes;
    const step = current.steps[current.step];
    const n = nodes[step.node];
    const last = current.step === totalSteps() - 1;
    $("step-prev").disabled = current.step <= 0;
    $("step-next").disabled = last;
    $("step-end").disabled = last;
    $("step-stop").disabled = false;
    $("step-counter").textContent = `step ${current.step + 1} of ${totalSteps()}`;

    // Highlight: the node whose grad is being passed back, and the inputs receiving it.
    if (current.svg) {
      for (const g of current.svg.querySelectorAll(".mg-current, .mg-target, .mg-edge")) {
        g.classList.remove("mg-current", "mg-target", "mg-edge");
      }
      const mark = (id, cls) => {
        const e = current.index.get(id);
        if (!e) return null;
        for (const g of [e.record, e.op]) if (g) g.classList.add(cls);
        return e;
      };
      const e = mark(n.id, "mg-current");
      const targets = new Set((n.inputs || []));
      for (const t of targets) mark(t, "mg-target");
      if (e) {
        for (const g of e.edges) if (targets.has(g.dataset.tail) || g.dataset.tail === n.id) g.classList.add("mg-edge");
        if (e.record) reveal(e.record);
      }
      for (let s = 1; s < current.steps.length; s++) {
        const done = current.index.get(nodes[current.steps[s].node].id);
        if (done && done.record) done.record.classList.toggle("mg-done", s <= current.step);
      }
    }

    const box = $("step-text");
    const parts = [];
    const head = (text) => parts.push(el("p", { class: "step-head", text }));
    const code = (text, cls) => parts.push(el("pre", { class: "mono step-line" + (cls ? " " + cls : ""), text }));
    if (step.seed) {
      head(`Seed: the output ${nameOf(n)} gets grad 1 (d${nameOf(n)}/d${nameOf(n)} = 1). Every other grad starts at 0.`);
      code(`${nameOf(n)}.grad = 1`);
    } else if (!n.op) {
      head(`${nameOf(n)} is a ${n.constant ? "constant" : "variable"} leaf: nothing to pass back. Its grad is final.`);
      const g = current.running[step.node];
      code(`${nameOf(n)}.grad = ${short(g)}` + (short(g) !== full(g) ? `    (${full(g)})` : ""));
    } else if (step.unknown) {
      head(`${nameOf(n)} = ${n.op}(...): this page does not know the rule for "${n.op}".`);
    } else {
      const g = current.running[step.node];
      head(`${nameOf(n)} = ${formulaOf(n)} (data ${short(n.data)}, grad ${short(g)}): pass the grad to its inputs.` +
        (g === 0 ? " Its grad is 0 (it does not reach the output), so it adds nothing." : ""));
      for (const l of step.lines) {
        const target = nameOf(nodes[l.target]);
        code(l.formula);
        code(`  += ${l.numbers} = ${short(l.value)}    so ${target}.grad: ${short(l.before)} -> ${short(l.after)}`, "numbers");
      }
    }
    if (last) {
      const leaves = nodes.map((m, i) => [m, i]).filter(([m]) => isVariable(m));
      if (leaves.length) {
        parts.push(el("p", { class: "step-head", text: "The leaves pass nothing back; their grads are final:" }));
        code(leaves.slice(0, 20).map(([m, i]) => `${nameOf(m)}.grad = ${short(current.running[i])}`).join("\n") +
          (leaves.length > 20 ? `\n... ${leaves.length - 20} more` : ""));
      }
      const mismatched = nodes.filter((m, i) => !close(current.running[i], m.grad));
      parts.push(el("p", { class: "step-done", text: mismatched.length === 0
        ? "Done: every gradient is filled, and each matches the service's backward pass."
        : `Done, but ${mismatched.length} grad(s) differ from the service: ${mismatched.slice(0, 5).map(nameOf).join(", ")}` }));
      document.body.dataset.stepping = "done";
    } else {
      document.body.dataset.stepping = "on";
    }
    box.replaceChildren(...parts);
    box.dataset.step = String(current.step);
    // Node details on screen follow the running grads too.
    const shownNode = $("details").hidden ? null : $("details").querySelector("dl");
    if (shownNode) showDetails(shownNode.dataset.nodeId);
  }

  function close(a, b) {
    if (Number.isNaN(a) && Number.isNaN(b)) return true;
    if (a === b) return true;
    return Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a), Math.abs(b));
  }

  function stopStepping() {
    if (!current || !current.steps) return;
    if (current.svg) {
      for (const g of current.svg.querySelectorAll(".mg-current, .mg-target, .mg-edge, .mg-done")) {
        g.classList.remove("mg-current", "mg-target", "mg-edge", "mg-done");
      }
      for (const e of current.index.values()) if (e.gradText) e.gradText.textContent = e.gradOriginal;
    }
    for (const row of $("grad-body").querySelectorAll("tr")) row.querySelector(".grad").textContent = short(num(row.dataset.grad));
    current.response.nodes.forEach((n, i) => {
      const all = $("nodes-body").querySelector(`tr[data-id="${CSS.escape(n.id)}"] td:last-child`);
      if (all) all.textContent = full(n.grad);
    });
    current.steps = null;
    current.step = -1;
    const shownNode = $("details").hidden ? null : $("details").querySelector("dl");
    if (shownNode) showDetails(shownNode.dataset.nodeId);
    $("step-prev").disabled = $("step-next").disabled = $("step-end").disabled = $("step-stop").disabled = true;
    $("step-counter").textContent = "";
    $("step-text").replaceChildren();
    delete document.body.dataset.stepping;
  }

  function installStepControls() {
    $("step-start").addEventListener("click", () => { stopStepping(); startStepping(); });
    $("step-next").addEventListener("click", () => { if (current && current.steps) goTo(current.step + 1); });
    $("step-prev").addEventListener("click", () => { if (current && current.steps) goTo(current.step - 1); });
    $("step-end").addEventListener("click", () => { if (current && current.steps) goTo(totalSteps() - 1); });
    $("step-stop").addEventListener("click", () => { stopStepping(); $("step-start").focus(); });
  }

  // ---------- start ----------

  function init() {
    for (const id of ["expression", "graph-json"]) $(id).addEventListener("input", markStale);
    $("mode-expression").addEventListener("change", applyMode);
    $("mode-graph").addEventListener("change", applyMode);
    $("graph-example").addEventListener("click", () => { $("graph-json").value = GRAPH_EXAMPLE; clearError(); markStale(); $("graph-json").focus(); });
    $("eval-form").addEventListener("submit", (e) => { e.preventDefault(); evaluate(); });
    $("num-h").addEventListener("input", fillNumerical);
    $("descend").addEventListener("click", descend);
    // Ctrl+Enter evaluates from anywhere (Enter alone does in single-line fields; the program needs newlines).
    document.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); evaluate(); }
    });
    installViewControls();
    installStepControls();
    applyMode();
    setState("ready");
    // The prefilled program is evaluated at once, so the page opens on a graph.
    evaluate();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
