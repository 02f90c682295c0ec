/* A structured editor over the flag's rules JSON: each rule as one readable line (move up, remove),
 * and a small form that adds a rule without typing JSON. The JSON box stays the source of truth
 * (and what is saved); the server's engine validation judges the result. */
(function () {
  "use strict";

  var OPERATORS = ["eq", "neq", "in", "not_in", "contains", "starts_with", "ends_with", "regex",
    "lt", "lte", "gt", "gte", "between", "semver_eq", "semver_lt", "semver_lte", "semver_gt",
    "semver_gte", "before", "after", "exists", "not_exists"];
  var NO_VALUE = ["exists", "not_exists"];
  var LISTS = ["in", "not_in"];

  function node(tag, attrs, text) {
    var el = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { el.setAttribute(k, attrs[k]); });
    if (text !== undefined) { el.textContent = text; }
    return el;
  }

  function parse(area, fallback) {
    try { return area.value.trim() ? JSON.parse(area.value) : fallback; } catch (err) { return null; }
  }

  function describe(cond) {
    if (!cond || typeof cond !== "object") { return "?"; }
    if (cond.segment) { return "in segment " + cond.segment; }
    if (cond.all) { return "all of (" + cond.all.map(describe).join("; ") + ")"; }
    if (cond.any) { return "any of (" + cond.any.map(describe).join("; ") + ")"; }
    if (cond.not) { return "not (" + describe(cond.not) + ")"; }
    return cond.attr + " " + cond.op + (cond.value === undefined ? "" : " " + JSON.stringify(cond.value));
  }

  function serveText(serve) {
    if (!serve) { return "?"; }
    if (serve.variant) { return serve.variant; }
    if (serve.distribution) {
      return serve.distribution.map(function (d) { return d.variant + " " + d.weight; }).join(" / ");
    }
    return "?";
  }

  function valueOf(op, raw) {
    if (NO_VALUE.indexOf(op) >= 0) { return undefined; }
    var text = raw.trim();
    try { return JSON.parse(text); } catch (err) { /* plain text */ }
    if (LISTS.indexOf(op) >= 0) {
      return text.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
    }
    return text;
  }

  function setup(rulesArea, variantsArea) {
    var box = node("div", { "class": "flagsvc-rule-builder", id: "flagsvc-rule-builder" });
    var list = node("ol", { "class": "flagsvc-rule-list", id: "flagsvc-rule-list" });
    box.appendChild(list);

    var form = node("div", { "class": "flagsvc-rule-add" });
    var id = node("input", { type: "text", id: "flagsvc-rule-id", placeholder: "rule id, e.g. nl-pro", size: "14" });
    var kind = node("select", { id: "flagsvc-rule-kind", "aria-label": "Condition kind" });
    kind.appendChild(node("option", { value: "attr" }, "attribute"));
    kind.appendChild(node("option", { value: "segment" }, "segment"));
    var attr = node("input", { type: "text", id: "flagsvc-rule-attr", placeholder: "attribute, e.g. country", size: "16" });
    var op = node("select", { id: "flagsvc-rule-op", "aria-label": "Operator" });
    OPERATORS.forEach(function (o) { op.appendChild(node("option", { value: o }, o)); });
    var value = node("input", { type: "text", id: "flagsvc-rule-value", placeholder: 'value, e.g. NL or ["pro", "team"]', size: "22" });
    var serve = node("select", { id: "flagsvc-rule-serve", "aria-label": "Serve variant" });
    var add = node("button", { type: "button", "class": "button", id: "flagsvc-rule-add" }, "Add rule");
    var note = node("span", { "class": "flagsvc-json-status", "aria-live": "polite" });
    [node("span", {}, "If"), kind, attr, op, value, node("span", {}, "serve"), serve, node("span", {}, "as"), id, add, note]
      .forEach(function (el) { form.appendChild(el); });
    box.appendChild(form);
    var anchor = rulesArea.closest(".flex-container") || rulesArea;
    anchor.parentNode.insertBefore(box, anchor.nextSibling);

    function write(rules) {
      rulesArea.value = JSON.stringify(rules, null, 2);
      rulesArea.dispatchEvent(new Event("input", { bubbles: true }));
    }

    function refreshVariants() {
      var variants = parse(variantsArea, []) || [];
      var current = serve.value;
      serve.textContent = "";
      variants.forEach(function (v) {
        if (v && typeof v.key === "string") { serve.appendChild(node("option", { value: v.key }, v.key)); }
      });
      if (current) { serve.value = current; }
    }

    function render() {
      list.textContent = "";
      var rules = parse(rulesArea, []);
      if (!Array.isArray(rules)) {
        list.appendChild(node("li", { "class": "help" }, "Fix the JSON above to see the rules here."));
        return;
      }
      if (!rules.length) { list.appendChild(node("li", { "class": "help" }, "No rules: everyone gets the default.")); }
      rules.forEach(function (rule, index) {
        var li = node("li", {}, (rule.id || "?") + ": if " + describe(rule.when) + " → " + serveText(rule.serve) + " ");
        if (index > 0) {
          var up = node("button", { type: "button", "class": "button flagsvc-rule-up", title: "Evaluate earlier" }, "↑");
          up.addEventListener("click", function () {
            rules.splice(index - 1, 0, rules.splice(index, 1)[0]);
            write(rules);
          });
          li.appendChild(up);
        }
        var remove = node("button", { type: "button", "class": "button flagsvc-rule-remove" }, "Remove");
        remove.addEventListener("click", function () { rules.splice(index, 1); write(rules); });
        li.appendChild(remove);
        list.appendChild(li);
      });
    }

    kind.addEventListener("change", function () {
      var isSegment = kind.value === "segment";
      op.hidden = isSegment;
      attr.placeholder = isSegment ? "segment key, e.g. beta-testers" : "attribute, e.g. country";
      value.hidden = isSegment;
    });
    op.addEventListener("change", function () { value.hidden = NO_VALUE.indexOf(op.value) >= 0; });

    add.addEventListener("click", function () {
      var rules = parse(rulesArea, []);
      if (!Array.isArray(rules)) { note.textContent = "Fix the rules JSON first."; return; }
      if (!id.value.trim() || !attr.value.trim() || !serve.value) {
        note.textContent = "Give the rule an id, a condition and a variant.";
        return;
      }
      var when = kind.value === "segment" ? { segment: attr.value.trim() } : { attr: attr.value.trim(), op: op.value };
      if (kind.value !== "segment") {
        var v = valueOf(op.value, value.value);
        if (v !== undefined) { when.value = v; }
      }
      rules.push({ id: id.value.trim(), when: when, serve: { variant: serve.value } });
      write(rules);
      note.textContent = "Added rule " + id.value.trim() + ".";
      id.value = ""; value.value = "";
    });

    rulesArea.addEventListener("input", render);
    variantsArea.addEventListener("input", refreshVariants);
    refreshVariants();
    render();
  }

  document.addEventListener("DOMContentLoaded", function () {
    var rules = document.getElementById("id_rules");
    var variants = document.getElementById("id_variants");
    if (rules && variants) { setup(rules, variants); }
  });
})();
