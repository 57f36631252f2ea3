// Portfolio tab: show the selected portfolio's series, orders and the chosen symbol's fills
// (args: tabs/portfolio.py; also run once at document_ready).
const k = Number(choice.value);
const syms = symbols_by_choice[k] || [];
const opts = syms.length ? syms : ['(no orders)'];
if (JSON.stringify(sym.options) !== JSON.stringify(opts)) sym.options = opts;
if (!opts.includes(sym.value)) { sym.value = opts[0]; return; }  // re-runs this callback
const s = sym.value, P = pdata.data, zero = new Float32Array(P.time.length);
cur.data = {time: P.time, equity: P['eq_' + k], dd: P['dd_' + k],
            gross: P['gross_' + k] || zero, net: P['net_' + k] || zero};
info.text = infos[k];
const O = orders.data, n = O.choice ? O.choice.length : 0;
const T = {time: [], symbol: [], qty: [], price: [], value: [], commission: [], reason: []};
const M = {buy: {time: [], price: [], qty: [], reason: []}, sell: {time: [], price: [], qty: [], reason: []}};
for (const e of exit_kinds) M[e] = {time: [], price: [], qty: [], reason: []};
for (let i = 0; i < n; i++) {
  if (O.choice[i] !== k) continue;
  const symbol = symbol_names[O.sym[i]], reason = reason_names[O.reason[i]];
  T.time.push(O.time[i]); T.symbol.push(symbol); T.qty.push(O.qty[i]); T.price.push(O.price[i]);
  T.value.push(O.qty[i] * O.price[i]); T.commission.push(O.commission[i]); T.reason.push(reason);
  if (symbol !== s) continue;
  // each kind of exit has its own marker; an unknown reason is drawn as a stop
  const kind = reason === 'signal' ? (O.qty[i] > 0 ? 'buy' : 'sell') : (reason in M ? reason : 'stop');
  M[kind].time.push(O.time[i]); M[kind].price.push(O.price[i]);
  M[kind].qty.push(O.qty[i]); M[kind].reason.push(reason);
}
table.data = T; buy.data = M.buy; sell.data = M.sell;
exit_kinds.forEach((e, j) => { exit_sources[j].data = M[e]; });
if (s in prices.data) {
  price_view.data = {time: prices.data.time, price: prices.data[s]};
  price_fig.title.text = `${s}: close price with the fills of the selected portfolio`;
} else {
  const F = T.time.map((t, i) => [t, T.price[i], T.symbol[i]]).filter(r => r[2] === s);
  price_view.data = {time: F.map(r => r[0]), price: F.map(r => r[1])};
  price_fig.title.text = `${s}: fill prices of the selected portfolio (close prices not available)`;
}
