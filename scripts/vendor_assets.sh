#!/usr/bin/env bash
# Vendor the report site's front-end libraries from the npm registry into
# templates/theme/assets/vendor/<package>/, each with its licence beside it. MkDocs copies the
# theme's static files into the built site, so the site requests nothing from other hosts and
# works from file://. Run from anywhere; needs npm, tar and sha256sum. Re-running it rebuilds
# templates/theme/assets/vendor/ exactly (the tarballs are pinned by version and checksum).
#
#   plotly.js-cartesian-dist-min  must stay the version of plotly.js inside the pinned Python
#                                 plotly (requirements-site.txt: plotly==7.1.0 ships 4.1.1):
#                                 the charts' JSON is written by that plotly.
#   katex                         only the woff2 fonts are kept; the copied katex.min.css is
#                                 rewritten to reference only them (every browser the site
#                                 targets reads woff2). The script checks the result.
#   tablesort                     upstream names its licence LICENCE; it is copied as LICENSE.
#   onnxruntime-web               the demo page's runtime (single-threaded WASM backend). file://
#                                 forbids fetch() and module imports of local files, so the WASM
#                                 binary (xz-compressed: 2.2 MB where gzip -9 gives 3.7) and its
#                                 Emscripten glue module ship as base64 in one classic script,
#                                 ort-wasm-simd-threaded.js; demo.js decompresses the binary into
#                                 env.wasm.wasmBinary and imports the glue from a blob: URL. Only
#                                 ort.wasm.min.js is kept as is. The npm package has no licence file
#                                 (package.json: MIT): upstream's LICENSE is written below, with a
#                                 NOTICE naming the WASM's third-party components.
#   xz-decompress                 decompresses that binary in the browser (xz-embedded in WASM, which
#                                 the script carries inline). Its UMD build is kept as is; the npm
#                                 package has no licence file (package.json: MIT): the licences its
#                                 header names are written below.
#   dicom-parser                  reads a DICOM file dropped on the demo page (loaded only then).
#                                 Needs xz (XZ Utils) besides npm, tar and sha256sum.
set -euo pipefail

PLOTLY_VERSION=4.1.1
KATEX_VERSION=0.19.1
TABLESORT_VERSION=5.7.1
ORT_WEB_VERSION=1.30.0  # the same version as the pinned Python onnxruntime (requirements.txt)
XZ_DECOMPRESS_VERSION=0.2.3
DICOM_PARSER_VERSION=1.8.21

# sha256 of the npm tarballs (npm pack <package>@<version>).
declare -A SHA256=(
  [plotly.js-cartesian-dist-min-$PLOTLY_VERSION.tgz]=c5f9a84666b97e571a04de689e09319869e60900e265c89eac2f71d0b5a0de88
  [katex-$KATEX_VERSION.tgz]=24da5a599eb2fcede2e270b99a6ff48bca816beecc95feeb84e8cccbd1bb34fd
  [tablesort-$TABLESORT_VERSION.tgz]=6d6b645f34dab5d383dfbe084b299aac2b9b633bee789a1eb66b502ed06068d3
  [onnxruntime-web-$ORT_WEB_VERSION.tgz]=d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71
  [xz-decompress-$XZ_DECOMPRESS_VERSION.tgz]=b590b7ea774bd82e812d74c572d6c9fcd4abef4da752c974e8d335439f63e69c
  [dicom-parser-$DICOM_PARSER_VERSION.tgz]=8d4656b35d15174bc549b69a42d78cde60c0b73fcc72bf80c47ffcacd9bd4ca9
)

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/templates/theme/assets/vendor"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# fetch <package> <version>: npm pack into $tmp, check the checksum, extract to $tmp/<package>/
fetch() {
  local pkg="$1" version="$2" tarball
  tarball="$(cd "$tmp" && npm pack --silent "$pkg@$version" 2>/dev/null | tail -n 1)"
  local want="${SHA256[$tarball]:-}"
  [[ -n "$want" ]] || { echo "vendor_assets: unexpected tarball name '$tarball' for $pkg@$version" >&2; exit 1; }
  echo "$want  $tmp/$tarball" | sha256sum --check --quiet - \
    || { echo "vendor_assets: checksum mismatch for $tarball" >&2; exit 1; }
  mkdir -p "$tmp/$pkg"
  tar -xzf "$tmp/$tarball" -C "$tmp/$pkg"
  echo "vendor_assets: $pkg@$version"
}

rm -rf "$vendor"
mkdir -p "$vendor"

# plotly.js, cartesian partial bundle (scatter, bar, heatmap, box, histogram, contour, ...)
fetch plotly.js-cartesian-dist-min "$PLOTLY_VERSION"
src="$tmp/plotly.js-cartesian-dist-min/package"
dst="$vendor/plotly.js-cartesian-dist-min"
mkdir -p "$dst"
cp "$src/plotly-cartesian.min.js" "$src/LICENSE" "$dst/"
head -c 200 "$dst/plotly-cartesian.min.js" | grep -q "v$PLOTLY_VERSION" \
  || { echo "vendor_assets: plotly-cartesian.min.js is not v$PLOTLY_VERSION" >&2; exit 1; }

# KaTeX: the library, its stylesheet, auto-render and the woff2 fonts
fetch katex "$KATEX_VERSION"
src="$tmp/katex/package"
dst="$vendor/katex"
mkdir -p "$dst/contrib" "$dst/fonts"
cp "$src/dist/katex.min.js" "$src/LICENSE" "$dst/"
cp "$src/dist/contrib/auto-render.min.js" "$dst/contrib/"
cp "$src/dist/fonts/"*.woff2 "$dst/fonts/"
# Each @font-face lists woff2, woff, ttf in that order: drop the woff and ttf entries.
sed -E 's#,url\(fonts/[A-Za-z0-9_-]+\.woff\) format\("woff"\),url\(fonts/[A-Za-z0-9_-]+\.ttf\) format\("truetype"\)##g' \
  "$src/dist/katex.min.css" > "$dst/katex.min.css"
