// wxtoken dashboard: plain JavaScript, no framework, no external asset.
// Every piece of data is put on the page as text (textContent), never as
// HTML, so that nothing an account or a client name holds can run here.
'use strict';

const POLL_MS = 5000;
const ROLES = { viewer: 1, operator: 2, admin: 3 };

const state = {
  name: '', role: '', csrf: '',
  skew: 0,            // server clock minus browser clock, in ms
  lastPoll: 0,        // browser time of the last complete poll
  timer: 0,
  platforms: {},      // id → {q, after: [cursors], next}
};

const $ = (sel, root) => (root || document).querySelector(sel);

// el builds an element: props sets attributes (class, data-*, title, …),
// children are nodes or strings (added as text).
function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function may(role) { return (ROLES[state.role] || 0) >= ROLES[role]; }
function serverNow() { return Date.now() + state.skew; }

// ---- talking to the server ----

class LoginRequired extends Error {}

async function call(method, path, body) {
  const headers = { 'Accept': 'application/json' };
  if (method !== 'GET') headers['X-CSRF-Token'] = state.csrf;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const resp = await fetch(path, {
    method, headers, credentials: 'same-origin', cache: 'no-store',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const now = ms(resp.headers.get('X-Wxtoken-Now'));
  if (now) state.skew = now - Date.now();
  let data = null;
  try { data = await resp.json(); } catch (_) { /* not JSON */ }
  if (resp.status === 401 && path !== '/ui/login') throw new LoginRequired();
  if (!resp.ok) {
    const msg = data && data.error ? data.error.message : resp.status + ' ' + resp.statusText;
    throw new Error(msg);
  }
  return data;
}

const api = (method, path, body) => call(method, '/ui/api/' + path, body);

// ---- formatting ----

function duration(ms) {
  let s = Math.floor(Math.abs(ms) / 1000);
  const d = Math.floor(s / 86400); s -= d * 86400;
  const h = Math.floor(s / 3600); s -= h * 3600;
  const m = Math.floor(s / 60); s -= m * 60;
  const pad = (n) => String(n).padStart(2, '0');
  if (d) return d + 'd ' + h + 'h';
  if (h) return h + 'h ' + pad(m) + 'm ' + pad(s) + 's';
  if (m) return m + 'm ' + pad(s) + 's';
  return s + 's';
}

function clock(t) {
  const d = new Date(t);
  return d.toLocaleString(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

const STATE_CLASS = {
  ok: 's-ok', reported: 's-warn', starting: 's-info', disabled: 's-grey',
  unavailable: 's-bad', revoked: 's-bad', error: 's-bad',
};

function badge(text, cls) { return el('span', { class: 'badge ' + (cls || 's-grey'), text }); }

// countdown is an element whose text counts down to at (ms) every second
// (see tick). mode "serve" warns under 10 minutes, "next" says "due" when
// the time is past, "since" counts up from at.
function countdown(at, mode, extra) {
  if (!at) return el('span', { class: 'muted', text: '–' });
  const e = el('span', Object.assign({ class: 'countdown', 'data-at': at, 'data-mode': mode }, extra || {}));
  showCountdown(e, serverNow());
  return e;
}

// showCountdown sets a countdown's text and warning class for now.
function showCountdown(e, now) {
  const at = Number(e.dataset.at);
  const left = at - now;
  let text, cls = '';
  switch (e.dataset.mode) {
    case 'since':
      text = duration(now - at) + ' ago';
      if (e.dataset.warn && now - at > Number(e.dataset.warn)) cls = 'warn';
      break;
    case 'next':
      text = left > 0 ? 'in ' + duration(left) : 'due';
      break;
    default: // serve
      text = left > 0 ? duration(left) : 'expired';
      cls = left <= 0 ? 'bad' : left < 10 * 60 * 1000 ? 'warn' : '';
  }
  if (e.textContent !== text) e.textContent = text;
  e.classList.toggle('warn', cls === 'warn');
  e.classList.toggle('bad', cls === 'bad');
}

// showLife sets the width of a bar of the part of a token's life left.
function showLife(e, now) {
  const from = Number(e.dataset.lifeFrom), to = Number(e.dataset.lifeTo);
  const frac = Math.max(0, Math.min(1, (to - now) / (to - from)));
  e.firstChild.style.width = (frac * 100).toFixed(1) + '%';
  e.classList.toggle('warn', frac < 0.25 && frac > 0.08);
  e.classList.toggle('bad', frac <= 0.08);
}

function tick() {
  const now = serverNow();
  for (const e of document.querySelectorAll('[data-at]')) showCountdown(e, now);
  for (const e of document.querySelectorAll('[data-life-from]')) showLife(e, now);
  if (state.lastPoll) {
    const ago = Math.max(0, Math.round((Date.now() - state.lastPoll) / 1000));
    $('#updated').textContent = 'updated ' + (ago < 2 ? 'just now' : ago + 's ago');
  }
}

// ms reads a time the server wrote (RFC 3339 with up to nine decimals)
// as milliseconds; some browsers parse no more than three decimals.
const ms = (iso) => (iso ? Date.parse(String(iso).replace(/(\.\d{3})\d+/, '$1')) || 0 : 0);

// ---- credentials ----

function servedCell(c) {
  const td = el('td', { class: 'serve' });
  if (!c.serve_until) { td.append(el('span', { class: 'muted', text: '–' })); return td; }
  td.append(countdown(ms(c.serve_until), 'serve', { title: 'served until ' + clock(ms(c.serve_until)) + ', expires ' + clock(ms(c.expires_at)) }));
  if (c.issued_at) {
    const life = el('div', { class: 'life', 'data-life-from': ms(c.issued_at), 'data-life-to': ms(c.serve_until) }, el('span'));
    showLife(life, serverNow());
    td.append(life);
  }
  return td;
}

function quotaCell(c) {
  const n = c.fetches_today || 0;
  if (!c.daily_quota) {
    return el('td', {}, el('span', { class: 'num' }, String(n)), el('div', { class: 'sub', text: 'no daily quota known' }));
  }
  const frac = n / c.daily_quota;
  const cls = frac >= 0.95 ? 'bad' : frac >= 0.8 ? 'warn' : '';
  const bar = el('div', { class: 'bar' }, el('span'));
  bar.firstChild.style.width = Math.min(100, frac * 100).toFixed(1) + '%';
  return el('td', { class: 'quota ' + cls, title: (c.forced_today || 0) + ' forced by reports' },
    el('span', { class: 'num' }, n.toLocaleString()), el('span', { class: 'muted' }, ' / ' + c.daily_quota.toLocaleString()), bar);
}

function causeCell(c) {
  if (c.error) return el('td', { class: 'cause' }, c.error);
  if (!c.cause) return el('td', {}, el('span', { class: 'muted', text: '–' }));
  const k = c.cause;
  const code = k.errcode && !k.message.includes(String(k.errcode)) ? k.errcode + ' · ' : '';
  return el('td', { class: 'cause' },
    code + k.message,
    el('div', { class: 'sub' }, k.class + ' · ' + k.failures + ' failure' + (k.failures === 1 ? '' : 's') + ' since ' + clock(ms(k.since))));
}

function actionButtons(c) {
  const td = el('td', { class: 'actions-cell' });
  if (!may('operator')) return td;
  const box = el('div', { class: 'actions' });
  const btn = (action, label, cls) => el('button', { type: 'button', class: 'small ' + (cls || ''), 'data-what': 'credential', 'data-action': action, 'data-id': c.id }, label);
  const running = !['disabled', 'error', 'starting'].includes(c.state);
  if (running && c.state !== 'revoked') box.append(btn('refresh', 'Refresh', 'act-refresh'));
  if (running && (c.cause || c.state !== 'ok')) box.append(btn('unblock', 'Unblock'));
  if (c.kind === 'mp' && (c.source === 'file' || c.source === 'admin') && running) box.append(btn('clear_quota', 'Clear quota'));
  if (c.source === 'admin') {
    box.append(c.state === 'disabled' ? btn('enable', 'Enable') : btn('disable', 'Disable'));
    if (may('admin')) box.append(btn('remove', 'Remove', 'act-danger'));
  }
  td.append(box);
  return td;
}

function credentialRow(c) {
  const from = { file: 'from the file', admin: 'added at run time', derived: 'derived' }[c.source];
  const sub = [c.kind, from].filter(Boolean).join(' · ');
  const tr = el('tr', { 'data-id': c.id, 'data-issued': c.issued_at || '', 'data-state': c.state, 'data-sig': state.role + JSON.stringify(c) },
    el('td', {}, el('div', { class: 'id mono', text: c.id }), el('div', { class: 'sub', text: sub })),
    el('td', {}, badge(c.state, STATE_CLASS[c.state])),
    servedCell(c),
    el('td', { class: 'next' }, c.next_refresh ? countdown(ms(c.next_refresh), 'next', { title: clock(ms(c.next_refresh)) }) : el('span', { class: 'muted', text: '–' })),
    quotaCell(c),
    causeCell(c),
    actionButtons(c));
  return tr;
}

// renderRows sets a table's rows. A row that carries the same data as
// the one shown (data-sig) is kept as it is, and when no row changed the
// table is not touched: a button does not vanish from under a pointer
// at every poll. Rows whose token changed flash their countdowns.
function renderRows(tbody, rows, empty, cols) {
  const old = {};
  for (const tr of tbody.querySelectorAll('tr[data-id]')) old[tr.dataset.id] = tr;
  if (!rows.length) rows = [el('tr', {}, el('td', { class: 'empty', colspan: cols, text: empty }))];
  rows = rows.map((tr) => {
    const o = tr.dataset.id !== undefined ? old[tr.dataset.id] : undefined;
    return o && o.dataset.sig !== undefined && o.dataset.sig === tr.dataset.sig ? o : tr;
  });
  const shown = tbody.children;
  if (shown.length === rows.length && rows.every((tr, i) => shown[i] === tr)) return;
  for (const tr of rows) {
    const o = old[tr.dataset.id];
    if (o && o !== tr && o.dataset.issued !== undefined && o.dataset.issued !== tr.dataset.issued) {
      for (const c of tr.querySelectorAll('.countdown')) c.classList.add('flash');
    }
  }
  tbody.replaceChildren(...rows);
}

function renderCredentials(list) {
  renderRows($('#credentials tbody'), list.map(credentialRow), 'No credentials', 7);
  const ok = list.filter((c) => c.state === 'ok').length;
  $('#sum-creds').textContent = String(list.length);
  const bad = list.length - ok;
  $('#sum-creds-sub').replaceChildren(
    el('span', { text: ok + ' ok' }),
    bad ? el('span', { class: 'cause' }, ' · ' + bad + ' need' + (bad === 1 ? 's' : '') + ' attention') : '');
  let next = null;
  for (const c of list) {
    if (c.next_refresh && (!next || ms(c.next_refresh) < ms(next.next_refresh))) next = c;
  }
  if (next) {
    $('#sum-next').replaceChildren(countdown(ms(next.next_refresh), 'next'));
    $('#sum-next-sub').textContent = next.id;
  } else {
    $('#sum-next').textContent = '–';
    $('#sum-next-sub').textContent = '';
  }
  let fetches = 0, quota = 0, worst = 0, worstID = '';
  for (const c of list) {
    fetches += c.fetches_today || 0;
    if (c.daily_quota) {
      quota += c.daily_quota;
      const f = (c.fetches_today || 0) / c.daily_quota;
      if (f > worst) { worst = f; worstID = c.id; }
    }
  }
  $('#sum-fetches').textContent = fetches.toLocaleString();
  $('#sum-fetches-sub').textContent = worstID
    ? 'highest: ' + worstID + ' at ' + (worst * 100).toFixed(1) + '% of its quota'
    : quota ? 'of ' + quota.toLocaleString() + ' allowed' : '';
}

// ---- platforms ----

function platformState(id) {
  if (!state.platforms[id]) state.platforms[id] = { q: '', after: [''], next: '', matched: 0 };
  return state.platforms[id];
}

function renderPlatforms(list) {
  $('#platforms-panel').hidden = list.length === 0;
  const box = $('#platforms');
  for (const p of list) {
    let sec = box.querySelector('section[data-platform="' + CSS.escape(p.id) + '"]');
    if (!sec) {
      sec = buildPlatform(p);
      box.append(sec);
    }
    const head = $('.platform-head', sec);
    let ticket;
    if (p.ticket_received_at) {
      // WeChat pushes a ticket every ten minutes: 20 without one is late.
      ticket = countdown(ms(p.ticket_received_at), 'since', { 'data-warn': 20 * 60 * 1000 });
    } else {
      ticket = el('span', { class: 'cause', text: p.ticket_error || 'none received' });
    }
    // A WeCom suite's corps are its authorizers; its ticket gap (none,
    // late, expired, refused) is shown as the server words it, since
    // WeCom has no API to ask for another ticket.
    const suite = p.kind === 'suite';
    const ticketBox = el('span', { class: 'v' }, ticket);
    if (p.ticket_gap) ticketBox.append(el('div', { class: 'cause', text: p.ticket_gap }));
    head.replaceChildren(
      el('div', {}, el('div', { class: 'id mono', text: p.id }),
        el('div', { class: 'sub', text: suite ? 'WeCom suite ' + p.suite_id : 'component_appid ' + p.component_appid })),
      el('div', { class: 'stat' }, el('span', { class: 'k', text: 'Last ticket' }), ticketBox),
      el('div', { class: 'stat' }, el('span', { class: 'k', text: suite ? 'Corps' : 'Authorizers' }), el('span', { class: 'v', text: p.authorizers.toLocaleString() })));
  }
  for (const sec of box.querySelectorAll('section[data-platform]')) {
    if (!list.some((p) => p.id === sec.dataset.platform)) sec.remove();
  }
}

function buildPlatform(p) {
  const search = el('input', { type: 'search', placeholder: 'Search authorizers by appid', 'aria-label': 'Search authorizers of ' + p.id });
  const prev = el('button', { type: 'button', class: 'small', 'data-page': 'prev' }, '‹ Previous');
  const next = el('button', { type: 'button', class: 'small', 'data-page': 'next' }, 'Next ›');
  const sec = el('section', { class: 'platform', 'data-platform': p.id },
    el('div', { class: 'platform-head' }),
    el('div', { class: 'toolbar' }, search),
    el('div', { class: 'table-wrap' }, el('table', { class: 'authorizers' },
      el('thead', {}, el('tr', {}, ['Authorizer', 'State', 'Served for', 'Next refresh', 'Fetches today', 'Last cause', 'Actions']
        .map((h) => el('th', { class: h === 'Actions' ? 'actions-col' : null, text: h })))),
      el('tbody'))),
    el('div', { class: 'pager' }, el('span', { class: 'muted small range' }), prev, next));
  let debounce = 0;
  search.addEventListener('input', () => {
    clearTimeout(debounce);
    debounce = setTimeout(() => {
      const ps = platformState(p.id);
      ps.q = search.value.trim();
      ps.after = [''];
      loadAuthorizers(p.id);
    }, 250);
  });
  prev.addEventListener('click', () => {
    const ps = platformState(p.id);
    if (ps.after.length > 1) ps.after.pop();
    loadAuthorizers(p.id);
  });
  next.addEventListener('click', () => {
    const ps = platformState(p.id);
    if (ps.next) ps.after.push(ps.next);
    loadAuthorizers(p.id);
  });
  sec.addEventListener('click', onAction);
  setTimeout(() => loadAuthorizers(p.id), 0);
  return sec;
}

const PAGE = 20;

async function loadAuthorizers(id) {
  const ps = platformState(id);
  const sec = document.querySelector('section[data-platform="' + CSS.escape(id) + '"]');
  if (!sec) return;
  const after = ps.after[ps.after.length - 1];
  const query = new URLSearchParams({ limit: String(PAGE) });
  if (ps.q) query.set('q', ps.q);
  if (after) query.set('after', after);
  try {
    const data = await api('GET', 'platforms/' + encodeURIComponent(id) + '/authorizers?' + query);
    ps.next = data.next;
    ps.matched = data.matched;
    renderRows($('tbody', sec), data.authorizers.map(credentialRow), ps.q ? 'No authorizer matches “' + ps.q + '”' : 'No authorizers yet', 7);
    const first = (ps.after.length - 1) * PAGE;
    $('.range', sec).textContent = data.matched
      ? (first + 1) + '–' + (first + data.authorizers.length) + ' of ' + data.matched.toLocaleString()
      : '';
    $('[data-page=prev]', sec).disabled = ps.after.length <= 1;
    $('[data-page=next]', sec).disabled = !data.next;
  } catch (err) {
    handleError(err);
  }
}

// ---- hosts, clients, audit ----

function renderUpstreams(list) {
  renderRows($('#upstreams tbody'), list.map((u) => el('tr', {},
    el('td', {}, el('div', { class: 'mono', text: u.url }), u.active ? el('div', { class: 'sub', text: 'in use' }) : ''),
    el('td', {}, u.healthy ? badge('healthy', 's-ok') : badge('down', 's-bad'), u.last_error ? el('div', { class: 'sub cause', text: u.last_error }) : ''),
    el('td', {}, u.last_check ? countdown(ms(u.last_check), 'since') : el('span', { class: 'muted', text: 'not checked' })),
    el('td', { text: String(u.failovers) }))), 'No hosts', 4);
  const healthy = list.filter((u) => u.healthy).length;
  const active = list.find((u) => u.active);
  $('#sum-hosts').textContent = healthy + ' / ' + list.length;
  $('#sum-hosts').className = 'card-value' + (list.length && healthy === 0 ? ' cause' : '');
  $('#sum-hosts-sub').textContent = list.length ? 'healthy; in use: ' + (active ? new URL(active.url).host : 'none') : '';
}

function renderClients(list) {
  renderRows($('#clients tbody'), list.map((c) => {
    const status = [];
    status.push(c.disabled ? badge('disabled', 's-grey') : badge('active', 's-ok'));
    for (const until of c.previous_key_until || []) {
      status.push(el('div', { class: 'sub' }, 'old key works until ', clock(ms(until))));
    }
    const actions = el('div', { class: 'actions' });
    const btn = (action, label, cls) => el('button', { type: 'button', class: 'small ' + (cls || ''), 'data-what': 'client', 'data-action': action, 'data-id': c.name }, label);
    if (c.source === 'admin' && may('operator')) {
      actions.append(c.disabled ? btn('enable', 'Enable') : btn('disable', 'Disable'));
      if (may('admin')) actions.append(btn('rotate', 'Rotate key'), btn('remove', 'Remove', 'act-danger'));
    }
    return el('tr', { 'data-id': c.name, 'data-sig': state.role + JSON.stringify(c) },
      el('td', { class: 'id mono', text: c.name }),
      el('td', { text: c.source === 'admin' ? 'added at run time' : 'file' }),
      el('td', { class: 'mono', text: (c.allow || []).join(', ') }),
      el('td', {}, status),
      el('td', { class: 'actions-cell' }, actions));
  }), 'No clients', 5);
}

const RESULT_CLASS = { ok: 's-ok', refused: 's-warn', failed: 's-bad' };

function renderAudit(list) {
  renderRows($('#audit tbody'), list.map((e) => el('tr', {},
    el('td', { title: clock(ms(e.time)) }, countdown(ms(e.time), 'since')),
    el('td', {}, e.actor ? el('span', { class: 'id', text: e.actor }) : el('span', { class: 'muted', text: 'no valid key' }),
      e.role ? el('div', { class: 'sub', text: e.role }) : ''),
    el('td', { class: 'mono', text: e.action }),
    el('td', { class: 'mono', text: e.target || '' }),
    el('td', {}, badge(e.result, RESULT_CLASS[e.result])),
    el('td', { class: 'small', text: e.detail || '' }))), 'No events yet', 6);
}

async function renderHealth() {
  const pill = $('#health');
  try {
    const resp = await fetch('/readyz', { cache: 'no-store' });
    const ready = resp.ok;
    pill.textContent = ready ? 'Ready' : 'Not ready';
    pill.className = 'pill ' + (ready ? 's-ok' : 's-bad');
    pill.title = ready ? 'every credential has a valid token or a known cause' : 'a credential has no valid token yet, or the store fails';
  } catch (_) {
    pill.textContent = 'Unreachable';
    pill.className = 'pill s-bad';
  }
}

// ---- polling ----

async function poll() {
  clearTimeout(state.timer);
  if (document.hidden) return; // resumed by visibilitychange
  try {
    const [creds, ups, plats, clients, audit] = await Promise.all([
      api('GET', 'credentials'), api('GET', 'upstreams'), api('GET', 'platforms'),
      api('GET', 'clients'), api('GET', 'audit?limit=12'), renderHealth(),
    ]);
    renderCredentials(creds.credentials);
    renderUpstreams(ups.upstreams);
    renderPlatforms(plats.platforms);
    for (const p of plats.platforms) {
      if (state.platforms[p.id]) loadAuthorizers(p.id);
    }
    renderClients(clients.clients);
    renderAudit(audit.events);
    state.lastPoll = Date.now();
    $('#banner').hidden = true;
    tick();
  } catch (err) {
    if (err instanceof LoginRequired) { showLogin('Your session ended: sign in again.'); return; }
    const b = $('#banner');
    b.textContent = 'Could not read the server: ' + err.message;
    b.hidden = false;
  }
  state.timer = setTimeout(poll, POLL_MS);
}

// ---- actions ----

// ACTIONS are the buttons' requests, by what they act on and action.
const ACTIONS = {
  'credential.refresh': { label: 'Refresh' },
  'credential.unblock': { label: 'Unblock' },
  'credential.clear_quota': {
    label: 'Clear quota', confirm: 'Clear WeChat\u2019s daily quota',
    text: (id) => 'This asks WeChat to reset the API quota of ' + id + '. WeChat allows 10 a month per account; this uses one of them.',
  },
  'credential.disable': {
    label: 'Disable', confirm: 'Disable this credential',
    text: (id) => 'wxtoken stops refreshing and serving ' + id + ' on every instance until it is enabled again. Business servers that use it will get errors.',
  },
  'credential.enable': { label: 'Enable' },
  'credential.remove': {
    label: 'Remove', method: 'DELETE', confirm: 'Remove this credential',
    text: (id) => id + ' is removed from the store and stops on every instance. Its settings, AppSecret included, are gone.',
  },
  'client.disable': {
    label: 'Disable', confirm: 'Disable this client',
    text: (id) => 'The key of ' + id + ' stops working on every instance until the client is enabled again.',
  },
  'client.enable': { label: 'Enable' },
  'client.rotate': {
    label: 'Rotate key', confirm: 'Rotate this client\u2019s key',
    text: (id) => 'A new key is made for ' + id + ' and shown once. The old key keeps working for 24 hours, time to deploy the new one.',
  },
  'client.remove': {
    label: 'Remove', method: 'DELETE', confirm: 'Remove this client',
    text: (id) => 'The key of ' + id + ' stops working on every instance, for good.',
  },
};

function confirmAction(title, text) {
  const dlg = $('#confirm');
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), { once: true });
    dlg.returnValue = '';
    dlg.showModal();
  });
}

