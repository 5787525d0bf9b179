// Progressive extras for the resources pages (the pages work without it).
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.hidden = false;
  button.addEventListener("click", function () { window.print(); });
});
// Campaign form: show only the audience fields that apply.
(function () {
  var radios = document.querySelectorAll("input[name=audience]");
  if (!radios.length) return;
  function update() {
    var chosen = document.querySelector("input[name=audience]:checked");
    document.querySelectorAll("[data-audience]").forEach(function (el) {
      el.hidden = !chosen || el.getAttribute("data-audience") !== chosen.value;
    });
  }
  radios.forEach(function (r) { r.addEventListener("change", update); });
  update();
})();
