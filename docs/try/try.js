// The name generator of try.html: chapter 06's sampler in plain JavaScript, over a model exported with
// `mlp-names export` (the file format is described in chapter 06). Nothing is fetched: the model comes from
// model.js (the exported JSON as a script, since browsers do not let a file:// page read another file) or from a
// file the reader picks. The sums are in float64 over the file's float32 weights.
"use strict";

const mlpNames = (() => {
  const FORMAT = "mlp-names-export", VERSION = 1;

  function tensor(t) {
    const bytes = Uint8Array.from(atob(t.data), (c) => c.charCodeAt(0));
    const view = new DataView(bytes.buffer), values = new Float64Array(bytes.length / 4);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true); // little-endian float32
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== values.length) throw new Error(`a tensor of shape [${t.shape}] holds ${values.length} numbers`);
    return { shape: t.shape, values };
  }

  function loadModel(d) {
    if (!d || d.format !== FORMAT) throw new Error(`not an exported model (no "${FORMAT}" format tag)`);
    if (d.version !== VERSION) throw new Error(`export version ${d.version}; this page reads ${VERSION}`);
    const layers = d.layers.map((l) => {
      const t = (k) => (l[k] == null ? null : tensor(l[k]));
      switch (l.type) {
        case "Embedding": return { type: l.type, weight: t("weight") };
        case "Linear": return { type: l.type, weight: t("weight"), bias: t("bias") };
        case "BatchNorm1d": return { type: l.type, mean: t("mean"), var: t("var"), gamma: t("gamma"), beta: t("beta"), eps: l.eps };
        case "LeakyRelu": return { type: l.type, slope: l.negative_slope };
        case "FlattenConsecutive": return { type: l.type, n: l.n };
        case "Flatten": return { type: l.type };
        default: throw new Error(`unknown layer type ${l.type}`);
      }
    });
    const known = Uint8Array.from(atob(d.known.data), (c) => c.charCodeAt(0));
    return { vocab: d.vocab, stoi: new Map(d.vocab.map((c, i) => [c, i])), blockSize: d.block_size,
             config: d.config, layers, known: { bits: d.known.bits, hashes: d.known.hashes, array: known } };
  }

  // One context (block_size character indices) to the logits of the next character: rows x cols activations.
  function forward(model, context) {
    let x = null, rows = 0, cols = 0;
    for (const l of model.layers) {
      if (l.type === "Embedding") {
        cols = l.weight.shape[1]; rows = context.length; x = new Float64Array(rows * cols);
        context.forEach((ix, r) => x.set(l.weight.values.subarray(ix * cols, (ix + 1) * cols), r * cols));
      } else if (l.type === "Flatten") { cols *= rows; rows = 1; }
      else if (l.type === "FlattenConsecutive") {
        if (rows % l.n) throw new Error(`FlattenConsecutive(${l.n}) needs a number of positions divisible by ${l.n}`);
        rows /= l.n; cols *= l.n; // row-major: n consecutive rows side by side
      } else if (l.type === "Linear") {
        const [fanIn, fanOut] = l.weight.shape, W = l.weight.values, y = new Float64Array(rows * fanOut);
        for (let r = 0; r < rows; r++) {
          const out = y.subarray(r * fanOut, (r + 1) * fanOut);
          if (l.bias) out.set(l.bias.values);
          for (let i = 0; i < fanIn; i++) {
            const xi = x[r * cols + i];
            if (xi === 0) continue;
            for (let j = 0, w = i * fanOut; j < fanOut; j++) out[j] += xi * W[w + j];
          }
        }
        x = y; cols = fanOut;
      } else if (l.type === "LeakyRelu") { for (let i = 0; i < x.length; i++) if (!(x[i] > 0)) x[i] *= l.slope; }
      else if (l.type === "BatchNorm1d") {
        for (let i = 0; i < x.length; i++) {
          const j = i % cols;
          x[i] = l.gamma.values[j] * (x[i] - l.mean.values[j]) / Math.sqrt(l.var.values[j] + l.eps) + l.beta.values[j];
        }
      }
    }
    return Array.from(x);
  }

  // Chapter 06's next_char_probs: softmax(z/T) over the allowed characters (the end token, index 0, not before
  // the shortest length; with top-k, exactly the k largest).
  function nextCharProbs(logits, temperature = 1, topK = null, canEnd = true) {
    const z = logits.map((v) => v / temperature);
    if (!canEnd) z[0] = -Infinity;
    if (topK != null && topK < z.length) {
      const keep = new Set(z.map((v, i) => i).sort((a, b) => z[b] - z[a] || a - b).slice(0, topK));
      z.forEach((v, i) => { if (!keep.has(i)) z[i] = -Infinity; });
    }
    const top = Math.max(...z), e = z.map((v) => Math.exp(v - top)), sum = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / sum);
  }

  function fnv1a(bytes, basis) {
    let h = basis >>> 0;
    for (const b of bytes) h = Math.imul(h ^ b, 16777619) >>> 0;
    return h;
  }

  // Chapter 06's Bloom filter of the training words: false means "certainly not a training word".
  function isKnown(model, word) {
    const { bits, hashes, array } = model.known, bytes = new TextEncoder().encode(word);
    const h1 = fnv1a(bytes, 0x811c9dc5), h2 = (fnv1a(bytes, 0x01000193) | 1) >>> 0;
    for (let i = 0; i < hashes; i++) {
      const j = (h1 + i * h2) % bits;
      if (!((array[j >> 3] >> (j & 7)) & 1)) return false;
    }
    return true;
  }

  function random(seed) { // mulberry32: a small seeded generator, numbers in [0, 1)
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
  }

  function check(model, o) {
    const whole = (v) => Number.isInteger(v);
    if (!(whole(o.n) && o.n >= 1 && o.n <= 10000)) throw new Error("how many: a whole number from 1 to 10000");
    if (!(Number.isFinite(o.temperature) && o.temperature >= 1e-3 && o.temperature <= 1e3))
      throw new Error("temperature: a number from 0.001 to 1000");
    if (o.topK != null && !(whole(o.topK) && o.topK >= 1)) throw new Error("top-k: a whole number of at least 1, or empty for all");
    if (!(whole(o.minLen) && whole(o.maxLen) && o.minLen >= 0 && o.maxLen >= 1 && o.minLen <= o.maxLen))
      throw new Error("lengths: whole numbers with the shortest at most the longest");
    const bad = [...o.prefix].find((c) => c === model.vocab[0] || !model.stoi.has(c));
    if (bad !== undefined) throw new Error(`prefix "${o.prefix}" has "${bad}", which is not a letter of this model's names (${model.vocab.slice(1).join("")})`);
    if (o.prefix.length > o.maxLen) throw new Error(`prefix "${o.prefix}" is longer than the longest length ${o.maxLen}`);
  }

  // One name, as chapter 06's _draw makes it: the context is the prefix's last block_size characters padded with
  // the end token; each step draws from nextCharProbs; the end token is masked below minLen; maxLen ends it.
  function drawName(model, o, rand) {
    let context = Array(model.blockSize).fill(0).concat([...o.prefix].map((c) => model.stoi.get(c))).slice(-model.blockSize);
    let name = o.prefix;
    for (let t = 0; t < o.maxLen - o.prefix.length; t++) {
      const p = nextCharProbs(forward(model, context), o.temperature, o.topK, o.prefix.length + t >= o.minLen);
      let u = rand(), ix = p.length - 1;
      for (let i = 0; i < p.length; i++) { if (u < p[i]) { ix = i; break; } u -= p[i]; }
      while (p[ix] === 0) ix--; // rounding at the very end of the scale: the last allowed character
      if (ix === 0) break;
      name += model.vocab[ix];
      context = context.slice(1).concat([ix]);
    }
    return name;
  }

  // n names that meet the controls: prefix, length range, top-k, temperature, novel (not a training word), unique.
  function sampleNames(model, o) {
    check(model, o);
    const rand = random(o.seed ?? 0), seen = new Set(), names = [], maxTries = 20 * o.n + 1000;
    let tries = 0;
    while (names.length < o.n) {
      if (tries >= maxTries) throw new Error(`found only ${names.length} of ${o.n} names in ${tries} tries; loosen the prefix, lengths or novelty`);
      const name = drawName(model, o, rand); tries++;
      if ((o.novel && isKnown(model, name)) || (o.unique && seen.has(name))) continue;
      seen.add(name); names.push(name);
    }
    return { names, tries };
  }

  return { loadModel, forward, nextCharProbs, isKnown, sampleNames };
})();

