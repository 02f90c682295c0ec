/* The segment editor without JSON: included and excluded ids as chips, the condition with the same
 * builder as a flag's rules (condition_builder.js). It writes the form's own fields, so the
 * "Edit as JSON" view and the post are one; the server's problems come back at their controls. */
(function () {
  "use strict";
  var B = window.flagsvcBuilder;
  var C = window.flagsvcConditions;
  var el = B.el;

  document.addEventListener("DOMContentLoaded", function () {
    var data = B.readData("flagsvc-segment-builder-data");
    var area = { included: document.getElementById("id_included"), excluded: document.getElementById("id_excluded"), when: document.getElementById("id_when") };
    if (!data || !area.included || !area.excluded || !area.when) { return; }
    var form = area.when.closest("form");
    var words = null;
    var state = null;
    var rows = [area.when.closest("fieldset")];
    var datalist = el("datalist", { id: "flagsvc-attributes" });
    var root = el("div", { id: "flagsvc-segment-builder", "class": "flagsvc-builder" });
    var summary = el("p", { id: "flagsvc-segment-summary", "class": "flagsvc-rule-words", "aria-live": "polite" });
    var alertBox = el("div", { role: "alert", "class": "flagsvc-builder-alert" });
    var body = el("div");
    var jsonMode = B.jsonSwitch(root, rows, function () { return load(); });
    root.appendChild(alertBox);
    root.appendChild(body);
    root.appendChild(datalist);
    var first = form.querySelector("fieldset");
    first.parentNode.insertBefore(el("div", { "class": "flagsvc-builder-wrap" }, [jsonMode.bar, root]), first.nextSibling);

    function save() {
      area.included.value = state.included.join("\n");
      area.excluded.value = state.excluded.join("\n");
      B.writeJson(area.when, state.holder.cond);
      var text = state.holder.cond ? words.describe(state.holder.cond) : null;
      summary.textContent = "In this segment: " + (state.included.length ? state.included.length + " listed user" + (state.included.length === 1 ? "" : "s") : "no listed user") +
        (text ? ", and everyone else (not excluded) for whom " + text + "." : "; nobody else (no condition).");
    }

    function section(id, title, help, children) {
      return el("section", { "class": "module flagsvc-b-section", id: id, "aria-labelledby": id + "-h" }, [
        el("h2", { id: id + "-h", text: title }), help ? el("p", { "class": "help flagsvc-b-help", text: help }) : null
      ].concat(children));
    }

    function render(attributes) {
      datalist.textContent = "";
      (attributes || []).forEach(function (a) { datalist.appendChild(el("option", { value: a })); });
      body.textContent = "";
      body.appendChild(section("flagsvc-members", "Who is in the segment", null, [summary]));
      body.appendChild(section("flagsvc-segment-ids", "Listed users", "Included users are always in the segment; excluded users are never matched by the condition.", [
        el("div", { "class": "flagsvc-b-row" }, [el("h3", { text: "Included user ids" }), B.chips(state.included, { path: "included", label: "Included user ids", placeholder: "user ids (Enter, or paste a list)", onChange: save })]),
        el("div", { "class": "flagsvc-b-row" }, [el("h3", { text: "Excluded user ids" }), B.chips(state.excluded, { path: "excluded", label: "Excluded user ids", placeholder: "user ids (Enter, or paste a list)", onChange: save })])
      ]));
      body.appendChild(section("flagsvc-segment-condition", "Condition", "Users not listed above are in the segment when this is true.", [
        C.editor(state.holder, { words: words, path: "when", attributesList: "flagsvc-attributes", segments: null, emptyRoot: null, emptyText: "No condition: only the included ids are in the segment.", onChange: save })
      ]));
      save();
    }

    function load() {
      var when = B.parseJson(area.when, null);
      if (!when.ok) { return "The condition's JSON does not parse: fix it to go back to the editor."; }
      if (when.value !== null && (typeof when.value !== "object" || Array.isArray(when.value))) { return "The condition must be a JSON object, or empty."; }
      state = { included: B.lines(area.included), excluded: B.lines(area.excluded), holder: { cond: when.value } };
      render(data.attributes);
      return null;
    }

    function start(context) {
      if (!context || !context.vocabulary) { return; }
      data.attributes = context.attributes;
      words = new C.Words(context.vocabulary);
      var problem = load();
      if (problem) { jsonMode.show(true); jsonMode.note.textContent = problem; return; }
      jsonMode.show(false);
      var unplaced = B.placeProblems(root, data.problems);
      if (unplaced.length) {
        var ul = el("ul", { "class": "errorlist" });
        unplaced.forEach(function (p) { ul.appendChild(el("li", { text: p.path + ": " + p.message })); });
        alertBox.appendChild(ul);
      }
    }

    root.hidden = true;
    jsonMode.bar.hidden = true;
    var tenantSelect = document.getElementById("id_tenant");
    var contextTenant = data.vocabulary ? String(data.tenant) : null;
    function fetchContext() {
      if (!tenantSelect || !tenantSelect.value || tenantSelect.value === contextTenant) { return; }
      contextTenant = tenantSelect.value;
      fetch(data.attributes_url + "?tenant=" + encodeURIComponent(tenantSelect.value), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (context) {
          if (!context) { return; }
          if (words) { data.attributes = context.attributes; render(context.attributes); return; }
          jsonMode.bar.hidden = false;
          start(context);
        });
    }
    if (tenantSelect && tenantSelect.tagName === "SELECT") {
      tenantSelect.addEventListener("change", fetchContext);
      if (window.django && window.django.jQuery) { window.django.jQuery(tenantSelect).on("change", fetchContext); }
    }
    if (data.vocabulary) { jsonMode.bar.hidden = false; start(data); } else { fetchContext(); }
  });
})();
