/* The "Try it" page (templates/demo.md.j2): every exported model runs in the reader's browser with
 * ONNX Runtime Web's WASM backend on one thread (file:// and GitHub Pages have no cross-origin
 * isolation, so no threads). main.html loads ort.wasm.min.js, then this file, on pages whose
 * front matter says `assets: [demo]`.
 *
 * It works from file://, where fetch() and module imports of local files are refused and a canvas
 * that drew a local image cannot be read: the runtime and the models arrive as classic scripts
 * that define base64 (vendor/onnxruntime-web/ort-wasm-simd-threaded.js → window.MEDBENCH_ORT,
 * demo/models/<model>.js → window.MEDBENCH_MODELS[name], both gzipped and inflated here with
 * DecompressionStream), and the sample images are data: URLs in the page.
 *
 * Preprocessing is the engine's (bench/data/datasets.py load_image, then load_dataset):
 *   grey      PIL convert("L"): L = (19595 R + 38470 G + 7471 B + 32768) >> 16, then / 255 (float32);
 *   pad       to a centred square with zeros, when the image is not square;
 *   resize    PIL Image.resize(BILINEAR) on float32 pixels: a triangle filter widened by the
 *             downscale factor (Resample.c precompute_coeffs), horizontal then vertical pass, the
 *             intermediate rounded to float32 as Pillow's "F" image is;
 *   normalise (pixel - mean) / std in float32 with the training split's statistics; grey repeated
 *             to every input channel.
 * Where the browser's decoding can differ from Pillow's: 16-bit PNGs arrive as 8-bit (the engine
 * keeps 16 bits), semi-transparent pixels lose precision in the canvas (alpha is ignored by both),
 * JPEG decoders may differ by a grey level, colour profiles are not applied here (they are not by
 * Pillow either), and the browser may apply an EXIF rotation that Pillow does not.
 *
 * DOM contract, for the browser tests: #medbench-demo[data-state] is loading | ready | running |
 * done | error; after a run [data-input] names the input ("sample-<index>" or "file"), and each
 * tr[data-demo-model] carries data-top (the top class), data-probs (every probability, class
 * order, space-separated) and data-ms (inference time). */
