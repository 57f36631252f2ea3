// Metrics tab: keep the rows matching every grid-value select and the metric range
// (args: tabs/metrics.py).
const d = src.data, n = d['portfolio'].length, keep = new Array(n).fill(true);
selects.forEach((s, j) => {
  if (s.value === '(all)') return;
  const code = levels[names[j]].indexOf(s.value), c = d['_c_' + names[j]];
  for (let i = 0; i < n; i++) if (c[i] !== code) keep[i] = false;
});
const m = d[msel.value], a = parseFloat(lo.value), b = parseFloat(hi.value);
for (let i = 0; i < n; i++) {
  if (!isNaN(a) && !(m[i] >= a)) keep[i] = false;
  if (!isNaN(b) && !(m[i] <= b)) keep[i] = false;
}
filt.booleans = keep;
const k = keep.reduce((s, x) => s + (x ? 1 : 0), 0);
info.text = `${k.toLocaleString('en-US')} of ${n.toLocaleString('en-US')} portfolios`;
