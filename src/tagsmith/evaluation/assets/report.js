"use strict";
(function () {
  const D = JSON.parse(document.getElementById("data").textContent);
  const $ = (id) => document.getElementById(id);
  const esc = (s) => String(s == null ? "" : s).replace(/[&<>"']/g,
    (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
  const RIGHT = (o) => o === "right" || o === "empty";
  const haystack = D.items.map((it) => (it[0] + " " + it[1] + " " + it[2]).toLowerCase());
  const state = { q: "", facet: "", vocab: "", a: 0, b: Math.min(1, D.runs.length - 1), outcome: "any",
                  item: null, page: 0, size: 50, open: null };

  // ------------------------------------------------------------------ sortable tables
  document.querySelectorAll("table.sortable").forEach((table) => {
    table.querySelectorAll("th[data-col]").forEach((th) => {
      th.addEventListener("click", () => {
        const col = +th.dataset.col, text = th.dataset.type === "text";
        const asc = !th.classList.contains("asc");
        table.querySelectorAll("th").forEach((h) => h.classList.remove("asc", "desc"));
        th.classList.add(asc ? "asc" : "desc");
        const body = table.tBodies[0];
        const rows = Array.from(body.rows);
        const key = (row) => row.cells[col].dataset.sort;
        rows.sort((x, y) => {
          let a = key(x), b = key(y);
          if (!text) {
            a = a === "" ? -Infinity : +a;
            b = b === "" ? -Infinity : +b;
            return asc ? a - b : b - a;
          }
          return asc ? a.localeCompare(b) : b.localeCompare(a);
        });
        rows.forEach((r) => body.appendChild(r));
      });
    });
  });

  // ------------------------------------------------------------------ viewer controls
  const fill = (select, values, labels) => {
    values.forEach((v, i) => {
      const o = document.createElement("option");
      o.value = v; o.textContent = labels ? labels[i] : v;
      select.appendChild(o);
    });
  };
  fill($("facet"), D.facets);
  fill($("vocab"), D.vocabularies);
  const runLabels = D.runs.map((r, i) => (i + 1) + ". " + r.name);
  fill($("run-a"), D.runs.map((_, i) => String(i)), runLabels);
  fill($("run-b"), D.runs.map((_, i) => String(i)), runLabels);
  if (D.vocabularies.length < 2) $("vocab").parentElement.hidden = true;

  function sync() {
    $("q").value = state.q; $("facet").value = state.facet; $("vocab").value = state.vocab;
    $("run-a").value = String(state.a); $("run-b").value = String(state.b); $("outcome").value = state.outcome;
    const only = $("only-item");
    only.hidden = state.item === null;
    only.innerHTML = state.item === null ? "" :
      "item <b>" + esc(state.item) + "</b> only <button type=\"button\" id=\"clear-item\">show all</button>";
    if (state.item !== null) $("clear-item").addEventListener("click", () => {
      state.item = null; state.facet = ""; state.open = null; history.replaceState(null, "", "#items"); update();
    });
  }
  // selects report "change" (keyboard and scripted choices too), the search box "input"
  const on = (id, key, parse) => $(id).addEventListener($(id).tagName === "SELECT" ? "change" : "input", (e) => {
    state[key] = parse ? parse(e.target.value) : e.target.value;
    state.page = 0; state.open = null; render();
  });
  on("q", "q", (v) => v.trim().toLowerCase());
  on("facet", "facet"); on("vocab", "vocab"); on("outcome", "outcome");
  on("run-a", "a", Number); on("run-b", "b", Number);
  $("prev").addEventListener("click", () => { if (state.page > 0) { state.page--; state.open = null; render(); } });
  $("next").addEventListener("click", () => { state.page++; state.open = null; render(); });

  function matches(slot) {
    const n = slot[0], cells = slot[2], it = D.items[n];
    if (state.item !== null && it[0] !== state.item) return false;
    if (state.facet && D.facets[slot[1]] !== state.facet) return false;
    if (state.vocab && !D.details[n].some((d) => d[0] === state.vocab)) return false;
    if (state.q && !haystack[n].includes(state.q)) return false;
    const a = RIGHT(cells[state.a][0]), b = RIGHT(cells[state.b][0]);
    switch (state.outcome) {
      case "a-right-b-wrong": return a && !b;
      case "a-wrong-b-right": return !a && b;
      case "both-wrong": return !a && !b;
      case "both-right": return a && b;
      case "a-wrong": return !a;
      case "b-wrong": return !b;
      case "differ": return cells[state.a][1].join("\u0000") !== cells[state.b][1].join("\u0000");
      default: return true;
    }
  }

  const cell = (c) => {
    const text = c[1].length ? c[1].map(esc).join(", ") : "(none)";
    const score = c[2] == null ? "" : " <span class=\"score\">" + (100 * c[2]).toFixed(0) + "%</span>";
    return "<td class=\"" + c[0] + "\">" + text + score + "</td>";
  };

  function detailHtml(n) {
    const it = D.items[n], det = D.details[n];
    let h = "<div class=\"detail\"><h4>" + esc(it[1]) + "</h4><div class=\"desc\">" + esc(it[2]) + "</div>";
    h += "<p class=\"note\">id " + esc(it[0]) + (it[3] ? " &middot; category " + esc(it[3]) : "") + "</p>";
    h += "<table><tr><th>facet</th><th>gold</th>" + D.runs.map((r) => "<th>" + esc(r.name) + "</th>").join("") + "</tr>";
    D.slots.filter((s) => s[0] === n).forEach((s) => {
      const gold = it[4][D.facets[s[1]]];
      h += "<tr><td>" + esc(D.facets[s[1]]) + "</td><td>" + (gold.length ? gold.map(esc).join(" | ") : "n/a") + "</td>"
        + s[2].map(cell).join("") + "</tr>";
    });
    h += "</table>";
    D.runs.forEach((r, k) => {
      const d = det[k];
      h += "<h4>" + esc(r.name) + (d[0] ? " <span class=\"note\">vocabulary " + esc(d[0]) + "</span>" : "") + "</h4>";
      if (d[2]) h += "<p class=\"wrong\">error: " + esc(d[2]) + "</p>";
      if (d[4].length) h += "<p class=\"note\">rejected by the post-check: " + d[4].map(esc).join("; ") + "</p>";
      if (d[6]) {
        const rows = [];
        Object.entries(d[6]).forEach(([facet, values]) => Object.entries(values).forEach(([value, span]) => {
          rows.push("<li>" + esc(facet) + ": " + esc(value) + " &larr; " + (span == null
            ? "<i>not stated in the text</i>" : "&ldquo;" + esc(span) + "&rdquo;") + "</li>");
        }));
        if (rows.length) h += "<div>evidence</div><ul class=\"evidence\">" + rows.join("") + "</ul>";
      }
      if (d[1] != null) h += "<div>raw answer</div><pre class=\"raw\">" + esc(d[1]) + "</pre>";
      if (d[3]) {
        h += "<details class=\"prompt\"><summary>prompt (" + d[3].length + " messages, as sent to the engine)</summary>"
          + d[3].map((m) => "<div><b>" + esc(m[0]) + "</b></div><pre>" + esc(m[1].map((k) => D.strings[k]).join("\n")) + "</pre>").join("")
          + "</details>";
      } else if (r.kind === "llm") {
        h += "<p class=\"note\">prompt not recorded (a result cached by an older tagsmith)</p>";
      }
    });
    return h + "</div>";
  }

  function render() {
    const rows = D.slots.filter(matches);
    const pages = Math.max(1, Math.ceil(rows.length / state.size));
    state.page = Math.min(state.page, pages - 1);
    $("count").textContent = rows.length + (rows.length === 1 ? " slot" : " slots");
    $("page").textContent = "page " + (state.page + 1) + " of " + pages;
    $("prev").disabled = state.page === 0;
    $("next").disabled = state.page >= pages - 1;
    const head = "<tr><th>item</th><th>title</th><th>facet</th><th>gold</th>"
      + D.runs.map((r, i) => "<th>" + (i === state.a ? "A: " : i === state.b ? "B: " : "") + esc(r.name) + "</th>").join("")
      + "</tr>";
    $("viewer").tHead.innerHTML = head;
    const shown = rows.slice(state.page * state.size, (state.page + 1) * state.size);
    const cols = 4 + D.runs.length;
    $("viewer").tBodies[0].innerHTML = shown.map((s) => {
      const it = D.items[s[0]], facet = D.facets[s[1]], gold = it[4][facet];
      const title = it[1].length > 110 ? it[1].slice(0, 110) + "\u2026" : it[1];
      const key = s[0] + ":" + s[1];
      let h = "<tr class=\"slot\" data-key=\"" + key + "\" data-item=\"" + esc(it[0]) + "\"><td>" + esc(it[0])
        + "</td><td class=\"title\">" + esc(title) + "</td><td>" + esc(facet) + "</td><td>"
        + (gold.length ? gold.map(esc).join(" | ") : "n/a") + "</td>" + s[2].map(cell).join("") + "</tr>";
      if (state.open === key) h += "<tr class=\"detail\"><td colspan=\"" + cols + "\">" + detailHtml(s[0]) + "</td></tr>";
      return h;
    }).join("");
  }
  $("viewer").tBodies[0].addEventListener("click", (e) => {
    const row = e.target.closest("tr.slot");
    if (!row) return;
    state.open = state.open === row.dataset.key ? null : row.dataset.key;
    render();
  });
  function update() { sync(); render(); }

  // ------------------------------------------------------------------ links into the viewer
  function fromHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    if (!params.has("item")) return;
    state.item = params.get("item");
    state.facet = params.get("facet") || "";
    state.q = ""; state.vocab = ""; state.outcome = "any"; state.page = 0;
    const first = D.slots.find(matches);
    state.open = first ? first[0] + ":" + first[1] : null;
    update();
    $("items").scrollIntoView();
  }
  window.addEventListener("hashchange", fromHash);
  document.querySelectorAll("button.show-flips").forEach((btn) => {
    btn.addEventListener("click", () => {
      state.a = 0;
      state.b = D.runs.findIndex((r) => r.name === btn.dataset.b);
      state.outcome = btn.dataset.outcome;
      state.item = null; state.q = ""; state.facet = ""; state.vocab = ""; state.page = 0; state.open = null;
      update();
      $("items").scrollIntoView();
    });
  });
  update();
  fromHash();
})();
