/* The "Try it" page's image reading (demo.js uses it): a file or a sample image to float32 grey in
 * [0, 1] exactly as the engine's readers make it, then the engine's square padding, resize and
 * normalisation. window.MedbenchImage = {decode, preprocess, useDicomLoader, MAX_PIXELS}.
 *
 * PNG is decoded here, not by the browser, so that every mode converts as the engine's
 * bench/data/pil_reader.py does (Pillow, then convert("L")): a canvas would premultiply alpha
 * (losing the colour of transparent pixels), cut 16 bits to 8 and apply gamma. Per PNG colour type:
 *   grey      8-bit: L / 255; 16-bit ("I;16"): value / 65535; 1, 2, 4-bit: scaled to 0-255 as
 *             Pillow unpacks them ("1", "L;2", "L;4"), then / 255;
 *   RGB, RGBA Pillow's convert("L"): L = (19595 R + 38470 G + 7471 B + 32768) >> 16 (ITU-R 601-2),
 *             alpha ignored; 16-bit samples keep their high byte, as Pillow reads them;
 *   grey + alpha  the grey sample (its high byte at 16 bits); alpha ignored;
 *   palette   the palette's RGB to L as above (indices past the palette read black, as in Pillow).
 * Interlaced (Adam7) files and every filter type are read. JPEG is decoded by the browser (a canvas:
 * a JPEG has no alpha; decoders may differ from Pillow's by a grey level). DICOM goes to
 * demo-dicom.js, loaded the first time one is dropped. Anything else is refused.
 *
 * Then bench/data/loading.py: pad to a centred square with zeros, resize with Pillow's bilinear
 * filter on float32 ("F") pixels (a triangle filter widened by the downscale factor: Resample.c
 * precompute_coeffs; horizontal pass, then vertical, the intermediate rounded to float32), and
 * normalise (pixel - mean) / std in float32, grey repeated to every input channel. */
