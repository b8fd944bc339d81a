/* DICOM on the "Try it" page: a dropped file to float32 grey in [0, 1] by the engine's rules
 * (bench/data/dicom_reader.py, decoding as pydicom does), with dicom-parser (vendored from npm).
 * demo-image.js loads both scripts the first time a DICOM file arrives. window.MedbenchDicom.decode.
 *
 * Read here: uncompressed pixel data (implicit or explicit VR little endian, explicit big endian,
 * deflated) and RLE Lossless; 1, 8, 16 or 32 bits, signed or not, bits above Bits Stored masked or
 * sign-extended, float pixel data; one or three samples (planar configuration 0 or 1), YBR_FULL and
 * YBR_FULL_422 converted to RGB as pydicom does; the middle frame of a multi-frame file. JPEG, JPEG-LS,
 * JPEG 2000 and other compressed syntaxes are refused with their name (the engine decodes them
 * through pydicom's plugins), as are segmented palettes.
 *
 * Grey, as the engine: the Modality LUT Sequence's first table, else stored value × Rescale Slope
 * + Rescale Intercept; then the VOI LUT Sequence's first table (over 2^bits - 1), else the first
 * window (Window Center/Width, VOI LUT Function LINEAR, LINEAR_EXACT or SIGMOID: PS3.3
 * C.11.2.1.2), else the 0.5th-99.5th percentiles (numpy's linear interpolation) scaled to [0, 1];
 * MONOCHROME1 inverted last. Colour: PALETTE COLOR through its lookup table, RGB to luma
 * (0.299, 0.587, 0.114 in float32) over 2^BitsStored - 1 (a palette's: over its entries' maximum). */
