// clusterlens inspect: the grading and grid views (plain JavaScript, no build step).
//
// Every decision goes into an outbox kept in localStorage before it is sent, and leaves the
// outbox only when the server has committed it, so a closed tab or a server restart loses
// nothing: the outbox is replayed (in order, idempotently) when the page loads again. A 401
// (the server wants its token, e.g. after a restart with a new one) keeps the outbox and asks
// for the token; any other refusal moves the decision to a "refused" list that stays on the
// page with its reason. Every request names the iteration it was made in.
// Every string from the server is put on the page with textContent, never as HTML.
"use strict";
(() => {
  const C = JSON.parse(document.getElementById("config").textContent);
  const G = C.grader;
  const OUTBOX_KEY = `clusterlens:${C.project}:${C.iteration}:${G}:outbox`;
  const REFUSED_KEY = `clusterlens:${C.project}:${C.iteration}:${G}:refused`;
  const TOKEN_KEY = `clusterlens:${C.project}:token`;
  const TONE_KEY = `clusterlens:${G}:tone`; // brightness and contrast, each grader their own
  const PAGE = 12; // grid tiles per page
  const COLS = 4;
  const PREFETCH = 3;
  const ZOOMS = [1, 1.5, 2, 3, 4, 6];
  const BAR_LENGTHS = [60, 30, 20, 10, 5, 2, 1]; // arcsec: the longest that fits is drawn
  const LEGACY_VIEWER = "https://www.legacysurvey.org/viewer";
  let frameWidth = 0; // px, the cutout's frame (re-read after a window resize)
  window.addEventListener("resize", () => {
    frameWidth = 0;
    if (window.__clusterlens.ready && mode === "single") applyZoom();
  });
  const $ = (id) => document.getElementById(id);

  let items = [];
  let mine = {}; // object id -> {is_lens, grade, points, t, comment, flags}
  const drafts = {}; // object id -> {comment, flags} typed but not yet sent with a decision
  let idx = 0;
  let mode = "single";
  let stretch = "legacy";
  let band = "colour"; // colour, g, r, z
  let zoom = 1;
  let marks = {}; // object id -> points being marked, [[x, y], ...] arcsec
  let lastDecided = null;
  let turnStart = null;
  let outbox = [];
  let refused = []; // decisions the server refused for good: {op, reason}
  const noImage = {}; // object id -> why its image could not be shown
  let needsToken = false;
  let sending = false;
  let retryDelay = 500;
  let gridPage = -1;
  const preloaded = new Map();
  const turns = [];
  window.__clusterlens = { turns, ready: false, pending: () => outbox.length };

  // -- helpers ---------------------------------------------------------------------------
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const imageView = () => (band === "colour" ? stretch : band);
  const imgUrl = (rank, view) => `/img/${C.iteration}/${rank}/${view}.png`;
  const fmt = (v, digits) => (v === null || v === undefined ? "–" : Number(v).toFixed(digits));
  const mass = (m) => {
    if (!m) return "–";
    const e = Math.floor(Math.log10(m));
    const sup = String(e).replace(/[-0-9]/g, (d) => "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"["-0123456789".indexOf(d)]);
    return `${(m / 10 ** e).toFixed(2)} × 10${sup} M☉`;
  };
  const rEin = (pts) =>
    pts && pts.length ? pts.reduce((s, p) => s + Math.hypot(p[0], p[1]), 0) / pts.length : null;
  const describe = (d) => {
    if (!d) return "not decided yet";
    if (!d.is_lens) return "not a lens";
    return d.grade ? `lens, grade ${d.grade}` : "lens";
  };
  const message = (text) => {
    $("message").textContent = text || "";
  };

  function preload(rank, view) {
    const url = imgUrl(rank, view);
    if (preloaded.has(url)) return;
    const im = new Image();
    im.src = url;
    preloaded.set(url, im);
    if (preloaded.size > 400) preloaded.delete(preloaded.keys().next().value);
  }

  // -- outbox: every change is saved before the grader moves on ------------------------------
  function saveOutbox() {
    try {
      localStorage.setItem(OUTBOX_KEY, JSON.stringify(outbox));
      localStorage.setItem(REFUSED_KEY, JSON.stringify(refused));
    } catch (e) {
      /* private mode: the in-memory outbox still works */
    }
  }
  function apiHeaders() {
    const h = { "Content-Type": "application/json" };
    let t = null;
    try {
      t = sessionStorage.getItem(TOKEN_KEY);
    } catch (e) {
      /* no session storage: the cookie alone */
    }
    if (t) h["X-Clusterlens-Token"] = t;
    return h;
  }
  // A request to the server with the grader's token and cookie; null when the server cannot
  // be reached (every caller then says so, or retries, instead of throwing a page error).
  async function request(url, init = {}) {
    try {
      return await fetch(url, { ...init, headers: apiHeaders(), credentials: "same-origin" });
    } catch (e) {
      return null;
    }
  }
  function askToken() {
    const t = window.prompt("This server needs its team token to save your decisions:");
    if (t) {
      try {
        sessionStorage.setItem(TOKEN_KEY, t.trim());
      } catch (e) {
        /* keep asking */
      }
    }
  }
  function enqueue(kind, body) {
    body.iteration = C.iteration;
    if (kind === "position") {
      const last = outbox[outbox.length - 1];
      if (last && last.kind === "position" && !(sending && outbox.length === 1)) {
        last.body = body; // only the latest position matters
        saveOutbox();
        pump();
        return;
      }
    }
    outbox.push({ kind, body });
    saveOutbox();
    pump();
  }
  function showSave() {
    const n = outbox.length;
    const s = $("save");
    const lost = refused.length ? ` · ${refused.length} refused, not saved` : "";
    if (needsToken && n) {
      s.textContent = `not saved: the server needs its token (${n} waiting)${lost}`;
      s.className = "save bad";
    } else if (n) {
      s.textContent = `saving ${n}…${lost}`;
      s.className = refused.length ? "save bad" : "save busy";
    } else if (refused.length) {
      s.textContent = `${refused.length} refused, not saved: ${refused[refused.length - 1].reason}`;
      s.className = "save bad";
    } else {
      s.textContent = "all saved ✓";
      s.className = "save";
    }
  }
  async function pump() {
    showSave();
    if (sending || !outbox.length) return;
    sending = true;
    const op = outbox[0];
    const resp = await request(`/api/${op.kind}`, {
      method: "POST",
      body: JSON.stringify(op.body),
    });
    if (resp && resp.ok) {
      outbox.shift();
      needsToken = false;
      saveOutbox();
      retryDelay = 500;
      sending = false;
      if (op.kind === "decide" && op.body.object_id === lastDecided) showOthers(lastDecided, $("last"));
      if (op.kind === "undo") {
        // the server restored the decision the undone one had replaced (or none)
        let data = null;
        try {
          data = await resp.json();
        } catch (e) {
          data = null;
        }
        if (data && data.restored && !(op.body.object_id in mine)) {
          mine[op.body.object_id] = data.restored;
          message(`Undone: your decision on ${op.body.object_id} is back to ${describe(data.restored)}.`);
          render();
        }
      }
      pump();
      return;
    }
    if (resp && resp.status === 401) {
      // the decision stays in the outbox until the server has stored it
      sending = false;
      const first = !needsToken;
      needsToken = true;
      showSave();
      if (first) askToken();
      setTimeout(pump, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
      return;
    }
    if (resp && resp.status >= 400 && resp.status < 500) {
      // refused for good (it would be refused again): keep it visible with the reason
      outbox.shift();
      let text = `${resp.status}`;
      try {
        text = (await resp.json()).error || text;
      } catch (e) {
        /* keep the status */
      }
      if (op.kind !== "position") refused.push({ op, reason: text });
      saveOutbox();
      message(`Not saved: ${text}`);
      sending = false;
      if (await reload()) render();
      pump();
      return;
    }
    sending = false;
    const s = $("save");
    s.textContent = `offline: ${outbox.length} waiting, retrying…`;
    s.className = "save bad";
    setTimeout(pump, retryDelay);
    retryDelay = Math.min(retryDelay * 2, 10000);
  }
  function flushed() {
    return new Promise((resolve) => {
      const check = () =>
        (outbox.length && !needsToken) || sending ? setTimeout(check, 50) : resolve();
      check();
    });
  }

  // -- state from the server -------------------------------------------------------------
  async function reload() {
    const resp = await request(`/api/queue?grader=${encodeURIComponent(G)}`);
    if (!resp) {
      message("Cannot reach the server to load the queue; decisions wait in the outbox.");
      return false;
    }
    if (!resp.ok) {
      message(`Cannot load the queue (${resp.status}).`);
      return false;
    }
    const data = await resp.json();
    items = data.items;
    mine = data.mine;
    const at = items.findIndex((it) => it.id === data.position);
    if (at >= 0) idx = at;
    else {
      const first = items.findIndex((it) => !(it.id in mine));
      idx = first >= 0 ? first : 0;
    }
    return true;
  }

  // -- progress and time left -----------------------------------------------------------
  function progress() {
    const n = items.length;
    const done = items.reduce((s, it) => s + (it.id in mine ? 1 : 0), 0);
    const times = Object.values(mine)
      .map((d) => d.t)
      .sort((a, b) => a - b);
    const gaps = [];
    for (let i = 1; i < times.length; i++) {
      const g = times[i] - times[i - 1];
      if (g >= 0.2 && g < 300) gaps.push(g); // longer gaps are breaks; shorter, imports
    }
    let left = "";
    if (done >= n && n) left = "queue done";
    else if (gaps.length >= 3) {
      const recent = gaps.slice(-30).sort((a, b) => a - b);
      const secs = recent[Math.floor(recent.length / 2)] * (n - done);
      left =
        secs < 90
          ? `about ${Math.round(secs)} s left`
          : secs < 5400
            ? `about ${Math.round(secs / 60)} min left`
            : `about ${(secs / 3600).toFixed(1)} h left`;
    } else left = "time left: after a few decisions";
    $("progress").textContent = `${done} / ${n} decided · ${left}`;
  }

  // -- single view ------------------------------------------------------------------------
  function currentPoints(oid) {
    if (oid in marks) return marks[oid];
    const d = mine[oid];
    return d && d.points ? d.points.map((p) => p.slice()) : [];
  }
  function drawMarks() {
    const it = items[idx];
    const svg = $("marks");
    const n = C.size;
    svg.setAttribute("viewBox", `0 0 ${n} ${n}`);
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    if (!it) return;
    const ns = "http://www.w3.org/2000/svg";
    const pts = currentPoints(it.id);
    const r = rEin(pts);
    const c = n / 2;
    const cross = document.createElementNS(ns, "path");
    cross.setAttribute("d", `M${c - 4} ${c}H${c + 4}M${c} ${c - 4}V${c + 4}`);
    cross.setAttribute("class", "bcg");
    svg.appendChild(cross);
    if (r) {
      const circle = document.createElementNS(ns, "circle");
      circle.setAttribute("cx", c);
      circle.setAttribute("cy", c);
      circle.setAttribute("r", r / C.pixel_scale);
      circle.setAttribute("class", "ring");
      svg.appendChild(circle);
    }
    for (const [x, y] of pts) {
      const dot = document.createElementNS(ns, "circle");
      dot.setAttribute("cx", c + x / C.pixel_scale);
      dot.setAttribute("cy", c - y / C.pixel_scale);
      dot.setAttribute("r", 2.2 / zoom);
      dot.setAttribute("class", "pt");
      svg.appendChild(dot);
    }
    const saved = mine[it.id] && mine[it.id].points ? mine[it.id].points : [];
    const unsaved = it.id in marks && JSON.stringify(marks[it.id]) !== JSON.stringify(saved);
    $("rein").textContent = r
      ? `θ_E ≈ ${r.toFixed(2)}″ from ${pts.length} point${pts.length > 1 ? "s" : ""}` +
        (unsaved ? " · press A/B/C/L to save" : "")
      : "click on the arc to mark it";
  }
  function applyZoom() {
    $("zoomer").style.transform = `scale(${zoom})`;
    $("zoom-name").textContent = `zoom ×${zoom.toFixed(zoom % 1 ? 2 : 0)}`;
    // the image fills the frame, so a length's share of the field (times the zoom) is its
    // share of the frame; the bar is at most a quarter of the frame wide
    const field = C.size * C.pixel_scale;
    const length = BAR_LENGTHS.find((l) => (l / field) * zoom <= 0.25) || BAR_LENGTHS[BAR_LENGTHS.length - 1];
    if (!frameWidth) frameWidth = $("frame").clientWidth; // read once: no layout per turn
    $("scalebar-bar").style.width = `${(length / field) * zoom * frameWidth}px`;
    $("scalebar").dataset.arcsec = String(length);
    $("scalebar-label").textContent = `${length}″`;
    drawMarks();
  }
  function renderFacts(it) {
    $("obj-id").textContent = it.id;
    const link = $("legacy");
    const known = Number.isFinite(it.ra) && Number.isFinite(it.dec);
    link.hidden = !known;
    if (known)
      link.href = `${LEGACY_VIEWER}?ra=${it.ra.toFixed(5)}&dec=${it.dec.toFixed(5)}&layer=ls-dr10&zoom=16`;
    const dl = $("facts");
    while (dl.firstChild) dl.removeChild(dl.firstChild);
    const rows = [
      ["rank", `${it.rank + 1} of ${items.length}`],
      ["RA, Dec", `${fmt(it.ra, 5)}°, ${fmt(it.dec, 5)}°`],
      ["redshift z", fmt(it.z, 3)],
      ["M500", mass(it.m500)],
      ["score", fmt(it.score, 4)],
      ["iteration", String(C.iteration)],
    ];
    for (const [k, v] of rows) {
      dl.appendChild(el("dt", null, k));
      dl.appendChild(el("dd", null, v));
    }
    const d = mine[it.id];
    const note = drafts[it.id] || (d ? { comment: d.comment || "", flags: d.flags || [] } : null);
    $("comment").value = note ? note.comment : "";
    for (const box of document.querySelectorAll("#flags input")) box.checked = !!(note && note.flags.includes(box.value));
    $("mine").textContent = `Your call: ${describe(d)}`;
    $("mine").className = d ? (d.is_lens ? "mine lens" : "mine nonlens") : "mine";
    const others = $("others");
    others.textContent = "";
    others.dataset.oid = "";
    if (d) showOthers(it.id, others);
    else others.appendChild(el("span", "dim", "Other graders' calls appear after yours."));
  }
  async function showOthers(oid, box) {
    box.dataset.oid = oid; // answers for an object no longer shown are dropped
    const resp = await request(
      `/api/others?grader=${encodeURIComponent(G)}&object_id=${encodeURIComponent(oid)}`,
    );
    if (!resp) {
      // the server is down: other graders' calls are a courtesy, the outbox retries decisions
      if (box.dataset.oid === oid) box.textContent = "other graders' calls: server unreachable";
      return;
    }
    if (!resp.ok || box.dataset.oid !== oid) return;
    const data = await resp.json();
    if (box.dataset.oid !== oid) return;
    box.textContent = "";
    if (box === $("last")) box.appendChild(el("span", "dim", `Previous, ${oid}: `));
    if (box === $("last")) box.appendChild(el("span", null, `you: ${describe(mine[oid])}; `));
    if (!data.others.length) {
      box.appendChild(el("span", "dim", "no other grader yet"));
      return;
    }
    const list = el("ul", "otherlist");
    for (const o of data.others) {
      const li = el("li", null);
      li.appendChild(el("b", null, o.grader));
      const r = o.r_ein ? ` (θ_E ${o.r_ein.toFixed(1)}″)` : "";
      li.appendChild(document.createTextNode(`: ${describe(o)}${r}`));
      list.appendChild(li);
    }
    box.appendChild(list);
  }
  function renderSingle() {
    const it = items[idx];
    if (!it) {
      $("obj-id").textContent = "The queue is empty.";
      return;
    }
    const img = $("cutout");
    const url = imgUrl(it.rank, imageView());
    if (img.getAttribute("src") !== url) {
      $("loading").hidden = false;
      img.src = url;
    }
    const cropFrac = C.crop / C.size;
    const box = $("crop");
    box.hidden = C.crop >= C.size;
    box.style.left = box.style.top = `${((1 - cropFrac) / 2) * 100}%`;
    box.style.width = box.style.height = `${cropFrac * 100}%`;
    $("view-name").textContent =
      band === "colour" ? `colour · ${stretch === "legacy" ? "Legacy Surveys" : "Lupton"} stretch` : `${band} band`;
    renderFacts(it);
    applyZoom();
    for (let k = 1; k <= PREFETCH; k++) if (items[idx + k]) preload(items[idx + k].rank, imageView());
  }

  // -- grid view --------------------------------------------------------------------------
  function renderGrid() {
    const page = Math.floor(idx / PAGE);
    const tiles = $("tiles");
    if (page !== gridPage) {
      gridPage = page;
      while (tiles.firstChild) tiles.removeChild(tiles.firstChild);
      for (let i = page * PAGE; i < Math.min(items.length, (page + 1) * PAGE); i++) {
        const it = items[i];
        const tile = el("div", "tile");
        tile.dataset.index = String(i);
        const im = el("img");
        im.alt = `cutout of ${it.id}`;
        im.draggable = false;
        im.src = imgUrl(it.rank, imageView());
        tile.appendChild(im);
        tile.appendChild(el("span", "label", `${i + 1}. ${it.id}`));
        tile.appendChild(el("span", "badge"));
        tile.addEventListener("click", () => go(i));
        tile.addEventListener("dblclick", () => setMode("single"));
        tiles.appendChild(tile);
      }
      const next = (page + 1) * PAGE;
      for (let i = next; i < Math.min(items.length, next + PAGE); i++) preload(items[i].rank, imageView());
    }
    for (const tile of tiles.children) {
      const i = Number(tile.dataset.index);
      const d = mine[items[i].id];
      tile.classList.toggle("cursor", i === idx);
      tile.classList.toggle("lens", !!(d && d.is_lens));
      tile.classList.toggle("nonlens", !!(d && !d.is_lens));
      tile.querySelector(".badge").textContent = d ? (d.is_lens ? d.grade || "lens" : "✕") : "";
    }
    if (turnStart !== null) {
      turns.push(performance.now() - turnStart);
      turnStart = null;
    }
  }
  function setMode(m) {
    mode = m;
    $("single").hidden = m !== "single";
    $("grid").hidden = m !== "grid";
    gridPage = -1;
    render();
  }

  // -- navigation and decisions -----------------------------------------------------------
  function render() {
    progress();
    if (mode === "single") renderSingle();
    else renderGrid();
  }
  function go(i, { record = true } = {}) {
    if (!items.length) return;
    const target = Math.max(0, Math.min(items.length - 1, i));
    if (target !== idx) turnStart = performance.now();
    idx = target;
    if (record) enqueue("position", { grader: G, object_id: items[idx].id });
    render();
  }
  function decide(isLens, grade) {
    const it = items[idx];
    if (!it) return;
    if (it.id in noImage && !window.confirm(`No image was shown for ${it.id} (${noImage[it.id]}). Grade it anyway?`))
      return;
    const pts = isLens ? currentPoints(it.id) : [];
    const note = currentNote();
    mine[it.id] = {
      is_lens: isLens,
      grade: grade,
      points: pts.length ? pts : null,
      t: Date.now() / 1000,
      comment: note.comment,
      flags: note.flags,
    };
    delete marks[it.id];
    delete drafts[it.id];
    lastDecided = it.id;
    const next = Math.min(items.length - 1, idx + 1);
    const body = { grader: G, object_id: it.id, is_lens: isLens, grade: grade, position: items[next].id };
    if (pts.length) body.points = pts;
    if (note.comment) body.comment = note.comment;
    if (note.flags.length) body.flags = note.flags;
    enqueue("decide", body);
    message(idx === items.length - 1 ? "That was the last candidate of the queue." : "");
    if (next !== idx) turnStart = performance.now();
    idx = next;
    $("last").textContent = "";
    $("last").dataset.oid = "";
    render();
  }
  function currentNote() {
    return {
      comment: $("comment").value.trim().slice(0, C.max_comment),
      flags: [...document.querySelectorAll("#flags input")].filter((b) => b.checked).map((b) => b.value),
    };
  }
  function keepDraft() {
    const it = items[idx];
    if (it) drafts[it.id] = currentNote();
  }
  function undo() {
    let target = null;
    for (const [oid, d] of Object.entries(mine)) if (!target || d.t > mine[target].t) target = oid;
    if (!target) {
      message("Nothing to undo.");
      return;
    }
    delete mine[target];
    enqueue("undo", { grader: G, object_id: target });
    message(`Undone: your decision on ${target}.`);
    const i = items.findIndex((it) => it.id === target);
    if (i !== idx) turnStart = performance.now();
    idx = i;
    render();
  }

  // -- input ----------------------------------------------------------------------------
  $("cutout").addEventListener("load", () => {
    $("loading").hidden = true;
    if (turnStart !== null) {
      const t0 = turnStart;
      turnStart = null;
      requestAnimationFrame(() => turns.push(performance.now() - t0));
    }
  });
  $("cutout").addEventListener("error", async () => {
    $("loading").hidden = true;
    const it = items[idx];
    if (!it) return;
    noImage[it.id] = "no cutout could be rendered";
    const resp = await request(imgUrl(it.rank, imageView()));
    try {
      if (resp && !resp.ok) noImage[it.id] = (await resp.json()).error || `HTTP ${resp.status}`;
    } catch (e) {
      /* not JSON: keep the generic reason */
    }
    if (items[idx] === it) message(`No image for ${it.id}: ${noImage[it.id]}`);
  });
  // -- brightness and contrast (a CSS filter on the shown images; the PNGs are unchanged) --
  function applyTone(tone) {
    let plain = true;
    for (const name of ["brightness", "contrast"]) {
      const v = Math.min(3, Math.max(0.3, Number(tone[name]) || 1));
      $(name).value = String(v);
      document.documentElement.style.setProperty(`--${name}`, String(v));
      plain = plain && v === 1;
    }
    document.documentElement.classList.toggle("toned", !plain);
  }
  function saveTone() {
    const tone = { brightness: Number($("brightness").value), contrast: Number($("contrast").value) };
    applyTone(tone);
    try {
      localStorage.setItem(TONE_KEY, JSON.stringify(tone));
    } catch (e) {
      /* private mode: the setting lasts for this page only */
    }
  }
  try {
    applyTone(JSON.parse(localStorage.getItem(TONE_KEY) || "{}") || {});
  } catch (e) {
    applyTone({});
  }
  for (const name of ["brightness", "contrast"]) {
    $(name).addEventListener("input", saveTone);
    $(name).addEventListener("change", () => $(name).blur()); // the grading keys work again
  }
  $("tone-reset").addEventListener("click", () => {
    $("brightness").value = $("contrast").value = "1";
    saveTone();
    $("tone-reset").blur();
  });
  // -- the grading guide: example images of the project's graded candidates, loaded only
  // when the guide is first opened (the page turn never waits for them) --
  $("guide").addEventListener("toggle", () => {
    const box = $("guide-examples");
    if (document.activeElement && document.activeElement.tagName === "SUMMARY") document.activeElement.blur(); // Space skips again
    if (!$("guide").open || box.dataset.built) return;
    box.dataset.built = "1";
    let any = false;
    for (const grade of ["A", "B", "C"]) {
      const ranks = (C.guide_examples && C.guide_examples[grade]) || [];
      if (!ranks.length) continue;
      any = true;
      const row = el("div", "guide-row");
      row.appendChild(el("b", null, grade));
      for (const rank of ranks) {
        const im = el("img");
        im.src = imgUrl(rank, "legacy");
        im.alt = `grade ${grade} example: ${items[rank] ? items[rank].id : `rank ${rank + 1}`}`;
        im.title = im.alt;
        row.appendChild(im);
      }
      box.appendChild(row);
    }
    if (!any) box.appendChild(el("p", "dim small", "No graded candidates in this iteration yet: examples appear once some are graded."));
  });
  $("comment").maxLength = C.max_comment;
  $("comment").addEventListener("input", keepDraft);
  for (const name of C.flags) {
    const label = el("label", "flag");
    const box = el("input");
    box.type = "checkbox";
    box.value = name;
    box.addEventListener("change", () => {
      keepDraft();
      box.blur(); // the grading keys work again at once
    });
    label.appendChild(box);
    label.appendChild(document.createTextNode(` ${name}`));
    $("flags").appendChild(label);
  }
  $("comment").addEventListener("keydown", (ev) => {
    if (ev.key === "Escape") $("comment").blur();
  });
  $("frame").addEventListener("click", (ev) => {
    const it = items[idx];
    if (!it) return;
    const rect = $("cutout").getBoundingClientRect();
    const fx = (ev.clientX - rect.left) / rect.width;
    const fy = (ev.clientY - rect.top) / rect.height;
    if (fx < 0 || fx > 1 || fy < 0 || fy > 1) return;
    const x = (fx - 0.5) * C.size * C.pixel_scale;
    const y = (0.5 - fy) * C.size * C.pixel_scale; // north (up) is +y
    const pts = currentPoints(it.id);
    pts.push([Math.round(x * 1000) / 1000, Math.round(y * 1000) / 1000]);
    marks[it.id] = pts;
    drawMarks();
  });

  document.addEventListener("keydown", (ev) => {
    if (!window.__clusterlens.ready || ev.altKey || ev.metaKey) return;
    if (ev.target && ["INPUT", "TEXTAREA"].includes(ev.target.tagName)) return;
    const k = ev.key;
    const lower = k.length === 1 ? k.toLowerCase() : k;
    if (ev.ctrlKey) {
      if (lower === "z") {
        ev.preventDefault();
        undo();
      }
      return;
    }
    const grid = mode === "grid";
    let handled = true;
    switch (lower) {
      case "a":
      case "b":
      case "c":
        decide(true, lower.toUpperCase());
        break;
      case "l":
        decide(true, null);
        break;
      case "n":
        decide(false, null);
        break;
      case "s":
      case " ":
      case "ArrowRight":
        go(idx + 1);
        break;
      case "ArrowLeft":
      case "Backspace":
        go(idx - 1);
        break;
      case "ArrowDown":
        if (grid) go(idx + COLS);
        else handled = false;
        break;
      case "ArrowUp":
        if (grid) go(idx - COLS);
        else handled = false;
        break;
      case "PageDown":
        go(idx + (grid ? PAGE : 10));
        break;
      case "PageUp":
        go(idx - (grid ? PAGE : 10));
        break;
      case "u":
        undo();
        break;
      case "x":
        if (items[idx]) {
          const pts = currentPoints(items[idx].id);
          pts.pop();
          marks[items[idx].id] = pts;
          drawMarks();
        }
        break;
      case "t":
        stretch = stretch === "legacy" ? "lupton" : "legacy";
        band = "colour";
        gridPage = -1;
        render();
        break;
      case "1":
      case "2":
      case "3":
      case "4":
        band = ["colour", "g", "r", "z"][Number(lower) - 1];
        gridPage = -1;
        render();
        break;
      case "+":
      case "=":
        zoom = ZOOMS.find((z) => z > zoom + 1e-9) || zoom;
        applyZoom();
        break;
      case "-":
        zoom = [...ZOOMS].reverse().find((z) => z < zoom - 1e-9) || zoom;
        applyZoom();
        break;
      case "0":
        zoom = 1;
        applyZoom();
        break;
      case "f":
        zoom = zoom === 1 ? C.size / C.crop : 1;
        applyZoom();
        break;
      case "m":
        setMode(grid ? "single" : "grid");
        break;
      case "Enter":
        if (grid) setMode("single");
        else handled = false;
        break;
      default:
        handled = false;
    }
    if (handled) ev.preventDefault();
  });

  // -- start: replay what a closed tab left unsent, then load the queue ------------------------
  (async () => {
    try {
      outbox = JSON.parse(localStorage.getItem(OUTBOX_KEY) || "[]");
      if (!Array.isArray(outbox)) outbox = [];
      refused = JSON.parse(localStorage.getItem(REFUSED_KEY) || "[]");
      if (!Array.isArray(refused)) refused = [];
    } catch (e) {
      outbox = [];
      refused = [];
    }
    pump();
    await flushed();
    if (await reload()) {
      window.__clusterlens.ready = true;
      render();
    }
  })();
})();
