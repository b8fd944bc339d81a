/* MedViT-Bench site script, loaded on every page after the page's libraries (main.html).
 * Each part does nothing on a page that did not load its library.
 *
 *  - Tables: in every `article table:not([class])`, a column whose body cells all start with a
 *    number ("0.881", "1.43 M", "0.867–0.896", "1,426", "0.881 ± 0.004 (2)") or are missing
 *    ("—", "–", "-", empty) is numeric: its th and td get data-medbench-numeric (every page).
 *    With tablesort loaded the tables become sortable (click or Enter on a header); a numeric
 *    column sorts by the leading number ("1.43 M" = 1.43e6, "1,426" = 1426), missing cells last
 *    in both directions; other columns use tablesort's detection (its number sort, else text).
 *  - Maths (KaTeX): renders the \( \) and \[ \] that pymdownx.arithmatex (generic) leaves in
 *    `.arithmatex` elements.
 *  - Charts (plotly): every rendered chart (`.js-plotly-plot`) takes the page's palette: paper and
 *    plot background = the page background, font = the text colour, axis grid and lines muted.
 *    Done on load, after each chart is (re)drawn, and whenever body's data-md-color-scheme
 *    changes (the palette toggle), without a reload.
 * Runs on Material's document$ (once per page, and after each instant navigation). */
