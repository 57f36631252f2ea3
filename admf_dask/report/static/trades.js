// Trades tab: show the selected portfolio's trades, P&L histogram and MFE / MAE scatter
// (args: tabs/trades.py).
const k = choice.value;
table.data = rows[k];
hist.data = hists[k];
info.text = infos[k];
