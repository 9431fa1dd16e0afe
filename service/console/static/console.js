// The console's only script: keyboard shortcuts, drag and drop, and uploads that show
// their progress and keep the form (and its files) when the server refuses it.
"use strict";

document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
  const target = event.target;
  if (target instanceof HTMLElement && target.closest("input, textarea, select, [contenteditable]")) return;
  const form = document.querySelector(`form[data-key="${CSS.escape(event.key)}"]`);
  if (form) {
    event.preventDefault();
    form.requestSubmit();
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
    send(form);
  }
});

window.addEventListener("pageshow", () => {
  for (const button of document.querySelectorAll("button[type=submit]")) button.disabled = false;
});

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
    if (e.loaded >= e.total && text) text.textContent = "Uploaded; working…";
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
    const page = new DOMParser().parseFromString(request.responseText, "text/html");
    const found = page.getElementById("form-error");
    const message = (found && found.textContent.trim()) || `The server refused the form (${request.status}).`;
    if (error) { error.textContent = message; error.hidden = false; error.scrollIntoView({ block: "nearest" }); }
    else window.alert(message);
  });
  request.addEventListener("error", () => {
    if (progress) progress.hidden = true;
    done();
    if (error) { error.textContent = "The server could not be reached; nothing was lost, try again."; error.hidden = false; }
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
