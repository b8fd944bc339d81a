"""The Try-it page in Chromium: what a radiologist's files become, what a first prediction costs,
and what the page refuses.

- DICOM: the browser's pixel array (demo-dicom.js with dicom-parser) equals the engine's reader
  (bench.data.readers.read_image) on every pydicom example file the engine reads and the page does
  not refuse, and on variants of MR_small.dcm for each rescale, LUT, window and MONOCHROME1 rule;
  the page refuses the rest (compressed syntaxes) with a message.
- PNG of every colour type, bit depth and interlace (RGBA with transparent pixels first): the
  page's grey pixels are Pillow's, and an RGBA image's model input and prediction are the engine's
  (onnxruntime in Python on the same model).
- Only the chosen model loads; the first prediction's transfer is measured over http.
- A too-small image and an unreadable file are refused, and the refusal clears the predictions.
"""

from __future__ import annotations

import base64
import functools
import gzip
import http.server
import json
import os
import re
import struct
import threading
import zlib
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
from PIL import Image

from bench.data.loading import load_image
from bench.data.readers import ImageReadError, read_image, read_with_metadata

from ._built_site import built_site  # noqa: F401  (a fixture)

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
EXPORTS = Path(__file__).resolve().parents[2] / "data" / "artifacts"
FIRST_PREDICTION_LIMIT = 6_000_000  # bytes transferred until one model's first prediction
PIXEL_TOLERANCE = 1e-6  # float32 grey in [0, 1]; the same arithmetic gives 0 or a rounding step
MIN_DICOM_FILES = 10

# Decode bytes (base64) with the page's reader; the float32 pixels come back as base64.
DECODE = """async ([b64, name, prepare]) => {
  const bin = atob(b64), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  const pack = (floats) => { const raw = new Uint8Array(floats.buffer, floats.byteOffset, floats.byteLength);
    let s = ""; for (let i = 0; i < raw.length; i += 32768) s += String.fromCharCode.apply(null, raw.subarray(i, i + 32768));
    return btoa(s); };
  try {
    const img = await window.MedbenchImage.decode(new Blob([bytes]), name);
    const out = {width: img.width, height: img.height, kind: img.kind, note: img.note || "", pixels: pack(img.pixels)};
    if (prepare) {
      const root = document.getElementById("medbench-demo");
      const cfg = {size: +root.dataset.size, chans: +root.dataset.chans, mean: +root.dataset.mean, std: +root.dataset.std};
      out.input = pack(window.MedbenchImage.preprocess(img, cfg).input);
    }
    return out;
  } catch (e) { return {error: String(e && e.message || e), refusal: !!(e && e.refusal)}; }
}"""


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def server(built_site: Path) -> Iterator[str]:  # noqa: F811
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(built_site)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(built_site: Path) -> Iterator[Any]:  # noqa: F811
    sync_api = pytest.importorskip("playwright.sync_api")
    if not CHROMIUM.is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    if not (built_site / "demo.html").is_file() or "data-demo-model" not in (built_site / "demo.html").read_text():
        pytest.skip("no export results: the demo has no models")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def reader(browser: Any, server: str) -> Iterator[Any]:
    """The demo page with its runtime blocked (no model needed to test reading), for MedbenchImage."""
    page = browser.new_page()
    page.route("**/ort-wasm-simd-threaded.js", lambda route: route.abort())
    page.goto(f"{server}/demo.html")
    page.wait_for_function("() => window.MedbenchImage !== undefined")
    yield page
    page.close()


def _decode(page: Any, path: Path, prepare: bool = False) -> dict[str, Any]:
    result = page.evaluate(DECODE, [base64.b64encode(path.read_bytes()).decode(), path.name, prepare])
    for key in ("pixels", "input"):
        if key in result:
            result[key] = np.frombuffer(base64.b64decode(result[key]), dtype="<f4")
    if "pixels" in result:
        result["pixels"] = result["pixels"].reshape(result["height"], result["width"])
    return result


# --------------------------------------------------------------------------- DICOM


