/* Key/value rows for a user's attributes (the preview panel and the playground): add a row, remove a
 * row, and a true/false choice in place of the value input when that type is picked. The rows post as
 * repeated _preview_attr_key / _preview_attr_type / _preview_attr_value fields. */
(function () {
  "use strict";

  function valueInput(type, old) {
    var input;
    if (type === "boolean") {
      input = document.createElement("select");
      ["true", "false"].forEach(function (v) {
        var option = document.createElement("option");
        option.value = v;
        option.textContent = v;
        input.appendChild(option);
      });
      if (old && old.value === "false") { input.value = "false"; }
    } else {
      input = document.createElement("input");
      input.type = type === "number" ? "number" : "text";
      if (type === "number") { input.step = "any"; }
      input.placeholder = "value, e.g. NL";
      input.autocomplete = "off";
      input.spellcheck = false;
      if (old && old.tagName === "INPUT") {
        input.value = type === "number" && isNaN(Number(old.value)) ? "" : old.value;
      }
    }
    input.name = "_preview_attr_value";
    input.setAttribute("aria-label", old ? old.getAttribute("aria-label") : "Value");
    return input;
  }

  function renumber(container) {
    container.querySelectorAll(".flagsvc-attr-row").forEach(function (row, index) {
      var n = index + 1;
      row.querySelector("[name=_preview_attr_key]").setAttribute("aria-label", "Attribute name " + n);
      row.querySelector("[name=_preview_attr_type]").setAttribute("aria-label", "Type of attribute " + n);
      row.querySelector("[name=_preview_attr_value]").setAttribute("aria-label", "Value of attribute " + n);
      row.querySelector(".flagsvc-attr-remove").setAttribute("aria-label", "Remove attribute " + n);
    });
  }

  function blankRow(container) {
    var first = container.querySelector(".flagsvc-attr-row");
    var row = first.cloneNode(true);
    row.querySelector("[name=_preview_attr_key]").value = "";
    var type = row.querySelector("[name=_preview_attr_type]");
    type.value = "text";
    var old = row.querySelector("[name=_preview_attr_value]");
    var fresh = valueInput("text", null);
    old.replaceWith(fresh);
    return row;
  }

  function wire(container) {
    var add = container.parentNode.querySelector("[data-flagsvc-attr-add]");
    container.addEventListener("change", function (event) {
      var target = event.target;
      if (target.name !== "_preview_attr_type") { return; }
      var row = target.closest(".flagsvc-attr-row");
      var old = row.querySelector("[name=_preview_attr_value]");
      old.replaceWith(valueInput(target.value, old));
    });
    container.addEventListener("click", function (event) {
      var button = event.target.closest(".flagsvc-attr-remove");
      if (!button) { return; }
      var rows = container.querySelectorAll(".flagsvc-attr-row");
      var row = button.closest(".flagsvc-attr-row");
      if (rows.length === 1) {
        container.appendChild(blankRow(container));
      }
      row.remove();
      renumber(container);
      var next = container.querySelector("[name=_preview_attr_key]");
      if (next) { next.focus(); }
    });
    if (add) {
      add.addEventListener("click", function () {
        var row = blankRow(container);
        container.appendChild(row);
        renumber(container);
        row.querySelector("[name=_preview_attr_key]").focus();
      });
    }
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-flagsvc-attr-rows]").forEach(wire);
  });
})();
