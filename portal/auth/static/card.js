// The sign-in card's QR code opens /student/card#t=TOKEN. The fragment is
// never sent to the server (nor in a Referer); this script moves the token
// into the form, then replaces the address with the bare page, so the
// tablet's back button and the open tab keep no token. Only the form's POST
// signs in.
(function () {
  "use strict";
  var form = document.getElementById("card-form");
  var input = document.getElementById("card-token");
  if (!form || !input) { return; }
  var hash = window.location.hash.replace(/^#/, "");
  var token = "";
  hash.split("&").forEach(function (part) {
    if (part.indexOf("t=") === 0) { token = decodeURIComponent(part.slice(2)); }
  });
  if (window.location.hash) {
    window.history.replaceState(null, "", window.location.pathname);
  }
  if (token) {
    input.value = token;
  } else {
    form.hidden = true;
    document.getElementById("card-missing").hidden = false;
  }
  form.addEventListener("submit", function () {
    // sent with this POST, then gone from the page (a later back/forward restores nothing)
    window.setTimeout(function () { input.value = ""; }, 0);
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { input.value = ""; }
  });
})();
