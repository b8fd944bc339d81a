// Gallery filters, plain JS: each .medbench-filters block names its gallery (data-target);
// its <select data-filter="x"> menus keep the figures whose data-x matches ("" = any; a
// figure whose data-x is "either" matches every choice).
(function () {
  function apply(filters) {
    var gallery = document.getElementById(filters.getAttribute("data-target"));
    if (!gallery) return;
    var wanted = {};
    filters.querySelectorAll("select[data-filter]").forEach(function (select) {
      wanted[select.getAttribute("data-filter")] = select.value;
    });
    var shown = 0;
    gallery.querySelectorAll("[data-item]").forEach(function (item) {
      var match = Object.keys(wanted).every(function (key) {
        var value = item.getAttribute("data-" + key);
        return !wanted[key] || value === wanted[key] || value === "either";
      });
      item.hidden = !match;
      if (match) shown += 1;
    });
    var count = filters.querySelector("[data-count]");
    if (count) count.textContent = shown + " shown";
  }
  function setup() {
    document.querySelectorAll(".medbench-filters").forEach(function (filters) {
      if (filters.getAttribute("data-ready")) return;
      filters.setAttribute("data-ready", "1");
      filters.querySelectorAll("select[data-filter]").forEach(function (select) {
        select.addEventListener("change", function () { apply(filters); });
      });
      apply(filters);
    });
  }
  if (typeof document$ !== "undefined") document$.subscribe(setup);
  else document.addEventListener("DOMContentLoaded", setup);
})();