(function () {
  "use strict";

  var PIXEL_DATA = "x7fe00010", FLOAT_PIXEL_DATA = "x7fe00008", DOUBLE_PIXEL_DATA = "x7fe00009";
  var UNCOMPRESSED = { "1.2.840.10008.1.2": true, "1.2.840.10008.1.2.1": true, "1.2.840.10008.1.2.1.99": true,
    "1.2.840.10008.1.2.2": false }; // → little endian
  var RLE = "1.2.840.10008.1.2.5", DEFLATED = "1.2.840.10008.1.2.1.99";
  var PERCENTILES = [0.5, 99.5];
  var LUMA = [Math.fround(0.299), Math.fround(0.587), Math.fround(0.114)];
  var YBR = [Math.fround(-0.114 * 1.772 / 0.587), Math.fround(1.772), Math.fround(1.402),
    Math.fround(-0.299 * 1.402 / 0.587)]; // pydicom's YBR_FULL → RGB matrix, float32

  function fail(message) { var err = new Error(message); err.refusal = true; throw err; } // the file's fault, not the page's

  function parse(bytes, inflated) {
    var marker = bytes.length >= 132 && String.fromCharCode(bytes[128], bytes[129], bytes[130], bytes[131]) === "DICM";
    var options = { inflater: function () { return inflated; } };
    if (!marker) { // no Part 10 header: guess the encoding, as pydicom does with force=True
      var explicit = /^[A-Z]{2}$/.test(String.fromCharCode(bytes[4], bytes[5]));
      options.TransferSyntaxUID = explicit ? "1.2.840.10008.1.2.1" : "1.2.840.10008.1.2";
    }
    try {
      return window.dicomParser.parseDicom(bytes, options);
    } catch (err) {
      // Like pydicom, keep what was read when the walk fails after the pixel data (trailing padding, say)
      if (err && err.dataSet && (err.dataSet.elements[PIXEL_DATA] || err.dataSet.elements[FLOAT_PIXEL_DATA])) return err.dataSet;
      var why = err && err.exception ? err.exception : err;
      fail("not a readable DICOM file; truncated or corrupt? (" + (why && why.message ? why.message : why) + ")");
    }
  }

  function refuseCompressed(syntax) {
    if (syntax && syntax !== RLE && !(syntax in UNCOMPRESSED)) {
      fail("compressed pixel data (transfer syntax " + syntax + "), which the browser demo does not decode; the engine " +
        "reads it through pydicom's plugins, or save the file uncompressed");
    }
  }

  // The deflated data set. zlib (pydicom) ignores bytes after the end of the deflate stream; the
  // browser's DecompressionStream fails on them and may drop the last output, so up to 64 trailing
  // bytes are cut until it reads cleanly.
  async function inflateRaw(data) {
    for (var cut = 0; cut <= Math.min(64, data.length - 1); cut++) {
      try { return await window.MedbenchImage.inflate(data.subarray(0, data.length - cut), "deflate-raw"); } catch (err) { /* cut more */ }
    }
    fail("the deflated data set is corrupt");
  }

  async function dataSetOf(bytes) {
    var head = null;
    try { head = window.dicomParser.readPart10Header(bytes); } catch (err) { head = null; }
    var syntax = head && head.string("x00020010");
    refuseCompressed(syntax); // before the data set is walked: its refusal names what matters
    if (syntax !== DEFLATED) return parse(bytes, null);
    var at = head.position, body = await inflateRaw(bytes.subarray(at));
    var full = new Uint8Array(at + body.length);
    full.set(bytes.subarray(0, at));
    full.set(body, at);
    return parse(bytes, full);
  }

  /* ------------------------------------------------------------ attributes */

  function first(ds, tag) { // the first value of a string attribute, or undefined
    var el = ds.elements[tag];
    if (!el || (!el.length && !el.Value)) return undefined;
    var value = ds.string(tag);
    return value === undefined ? undefined : value.split("\\")[0].replace(/[\s\0]+$/, "").trim();
  }

  function number(ds, tag, name, fallback) {
    var text = first(ds, tag);
    if (text === undefined || text === "") return fallback;
    var value = Number(text);
    if (!isFinite(value)) fail("malformed DICOM attribute " + name + " = '" + text.slice(0, 40) + "': not a finite number");
    return value;
  }

  function ushort(ds, tag, fallback) {
    var el = ds.elements[tag];
    return el && el.length >= 2 ? ds.uint16(tag) : fallback;
  }

  function geometry(ds) {
    var g = {
      rows: ushort(ds, "x00280010", 0), columns: ushort(ds, "x00280011", 0),
      frames: Math.max(number(ds, "x00280008", "NumberOfFrames", 1), 1), samples: ushort(ds, "x00280002", 1),
      photometric: (first(ds, "x00280004") || "MONOCHROME2").toUpperCase(), planar: ushort(ds, "x00280006", 0),
      allocated: ushort(ds, "x00280100", 0), signed: ushort(ds, "x00280103", 0) === 1,
    };
    g.stored = ushort(ds, "x00280101", g.allocated);
    if (!g.rows || !g.columns) fail("DICOM image lacks a usable size (Rows " + g.rows + ", Columns " + g.columns + ")");
    if (g.samples !== 1 && g.samples !== 3) fail("unsupported SamplesPerPixel " + g.samples + ": expected 1 (grey) or 3 (colour)");
    var floating = !ds.elements[PIXEL_DATA];
    if ([1, 8, 16, 32].concat(floating ? [64] : []).indexOf(g.allocated) < 0) fail("unsupported BitsAllocated " + g.allocated);
    return g;
  }

  /* ------------------------------------------------------------ stored values of one frame */

  function unusedBits(values, g) { // pydicom's correct_unused_bits: mask, or sign-extend, above Bits Stored
    if (g.stored >= g.allocated || g.allocated === 1 || g.allocated > 32 || g.stored < 1) return values;
    var shift = 32 - g.stored;
    for (var i = 0; i < values.length; i++) {
      values[i] = g.signed ? (values[i] << shift) >> shift : (values[i] & (2 ** g.stored - 1)) >>> 0;
    }
    return values;
  }

  function nativeFrame(ds, el, g, index, little, floating) {
    var bytes = ds.byteArray, start = el.dataOffset, pixels = g.rows * g.columns, n = pixels * g.samples;
    if (g.allocated === 1) {
      var bit = index * pixels, ones = new Float64Array(pixels);
      if (start + Math.ceil((bit + pixels) / 8) > start + el.length) fail("the pixel data is shorter than its frames; truncated?");
      for (var i = 0; i < pixels; i++, bit++) ones[i] = (bytes[start + (bit >> 3)] >> (bit & 7)) & 1;
      return ones;
    }
    var size = g.allocated / 8, ybr422 = g.photometric === "YBR_FULL_422" && g.samples === 3;
    var frameBytes = ybr422 ? pixels * 2 : n * size, at = index * frameBytes;
    if (at + frameBytes > el.length) fail("the pixel data is shorter than its frames; truncated?");
    var swap = !little && size === 1 && el.vr === "OW"; // pydicom: big-endian 8-bit data in OW, bytes swapped in pairs
    var copy = new Uint8Array(frameBytes);
    for (var k = 0; k < frameBytes; k++) copy[k] = bytes[start + (swap ? (at + k) ^ 1 : at + k)];
    var view = new DataView(copy.buffer), out = new Float64Array(ybr422 ? n : frameBytes / size);
    for (var j = 0; j < frameBytes / size; j++) {
      var o = j * size;
      out[j] = floating ? (size === 4 ? view.getFloat32(o, little) : view.getFloat64(o, little))
        : size === 1 ? (g.signed ? view.getInt8(o) : view.getUint8(o))
        : size === 2 ? (g.signed ? view.getInt16(o, little) : view.getUint16(o, little))
        : (g.signed ? view.getInt32(o, little) : view.getUint32(o, little));
    }
    if (ybr422) { // Y1 Y2 Cb Cr → Y1 Cb Cr Y2 Cb Cr (pydicom's expansion)
      var packed = out.slice(0, frameBytes);
      for (var p = 0; p < pixels / 2; p++) {
        out.set([packed[4 * p], packed[4 * p + 2], packed[4 * p + 3], packed[4 * p + 1], packed[4 * p + 2], packed[4 * p + 3]], 6 * p);
      }
    }
    return floating ? out : unusedBits(out, g);
  }

  function packBits(data, from, to, count) { // one RLE segment (PS3.5 G.3.1)
    var out = new Uint8Array(count), n = 0, i = from;
    while (i < to && n < count) {
      var h = data[i++];
      if (h < 128) { for (var k = 0; k <= h && n < count; k++) out[n++] = data[i++]; }
      else if (h > 128) { var v = data[i++]; for (k = 0; k < 257 - h && n < count; k++) out[n++] = v; }
    }
    if (n < count) fail("an RLE segment decodes to " + n + " bytes, not " + count + "; the file may be corrupt");
    return out;
  }

  function rleFrame(ds, el, g, index) {
    var frags = el.fragments || [], bot = el.basicOffsetTable || [], parts;
    if (frags.length === g.frames) parts = [frags[index]];
    else if (bot.length === g.frames) {
      parts = frags.filter(function (f) { return f.offset >= bot[index] && (index + 1 === bot.length || f.offset < bot[index + 1]); });
    } else if (g.frames === 1) parts = frags;
    else fail("cannot tell which RLE fragments hold frame " + index);
    var size = parts.reduce(function (s, f) { return s + f.length; }, 0), data = new Uint8Array(size), at = 0;
    parts.forEach(function (f) { data.set(ds.byteArray.subarray(f.position, f.position + f.length), at); at += f.length; });
    if (g.allocated === 1 || g.allocated > 32) fail("RLE pixel data of " + g.allocated + " bits is not read in the browser");
    var view = new DataView(data.buffer), segments = view.getUint32(0, true), width = g.allocated / 8;
    var pixels = g.rows * g.columns, decoded = [];
    if (segments !== g.samples * width) fail("the RLE header lists " + segments + " segments, expected " + g.samples * width);
    for (var s = 0; s < segments; s++) {
      var from = view.getUint32(4 + 4 * s, true), to = s + 1 < segments ? view.getUint32(8 + 4 * s, true) : size;
      decoded.push(packBits(data, from, to, pixels));
    }
    var out = new Float64Array(pixels * g.samples), top = 2 ** g.allocated;
    for (var i = 0; i < pixels; i++) {
      for (var c = 0; c < g.samples; c++) {
        var v = 0;
        for (var b = 0; b < width; b++) v = v * 256 + decoded[c * width + b][i]; // most significant byte first
        out[i * g.samples + c] = g.signed && v >= top / 2 ? v - top : v;
      }
    }
    return unusedBits(out, g);
  }

  /* ------------------------------------------------------------ stored values to [0, 1] */

  function window_(v, center, width, fn) { // PS3.3 C.11.2.1.2-3; null for a width the function cannot use
    if (fn === "SIGMOID") return width <= 0 ? null : 1.0 / (1.0 + Math.exp(-4.0 * (v - center) / width));
    if (fn === "LINEAR_EXACT") return width <= 0 ? null : Math.min(1, Math.max(0, (v - center) / width + 0.5));
    if (width < 1) return null;
    center -= 0.5;
    width -= 1.0;
    if (width === 0) return v > center ? 1.0 : 0.0;
    return Math.min(1, Math.max(0, (v - center) / width + 0.5));
  }

  function percentiles(values) { // numpy's default (linear) percentiles
    var sorted = Float64Array.from(values).sort(), last = sorted.length - 1;
    return PERCENTILES.map(function (p) {
      var rank = p / 100 * last, below = Math.floor(rank), above = Math.min(below + 1, last);
      return sorted[below] + (rank - below) * (sorted[above] - sorted[below]);
    });
  }

  // The first item of a LUT sequence (Modality or VOI): {entries, first, depth, value(i)}, or null.
  function lutItem(ds, tag, what, g) {
    var seq = ds.elements[tag], item = seq && seq.items && seq.items[0] && seq.items[0].dataSet;
    if (!item || !item.elements.x00283002 || !item.elements.x00283006) return null;
    var desc = item.elements.x00283002, signed = desc.vr ? desc.vr === "SS" : g.signed;
    var lut = { entries: item.uint16("x00283002", 0) || 65536, first: signed ? item.int16("x00283002", 1) : item.uint16("x00283002", 1),
      depth: item.uint16("x00283002", 2), data: item.elements.x00283006 };
    if (lut.data.length < 2 * lut.entries) fail("malformed " + what + " (" + lut.data.length + " bytes of LUT Data for " + lut.entries + " entries)");
    lut.value = function (i) { return item.uint16("x00283006", i); };
    return lut;
  }

  function lookUp(lut, v, wrap) { // pydicom: below the first mapped value the first entry, past the last the last
    var i = v >= lut.first ? v - lut.first : 0;
    if (wrap) i &= wrap;
    return lut.value(Math.min(Math.max(i, 0), lut.entries - 1));
  }

  function rint(v) { // numpy's rint: halves to even
    var r = Math.round(v);
    return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  }

  function monochrome(ds, stored, g, note) {
    var slope = 1.0, intercept = 0.0, modality = lutItem(ds, "x00283000", "Modality LUT Sequence", g);
    if (modality) {
      if (modality.depth !== 8 && modality.depth !== 16) fail("malformed Modality LUT Sequence (" + modality.depth + " bits per entry)");
      stored = stored.map(function (v) { return lookUp(modality, v, 0); });
    } else {
      slope = number(ds, "x00281053", "RescaleSlope", 1.0);
      intercept = number(ds, "x00281052", "RescaleIntercept", 0.0);
    }
    var values = stored.map(function (v) { if (slope !== 1.0) v *= slope; if (intercept !== 0.0) v += intercept; return v; });
    if (!values.every(isFinite)) fail("pixel values are NaN or infinite after the rescale");
    var center = number(ds, "x00281050", "WindowCenter", null), width = number(ds, "x00281051", "WindowWidth", null);
    var fn = (first(ds, "x00281056") || "LINEAR").toUpperCase(), out = null, voi = lutItem(ds, "x00283010", "VOI LUT Sequence", g);
    if (voi) {
      if (voi.depth !== 8 && (voi.depth < 10 || voi.depth > 16)) fail("malformed VOI LUT Sequence (" + voi.depth + " bits per LUT entry)");
      var top = 2 ** voi.depth - 1, wrap = voi.depth === 8 ? 255 : 65535;
      out = values.map(function (v) {
        var i = Math.min(Math.max(rint(v), voi.first), voi.first + voi.entries - 1);
        return (lookUp(voi, i, wrap) & wrap) / top;
      });
      note.push("VOI LUT");
    } else if (center !== null && width !== null && window_(0, center, width, fn) !== null) {
      out = values.map(function (v) { return window_(v, center, width, fn); });
      note.push("window " + fn + " center " + center + " width " + width);
    }
    if (out === null) { // percentiles of the stored values, mapped: an affine rescale commutes with them
      var range = percentiles(stored).map(function (v) { return v * slope + intercept; }).sort(function (a, b) { return a - b; });
      var lo = range[0], hi = range[1];
      if (hi <= lo) {
        lo = Math.min.apply(null, values);
        hi = Math.max.apply(null, values);
      }
      var inverse = 1.0 / (hi - lo);
      out = values.map(function (v) { return hi <= lo ? 0 : Math.min(1, Math.max(0, (v - lo) * inverse)); });
      note.push("percentile 0.5-99.5");
    }
    if (g.photometric === "MONOCHROME1") out = out.map(function (v) { return 1.0 - v; });
    return out;
  }

  function luma(r, g, b) { // numpy: float32 (H, W, 3) @ float32 weights
    return Math.fround(Math.fround(Math.fround(Math.fround(r) * LUMA[0]) + Math.fround(Math.fround(g) * LUMA[1]))
      + Math.fround(Math.fround(b) * LUMA[2]));
  }

  function ybrToRgb(y, cb, cr) { // pydicom convert_color_space(YBR_FULL → RGB), 8-bit
    cb = cb - 128;
    cr = cr - 128;
    var r = Math.fround(y + Math.fround(cr * YBR[2]));
    var gg = Math.fround(Math.fround(y + Math.fround(cb * YBR[0])) + Math.fround(cr * YBR[3]));
    var b = Math.fround(y + Math.fround(cb * YBR[1]));
    return [r, gg, b].map(function (v) { return Math.min(255, Math.max(0, Math.floor(Math.fround(v + 0.5)))); });
  }

  function palette(ds, stored, note) {
    if (ds.elements.x00281221) fail("segmented palette colour lookup tables are not read in the browser");
    var desc = ds.elements.x00281101, entries = ushort(ds, "x00281101", 0) || 65536;
    var firstMap = desc && desc.length >= 4 ? (desc.vr === "SS" ? ds.int16("x00281101", 1) : ds.uint16("x00281101", 1)) : 0;
    var luts = ["x00281201", "x00281202", "x00281203"].map(function (tag) {
      var el = ds.elements[tag];
      if (!el) fail("malformed palette colour lookup table (no " + tag + ")");
      return new DataView(ds.byteArray.buffer, ds.byteArray.byteOffset + el.dataOffset, el.length);
    });
    var bits = luts[0].byteLength / entries * 8, max = bits === 8 ? 255 : 65535;
    if (bits !== 8 && bits !== 16) fail("malformed palette colour lookup table (" + bits + " bits per entry)");
    note.push("palette to luma");
    return stored.map(function (v) {
      var i = v >= firstMap ? (v - firstMap) & max : 0;
      i = Math.min(i, entries - 1);
      var rgb = luts.map(function (t) { return bits === 8 ? t.getUint8(i) : t.getUint16(2 * i, true); });
      return Math.fround(luma(rgb[0], rgb[1], rgb[2]) / max);
    });
  }

  function colour(ds, stored, g, note) {
    if (g.photometric === "PALETTE COLOR") return palette(ds, stored, note);
    var pixels = stored.length / 3, out = new Float64Array(pixels), ybr = /^YBR_FULL(_422)?$/.test(g.photometric);
    if (ybr && g.allocated !== 8) fail(g.photometric + " pixel data of " + g.allocated + " bits cannot be converted to RGB");
    var bits = Math.min(Math.max(g.stored, 1), g.allocated), scale = 2 ** bits - 1;
    for (var i = 0; i < pixels; i++) {
      var rgb = [stored[3 * i], stored[3 * i + 1], stored[3 * i + 2]];
      if (ybr) rgb = ybrToRgb(rgb[0], rgb[1], rgb[2]);
      out[i] = luma(rgb[0], rgb[1], rgb[2]) / scale;
    }
    note.push(g.photometric + " to luma");
    return out;
  }

  function planes(stored, g) { // planar configuration 1 (RRR… GGG… BBB…) to interleaved
    if (g.samples !== 3 || g.planar !== 1) return stored;
    var n = stored.length / 3, out = new Float64Array(stored.length);
    for (var i = 0; i < n; i++) for (var c = 0; c < 3; c++) out[3 * i + c] = stored[c * n + i];
    return out;
  }

  async function decode(bytes, maxPixels) {
    var ds = await dataSetOf(bytes);
    var syntax = first(ds, "x00020010") || "1.2.840.10008.1.2";
    var el = ds.elements[PIXEL_DATA] || ds.elements[FLOAT_PIXEL_DATA] || ds.elements[DOUBLE_PIXEL_DATA];
    if (!el) fail("DICOM file has no pixel data (not an image object, or truncated?)");
    var g = geometry(ds), index = Math.floor(g.frames / 2);
    if (g.rows * g.columns > maxPixels) {
      fail("declares 1 frame(s) of " + g.rows + "×" + g.columns + " = " + g.rows * g.columns + " pixels to decode, above the limit of " + maxPixels);
    }
    var stored;
    if (syntax === RLE) stored = rleFrame(ds, el, g, index);
    else {
      refuseCompressed(syntax);
      stored = nativeFrame(ds, el, g, index, UNCOMPRESSED[syntax], el.tag !== PIXEL_DATA);
    }
    var note = [], isColour = g.samples === 3 || g.photometric === "PALETTE COLOR";
    var grey = isColour ? colour(ds, planes(stored, g), g, note) : monochrome(ds, stored, g, note);
    var pixels = new Float32Array(grey.length);
    for (var i = 0; i < grey.length; i++) pixels[i] = Math.min(1, Math.max(0, Math.fround(grey[i])));
    if (g.frames > 1) note.push("frame " + index + " of " + g.frames);
    return { pixels: pixels, width: g.columns, height: g.rows, kind: "DICOM", note: note.join("; ") };
  }

  window.MedbenchDicom = { decode: decode };
})();