async function onAction(ev) {
  const b = ev.target.closest('button[data-action]');
  if (!b) return;
  const id = b.dataset.id, action = b.dataset.action, what = b.dataset.what;
  const a = ACTIONS[what + '.' + action];
  if (!a) return;
  if (a.confirm && !(await confirmAction(a.confirm + '?', a.text(id)))) return;
  b.disabled = true;
  try {
    const base = (what === 'client' ? 'clients/' : 'credentials/') + encodeURIComponent(id);
    const ans = a.method === 'DELETE' ? await api('DELETE', base) : await api('POST', base + '/' + action);
    toast(a.label + ': ' + id + ' done');
    if (ans && ans.key) {
      const until = (ans.previous_key_until || []).slice(-1)[0];
      showKey('The new key of ' + id, ans.key, until ? 'The old key keeps working until ' + clock(ms(until)) + '.' : 'The old key no longer works.');
    }
    await poll();
  } catch (err) {
    if (err instanceof LoginRequired) { showLogin('Your session ended: sign in again.'); return; }
    toast(a.label + ' ' + id + ' failed: ' + err.message, true);
    b.disabled = false;
  }
}

function toast(text, bad) {
  const t = el('div', { class: 'toast' + (bad ? ' bad' : ''), role: 'status', text });
  $('#toasts').append(t);
  setTimeout(() => t.remove(), bad ? 8000 : 4000);
}

