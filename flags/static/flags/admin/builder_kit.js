/* The parts the flag and segment builders share: elements, chips, percentage splits, problems at
 * their controls and the "Edit as JSON" switch. Plain browser JavaScript, no library.
 *
 * The builders never post anything of their own: they write the form fields that the JSON view
 * shows (one posted representation), and the server's engine judges the result on save. */
(function () {
  "use strict";

  var uid = 0;
  function nextId(prefix) { uid += 1; return (prefix || "flagsvc-b") + "-" + uid; }

  /* el("div", {class: "x", text: "hi", on: {click: fn}}, [children]) */
  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (name) {
      var value = props[name];
      if (value === undefined || value === null || value === false) { return; }
      if (name === "text") { node.textContent = value; }
      else if (name === "on") { Object.keys(value).forEach(function (ev) { node.addEventListener(ev, value[ev]); }); }
      else if (name === "value") { node.value = value; }
      else if (name === "checked") { node.checked = !!value; }
      else { node.setAttribute(name, value === true ? "" : value); }
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) { return; }
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function labelled(text, control, extraClass) {
    if (!control.id) { control.id = nextId(); }
    return el("span", { "class": "flagsvc-b-field " + (extraClass || "") }, [
      el("label", { "for": control.id, text: text }), control
    ]);
  }

  function select(options, value, props) {
    var node = el("select", props || {});
    options.forEach(function (option) {
      node.appendChild(el("option", { value: option[0], text: option[1] }));
    });
    node.value = value;
    return node;
  }

  function parseJson(area, fallback) {
    var text = (area.value || "").trim();
    if (!text) { return { ok: true, value: fallback }; }
    try { return { ok: true, value: JSON.parse(text) }; } catch (err) { return { ok: false, error: err.message }; }
  }

  function writeJson(area, value) {
    var text = value === null ? "" : JSON.stringify(value, null, 2);
    if (area.value !== text) { area.value = text; }
  }

  function lines(area) {
    return (area.value || "").split("\n").map(function (s) { return s.trim(); }).filter(Boolean);
  }

  /* A pasted list: one item per line, comma, semicolon or tab. */
  function splitPasted(text) {
    return text.split(/[\n\r,;\t]+/).map(function (s) { return s.trim(); }).filter(Boolean);
  }

  /* Chips over a list of strings. `onChange(list)` after every change. */
  function chips(list, opts) {
    opts = opts || {};
    var box = el("div", { "class": "flagsvc-chips", "data-path": opts.path || null });
    var ul = el("ul", { "class": "flagsvc-chip-list", "aria-label": opts.label || "Items" });
    var input = el("input", {
      type: opts.numeric ? "text" : "text", "class": "flagsvc-chip-input",
      placeholder: opts.placeholder || "Type, then Enter; or paste a list",
      "aria-label": (opts.label || "Items") + ": add (Enter; a pasted list is split)",
      autocomplete: "off", spellcheck: "false"
    });
    var note = el("span", { "class": "flagsvc-chip-count", "aria-live": "polite" });
    function render() {
      ul.textContent = "";
      list.forEach(function (value, index) {
        var remove = el("button", {
          type: "button", "class": "flagsvc-chip-remove", "aria-label": "Remove " + value, text: "×",
          on: { click: function () { list.splice(index, 1); changed(); input.focus(); } }
        });
        ul.appendChild(el("li", { "class": "flagsvc-chip" }, [el("span", { text: String(value) }), remove]));
      });
      note.textContent = list.length ? list.length + (list.length === 1 ? " item" : " items") : (opts.empty || "none yet");
    }
    function changed() { render(); if (opts.onChange) { opts.onChange(list); } }
    function add(items) {
      var added = 0;
      items.forEach(function (raw) {
        var value = opts.convert ? opts.convert(raw) : raw;
        if (value === undefined || value === "") { return; }
        if (list.some(function (v) { return v === value; })) { return; }
        list.push(value); added += 1;
      });
      if (added) { changed(); }
    }
    input.addEventListener("keydown", function (event) {
      if (event.key === "Enter" || event.key === ",") {
        event.preventDefault();
        add(splitPasted(input.value)); input.value = "";
      } else if (event.key === "Backspace" && !input.value && list.length) {
        list.pop(); changed();
      }
    });
    input.addEventListener("paste", function (event) {
      var text = (event.clipboardData || window.clipboardData).getData("text");
      if (/[\n\r,;\t]/.test(text)) { event.preventDefault(); add(splitPasted(input.value + text)); input.value = ""; }
    });
    input.addEventListener("blur", function () { if (input.value.trim()) { add(splitPasted(input.value)); input.value = ""; } });
    box.appendChild(ul);
    box.appendChild(el("span", { "class": "flagsvc-chip-entry" }, [input, note]));
    render();
    box.flagsvcInput = input;
    return box;
  }

  function pct(n) {
    var rounded = Math.round(n * 100) / 100;
    return (Math.abs(rounded - Math.round(rounded)) < 0.005 ? String(Math.round(rounded)) : rounded.toFixed(2).replace(/0$/, "")) + " %";
  }

  /* The share of each entry in percent ({key: weight} normalised); null when all are 0. */
  function shares(entries) {
    var total = entries.reduce(function (sum, e) { return sum + (Number(e.weight) || 0); }, 0);
    if (total <= 0) { return null; }
    return entries.map(function (e) { return { key: e.key, share: (Number(e.weight) || 0) * 100 / total }; });
  }

  function splitWords(entries) {
    var parts = shares(entries);
    if (!parts) { return "nobody (every weight is 0)"; }
    var live = parts.filter(function (p) { return p.share > 0; });
    if (live.length === 1) { return live[0].key; }
    return live.map(function (p) { return pct(p.share) + " " + p.key; }).join(", ");
  }

  /* Percentage inputs with sliders over `entries` ([{key, weight}]), shown as percentages of the
   * total. Editing any entry rewrites every weight as its percentage, so the saved weights are the
   * numbers on the screen. With two entries the other follows (20 → 80). */
  function percentSplit(entries, opts) {
    var box = el("div", { "class": "flagsvc-split", role: "group", "aria-label": opts.label || "Percentage split", "data-path": opts.path || null });
    var total = el("p", { "class": "flagsvc-split-total", "aria-live": "polite" });
    var rows = [];
    function percents() {
      var parts = shares(entries);
      return entries.map(function (e, i) { return parts ? Math.round(parts[i].share * 100) / 100 : 0; });
    }
    var dirty = false;
    function check() {
      var sum = entries.reduce(function (s, e) { return s + (Number(e.weight) || 0); }, 0);
      var shown = dirty ? sum : (sum > 0 ? 100 : 0);
      var ok = Math.abs(shown - 100) < 0.011 * Math.max(1, entries.length);
      total.textContent = "Total " + pct(shown) + (ok ? " ✓" : " — must total 100 %");
      total.className = "flagsvc-split-total " + (ok ? "flagsvc-ok" : "flagsvc-bad");
      box.dataset.valid = ok ? "true" : "false";
      return ok;
    }
    function set(index, value) {
      if (!dirty) {
        var now = percents();
        entries.forEach(function (e, i) { e.weight = now[i]; });
        dirty = true;
      }
      var v = Math.max(0, Math.min(100, Number(value) || 0));
      entries[index].weight = v;
      if (entries.length === 2) { entries[1 - index].weight = Math.round((100 - v) * 100) / 100; }
      rows.forEach(function (row, i) {
        if (i !== index || row.range !== document.activeElement) { row.range.value = entries[i].weight; }
        if (i !== index || row.number !== document.activeElement) { row.number.value = entries[i].weight; }
      });
      check();
      if (opts.onChange) { opts.onChange(); }
    }
    var start = percents();
    entries.forEach(function (entry, index) {
      var number = el("input", {
        type: "number", min: "0", max: "100", step: "any", value: String(start[index]),
        "class": "flagsvc-pct-input", "aria-label": entry.key + ": percent", "data-variant": entry.key,
        "data-path": opts.path ? opts.path + "[" + index + "].weight" : null
      });
      var range = el("input", {
        type: "range", min: "0", max: "100", step: "1", value: String(start[index]),
        "class": "flagsvc-pct-range", "aria-label": entry.key + ": percent (slider)", tabindex: "-1"
      });
      number.addEventListener("input", function () { set(index, number.value); });
      range.addEventListener("input", function () { set(index, range.value); });
      rows.push({ number: number, range: range });
      var lead = opts.rowStart ? opts.rowStart(entry, index) : [el("span", { "class": "flagsvc-split-key", text: entry.key })];
      box.appendChild(el("div", { "class": "flagsvc-split-row" }, lead.concat([
        el("span", { "class": "flagsvc-pct" }, [number, el("span", { text: " %" }), range])
      ], opts.rowEnd ? [opts.rowEnd(entry, index)] : [])));
    });
    box.appendChild(total);
    check();
    box.flagsvcValid = check;
    return box;
  }

  /* Problems at their controls: the control whose data-path is the problem's path, else the
   * nearest ancestor path that has one (rules[1].when.any[0].value[2] → …value). */
  function placeProblems(root, problems) {
    root.querySelectorAll(".flagsvc-problem").forEach(function (n) { n.remove(); });
    root.querySelectorAll("[aria-invalid]").forEach(function (n) { n.removeAttribute("aria-invalid"); });
    var unplaced = [];
    (problems || []).forEach(function (problem) {
      var path = problem.path;
      var target = null;
      while (path) {
        target = root.querySelector('[data-path="' + path.replace(/"/g, '\\"') + '"]');
        if (target) { break; }
        var cut = Math.max(path.lastIndexOf("."), path.lastIndexOf("["));
        path = cut > 0 ? path.slice(0, cut) : "";
      }
      if (!target) { unplaced.push(problem); return; }
      var note = el("p", { "class": "flagsvc-problem", role: "alert", id: nextId("flagsvc-problem"), "data-problem-path": problem.path, text: problem.message });
      var control = target.matches("input, select, textarea") ? target : target.querySelector("input, select, textarea");
      if (control) {
        control.setAttribute("aria-invalid", "true");
        var described = control.getAttribute("aria-describedby");
        control.setAttribute("aria-describedby", (described ? described + " " : "") + note.id);
      }
      var anchor = target.closest(".flagsvc-cond-leaf") || target.closest(".flagsvc-b-field, .flagsvc-split, .flagsvc-chips, .flagsvc-b-row") || target;
      anchor.insertAdjacentElement("afterend", note);
    });
    return unplaced;
  }

  /* The "Edit as JSON" switch: shows the form rows the builder writes, hides the builder. */
  function jsonSwitch(builderBox, rows, onBack) {
    var button = el("button", { type: "button", "class": "button flagsvc-json-toggle", id: "flagsvc-json-toggle", "aria-pressed": "false", text: "Edit as JSON" });
    var note = el("span", { "class": "flagsvc-json-status", "aria-live": "polite" });
    function show(json) {
      button.setAttribute("aria-pressed", json ? "true" : "false");
      button.textContent = json ? "Back to the editor" : "Edit as JSON";
      builderBox.hidden = json;
      rows.forEach(function (row) { row.hidden = !json; });
      document.body.classList.toggle("flagsvc-json-mode", json);
    }
    button.addEventListener("click", function () {
      if (button.getAttribute("aria-pressed") === "true") {
        var problem = onBack();
        if (problem) { note.textContent = problem; return; }
        note.textContent = "";
        show(false);
      } else {
        note.textContent = "";
        show(true);
      }
    });
    return { bar: el("div", { "class": "flagsvc-json-switch" }, [button, note]), show: show, note: note };
  }

  window.flagsvcBuilder = {
    el: el, labelled: labelled, select: select, nextId: nextId, parseJson: parseJson, writeJson: writeJson,
    lines: lines, chips: chips, percentSplit: percentSplit, splitWords: splitWords, pct: pct,
    placeProblems: placeProblems, jsonSwitch: jsonSwitch,
    readData: function (id) {
      var node = document.getElementById(id);
      return node ? JSON.parse(node.textContent) : null;
    }
  };
})();
