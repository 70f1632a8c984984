// Zoopa status page: refresh <main> in place from /fragment (server-rendered HTML,
// the same renderer as the page). No framework, no external assets. With scripts
// off the page is a plain table that a reload refreshes.
(function () {
  'use strict';
  var main = document.getElementById('main');
  if (!main || !window.fetch) return;
  var every = Math.max(1, Number(main.getAttribute('data-refresh')) || 2) * 1000;
  var busy = false;
  function refresh() {
    if (busy || document.hidden) return;
    busy = true;
    fetch('fragment', { cache: 'no-store', headers: { Accept: 'text/html' } })
      .then(function (r) {
        if (!r.ok) throw new Error('HTTP ' + r.status);
        return r.text();
      })
      .then(function (html) {
        if (html !== main.innerHTML) main.innerHTML = html;
        main.removeAttribute('data-stale');
      })
      .catch(function () {
        main.setAttribute('data-stale', 'true');
      })
      .then(function () {
        busy = false;
      });
  }
  setInterval(refresh, every);
  document.addEventListener('visibilitychange', refresh);
})();