def _pydicom_examples() -> list[Path]:
    pydicom_data = pytest.importorskip("pydicom.data")
    folder = Path(pydicom_data.__file__).parent / "test_files"
    return sorted(p for p in folder.rglob("*.dcm") if p.is_file())


def _lut_item(descriptor: list[int], values: np.ndarray, vr: str) -> Any:
    from pydicom.dataset import Dataset

    item = Dataset()
    item.add_new(0x00283002, "US", descriptor)  # LUT Descriptor
    item.add_new(0x00283006, vr, values.astype("<u2").tobytes() if vr == "OW" else [int(v) for v in values])
    return item


def _variants(tmp: Path) -> list[Path]:
    """MR_small.dcm (values 127-2145) under each rule the reader applies: rescale, Modality and VOI LUT
    Sequences, windows, percentiles, MONOCHROME1, unused bits; some in implicit VR."""
    import pydicom

    ramp = np.arange(2048)
    luts = {
        "modality-lut": ("ModalityLUTSequence", [2048, 100, 16], (ramp * 7) % 3001, "US"),
        "voi-lut-12": ("VOILUTSequence", [1024, 400, 12], np.sqrt(ramp[:1024] / 1023) * 4095, "US"),
        "voi-lut-8-ow": ("VOILUTSequence", [512, 0, 8], ramp[:512] // 2, "OW"),
        "voi-lut-rounding": ("VOILUTSequence", [1024, 0, 16], ramp[:1024] * 64, "US"),
    }
    changes: dict[str, dict[str, Any]] = {
        "modality-lut": {"WindowCenter": None, "WindowWidth": None},
        "voi-lut-12": {},
        "voi-lut-8-ow": {"RescaleIntercept": "-300"},
        "voi-lut-rounding": {"RescaleSlope": "0.5", "RescaleIntercept": "0.5"},  # halves: numpy's rint rounds to even
        "monochrome1": {"PhotometricInterpretation": "MONOCHROME1"},
        "rescale": {"RescaleSlope": "2.5", "RescaleIntercept": "-1024", "WindowCenter": "476", "WindowWidth": "3000"},
        "sigmoid": {"VOILUTFunction": "SIGMOID"},
        "linear-exact": {"VOILUTFunction": "LINEAR_EXACT", "PhotometricInterpretation": "MONOCHROME1"},
        "threshold": {"WindowWidth": "1"},
        "two-windows": {"WindowCenter": ["300", "600"], "WindowWidth": ["400", "1600"]},
        "no-window": {"WindowCenter": None, "WindowWidth": None},
        "no-window-negative-slope": {"WindowCenter": None, "WindowWidth": None, "RescaleSlope": "-1",
                                     "PhotometricInterpretation": "MONOCHROME1"},
        "12-bits-stored": {"BitsStored": 12, "HighBit": 11},
    }
    examples = {p.name: p for p in _pydicom_examples()}
    out = []
    for name, attrs in changes.items():
        implicit = name in ("voi-lut-12", "monochrome1")
        ds = pydicom.dcmread(examples["MR_small_implicit.dcm" if implicit else "MR_small.dcm"])
        for keyword, value in attrs.items():
            if value is None:
                delattr(ds, keyword)
            else:
                setattr(ds, keyword, value)
        if name in luts:
            keyword, descriptor, values, vr = luts[name]
            setattr(ds, keyword, [_lut_item(descriptor, values, vr)])
        path = tmp / f"MR_small-{name}.dcm"
        ds.save_as(path)
        out.append(path)
    return out


def test_dicom_pixels_are_the_engines(reader: Any, tmp_path: Path) -> None:
    readable, refused, same, worst = 0, [], [], 0.0
    for path in _pydicom_examples() + _variants(tmp_path):
        try:
            engine, meta = read_with_metadata(path)
        except ImageReadError:
            continue  # the engine refuses it too
        readable += 1
        got = _decode(reader, path)
        if "error" in got:
            reason = got["error"]
            assert got["refusal"] and ("compressed" in reason or "not read in the browser" in reason
                                       or "does not apply" in reason), (path.name, reason)
            refused.append(path.name)
            continue
        assert got["pixels"].shape == engine.shape, path.name
        diff = float(np.abs(got["pixels"] - engine).max())
        assert diff <= PIXEL_TOLERANCE, (path.name, got["note"], diff)
        assert got["note"].split("; ")[0] == meta["intensity"], path.name  # by the same rule, not by chance
        same.append(path.name)
        worst = max(worst, diff)
    examples = [n for n in same if not n.startswith("MR_small-")]
    print(f"\nDICOM: {len(same)} of {readable} files the engine reads decoded identically by the page "
          f"(max |Δ| {worst:.1e}; {len(examples)} of them pydicom's examples, {len(same) - len(examples)} variants); "
          f"refused with a message: {len(refused)} ({', '.join(sorted(refused))})")
    assert len(examples) >= MIN_DICOM_FILES


# --------------------------------------------------------------------------- PNG


def _png(path: Path, pixels: np.ndarray, colour: int, depth: int, palette: bytes | None = None,
         interlace: bool = False) -> Path:
    """A PNG written by hand (Pillow writes neither Adam7 nor every depth), each row with another filter."""
    height, width = pixels.shape[:2]
    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[colour]
    samples = pixels.reshape(height, width, channels)
    bpp = max(1, channels * depth // 8)

    def rows(block: np.ndarray) -> bytes:
        out, prev = b"", None
        for y, row in enumerate(block):
            if depth == 16:
                raw = row.astype(">u2").tobytes()
            elif depth == 8:
                raw = row.astype(np.uint8).tobytes()
            else:
                raw = np.packbits(np.unpackbits(row.astype(np.uint8).reshape(-1, 1), axis=1)[:, 8 - depth:].ravel()).tobytes()
            line, up, kind = np.frombuffer(raw, np.uint8).astype(int), np.zeros(len(raw), int) if prev is None else prev, y % 5
            left = np.concatenate([np.zeros(bpp, int), line[:-bpp]])
            upleft = np.concatenate([np.zeros(bpp, int), up[:-bpp]])
            p = left + up - upleft
            paeth = np.where((abs(p - left) <= abs(p - up)) & (abs(p - left) <= abs(p - upleft)), left,
                             np.where(abs(p - up) <= abs(p - upleft), up, upleft))
            predictor = [0, left, up, (left + up) // 2, paeth][kind]
            out += bytes([kind]) + ((line - predictor) % 256).astype(np.uint8).tobytes()
            prev = line
        return out

    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
    data = b"".join(rows(samples[y0::dy, x0::dx]) for x0, y0, dx, dy in passes
                    if samples[y0::dy, x0::dx].size) if interlace else rows(samples)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    head = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, int(interlace))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + (chunk(b"PLTE", palette) if palette else b"")
                     + chunk(b"IDAT", zlib.compress(data)) + chunk(b"IEND", b""))
    return path


def _png_cases(tmp: Path) -> dict[str, Path]:
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:70, 0:90]
    disc = ((yy - 35) / 30) ** 2 + ((xx - 45) / 40) ** 2 < 1
    rgba = rng.integers(0, 256, (70, 90, 4))
    rgba[..., 3] = np.where(disc, rng.integers(1, 255, (70, 90)), 0)  # transparent outside, translucent inside
    palette = bytes(rng.integers(0, 256, 3 * 100).astype(np.uint8))  # 100 entries: indices past it read black
    cases = {"rgba8.png": tmp / "rgba8.png"}
    Image.fromarray(rgba.astype(np.uint8), "RGBA").save(cases["rgba8.png"])
    cases["rgba16.png"] = _png(tmp / "rgba16.png", rng.integers(0, 65536, (70, 90, 4)), 6, 16)
    cases["rgb16-adam7.png"] = _png(tmp / "rgb16-adam7.png", rng.integers(0, 65536, (37, 41, 3)), 2, 16, interlace=True)
    cases["rgb8-adam7.png"] = _png(tmp / "rgb8-adam7.png", rng.integers(0, 256, (50, 33, 3)), 2, 8, interlace=True)
    cases["grey16.png"] = _png(tmp / "grey16.png", rng.integers(0, 65536, (40, 64)), 0, 16)
    cases["grey-alpha8.png"] = _png(tmp / "grey-alpha8.png", rng.integers(0, 256, (40, 64, 2)), 4, 8)
    cases["grey-alpha16.png"] = _png(tmp / "grey-alpha16.png", rng.integers(0, 65536, (40, 64, 2)), 4, 16)
    for depth in (1, 2, 4):
        cases[f"grey{depth}.png"] = _png(tmp / f"grey{depth}.png", rng.integers(0, 2 ** depth, (45, 50)), 0, depth)
    cases["palette4.png"] = _png(tmp / "palette4.png", rng.integers(0, 16, (45, 50)), 3, 4, palette=palette[:48])
    cases["palette8.png"] = _png(tmp / "palette8.png", rng.integers(0, 256, (45, 50)), 3, 8, palette=palette)
    Image.fromarray(rgba.astype(np.uint8), "RGBA").convert("P").save(tmp / "pil-palette.png", transparency=0)
    cases["pil-palette.png"] = tmp / "pil-palette.png"
    return cases


