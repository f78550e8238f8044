// Simulates WeChat's occasional double redirect (wechat-protocol.md §1.4 [OBS]): the callback
// is requested twice with the same code, and the browser keeps only the second response.
// The first request is a background fetch whose response is discarded; then the page navigates.
(function () {
  'use strict';
  var el = document.getElementById('sbx-double');
  if (!el) return;
  var url = el.getAttribute('data-url');
  if (!url) return;
  var gone = false;
  function go() {
    if (gone) return;
    gone = true;
    window.location.replace(url);
  }
  try {
    // redirect 'manual': exactly one hit on the callback, without following it to the merchant.
    // (no-cors forbids 'manual'; a cross-origin callback rejects this fetch after the request
    // was sent, which is all the simulation needs.)
    fetch(url, { credentials: 'include', mode: 'cors', redirect: 'manual', cache: 'no-store' }).then(go, go);
  } catch (e) {
    go();
  }
  // Real double redirects arrive close together: do not wait long for the first one.
  setTimeout(go, 300);
})();
