// Grid tab: re-aggregate the heatmap and its two marginal means for the chosen metric and
// axes (the same means as figures.heatmap_data; args: tabs/grid.py).
const m = metric.value; let px = xs.value, py = ys.value;
if (px === py) {
  const other = names.find(n => n !== px);
  if (other !== undefined && cb_obj !== ys) { ys.value = other; return; }
  if (other !== undefined) { xs.value = names.find(n => n !== py); return; }
}
const d = src.data, v = d[m], cx = d['_c_' + px], cy = d['_c_' + py];
const lx = levels[px], ly = levels[py], nx = lx.length, ny = ly.length;
const sum = new Float64Array(nx * ny), cnt = new Int32Array(nx * ny);
for (let i = 0; i < v.length; i++) {
  const x = v[i];
  if (Number.isFinite(x)) { const c = cy[i] * nx + cx[i]; sum[c] += x; cnt[c] += 1; }
}
const X = [], Y = [], V = [], C = [];
let lo = Infinity, hi = -Infinity;
for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
  const c = j * nx + i, val = cnt[c] ? sum[c] / cnt[c] : NaN;
  X.push(lx[i]); Y.push(ly[j]); V.push(val); C.push(cnt[c]);
  if (Number.isFinite(val)) { lo = Math.min(lo, val); hi = Math.max(hi, val); }
}
if (!Number.isFinite(lo)) { lo = 0; hi = 1; } else if (!(hi > lo)) { lo -= 0.5; hi += 0.5; }
const pct = percent.includes(m), show = nx * ny <= max_labels;
const T = V.map(val => (!show || !Number.isFinite(val)) ? '' :
  (pct ? Number((val * 100).toPrecision(3)) + '%' : String(Number(val.toPrecision(3)))));
const TC = V.map(val => Number.isFinite(val) && (val - lo) / (hi - lo) > 0.62 ? '#222222' : '#ffffff');
fig.x_range.factors = lx; fig.y_range.factors = ly;
mapper.low = lo; mapper.high = hi;
bar.formatter.format = axis_formats[m];
heat.data = {x: X, y: Y, value: V, count: C, text: T, text_color: TC};
fig.title.text = `Mean ${m} by ${px} × ${py} (averaged over the other parameters)`;
fig.below[0].axis_label = px; fig.left[0].axis_label = py;
[[px, lx, nx], [py, ly, ny]].forEach(([name, lv, n], k) => {  // the two marginal means
  const [mf, ms] = margins[k], s2 = new Float64Array(n), c2 = new Int32Array(n);
  for (let j = 0; j < ny; j++) for (let i = 0; i < nx; i++) {
    const c = j * nx + i, at = k === 0 ? i : j;
    s2[at] += sum[c]; c2[at] += cnt[c];
  }
  mf.x_range.factors = lv;
  ms.data = {x: lv, value: Array.from(s2, (v, i) => c2[i] ? v / c2[i] : NaN), count: Array.from(c2)};
  mf.title.text = `Mean ${m} by ${name}`;
  mf.left[0].formatter.format = axis_formats[m];
});
hover.tooltips = [[px, '@x'], [py, '@y'], ['mean ' + m, '@value{' + formats[m] + '}'],
                  ['portfolios', '@count']];
