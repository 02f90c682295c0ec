/* The preview panel of the flag change page: posts the whole form (unsaved edits included) to the
 * admin's preview view and shows the variant, the reason, the trace, and the sample summary.
 * Everything the server returns is written with textContent, never as HTML. */
(function () {
  "use strict";

  function node(tag, className, text) {
    var el = document.createElement(tag);
    if (className) { el.className = className; }
    if (text !== undefined && text !== null) { el.textContent = text; }
    return el;
  }

  function show(value) {
    return value === undefined ? "(missing)" : JSON.stringify(value);
  }

  function outcome(ok) {
    return ok ? "✓" : "✗";
  }

  function conditionItem(cond) {
    var li = node("li", cond.outcome ? "flagsvc-true" : "flagsvc-false");
    if (cond.combinator) {
      li.textContent = outcome(cond.outcome) + " " + cond.combinator;
    } else if (cond.segment) {
      li.textContent = outcome(cond.outcome) + " segment " + cond.segment +
        (cond.matched_by ? " (matched by " + cond.matched_by + ")" : "");
    } else {
      li.textContent = outcome(cond.outcome) + " " + cond.attribute + " " + cond.operator + " " +
        show(cond.expected) + " — the user has " + show(cond.actual);
    }
    var children = cond.conditions || [];
    if (children.length) {
      var ul = node("ul");
      children.forEach(function (child) { ul.appendChild(conditionItem(child)); });
      li.appendChild(ul);
    }
    return li;
  }

  function stepText(step) {
    switch (step.step) {
      case "off": return step.outcome ? "The flag is off → " + step.variant : "The flag is on";
      case "prerequisite":
        return "Prerequisite " + step.flag + " must give " + (step.expected || []).join(" or ") +
          ": it gives " + (step.actual === null ? "nothing" : step.actual) + (step.error ? " (" + step.error + ")" : "");
      case "target":
        return (step.list === "deny" ? "Deny list" : "Allow list") + ": " +
          (step.outcome ? "listed → " + step.variant : "not listed");
      case "rule":
        return "Rule " + step.rule_id + ": " + (step.outcome ? "matches → " + step.variant : "does not match") +
          (step.error_code ? " (" + step.error_code + ")" : "");
      case "default":
        return "Default → " + (step.variant || "?") +
          (step.bucket !== undefined ? " (bucket " + Number(step.bucket).toFixed(4) + ")" : "") +
          (step.error_code ? " (" + step.error_code + ")" : "");
      default: return JSON.stringify(step);
    }
  }

  function traceList(trace) {
    var ol = node("ol", "flagsvc-trace");
    (trace || []).forEach(function (step) {
      var li = node("li", step.outcome ? "flagsvc-true" : "flagsvc-false", stepText(step));
      if (step.conditions && step.conditions.length) {
        var ul = node("ul");
        step.conditions.forEach(function (c) { ul.appendChild(conditionItem(c)); });
        li.appendChild(ul);
      }
      ol.appendChild(li);
    });
    return ol;
  }

  function renderError(out, body) {
    out.appendChild(node("p", "errornote", body.error || "The preview failed."));
    var fields = body.fields || [];
    if (fields.length) {
      var ul = node("ul", "errorlist");
      fields.forEach(function (f) {
        (f.messages || []).forEach(function (m) {
          ul.appendChild(node("li", null, (f.label ? f.label + ": " : "") + m));
        });
      });
      out.appendChild(ul);
    }
  }

  function renderResult(out, body) {
    var r = body.result;
    var dl = node("dl", "flagsvc-result");
    [["Variant", r.variant, "flagsvc-preview-variant"],
     ["Value", JSON.stringify(r.value), "flagsvc-preview-value"],
     ["Reason", r.reason + (r.rule_id ? " (rule " + r.rule_id + ")" : ""), "flagsvc-preview-reason"],
     ["Bucket", r.details && r.details.bucket !== undefined ? Number(r.details.bucket).toFixed(4) : "—", null]
    ].forEach(function (row) {
      dl.appendChild(node("dt", null, row[0]));
      var dd = node("dd", null, row[1]);
      if (row[2]) { dd.id = row[2]; }
      dl.appendChild(dd);
    });
    out.appendChild(dl);
    out.appendChild(node("h3", null, "Trace"));
    out.appendChild(traceList(r.trace));
    if (body.sample) {
      out.appendChild(sampleSummary(body.sample));
    }
  }

  function plural(n, one, many) {
    return n.toLocaleString("en") + " " + (n === 1 ? one : many);
  }

  /* "Of 1,000 sample users: 612 off, 388 on. 188 would change if you save this: off → on 150, on → off 38." */
  function sampleSummary(s) {
    var box = node("div", "flagsvc-sample");
    box.id = "flagsvc-preview-sample";
    var counts = Object.keys(s.variants || {}).sort().map(function (k) {
      return s.variants[k].toLocaleString("en") + " " + k;
    });
    box.appendChild(node("p", null, "Sample of " + s.size.toLocaleString("en") + " users: " + counts.join(", ") + "."));
    if (s.changed !== null && s.changed !== undefined) {
      var moves = s.moves || [];
      var p = node("p", "flagsvc-sample-changed", s.changed === 0
        ? "None of them would get a different variant if you save this."
        : plural(s.changed, "of them would", "of them would") + " get a different variant if you save this:");
      p.id = "flagsvc-preview-changed";
      box.appendChild(p);
      if (moves.length) {
        var ul = node("ul", "flagsvc-directions");
        ul.id = "flagsvc-preview-directions";
        moves.forEach(function (m) {
          var li = node("li", null, m.from + " → " + m.to + ": " + plural(m.count, "user", "users"));
          li.dataset.from = m.from;
          li.dataset.to = m.to;
          li.dataset.count = m.count;
          ul.appendChild(li);
        });
        box.appendChild(ul);
      }
    }
    var varied = s.varied || [];
    box.appendChild(node("p", "help", varied.length
      ? "The sample users have their own ids and varied " + varied.join(", ") + " (values your rules mention, others, or none)."
      : "The sample users have their own ids; your rules test no attribute, so they share the attributes above."));
    return box;
  }

  document.addEventListener("DOMContentLoaded", function () {
    var panel = document.getElementById("flagsvc-preview");
    if (!panel) { return; }
    var form = panel.closest("form");
    var out = document.getElementById("flagsvc-preview-result");
    var button = document.getElementById("flagsvc-preview-run");

    function run() {
      out.textContent = "Evaluating…";
      out.dataset.state = "busy";
      fetch(panel.dataset.url, {
        method: "POST",
        body: new FormData(form),
        credentials: "same-origin",
        headers: { "X-Requested-With": "XMLHttpRequest", "Accept": "application/json" }
      }).then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      }).then(function (reply) {
        out.textContent = "";
        if (reply.ok) { renderResult(out, reply.body); } else { renderError(out, reply.body); }
        out.dataset.state = reply.ok ? "done" : "error";
      }).catch(function (err) {
        out.textContent = "The preview failed: " + err.message;
        out.dataset.state = "error";
      });
    }

    button.addEventListener("click", run);
    // Enter in any input of the panel (rows added later included) previews; it never saves the flag.
    panel.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && event.target.tagName === "INPUT") { event.preventDefault(); run(); }
    });
  });
})();
