/*
 * app.js - the mdscale dashboard (docs/dashboard.md). An overview of every
 * deployment, and one deployment's time series on one shared time axis,
 * drawn with small hand-written canvas charts: no framework, no library.
 * Polls the daemon's REST API every 2 s; the URL's fragment keeps the view
 * (#deployment=ID&range=SECONDS) so a reload or a shared link opens it.
 */
'use strict';
(function () {
  var POLL_MS = 2000;
  /* Per range: its query resolution in seconds. Each range has at most
   * MAX_POINTS points per series; a zoom picks the finest step that keeps
   * to it. The store keeps 24 h (docs/monitoring.md). */
  var RANGES = { 300: 5, 900: 15, 3600: 60, 21600: 300, 86400: 900 };
  var STEPS = [5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  var MAX_POINTS = 120;
  /* The overview's rates: over the last whole 15 s. */
  var OVERVIEW_SEC = 15;
  var C = {
    ready: '#1b7f3b', count: '#1d2733', running: '#7aa6d6', max: '#d9480f',
    mean: '#1864ab', rps: '#5f3dc4', err: '#c92a2a', p50: '#2b8a3e',
    p95: '#e67700', p99: '#c2255c', alarm: 'rgba(224,49,49,0.11)',
    marker: '#e67700', grid: '#eef0f3', axis: '#6a7786', sel: 'rgba(24,100,171,0.15)'
  };
  var SHAPE_COLORS = ['#e7f5ff', '#d0ebff', '#a5d8ff', '#74c0fc', '#4dabf7',
    '#339af0'];
  var PAD = { L: 48, R: 12, T: 6, B: 18 };

  var st = {
    dep: null, range: 300, zoom: null, ready: [], timer: null, gen: 0,
    charts: {}, hover: null, drag: null, top: null, p: {}
  };

  function $(id) { return document.getElementById(id); }

  /* ---- the API: every request of the page goes through api() ---- */

  /* The API token (docs/dashboard.md): given once, in the address's
   * fragment (/ui/#token=...; a fragment is never sent to a server) or in
   * the form the page shows when the daemon answers 401, and kept in
   * sessionStorage: this tab only, forgotten when it closes. */
  var TOKEN_KEY = 'mdscale-token';

  function token() {
    try { return sessionStorage.getItem(TOKEN_KEY); } catch (e) { return null; }
  }

  function setToken(t) {
    try { sessionStorage.setItem(TOKEN_KEY, t); } catch (e) { /* private mode */ }
  }

  function showLogin() {
    var f = $('login');
    if (!f.hidden) return;
    f.hidden = false;
    $('login-token').focus();
  }

  /* GET path; resolves to the JSON body, rejects with the status and the
   * API's message. */
  function api(path) {
    var t = token();
    var headers = t ? { Authorization: 'Bearer ' + t } : {};
    return fetch(path, { cache: 'no-store', headers: headers }).then(function (r) {
      return r.json().then(function (body) {
        if (r.status === 401) showLogin();
        if (!r.ok) {
          var e = new Error(path.split('?')[0] + ': ' + r.status + ' ' +
            (body && body.message ? body.message : ''));
          e.status = r.status;
          throw e;
        }
        return body;
      });
    });
  }

  /* A metrics query over [t0, t1) at res seconds; a metric with no data
   * yet answers no items. */
  function query(q, t0, t1, res) {
    return api('api/query?query=' + encodeURIComponent(q) + '&startTime=' +
      t0 + '&endTime=' + t1 + '&resolution=PT' + res + 'S')
      .then(function (b) { return b.items || []; });
  }

  /* ---- small helpers ---- */

  function ts(p) { return Date.parse(p.timestamp) || p.timestamp; }

  function points(items, scale) {
    if (!items.length) return [];
    return items[0].aggregatedDatapoints.map(function (p) {
      return [ts(p), p.value * (scale || 1)];
    });
  }

  /* items grouped by resourceId → {id: last value}. */
  function lastById(items, scale) {
    var out = {};
    items.forEach(function (s) {
      var d = s.aggregatedDatapoints;
      if (d.length) out[s.dimensions.resourceId] = d[d.length - 1].value * (scale || 1);
    });
    return out;
  }

  /* The share of b in a, point by point (times in both), in percent. */
  function ratio(num, den) {
    var n = {};
    num.forEach(function (p) { n[p[0]] = p[1]; });
    return den.filter(function (p) { return p[1] > 0; }).map(function (p) {
      return [p[0], 100 * (n[p[0]] || 0) / p[1]];
    });
  }

  /* How many per-instance streams have a point at each timestamp. */
  function streamCount(items) {
    var n = {};
    items.forEach(function (s) {
      s.aggregatedDatapoints.forEach(function (p) {
        n[ts(p)] = (n[ts(p)] || 0) + 1;
      });
    });
    return Object.keys(n).map(Number).sort(function (a, b) { return a - b; })
      .map(function (t) { return [t, n[t]]; });
  }

  function lastValue(pts) { return pts.length ? pts[pts.length - 1][1] : null; }

  function fmt(v, digits, unit) {
    return v === null || v === undefined || isNaN(v) ? '–'
      : v.toFixed(digits) + (unit || '');
  }

  function fmtMs(v) {
    if (v === null || v === undefined || isNaN(v)) return '–';
    if (v === 0) return '0 ms';
    if (v >= 1000) return (v / 1000).toFixed(2) + ' s';
    return (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)) + ' ms';
  }

  function pad2(x) { return (x < 10 ? '0' : '') + x; }

  function hhmmss(t) {
    var d = new Date(t);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes()) + ':' +
      pad2(d.getSeconds());
  }

  function hhmm(t) {
    var d = new Date(t);
    return pad2(d.getHours()) + ':' + pad2(d.getMinutes());
  }

  /*
   * A percentile (q in 0..1) of a latency histogram in ms: counts has one
   * more bucket than bounds (seconds, upper bounds; the last bucket is
   * +Inf). Linear within the bucket; past the last bound, that bound.
   * null without requests.
   */
  function histPercentile(counts, bounds, q) {
    var total = counts.reduce(function (a, b) { return a + b; }, 0);
    if (!(total > 0)) return null;
    var want = q * total, seen = 0;
    for (var i = 0; i < counts.length; i++) {
      if (counts[i] > 0 && seen + counts[i] >= want) {
        if (i >= bounds.length) return bounds[bounds.length - 1] * 1000;
        var lo = i ? bounds[i - 1] : 0, hi = bounds[i];
        return (lo + (hi - lo) * (want - seen) / counts[i]) * 1000;
      }
      seen += counts[i];
    }
    return bounds[bounds.length - 1] * 1000;
  }

  /* Latency percentiles of one deployment from the gateway's cumulative
   * histogram: over the requests since the previous poll, or since the
   * daemon started at the first poll; the last figures stay while no
   * request comes. */
  function livePercentiles(top) {
    var prev = st.top;
    top.deployments.forEach(function (d) {
      var h = d.latencyHistogram;
      var old = prev && prev.byId[d.id];
      var delta = old ? h.map(function (c, i) { return c - old[i]; }) : h;
      var n = delta.reduce(function (a, b) { return a + b; }, 0);
      if (n > 0 || !st.p[d.id]) {
        st.p[d.id] = [0.5, 0.95, 0.99].map(function (q) {
          return histPercentile(delta, top.latencyBoundsSeconds, q);
        });
      }
    });
    st.top = { byId: {} };
    top.deployments.forEach(function (d) {
      st.top.byId[d.id] = d.latencyHistogram;
    });
  }

  /* Which alarms are about a deployment: those whose query names it. */
  function alarmsOf(alarms, id) {
    return alarms.filter(function (a) {
      return a.query.indexOf('"' + id + '"') >= 0;
    });
  }

  /* A step function from the scaling decisions: the value of key in "from"
   * before the first decision, in "to" after each, the current value at
   * the end. */
  function steps(decisions, key, current, t0, t1) {
    var moves = decisions.filter(function (d) { return d.to && d.from; });
    var v = moves.length ? moves[0].from[key] : current;
    var out = [[t0, v]];
    moves.forEach(function (d) {
      if (d.time <= t0) { out[0][1] = d.to[key]; return; }
      out.push([d.time, d.to[key]]);
    });
    out.push([t1, current]);
    return out;
  }

  /* Firing intervals of one alarm from its history (oldest first). */
  function firing(hist, name, t0, t1) {
    var out = [];
    var start = null;
    hist.forEach(function (h, i) {
      var t = h.timestampEpochMillis;
      if (h.type === 'OK_TO_FIRING' && start === null) start = t;
      else if (h.type === 'FIRING_TO_OK') {
        out.push({ from: start === null ? (i === 0 ? t0 : t) : start, to: t,
          label: name });
        start = null;
      }
    });
    if (start !== null) out.push({ from: start, to: t1, label: name,
      open: true });
    return out.filter(function (b) { return b.to >= t0; });
  }

  /* ---- the charts ---- */

  function setupChart(id, title, legend) {
    var el = $(id);
    var head = document.createElement('div');
    head.className = 'chart-head';
    head.innerHTML = '<span class="title"></span><span class="legend"></span>';
    head.firstChild.textContent = title;
    legend.forEach(function (l) {
      var i = document.createElement('i');
      i.style.background = l[1];
      head.lastChild.appendChild(i);
      head.lastChild.appendChild(document.createTextNode(l[0]));
    });
    el.appendChild(head);
    var cv = document.createElement('canvas');
    el.appendChild(cv);
    el.setAttribute('data-points', '0');
    cv.addEventListener('mousemove', function (e) { onMove(id, e); });
    cv.addEventListener('mouseleave', function () { onLeave(); });
    cv.addEventListener('mousedown', function (e) { onDown(id, e); });
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    var e = Math.pow(10, Math.floor(Math.log10(v)));
    var m = [1, 2, 2.5, 5, 10].find(function (k) { return k * e >= v; });
    return m * e;
  }

  function tickStep(rangeMs) {
    var s = [1e3, 5e3, 10e3, 30e3, 60e3, 120e3, 300e3, 600e3, 1800e3,
      3600e3, 7200e3, 10800e3, 21600e3];
    return s.find(function (x) { return rangeMs / x <= 7; }) || 21600e3;
  }

  /* The chart's geometry: plot box and the two scales. */
  function geometry(cv, t0, t1, ymax) {
    var W = cv.clientWidth || 600, H = cv.clientHeight || 150;
    var g = { W: W, H: H, L: PAD.L, T: PAD.T, pw: W - PAD.L - PAD.R,
      ph: H - PAD.T - PAD.B, t0: t0, t1: t1, ymax: ymax };
    g.x = function (t) { return g.L + (t - t0) / (t1 - t0) * g.pw; };
    g.y = function (v) { return g.T + g.ph - v / ymax * g.ph; };
    g.t = function (px) { return t0 + (px - g.L) / g.pw * (t1 - t0); };
    return g;
  }

  function yScale(spec, t0, t1) {
    var ymax = spec.yMax || 0;
    spec.series.forEach(function (s) {
      if (s.noScale) return;
      s.pts.forEach(function (p) {
        if (p[0] >= t0 && p[0] <= t1 && p[1] > ymax) ymax = p[1];
      });
    });
    if (spec.integer) {
      ymax = Math.ceil(ymax) + 1;
      var ticks = ymax <= 6 ? ymax : 4;
      return { max: Math.ceil(ymax / ticks) * ticks, ticks: ticks };
    }
    return { max: niceMax(ymax * 1.05), ticks: 4 };
  }

  function yLabel(v, max, unit) {
    if (unit === 'ms') return fmtMs(v).replace(' ', '');
    return (max <= 10 ? +v.toFixed(2) : Math.round(v)) + (unit || '');
  }

  function drawGrid(c, g, ys, unit) {
    c.font = '10px system-ui, sans-serif';
    c.fillStyle = C.axis;
    c.strokeStyle = C.grid;
    c.lineWidth = 1;
    c.textAlign = 'right';
    c.textBaseline = 'middle';
    for (var k = 0; k <= ys.ticks; k++) {
      var v = ys.max * k / ys.ticks, yy = Math.round(g.y(v)) + 0.5;
      c.beginPath(); c.moveTo(g.L, yy); c.lineTo(g.L + g.pw, yy); c.stroke();
      c.fillText(yLabel(v, ys.max, unit), g.L - 4, yy);
    }
    var step = tickStep(g.t1 - g.t0);
    var label = step >= 60e3 ? hhmm : hhmmss;
    c.textBaseline = 'top';
    for (var t = Math.ceil(g.t0 / step) * step; t <= g.t1; t += step) {
      var xx = Math.round(g.x(t)) + 0.5;
      c.beginPath(); c.moveTo(xx, g.T); c.lineTo(xx, g.T + g.ph); c.stroke();
      var text = label(t), w = c.measureText(text).width;
      c.textAlign = 'center';
      /* Keep the tick labels inside the canvas too. */
      var lx = Math.min(Math.max(xx, g.L + w / 2), g.W - w / 2 - 1);
      c.fillText(text, lx, g.T + g.ph + 3);
    }
  }

  function drawShapes(c, g, shapes) {
    (shapes || []).forEach(function (s, i, all) {
      if (i === all.length - 1) return;
      var a = Math.max(g.x(s[0]), g.L);
      var z = Math.min(g.x(all[i + 1][0]), g.L + g.pw);
      if (z <= a) return;
      c.fillStyle = SHAPE_COLORS[s[2] % SHAPE_COLORS.length];
      c.fillRect(a, g.T + g.ph - 14, z - a, 14);
      c.fillStyle = '#1d2733';
      c.textAlign = 'left';
      c.textBaseline = 'middle';
      if (z - a > c.measureText(s[1]).width + 8) {
        c.fillText(s[1], a + 4, g.T + g.ph - 7);
      }
    });
  }

  function drawSeries(c, g, series) {
    c.save();
    c.beginPath();
    c.rect(g.L, g.T, g.pw, g.ph);
    c.clip();
    series.forEach(function (s) {
      if (!s.pts.length) return;
      c.strokeStyle = s.color;
      c.lineWidth = s.width || 1.5;
      c.setLineDash(s.dash || []);
      c.beginPath();
      s.pts.forEach(function (p, i) {
        var px = g.x(p[0]), py = g.y(p[1]);
        if (i === 0) c.moveTo(px, py);
        else {
          if (s.step) c.lineTo(px, g.y(s.pts[i - 1][1]));
          c.lineTo(px, py);
        }
      });
      c.stroke();
      if (s.pts.length === 1) {
        c.fillStyle = s.color;
        c.fillRect(g.x(s.pts[0][0]) - 2, g.y(s.pts[0][1]) - 2, 4, 4);
      }
    });
    c.restore();
    c.setLineDash([]);
  }

  /*
   * Markers (scaling decisions, alarm transitions): a dashed line each and
   * a label placed inside the plot: to the right of the line, or to its
   * left where it would run past the right edge, in the first of three
   * rows where it overlaps no other label; a label that fits nowhere is
   * left out (its line stays, and the tooltip names it). Returns the label
   * boxes drawn, [left, right] in canvas pixels.
   */
  function drawMarkers(c, g, markers) {
    var rows = [[], [], []], boxes = [];
    c.font = '10px system-ui, sans-serif';
    c.textBaseline = 'top';
    markers.forEach(function (m) {
      if (m.t < g.t0 || m.t > g.t1) return;
      var xx = Math.round(g.x(m.t)) + 0.5;
      c.strokeStyle = m.color;
      c.setLineDash([4, 3]);
      c.beginPath(); c.moveTo(xx, g.T); c.lineTo(xx, g.T + g.ph); c.stroke();
      c.setLineDash([]);
      var w = c.measureText(m.label).width;
      var a = xx + 3;
      if (a + w > g.L + g.pw - 2) a = xx - 3 - w;
      if (a < g.L + 2) a = g.L + 2;
      if (a + w > g.L + g.pw - 2) return;
      for (var r = 0; r < rows.length; r++) {
        var free = rows[r].every(function (b) {
          return a + w + 4 < b[0] || a > b[1] + 4;
        });
        if (!free) continue;
        rows[r].push([a, a + w]);
        boxes.push([a, a + w]);
        c.fillStyle = 'rgba(255,255,255,0.85)';
        c.fillRect(a - 1, g.T + 2 + r * 12, w + 2, 11);
        c.fillStyle = m.color;
        c.textAlign = 'left';
        c.fillText(m.label, a, g.T + 2 + r * 12);
        return;
      }
    });
    return boxes;
  }

  /* The value of a series at time t: the last point at or before t. */
  function valueAt(pts, t) {
    var v = null;
    for (var i = 0; i < pts.length && pts[i][0] <= t; i++) v = pts[i][1];
    return v;
  }

  function drawOverlay(c, g) {
    if (st.hover !== null && st.hover >= g.t0 && st.hover <= g.t1) {
      var xx = Math.round(g.x(st.hover)) + 0.5;
      c.strokeStyle = 'rgba(29,39,51,0.55)';
      c.lineWidth = 1;
      c.beginPath(); c.moveTo(xx, g.T); c.lineTo(xx, g.T + g.ph); c.stroke();
    }
    if (st.drag && st.drag.t1 !== undefined) {
      var a = g.x(Math.min(st.drag.t0, st.drag.t1));
      var z = g.x(Math.max(st.drag.t0, st.drag.t1));
      c.fillStyle = C.sel;
      c.fillRect(Math.max(a, g.L), g.T, Math.min(z, g.L + g.pw) - Math.max(a, g.L), g.ph);
    }
  }

  /* spec: {series: [{name, pts, color, step, width, dash, noScale (left
   * out of the y scale: clipped)}], bands,
   * markers, shapes, yMax, integer, unit}. Records its geometry for the
   * crosshair and marks the container with data-points, data-series-max,
   * data-markers, data-bands, data-labels (label boxes) and data-plot. */
  function draw(id) {
    var ch = st.charts[id], spec = ch.spec, t0 = ch.t0, t1 = ch.t1;
    var el = $(id);
    var cv = el.querySelector('canvas');
    var dpr = window.devicePixelRatio || 1;
    var ys = yScale(spec, t0, t1);
    var g = geometry(cv, t0, t1, ys.max);
    cv.width = Math.round(g.W * dpr);
    cv.height = Math.round(g.H * dpr);
    var c = cv.getContext('2d');
    c.setTransform(dpr, 0, 0, dpr, 0, 0);
    c.clearRect(0, 0, g.W, g.H);
    spec.bands.forEach(function (b) {
      var a = Math.max(g.x(b.from), g.L), z = Math.min(g.x(b.to), g.L + g.pw);
      if (z <= a) return;
      c.fillStyle = C.alarm;
      c.fillRect(a, g.T, Math.max(z - a, 2), g.ph);
    });
    drawGrid(c, g, ys, spec.unit);
    drawShapes(c, g, spec.shapes);
    drawSeries(c, g, spec.series);
    var boxes = drawMarkers(c, g, spec.markers);
    drawOverlay(c, g);
    c.strokeStyle = C.axis;
    c.lineWidth = 1;
    c.strokeRect(g.L + 0.5, g.T + 0.5, g.pw, g.ph);
    ch.g = g;
    var n = 0, most = 0;
    spec.series.forEach(function (s) {
      n += s.pts.length;
      if (!s.derived) most = Math.max(most, s.pts.length);
    });
    el.setAttribute('data-points', String(n));
    el.setAttribute('data-series-max', String(most));
    el.setAttribute('data-markers', String(spec.markers.filter(function (m) {
      return m.t >= t0 && m.t <= t1;
    }).length));
    el.setAttribute('data-bands', String(spec.bands.length));
    el.setAttribute('data-labels', JSON.stringify(boxes.map(function (b) {
      return [Math.round(b[0]), Math.round(b[1])];
    })));
    el.setAttribute('data-plot', JSON.stringify([g.L, g.L + g.pw]));
  }

  function drawAll() {
    Object.keys(st.charts).forEach(function (id) {
      if (st.charts[id].spec) draw(id);
    });
  }

  /* ---- hover, drag to zoom ---- */

  function eventTime(id, e) {
    var g = st.charts[id] && st.charts[id].g;
    if (!g) return null;
    var r = e.target.getBoundingClientRect();
    var px = Math.min(Math.max(e.clientX - r.left, g.L), g.L + g.pw);
    return g.t(px);
  }

  function tooltip(id, e) {
    var ch = st.charts[id], tip = $('tooltip'), t = st.hover;
    var ts0 = ch.spec.series.map(function (s) {
      return s.pts.filter(function (p) { return p[0] <= t; }).pop();
    }).filter(Boolean).map(function (p) { return p[0]; });
    var at = ts0.length ? Math.max.apply(null, ts0) : t;
    tip.textContent = '';
    var head = document.createElement('b');
    head.textContent = ch.title + ' · ' + hhmmss(at);
    tip.appendChild(head);
    ch.spec.series.forEach(function (s) {
      var v = valueAt(s.pts, t);
      var row = document.createElement('div');
      row.className = 'row';
      var i = document.createElement('i');
      i.style.background = s.color;
      row.appendChild(i);
      row.appendChild(document.createTextNode(s.name + ': ' +
        (ch.spec.unit === 'ms' ? fmtMs(v) : fmt(v, ch.spec.integer ? 0 :
          2, ch.spec.unit === 'ms' ? ' ms' : ch.spec.unit || ''))));
      tip.appendChild(row);
    });
    var near = ch.spec.markers.filter(function (m) {
      return Math.abs(ch.g.x(m.t) - ch.g.x(t)) < 6;
    });
    near.forEach(function (m) {
      var row = document.createElement('div');
      row.textContent = '▍' + m.label + ' at ' + hhmmss(m.t);
      tip.appendChild(row);
    });
    tip.hidden = false;
    var x = e.clientX + 14, y = e.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth - 4) x = e.clientX - 14 - tip.offsetWidth;
    if (y + tip.offsetHeight > window.innerHeight - 4) y = e.clientY - 14 - tip.offsetHeight;
    tip.style.left = x + 'px';
    tip.style.top = y + 'px';
  }

  function onMove(id, e) {
    var t = eventTime(id, e);
    if (t === null) return;
    st.hover = t;
    if (st.drag) st.drag.t1 = t;
    drawAll();
    tooltip(id, e);
  }

  function onLeave() {
    st.hover = null;
    $('tooltip').hidden = true;
    if (!st.drag) drawAll();
  }

  function onDown(id, e) {
    if (e.button !== 0) return;
    var t = eventTime(id, e);
    if (t === null) return;
    e.preventDefault();
    st.drag = { id: id, t0: t, x0: e.clientX };
  }

  /* A drag of more than a few pixels zooms every chart to its span; the
   * polling pauses until the zoom is reset. */
  function onUp(e) {
    var d = st.drag;
    if (!d) return;
    st.drag = null;
    if (Math.abs(e.clientX - d.x0) < 5 || d.t1 === undefined) {
      drawAll();
      return;
    }
    setZoom([Math.round(Math.min(d.t0, d.t1)), Math.round(Math.max(d.t0, d.t1))]);
  }

  function setZoom(z) {
    st.zoom = z;
    $('zoom-reset').hidden = !z;
    $('charts').setAttribute('data-zoom', z ? z.join(',') : '');
    loop();
  }

  /* ---- the time axis ---- */

  /* The finest step that keeps span seconds to MAX_POINTS points. */
  function stepFor(span) {
    return STEPS.find(function (s) { return span / s <= MAX_POINTS; }) ||
      STEPS[STEPS.length - 1];
  }

  /* The axis: the range, ending at the last whole query interval that the
   * samplers have had a second to fill (so the newest point is never a
   * partial one); or the zoom. */
  function axis() {
    if (st.zoom) {
      var span = (st.zoom[1] - st.zoom[0]) / 1000;
      var z = stepFor(span);
      return { t0: st.zoom[0], t1: st.zoom[1], res: z,
        q0: Math.floor(st.zoom[0] / (z * 1000)) * z * 1000,
        q1: Math.ceil(st.zoom[1] / (z * 1000)) * z * 1000 };
    }
    var res = RANGES[st.range], ms = res * 1000;
    var t1 = Math.floor((Date.now() - 1000) / ms) * ms;
    var t0 = t1 - st.range * 1000;
    return { t0: t0, t1: t1, res: res, q0: t0, q1: t1 };
  }

  /* ---- the overview ---- */

  function refreshOverview() {
    var ms = OVERVIEW_SEC * 1000;
    var t1 = Math.floor((Date.now() - 1000) / ms) * ms, t0 = t1 - 4 * ms;
    var w = '[' + OVERVIEW_SEC + 's]';
    return Promise.all([
      api('/v1/top'),
      api('/v1/alarms'),
      query('PredictRequestCount' + w + '.groupBy(resourceId).sum()', t0,
        t1, OVERVIEW_SEC),
      query('PredictResponse' + w + '{statusClass = "5xx"}.groupBy(resourceId).sum()',
        t0, t1, OVERVIEW_SEC)
    ]).then(function (res) {
      if (st.dep) return;
      livePercentiles(res[0]);
      renderOverview(res[0], res[1].items || [], lastById(res[2]),
        lastById(res[3]));
    });
  }

  function cell(tr, text, cls) {
    var td = tr.insertCell();
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function renderOverview(top, alarms, reqs, errs) {
    var firing = {};
    top.firingAlarms.forEach(function (a) { firing[a.id] = a; });
    var tb = $('overview-table').tBodies[0];
    tb.textContent = '';
    $('overview-empty').hidden = top.deployments.length > 0;
    top.deployments.forEach(function (d) {
      var tr = tb.insertRow();
      tr.setAttribute('data-deployment-id', d.id);
      var name = tr.insertCell(), a = document.createElement('a');
      a.href = '#deployment=' + encodeURIComponent(d.id);
      a.textContent = d.displayName;
      name.appendChild(a);
      var small = document.createElement('span');
      small.className = 'id';
      small.textContent = d.id;
      name.appendChild(small);
      /* ACTIVE at zero instances is idle (scaled to zero), not broken. */
      var state = d.lifecycleState === 'ACTIVE' && d.instanceCount === 0
        ? 'IDLE' : d.lifecycleState;
      cell(tr, state, state);
      cell(tr, d.instanceShapeName);
      cell(tr, d.ready + ' / ' + d.instanceCount, 'num inst');
      var rps = reqs[d.id] === undefined ? 0 : reqs[d.id] / OVERVIEW_SEC;
      cell(tr, fmt(rps, 1), 'num rps');
      var er = reqs[d.id] > 0 ? 100 * (errs[d.id] || 0) / reqs[d.id] : null;
      cell(tr, er === null ? '–' : fmt(er, er < 10 && er > 0 ? 2 : 0, '%'),
        'num errors' + (er > 0 ? ' bad' : ''));
      cell(tr, fmtMs((st.p[d.id] || [])[2]), 'num p99');
      cell(tr, fmt(d.cpuPercent, 0, '%'), 'num cpu');
      cell(tr, fmt(d.memoryPercent, 0, '%'), 'num mem');
      var names = alarmsOf(alarms, d.id).filter(function (al) {
        return firing[al.id];
      }).map(function (al) { return al.displayName; });
      var f = cell(tr, names.length ? names.join(', ') : 'none',
        'alarms' + (names.length ? ' firing' : ''));
      f.setAttribute('data-firing', String(names.length));
      tr.addEventListener('click', function (e) {
        if (e.target.tagName !== 'A') location.hash = a.getAttribute('href');
      });
    });
  }

  /* ---- one deployment ---- */

  function setFig(id, text) { $(id).textContent = text; }

  function summary(dep) {
    var ready = dep.instances.filter(function (i) {
      return i.state === 'READY';
    }).length;
    setFig('fig-name', dep.displayName);
    $('crumb-dep').textContent = dep.displayName;
    /* ACTIVE at zero instances is idle (scaled to zero), not broken. */
    var idle = dep.lifecycleState === 'ACTIVE' && dep.instanceCount === 0;
    setFig('fig-state', idle ? 'IDLE (scaled to zero)' : dep.lifecycleState);
    $('fig-state').className = 'v ' + (idle ? 'IDLE' : dep.lifecycleState);
    setFig('fig-ready', String(ready));
    setFig('fig-count', String(dep.instanceCount));
    setFig('fig-shape', dep.instanceShapeName);
    var tb = $('fig-instances-table').tBodies[0];
    tb.textContent = '';
    dep.instances.forEach(function (i) {
      var tr = tb.insertRow();
      tr.setAttribute('data-instance-id', i.id);
      /* Where the gateway reaches it; none for a pod not Ready. */
      var where = i.address ? i.address + ':' + i.port : '–';
      [i.id, i.state, i.instanceShapeName, where, i.restarts,
        i.timeStarted || ''].forEach(function (v, k) {
        var td = tr.insertCell();
        td.textContent = v === null || v === undefined ? '' : String(v);
        if (k === 1) td.className = i.state;
      });
    });
    return ready;
  }

  function refreshDeployment() {
    var ax = axis(), id = st.dep;
    var sel = '{resourceId = "' + id + '"}';
    var w = '[' + ax.res + 's]';
    function q(text) { return query(text, ax.q0, ax.q1, ax.res); }
    var enc = encodeURIComponent(id);
    return Promise.all([
      api('/v1/deployments/' + enc),
      api('/v1/deployments/' + enc + '/scaling-history')
        .catch(function () { return { items: [] }; }),
      api('/v1/alarms').then(function (a) {
        return Promise.all(alarmsOf(a.items, id).map(function (al) {
          return api('/v1/alarms/' + al.id + '/history?limit=1000')
            .then(function (h) { return { alarm: al, hist: h.items }; });
        }));
      }),
      q('CpuUtilization' + w + sel + '.grouping().max()'),
      q('CpuUtilization' + w + sel + '.grouping().mean()'),
      q('CpuUtilization' + w + sel + '.count()'),
      q('MemoryUtilization' + w + sel + '.grouping().max()'),
      q('MemoryUtilization' + w + sel + '.grouping().mean()'),
      q('PredictRequestCount' + w + sel + '.grouping().sum()'),
      q('PredictResponse' + w + '{resourceId = "' + id +
        '", statusClass = "5xx"}.grouping().sum()'),
      q('PredictLatency' + w + sel + '.grouping().percentile(0.5)'),
      q('PredictLatency' + w + sel + '.grouping().percentile(0.95)'),
      q('PredictLatency' + w + sel + '.grouping().percentile(0.99)'),
      q('PredictLatencyMax' + w + sel + '.grouping().max()'),
      api('/v1/top')
    ]).then(function (res) {
      if (id !== st.dep) return null;
      if (res[0].id !== id) return byName(res[0].id);
      livePercentiles(res[14]);
      renderDeployment(res, ax);
    });
  }

  /* The address named the deployment by its display name (GET
   * /v1/deployments/{name} answers too), but the metrics and alarms know
   * it by id: the address is rewritten to the id and the view drawn. */
  function byName(realId) {
    var h = new URLSearchParams(location.hash.replace(/^#/, ''));
    h.set('deployment', realId);
    history.replaceState(null, '', location.pathname + '#' + h.toString());
    fromAddress();
    return refreshDeployment();
  }

  function chart(id, series, extra, ax) {
    var ch = st.charts[id];
    ch.spec = { series: series, bands: ch.bands, markers: ch.markers };
    Object.keys(extra || {}).forEach(function (k) { ch.spec[k] = extra[k]; });
    ch.t0 = ax.t0;
    ch.t1 = ax.t1;
    draw(id);
  }

  function renderDeployment(res, ax) {
    var t0 = ax.t0, t1 = ax.t1, dep = res[0];
    /* Decision times are RFC 3339; plotted as epoch milliseconds. */
    var decisions = (res[1].items || []).map(function (d) {
      return Object.assign({}, d, {
        time: typeof d.time === 'number' ? d.time : Date.parse(d.time)
      });
    });
    var ready = summary(dep);
    if (!st.zoom) {
      var last = st.ready[st.ready.length - 1];
      if (last && last[0] === t1) last[1] = ready;
      else st.ready.push([t1, ready]);
      st.ready = st.ready.filter(function (p) { return p[0] >= t1 - 86400e3; });
    }

    var cpuMax = points(res[3]), cpuMean = points(res[4]);
    var running = streamCount(res[5]);
    var memMax = points(res[6]), memMean = points(res[7]);
    var reqs = points(res[8]), errs = points(res[9]);
    var rps = reqs.map(function (p) { return [p[0], p[1] / ax.res]; });
    var errRate = ratio(errs, reqs);
    var p50 = points(res[10]), p95 = points(res[11]), p99 = points(res[12]);
    var latMax = points(res[13]);

    var bands = [], firingNow = [], markers = [];
    res[2].forEach(function (a) {
      var b = firing(a.hist, a.alarm.displayName, t0, t1);
      bands = bands.concat(b);
      if (b.some(function (x) { return x.open; })) {
        firingNow.push(a.alarm.displayName);
      }
      a.hist.forEach(function (h) {
        if (h.type !== 'OK_TO_FIRING' && h.type !== 'FIRING_TO_OK') return;
        markers.push({ t: h.timestampEpochMillis, color: '#c92a2a',
          label: a.alarm.displayName + (h.type === 'OK_TO_FIRING' ? ' firing' : ' ok') });
      });
    });
    decisions.forEach(function (d) {
      markers.push({ t: d.time, label: d.action,
        color: d.action === 'NONE' ? '#adb5bd' : C.marker });
    });
    markers.sort(function (a, b) { return a.t - b.t; });
    Object.keys(st.charts).forEach(function (k) {
      st.charts[k].bands = bands;
      st.charts[k].markers = markers;
    });

    var count = steps(decisions, 'instanceCount', dep.instanceCount, t0, t1);
    var shapeNames = [];
    var shapes = steps(decisions, 'instanceShapeName', dep.instanceShapeName,
      t0, t1).filter(function (p, i, all) {
      return i === 0 || i === all.length - 1 || p[1] !== all[i - 1][1];
    }).map(function (p) {
      if (shapeNames.indexOf(p[1]) < 0) shapeNames.push(p[1]);
      return [p[0], p[1], shapeNames.indexOf(p[1])];
    });

    chart('chart-instances', [
      { name: 'desired', pts: count, color: C.count, step: true, dash: [5, 3],
        width: 1.2, derived: true },
      { name: 'running', pts: running, color: C.running, step: true },
      { name: 'ready', pts: st.ready, color: C.ready, step: true, width: 2,
        derived: true }
    ], { shapes: shapes, yMax: 2, integer: true }, ax);
    chart('chart-rps', [{ name: 'requests/s', pts: rps, color: C.rps }],
      { unit: '/s' }, ax);
    chart('chart-errors', [{ name: '5xx', pts: errRate, color: C.err }],
      { unit: '%', yMax: 1 }, ax);
    chart('chart-latency', [
      { name: 'p50', pts: p50, color: C.p50 },
      { name: 'p95', pts: p95, color: C.p95 },
      { name: 'p99', pts: p99, color: C.p99 },
      { name: 'max', pts: latMax, color: '#adb5bd', dash: [3, 3], width: 1,
        noScale: true }
    ], { unit: 'ms' }, ax);
    chart('chart-cpu', [
      { name: 'mean', pts: cpuMean, color: C.mean },
      { name: 'max', pts: cpuMax, color: C.max }
    ], { unit: '%', yMax: 9.5 }, ax);
    chart('chart-mem', [
      { name: 'mean', pts: memMean, color: C.mean },
      { name: 'max', pts: memMax, color: C.max }
    ], { unit: '%', yMax: 9.5 }, ax);
    $('charts').setAttribute('data-range', String(st.range));
    $('charts').setAttribute('data-resolution', String(ax.res));
    $('charts').setAttribute('data-span', String((t1 - t0) / 1000));

    var p = st.p[dep.id] || [];
    setFig('fig-cpu', fmt(lastValue(cpuMax), 1, '%'));
    setFig('fig-mem', fmt(lastValue(memMax), 1, '%'));
    setFig('fig-rps', fmt(lastValue(rps), 1, '/s'));
    setFig('fig-errors', fmt(lastValue(errRate), 2, '%'));
    setFig('fig-latency', p.map(fmtMs).join(' / ') || '–');
    setFig('fig-alarms', firingNow.length ? firingNow.join(', ') : 'none');
    $('fig-alarms').setAttribute('data-firing', String(firingNow.length));
  }

  /* ---- the poll, the view and the address ---- */

  function setStatus(text, bad) {
    var s = $('status');
    s.textContent = text;
    s.className = bad ? 'status error' : 'status';
  }

  function refresh() {
    var p = st.dep ? refreshDeployment() : refreshOverview();
    return p.then(function () {
      setStatus(st.zoom ? 'zoomed: paused' : 'updated ' + hhmmss(Date.now()),
        false);
    }).catch(function (e) { setStatus(String(e.message || e), true); });
  }

  /* One chain of polls: a change of view, range or zoom starts a new one
   * at once and the old one stops at its next turn. While zoomed, the
   * chain stops after one refresh. */
  function loop() {
    var gen = ++st.gen;
    clearTimeout(st.timer);
    refresh().then(function () {
      if (gen === st.gen && !st.zoom) st.timer = setTimeout(loop, POLL_MS);
    });
  }

  /* An older address, ?deployment=ID&range=S, becomes the fragment; a
   * token in the fragment is taken once and dropped from it. */
  function tidyAddress() {
    var h = new URLSearchParams(location.hash.replace(/^#/, ''));
    var q = new URLSearchParams(location.search);
    ['deployment', 'range'].forEach(function (k) {
      if (q.has(k) && !h.has(k)) h.set(k, q.get(k));
    });
    if (h.has('token')) {
      setToken(h.get('token'));
      h.delete('token');
    }
    history.replaceState(null, '', location.pathname +
      (h.toString() ? '#' + h.toString() : ''));
  }

  /* The view from the address: #deployment=ID&range=S. */
  function fromAddress() {
    var h = new URLSearchParams(location.hash.replace(/^#/, ''));
    var dep = h.get('deployment') || null;
    var range = Number(h.get('range') || 300);
    if (dep !== st.dep) st.ready = [];
    st.dep = dep;
    st.range = RANGES[range] ? range : 300;
    st.zoom = null;
    $('zoom-reset').hidden = true;
    $('charts').setAttribute('data-zoom', '');
    $('overview').hidden = !!dep;
    $('deployment').hidden = !dep;
    if (!dep) $('crumb-dep').textContent = '';
    else $('crumb-dep').textContent = dep;
    Array.prototype.forEach.call(document.querySelectorAll('#ranges button'),
      function (b) {
        b.className = Number(b.getAttribute('data-range')) === st.range ? 'on' : '';
      });
    $('ranges').hidden = !dep;
    drawAll();
  }

  function toAddress() {
    var h = new URLSearchParams();
    if (st.dep) h.set('deployment', st.dep);
    if (st.range !== 300) h.set('range', String(st.range));
    location.hash = h.toString();
  }

  function init() {
    [['chart-instances', 'Instances', [['ready', C.ready],
      ['running', C.running], ['desired', C.count],
      ['shape', SHAPE_COLORS[2]], ['event', C.marker],
      ['alarm firing', 'rgba(224,49,49,0.4)']]],
    ['chart-rps', 'Request rate', [['requests/s', C.rps]]],
    ['chart-errors', 'Error rate (5xx share)', [['5xx', C.err]]],
    ['chart-latency', 'Latency', [['p50', C.p50], ['p95', C.p95],
      ['p99', C.p99], ['max', '#adb5bd']]],
    ['chart-cpu', 'CPU utilization', [['mean', C.mean], ['max', C.max]]],
    ['chart-mem', 'Memory utilization', [['mean', C.mean], ['max', C.max]]]
    ].forEach(function (c) {
      st.charts[c[0]] = { title: c[1], bands: [], markers: [] };
      setupChart(c[0], c[1], c[2]);
    });
    Array.prototype.forEach.call(document.querySelectorAll('#ranges button'),
      function (b) {
        b.addEventListener('click', function () {
          st.range = Number(b.getAttribute('data-range'));
          toAddress();
        });
      });
    $('zoom-reset').addEventListener('click', function () { setZoom(null); });
    window.addEventListener('mouseup', onUp);
    window.addEventListener('resize', drawAll);
    window.addEventListener('hashchange', function () {
      fromAddress();
      loop();
    });
    $('login').addEventListener('submit', function (e) {
      e.preventDefault();
      setToken($('login-token').value.trim());
      $('login-token').value = '';
      $('login').hidden = true;
      loop();
    });
    tidyAddress();
    fromAddress();
    loop();
  }

  init();
})();
