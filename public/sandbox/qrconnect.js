// The website QR login page (wechat-protocol.md §1.10): like WeChat's, it waits for the phone
// and then sends this browser to redirect_uri (code and state, or state only on a refusal).
(function () {
  'use strict';
  var box = document.getElementById('sbx-qrconnect');
  if (!box) return;
  var poll = box.getAttribute('data-poll');
  if (!poll) return;
  function show(state) {
    var items = box.querySelectorAll('[data-state]');
    for (var i = 0; i < items.length; i++) items[i].hidden = items[i].getAttribute('data-state') !== state;
  }
  function tick() {
    fetch(poll, { credentials: 'same-origin', cache: 'no-store' })
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if ((s.status === 'confirmed' || s.status === 'declined') && s.location) return window.location.replace(s.location);
        if (s.status === 'expired') return show('expired');
        setTimeout(tick, 1000);
      }, function () { setTimeout(tick, 2000); });
  }
  setTimeout(tick, 1000);
})();
