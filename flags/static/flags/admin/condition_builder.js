/* The condition builder of rules and segments (rules.md, Conditions): all / any / not groups, nested;
 * an attribute picked from the tenant's own (free text allowed); operators in the admin's words
 * (flags/admin/vocabulary.py, handed over as JSON: never a second list here); a value input that
 * fits the operator; segments picked from the tenant's own.
 *
 * It edits the condition objects in place and calls onChange; every control carries the engine
 * path it edits (data-path), so the server's problems land on it. */
(function () {
  "use strict";
  var B = window.flagsvcBuilder;
  var el = B.el;

  function kindOf(cond) {
    if (!cond || typeof cond !== "object") { return "leaf"; }
    if (Array.isArray(cond.all)) { return "all"; }
    if (Array.isArray(cond.any)) { return "any"; }
    if ("not" in cond) { return "not"; }
    if ("segment" in cond) { return "segment"; }
    return "leaf";
  }

  function utcText(value) {
    var date = typeof value === "number" ? new Date(value * 1000) : new Date(value);
    if (isNaN(date.getTime())) { return null; }
    return date.toISOString().slice(0, 16);
  }

  function Words(vocabulary) {
    var ops = {};
    (vocabulary.operators || []).forEach(function (o) { ops[o.op] = o; });
    this.ops = ops;
    this.list = vocabulary.operators || [];
    this.groups = vocabulary.groups || {};
  }
  Words.prototype.valueKind = function (op) { return this.ops[op] ? this.ops[op].value : "scalar"; };
  Words.prototype.valueText = function (cond) {
    var kind = this.valueKind(cond.op), v = cond.value;
    if (kind === "none") { return ""; }
    if (kind === "list") { return Array.isArray(v) && v.length ? v.join(", ") : "(nothing yet)"; }
    if (kind === "range") {
      var lo = Array.isArray(v) && v[0] !== null && v[0] !== undefined ? v[0] : "?";
      var hi = Array.isArray(v) && v[1] !== null && v[1] !== undefined ? v[1] : "?";
      return lo + " and " + hi + (hi === "?" ? "" : " (" + hi + " not included)");
    }
    if (kind === "datetime") { var t = utcText(v); return t ? t.replace("T", " ") + " UTC" : String(v); }
    return v === undefined || v === null || v === "" ? "(empty)" : String(v);
  };
  Words.prototype.describe = function (cond, nested) {
    var self = this;
    switch (kindOf(cond)) {
      case "all": case "any":
        var parts = cond.all || cond.any;
        if (!parts.length) { return cond.all ? "everyone" : "nobody"; }
        var text = parts.map(function (c) { return self.describe(c, true); }).join(cond.all ? " and " : " or ");
        return nested && parts.length > 1 ? "(" + text + ")" : text;
      case "not": return "not " + self.describe(cond.not, true);
      case "segment": return "user is in segment " + (cond.segment || "?");
      default:
        var words = self.ops[cond.op] ? self.ops[cond.op].words : cond.op;
        var value = self.valueText(cond);
        return (cond.attr || "?") + " " + words + (value ? " " + value : "");
    }
  };

  /* Convert a value when the operator changes to one of another kind. */
  function convert(value, kind) {
    var first = Array.isArray(value) ? value[0] : value;
    switch (kind) {
      case "list": return Array.isArray(value) ? value : (value === undefined || value === null || value === "" ? [] : [value]);
      case "range": return Array.isArray(value) && value.length === 2 ? value : [null, null];
      case "number": return typeof first === "number" ? first : (first !== undefined && first !== "" && !isNaN(Number(first)) ? Number(first) : null);
      case "none": return undefined;
      case "datetime": return typeof first === "string" && utcText(first) ? first : "";
      default: return first === undefined || first === null ? "" : (typeof first === "object" ? "" : first);
    }
  }

  function editor(holder, opts) {
    /* holder: {cond}; opts: {words, path, attributesList (datalist id), segments ([{key,name}] or null),
     * emptyRoot (value when the root is removed), onChange} */
    var words = opts.words;
    var box = el("div", { "class": "flagsvc-cond" });

    function changed() { if (opts.onChange) { opts.onChange(); } }
    function rebuild(focusSelector) {
      box.textContent = "";
      box.appendChild(renderRoot());
      changed();
      if (focusSelector) {
        var target = box.querySelector(focusSelector);
        if (target) { target.focus(); }
      }
    }

    function newLeaf() { return { attr: "", op: "in", value: [] }; }
    function newSegment() { return { segment: "" }; }

    function operatorSelect(cond, path, onKind) {
      var options = words.list.map(function (o) { return [o.op, o.words]; });
      if (cond.op && !words.ops[cond.op]) { options.push([cond.op, cond.op + " (unknown)"]); }
      var node = B.select(options, cond.op || "eq", { "class": "flagsvc-op", "data-path": path + ".op", "aria-label": "Operator" });
      node.addEventListener("change", function () {
        var before = words.valueKind(cond.op);
        cond.op = node.value;
        var after = words.valueKind(cond.op);
        if (before !== after) {
          var v = convert(cond.value, after);
          if (v === undefined) { delete cond.value; } else { cond.value = v; }
          onKind();
        }
        changed();
      });
      return node;
    }

    function scalarFrom(text, type) {
      if (type === "number") { return text.trim() === "" || isNaN(Number(text)) ? text : Number(text); }
      if (type === "boolean") { return text === "true"; }
      return text;
    }

    function typeOf(value) {
      if (typeof value === "number") { return "number"; }
      if (typeof value === "boolean") { return "boolean"; }
      return "text";
    }

    function valueControl(cond, path) {
      var kind = words.valueKind(cond.op);
      var vpath = path + ".value";
      if (kind === "none") { return el("span", { "class": "flagsvc-cond-novalue", text: "" }); }
      if (kind === "list") {
        if (!Array.isArray(cond.value)) { cond.value = convert(cond.value, "list"); }
        var numeric = cond.value.length > 0 && cond.value.every(function (v) { return typeof v === "number"; });
        var listType = B.select([["text", "text"], ["number", "numbers"]], numeric ? "number" : "text", { "class": "flagsvc-type", "aria-label": "Type of the values" });
        listType.addEventListener("change", function () {
          var toNumber = listType.value === "number";
          cond.value.forEach(function (v, i) {
            cond.value[i] = toNumber ? (String(v).trim() !== "" && !isNaN(Number(v)) ? Number(v) : v) : String(v);
          });
          rebuild();
        });
        var chipBox = B.chips(cond.value, {
          path: vpath, label: "Values", placeholder: "e.g. NL, BE (Enter or paste)",
          convert: function (raw) { return numeric && raw.trim() !== "" && !isNaN(Number(raw)) ? Number(raw) : raw; },
          onChange: changed
        });
        return el("span", { "class": "flagsvc-list-value" }, [chipBox, listType]);
      }
      if (kind === "range") {
        if (!Array.isArray(cond.value)) { cond.value = [null, null]; }
        var pair = [0, 1].map(function (i) {
          var input = el("input", { type: "number", step: "any", "class": "flagsvc-num", value: cond.value[i] === null || cond.value[i] === undefined ? "" : String(cond.value[i]), "data-path": vpath + "[" + i + "]", "aria-label": i ? "Up to (not included)" : "From" });
          input.addEventListener("input", function () { cond.value[i] = input.value === "" ? null : Number(input.value); changed(); });
          return input;
        });
        return el("span", { "class": "flagsvc-range", "data-path": vpath }, [pair[0], el("span", { text: " and " }), pair[1], el("span", { "class": "help", text: " (from included, up to excluded)" })]);
      }
      if (kind === "number") {
        var num = el("input", { type: "number", step: "any", "class": "flagsvc-num", value: cond.value === null || cond.value === undefined ? "" : String(cond.value), "data-path": vpath, "aria-label": "Number" });
        num.addEventListener("input", function () { cond.value = num.value === "" ? null : Number(num.value); changed(); });
        return num;
      }
      if (kind === "datetime") {
        var shown = cond.value === "" || cond.value === undefined ? "" : utcText(cond.value);
        if (shown === null) {
          var raw = el("input", { type: "text", value: String(cond.value), "data-path": vpath, "aria-label": "Date and time (ISO 8601)" });
          raw.addEventListener("input", function () { cond.value = raw.value; changed(); });
          return raw;
        }
        var picker = el("input", { type: "datetime-local", value: shown, "data-path": vpath, "aria-label": "Date and time, UTC" });
        picker.addEventListener("input", function () { cond.value = picker.value ? picker.value + ":00Z" : ""; changed(); });
        return el("span", { "class": "flagsvc-datetime" }, [picker, el("span", { text: " UTC" })]);
      }
      // scalar, string, version: one text input; a scalar also says its type (text, number, yes/no)
      var type = typeOf(cond.value);
      var text = el("input", { type: "text", "class": "flagsvc-text", value: cond.value === undefined || cond.value === null ? "" : String(cond.value), "data-path": vpath, "aria-label": "Value", placeholder: kind === "version" ? "e.g. 2.10.0" : "" });
      if (type === "boolean") {
        var yes = B.select([["true", "true"], ["false", "false"]], String(cond.value), { "data-path": vpath, "aria-label": "Value" });
        yes.addEventListener("change", function () { cond.value = yes.value === "true"; changed(); });
        text = yes;
      } else {
        text.addEventListener("input", function () { cond.value = scalarFrom(text.value, kind === "scalar" ? type : "text"); changed(); });
      }
      if (kind !== "scalar") { return text; }
      var typeSelect = B.select([["text", "text"], ["number", "number"], ["boolean", "true/false"]], type, { "class": "flagsvc-type", "aria-label": "Type of the value" });
      typeSelect.addEventListener("change", function () {
        cond.value = typeSelect.value === "boolean" ? true : scalarFrom(cond.value === undefined ? "" : String(cond.value), typeSelect.value);
        rebuild();
      });
      return el("span", { "class": "flagsvc-scalar" }, [text, typeSelect]);
    }

    function leafRow(cond, path, remove) {
      var row = el("div", { "class": "flagsvc-cond-leaf", "data-path": path });
      if (kindOf(cond) === "segment") {
        var segs = opts.segments || [];
        var options = [["", "— choose a segment —"]].concat(segs.map(function (s) { return [s.key, s.name ? s.key + " — " + s.name : s.key]; }));
        if (cond.segment && !segs.some(function (s) { return s.key === cond.segment; })) { options.push([cond.segment, cond.segment + " (not found)"]); }
        var pick = B.select(options, cond.segment || "", { "class": "flagsvc-segment-pick", "data-path": path + ".segment", "aria-label": "Segment" });
        pick.addEventListener("change", function () { cond.segment = pick.value; changed(); });
        row.appendChild(el("span", { "class": "flagsvc-cond-word", text: "User is in segment" }));
        row.appendChild(pick);
      } else {
        var attr = el("input", { type: "text", "class": "flagsvc-attr", value: cond.attr || "", list: opts.attributesList, "data-path": path + ".attr", "aria-label": "Attribute", placeholder: "attribute, e.g. country", autocomplete: "off", spellcheck: "false" });
        attr.addEventListener("input", function () { cond.attr = attr.value.trim(); changed(); });
        var slot = el("span", { "class": "flagsvc-value-slot" });
        var fill = function () { slot.textContent = ""; slot.appendChild(valueControl(cond, path)); };
        row.appendChild(attr);
        row.appendChild(operatorSelect(cond, path, fill));
        row.appendChild(slot);
        fill();
      }
      if (remove) {
        row.appendChild(el("button", { type: "button", "class": "button flagsvc-small flagsvc-cond-remove", text: "Remove", "aria-label": "Remove this condition", on: { click: remove } }));
      }
      return row;
    }

    function groupBox(cond, path, remove, isRoot) {
      var kind = kindOf(cond);
      var group = el("div", { "class": "flagsvc-cond-group flagsvc-cond-" + kind, "data-path": path });
      var options = [["all", "All of these are true"], ["any", "Any of these is true"], ["not", "Not (this is false)"]];
      var chooser = B.select(options, kind, { "class": "flagsvc-group-kind", "aria-label": "How the conditions combine" });
      chooser.addEventListener("change", function () {
        var children = kind === "not" ? [cond.not] : cond[kind];
        delete cond.all; delete cond.any; delete cond.not;
        if (chooser.value === "not") { cond.not = children.length === 1 ? children[0] : (kind === "not" ? children[0] : (function () { var g = {}; g[kind] = children; return g; })()); }
        else { cond[chooser.value] = children.filter(Boolean); }
        rebuild();
      });
      var head = el("div", { "class": "flagsvc-cond-head" }, [chooser]);
      if (remove) { head.appendChild(el("button", { type: "button", "class": "button flagsvc-small", text: "Remove group", on: { click: remove } })); }
      group.appendChild(head);
      var list = el("div", { "class": "flagsvc-cond-children" });
      if (kind === "not") {
        list.appendChild(node(cond.not, path + ".not", null, { parent: cond, slot: "not" }));
      } else {
        var children = cond[kind];
        if (!children.length) { list.appendChild(el("p", { "class": "help", text: kind === "all" ? "No conditions: true for everyone." : "No conditions: true for nobody." })); }
        children.forEach(function (child, index) {
          list.appendChild(node(child, path + "." + kind + "[" + index + "]", function () { children.splice(index, 1); rebuild(); }));
        });
        var adds = el("div", { "class": "flagsvc-cond-adds" }, [
          el("button", { type: "button", "class": "button flagsvc-small flagsvc-add-condition", text: "+ Condition", on: { click: function () { children.push(newLeaf()); rebuild(); focusLast(path, kind, children.length - 1); } } }),
          opts.segments ? el("button", { type: "button", "class": "button flagsvc-small flagsvc-add-segment", text: "+ Segment", disabled: !opts.segments.length, title: opts.segments.length ? null : "This tenant has no segments yet", on: { click: function () { children.push(newSegment()); rebuild(); focusLast(path, kind, children.length - 1); } } }) : null,
          el("button", { type: "button", "class": "button flagsvc-small flagsvc-add-group", text: "+ Group", on: { click: function () { children.push({ any: [newLeaf()] }); rebuild(); focusLast(path, kind, children.length - 1); } } })
        ]);
        list.appendChild(adds);
      }
      group.appendChild(list);
      return group;
    }

    function focusLast(path, kind, index) {
      var target = box.querySelector('[data-path="' + path + "." + kind + "[" + index + ']"] input, [data-path="' + path + "." + kind + "[" + index + ']"] select');
      if (target) { target.focus(); }
    }

    function node(cond, path, remove) {
      var kind = kindOf(cond);
      return kind === "all" || kind === "any" || kind === "not" ? groupBox(cond, path, remove, false) : leafRow(cond, path, remove);
    }

    function wrapRoot(kind, child) {
      var wrapped = {};
      wrapped[kind] = [holder.cond, child];
      holder.cond = wrapped;
      rebuild('[data-path="' + opts.path + "." + kind + '[1]"] input');
    }

    function renderRoot() {
      var cond = holder.cond;
      var removeRoot = function () { holder.cond = opts.emptyRoot === null ? null : JSON.parse(JSON.stringify(opts.emptyRoot)); rebuild(); };
      if (cond === null || cond === undefined) {
        return el("div", { "class": "flagsvc-cond-empty", "data-path": opts.path }, [
          el("p", { "class": "help", text: opts.emptyText || "No condition." }),
          el("button", { type: "button", "class": "button flagsvc-small flagsvc-add-condition", text: "+ Condition", on: { click: function () { holder.cond = newLeaf(); rebuild(".flagsvc-attr"); } } })
        ]);
      }
      var kind = kindOf(cond);
      if (kind === "all" || kind === "any" || kind === "not") { return groupBox(cond, opts.path, opts.emptyRoot === null ? removeRoot : null, true); }
      return el("div", { "class": "flagsvc-cond-root" }, [
        leafRow(cond, opts.path, removeRoot),
        el("div", { "class": "flagsvc-cond-adds" }, [
          el("button", { type: "button", "class": "button flagsvc-small flagsvc-and", text: "+ And", "aria-label": "Add a condition that must also be true", on: { click: function () { wrapRoot("all", newLeaf()); } } }),
          el("button", { type: "button", "class": "button flagsvc-small flagsvc-or", text: "+ Or", "aria-label": "Add a condition that may be true instead", on: { click: function () { wrapRoot("any", newLeaf()); } } })
        ])
      ]);
    }

    box.appendChild(renderRoot());
    return box;
  }

  window.flagsvcConditions = { Words: Words, editor: editor, kindOf: kindOf };
})();
