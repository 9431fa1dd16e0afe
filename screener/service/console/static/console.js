// The console's only script: keyboard shortcuts, drag and drop, and uploads that show
// their progress and keep the form (and its files) when the server refuses it.
"use strict";

// Words the page gives in its own language (data-msg-* on <body>).
function message(name, values = {}) {
  const text = document.body.dataset[name] || "";
  return text.replace(/\{(\w+)\}/g, (_, key) => String(values[key] ?? ""));
}

// A shortcut key decides irreversibly, so it takes two presses: the first arms its form
// (outlined, and said aloud through the live hint), the same key again submits it; any
// other key, Esc included, disarms it.
let armed = null;
function disarm() {
  if (armed) armed.classList.remove("armed");
  armed = null;
}
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) return;
  const form = document.querySelector(`form[data-key="${CSS.escape(event.key)}"]`);
  if (form && form === armed) {
    event.preventDefault();
    disarm();
    form.requestSubmit();
    return;
  }
  disarm();
  if (form) {
    event.preventDefault();
    armed = form;
    form.classList.add("armed");
    const hint = document.getElementById("key-hint");
    if (hint) hint.textContent = message("msgPressAgain", { key: event.key });
  }
});

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement)) return;
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) {
    event.preventDefault();
    return;
  }
  for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = true;
  if (form.hasAttribute("data-xhr")) {
    event.preventDefault();
    if (tooLarge(form)) {
      for (const button of form.querySelectorAll("button[type=submit]")) button.disabled = false;
      showError(form, message("msgTooLarge"));
      return;
    }
    send(form);
  }
});

window.addEventListener("pageshow", () => {
  for (const button of document.querySelectorAll("button[type=submit]")) button.disabled = false;
});

// The files alone already over the service's body limit: say so before uploading them.
function tooLarge(form) {
  const limit = Number(document.body.dataset.maxUpload || 0);
  let total = 0;
  for (const input of form.querySelectorAll("input[type=file]")) for (const f of input.files) total += f.size;
  return limit > 0 && total > limit;
}

function showError(form, text) {
  const error = form.querySelector("#form-error") || document.getElementById("form-error");
  if (error) { error.textContent = text; error.hidden = false; error.scrollIntoView({ block: "nearest" }); }
  else window.alert(text);
}

// The words of a refusal: the console page's own message, or the service's JSON error
// (the body limit answers before the console does), or the status.
function refusal(request) {
  if (request.status === 413) return message("msgTooLarge");
  const page = new DOMParser().parseFromString(request.responseText, "text/html");
  const found = page.getElementById("form-error");
  if (found && found.textContent.trim()) return found.textContent.trim();
  try {
    const body = JSON.parse(request.responseText);
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return message("msgRefused", { status: request.status });
}

function send(form) {
  const progress = form.querySelector("[data-progress]");
  const bar = progress && progress.querySelector("progress");
  const text = progress && progress.querySelector("[data-progress-text]");
  const error = form.querySelector("#form-error") || document.getElementById("form-error");
  const request = new XMLHttpRequest();
  const done = () => { for (const b of form.querySelectorAll("button[type=submit]")) b.disabled = false; };
  if (progress) progress.hidden = false;
  if (error) error.hidden = true;
  request.upload.addEventListener("progress", (e) => {
    if (!bar || !e.lengthComputable) return;
    bar.value = Math.round((100 * e.loaded) / e.total);
    if (e.loaded >= e.total && text) text.textContent = message("msgWorking");
  });
  request.addEventListener("load", () => {
    if (request.status >= 200 && request.status < 300) {
      if (request.responseURL !== new URL(form.action, window.location.href).href) {
        window.location.assign(request.responseURL); // followed a redirect: load it
      } else {
        document.open(); // a page answered the post itself (a comparison): show it
        document.write(request.responseText);
        document.close();
      }
      return;
    }
    if (progress) progress.hidden = true;
    done();
    showError(form, refusal(request));
  });
  request.addEventListener("error", () => {
    if (progress) progress.hidden = true;
    done();
    showError(form, message("msgUnreachable"));
  });
  request.open(form.method || "POST", form.action);
  request.send(new FormData(form));
}

for (const zone of document.querySelectorAll("[data-dropzone]")) {
  const input = zone.querySelector("input[type=file]");
  const list = zone.querySelector("[data-chosen]");
  const show = () => {
    list.replaceChildren();
    for (const file of input.files) {
      const item = document.createElement("li");
      if (file.type.startsWith("image/")) {
        const frame = document.createElement("div");
        frame.className = "frame checker";
        const img = document.createElement("img");
        img.src = URL.createObjectURL(file);
        img.alt = file.name;
        frame.append(img);
        item.append(frame);
      }
      item.append(document.createTextNode(file.name));
      list.append(item);
    }
  };
  input.addEventListener("change", show);
  zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const files = new DataTransfer();
    if (input.multiple) for (const f of input.files) files.items.add(f);
    for (const f of e.dataTransfer.files) {
      if (!input.multiple && files.files.length) break;
      files.items.add(f);
    }
    input.files = files.files;
    show();
  });
}
