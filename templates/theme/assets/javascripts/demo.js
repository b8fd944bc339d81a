/* The "Try it" page (templates/demo.md.j2): the reader picks one model, which alone is downloaded
 * and run in the browser with ONNX Runtime Web's WASM backend on one thread (file:// and GitHub
 * Pages have no cross-origin isolation, so no threads). main.html loads ort.wasm.min.js,
 * xz-decompress, demo-image.js (reading and preprocessing) and this file on pages whose front
 * matter says `assets: [demo]`.
 *
 * It works from file://, where fetch() and module imports of local files are refused: the runtime
 * and each model arrive as classic scripts that define base64 (vendor/onnxruntime-web/
 * ort-wasm-simd-threaded.js → window.MEDBENCH_ORT, its WASM xz-compressed; demo/models/<model>.js →
 * window.MEDBENCH_MODELS[name], gzipped), and the sample images are data: URLs in the page. A model
 * is fetched the first time it is chosen; the runtime with the first model. Every model chosen so
 * far runs on each new image, so the table compares them.
 *
 * An image whose shorter side is under half the models' input size is refused (the resize would
 * invent most of it), as is anything demo-image.js cannot read; a refusal or any error clears the
 * predictions shown before it.
 *
 * DOM contract, for the browser tests: #medbench-demo[data-state] is loading | ready | running |
 * done | error; after a run [data-input] names the input ("sample-<index>" or "file");
 * select[data-demo-choose] picks the model (demo.html#model=<name> preselects one); each tr[data-demo-model] gets data-loaded="true" once
 * its model is loaded and, after a run on the current input, data-top (the top class), data-probs
 * (every probability, class order, space-separated) and data-ms (inference time). */
