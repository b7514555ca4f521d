// Brokkr console: keeps the parts of a page marked `data-live` up to date without a reload.
// Each one long-polls its URL with the ETag of what it shows; the broker answers when the
// content changes (200, new HTML) or after its wait (304). Errors back off.
"use strict";

function follow(element) {
  let etag = element.dataset.etag || "";
  let pause = 1000;
  const poll = async () => {
    try {
      const url = new URL(element.dataset.live, window.location.href);
      url.searchParams.set("wait", "25");
      const response = await fetch(url, {
        headers: { "If-None-Match": etag, "Accept": "text/html" },
        credentials: "same-origin",
        cache: "no-store",
      });
      if (response.status === 200) {
        element.innerHTML = await response.text();
        etag = response.headers.get("ETag") || "";
        element.dataset.etag = etag;
        element.dispatchEvent(new CustomEvent("brokkr:updated", { bubbles: true }));
        pause = 1000;
      } else if (response.status !== 304) {
        throw new Error("status " + response.status);
      }
      setTimeout(poll, 0);
    } catch (_) {
      setTimeout(poll, pause);
      pause = Math.min(pause * 2, 30000);
    }
  };
  poll();
}

document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("[data-live]").forEach(follow);
});