// ---------------------------------------------------------------- the page
(() => {
  const $ = (id) => document.getElementById(id);
  let model = null;

  function describe(m, source) {
    const c = m.config, params = m.layers.reduce((s, l) => s + ["weight", "bias", "gamma", "beta"]
      .reduce((t, k) => t + (l[k] ? l[k].values.length : 0), 0), 0);
    $("about").textContent = `${source}: ${params.toLocaleString("en")} weights after folding, context of ` +
      `${m.blockSize} characters, ${c.n_layers} hidden layers of ${c.n_hidden}, ${trained(c)}.`;
  }

  function trained(c) {  // members after the first train member_steps (0: the first's count)
    const k = c.members || 1, n = (x) => x.toLocaleString("en"), rest = c.member_steps || c.max_steps;
    if (k === 1) return `trained for ${n(c.max_steps)} steps`;
    if (rest === c.max_steps) return `${k} members averaged, each trained for ${n(c.max_steps)} steps`;
    return `${k} members averaged, trained for ${n(c.max_steps)} steps (the first) and ${n(rest)} (the others)`;
  }

  function use(data, source) {
    try { model = mlpNames.loadModel(data); describe(model, source); $("draw").disabled = false; return true; }
    catch (e) { $("status").textContent = `Could not read ${source}: ${e.message}`; return false; }
  }

  function number(id) { const v = $(id).value.trim(); return v === "" ? null : Number(v); }

  function draw(event) {
    event.preventDefault();
    if (!model) return;
    const o = { prefix: $("prefix").value.trim().toLowerCase(), temperature: number("temperature"), topK: number("topk"),
                minLen: number("minlen"), maxLen: number("maxlen"), n: number("count"), seed: number("seed") ?? 0,
                novel: $("novel").checked, unique: $("unique").checked };
    const t0 = performance.now();
    try {
      const { names, tries } = mlpNames.sampleNames(model, o);
      $("names").replaceChildren(...names.map((nm) => Object.assign(document.createElement("li"), { textContent: nm })));
      $("status").textContent = `${names.length} names (${tries} drawn) in ${((performance.now() - t0) / 1000).toFixed(2)} s.`;
    } catch (e) {
      $("names").replaceChildren();
      $("status").textContent = e.message;
    }
    $("status").dataset.done = String(Number($("status").dataset.done || 0) + 1);
  }

  $("controls").addEventListener("submit", draw);
  $("modelfile").addEventListener("change", () => {
    const file = $("modelfile").files[0];
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => { try { use(JSON.parse(reader.result), file.name); } catch (e) { $("status").textContent = `${file.name}: not JSON`; } };
    reader.readAsText(file);
  });
  if (window.MLP_NAMES_EXPORT) use(window.MLP_NAMES_EXPORT, "The model shipped with the book (model.json)");
  else $("status").textContent = "model.js is missing: build the site with `make docs`, or load an exported model below.";
})();
