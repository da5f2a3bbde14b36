// One-time credential reveal. The key lives only in the URL fragment, which browsers
// never send to the server; the server hands out the ciphertext once, on a real click.
(() => {
  "use strict";

  const FIELDS = ["user_name", "console_url", "password", "access_key_id", "secret_access_key"];
  const CSV_HEADER = "User name,Password,Access key ID,Secret access key,Console login link";
  const CSV_COLUMNS = ["user_name", "password", "access_key_id", "secret_access_key", "console_url"];

  const $ = (id) => document.getElementById(id);
  const statusEl = $("status");
  const revealBtn = $("reveal");

  // Tolerate trailing slashes, but the path itself is what the server keys on.
  const id = location.pathname.split("/").filter(Boolean).pop() || "";
  let key = null;
  let creds = null;
  let busy = false;
  let finished = false;

  function b64urlDecode(text) {
    if (!/^[A-Za-z0-9_-]*$/.test(text)) throw new Error("not base64url");
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((text.length + 3) % 4);
    const bin = atob(b64);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i += 1) out[i] = bin.charCodeAt(i);
    return out;
  }

  // Parts are strings or [tag, text] pairs, so messages never go through innerHTML.
  function setStatus(kind, ...parts) {
    statusEl.className = `status status-${kind}`;
    statusEl.replaceChildren(...parts.map((p) => {
      if (typeof p === "string") return document.createTextNode(p);
      const el = document.createElement(p[0]);
      el.textContent = p[1];
      return el;
    }));
  }

  function readKey() {
    key = null;
    const fragment = location.hash.slice(1);
    if (!fragment) {
      return "the decryption key (the part after #) is missing. Open the link exactly as the bot "
        + "sent it in Slack, including everything after the #.";
    }
    let bytes = null;
    try {
      bytes = b64urlDecode(fragment.replace(/=+$/, ""));
    } catch {
      bytes = null;
    }
    if (!bytes || bytes.length !== 32) {
      return "its decryption key (the part after #) is damaged or cut short. Copy the whole link "
        + "from Slack again; some apps break long links.";
    }
    if (!id) return "it has no credential id. Copy the whole link from Slack again.";
    key = bytes;
    return null;
  }

  function parseAnswer(body) {
    if (!body || typeof body.iv !== "string" || typeof body.ciphertext !== "string") {
      throw new TypeError("malformed answer");
    }
    const iv = b64urlDecode(body.iv);
    const ciphertext = b64urlDecode(body.ciphertext);
    if (iv.length !== 12 || ciphertext.length < 16) throw new TypeError("malformed answer");
    return { iv, ciphertext };
  }

  async function decrypt({ iv, ciphertext }) {
    const cryptoKey = await crypto.subtle.importKey("raw", key, "AES-GCM", false, ["decrypt"]);
    const plain = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(id) },
      cryptoKey,
      ciphertext,
    );
    return new Uint8Array(plain);
  }

  function safeHttpUrl(text) {
    try {
      const url = new URL(text);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch {
      return null;
    }
  }

  function show(data) {
    creds = {};
    for (const name of FIELDS) {
      const value = data[name];
      creds[name] = typeof value === "string" && value !== "" ? value : null;
      $(name).value = creds[name] ?? "";
      document.querySelector(`[data-field="${name}"]`).hidden = creds[name] === null;
    }
    const href = creds.console_url && safeHttpUrl(creds.console_url);
    const link = $("console_link");
    if (href) link.href = href;
    link.hidden = !href;

    const needs = { console: creds.password !== null || creds.console_url !== null,
      key: creds.access_key_id !== null };
    for (const el of document.querySelectorAll("[data-needs]")) el.hidden = !needs[el.dataset.needs];

    const csvOk = csvSafe();
    $("download_csv").disabled = !csvOk;
    $("csv_unsafe").hidden = csvOk;

    $("intro").hidden = true;
    $("credentials").hidden = false;
    setStatus("ok", "Revealed. This link is now used up: save the values below before you leave "
      + "this page.");
    $("credentials_heading").focus();
  }

  // The console's CSV layout has no quoting, and `aws configure import` splits each row on every
  // comma: a comma, a double quote or a control character in any value would shift or split
  // the columns. The wizard refuses them; a value that holds one anyway gets no file.
  const CSV_BREAKING = /[,"\u0000-\u001f\u007f-\u009f]/;

  function csvSafe() {
    return CSV_COLUMNS.every((name) => !CSV_BREAKING.test(creds[name] ?? ""));
  }

  function toCsv() {
    const row = CSV_COLUMNS.map((name) => creds[name] ?? "").join(",");
    return `${CSV_HEADER}\n${row}\n`;
  }

  function downloadCsv() {
    if (!creds || !csvSafe()) return;
    // IAM user names allow [\w+=,.@-]; keep the filename safe on every OS anyway.
    const base = (creds.user_name || "aws").replace(/[^\w+=.@-]/g, "_");
    const url = URL.createObjectURL(new Blob([toCsv()], { type: "text/csv" }));
    const a = document.createElement("a");
    a.href = url;
    a.download = `${base}_credentials.csv`;
    a.rel = "noopener";
    document.body.append(a);
    a.click();
    a.remove();
    // Revoking synchronously can cancel the download in some browsers.
    setTimeout(() => URL.revokeObjectURL(url), 1000);
  }

  function flash(button, text) {
    const original = button.dataset.label || button.textContent;
    button.dataset.label = original;
    button.textContent = text;
    clearTimeout(Number(button.dataset.timer));
    button.dataset.timer = String(setTimeout(() => { button.textContent = original; }, 2000));
  }

  async function copy(button) {
    const input = $(button.dataset.copy);
    try {
      if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard API");
      await navigator.clipboard.writeText(input.value);
      flash(button, "Copied");
    } catch {
      // Without the clipboard API (plain http, old browser, denied permission) the user
      // can still copy by hand once the text is selected.
      input.focus();
      input.select();
      input.setSelectionRange(0, input.value.length);
      flash(button, "Selected");
      setStatus("info", "Copy is not available here: the text is selected, press Ctrl+C (⌘C on a Mac).");
    }
  }

  // Returns true when trying again may help (nothing was consumed, or we cannot tell).
  async function attempt() {
    let response;
    try {
      response = await fetch(location.pathname, {
        method: "POST",
        headers: { "X-Requested-With": "reveal" },
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch {
      setStatus("error", "Could not reach the server. Check your connection and try again.");
      return true;
    }

    if (response.status === 410) {
      setStatus("error", "This link has already been used, was replaced by a newer one, or has "
        + "expired, so nothing was shown. What to do next: look in your direct messages with the "
        + "bot in Slack for a newer link; if there is none, ask an approver to re-issue your "
        + "credentials. If you did not open this link yourself, tell your approvers at once: "
        + "someone else may have the credentials.");
      return false;
    }
    if (response.status === 429) {
      setStatus("warning", "Too many attempts; wait a minute and try again.");
      return true;
    }
    if (!response.ok) {
      setStatus("error", `The server could not answer (HTTP ${response.status}). Nothing was `
        + "revealed; try again in a minute.");
      return true;
    }

    // From here on the server has handed out its only copy, so a retry cannot help.
    let answer;
    try {
      answer = parseAnswer(await response.json());
    } catch {
      setStatus("error", "The server sent an unreadable answer. Ask in Slack for a new link.");
      return false;
    }
    let plain;
    try {
      plain = await decrypt(answer);
    } catch {
      setStatus("error", "The link's key does not match (was the link cut or altered?). "
        + "Nothing could be shown and this link is now used up; ask in Slack for a new link.");
      return false;
    }
    let data;
    try {
      data = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plain));
    } catch {
      setStatus("error", "The credentials could not be read. Ask in Slack for a new link.");
      return false;
    }
    key = null;
    // Keep the key out of history, bookmarks and anything copied from the address bar.
    history.replaceState(null, "", location.pathname);
    show(data && typeof data === "object" ? data : {});
    return false;
  }

  async function reveal() {
    if (busy || finished || !key) return;
    busy = true;
    revealBtn.disabled = true;
    setStatus("info", "Fetching and decrypting…");
    const retry = await attempt();
    busy = false;
    finished = !retry;
    revealBtn.disabled = finished;
    revealBtn.hidden = finished;
  }

  function checkLink() {
    if (finished || busy) return;
    const problem = readKey();
    if (problem) {
      setStatus("error", `This link is incomplete: ${problem}`);
    } else {
      setStatus("info");
    }
    revealBtn.disabled = Boolean(problem);
  }

  checkLink();
  // Fixing the fragment in the address bar does not reload the page.
  window.addEventListener("hashchange", checkLink);
  revealBtn.addEventListener("click", (event) => {
    // Only a real click: scripted or synthetic clicks from scanners are ignored.
    if (event.isTrusted) reveal();
  });
  for (const button of document.querySelectorAll("button.copy")) {
    button.addEventListener("click", () => copy(button));
  }
  $("download_csv").addEventListener("click", downloadCsv);
})();
