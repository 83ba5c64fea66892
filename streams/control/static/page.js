// The control room's page: draws what /events sends (a "state" view every few seconds, each "alert" at once).
"use strict";

const VIEW = document.body.dataset.view === "welfare" ? "welfare" : "general";
const COLOURS = { water: "#22d3ee", traffic: "#60a5fa", waste: "#f59e0b", lighting: "#facc15", gateways: "#e2e8f0" };
const SEVERITY = { critical: "#ef4444", warning: "#f97316", info: "#a78bfa" };
const FEED_ROWS = 30;
const CELL_DEG = 250 / 111320;        // a household cell's side in degrees of latitude (250 m)
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function duration(s) {
  if (s === null || s === undefined) return "–";
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function when(iso) { return iso ? iso.replace("T", " ").replace("Z", "") : "–"; }

function feedRow(row) {
  const tr = el("tr", { "data-domain": row.domain, "data-state": row.state });
  tr.append(el("td", {}, when(row.time)), el("td", {}, row.domain), el("td", {}, row.detector),
            el("td", { class: `state-${row.state}` }, row.state),
            el("td", { class: `sev-${row.severity}` }, row.severity));
  const subject = el("td", {}, row.subject);
  if (row.welfare) subject.append(el("span", { class: "tag" }, "welfare"));
  tr.append(subject, el("td", { title: row.description || "" }, row.description || ""));
  return tr;
}

function renderFeed(rows) {
  const body = document.querySelector("#feed tbody");
  body.replaceChildren(...rows.slice(0, FEED_ROWS).map(feedRow));
  document.getElementById("feed-note").textContent = rows.length ? `(${rows.length} latest, newest first)` : "(no alert yet)";
}

function prependAlert(row) {
  const body = document.querySelector("#feed tbody");
  const tr = feedRow(row);
  tr.classList.add("fresh");
  body.prepend(tr);
  while (body.children.length > FEED_ROWS) body.lastChild.remove();
}

function renderOpen(state) {
  const table = document.getElementById("open-table");
  const head = el("tr");
  head.append(el("th", {}, "domain"), ...state.bands.map(b => el("th", { class: "num" }, b)), el("th", { class: "num" }, "all"));
  const rows = [head];
  for (const domain of state.domains) {
    const counts = state.open.by_domain[domain] || {};
    const tr = el("tr", { "data-domain": domain });
    tr.append(el("td", {}, domain));
    let total = 0;
    for (const band of state.bands) {
      const n = counts[band] || 0;
      total += n;
      tr.append(el("td", { class: n ? "num" : "num zero" }, String(n)));
    }
    tr.append(el("td", { class: "num" }, String(total)));
    rows.push(tr);
  }
  table.replaceChildren(...rows);
  document.getElementById("kpi-open").textContent = String(state.open.total);
}

function renderRates(state) {
  const table = document.getElementById("rates-table");
  const head = el("tr");
  head.append(el("th", {}, "domain"), el("th", { class: "num" }, "readings/s"), el("th", { class: "num" }, "alerts raised, last hour"));
  let total = 0;
  const rows = [head, ...state.domains.map(d => {
    const r = state.rates[d] || { readings_per_s: 0, alerts_per_h: 0 };
    total += r.readings_per_s;
    const tr = el("tr", { "data-domain": d });
    tr.append(el("td", {}, d), el("td", { class: "num" }, r.readings_per_s.toFixed(1)), el("td", { class: "num" }, String(r.alerts_per_h)));
    return tr;
  })];
  table.replaceChildren(...rows);
  document.getElementById("kpi-rate").textContent = total.toFixed(1);
}

function renderKpis(state) {
  const delays = state.kpi.intervention_delay;
  const table = document.getElementById("delay-table");
  const head = el("tr");
  head.append(el("th", {}, "detector"), el("th", { class: "num" }, "cleared"), el("th", { class: "num" }, "median"), el("th", { class: "num" }, "90th pct"));
  const names = Object.keys(delays);
  const rows = names.map(name => {
    const d = delays[name];
    const tr = el("tr");
    tr.append(el("td", {}, name), el("td", { class: "num" }, String(d.count)), el("td", { class: "num" }, duration(d.median_s)), el("td", { class: "num" }, duration(d.p90_s)));
    return tr;
  });
  table.replaceChildren(head, ...(rows.length ? rows : [(() => { const tr = el("tr"); tr.append(el("td", { colspan: 4, class: "zero" }, "no alert cleared yet")); return tr; })()]));
  const all = state.kpi.intervention_delay_all;
  document.getElementById("kpi-delay").textContent = all.count ? duration(all.median_s) : "–";
  const lighting = state.kpi.lighting;
  document.getElementById("kpi-saving").textContent = lighting.saving === null ? "–" : `${(100 * lighting.saving).toFixed(1)} %`;
  document.getElementById("kpi-saving-note").textContent = lighting.saving === null
    ? "no lamp with a rated power reported at night yet"
    : `${(lighting.used_j / 3.6e6).toFixed(1)} kWh used of ${(lighting.full_power_night_j / 3.6e6).toFixed(1)} kWh at full power all night (this worker's lamps)`;
}

function renderOldest(state) {
  const body = document.querySelector("#oldest tbody");
  body.replaceChildren(...state.open.oldest.slice(0, 20).map(a => {
    const tr = el("tr", { "data-domain": a.domain });
    tr.append(el("td", {}, when(a.raised)), el("td", {}, duration(a.age_s)), el("td", {}, a.domain), el("td", {}, a.detector),
              el("td", { class: `sev-${a.severity}` }, a.severity));
    const subject = el("td", {}, a.subject);
    if (a.welfare) subject.append(el("span", { class: "tag" }, "welfare"));
    tr.append(subject);
    return tr;
  }));
}

function renderPlan(state) {
  const plan = state.plan;
  const root = document.getElementById("plan");
  const note = document.getElementById("plan-note");
  root.replaceChildren();
  if (!plan.bounds) {
    const t = svg("text", { x: 400, y: 280, "text-anchor": "middle", fill: "#94a3b8" });
    t.textContent = "No sensor has reported a location yet";
    root.append(t);
    note.textContent = "";
    return;
  }
  let [minLon, minLat, maxLon, maxLat] = plan.bounds;
  const kx = Math.cos((minLat + maxLat) / 2 * Math.PI / 180);
  const padLon = Math.max((maxLon - minLon) * 0.04, 0.002), padLat = Math.max((maxLat - minLat) * 0.04, 0.002);
  minLon -= padLon; maxLon += padLon; minLat -= padLat; maxLat += padLat;
  const width = 800, height = Math.max(300, Math.min(700, width * (maxLat - minLat) / ((maxLon - minLon) * kx)));
  root.setAttribute("viewBox", `0 0 ${width} ${height.toFixed(0)}`);
  const scale = Math.min(width / ((maxLon - minLon) * kx), height / (maxLat - minLat));
  const x = lon => (lon - minLon) * kx * scale, y = lat => height - (lat - minLat) * scale;
  const cellHalf = CELL_DEG / 2 * scale;
  const layer = name => { const g = svg("g", { class: name }); root.append(g); return g; };
  const cells = layer("cells");
  for (const [lon, lat, n] of plan.cells) {
    const r = svg("rect", { x: x(lon) - cellHalf, y: y(lat) - cellHalf, width: 2 * cellHalf, height: 2 * cellHalf,
                            fill: COLOURS.water, "fill-opacity": Math.min(0.6, 0.25 + n / 100), stroke: "none" });
    r.append(Object.assign(svg("title"), { textContent: `${n} household meters in this 250 m cell` }));
    cells.append(r);
  }
  const sensors = layer("sensors");
  for (const [domain, points] of Object.entries(plan.sensors)) {
    for (const [lon, lat] of points) {
      sensors.append(svg("circle", { cx: x(lon), cy: y(lat), r: domain === "gateways" ? 3.5 : 1.8, fill: COLOURS[domain] || "#cbd5e1", "fill-opacity": 0.7,
                                     "data-domain": domain }));
    }
  }
  const alerts = layer("alerts");
  for (const m of plan.markers) {
    const c = svg("circle", { cx: x(m.lon), cy: y(m.lat), r: 7, fill: "none", stroke: SEVERITY[m.severity] || "#ef4444",
                              "stroke-width": 2.5, class: "alert-marker", "data-domain": m.domain });
    c.append(Object.assign(svg("title"), { textContent: `${m.detector} — ${m.subject}` }));
    alerts.append(c);
  }
  for (const [lon, lat, n] of plan.cell_alerts) {
    const g = svg("g", { class: "cell-alert" });
    g.append(svg("circle", { cx: x(lon), cy: y(lat), r: 9, fill: "#ef4444", "fill-opacity": 0.85 }));
    const t = svg("text", { x: x(lon), y: y(lat) + 4, "text-anchor": "middle", "font-size": 11, fill: "#fff" });
    t.textContent = String(n);
    g.append(t, Object.assign(svg("title"), { textContent: `${n} open household alert(s) in this 250 m cell` }));
    alerts.append(g);
  }
  const placed = plan.markers.length + plan.cell_alerts.reduce((s, c) => s + c[2], 0);
  note.textContent = `(${placed} open alerts placed` + (plan.unplaced ? `, ${plan.unplaced} at sensors this worker has no position for` : "") + ")";
}

function renderLegend() {
  const legend = document.getElementById("legend");
  const items = [["traffic", "traffic detectors"], ["waste", "waste bins"], ["lighting", "street lamps and cabinets"],
                 ["water", "household meters, per 250 m cell"], ["gateways", "gateways"]];
  legend.replaceChildren(...items.map(([d, label]) => { const s = el("span"); const i = el("i"); i.style.background = COLOURS[d]; s.append(i, label); return s; }),
    (() => { const s = el("span"); const i = el("i"); i.style.border = "2px solid #ef4444"; s.append(i, "open alert"); return s; })());
}

function render(state) {
  document.getElementById("clock").textContent = when(state.now) + " UTC";
  renderFeed(state.feed);
  renderOpen(state);
  renderRates(state);
  renderKpis(state);
  renderOldest(state);
  renderPlan(state);
  const footer = document.getElementById("footer");
  footer.textContent = (state.feed_error ? `Alert feed unavailable: ${state.feed_error}. ` : "") +
    (state.unreadable ? `${state.unreadable} unreadable alert records skipped. ` : "") +
    (VIEW === "general" ? "Welfare alerts are not shown on this page." : "Welfare view: includes welfare alerts.");
  document.body.dataset.updated = String(Date.now());
}

function connect() {
  const badge = document.getElementById("view-badge");
  badge.textContent = VIEW === "welfare" ? "welfare view" : "general view";
  if (VIEW === "welfare") badge.classList.add("welfare");
  renderLegend();
  const status = document.getElementById("connection");
  const source = new EventSource(VIEW === "welfare" ? "/events?view=welfare" : "/events");
  source.addEventListener("open", () => { status.className = "dot live"; status.textContent = "live"; });
  source.addEventListener("error", () => { status.className = "dot down"; status.textContent = "reconnecting…"; });
  source.addEventListener("state", e => render(JSON.parse(e.data)));
  source.addEventListener("alert", e => prependAlert(JSON.parse(e.data)));
}

connect();
