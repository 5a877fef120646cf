// micrograd page: edit an expression (or paste a graph), evaluate it on the service, look at the graph,
// its values and gradients, and step through the backward pass. Plain JS, no dependencies; the page is
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
  // micrograd's draw_dot prints "%.4f".
  const fixed4 = (x) => (Number.isFinite(x) ? x.toFixed(4) : String(x));

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

  // ---------- the input: expression + variable table, or graph JSON ----------

  const FUNCTIONS = new Set(["tanh", "exp", "log", "relu", "sigmoid", "neg", "pow"]);
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

  // Remembered values by variable name, so a variable that leaves the expression and comes back keeps its value.
  const knownValues = new Map(Object.entries(NEURON_VALUES));
  let shownVariables = [];

  // Variables in order of first use: identifiers that are not numbers' exponents and are not called.
  function variablesOf(expr) {
    const re = /(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_][A-Za-z0-9_]*)/g;
    const names = [];
    let m;
    while ((m = re.exec(expr)) !== null) {
      if (!m[2]) continue;
      const rest = expr.slice(m.index + m[0].length);
      if (/^\s*\(/.test(rest) && FUNCTIONS.has(m[2])) continue;
      if (/^\s*\(/.test(rest)) continue; // an unknown function: the service will say so
      if (!names.includes(m[2])) names.push(m[2]);
    }
    return names;
  }

  function syncVariables() {
    const names = variablesOf($("expression").value);
    if (names.length === shownVariables.length && names.every((n, i) => n === shownVariables[i])) return;
    for (const input of $("values-body").querySelectorAll("input")) knownValues.set(input.dataset.name, input.value);
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
      body.append(el("tr", null,
        el("th", { scope: "row" }, el("label", { for: id, class: "mono", text: name })),
        el("td", null, input)));
    }
    shownVariables = names;
    $("values-empty").hidden = names.length > 0;
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

  // Builds the request body, or throws a problem-shaped object for input the page can already reject.
  function requestBody() {
    if (mode() === "graph") return $("graph-json").value;
    const values = {};
    for (const input of $("values-body").querySelectorAll("input")) {
      const name = input.dataset.name;
      const text = input.value.trim();
      knownValues.set(name, input.value);
      if (text === "NaN" || text === "Infinity" || text === "-Infinity") { values[name] = text; continue; }
      const v = Number(text);
      if (text === "" || !Number.isFinite(v)) {
        throw {
          title: "Invalid value",
          detail: text === "" ? `Give ${name} a value.` : `${name}: "${text}" is not a number.`,
          pointer: "/values/" + name.replace(/~/g, "~0").replace(/\//g, "~1"),
        };
      }
      values[name] = v;
    }
    return JSON.stringify({ expression: $("expression").value, values });
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

  function showProblem(p) {
    $("error-title").textContent = (p.title || "Error") + (p.status ? ` (${p.status})` : "");
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
      if (typeof p.column === "number" && p.column >= 1) {
        const col = Math.min(p.column, expr.value.length + 1);
        where.textContent = `${expr.value}\n${" ".repeat(col - 1)}^ column ${p.column}`;
        where.hidden = false;
        expr.setAttribute("aria-invalid", "true");
        focusTarget = expr;
        expr.focus();
        expr.setSelectionRange(col - 1, Math.min(col, expr.value.length));
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

  let busy = false;
  async function evaluate() {
    if (busy) return; // one request at a time: a second Ctrl+Enter must not race the first
    clearError();
    let body;
    try { body = requestBody(); } catch (p) { showProblem(p); setState("error"); return; }
    setState("busy");
    busy = true;
    $("busy").hidden = false;
    $("evaluate").disabled = true;
    try {
      const res = await fetch("/evaluate", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body,
      });
      if (!res.ok) { showProblem(await problemOf(res)); setState("error"); return; }
      const response = await res.json();
      await showResult(response);
      evaluations++;
      document.body.dataset.evaluations = String(evaluations);
      setState("done");
    } catch (e) {
      showProblem({ title: "Could not reach the service", detail: String(e && e.message || e) });
      setState("error");
    } finally {
      busy = false;
      $("busy").hidden = true;
      $("evaluate").disabled = false;
    }
  }

  async function showResult(response) {
    stopStepping();
    for (const n of response.nodes) { n.data = num(n.data); n.grad = num(n.grad); }
    const byId = new Map(response.nodes.map((n, i) => [n.id, i]));
    current = { response, byId, svg: null, index: null, steps: null, step: -1 };

    $("placeholder").hidden = true;
    $("result").hidden = false;
    $("graph-panel").hidden = false;
    $("output-id").textContent = response.output;
    $("output-value").textContent = full(num(response.value));
    const q = "?id=" + encodeURIComponent(response.id);
    $("download-dot").href = "/graph.dot" + q;
    $("download-svg").href = "/graph.svg" + q;
    $("download-json").href = "/graph.jgf" + q;

    fillTables(response);
    resetDetails();
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
      const row = el("tr", null,
        el("th", { scope: "row", class: "mono", text: nameOf(n) }),
        el("td", { class: "mono num", text: short(n.data), title: full(n.data) }),
        el("td", { class: "mono num grad", text: short(n.grad), title: full(n.grad) }));
      row.dataset.id = n.id;
      row.dataset.grad = full(n.grad);
      grads.append(row);
    }
    $("grad-body").replaceChildren(grads);

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

  // A wide graph fitted to the box would be unreadably small: start no smaller than MIN_SCALE, showing the
  // inputs (left end; rankdir=LR), and size the box to the drawing's height so it wastes no space.
  const MIN_SCALE = 0.6;
  function firstView(view, svg) {
    const whole = current.whole;
    const width = view.clientWidth || 800;
    const scale = Math.min(1, Math.max(MIN_SCALE, width / whole.w));
    const maxHeight = Math.max(200, Math.round(window.innerHeight * 0.7));
    const height = Math.min(maxHeight, Math.max(160, Math.ceil(whole.h * scale) + 8));
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
    const limitW = Math.max(current.whole.w, current.home.w) * 20, minW = current.home.w / 50;
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
  function fit() { if (current && current.svg) setViewBox(current.whole); }

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

    let drag = null;
    view.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !current || !current.svg) return;
      drag = { x: e.clientX, y: e.clientY, id: e.pointerId, moved: false };
    });
    view.addEventListener("pointermove", (e) => {
      if (!drag || e.pointerId !== drag.id) return;
      const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
      if (!drag.moved && Math.hypot(dx, dy) < 3) return;
      if (!drag.moved) { drag.moved = true; view.setPointerCapture(e.pointerId); view.classList.add("dragging"); }
      panPixels(dx, dy);
      drag.x = e.clientX; drag.y = e.clientY;
    });
    const end = (e) => {
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
  }

  // ---------- node details (hover or focus) ----------

  function resetDetails() {
    $("details").replaceChildren(el("p", { class: "hint", text: "Hover or focus a node to see its op, inputs, data and grad." }));
  }

  function showDetails(id) {
    if (!current || !current.byId.has(id)) return;
    const n = current.response.nodes[current.byId.get(id)];
    for (const g of current.svg.querySelectorAll(".mg-hover")) g.classList.remove("mg-hover");
    const entry = current.index.get(id);
    if (entry) for (const g of [entry.record, entry.op]) if (g) g.classList.add("mg-hover");

    const dl = el("dl", { class: "kv" });
    const row = (k, v) => dl.append(el("dt", { text: k }), el("dd", { class: "mono", text: v }));
    row("node", n.id + (n.label && n.label !== n.id ? ` (label ${n.label})` : ""));
    row("op", n.op ? opText(n) : (n.constant ? "constant leaf" : "leaf (variable)"));
    if (n.op) {
      const ins = (n.inputs || []).map((i) => {
        const m = current.response.nodes[current.byId.get(i)];
        return m ? `${nameOf(m)} = ${short(m.data)}` : i;
      });
      row("inputs", ins.join(", "));
    }
    row("data", full(n.data));
    row("grad", full(n.grad));
    if (current.steps && current.step >= 0) row("grad so far", full(current.running[current.byId.get(id)]));
    dl.dataset.nodeId = id;
    $("details").replaceChildren(dl);
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

  const totalSteps = () => current.response.nodes.length + 1;

  function setRunningGrad(i, value) {
    const id = current.response.nodes[i].id;
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
    current.steps = null;
    current.step = -1;
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
    syncVariables();
    $("expression").addEventListener("input", syncVariables);
    $("mode-expression").addEventListener("change", applyMode);
    $("mode-graph").addEventListener("change", applyMode);
    $("graph-example").addEventListener("click", () => { $("graph-json").value = GRAPH_EXAMPLE; clearError(); $("graph-json").focus(); });
    $("eval-form").addEventListener("submit", (e) => { e.preventDefault(); evaluate(); });
    // Ctrl+Enter evaluates from anywhere (Enter alone does in single-line fields; the textarea needs newlines).
    document.addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); evaluate(); }
    });
    installViewControls();
    installStepControls();
    applyMode();
    setState("ready");
    // The prefilled neuron is evaluated at once, so the page opens on a graph.
    evaluate();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
