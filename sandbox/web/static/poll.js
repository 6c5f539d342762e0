// Refreshes an element whose data-poll names a URL of the view (the mails' rows) every two seconds.
// The fragment is the view's own escaped HTML, from its own origin.
"use strict";
document.querySelectorAll("[data-poll]").forEach((element) => {
  const url = element.getAttribute("data-poll");
  if (!url.startsWith("/")) return;
  setInterval(async () => {
    try {
      const response = await fetch(url, { credentials: "same-origin", cache: "no-store" });
      if (response.ok) element.innerHTML = await response.text();
    } catch (e) {
      // the sandbox stopped or is busy: try again at the next tick
    }
  }, 2000);
});
