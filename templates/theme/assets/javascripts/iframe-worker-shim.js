/* Search from file:// without a network: Chromium refuses `new Worker(file://...)`, and the
 * offline plugin's fix is a script on a CDN. This shim runs a worker script in a hidden
 * same-origin iframe instead, forwarding messages both ways. Its name contains
 * "iframe-worker" so that Material's offline plugin does not add its CDN copy. It does
 * nothing on http(s), where real workers work. */
(function () {
  "use strict";
  if (location.protocol !== "file:") return;

  function loadScript(doc, url) {
    return new Promise(function (resolve, reject) {
      var script = doc.createElement("script");
      script.src = new URL(url, location.href).href;
      script.onload = resolve;
      script.onerror = function () { reject(new Error("cannot load " + script.src)); };
      doc.head.appendChild(script);
    });
  }

  function IFrameWorker(url) {
    var target = new EventTarget();
    var self = this;
    var pending = [];
    var frame = document.createElement("iframe");
    var win = null;
    this.onmessage = null;
    this.onerror = null;
    this.addEventListener = target.addEventListener.bind(target);
    this.removeEventListener = target.removeEventListener.bind(target);

    function emit(type, init) {
      var event = type === "message" ? new MessageEvent(type, init) : new ErrorEvent(type, init);
      target.dispatchEvent(event);
      var handler = self["on" + type];
      if (typeof handler === "function") handler.call(self, event);
    }
    function deliver(data) {
      win.dispatchEvent(new win.MessageEvent("message", { data: structuredClone(data) }));
    }

    this.postMessage = function (data) {
      if (pending) pending.push(data);
      else deliver(data);
    };
    this.terminate = function () {
      frame.remove();
      pending = [];
    };

    frame.hidden = true;
    frame.srcdoc = "<!doctype html><html><head></head><body></body></html>";
    frame.addEventListener("load", function () {
      win = frame.contentWindow;
      // The worker's global API, on the iframe's window.
      win.postMessage = function (data) {
        setTimeout(function () { emit("message", { data: structuredClone(data) }); }, 0);
      };
      win.importScripts = function () {
        var urls = Array.prototype.slice.call(arguments);
        return urls.reduce(function (done, next) {
          return done.then(function () { return loadScript(win.document, next); });
        }, Promise.resolve());
      };
      loadScript(win.document, url).then(function () {
        var queued = pending;
        pending = null;
        queued.forEach(deliver);
      }, function (error) {
        emit("error", { message: error.message, error: error });
      });
    }, { once: true });
    document.body.appendChild(frame);
  }

  window.IFrameWorker = IFrameWorker;
  window.Worker = IFrameWorker;
})();
