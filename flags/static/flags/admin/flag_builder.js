/* The flag editor a product manager uses without JSON: variants with percentages, who is always in
 * or out, rules as cards, what everyone else gets, prerequisites, and the whole flag in words.
 *
 * It reads and writes the form's own fields (variants, rules, default, ... the "Edit as JSON"
 * view shows them as they are), so what is posted is exactly what the JSON view would post, and
 * the server's engine stays the one judge: its problems come back with their paths and are shown
 * at the control that edits that path. */
(function () {
  "use strict";
  var B = window.flagsvcBuilder;
  var C = window.flagsvcConditions;
  var el = B.el;

  var FIELDS = {
    variants: "id_variants", off: "id_off_variant", allow: "id_targets_allow",
    allowVariant: "id_targets_allow_variant", deny: "id_targets_deny", rules: "id_rules",
    fallback: "id_default", prerequisites: "id_prerequisites"
  };
  function copy(value) { return JSON.parse(JSON.stringify(value)); }

  document.addEventListener("DOMContentLoaded", function () {
    var data = B.readData("flagsvc-flag-builder-data");
    var area = {};
    var missing = Object.keys(FIELDS).some(function (name) { area[name] = document.getElementById(FIELDS[name]); return !area[name]; });
    if (!data || missing || !data.vocabulary) { return; }  // a read-only page, or no words to build with
    var form = area.rules.closest("form");
    var words = new C.Words(data.vocabulary);
    var choices = data.choices || { attributes: ["id"], segments: [], flags: [] };
    var typeSelect = document.getElementById("id_type");
    var state = null;

    // --- the rows the builder stands in for; "Edit as JSON" shows them again --------------------
    var rows = [];
    Object.keys(FIELDS).forEach(function (name) {
      var row = area[name].closest(".form-row");
      var fieldset = row.closest("fieldset");
      var others = Array.prototype.filter.call(fieldset.querySelectorAll(".form-row"), function (r) {
        return !Object.keys(FIELDS).some(function (n) { return r.contains(area[n]); });
      });
      var hide = others.length ? row : fieldset;
      if (rows.indexOf(hide) < 0) { rows.push(hide); }
    });

    var datalist = el("datalist", { id: "flagsvc-attributes" });
    var root = el("div", { id: "flagsvc-flag-builder", "class": "flagsvc-builder" });
    var summary = el("ul", { id: "flagsvc-summary", "class": "flagsvc-summary", "aria-live": "polite" });
    var alertBox = el("div", { id: "flagsvc-builder-alert", role: "alert", "class": "flagsvc-builder-alert" });
    var sections = el("div", { "class": "flagsvc-builder-sections" });
    var jsonMode = B.jsonSwitch(root, rows, function () { return load(); });
    var wrapper = el("div", { "class": "flagsvc-builder-wrap" }, [jsonMode.bar, root]);
    root.appendChild(el("section", { "class": "module flagsvc-b-section", "aria-labelledby": "flagsvc-summary-h" }, [
      el("h2", { id: "flagsvc-summary-h", text: "Who gets what" }), summary
    ]));
    root.appendChild(alertBox);
    root.appendChild(sections);
    root.appendChild(datalist);
    var first = form.querySelector("fieldset");
    first.parentNode.insertBefore(wrapper, first.nextSibling);
    var bucketBy = document.getElementById("id_bucket_by");
    if (bucketBy) { bucketBy.setAttribute("list", "flagsvc-attributes"); }

    function flagType() {
      if (typeSelect) { return typeSelect.value; }
      return data.flag_type || "boolean";
    }
    function isBoolean() { return flagType() === "boolean"; }
    function variantKeys() { return state.variants.map(function (v) { return v.key; }); }

    // --- reading and writing the form's fields ----------------------------------------------------
    function load() {
      var parsed = {};
      var bad = [];
      [["variants", []], ["rules", []], ["fallback", null], ["prerequisites", []]].forEach(function (pair) {
        var result = B.parseJson(area[pair[0]], pair[1]);
        if (!result.ok) { bad.push(pair[0] === "fallback" ? "default" : pair[0]); } else { parsed[pair[0]] = result.value; }
      });
      if (bad.length) { return "The JSON of " + bad.join(", ") + " does not parse: fix it to go back to the editor."; }
      if (!Array.isArray(parsed.variants) || !Array.isArray(parsed.rules) || !Array.isArray(parsed.prerequisites) ||
          (parsed.fallback !== null && typeof parsed.fallback !== "object")) {
        return "The JSON has the wrong shape (variants, rules and prerequisites are lists; default is an object or empty).";
      }
      state = {
        variants: parsed.variants, rules: parsed.rules, fallback: parsed.fallback, prerequisites: parsed.prerequisites,
        off: area.off.value.trim(), allow: B.lines(area.allow), allowVariant: area.allowVariant.value.trim(), deny: B.lines(area.deny)
      };
      render();
      return null;
    }

    function save() {
      B.writeJson(area.variants, state.variants);
      B.writeJson(area.rules, state.rules);
      B.writeJson(area.fallback, state.fallback);
      B.writeJson(area.prerequisites, state.prerequisites);
      area.off.value = state.off;
      area.allowVariant.value = state.allowVariant;
      area.allow.value = state.allow.join("\n");
      area.deny.value = state.deny.join("\n");
      describe();
    }

    // --- words -------------------------------------------------------------------------------------
    function serveWords(serve) {
      if (serve && typeof serve.variant === "string") { return serve.variant || "(no variant chosen)"; }
      if (serve && Array.isArray(serve.distribution)) {
        return B.splitWords(serve.distribution.map(function (d) { return { key: d.variant, weight: d.weight }; }));
      }
      return B.splitWords(state.variants);
    }
    function offKey() { return state.off || (isBoolean() ? "off" : "(the off variant)"); }
    function stateOn() {
      var on = form.querySelector("#id_state input[value=on]");
      return on ? on.checked : true;
    }
    function describe() {
      summary.textContent = "";
      function line(text, cls) { summary.appendChild(el("li", { "class": cls || null, text: text })); }
      if (!stateOn()) { line("The flag is off: everyone gets " + offKey() + ". When it is turned on:", "flagsvc-summary-off"); }
      state.prerequisites.forEach(function (p) {
        line("Only if " + (p.flag || "?") + " gives " + ((p.variants || []).join(" or ") || "?") + "; otherwise " + offKey() + ".");
      });
      function users(n) { return n === 1 ? "1 listed user always gets " : n + " listed users always get "; }
      if (state.deny.length) { line(users(state.deny.length) + offKey() + " (deny list)."); }
      if (state.allow.length) { line(users(state.allow.length) + (state.allowVariant || (isBoolean() ? "on" : "?")) + " (allow list)."); }
      state.rules.forEach(function (rule) {
        line("Rule " + (rule.id || "?") + ": if " + words.describe(rule.when) + " → " + serveWords(rule.serve) + ".");
      });
      line("Everyone else: " + serveWords(state.fallback) + ".", "flagsvc-summary-default");
      // Comfort only (the engine judges on save): say at once when two rules share an id.
      var seen = {};
      state.rules.forEach(function (rule, index) {
        var hint = root.querySelector("#flagsvc-rule-" + index + " .flagsvc-rule-hint");
        if (!hint) { return; }
        var taken = rule.id && Object.prototype.hasOwnProperty.call(seen, rule.id);
        var judged = root.querySelector("#flagsvc-rule-" + index + ' .flagsvc-rule-id[aria-invalid="true"]');
        hint.textContent = judged ? "" : (taken ? "Rule " + (seen[rule.id] + 1) + " already has this id: ids must be unique." : (rule.id ? "" : "Give the rule an id."));
        if (rule.id && !taken) { seen[rule.id] = index; }
      });
      root.querySelectorAll("[data-words-for]").forEach(function (node) {
        var rule = state.rules[Number(node.getAttribute("data-words-for"))];
        if (rule) { node.textContent = "If " + words.describe(rule.when) + " → serve " + serveWords(rule.serve) + "."; }
      });
    }

    // --- controls ------------------------------------------------------------------------------
    function valueInput(variant, path) {
      var type = flagType();
      if (type === "boolean") {
        var pick = B.select([["true", "true"], ["false", "false"]], String(variant.value === true), { "data-path": path, "aria-label": "Value of " + variant.key });
        pick.addEventListener("change", function () { variant.value = pick.value === "true"; save(); });
        return pick;
      }
      if (type === "number") {
        var num = el("input", { type: "number", step: "any", "class": "flagsvc-num", value: typeof variant.value === "number" ? String(variant.value) : "", "data-path": path, "aria-label": "Value of " + variant.key });
        num.addEventListener("input", function () { variant.value = num.value === "" ? null : Number(num.value); save(); });
        return num;
      }
      if (type === "json") {
        var box = el("textarea", { rows: "2", "class": "flagsvc-json-value", spellcheck: "false", "data-path": path, "aria-label": "Value of " + variant.key + " (JSON object or list)" });
        box.value = JSON.stringify(variant.value);
        box.addEventListener("input", function () {
          try { variant.value = JSON.parse(box.value); box.removeAttribute("aria-invalid"); } catch (err) { variant.value = box.value; box.setAttribute("aria-invalid", "true"); }
          save();
        });
        return box;
      }
      var text = el("input", { type: "text", "class": "flagsvc-text", value: variant.value === undefined || variant.value === null ? "" : String(variant.value), "data-path": path, "aria-label": "Value of " + variant.key });
      text.addEventListener("input", function () { variant.value = text.value; save(); });
      return text;
    }

    function variantSelect(value, props, blank) {
      var options = (blank ? [["", blank]] : []).concat(variantKeys().map(function (k) { return [k, k]; }));
      if (value && variantKeys().indexOf(value) < 0) { options.push([value, value + " (no such variant)"]); }
      return B.select(options, value || "", props);
    }

    function renameVariant(from, to) {
      if (state.off === from) { state.off = to; }
      if (state.allowVariant === from) { state.allowVariant = to; }
      var serves = state.rules.map(function (r) { return r.serve; }).concat([state.fallback]);
      serves.forEach(function (serve) {
        if (!serve) { return; }
        if (serve.variant === from) { serve.variant = to; }
        (serve.distribution || []).forEach(function (d) { if (d.variant === from) { d.variant = to; } });
      });
    }

    function section(id, title, help, children) {
      return el("section", { "class": "module flagsvc-b-section", id: id, "aria-labelledby": id + "-h" }, [
        el("h2", { id: id + "-h", text: title }), help ? el("p", { "class": "help flagsvc-b-help", text: help }) : null
      ].concat(children));
    }

    function variantsSection() {
      var usesWeights = state.fallback === null;
      var split = B.percentSplit(state.variants, {
        label: "Everyone else, by percentage", path: "variants",
        onChange: save,
        rowStart: function (variant, index) {
          var path = "variants[" + index + "]";
          var key = el("input", { type: "text", "class": "flagsvc-key", value: variant.key, "data-path": path + ".key", "aria-label": "Variant " + (index + 1) + " key", spellcheck: "false" });
          key.addEventListener("input", function () { var old = variant.key; variant.key = key.value.trim(); renameVariant(old, variant.key); save(); });
          key.addEventListener("change", function () { render(); });
          return [key, valueInput(variant, path + ".value")];
        },
        rowEnd: function (variant, index) {
          return state.variants.length > 1 ? el("button", { type: "button", "class": "button flagsvc-small", text: "Remove", "aria-label": "Remove variant " + variant.key, on: { click: function () {
            state.variants.splice(index, 1);
            state.rules.concat([{ serve: state.fallback }]).forEach(function (r) {
              if (r.serve && r.serve.distribution) { r.serve.distribution = r.serve.distribution.filter(function (d) { return d.variant !== variant.key; }); }
            });
            save(); render("#flagsvc-add-variant");
          } } }) : null;
        }
      });
      split.classList.toggle("flagsvc-weights-unused", !usesWeights);
      var add = el("button", { type: "button", "class": "button flagsvc-small", id: "flagsvc-add-variant", text: "+ Variant", on: { click: function () {
        var n = state.variants.length + 1, key = "variant-" + n;
        while (variantKeys().indexOf(key) >= 0) { n += 1; key = "variant-" + n; }
        var value = { "boolean": false, "string": key, "number": 0, "json": {} }[flagType()];
        state.variants.push({ key: key, value: value, weight: 0 });
        save(); render();
      } } });
      var off = variantSelect(state.off, { id: "flagsvc-off-variant", "data-path": "off_variant" }, isBoolean() ? "off (the default)" : "— choose —");
      off.addEventListener("change", function () { state.off = off.value; save(); });
      return section("flagsvc-variants", "Variants", usesWeights
        ? "What the flag can serve. The percentages split everyone whom no rule or list decides (see Everyone else below)."
        : "What the flag can serve.", [
        el("div", { "class": "flagsvc-variant-head", "aria-hidden": "true" }, [el("span", { text: "Key" }), el("span", { text: "Value" }), usesWeights ? el("span", { text: "Everyone else" }) : null]),
        split, add,
        el("p", { "class": "flagsvc-b-row" }, [B.labelled("When the flag is off, a prerequisite fails or a user is on the deny list, serve", off)])
      ]);
    }

    function serveEditor(holder, name, path, allowWeights) {
      // holder[name] is a serve: {variant} | {distribution} | (default only) null = by the variants' percentages
      var box = el("div", { "class": "flagsvc-serve", "data-path": path });
      var serve = holder[name];
      var mode = serve === null ? "weights" : (serve && Array.isArray(serve.distribution) ? "split" : "one");
      var options = [];
      if (allowWeights) { options.push(["weights", "the percentages set in Variants"]); }
      options.push(["one", "one variant"]);
      if (!allowWeights || mode === "split") { options.push(["split", allowWeights ? "a split of its own" : "a percentage split"]); }
      var modeSelect = B.select(options, mode, { "class": "flagsvc-serve-mode", "aria-label": "Serve" });
      modeSelect.addEventListener("change", function () {
        var keys = variantKeys();
        if (modeSelect.value === "weights") { holder[name] = null; }
        else if (modeSelect.value === "one") { holder[name] = { variant: keys.indexOf(isBoolean() ? "on" : "") >= 0 && !allowWeights ? "on" : (allowWeights && isBoolean() ? "off" : keys[0] || "") }; }
        else {
          var share = Math.floor(100 / Math.max(1, keys.length));
          holder[name] = { distribution: keys.map(function (k, i) { return { variant: k, weight: i === 0 ? 100 - share * (keys.length - 1) : share }; }) };
        }
        save(); render("#" + modeSelect.id);
      });
      modeSelect.id = "flagsvc-serve-mode-" + path.replace(/[^A-Za-z0-9]+/g, "-");
      var head = el("div", { "class": "flagsvc-b-row flagsvc-serve-head" }, [B.labelled("Serve", modeSelect)]);
      box.appendChild(head);
      if (mode === "one") {
        var pick = variantSelect(serve.variant, { "class": "flagsvc-serve-variant", "data-path": path + ".variant", "aria-label": "Variant to serve" }, "— choose —");
        pick.addEventListener("change", function () { serve.variant = pick.value; save(); });
        head.appendChild(pick);
      } else if (mode === "split") {
        var entries = serve.distribution.map(function (d) { return { key: d.variant, weight: d.weight }; });
        variantKeys().forEach(function (k) { if (!entries.some(function (e) { return e.key === k; })) { entries.push({ key: k, weight: 0 }); } });
        box.appendChild(B.percentSplit(entries, {
          label: "Percentage split", path: path + ".distribution",
          onChange: function () { serve.distribution = entries.map(function (e) { return { variant: e.key, weight: e.weight }; }); save(); }
        }));
      } else {
        box.appendChild(el("p", { "class": "help", text: "Set in Variants above: " + B.splitWords(state.variants) + "." }));
      }
      return box;
    }

    function targetsSection() {
      var deny = B.chips(state.deny, { path: "targets.deny", label: "Deny list", placeholder: "user ids (Enter, or paste a list)", onChange: save });
      var allow = B.chips(state.allow, { path: "targets.allow", label: "Allow list", placeholder: "user ids (Enter, or paste a list)", onChange: save });
      var allowVariant = variantSelect(state.allowVariant, { id: "flagsvc-allow-variant", "data-path": "targets.allow_variant" }, isBoolean() ? "on (the default)" : "— choose —");
      allowVariant.addEventListener("change", function () { state.allowVariant = allowVariant.value; save(); });
      deny.id = "flagsvc-deny"; allow.id = "flagsvc-allow";
      return section("flagsvc-targets", "Listed users", "Checked before the rules. The deny list wins over the allow list.", [
        el("div", { "class": "flagsvc-b-row" }, [el("h3", { text: "Always get the off variant (deny list)" }), deny]),
        el("div", { "class": "flagsvc-b-row" }, [el("h3", { text: "Always get a chosen variant (allow list)" }), allow, B.labelled("Users on the allow list get", allowVariant)])
      ]);
    }

    function uniqueRuleId(base) {
      var ids = state.rules.map(function (r) { return r.id; });
      var n = 1, id = base;
      while (ids.indexOf(id) >= 0) { n += 1; id = base + "-" + n; }
      return id;
    }

    function moveRule(index, by, focusClass) {
      var target = index + by;
      if (target < 0 || target >= state.rules.length) { return; }
      var rule = state.rules.splice(index, 1)[0];
      state.rules.splice(target, 0, rule);
      save(); render();
      var card = document.getElementById("flagsvc-rule-" + target);
      var button = card.querySelector("." + focusClass);
      (button.disabled ? card.querySelector(focusClass === "flagsvc-rule-up" ? ".flagsvc-rule-down" : ".flagsvc-rule-up") : button).focus();
      alertBox.textContent = "";
      announce("Rule " + rule.id + " is now rule " + (target + 1) + " of " + state.rules.length + ".");
    }

    var live = el("p", { "class": "flagsvc-visually-hidden", "aria-live": "polite" });
    root.appendChild(live);
    function announce(text) { live.textContent = text; }

    function ruleCard(rule, index) {
      var path = "rules[" + index + "]";
      var id = el("input", { type: "text", "class": "flagsvc-rule-id", value: rule.id || "", "data-path": path + ".id", spellcheck: "false" });
      id.addEventListener("input", function () { rule.id = id.value.trim(); save(); });
      var description = el("input", { type: "text", "class": "flagsvc-rule-description vLargeTextField", value: rule.description || "", "data-path": path + ".description" });
      description.addEventListener("input", function () { if (description.value) { rule.description = description.value; } else { delete rule.description; } save(); });
      var n = state.rules.length;
      var tools = el("div", { "class": "flagsvc-rule-tools" }, [
        el("button", { type: "button", "class": "button flagsvc-small flagsvc-rule-up", text: "↑ Up", "aria-label": "Move rule " + (rule.id || index + 1) + " up", disabled: index === 0, on: { click: function () { moveRule(index, -1, "flagsvc-rule-up"); } } }),
        el("button", { type: "button", "class": "button flagsvc-small flagsvc-rule-down", text: "↓ Down", "aria-label": "Move rule " + (rule.id || index + 1) + " down", disabled: index === n - 1, on: { click: function () { moveRule(index, 1, "flagsvc-rule-down"); } } }),
        el("button", { type: "button", "class": "button flagsvc-small flagsvc-rule-duplicate", text: "Duplicate", "aria-label": "Duplicate rule " + (rule.id || index + 1), on: { click: function () {
          var twin = copy(rule); twin.id = uniqueRuleId((rule.id || "rule") + "-copy");
          state.rules.splice(index + 1, 0, twin); save(); render("#flagsvc-rule-" + (index + 1) + " .flagsvc-rule-id");
        } } }),
        el("button", { type: "button", "class": "button flagsvc-small flagsvc-rule-remove", text: "Remove", "aria-label": "Remove rule " + (rule.id || index + 1), on: { click: function () {
          state.rules.splice(index, 1); save(); render("#flagsvc-add-rule"); announce("Rule " + rule.id + " removed.");
        } } })
      ]);
      var holder = { cond: rule.when === undefined ? { all: [] } : rule.when };
      rule.when = holder.cond;
      var conditions = C.editor(holder, {
        words: words, path: path + ".when", attributesList: "flagsvc-attributes", segments: choices.segments,
        emptyRoot: { all: [] }, onChange: function () { rule.when = holder.cond; save(); }
      });
      return el("li", { "class": "flagsvc-rule-card", id: "flagsvc-rule-" + index, "data-path": path }, [
        el("div", { "class": "flagsvc-rule-head" }, [
          el("h3", { "class": "flagsvc-rule-title", text: "Rule " + (index + 1) }),
          B.labelled("Id", id), tools
        ]),
        el("p", { "class": "flagsvc-rule-hint", "aria-live": "polite" }),
        el("div", { "class": "flagsvc-b-row" }, [B.labelled("Description", description, "flagsvc-wide")]),
        el("h4", { text: "If" }), conditions,
        el("h4", { text: "Then" }), serveEditor(rule, "serve", path + ".serve", false),
        el("p", { "class": "flagsvc-rule-words", "data-words-for": String(index) })
      ]);
    }

    function rulesSection() {
      var list = el("ol", { "class": "flagsvc-rule-cards", id: "flagsvc-rules", "data-path": "rules" });
      state.rules.forEach(function (rule, index) { list.appendChild(ruleCard(rule, index)); });
      var add = el("button", { type: "button", "class": "button", id: "flagsvc-add-rule", text: "+ Add rule", on: { click: function () {
        var keys = variantKeys();
        state.rules.push({ id: uniqueRuleId("rule-" + (state.rules.length + 1)), when: { attr: "", op: "in", value: [] }, serve: { variant: keys.indexOf("on") >= 0 ? "on" : keys[0] || "" } });
        save(); render("#flagsvc-rule-" + (state.rules.length - 1) + " .flagsvc-attr");
      } } });
      return section("flagsvc-rules-section", "Rules", "In order: the first rule whose conditions are true decides. Users on the lists above are decided before the rules.", [
        state.rules.length ? list : el("p", { "class": "help", text: "No rules yet: everyone not on a list gets what Everyone else gets. Add a rule to target users by their attributes or segments." }),
        add
      ]);
    }

    function defaultSection() {
      return section("flagsvc-default", "Everyone else", "Users whom no list and no rule decides.", [serveEditor(state, "fallback", "default", true)]);
    }

    function prerequisitesSection() {
      var own = data.flag_key;
      var flags = (choices.flags || []).filter(function (f) { return f.key !== own; });
      var list = el("ul", { "class": "flagsvc-prereqs", "data-path": "prerequisites" });
      state.prerequisites.forEach(function (prereq, index) {
        var path = "prerequisites[" + index + "]";
        var options = [["", "— choose a flag —"]].concat(flags.map(function (f) { return [f.key, f.name ? f.key + " — " + f.name : f.key]; }));
        if (prereq.flag && !flags.some(function (f) { return f.key === prereq.flag; })) { options.push([prereq.flag, prereq.flag + " (not a live flag)"]); }
        var pick = B.select(options, prereq.flag || "", { "data-path": path + ".flag", "aria-label": "Prerequisite flag" });
        pick.addEventListener("change", function () {
          prereq.flag = pick.value;
          var known = flags.filter(function (f) { return f.key === pick.value; })[0];
          prereq.variants = known && known.variants.indexOf("on") >= 0 ? ["on"] : [];
          save(); render('[data-path="' + path + '.flag"]');
        });
        var known = flags.filter(function (f) { return f.key === prereq.flag; })[0];
        var keys = (known ? known.variants : []).slice();
        (prereq.variants || []).forEach(function (v) { if (keys.indexOf(v) < 0) { keys.push(v); } });
        var boxes = el("span", { "class": "flagsvc-prereq-variants", role: "group", "aria-label": "Variants it must give", "data-path": path + ".variants" });
        keys.forEach(function (key) {
          var box = el("input", { type: "checkbox", value: key, checked: (prereq.variants || []).indexOf(key) >= 0 });
          box.addEventListener("change", function () {
            prereq.variants = keys.filter(function (k, i) { return boxes.querySelectorAll("input")[i].checked; });
            save();
          });
          boxes.appendChild(B.labelled(key, box, "flagsvc-check"));
        });
        list.appendChild(el("li", { "class": "flagsvc-b-row flagsvc-prereq", "data-path": path }, [
          pick, el("span", { text: " gives " }), boxes,
          el("button", { type: "button", "class": "button flagsvc-small", text: "Remove", "aria-label": "Remove this prerequisite", on: { click: function () { state.prerequisites.splice(index, 1); save(); render("#flagsvc-add-prerequisite"); } } })
        ]));
      });
      var add = el("button", { type: "button", "class": "button flagsvc-small", id: "flagsvc-add-prerequisite", text: "+ Prerequisite", disabled: !flags.length, on: { click: function () {
        state.prerequisites.push({ flag: "", variants: [] }); save();
        render('[data-path="prerequisites[' + (state.prerequisites.length - 1) + '].flag"]');
      } } });
      return section("flagsvc-prerequisites", "Prerequisites", flags.length
        ? "Other flags that must give one of the chosen variants for the same user; otherwise this flag serves its off variant."
        : "Other flags that must give a chosen variant first. This tenant has no other live flag yet.", [list, add]);
    }

    function render(focusSelector) {
      datalist.textContent = "";
      (choices.attributes || []).forEach(function (a) { datalist.appendChild(el("option", { value: a })); });
      sections.textContent = "";
      [variantsSection(), targetsSection(), rulesSection(), defaultSection(), prerequisitesSection()].forEach(function (s) { sections.appendChild(s); });
      describe();
      if (focusSelector) {
        var target = root.querySelector(focusSelector);
        if (target) { target.focus(); }
      }
    }

    // --- the flag's type (add page) and tenant (add page) ------------------------------------------
    if (typeSelect) {
      var lastType = typeSelect.value;
      typeSelect.addEventListener("change", function () {
        var templates = data.new_flag_by_type;
        var untouched = JSON.stringify(state.variants) === JSON.stringify(templates[lastType].variants);
        var next = typeSelect.value;
        if (untouched) {
          state.variants = copy(templates[next].variants);
          state.off = templates[next].off_variant;
        } else {
          state.variants.forEach(function (v) {
            v.value = { "boolean": !!v.value, "string": typeof v.value === "object" ? JSON.stringify(v.value) : String(v.value), "number": Number(v.value) || 0, "json": {} }[next];
          });
        }
        lastType = next;
        save(); render();
      });
    }
    var tenantSelect = document.getElementById("id_tenant");
    var choicesTenant = data.choices ? String(data.tenant) : null;
    function tenantChanged() {
      if (!tenantSelect.value || tenantSelect.value === choicesTenant) { return; }
      choicesTenant = tenantSelect.value;
      fetch(data.choices_url + "?tenant=" + encodeURIComponent(tenantSelect.value), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { return r.ok ? r.json() : null; })
        .then(function (fresh) { if (fresh) { choices = fresh; render(); } });
    }
    if (tenantSelect && tenantSelect.tagName === "SELECT") {
      tenantSelect.addEventListener("change", tenantChanged);
      if (window.django && window.django.jQuery) { window.django.jQuery(tenantSelect).on("change", tenantChanged); }
      if (!data.choices) { tenantChanged(); }
    }
    form.querySelectorAll("#id_state input").forEach(function (radio) { radio.addEventListener("change", describe); });

    // --- problems at their controls, and no silent save of a split that does not add up ----------
    root.addEventListener("input", clearProblem);
    root.addEventListener("change", clearProblem);
    function clearProblem(event) {
      var ids = (event.target.getAttribute && event.target.getAttribute("aria-describedby")) || "";
      ids.split(" ").forEach(function (id) {
        var note = id && document.getElementById(id);
        if (note && note.classList.contains("flagsvc-problem")) { note.remove(); }
      });
      if (event.target.removeAttribute) { event.target.removeAttribute("aria-invalid"); }
    }

    form.addEventListener("submit", function (event) {
      if (root.hidden) { return; }  // the JSON view posts as typed; the server judges it
      var bad = Array.prototype.filter.call(root.querySelectorAll('.flagsvc-split[data-valid="false"]'), function (split) {
        return !split.classList.contains("flagsvc-weights-unused");
      });
      if (!bad.length) { return; }
      event.preventDefault();
      alertBox.textContent = "A percentage split does not total 100 %: fix the percentages marked below, then save.";
      var input = bad[0].querySelector("input[type=number]");
      if (input) { input.focus(); }
    });

    var problem = load();
    if (problem) {
      jsonMode.show(true);
      jsonMode.note.textContent = problem;
      return;
    }
    jsonMode.show(false);
    // Problems of the fields the editor stands in for; the others (key, tags, ...) Django shows itself.
    var mine = (data.problems || []).filter(function (p) { return /^(variants|off_variant|targets|rules|default|prerequisites)\b/.test(p.path); });
    var unplaced = B.placeProblems(root, mine);
    describe();
    if (unplaced.length) {
      alertBox.appendChild(el("p", { text: "Also:" }));
      var ul = el("ul", { "class": "errorlist" });
      unplaced.forEach(function (p) { ul.appendChild(el("li", { text: p.path + ": " + p.message })); });
      alertBox.appendChild(ul);
    }
  });
})();
