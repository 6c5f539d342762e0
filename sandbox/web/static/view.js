// The view's only script (the page's policy allows no other): it changes nothing on the server.
// - [data-poll]: refresh the element with the fragment at that URL of the view every two seconds.
// - [data-watch]: poll that JSON URL of the view; reload the page when its "version" differs from
//   data-version (what the page shows changed: a mail's state or its links, an alarm, an incident).
// - form[data-confirm]: ask before submitting.
"use strict";
const EVERY = 2000;
const own = (url) => typeof url === "string" && url.startsWith("/") && !url.startsWith("//");

document.querySelectorAll("[data-poll]").forEach((element) => {
  const url = element.getAttribute("data-poll");
  if (!own(url)) return;
  setInterval(async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) element.innerHTML = await response.text(); // the view's own escaped HTML
    } catch (e) {
      // the sandbox stopped or is busy: try again at the next tick
    }
  }, EVERY);
});

document.querySelectorAll("[data-watch]").forEach((element) => {
  const url = element.getAttribute("data-watch");
  const version = element.getAttribute("data-version");
  if (!own(url)) return;
  const timer = setInterval(async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (!response.ok) return;
      const mail = await response.json();
      if (mail.version && mail.version !== version) {
        clearInterval(timer);
        window.location.reload();
      }
    } catch (e) {
      // as above
    }
  }, EVERY);
});

document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
  });
});
