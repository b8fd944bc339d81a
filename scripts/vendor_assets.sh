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
set -euo pipefail

PLOTLY_VERSION=4.1.1
KATEX_VERSION=0.19.1
TABLESORT_VERSION=5.7.1

# sha256 of the npm tarballs (npm pack <package>@<version>).
declare -A SHA256=(
  [plotly.js-cartesian-dist-min-$PLOTLY_VERSION.tgz]=c5f9a84666b97e571a04de689e09319869e60900e265c89eac2f71d0b5a0de88
  [katex-$KATEX_VERSION.tgz]=24da5a599eb2fcede2e270b99a6ff48bca816beecc95feeb84e8cccbd1bb34fd
  [tablesort-$TABLESORT_VERSION.tgz]=6d6b645f34dab5d383dfbe084b299aac2b9b633bee789a1eb66b502ed06068d3
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

echo "vendor_assets: done: $(du -sh "$vendor" | cut -f1) in ${vendor#"$root"/}"
