"use strict";
// The index page's search and try-it panel. The page works without this script: every row
// and link is in the HTML; the script only reveals the search field, the panel and the buttons.
(() => {
  const $ = (id) => document.getElementById(id);
  const rows = Array.from(document.querySelectorAll("tr[data-code]"));
  const sections = Array.from(document.querySelectorAll("section.class"));
  const reasons = new Map();
  const haystacks = rows.map((row) => {
    const rfc = row.querySelector(".rfc").textContent;
    reasons.set(row.dataset.code, rfc.replace(/^\((.*)\)$/, "$1"));
    const words = Array.from(row.querySelectorAll(".k"), (e) => e.textContent);
    return words.join(" ").toLowerCase();
  });

  // Search: every word must match. Digits match the code (42: 420-429, 142), 4xx a class,
  // other words the message, the RFC phrase or the description.
  const q = $("q");
  const count = $("count");
  function matches(word, code, text) {
    if (/^\d+$/.test(word)) return code.includes(word);
    if (/^[1-5]xx$/.test(word)) return code[0] === word[0];
    return text.includes(word);
  }
  function filter() {
    const words = q.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    rows.forEach((row, i) => {
      const hit = words.every((w) => matches(w, row.dataset.code, haystacks[i]));
      row.hidden = !hit;
      if (hit) shown += 1;
    });
    for (const s of sections) s.hidden = !s.querySelector("tr[data-code]:not([hidden])");
    count.textContent = String(shown);
    $("none").hidden = shown !== 0;
  }
  q.addEventListener("input", filter);

  // Try-it: fetch /status/{code} and show what came back.
  const out = $("out");
  const why = $("why");
  const form = $("opts");
  let latest = 0;
  const interim = (code) =>
    code === 101
      ? "101 Switching Protocols answers only a real Upgrade request. fetch() cannot send Upgrade " +
        "or Connection (the browser forbids them), so a page reaches 101 only through " +
        "new WebSocket(): statuslab's echo is at /websocket/echo. To see the handshake:\n\n" +
        "curl -i -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' " +
        "-H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' " + location.origin + "/status/101"
      : `${code} is an interim (1xx) response: the browser reads it, drops it and gives fetch() ` +
        "only the final response, so a page can never show it. statuslab sends a real interim " +
        `${code} and then the final response (200, or then=CODE). To see both:\n\n` +
        `curl -i ${location.origin}/status/${code}`;

  async function send(code) {
    const ticket = ++latest;
    const method = $("method").value;
    const accept = $("accept").value;
    const params = new URLSearchParams();
    const retryAfter = $("retry_after").value.trim();
    const sleep = $("sleep").value.trim();
    if (retryAfter) params.set("retry_after", retryAfter);
    if (sleep) params.set("sleep", sleep);
    const url = `/status/${code}` + (params.toString() ? `?${params}` : "");
    $("code").value = String(code);
    $("req").textContent = `${method} ${url}\nAccept: ${accept}`;
    why.hidden = true;
    if (code < 200) {
      out.textContent = "";
      why.textContent = interim(code);
      why.hidden = false;
      return;
    }
    out.textContent = "…";
    const started = performance.now();
    let text;
    let note = "";
    try {
      const res = await fetch(url, {
        method,
        headers: { Accept: accept },
        credentials: "omit",
        cache: "no-store",
      });
      const body = method === "HEAD" ? "" : await res.text();
      const reason = reasons.get(String(res.status)) || "";
      text = `HTTP/1.1 ${res.status} ${reason}\n`;
      for (const [name, value] of res.headers) text += `${name}: ${value}\n`;
      text += "\n" + (body.length > 65536 ? body.slice(0, 65536) + "\n…" : body);
      if (res.redirected) {
        note =
          `fetch() followed the ${code}'s Location to ${new URL(res.url).pathname}` +
          " and shows where it led: browsers never hand a redirect response to a script. " +
          `curl -i ${location.origin}${url} shows the ${code} itself.`;
      }
    } catch (err) {
      text = `fetch() failed: ${err.message}`;
      if (code === 407) {
        note =
          "A browser treats 407 from a server that is not its configured proxy as a " +
          "network error (Chromium: ERR_UNEXPECTED_PROXY_AUTH), so a page cannot read it. " +
          `curl -i ${location.origin}${url} shows it.`;
      }
    }
    if (ticket !== latest) return;
    $("req").textContent += `\n(${Math.round(performance.now() - started)} ms)`;
    out.textContent = text;
    why.textContent = note;
    why.hidden = !note;
  }

  form.addEventListener("submit", (e) => {
    e.preventDefault();
    const code = Number($("code").value);
    if (Number.isInteger(code) && code >= 100 && code <= 599) send(code);
    else out.textContent = "A status code is a number from 100 to 599.";
  });
  document.addEventListener("click", (e) => {
    const button = e.target.closest("button[data-try]");
    if (button) send(Number(button.closest("tr").dataset.code));
  });

  for (const b of document.querySelectorAll("button[data-try]")) b.hidden = false;
  $("tools").hidden = false;
  $("panel").hidden = false;
  filter();
})();