function handleError(err) {
  if (err instanceof LoginRequired) showLogin('Your session ended: sign in again.');
  else toast(err.message, true);
}

// ---- forms ----

function showKey(title, key, note) {
  $('#show-key-title').textContent = title;
  $('#show-key-value').textContent = key;
  $('#show-key-note').textContent = note || '';
  $('#show-key').showModal();
}

// formDialog opens dlg; on submit, body(form) makes the request body and
// send(body) makes the request. An error stays in the dialog.
function formDialog(dlg, body, send) {
  const form = $('form', dlg);
  const err = $('.error', form);
  form.reset();
  err.hidden = true;
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const submit = $('button[type=submit]', form);
    submit.disabled = true;
    try {
      await send(body(form));
      dlg.close();
      await poll();
    } catch (e) {
      if (e instanceof LoginRequired) { dlg.close(); showLogin('Your session ended: sign in again.'); return; }
      err.textContent = e.message;
      err.hidden = false;
    } finally {
      submit.disabled = false;
    }
  };
  dlg.showModal();
  form.dispatchEvent(new Event('change'));
}

function openAddCredential() {
  const dlg = $('#add-credential');
  const form = $('form', dlg);
  form.onchange = () => {
    const kind = form.elements.kind.value;
    for (const l of form.querySelectorAll('[data-kind]')) l.hidden = l.dataset.kind !== kind;
  };
  formDialog(dlg, (f) => {
    const v = (n) => f.elements[n].value.trim();
    const cr = { id: v('id'), kind: v('kind'), secret: f.elements.secret.value };
    if (cr.kind === 'mp') { cr.appid = v('appid'); cr.mode = v('mode'); }
    else {
      cr.corpid = v('corpid');
      if (v('agentid')) cr.agentid = Number(v('agentid'));
    }
    if (f.elements.jsapi.checked) cr.tickets = ['jsapi'];
    return cr;
  }, async (cr) => {
    await api('POST', 'credentials', cr);
    toast('Added ' + cr.id);
  });
}