(function () {
  "use strict";

  var MAX_FILE_BYTES = 256 * 1024 * 1024;

  function b64ToBytes(text) {
    var bin = atob(text), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function unxz(bytes) {
    var Xz = window["xz-decompress"] && window["xz-decompress"].XzReadableStream;
    if (!Xz) throw new Error("the xz decompressor did not load");
    return new Uint8Array(await new Response(new Xz(new Blob([bytes]).stream())).arrayBuffer());
  }

  function loadScript(src) {
    return new Promise(function (resolve, reject) {
      var el = document.createElement("script");
      el.src = src;
      el.onload = function () { resolve(); };
      el.onerror = function () { reject(new Error("could not load " + src)); };
      document.body.appendChild(el);
    });
  }

  /* ------------------------------------------------------------ runtime and models */

  async function startRuntime(root) {
    await loadScript(root.getAttribute("data-runtime"));
    var data = window.MEDBENCH_ORT;
    if (!data || typeof ort === "undefined") throw new Error("the ONNX Runtime scripts did not load");
    ort.env.logLevel = "error";
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmBinary = await unxz(b64ToBytes(data.wasmXz));
    ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([b64ToBytes(data.mjs)], { type: "text/javascript" })) };
    delete window.MEDBENCH_ORT;
  }

  async function loadModel(row, cfg) {
    var name = row.getAttribute("data-name");
    await loadScript(row.getAttribute("data-script"));
    var packed = (window.MEDBENCH_MODELS || {})[name];
    if (!packed) throw new Error("model " + name + " did not load");
    var session = await ort.InferenceSession.create(await window.MedbenchImage.inflate(b64ToBytes(packed), "gzip"),
      { executionProviders: ["wasm"] });
    delete window.MEDBENCH_MODELS[name]; // the session holds the weights now
    var dims = [1, cfg.chans, cfg.size, cfg.size];
    await session.run({ image: new ort.Tensor("float32", new Float32Array(cfg.chans * cfg.size * cfg.size), dims) });
    return session;
  }

  function softmax(logits) {
    var max = -Infinity, i, sum = 0, out = new Array(logits.length);
    for (i = 0; i < logits.length; i++) max = Math.max(max, logits[i]);
    for (i = 0; i < logits.length; i++) { out[i] = Math.exp(logits[i] - max); sum += out[i]; }
    for (i = 0; i < logits.length; i++) out[i] /= sum;
    return out;
  }

  function top3(probs) {
    return probs.map(function (p, i) { return [p, i]; })
      .sort(function (a, b) { return b[0] - a[0] || a[1] - b[1]; }).slice(0, 3);
  }

  /* ------------------------------------------------------------ page */

  function fmt(p) { return p.toFixed(3); }

  function text(el, value) { if (el) el.textContent = value; }

  function lines(el, values) { // one line per value, as text (class names come from data)
    if (!el) return;
    el.textContent = "";
    values.forEach(function (v) { var div = document.createElement("div"); div.textContent = v; el.appendChild(div); });
  }

  function showPreview(root, preview, size) {
    var canvas = root.querySelector("[data-demo-preview]");
    if (!canvas) return;
    canvas.width = size;
    canvas.height = size;
    var ctx = canvas.getContext("2d");
    if (!preview) { ctx.clearRect(0, 0, size, size); return; }
    var img = ctx.createImageData(size, size);
    for (var i = 0; i < preview.length; i++) {
      var g = Math.round(Math.min(1, Math.max(0, preview[i])) * 255);
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function clearRow(row) {
    ["top", "pytorch", "diff", "correct", "time"].forEach(function (cell) { text(row.querySelector('[data-cell="' + cell + '"]'), "—"); });
    ["data-top", "data-probs", "data-ms", "data-for"].forEach(function (a) { row.removeAttribute(a); });
  }

  function pytorchProbs(root, sample, model) {
    var el = root.querySelector('data[data-demo-pytorch][data-sample="' + sample + '"][data-model="' + CSS.escape(model) + '"]');
    return el ? el.value.split(" ").map(Number) : null;
  }

  function config(root) {
    return {
      size: parseInt(root.getAttribute("data-size"), 10),
      chans: parseInt(root.getAttribute("data-chans"), 10),
      mean: parseFloat(root.getAttribute("data-mean")),
      std: parseFloat(root.getAttribute("data-std")),
      classes: Array.prototype.map.call(root.querySelectorAll("[data-demo-classes] li"), function (li) { return li.textContent; }),
    };
  }

  function refusal(message) { var err = new Error(message); err.refusal = true; return err; }

  // A refusal for an image the models would mostly have to invent.
  function checkSize(img, size) {
    if (Math.min(img.width, img.height) * 2 < size) {
      throw refusal("this image is " + img.width + " × " + img.height + " pixels; the models take " + size + " × " +
        size + ", and an image under " + Math.ceil(size / 2) + " pixels on a side would be mostly made up by the " +
        "resize. Please use a larger image.");
    }
  }

  function setup(root) {
    var cfg = config(root), sessions = {}, runtime = null, loading = {};
    var status = root.querySelector("[data-demo-status]"), choose = root.querySelector("[data-demo-choose]");
    var rows = Array.prototype.slice.call(root.querySelectorAll("tr[data-demo-model]"));
    var st = { image: null, imageId: 0, prepared: null, preparedId: -1, busy: false, dirty: false };
    function rowOf(name) { return rows.filter(function (r) { return r.getAttribute("data-name") === name; })[0]; }

    async function ensureModel(name) {
      if (sessions[name]) return;
      var row = rowOf(name);
      root.setAttribute("data-state", "loading");
      if (!runtime) {
        text(status, "Loading ONNX Runtime (" + root.getAttribute("data-runtime-mb") + " MB)…");
        runtime = startRuntime(root);
      }
      try { await runtime; } catch (err) { runtime = null; throw err; }
      text(status, "Loading model " + name + " (" + row.getAttribute("data-mb") + " MB)…");
      loading[name] = loading[name] || loadModel(row, cfg);
      try { sessions[name] = await loading[name]; } finally { delete loading[name]; }
      row.setAttribute("data-loaded", "true");
    }

    async function runRow(row) {
      var name = row.getAttribute("data-name"), source = st.image.source, sample = source.sample;
      text(status, "Running " + name + "…");
      var dims = [1, cfg.chans, cfg.size, cfg.size], t0 = performance.now();
      var out = await sessions[name].run({ image: new ort.Tensor("float32", st.prepared.input, dims) });
      var ms = performance.now() - t0, probs = softmax(Array.from(out[Object.keys(out)[0]].data));
      var ref = sample !== undefined ? pytorchProbs(root, sample, name) : null, best = top3(probs);
      row.setAttribute("data-top", cfg.classes[best[0][1]]);
      row.setAttribute("data-probs", probs.map(function (p) { return p.toFixed(6); }).join(" "));
      row.setAttribute("data-ms", ms.toFixed(2));
      row.setAttribute("data-for", String(st.preparedId));
      lines(row.querySelector('[data-cell="top"]'), best.map(function (b) { return cfg.classes[b[1]] + " " + fmt(b[0]); }));
      lines(row.querySelector('[data-cell="pytorch"]'), ref ? best.map(function (b) { return fmt(ref[b[1]]); }) : ["—"]);
      var diff = ref ? Math.max.apply(null, probs.map(function (p, i) { return Math.abs(p - ref[i]); })) : null;
      text(row.querySelector('[data-cell="diff"]'), diff === null ? "—" : diff.toFixed(4));
      text(row.querySelector('[data-cell="correct"]'), sample === undefined ? "—" : (cfg.classes[best[0][1]] === source.label ? "yes" : "no"));
      text(row.querySelector('[data-cell="time"]'), ms.toFixed(1) + " ms");
    }

    // Bring the page to what the reader asked for: the chosen model loaded, every loaded model run on the image.
    async function step() {
      await ensureModel(choose.value);
      if (!st.image) { root.setAttribute("data-state", "ready"); text(status, "Ready: pick a sample image or drop your own."); return; }
      if (st.preparedId !== st.imageId) {
        var id = st.imageId, source = st.image.source;
        rows.forEach(clearRow);
        root.removeAttribute("data-input");
        root.setAttribute("data-state", "running");
        text(status, "Reading the image…");
        var img;
        try { img = await window.MedbenchImage.decode(st.image.blob, st.image.name); } catch (err) {
          throw err && err.refusal ? err : refusal("the file could not be read (" + (err && err.message ? err.message : err) + ")");
        }
        if (id !== st.imageId) return; // another image arrived meanwhile: the loop starts over
        checkSize(img, cfg.size);
        st.prepared = window.MedbenchImage.preprocess(img, cfg);
        st.preparedId = id;
        showPreview(root, st.prepared.preview, cfg.size);
        text(root.querySelector("[data-demo-truth]"), source.sample !== undefined ? "True label: " + source.label
          : "Your image (" + img.kind + ", " + img.width + " × " + img.height + (img.note ? "; " + img.note : "") +
            "): no true label; PyTorch probabilities exist only for the sample images.");
      }
      root.setAttribute("data-state", "running");
      var todo = rows.filter(function (r) { return sessions[r.getAttribute("data-name")] && r.getAttribute("data-for") !== String(st.preparedId); });
      for (var i = 0; i < todo.length; i++) {
        await runRow(todo[i]);
        if (st.dirty) return;
      }
      var source2 = st.image.source;
      root.setAttribute("data-input", source2.sample !== undefined ? "sample-" + source2.sample : "file");
      root.setAttribute("data-state", "done");
      text(status, "Done: batch 1, one WASM thread; times are one run each.");
    }

    function fail(err) {
      st.image = null;
      st.preparedId = -1;
      rows.forEach(clearRow);
      showPreview(root, null, cfg.size);
      text(root.querySelector("[data-demo-truth]"), "");
      root.removeAttribute("data-input");
      root.setAttribute("data-state", "error");
      text(status, "Not run: " + (err && err.message ? err.message : err));
      if (!err || !err.refusal) console.error(err); // a refusal of the reader's file is no fault of the page
    }

    function kick() {
      if (st.busy) { st.dirty = true; return; }
      st.busy = true;
      (async function loop() {
        do { st.dirty = false; await step(); } while (st.dirty);
      })().catch(fail).finally(function () { st.busy = false; if (st.dirty) kick(); });
    }

    function request(blob, name, source) {
      st.image = { blob: blob, name: name, source: source };
      st.imageId += 1;
      kick();
    }

    function pickSample(button) {
      var url = button.querySelector("img").src;
      var blob = new Blob([b64ToBytes(url.slice(url.indexOf(",") + 1))], { type: "image/png" });
      root.querySelectorAll("[data-demo-sample]").forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
      request(blob, "sample.png", { sample: button.getAttribute("data-demo-sample"), label: button.getAttribute("data-label") });
    }

    function pickFile(file) {
      if (!file) return;
      root.querySelectorAll("[data-demo-sample]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      if (file.size > MAX_FILE_BYTES) { fail(refusal("the file is " + Math.round(file.size / 1e6) + " MB; this page reads files up to " + MAX_FILE_BYTES / 1e6 + " MB")); return; }
      request(file, file.name, {});
    }

    window.MedbenchImage.useDicomLoader(async function () {
      var scripts = (root.getAttribute("data-dicom") || "").split(" ").filter(Boolean);
      for (var i = 0; i < scripts.length; i++) await loadScript(scripts[i]);
    });
    root.querySelectorAll("[data-demo-sample]").forEach(function (button) {
      button.disabled = false;
      button.addEventListener("click", function () { pickSample(button); });
    });
    var input = root.querySelector("[data-demo-file]");
    if (input) { input.disabled = false; input.addEventListener("change", function () { pickFile(input.files[0]); }); }
    var drop = root.querySelector("[data-demo-drop]");
    if (drop) {
      ["dragenter", "dragover"].forEach(function (type) {
        drop.addEventListener(type, function (e) { e.preventDefault(); drop.classList.add("medbench-demo-over"); });
      });
      ["dragleave", "drop"].forEach(function (type) {
        drop.addEventListener(type, function () { drop.classList.remove("medbench-demo-over"); });
      });
      drop.addEventListener("drop", function (e) { e.preventDefault(); pickFile(e.dataTransfer.files[0]); });
    }
    var asked = /^#model=(.+)$/.exec(location.hash); // demo.html#model=<name> chooses a model in a link
    if (asked && Array.prototype.some.call(choose.options, function (o) { return o.value === decodeURIComponent(asked[1]); })) {
      choose.value = decodeURIComponent(asked[1]);
    }
    choose.disabled = false;
    choose.addEventListener("change", kick);
    var firstSample = root.querySelector("[data-demo-sample]");
    if (firstSample) pickSample(firstSample); // something to look at straight away, with the default model
    else kick();
  }

  function start() {
    var root = document.getElementById("medbench-demo");
    if (!root || root.getAttribute("data-state")) return;
    root.setAttribute("data-state", "loading");
    setup(root);
  }

  if (typeof document$ !== "undefined" && document$.subscribe) document$.subscribe(start);
  else if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