(function () {
  "use strict";

  var MAX_PIXELS = 64 * 1024 * 1024; // the engine's image reader refuses larger images too

  function b64ToBytes(text) {
    var bin = atob(text);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
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

  /* ------------------------------------------------------------ preprocessing */

  // Pillow's precompute_coeffs for the bilinear (triangle) filter over the box (0, inSize).
  function coefficients(inSize, outSize) {
    var scale = inSize / outSize;
    var filterscale = Math.max(scale, 1.0);
    var support = 1.0 * filterscale;
    var ksize = Math.ceil(support) * 2 + 1;
    var bounds = new Int32Array(outSize * 2);
    var kk = new Float64Array(outSize * ksize);
    for (var xx = 0; xx < outSize; xx++) {
      var center = (xx + 0.5) * scale;
      var ss = 1.0 / filterscale;
      var xmin = Math.max(0, Math.trunc(center - support + 0.5));
      var xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
      var ww = 0.0;
      for (var x = 0; x < xmax; x++) {
        var t = Math.abs((x + xmin - center + 0.5) * ss);
        var w = t < 1.0 ? 1.0 - t : 0.0;
        kk[xx * ksize + x] = w;
        ww += w;
      }
      if (ww !== 0.0) for (x = 0; x < xmax; x++) kk[xx * ksize + x] /= ww;
      bounds[2 * xx] = xmin;
      bounds[2 * xx + 1] = xmax;
    }
    return { bounds: bounds, kk: kk, ksize: ksize };
  }

  // PIL Image.resize(BILINEAR) of a float32 ("F") image: horizontal pass, then vertical.
  function resize(pixels, width, height, outW, outH) {
    var src = pixels, w = width;
    if (outW !== width) {
      var h = coefficients(width, outW);
      var tmp = new Float32Array(outW * height);
      for (var y = 0; y < height; y++) {
        for (var xx = 0; xx < outW; xx++) {
          var xmin = h.bounds[2 * xx], n = h.bounds[2 * xx + 1], s = 0.0;
          for (var x = 0; x < n; x++) s += src[y * width + xmin + x] * h.kk[xx * h.ksize + x];
          tmp[y * outW + xx] = s;
        }
      }
      src = tmp;
      w = outW;
    }
    if (outH === height) return src;
    var v = coefficients(height, outH);
    var out = new Float32Array(w * outH);
    for (var yy = 0; yy < outH; yy++) {
      var ymin = v.bounds[2 * yy], m = v.bounds[2 * yy + 1];
      for (var col = 0; col < w; col++) {
        var acc = 0.0;
        for (var k = 0; k < m; k++) acc += src[(ymin + k) * w + col] * v.kk[yy * v.ksize + k];
        out[yy * w + col] = acc;
      }
    }
    return out;
  }

  // An image (Blob) as float32 grey in [0, 1], exactly as PIL's convert("L") / 255.
  async function greyPixels(blob) {
    var bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    var width = bitmap.width, height = bitmap.height;
    if (width * height > MAX_PIXELS) throw new Error("the image has more than " + MAX_PIXELS + " pixels");
    var canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    var rgba = ctx.getImageData(0, 0, width, height).data;
    var grey = new Float32Array(width * height);
    for (var i = 0, j = 0; i < grey.length; i++, j += 4) {
      grey[i] = ((rgba[j] * 19595 + rgba[j + 1] * 38470 + rgba[j + 2] * 7471 + 32768) >> 16) / 255;
    }
    return { pixels: grey, width: width, height: height };
  }

  function padSquare(img) {
    if (img.width === img.height) return img;
    var side = Math.max(img.width, img.height);
    var out = new Float32Array(side * side);
    var top = Math.floor((side - img.height) / 2), left = Math.floor((side - img.width) / 2);
    for (var y = 0; y < img.height; y++) {
      out.set(img.pixels.subarray(y * img.width, (y + 1) * img.width), (top + y) * side + left);
    }
    return { pixels: out, width: side, height: side };
  }

  // The model input (1, C, S, S) and the resized grey image (for the preview).
  function preprocess(img, cfg) {
    var square = padSquare(img);
    var size = cfg.size;
    var small = square.width === size ? square.pixels : resize(square.pixels, square.width, square.height, size, size);
    var mean = Math.fround(cfg.mean), std = Math.fround(cfg.std);
    var plane = new Float32Array(size * size);
    for (var i = 0; i < plane.length; i++) plane[i] = Math.fround(small[i] - mean) / std;
    var input = new Float32Array(cfg.chans * size * size);
    for (var c = 0; c < cfg.chans; c++) input.set(plane, c * size * size);
    return { input: input, preview: small };
  }

  /* ------------------------------------------------------------ models */

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

  async function startRuntime(root) {
    await loadScript(root.getAttribute("data-runtime"));
    var data = window.MEDBENCH_ORT;
    if (!data || typeof ort === "undefined") throw new Error("the ONNX Runtime scripts did not load");
    ort.env.logLevel = "error";
    ort.env.wasm.numThreads = 1;
    ort.env.wasm.proxy = false;
    ort.env.wasm.wasmBinary = await gunzip(b64ToBytes(data.wasmGzip));
    ort.env.wasm.wasmPaths = { mjs: URL.createObjectURL(new Blob([b64ToBytes(data.mjs)], { type: "text/javascript" })) };
  }

  async function loadModel(row, cfg) {
    var name = row.getAttribute("data-name");
    await loadScript(row.getAttribute("data-script"));
    var packed = (window.MEDBENCH_MODELS || {})[name];
    if (!packed) throw new Error("model " + name + " did not load");
    var session = await ort.InferenceSession.create(await gunzip(b64ToBytes(packed)), { executionProviders: ["wasm"] });
    delete window.MEDBENCH_MODELS[name]; // the session holds the weights now
    var dims = [1, cfg.chans, cfg.size, cfg.size];
    await session.run({ image: new ort.Tensor("float32", new Float32Array(cfg.chans * cfg.size * cfg.size), dims) });
    return session;
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
    var img = ctx.createImageData(size, size);
    for (var i = 0; i < preview.length; i++) {
      var g = Math.round(Math.min(1, Math.max(0, preview[i])) * 255);
      img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = g;
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
  }

  function pytorchProbs(root, sample, model) {
    var el = root.querySelector('data[data-demo-pytorch][data-sample="' + sample + '"][data-model="' + CSS.escape(model) + '"]');
    return el ? el.value.split(" ").map(Number) : null;
  }

  async function run(root, cfg, sessions, blob, source) {
    root.setAttribute("data-state", "running");
    root.removeAttribute("data-input");
    var status = root.querySelector("[data-demo-status]");
    text(status, "Preprocessing…");
    var prepared = preprocess(await greyPixels(blob), cfg);
    showPreview(root, prepared.preview, cfg.size);
    var sample = source.sample;
    text(root.querySelector("[data-demo-truth]"), sample !== undefined ? "True label: " + source.label
      : "Your image: no true label; PyTorch probabilities exist only for the sample images.");
    var dims = [1, cfg.chans, cfg.size, cfg.size];
    var rows = root.querySelectorAll("tr[data-demo-model]");
    for (var r = 0; r < rows.length; r++) {
      var row = rows[r], name = row.getAttribute("data-name"), session = sessions[name];
      if (!session) continue;
      text(status, "Running " + name + "…");
      var t0 = performance.now();
      var out = await session.run({ image: new ort.Tensor("float32", prepared.input, dims) });
      var ms = performance.now() - t0;
      var probs = softmax(Array.from(out[Object.keys(out)[0]].data));
      var ref = sample !== undefined ? pytorchProbs(root, sample, name) : null;
      var best = top3(probs);
      row.setAttribute("data-top", cfg.classes[best[0][1]]);
      row.setAttribute("data-probs", probs.map(function (p) { return p.toFixed(6); }).join(" "));
      row.setAttribute("data-ms", ms.toFixed(2));
      lines(row.querySelector('[data-cell="top"]'), best.map(function (b) { return cfg.classes[b[1]] + " " + fmt(b[0]); }));
      lines(row.querySelector('[data-cell="pytorch"]'), ref ? best.map(function (b) { return fmt(ref[b[1]]); }) : ["—"]);
      var diff = ref ? Math.max.apply(null, probs.map(function (p, i) { return Math.abs(p - ref[i]); })) : null;
      text(row.querySelector('[data-cell="diff"]'), diff === null ? "—" : diff.toFixed(4));
      text(row.querySelector('[data-cell="correct"]'), sample === undefined ? "—"
        : (cfg.classes[best[0][1]] === source.label ? "yes" : "no"));
      text(row.querySelector('[data-cell="time"]'), ms.toFixed(1) + " ms");
    }
    root.setAttribute("data-input", sample !== undefined ? "sample-" + sample : "file");
    root.setAttribute("data-state", "done");
    text(status, "Done: batch 1, one WASM thread; times are one run each.");
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

  async function setup(root) {
    var cfg = config(root), sessions = {}, busy = false, pending = null;
    var status = root.querySelector("[data-demo-status]");
    function request(blob, source) {
      pending = [blob, source];
      if (busy) return;
      busy = true;
      (async function drain() {
        while (pending) {
          var job = pending;
          pending = null;
          await run(root, cfg, sessions, job[0], job[1]);
        }
      })().catch(fail).finally(function () { busy = false; });
    }
    function fail(err) {
      root.setAttribute("data-state", "error");
      text(status, "The demo failed: " + (err && err.message ? err.message : err));
      console.error(err);
    }
    function pickSample(button) {
      var url = button.querySelector("img").src;
      var blob = new Blob([b64ToBytes(url.slice(url.indexOf(",") + 1))], { type: "image/png" });
      root.querySelectorAll("[data-demo-sample]").forEach(function (b) { b.setAttribute("aria-pressed", b === button ? "true" : "false"); });
      request(blob, { sample: button.getAttribute("data-demo-sample"), label: button.getAttribute("data-label") });
    }
    function pickFile(file) {
      if (!file) return;
      var known = file.type ? /^image\/(png|jpeg)$/.test(file.type) : /\.(png|jpe?g)$/i.test(file.name);
      if (!known) { text(status, "Please choose a PNG or JPEG image."); return; }
      root.querySelectorAll("[data-demo-sample]").forEach(function (b) { b.setAttribute("aria-pressed", "false"); });
      request(file, {});
    }
    try {
      text(status, "Loading ONNX Runtime…");
      await startRuntime(root);
      var rows = root.querySelectorAll("tr[data-demo-model]");
      for (var i = 0; i < rows.length; i++) {
        text(status, "Loading model " + (i + 1) + " of " + rows.length + " (" + rows[i].getAttribute("data-name") + ")…");
        sessions[rows[i].getAttribute("data-name")] = await loadModel(rows[i], cfg);
      }
    } catch (err) { fail(err); return; }
    root.setAttribute("data-state", "ready");
    text(status, "Ready: pick a sample image or drop your own PNG or JPEG.");
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
    var first = root.querySelector("[data-demo-sample]");
    if (first) pickSample(first); // something to look at straight away
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