def _onnx_probabilities(model: str, pixels: np.ndarray) -> np.ndarray:
    ort = pytest.importorskip("onnxruntime")
    onnx = gzip.decompress((EXPORTS / "export" / "quick" / f"{model}.onnx.gz").read_bytes())
    session = ort.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    logits = session.run(None, {"image": pixels})[0][0].astype(np.float64)
    e = np.exp(logits - logits.max())
    return e / e.sum()


def test_every_png_mode_converts_as_the_engine_and_rgba_predicts_as_pytorch_export(
        reader: Any, browser: Any, server: str, tmp_path: Path) -> None:
    cases = _png_cases(tmp_path)
    for name, path in cases.items():
        got = _decode(reader, path, prepare=name == "rgba8.png")
        assert "error" not in got, (name, got)
        engine = read_image(path)
        assert got["pixels"].shape == engine.shape and float(np.abs(got["pixels"] - engine).max()) <= PIXEL_TOLERANCE, name
    rgba = _decode(reader, cases["rgba8.png"], prepare=True)
    root = reader.evaluate("() => Object.assign({}, document.getElementById('medbench-demo').dataset)")
    size, chans, mean, std = int(root["size"]), int(root["chans"]), np.float32(root["mean"]), np.float32(root["std"])
    engine_input = np.repeat(((load_image(cases["rgba8.png"], size) - mean) / std)[None], chans, axis=0)
    assert float(np.abs(rgba["input"] - engine_input.ravel()).max()) <= 1e-5

    page = browser.new_page()
    try:
        page.goto(f"{server}/demo.html")
        page.wait_for_selector("#medbench-demo[data-state=done]", timeout=120_000)
        page.set_input_files("[data-demo-file]", str(cases["rgba8.png"]))
        page.wait_for_selector('#medbench-demo[data-state=done][data-input="file"]', timeout=120_000)
        row = page.query_selector("tr[data-demo-model][data-top]")
        shown = np.array([float(p) for p in row.get_attribute("data-probs").split()])
        model = row.get_attribute("data-name")
    finally:
        page.close()
    expected = _onnx_probabilities(model, engine_input[None].astype(np.float32))
    print(f"\nRGBA PNG: {len(cases)} PNG modes read as Pillow reads them; {model} in the "
          f"browser vs onnxruntime on the engine's input: max |Δp| {np.abs(shown - expected).max():.1e}")
    assert int(shown.argmax()) == int(expected.argmax()) and np.abs(shown - expected).max() <= 1e-4