faces="$(grep -o '@font-face' "$dst/katex.min.css" | wc -l)"
urls="$(grep -o 'url([^)]*)' "$dst/katex.min.css" | sort -u)"
[[ "$faces" -gt 0 && "$(wc -l <<<"$urls")" -eq "$faces" ]] \
  || { echo "vendor_assets: katex.min.css: $faces @font-face rules but other url()s remain" >&2; exit 1; }
while read -r u; do
  f="${u#url(}"; f="${f%)}"
  [[ "$f" == fonts/*.woff2 && -f "$dst/$f" ]] \
    || { echo "vendor_assets: katex.min.css references $f, which is not vendored" >&2; exit 1; }
done <<<"$urls"

# tablesort and its number sort
fetch tablesort "$TABLESORT_VERSION"
src="$tmp/tablesort/package"
dst="$vendor/tablesort"
mkdir -p "$dst/sorts"
cp "$src/dist/tablesort.min.js" "$dst/"
cp "$src/dist/sorts/tablesort.number.min.js" "$dst/sorts/"
cp "$src/LICENCE" "$dst/LICENSE"

# onnxruntime-web: the WASM build's loader, and its glue + binary as one base64 script
fetch onnxruntime-web "$ORT_WEB_VERSION"
src="$tmp/onnxruntime-web/package"
dst="$vendor/onnxruntime-web"
mkdir -p "$dst"
grep -q '"license": "MIT"' "$src/package.json" \
  || { echo "vendor_assets: onnxruntime-web@$ORT_WEB_VERSION is no longer MIT-licensed; check LICENSE" >&2; exit 1; }
# the source map is not vendored: drop the comment that would make developer tools request it
sed '/^\/\/# sourceMappingURL=/d' "$src/dist/ort.wasm.min.js" > "$dst/ort.wasm.min.js"
head -c 200 "$dst/ort.wasm.min.js" | grep -q "ONNX Runtime Web v$ORT_WEB_VERSION" \
  || { echo "vendor_assets: ort.wasm.min.js is not v$ORT_WEB_VERSION" >&2; exit 1; }
{
  printf '// onnxruntime-web %s: dist/ort-wasm-simd-threaded.mjs (base64) and dist/ort-wasm-simd-threaded.wasm\n' "$ORT_WEB_VERSION"
  printf '// (xz -9e, CRC32 check, base64), for pages opened from file:// (scripts/vendor_assets.sh). MIT licence: LICENSE.\n'
  printf 'window.MEDBENCH_ORT = {"version": "%s", "mjs": "' "$ORT_WEB_VERSION"
  base64 -w0 "$src/dist/ort-wasm-simd-threaded.mjs"
  printf '", "wasmXz": "'
  xz -9e --check=crc32 --threads=1 -c "$src/dist/ort-wasm-simd-threaded.wasm" | base64 -w0
  printf '"};\n'
} > "$dst/ort-wasm-simd-threaded.js"
cat > "$dst/LICENSE" <<'LICENSE'
MIT License

Copyright (c) 2018 - present Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
LICENSE
cat > "$dst/NOTICE" <<NOTICE
onnxruntime-web $ORT_WEB_VERSION (npm), MIT licence (LICENSE, the text of the upstream repository's
LICENSE; the npm package ships none). Its WebAssembly binary contains third-party components
(ONNX, Protocol Buffers, Abseil, Eigen, FlatBuffers, and others), listed with their licences in
https://github.com/microsoft/onnxruntime/blob/v$ORT_WEB_VERSION/ThirdPartyNotices.txt
NOTICE

# xz-decompress: its UMD build (window["xz-decompress"].XzReadableStream), the WASM inline
fetch xz-decompress "$XZ_DECOMPRESS_VERSION"
src="$tmp/xz-decompress/package"
dst="$vendor/xz-decompress"
mkdir -p "$dst"
grep -q '"license": "MIT"' "$src/package.json" \
  || { echo "vendor_assets: xz-decompress@$XZ_DECOMPRESS_VERSION is no longer MIT-licensed; check LICENSE" >&2; exit 1; }
cp "$src/dist/package/xz-decompress.min.js" "$dst/"
cat > "$dst/LICENSE" <<'LICENSE'
xz-decompress (npm), MIT licence, as its package.json states; the npm package ships no licence file.
Its header names the work it contains:

- xz-decompress (c) Tim Perry (https://github.com/httptoolkit/xz-decompress), a fork of
  xzwasm (c) Steve Sanderson (https://github.com/SteveSanderson/xzwasm): MIT licence, below;
- walloc (c) 2020 Igalia, S.L. (https://github.com/wingo/walloc): MIT licence, below;
- xz-embedded by Lasse Collin and Igor Pavlov (https://tukaani.org/xz/embedded.html): public domain.

MIT License

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
LICENSE

# dicom-parser: the minified UMD build (window.dicomParser) and its licence
fetch dicom-parser "$DICOM_PARSER_VERSION"
src="$tmp/dicom-parser/package"
dst="$vendor/dicom-parser"
mkdir -p "$dst"
sed '/^\/\/# sourceMappingURL=/d' "$src/dist/dicomParser.min.js" > "$dst/dicomParser.min.js"
cp "$src/LICENSE" "$dst/"

echo "vendor_assets: done: $(du -sh "$vendor" | cut -f1) in ${vendor#"$root"/}"