function openAddClient() {
  formDialog($('#add-client'), (f) => ({
    name: f.elements.name.value.trim(),
    allow: f.elements.allow.value.split(/[\s,]+/).filter(Boolean),
  }), async (cl) => {
    const ans = await api('POST', 'clients', cl);
    toast('Added client ' + cl.name);
    showKey('The key of ' + cl.name, ans.key, 'Give it to the business server as its Bearer key.');
  });
}

// ---- login ----

function showLogin(message) {
  clearTimeout(state.timer);
  state.csrf = '';
  $('#app').hidden = true;
  $('#login').hidden = false;
  const e = $('#login-error');
  e.textContent = message || '';
  e.hidden = !message;
  $('#key').focus();
}

function showApp(who) {
  state.name = who.name; state.role = who.role; state.csrf = who.csrf;
  $('#who').replaceChildren(el('span', { text: who.name }), badge(who.role, 's-info role plain'));
  document.body.classList.toggle('readonly', !may('operator'));
  document.body.classList.toggle('readonly-admin', !may('admin'));
  $('#login').hidden = true;
  $('#app').hidden = false;
  poll();
}

async function login(ev) {
  ev.preventDefault();
  const key = $('#key');
  const btn = $('#login-submit');
  btn.disabled = true;
  try {
    const who = await call('POST', '/ui/login', { key: key.value });
    key.value = '';
    showApp(who);
  } catch (err) {
    showLogin(err.message === 'unknown admin key' ? 'That is not an admin key.' : err.message);
  } finally {
    btn.disabled = false;
  }
}

async function logout() {
  try { await call('POST', '/ui/logout'); } catch (_) { /* signed out anyway */ }
  state.platforms = {};
  $('#platforms').replaceChildren();
  showLogin('');
}

async function start() {
  $('#login-form').addEventListener('submit', login);
  $('#logout').addEventListener('click', logout);
  $('#credentials').addEventListener('click', onAction);
  $('#clients').addEventListener('click', onAction);
  $('#open-add-credential').addEventListener('click', openAddCredential);
  $('#open-add-client').addEventListener('click', openAddClient);
  for (const b of document.querySelectorAll('dialog [data-close]')) {
    b.addEventListener('click', () => b.closest('dialog').close());
  }
  setInterval(tick, 1000);
  // A hidden tab stops polling, and catches up when shown again.
  document.addEventListener('visibilitychange', () => {
    if (!document.hidden && state.csrf) poll();
  });
  try {
    showApp(await call('GET', '/ui/session'));
  } catch (_) {
    showLogin('');
  }
}

document.addEventListener('DOMContentLoaded', start);