# --------------------------------------------------------------------------- loading and refusals


def _largest_model(built_site: Path) -> tuple[str, str]:  # noqa: F811
    """The model whose script is largest (the worst first prediction), and another."""
    scripts = {p.stem: p.stat().st_size for p in (built_site / "assets" / "demo" / "models").glob("*.js")}
    text = (built_site / "demo.html").read_text()
    names = {n.replace("_", "-"): n for n in set(re.findall(r'data-demo-model data-name="([^"]+)"', text))}
    ordered = sorted(names, key=lambda slug: -scripts[slug])
    return names[ordered[0]], names[ordered[-1]]


def test_one_model_loads_and_its_first_prediction_transfer_is_measured(
        built_site: Path, browser: Any, server: str) -> None:  # noqa: F811
    largest, other = _largest_model(built_site)
    context = browser.new_context()  # nothing from another test's cache
    transferred: dict[str, int] = {}
    try:
        page = context.new_page()
        page.on("requestfinished", lambda r: transferred.__setitem__(
            r.url, r.sizes()["responseBodySize"] + r.sizes()["responseHeadersSize"]) if r.url.startswith(server) else None)
        page.goto(f"{server}/demo.html#model={largest}")  # the heaviest first prediction
        page.wait_for_selector('#medbench-demo[data-state=done][data-input^="sample-"]', timeout=120_000)
        first = dict(transferred)
        chosen = page.eval_on_selector("[data-demo-choose]", "s => s.value")
        models = [u for u in first if "/assets/demo/models/" in u]
        page.select_option("[data-demo-choose]", other)
        page.wait_for_selector(f'tr[data-demo-model][data-name="{other}"][data-top]', timeout=120_000)
        both = {r.get_attribute("data-name") for r in page.query_selector_all("tr[data-demo-model][data-top]")}
    finally:
        context.close()
    total = sum(first.values())
    heaviest = sorted(first.items(), key=lambda kv: -kv[1])[:3]
    report = {"page": "demo.html", "model": chosen, "bytes": total, "limit_bytes": FIRST_PREDICTION_LIMIT,
              "files": {u.removeprefix(server): n for u, n in sorted(first.items())}}
    if os.environ.get("MEDBENCH_SCREENSHOTS"):
        Path(os.environ["MEDBENCH_SCREENSHOTS"]).mkdir(parents=True, exist_ok=True)
        (Path(os.environ["MEDBENCH_SCREENSHOTS"]) / "demo_transfer.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"\ndemo: first prediction ({chosen}) after {total / 1e6:.2f} MB in {len(first)} requests over http; "
          "largest: " + ", ".join(f"{u.rsplit('/', 1)[-1]} {n / 1e6:.2f} MB" for u, n in heaviest))
    assert chosen == largest and len(models) == 1 and models[0].endswith(f"/{largest.replace('_', '-')}.js"), models
    assert not [u for u in first if "dicom" in u.lower()], "DICOM support loads before a DICOM file arrives"
    assert total <= FIRST_PREDICTION_LIMIT
    assert both == {largest, other}  # each chosen model ran on the sample


