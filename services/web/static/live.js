// The live page: on every (re)connection of the event stream, re-fetch each session's snapshot
// (so nothing missed while disconnected is lost), then apply events on top of it.
// The elements built here mirror templates/macros.html. The stream carries only the sessions
// the signed-in person may see; once they are signed out (401, or a `signed_out` event), the page
// goes to the login page, which brings them back here afterwards.
"use strict";

(() => {
  const page = document.querySelector("[data-live-page]");
  if (!page) return;

  const panels = new Map(
    [...page.querySelectorAll(".session-panel")].map((panel) => [panel.dataset.sessionId, panel]),
  );
  const indicator = document.getElementById("live-status");
  let loading = 0; // snapshots on their way
  let replay = []; // marks received meanwhile: a snapshot may predate them, so they are applied again
  let retry = null; // one pending retry at most, however many resyncs failed

  function signedOut() {
    const here = window.location.pathname + window.location.search;
    window.location.assign(here === "/" ? "/login" : `/login?next=${encodeURIComponent(here)}`);
  }

  function setIndicator(state, text) {
    document.body.dataset.live = state;
    indicator.textContent = text;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  const TALLY = ["present", "late", "absent", "excused", "not_seen"];
  const SEEN = new Set(["present", "late"]);

  function studentRow(student) {
    const row = element("li", "");
    row.dataset.studentId = student.student_id;
    row.dataset.expected = student.expected === false ? "false" : "true";
    const flag = element("span", "flag", "check");
    flag.title = "Named on thin evidence: please check";
    row.append(element("span", "name", student.student_name), element("span", "status"), flag);
    updateRow(row, student);
    return row;
  }

  function updateRow(row, mark) {
    const check = Boolean(mark.check) && SEEN.has(mark.status);
    row.className = `student ${mark.status}${check ? " check" : ""}`;
    row.querySelector(".status").textContent = mark.label;
    row.querySelector(".flag").hidden = !check;
  }

  // The counts are the roster's: recounted from its lines, so they never drift from what is shown.
  function recount(panel) {
    const counts = Object.fromEntries(TALLY.map((status) => [status, 0]));
    let expected = 0;
    for (const row of panel.querySelectorAll('.roster .student[data-expected="true"]')) {
      expected += 1;
      const status = TALLY.find((name) => row.classList.contains(name));
      if (status) counts[status] += 1;
    }
    for (const status of TALLY) panel.querySelector(`.${status}-count`).textContent = counts[status];
    panel.querySelector(".expected-count").textContent = expected;
  }

  function feedItem(entry) {
    const item = element("li", `feed-item ${entry.known ? "known" : "unknown"}`);
    item.dataset.entryId = entry.entry_id;
    item.append(
      element("span", "time", entry.time),
      element("span", "who", entry.name),
      element("span", "count", entry.count > 1 ? `×${entry.count}` : ""),
      element("span", "cam", entry.camera_id),
    );
    return item;
  }

  function render(panel, state) {
    panel.querySelector(".roster").replaceChildren(...state.students.map(studentRow));
    panel.querySelector(".feed").replaceChildren(...state.recent.map(feedItem));
    recount(panel);
  }

  async function loadSnapshot(panel) {
    const response = await fetch(`/sessions/${panel.dataset.sessionId}/state.json`, { cache: "no-store" });
    if (response.status === 401) signedOut();
    if (!response.ok) throw new Error(`snapshot: HTTP ${response.status}`);
    render(panel, await response.json());
  }

  async function resync() {
    loading += 1;
    try {
      await Promise.all([...panels.values()].map(loadSnapshot));
    } catch (error) {
      // Keep what is shown; the next reconnection or resync tries again.
      console.warn("could not refresh the live page:", error);
      retry ??= setTimeout(() => {
        retry = null;
        resync();
      }, 5000);
    } finally {
      loading -= 1;
      if (!loading) {
        const marks = replay;
        replay = [];
        marks.forEach(applyMark);
      }
    }
  }

  function applyMark(mark) {
    const panel = panels.get(String(mark.session_id));
    if (!panel) return;
    if (loading) replay.push(mark);
    const row = panel.querySelector(`.student[data-student-id="${mark.student_id}"]`);
    if (!row) {
      resync(); // not on the roster shown: the snapshot knows better
      return;
    }
    const wasNotSeen = row.classList.contains("not_seen");
    updateRow(row, mark);
    recount(panel);
    if (wasNotSeen && SEEN.has(mark.status)) {
      row.classList.add("fresh");
      setTimeout(() => row.classList.remove("fresh"), 4000);
    }
  }

  function applyRecognition(entry) {
    for (const panel of panels.values()) {
      if (panel.dataset.cameraId !== entry.camera_id) continue;
      const feed = panel.querySelector(".feed");
      feed.querySelector(`[data-entry-id="${entry.entry_id}"]`)?.remove();
      feed.prepend(feedItem(entry));
      while (feed.children.length > Number(feed.dataset.size)) feed.lastElementChild.remove();
    }
  }

  // The front page shows the current session of each camera: when that set changes, reload.
  async function followCurrent() {
    if (!("followCurrent" in page.dataset)) return;
    try {
      const response = await fetch("/sessions/current.json", { cache: "no-store" });
      if (response.status === 401) signedOut();
      if (!response.ok) return;
      const { session_ids: ids } = await response.json();
      const shown = [...panels.keys()].map(Number).sort((a, b) => a - b);
      if (ids.join() !== shown.join()) window.location.reload();
    } catch (error) {
      console.warn("could not check the current sessions:", error);
    }
  }

  // A page of given sessions follows those; the front page, the person's current sessions.
  function streamUrl() {
    if ("followCurrent" in page.dataset) return "/events";
    const ids = [...panels.keys()].map((id) => `session=${encodeURIComponent(id)}`);
    return ids.length ? `/events?${ids.join("&")}` : "/events";
  }

  // A refused stream may mean a signed-out person: the snapshot's answer says which.
  async function checkSignedIn() {
    try {
      const response = await fetch("/sessions/current.json", { cache: "no-store" });
      if (response.status === 401) signedOut();
    } catch (error) {
      console.warn("could not reach the dashboard:", error);
    }
  }

  function connect() {
    const source = new EventSource(streamUrl());
    source.addEventListener("open", () => {
      resync();
      followCurrent();
    });
    source.addEventListener("error", () => {
      setIndicator("offline", "Reconnecting…");
      // The browser retries by itself, except after a refusal (e.g. 503): then we do.
      if (source.readyState === EventSource.CLOSED) {
        checkSignedIn();
        setTimeout(connect, 5000);
      }
    });
    source.addEventListener("signed_out", () => {
      source.close();
      signedOut();
    });
    source.addEventListener("broker", (event) => {
      const broker = JSON.parse(event.data);
      if (broker.connected) setIndicator("live", "Live");
      else setIndicator("degraded", "Live updates paused: RabbitMQ unreachable");
    });
    source.addEventListener("attendance", (event) => applyMark(JSON.parse(event.data)));
    source.addEventListener("recognition", (event) => applyRecognition(JSON.parse(event.data)));
    source.addEventListener("resync", () => resync());
  }

  // The camera preview: the next picture is asked for once the last one has arrived, at most
  // every data-refresh-ms, and only while the page is visible (a hidden tab costs nothing).
  function followPreview(figure) {
    const img = figure.querySelector("img");
    const caption = figure.querySelector(".preview-state");
    const interval = Number(figure.dataset.refreshMs);
    const waiting = caption.textContent;
    let asked = 0;
    let pending = false; // a picture on its way
    let timer = null;

    function ask() {
      timer = null;
      if (document.visibilityState !== "visible" || pending) return;
      pending = true;
      asked += 1;
      img.src = `${figure.dataset.src}?n=${asked}`; // a new URL each time; the answer is no-store
    }
    function later(ms) {
      if (timer === null) timer = setTimeout(ask, ms);
    }
    img.addEventListener("load", () => {
      pending = false;
      img.hidden = false;
      figure.dataset.state = "showing";
      caption.textContent = "";
      later(interval);
    });
    img.addEventListener("error", () => {
      // No recent picture (the camera or its worker is idle), or not allowed: ask less often.
      pending = false;
      img.hidden = true;
      figure.dataset.state = "waiting";
      caption.textContent = waiting;
      later(Math.max(interval * 4, 2000));
    });
    document.addEventListener("visibilitychange", () => {
      if (document.visibilityState === "visible") later(0);
    });
    later(0);
  }

  setIndicator("connecting", "Connecting…");
  page.querySelectorAll(".preview[data-src]").forEach(followPreview);
  connect();
  setInterval(followCurrent, 60000);
})();