(function () {
  "use strict";

  function onDocument(fn) {
    if (typeof document$ !== "undefined" && document$.subscribe) {
      document$.subscribe(function () { fn(); });
    } else if (document.readyState === "loading") {
      document.addEventListener("DOMContentLoaded", fn);
    } else {
      fn();
    }
  }

  /* ---------------------------------------------------------------- tables */

  var MISSING = /^(?:[—–\-−]*|n\/?a|none)$/i;
  // A leading number: sign, digits with optional thousands commas, decimals, exponent, then an
  // optional SI multiplier written as a lone letter ("1.43 M", "950 k").
  var LEADING = /^([+\-−]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+\-]?\d+)?)(?:\s*([kMGT])(?![A-Za-z]))?/;
  var SI = { k: 1e3, M: 1e6, G: 1e9, T: 1e12 };

  /* The cell's leading number, or null for a missing or non-numeric cell. */
  function leadingNumber(text) {
    var s = String(text).trim();
    if (MISSING.test(s)) return null;
    var m = LEADING.exec(s);
    if (!m || !/\d/.test(m[1])) return null;
    var x = parseFloat(m[1].replace(/,/g, "").replace("−", "-"));
    if (!isFinite(x)) return null;
    return m[2] ? x * SI[m[2]] : x;
  }

  function cellText(cell) {
    if (!cell) return "";
    if (cell.hasAttribute("data-sort")) return cell.getAttribute("data-sort");
    return cell.textContent || "";
  }

  var sortingHeader = null;  // the header being sorted, so the comparator knows the direction

  function setUpTablesort() {
    if (Tablesort.__medbench) return;
    Tablesort.__medbench = true;
    var sortTable = Tablesort.prototype.sortTable;
    Tablesort.prototype.sortTable = function (header, update) {
      sortingHeader = header;
      try {
        return sortTable.call(this, header, update);
      } finally {
        sortingHeader = null;
      }
    };
    // Chosen explicitly (data-sort-method) by tables(), never by tablesort's detection.
    Tablesort.extend("medbench-number", function () { return false; }, function (a, b) {
      var x = leadingNumber(a), y = leadingNumber(b);
      if (x === null || y === null) {
        if (x === y) return 0;
        // tablesort keeps this comparator's order when descending and reverses it when
        // ascending; missing cells go last either way.
        var descending = sortingHeader && sortingHeader.getAttribute("aria-sort") === "descending";
        var aLast = x === null ? 1 : -1;
        return descending ? aLast : -aLast;
      }
      return y - x;  // the convention of tablesort's own number sort
    });
  }

  /* Mark each numeric column (every body cell a leading number or missing, at least one number):
   * its header and cells get data-medbench-numeric (medbench.css keeps them on one line). */
  function markNumericColumns(table) {
    if (table.hasAttribute("data-medbench-columns")) return;
    table.setAttribute("data-medbench-columns", "");
    var head = table.tHead && table.tHead.rows.length
      ? table.tHead.rows[table.tHead.rows.length - 1] : null;
    var body = table.tBodies[0];
    if (!head || !body) return;
    for (var c = 0; c < head.cells.length; c++) {
      var numbers = 0, other = 0, r, cell;
      for (r = 0; r < body.rows.length; r++) {
        var text = cellText(body.rows[r].cells[c]).trim();
        if (MISSING.test(text)) continue;
        if (leadingNumber(text) === null) other++; else numbers++;
      }
      if (numbers === 0 || other > 0) continue;
      head.cells[c].setAttribute("data-medbench-numeric", "");
      for (r = 0; r < body.rows.length; r++) {
        cell = body.rows[r].cells[c];
        if (cell) cell.setAttribute("data-medbench-numeric", "");
      }
    }
  }

  function articleTables() {
    return document.querySelectorAll("article table:not([class])");
  }

  /* Every page: numeric columns. Pages with tablesort: sortable tables, numeric columns by
   * their leading number (unless a header names its own data-sort-method). */
  function tables() {
    articleTables().forEach(markNumericColumns);
    if (typeof Tablesort === "undefined") return;
    setUpTablesort();
    articleTables().forEach(function (table) {
      if (table.hasAttribute("data-medbench-sortable")) return;
      table.setAttribute("data-medbench-sortable", "");
      var head = table.tHead && table.tHead.rows.length
        ? table.tHead.rows[table.tHead.rows.length - 1] : null;
      if (head) {
        [].forEach.call(head.cells, function (th) {
          if (th.hasAttribute("data-medbench-numeric") && !th.hasAttribute("data-sort-method")) {
            th.setAttribute("data-sort-method", "medbench-number");
          }
        });
      }
      new Tablesort(table);
    });
  }

  /* ----------------------------------------------------------------- maths */

  function renderMaths() {
    if (typeof renderMathInElement === "undefined") return;
    document.querySelectorAll(".arithmatex").forEach(function (el) {
      renderMathInElement(el, {
        delimiters: [
          { left: "\\(", right: "\\)", display: false },
          { left: "\\[", right: "\\]", display: true }
        ],
        throwOnError: false
      });
    });
  }

  /* ---------------------------------------------------------------- charts */

  /* A CSS colour (may use the palette's variables) resolved to rgb()/rgba(). */
  function resolveColor(css) {
    var probe = document.createElement("span");
    probe.style.display = "none";
    probe.style.color = css;
    document.body.appendChild(probe);
    var color = getComputedStyle(probe).color;
    probe.remove();
    return color;
  }

  function chartTheme() {
    var body = document.body;
    var bg = getComputedStyle(body).backgroundColor;
    if (!bg || bg === "transparent" || bg === "rgba(0, 0, 0, 0)") {
      bg = resolveColor("var(--md-default-bg-color, #fff)");
    }
    return {
      bg: bg,
      fg: resolveColor("var(--md-typeset-color, var(--md-default-fg-color, #000))"),
      grid: resolveColor("var(--md-default-fg-color--lightest, rgba(0, 0, 0, 0.07))"),
      line: resolveColor("var(--md-default-fg-color--lighter, rgba(0, 0, 0, 0.32))")
    };
  }

  /* The layout changes that give `gd` the theme; empty when it has them already. Compared with
   * the chart's own layout (what relayout writes), not the computed one, which normalises or
   * drops some attributes (a zerolinecolor without a zeroline): the check must settle. */
  function themeUpdate(gd, theme) {
    var layout = gd.layout || {};
    var full = gd._fullLayout;
    var update = {};
    if (layout.paper_bgcolor !== theme.bg) update.paper_bgcolor = theme.bg;
    if (layout.plot_bgcolor !== theme.bg) update.plot_bgcolor = theme.bg;
    if (!layout.font || layout.font.color !== theme.fg) update["font.color"] = theme.fg;
    Object.keys(full).forEach(function (key) {
      if (!/^[xy]axis\d*$/.test(key)) return;
      var axis = layout[key] || {};
      if (axis.gridcolor !== theme.grid) update[key + ".gridcolor"] = theme.grid;
      if (axis.linecolor !== theme.line) update[key + ".linecolor"] = theme.line;
      if (full[key].zeroline && axis.zerolinecolor !== theme.line) update[key + ".zerolinecolor"] = theme.line;
    });
    return update;
  }

  function themeChart(gd, theme) {
    // Not drawn yet (or being torn down): plotly_afterplot brings it back here once drawn.
    if (!gd._fullLayout || !gd._fullLayout._paper || gd.__medbenchRelayout || !window.Plotly) return;
    var update = themeUpdate(gd, theme || chartTheme());
    if (!Object.keys(update).length) return;
    gd.__medbenchRelayout = true;
    // Once done, check again: the palette may have changed while this relayout ran.
    var done = function () { gd.__medbenchRelayout = false; themeChart(gd); };
    try {
      var result = Plotly.relayout(gd, update);
      var failed = function () { gd.__medbenchRelayout = false; };
      if (result && result.then) result.then(done, failed); else done();
    } catch (e) {
      gd.__medbenchRelayout = false;
      throw e;
    }
  }

  function themeCharts() {
    if (typeof Plotly === "undefined") return;
    var theme = chartTheme();
    document.querySelectorAll(".js-plotly-plot").forEach(function (gd) {
      if (!gd.__medbenchThemed && typeof gd.on === "function") {
        gd.__medbenchThemed = true;
        // After each redraw (a resize or a legend click redraws from the layout, which now
        // holds the theme, so this usually finds nothing to change).
        gd.on("plotly_afterplot", function () { themeChart(gd); });
      }
      themeChart(gd, theme);
    });
  }

  var schemeObserver = null;

  function followPalette() {
    if (typeof Plotly === "undefined") return;
    themeCharts();
    if (schemeObserver) return;
    // The toggle sets the attributes on body; getComputedStyle then already sees the new
    // palette, so the charts change in the same frame.
    schemeObserver = new MutationObserver(themeCharts);
    schemeObserver.observe(document.body, {
      attributes: true,
      attributeFilter: ["data-md-color-scheme", "data-md-color-primary", "data-md-color-accent"]
    });
  }

  // A table wider than its column says so: a hint above it, and a shadow on the side that
  // has more columns, updated as it scrolls and as the window resizes.
  function markScrollingTables() {
    document.querySelectorAll(".md-typeset__scrollwrap").forEach(function (wrap) {
      var hint = wrap.previousElementSibling;
      if (!hint || !hint.classList.contains("medbench-scroll-hint")) {
        hint = document.createElement("p");
        hint.className = "medbench-scroll-hint";
        hint.textContent = "Scroll sideways for more columns \u2192";
        wrap.parentNode.insertBefore(hint, wrap);
      }
      var update = function () {
        var overflow = wrap.scrollWidth - wrap.clientWidth > 1;
        hint.hidden = !overflow;
        wrap.classList.toggle("medbench-more-right", overflow && wrap.scrollWidth - wrap.clientWidth - wrap.scrollLeft > 1);
        wrap.classList.toggle("medbench-more-left", overflow && wrap.scrollLeft > 1);
      };
      if (!wrap.__medbenchScroll) {
        wrap.__medbenchScroll = true;
        wrap.addEventListener("scroll", update, { passive: true });
        window.addEventListener("resize", update);
      }
      update();
    });
  }

  onDocument(function () {
    tables();
    renderMaths();
    followPalette();
    markScrollingTables();
  });
})();
