// Keeps the phone page current: when the chat changes (a notice or a reply arrived), reload,
// unless the person is typing. Also keeps the newest message in view.
(function () {
  'use strict';
  var root = document.querySelector('[data-version-url]');
  if (!root) return;
  var url = root.getAttribute('data-version-url');
  var version = root.getAttribute('data-version');
  var chat = document.querySelector('.sbx-chat');
  if (chat) chat.scrollTop = chat.scrollHeight;
  function typing() {
    var a = document.activeElement;
    return a && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA') && a.value !== '';
  }
  setInterval(function () {
    if (document.hidden) return;
    fetch(url, { cache: 'no-store', credentials: 'same-origin' })
      .then(function (r) { return r.json(); })
      .then(function (j) { if (j && j.version !== version && !typing()) window.location.reload(); })
      .catch(function () {});
  }, 2000);
})();
