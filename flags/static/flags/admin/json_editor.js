/* JSON editors of the flag and segment forms: a syntax check as you type and a Format button.
 * The server checks the content with the engine on save; this only catches typing mistakes early. */
(function () {
  "use strict";

  var KINDS = {
    list: { test: Array.isArray, words: "a JSON list [...]" },
    object: { test: isObject, words: "a JSON object {...}" },
    object_or_null: { test: function (v) { return v === null || isObject(v); }, words: "a JSON object {...} or empty" }
  };

  function isObject(value) {
    return value !== null && typeof value === "object" && !Array.isArray(value);
  }

  function check(area, status) {
    var text = area.value.trim();
    var kind = KINDS[area.dataset.jsonKind] || null;
    if (!text) {
      status.textContent = "";
      status.className = "flagsvc-json-status";
      return;
    }
    try {
      var value = JSON.parse(text);
      if (kind && !kind.test(value)) {
        status.textContent = "Valid JSON, but this field takes " + kind.words + ".";
        status.className = "flagsvc-json-status flagsvc-json-bad";
      } else {
        status.textContent = "Valid JSON.";
        status.className = "flagsvc-json-status flagsvc-json-ok";
      }
    } catch (err) {
      status.textContent = "Not valid JSON yet: " + err.message;
      status.className = "flagsvc-json-status flagsvc-json-bad";
    }
  }

  function fit(area) {
    var lines = area.value.split("\n").length;
    area.rows = Math.min(30, Math.max(Number(area.dataset.minRows || 3), lines + 1));
  }

  function enhance(area) {
    area.dataset.minRows = area.getAttribute("rows") || "3";
    fit(area);
    var bar = document.createElement("div");
    bar.className = "flagsvc-json-bar";
    var format = document.createElement("button");
    format.type = "button";
    format.className = "button flagsvc-json-format";
    format.textContent = "Format";
    var status = document.createElement("span");
    status.className = "flagsvc-json-status";
    status.setAttribute("aria-live", "polite");
    bar.appendChild(format);
    bar.appendChild(status);
    area.insertAdjacentElement("afterend", bar);
    format.addEventListener("click", function () {
      try {
        area.value = JSON.stringify(JSON.parse(area.value), null, 2);
        fit(area);
      } catch (err) { /* the status already says why */ }
      check(area, status);
    });
    area.addEventListener("input", function () { check(area, status); fit(area); });
    check(area, status);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("textarea.flagsvc-json").forEach(enhance);
  });
})();
