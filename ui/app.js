/*
 * app.js - the mdscale dashboard (docs/dashboard.md). Polls the daemon's
 * REST API every 2 s and draws the deployment's time series on one shared
 * time axis with small hand-written canvas charts: no framework, no library.
 */
'use strict';
(function () {
  var POLL_MS = 2000;
  /* Per range: the MQL window, the query resolution, its seconds. */
  var RANGES = {
    300: { win: '5s', res: 'PT5S', sec: 5 },
    900: { win: '15s', res: 'PT15S', sec: 15 },
    3600: { win: '1m', res: 'PT1M', sec: 60 }
  };
  var C = {
    ready: '#1b7f3b', count: '#1d2733', running: '#7aa6d6', max: '#d9480f',
    mean: '#1864ab', rps: '#5f3dc4', alarm: 'rgba(224,49,49,0.13)',
    marker: '#e67700', grid: '#eef0f3', axis: '#6a7786'
  };
  var SHAPE_COLORS = ['#e7f5ff', '#d0ebff', '#a5d8ff', '#74c0fc', '#4dabf7',
    '#339af0'];

  var st = { dep: null, range: 300, ready: [], timer: null, gen: 0 };

  function $(id) { return document.getElementById(id); }

  function getJSON(path) {
    return fetch(path, { cache: 'no-store' }).then(function (r) {
      return r.json().then(function (body) {
        if (!r.ok) {
          var e = new Error(path + ': ' + r.status + ' ' +
            (body && body.message ? body.message : ''));
          e.status = r.status;
          throw e;
        }
        return body;
      });
    });
  }

  /* A metrics query; a metric with no data yet answers no items. */
  function query(q, t0, t1) {
    var r = RANGES[st.range];
    var url = 'api/query?query=' + encodeURIComponent(q) + '&startTime=' +
      t0 + '&endTime=' + t1 + '&resolution=' + r.res;
    return getJSON(url).then(function (b) { return b.items || []; });
  }

  function points(items, scale) {
    if (!items.length) return [];
    return items[0].aggregatedDatapoints.map(function (p) {
      return [Date.parse(p.timestamp) || p.timestamp, p.value * (scale || 1)];
    });
  }

  /* How many per-instance streams have a point at each timestamp. */
  function streamCount(items) {
    var n = {};
    items.forEach(function (s) {
      s.aggregatedDatapoints.forEach(function (p) {
        var t = Date.parse(p.timestamp) || p.timestamp;
        n[t] = (n[t] || 0) + 1;
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

  function hhmmss(t) {
    var d = new Date(t);
    function p(x) { return (x < 10 ? '0' : '') + x; }
    return p(d.getHours()) + ':' + p(d.getMinutes()) + ':' + p(d.getSeconds());
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

  /* ---- drawing ---- */

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
    el.appendChild(document.createElement('canvas'));
    el.setAttribute('data-points', '0');
  }

  function niceMax(v) {
    if (!(v > 0)) return 1;
    var e = Math.pow(10, Math.floor(Math.log10(v)));
    var m = [1, 2, 4, 5, 10].find(function (k) { return k * e >= v; });
    return m * e;
  }

  function tickStep(rangeMs) {
    var s = [10e3, 30e3, 60e3, 120e3, 300e3, 600e3];
    return s.find(function (x) { return rangeMs / x <= 8; }) || 600e3;
  }

  /* spec: {series: [{pts, color, step, width}], bands, markers, shapes,
   * yMax, unit}. Marks the container with data-points. */
  function draw(id, spec, t0, t1) {
    var el = $(id);
    var cv = el.querySelector('canvas');
    var dpr = window.devicePixelRatio || 1;
    var W = cv.clientWidth || 800;
    var H = cv.clientHeight || 120;
    cv.width = Math.round(W * dpr);
    cv.height = Math.round(H * dpr);
    var g = cv.getContext('2d');
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, W, H);
    var L = 44, R = 10, T = 14, B = 18;
    var pw = W - L - R, ph = H - T - B;
    var n = 0, ymax = spec.yMax || 0;
    spec.series.forEach(function (s) {
      n += s.pts.length;
      s.pts.forEach(function (p) {
        if (p[0] >= t0 && p[1] > ymax) ymax = p[1];
      });
    });
    var ticks = 4;
    if (spec.integer) {
      ymax = Math.ceil(ymax) + 1;
      ticks = ymax <= 6 ? ymax : 4;
      ymax = Math.ceil(ymax / ticks) * ticks;
    } else {
      ymax = niceMax(ymax * 1.05);
    }
    function x(t) { return L + (t - t0) / (t1 - t0) * pw; }
    function y(v) { return T + ph - v / ymax * ph; }

    /* Alarm bands, behind everything. */
    spec.bands.forEach(function (b) {
      var a = Math.max(x(b.from), L), z = Math.min(x(b.to), L + pw);
      if (z <= a) return;
      g.fillStyle = C.alarm;
      g.fillRect(a, T, Math.max(z - a, 2), ph);
    });
    /* Grid and axes. */
    g.font = '10px system-ui, sans-serif';
    g.fillStyle = C.axis;
    g.strokeStyle = C.grid;
    g.lineWidth = 1;
    g.textAlign = 'right';
    g.textBaseline = 'middle';
    for (var k = 0; k <= ticks; k++) {
      var v = ymax * k / ticks, yy = Math.round(y(v)) + 0.5;
      g.beginPath(); g.moveTo(L, yy); g.lineTo(L + pw, yy); g.stroke();
      g.fillText((ymax < 10 ? +v.toFixed(1) : Math.round(v)) +
        (k === ticks ? (spec.unit || '') : ''), L - 4, yy);
    }
    var step = tickStep(t1 - t0);
    g.textAlign = 'center';
    g.textBaseline = 'top';
    for (var t = Math.ceil(t0 / step) * step; t <= t1; t += step) {
      var xx = Math.round(x(t)) + 0.5;
      g.beginPath(); g.moveTo(xx, T); g.lineTo(xx, T + ph); g.stroke();
      g.fillText(hhmmss(t), xx, T + ph + 3);
    }
    /* The shape, as a band along the bottom of the plot. */
    (spec.shapes || []).forEach(function (s, i, all) {
      if (i === all.length - 1) return;
      var a = Math.max(x(s[0]), L), z = Math.min(x(all[i + 1][0]), L + pw);
      if (z <= a) return;
      g.fillStyle = SHAPE_COLORS[s[2] % SHAPE_COLORS.length];
      g.fillRect(a, T + ph - 14, z - a, 14);
      g.fillStyle = '#1d2733';
      g.textAlign = 'left';
      g.textBaseline = 'middle';
      g.fillText(s[1], a + 4, T + ph - 7);
    });
    /* The series. */
    spec.series.forEach(function (s) {
      if (!s.pts.length) return;
      g.strokeStyle = s.color;
      g.lineWidth = s.width || 1.5;
      g.setLineDash(s.dash || []);
      g.beginPath();
      s.pts.forEach(function (p, i) {
        var px = Math.max(x(p[0]), L), py = y(p[1]);
        if (i === 0) g.moveTo(px, py);
        else {
          if (s.step) g.lineTo(px, y(s.pts[i - 1][1]));
          g.lineTo(px, py);
        }
      });
      g.stroke();
      if (s.pts.length === 1) {
        g.fillStyle = s.color;
        g.fillRect(x(s.pts[0][0]) - 2, y(s.pts[0][1]) - 2, 4, 4);
      }
    });
    g.setLineDash([]);
    /* Scaling events: a vertical marker each, labelled with the action. */
    var shown = 0;
    spec.markers.forEach(function (m) {
      if (m.t < t0 || m.t > t1) return;
      shown++;
      var xx = Math.round(x(m.t)) + 0.5;
      g.strokeStyle = m.action === 'NONE' ? '#adb5bd' : C.marker;
      g.setLineDash([4, 3]);
      g.beginPath(); g.moveTo(xx, T); g.lineTo(xx, T + ph); g.stroke();
      g.setLineDash([]);
      g.fillStyle = g.strokeStyle;
      g.textAlign = 'left';
      g.textBaseline = 'top';
      g.fillText(m.action, xx + 3, 1);
    });
    g.strokeStyle = C.axis;
    g.strokeRect(L + 0.5, T + 0.5, pw, ph);
    el.setAttribute('data-points', String(n));
    el.setAttribute('data-markers', String(shown));
    el.setAttribute('data-bands', String(spec.bands.length));
  }

  /* ---- the summary ---- */

  function setFig(id, text) { $(id).textContent = text; }

  function summary(dep) {
    var ready = dep.instances.filter(function (i) {
      return i.state === 'READY';
    }).length;
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
      [i.id, i.state, i.instanceShapeName, i.port, i.restarts,
        i.timeStarted || ''].forEach(function (v, k) {
        var td = tr.insertCell();
        td.textContent = v === null || v === undefined ? '' : String(v);
        if (k === 1) td.className = i.state;
      });
    });
    return ready;
  }

  /* ---- the poll ---- */

  function fillDeployments(items) {
    var sel = $('sel-deployment');
    var ids = items.map(function (d) { return d.id; }).join(' ');
    if (sel.getAttribute('data-ids') !== ids) {
      sel.textContent = '';
      items.forEach(function (d) {
        var o = document.createElement('option');
        o.value = d.id;
        o.textContent = d.displayName + ' (' + d.id + ')';
        sel.appendChild(o);
      });
      sel.setAttribute('data-ids', ids);
    }
    if (!st.dep || !items.some(function (d) {
      return d.id === st.dep || d.displayName === st.dep;
    })) {
      st.dep = items.length ? items[0].id : null;
    }
    items.forEach(function (d) {
      if (d.displayName === st.dep) st.dep = d.id;
    });
    if (st.dep) sel.value = st.dep;
  }

  /* The axis ends at the last whole query interval that the samplers have
   * had a second to fill, so the newest point is never a partial one. */
  function refresh() {
    var r = RANGES[st.range];
    var res = r.sec * 1000;
    var t1 = Math.floor((Date.now() - 1000) / res) * res;
    var t0 = t1 - st.range * 1000;
    return getJSON('/v1/deployments').then(function (list) {
      fillDeployments(list.items);
      if (!st.dep) {
        setStatus('no deployments', false);
        return null;
      }
      var id = st.dep;
      var sel = '{resourceId = "' + id + '"}';
      var w = '[' + r.win + ']';
      return Promise.all([
        getJSON('/v1/deployments/' + encodeURIComponent(id)),
        getJSON('/v1/deployments/' + encodeURIComponent(id) +
          '/scaling-history').catch(function () { return { items: [] }; }),
        getJSON('/v1/alarms').then(function (a) {
          var mine = a.items.filter(function (al) {
            return al.query.indexOf('"' + id + '"') >= 0;
          });
          return Promise.all(mine.map(function (al) {
            return getJSON('/v1/alarms/' + al.id + '/history?limit=1000')
              .then(function (h) { return { alarm: al, hist: h.items }; });
          }));
        }),
        query('CpuUtilization' + w + sel + '.grouping().max()', t0, t1),
        query('CpuUtilization' + w + sel + '.grouping().mean()', t0, t1),
        query('CpuUtilization' + w + sel + '.count()', t0, t1),
        query('MemoryUtilization' + w + sel + '.grouping().max()', t0, t1),
        query('MemoryUtilization' + w + sel + '.grouping().mean()', t0, t1),
        query('PredictRequestCount' + w + sel + '.grouping().sum()', t0, t1),
        query('PredictLatency' + w + sel + '.grouping().mean()', t0, t1),
        query('PredictLatencyMax' + w + sel + '.grouping().max()', t0, t1)
      ]).then(function (res) {
        if (id !== st.dep) return null;
        render(res, t0, t1);
        setStatus('updated ' + hhmmss(Date.now()), false);
        return null;
      });
    }).catch(function (e) { setStatus(String(e.message || e), true); });
  }

  function render(res, t0, t1) {
    var dep = res[0];
    /* Decision times are RFC 3339; plotted as epoch milliseconds. */
    var decisions = (res[1].items || []).map(function (d) {
      return Object.assign({}, d, {
        time: typeof d.time === 'number' ? d.time : Date.parse(d.time)
      });
    });
    var alarms = res[2];
    var ready = summary(dep);
    var last = st.ready[st.ready.length - 1];
    if (last && last[0] === t1) last[1] = ready;
    else st.ready.push([t1, ready]);
    st.ready = st.ready.filter(function (p) { return p[0] >= t0; });

    var cpuMax = points(res[3]), cpuMean = points(res[4]);
    var running = streamCount(res[5]);
    var memMax = points(res[6]), memMean = points(res[7]);
    var rps = points(res[8], 1 / RANGES[st.range].sec);
    var latMean = points(res[9]), latMax = points(res[10]);

    var bands = [];
    var firingNow = [];
    alarms.forEach(function (a) {
      var b = firing(a.hist, a.alarm.displayName, t0, t1);
      bands = bands.concat(b);
      if (b.some(function (x) { return x.open; })) {
        firingNow.push(a.alarm.displayName);
      }
    });
    var markers = decisions.filter(function (d) {
      return d.time >= t0;
    }).map(function (d) { return { t: d.time, action: d.action }; });

    var count = steps(decisions, 'instanceCount', dep.instanceCount, t0, t1);
    var shapeNames = [];
    var shapes = steps(decisions, 'instanceShapeName', dep.instanceShapeName,
      t0, t1).filter(function (p, i, all) {
      return i === 0 || i === all.length - 1 || p[1] !== all[i - 1][1];
    }).map(function (p) {
      if (shapeNames.indexOf(p[1]) < 0) shapeNames.push(p[1]);
      return [p[0], p[1], shapeNames.indexOf(p[1])];
    });

    function spec(series, extra) {
      var s = { series: series, bands: bands, markers: markers };
      Object.keys(extra || {}).forEach(function (k) { s[k] = extra[k]; });
      return s;
    }
    draw('chart-instances', spec([
      { pts: count, color: C.count, step: true, dash: [5, 3], width: 1.2 },
      { pts: running, color: C.running, step: true },
      { pts: st.ready, color: C.ready, step: true, width: 2 }
    ], { shapes: shapes, yMax: 2, integer: true }), t0, t1);
    draw('chart-cpu', spec([
      { pts: cpuMean, color: C.mean }, { pts: cpuMax, color: C.max }
    ], { unit: '%', yMax: 10 }), t0, t1);
    draw('chart-mem', spec([
      { pts: memMean, color: C.mean }, { pts: memMax, color: C.max }
    ], { unit: '%', yMax: 10 }), t0, t1);
    draw('chart-rps', spec([{ pts: rps, color: C.rps }], { unit: '/s' }),
      t0, t1);
    draw('chart-latency', spec([
      { pts: latMean, color: C.mean }, { pts: latMax, color: C.max }
    ], { unit: 'ms' }), t0, t1);

    setFig('fig-cpu', fmt(lastValue(cpuMax), 1, '%'));
    setFig('fig-mem', fmt(lastValue(memMax), 1, '%'));
    setFig('fig-rps', fmt(lastValue(rps), 1, '/s'));
    setFig('fig-latency', fmt(lastValue(latMean), 1) + ' / ' +
      fmt(lastValue(latMax), 1, ' ms'));
    setFig('fig-alarms', firingNow.length ? firingNow.join(', ') : 'none');
    $('fig-alarms').setAttribute('data-firing', String(firingNow.length));
  }

  function setStatus(text, bad) {
    var s = $('status');
    s.textContent = text;
    s.className = bad ? 'status error' : 'status';
  }

  /* One chain of polls: a change of deployment or range starts a new one
   * at once and the old one stops at its next turn. */
  function loop() {
    var gen = ++st.gen;
    clearTimeout(st.timer);
    refresh().then(function () {
      if (gen === st.gen) st.timer = setTimeout(loop, POLL_MS);
    });
  }

  function syncUrl() {
    var p = new URLSearchParams(location.search);
    if (st.dep) p.set('deployment', st.dep);
    p.set('range', String(st.range));
    history.replaceState(null, '', '?' + p.toString());
  }

  function init() {
    var p = new URLSearchParams(location.search);
    st.dep = p.get('deployment');
    if (RANGES[p.get('range')]) st.range = Number(p.get('range'));
    $('sel-range').value = String(st.range);
    setupChart('chart-instances', 'Instances', [['ready', C.ready],
      ['running', C.running], ['count (desired)', C.count],
      ['shape', SHAPE_COLORS[2]], ['scaling event', C.marker],
      ['alarm firing', 'rgba(224,49,49,0.4)']]);
    setupChart('chart-cpu', 'CPU utilization', [['mean', C.mean],
      ['max', C.max]]);
    setupChart('chart-mem', 'Memory utilization', [['mean', C.mean],
      ['max', C.max]]);
    setupChart('chart-rps', 'Request rate', [['requests/s', C.rps]]);
    setupChart('chart-latency', 'Latency', [['mean', C.mean],
      ['max', C.max]]);
    $('sel-deployment').addEventListener('change', function (e) {
      st.dep = e.target.value;
      st.ready = [];
      syncUrl();
      loop();
    });
    $('sel-range').addEventListener('change', function (e) {
      st.range = Number(e.target.value);
      syncUrl();
      loop();
    });
    loop();
  }

  init();
})();