(function () {
  "use strict";

  var MAX_PIXELS = 64 * 1024 * 1024; // the engine's readers refuse larger images before decoding
  var PNG_SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];
  var CHANNELS = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
  var DEPTHS = { 0: [1, 2, 4, 8, 16], 2: [8, 16], 3: [1, 2, 4, 8], 4: [8, 16], 6: [8, 16] };
  var ADAM7 = [[0, 0, 8, 8], [4, 0, 8, 8], [0, 4, 4, 8], [2, 0, 4, 4], [0, 2, 2, 4], [1, 0, 2, 2], [0, 1, 1, 2]];
  var dicomLoader = null;

  function fail(message) { var err = new Error(message); err.refusal = true; throw err; } // the file's fault, not the page's

  function checkPixels(width, height, what) {
    if (width * height > MAX_PIXELS) {
      fail(what + " declares " + width + " × " + height + " = " + (width * height) + " pixels, above the limit of " +
        MAX_PIXELS + "; refused before decoding");
    }
  }

  async function inflate(bytes, format) {
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream(format));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  function luma(r, g, b) { return (r * 19595 + g * 38470 + b * 7471 + 32768) >>> 16; }

  /* ------------------------------------------------------------ PNG */

  function u32(b, o) { return ((b[o] << 24) | (b[o + 1] << 16) | (b[o + 2] << 8) | b[o + 3]) >>> 0; }

  function isPng(bytes) {
    return bytes.length >= 8 && PNG_SIGNATURE.every(function (v, i) { return bytes[i] === v; });
  }

  function chunks(bytes) {
    var out = { idat: [], plte: null, ihdr: null }, pos = 8;
    while (pos + 8 <= bytes.length) {
      var length = u32(bytes, pos), type = String.fromCharCode.apply(null, bytes.subarray(pos + 4, pos + 8));
      var data = bytes.subarray(pos + 8, pos + 8 + length);
      if (data.length < length) fail("the PNG file is truncated (chunk " + type + ")");
      if (type === "IHDR") out.ihdr = data;
      else if (type === "PLTE") out.plte = data;
      else if (type === "IDAT") out.idat.push(data);
      else if (type === "IEND") break;
      pos += 12 + length;
    }
    if (!out.ihdr || out.ihdr.length < 13) fail("the PNG file has no image header");
    if (!out.idat.length) fail("the PNG file has no image data; truncated?");
    return out;
  }

  function paeth(a, b, c) {
    var p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
    return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
  }

  // One scanline unfiltered in place (PNG spec, section 9), against the previous one.
  function unfilter(type, line, prev, bpp) {
    for (var i = 0; i < line.length; i++) {
      var a = i >= bpp ? line[i - bpp] : 0, b = prev[i], c = i >= bpp ? prev[i - bpp] : 0;
      if (type === 1) line[i] = (line[i] + a) & 255;
      else if (type === 2) line[i] = (line[i] + b) & 255;
      else if (type === 3) line[i] = (line[i] + ((a + b) >> 1)) & 255;
      else if (type === 4) line[i] = (line[i] + paeth(a, b, c)) & 255;
      else if (type !== 0) fail("the PNG file is corrupt (filter type " + type + ")");
    }
  }

  // Pillow's grey value (0-255, or 0-65535 for 16-bit grey) of pixel x of an unfiltered line.
  function greyReader(colour, depth, palette) {
    var max = (1 << depth) - 1;
    function sample(line, i) { // the i-th sample of the line; 16-bit ones whole
      if (depth === 8) return line[i];
      if (depth === 16) return (line[2 * i] << 8) | line[2 * i + 1];
      var bit = i * depth;
      return (line[bit >> 3] >> (8 - depth - (bit & 7))) & max;
    }
    function high(line, i) { return depth === 16 ? line[2 * i] : line[i]; } // Pillow keeps a 16-bit sample's high byte
    if (colour === 0) return depth === 16 ? sample : function (line, x) { return Math.round(sample(line, x) * 255 / max); };
    if (colour === 4) return function (line, x) { return high(line, 2 * x); };
    if (colour === 2 || colour === 6) {
      var n = CHANNELS[colour];
      return function (line, x) { return luma(high(line, n * x), high(line, n * x + 1), high(line, n * x + 2)); };
    }
    var entries = palette.length / 3;
    return function (line, x) { // colour 3
      var i = sample(line, x);
      return i < entries ? luma(palette[3 * i], palette[3 * i + 1], palette[3 * i + 2]) : 0;
    };
  }

  async function decodePng(bytes) {
    var c = chunks(bytes), h = c.ihdr;
    var width = u32(h, 0), height = u32(h, 4), depth = h[8], colour = h[9], interlace = h[12];
    if (!width || !height) fail("the PNG file declares an empty image");
    if (!DEPTHS[colour] || DEPTHS[colour].indexOf(depth) < 0) {
      fail("the PNG file declares an invalid colour type " + colour + " with bit depth " + depth);
    }
    if (h[10] !== 0 || h[11] !== 0 || interlace > 1) fail("the PNG file declares an unknown compression, filter or interlace method");
    checkPixels(width, height, "the PNG file");
    if (colour === 3 && !c.plte) fail("the PNG file is a palette image without a palette");
    var total = c.idat.reduce(function (n, d) { return n + d.length; }, 0), joined = new Uint8Array(total), at = 0;
    c.idat.forEach(function (d) { joined.set(d, at); at += d.length; });
    var data;
    try { data = await inflate(joined, "deflate"); } catch (err) { fail("the PNG file's image data is corrupt or truncated"); }
    var bits = CHANNELS[colour] * depth, bpp = Math.max(1, bits >> 3), grey = greyReader(colour, depth, c.plte);
    var scale = colour === 0 && depth === 16 ? 65535 : 255, out = new Float32Array(width * height), pos = 0;
    var passes = interlace ? ADAM7 : [[0, 0, 1, 1]];
    for (var p = 0; p < passes.length; p++) {
      var x0 = passes[p][0], y0 = passes[p][1], dx = passes[p][2], dy = passes[p][3];
      var pw = Math.ceil((width - x0) / dx), ph = Math.ceil((height - y0) / dy);
      if (pw <= 0 || ph <= 0) continue;
      var stride = Math.ceil(pw * bits / 8), prev = new Uint8Array(stride);
      for (var y = 0; y < ph; y++) {
        if (pos + 1 + stride > data.length) fail("the PNG file's image data is truncated");
        var line = data.slice(pos + 1, pos + 1 + stride);
        unfilter(data[pos], line, prev, bpp);
        var row = (y0 + y * dy) * width;
        for (var x = 0; x < pw; x++) out[row + x0 + x * dx] = grey(line, x) / scale;
        prev = line;
        pos += 1 + stride;
      }
    }
    return { pixels: out, width: width, height: height, kind: "PNG" };
  }

  /* ------------------------------------------------------------ JPEG, through the browser */

  async function decodeJpeg(blob) {
    var bitmap = await createImageBitmap(blob, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
    var width = bitmap.width, height = bitmap.height;
    checkPixels(width, height, "the JPEG file");
    var canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    var ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(bitmap, 0, 0);
    bitmap.close();
    var rgba = ctx.getImageData(0, 0, width, height).data, out = new Float32Array(width * height);
    for (var i = 0, j = 0; i < out.length; i++, j += 4) out[i] = luma(rgba[j], rgba[j + 1], rgba[j + 2]) / 255;
    return { pixels: out, width: width, height: height, kind: "JPEG" };
  }

  /* ------------------------------------------------------------ any file */

  function isDicom(bytes, name) {
    var marker = bytes.length >= 132 && String.fromCharCode(bytes[128], bytes[129], bytes[130], bytes[131]) === "DICM";
    return marker || /\.(dcm|dicom)$/i.test(name || "");
  }

  // A Blob (a dropped file or a sample) as {pixels: Float32Array in [0, 1], width, height, kind, note}.
  async function decode(blob, name) {
    var bytes = new Uint8Array(await blob.arrayBuffer());
    if (isPng(bytes)) return decodePng(bytes);
    if (bytes.length > 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return decodeJpeg(blob);
    if (isDicom(bytes, name)) {
      if (!window.MedbenchDicom) {
        if (!dicomLoader) fail("DICOM support did not load");
        await dicomLoader();
      }
      return window.MedbenchDicom.decode(bytes, MAX_PIXELS);
    }
    fail("not a PNG, JPEG or DICOM file");
  }

  /* ------------------------------------------------------------ the engine's preprocessing */

  // Pillow's precompute_coeffs for the bilinear (triangle) filter over the box (0, inSize).
  function coefficients(inSize, outSize) {
    var scale = inSize / outSize, filterscale = Math.max(scale, 1.0), support = 1.0 * filterscale;
    var ksize = Math.ceil(support) * 2 + 1, bounds = new Int32Array(outSize * 2), kk = new Float64Array(outSize * ksize);
    for (var xx = 0; xx < outSize; xx++) {
      var center = (xx + 0.5) * scale, ss = 1.0 / filterscale;
      var xmin = Math.max(0, Math.trunc(center - support + 0.5));
      var xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin, ww = 0.0, x;
      for (x = 0; x < xmax; x++) {
        var t = Math.abs((x + xmin - center + 0.5) * ss), w = t < 1.0 ? 1.0 - t : 0.0;
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
      var h = coefficients(width, outW), tmp = new Float32Array(outW * height);
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
    var v = coefficients(height, outH), out = new Float32Array(w * outH);
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

  function padSquare(img) {
    if (img.width === img.height) return img;
    var side = Math.max(img.width, img.height), out = new Float32Array(side * side);
    var top = Math.floor((side - img.height) / 2), left = Math.floor((side - img.width) / 2);
    for (var y = 0; y < img.height; y++) {
      out.set(img.pixels.subarray(y * img.width, (y + 1) * img.width), (top + y) * side + left);
    }
    return { pixels: out, width: side, height: side };
  }

  // The model input (1, C, S, S) and the resized grey image (for the preview).
  function preprocess(img, cfg) {
    var square = padSquare(img), size = cfg.size;
    var small = square.width === size ? square.pixels : resize(square.pixels, square.width, square.height, size, size);
    var mean = Math.fround(cfg.mean), std = Math.fround(cfg.std), plane = new Float32Array(size * size);
    for (var i = 0; i < plane.length; i++) plane[i] = Math.fround(small[i] - mean) / std;
    var input = new Float32Array(cfg.chans * size * size);
    for (var c = 0; c < cfg.chans; c++) input.set(plane, c * size * size);
    return { input: input, preview: small };
  }

  window.MedbenchImage = {
    MAX_PIXELS: MAX_PIXELS,
    decode: decode,
    preprocess: preprocess,
    inflate: inflate,
    // demo.js hands over how to load dicom-parser and demo-dicom.js, the first time a DICOM arrives
    useDicomLoader: function (load) { dicomLoader = load; },
  };
})();
