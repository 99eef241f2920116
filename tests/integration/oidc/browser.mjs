// browser.mjs — plays the user's browser against oidc-provider's device pages:
// a cookie jar, redirects followed by hand, every form submitted with the xsrf
// token (and other hidden fields) it carries.
//
//   node browser.mjs URL LOGIN approve|deny
// URL is the verification_uri_complete hoopctl printed. Exits 0 when the
// provider shows its success page (approve) or the aborted page (deny).
const [url, login, mode] = process.argv.slice(2);
if (!url || !login || !['approve', 'deny'].includes(mode)) {
  console.error('usage: node browser.mjs URL LOGIN approve|deny');
  process.exit(2);
}

const jar = new Map();
function storeCookies(res) {
  for (const line of res.headers.getSetCookie()) {
    const [pair] = line.split(';');
    const eq = pair.indexOf('=');
    jar.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
  }
}
function cookieHeader() {
  return [...jar].map(([k, v]) => `${k}=${v}`).join('; ');
}

async function request(target, method = 'GET', form) {
  let next = new URL(target);
  let body = form ? new URLSearchParams(form).toString() : undefined;
  for (let hops = 0; hops < 20; hops++) {
    const headers = { cookie: cookieHeader() };
    if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(next, { method, headers, body, redirect: 'manual' });
    storeCookies(res);
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      next = new URL(res.headers.get('location'), next);
      method = 'GET';
      body = undefined;
      continue;
    }
    return { url: next, status: res.status, html: await res.text() };
  }
  throw new Error('too many redirects');
}

function attr(tag, name) {
  const m = new RegExp(`${name}="([^"]*)"`).exec(tag);
  return m ? m[1].replace(/&amp;/g, '&') : undefined;
}

// The first form of the page: its action and every named input with a value.
function firstForm(html) {
  const m = /<form\b([^>]*)>([\s\S]*?)<\/form>/i.exec(html);
  if (!m) return undefined;
  const fields = {};
  for (const [tag] of m[2].matchAll(/<input\b[^>]*>/gi)) {
    const name = attr(tag, 'name');
    if (name) fields[name] = attr(tag, 'value') ?? '';
  }
  return { action: attr(m[1], 'action'), fields };
}

let page = await request(url);
for (let step = 0; step < 12; step++) {
  if (/Sign-in Success|successfully/i.test(page.html)) {
    console.log('browser: approved');
    process.exit(mode === 'approve' ? 0 : 1);
  }
  if (/request was interrupted/i.test(page.html)) {
    console.log('browser: denied');
    process.exit(mode === 'deny' ? 0 : 1);
  }
  const problem = /<p class="red">([^<]*)<\/p>/.exec(page.html);
  if (problem) {
    console.error(`browser: the provider says: ${problem[1]}`);
    process.exit(1);
  }
  const form = firstForm(page.html);
  if (!form) {
    console.error(`browser: no form at ${page.url} (HTTP ${page.status}):\n${page.html.slice(0, 2000)}`);
    process.exit(1);
  }
  const fields = { ...form.fields };
  if ('confirm' in fields && mode === 'deny') {
    delete fields.confirm;
    fields.abort = 'yes';
  }
  if (fields.prompt === 'login') {
    fields.login = login;
    fields.password = 'any';
  }
  page = await request(new URL(form.action, page.url), 'POST', fields);
}
console.error(`browser: gave up at ${page.url}:\n${page.html.slice(0, 2000)}`);
process.exit(1);