def test_refusals_clear_the_predictions(browser: Any, server: str, tmp_path: Path) -> None:
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.full((20, 40), 128, np.uint8)).save(tiny)
    notes = tmp_path / "notes.png"
    notes.write_text("not an image")
    errors: list[str] = []
    page = browser.new_page()
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    try:
        page.goto(f"{server}/demo.html")
        page.wait_for_selector("#medbench-demo[data-state=done]", timeout=120_000)
        for path, message in ((tiny, "this image is 40 × 20 pixels"), (notes, "not a PNG, JPEG or DICOM file")):
            assert page.query_selector_all("tr[data-demo-model][data-probs]"), "a prediction to clear"
            page.set_input_files("[data-demo-file]", str(path))
            page.wait_for_selector("#medbench-demo[data-state=error]", timeout=60_000)
            assert message in page.inner_text("[data-demo-status]")
            assert page.query_selector_all("tr[data-demo-model][data-probs]") == []
            assert page.get_attribute("#medbench-demo", "data-input") is None
            assert page.query_selector('tr[data-demo-model] [data-cell="top"]').inner_text() == "—"
            page.click("[data-demo-sample]")  # the page recovers
            page.wait_for_selector('#medbench-demo[data-state=done][data-input^="sample-"]', timeout=60_000)
        dicom = next(p for p in _pydicom_examples() if p.name == "MR_small.dcm")
        page.set_input_files("[data-demo-file]", str(dicom))
        page.wait_for_selector('#medbench-demo[data-state=done][data-input="file"]', timeout=60_000)
        assert "DICOM, 64 × 64" in page.inner_text("[data-demo-truth]")
    finally:
        page.close()
    assert errors == [], errors  # a refusal is no fault of the page
