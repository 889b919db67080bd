// segue's playlist page: search to add songs, live recommendations, export in the MPD playlist shape.
// Plain DOM, no build step; every piece of API data goes through textContent (never innerHTML).
"use strict";

const RECS = 20;
const STORAGE_KEY = "segue.playlist.v1";
const state = { tracks: [], title: "", pid: null, recs: [] };
const $ = (id) => document.getElementById(id);

async function api(path, options = {}) {
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new Error("the segue server cannot be reached");
  }
  let body = null;
  try { body = await response.json(); } catch (err) { /* not JSON: reported below */ }
  if (!response.ok) {
    throw new Error((body && body.error && body.error.message) || `HTTP ${response.status}`);
  }
  return body;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "text") node.textContent = value;
    else if (key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  node.append(...children.filter((c) => c != null));
  return node;
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => { clearTimeout(timer); timer = setTimeout(() => fn(...args), ms); };
}

function byLine(track) {
  return [track.artist, track.album].filter(Boolean).join(" · ");
}

// ---- persistence -----------------------------------------------------------------------------
function save() {
  try { localStorage.setItem(STORAGE_KEY, JSON.stringify({ tracks: state.tracks, title: state.title, pid: state.pid })); }
  catch (err) { /* private mode: the playlist just isn't kept */ }
}

function restore() {
  try {
    const saved = JSON.parse(localStorage.getItem(STORAGE_KEY) || "null");
    if (saved && Array.isArray(saved.tracks)) {
      state.tracks = saved.tracks.filter((t) => t && typeof t.uri === "string");
      state.title = typeof saved.title === "string" ? saved.title : "";
      state.pid = Number.isInteger(saved.pid) ? saved.pid : null;
    }
  } catch (err) { /* ignore a damaged entry */ }
}

// ---- the playlist --------------------------------------------------------------------------------
function addTrack(track, focusRec = null) {
  if (state.tracks.some((t) => t.uri === track.uri)) return false;
  const { why, score, ...plain } = track;
  state.tracks.push(plain);
  changed(focusRec);
  return true;
}

function moveTrack(index, delta) {
  const to = index + delta;
  if (to < 0 || to >= state.tracks.length) return;
  const [track] = state.tracks.splice(index, 1);
  state.tracks.splice(to, 0, track);
  changed();
  const buttons = $("playlist").children[to].querySelectorAll("button");
  (delta < 0 ? buttons[0] : buttons[1]).focus();
}

function removeTrack(index) {
  state.tracks.splice(index, 1);
  changed();
  const items = $("playlist").children;
  if (items.length) items[Math.min(index, items.length - 1)].querySelector("button.remove").focus();
  else $("search").focus();
}

function renderPlaylist() {
  const list = $("playlist");
  list.replaceChildren(...state.tracks.map((track, i) => {
    const label = `${track.name || track.uri}`;
    return el("li", {},
      el("span", { className: "pos", text: String(i + 1) }),
      el("div", { className: "what" },
        el("div", { className: "name", text: label }),
        el("div", { className: "by", text: byLine(track) })),
      el("div", { className: "controls" },
        el("button", { type: "button", text: "↑", disabled: i === 0, "aria-label": `Move ${label} up`,
                       onclick: () => moveTrack(i, -1) }),
        el("button", { type: "button", text: "↓", disabled: i === state.tracks.length - 1,
                       "aria-label": `Move ${label} down`, onclick: () => moveTrack(i, 1) }),
        el("button", { type: "button", className: "remove", text: "✕", "aria-label": `Remove ${label}`,
                       onclick: () => removeTrack(i) })));
  }));
  $("playlist-empty").hidden = state.tracks.length > 0;
  $("export").disabled = state.tracks.length === 0;
}

// focusRec: after adding a recommendation, focus the one that takes its place (keyboard flow)
function changed(focusRec = null) {
  save();
  renderPlaylist();
  refreshRecs(focusRec);
}

// ---- recommendations -----------------------------------------------------------------------------
let recsRequest = 0;

async function refreshRecs(focusIndex = null) {
  const status = $("recs-status");
  const list = $("recs");
  const ticket = ++recsRequest;
  if (!state.tracks.length && !state.title.trim()) {
    state.recs = [];
    list.replaceChildren();
    status.className = "empty";
    status.textContent = "Add a song or type a title, and recommendations appear here.";
    return;
  }
  list.setAttribute("aria-busy", "true");
  status.className = "muted";
  status.textContent = "Finding songs…";
  try {
    const body = await api("/v1/recommend", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ tracks: state.tracks.map((t) => t.uri), title: state.title.trim() || null,
                             k: RECS, explain: true }),
    });
    if (ticket !== recsRequest) return; // a newer request is on its way
    state.recs = body.tracks;
    renderRecs(body);
    if (focusIndex != null) {
      const buttons = list.querySelectorAll("button.add");
      (buttons[Math.min(focusIndex, buttons.length - 1)] || $("recs-heading")).focus();
    }
  } catch (err) {
    if (ticket !== recsRequest) return;
    state.recs = [];
    list.replaceChildren();
    status.className = "error";
    status.setAttribute("role", "alert");
    status.textContent = `Could not get recommendations: ${err.message}`;
  } finally {
    if (ticket === recsRequest) list.removeAttribute("aria-busy");
  }
}

function whyText(why) {
  if (!why) return null;
  const seed = `“${why.seed_name || why.seed}”`;
  if (why.reason === "same_album") return `same album as ${seed}`;
  if (why.reason === "same_artist") return `same artist as ${seed}`;
  return `with ${seed} in ${why.playlists.toLocaleString()} playlist${why.playlists === 1 ? "" : "s"}`;
}

function renderRecs(body) {
  const status = $("recs-status");
  status.setAttribute("role", "status");
  const unknown = body.unknown_tracks.length ? ` (${body.unknown_tracks.length} song(s) unknown to this model)` : "";
  if (!body.tracks.length) {
    status.className = "empty";
    status.textContent = `No recommendations for this playlist${unknown}.`;
    $("recs").replaceChildren();
    return;
  }
  status.className = "muted";
  status.textContent = `${body.tracks.length} songs from ${body.model}${unknown}. Add one to get the next.`;
  const top = Math.max(...body.tracks.map((t) => t.score), 1e-9);
  $("recs").replaceChildren(...body.tracks.map((track, i) => {
    const label = `${track.name || track.uri}${track.artist ? " by " + track.artist : ""}`;
    const meter = el("meter", { min: 0, max: 1, value: Math.max(0, track.score / top) });
    meter.setAttribute("aria-hidden", "true");
    return el("li", {},
      el("button", { type: "button", className: "add", text: "+", "aria-label": `Add ${label}`,
                     onclick: () => addTrack(track, i) }),
      el("div", { className: "what" },
        el("div", { className: "name", text: track.name || track.uri }),
        el("div", { className: "by", text: byLine(track) }),
        track.why ? el("div", { className: "why", text: whyText(track.why) }) : null),
      el("div", { className: "score", title: "model score" },
        el("span", { text: track.score.toFixed(3) }), meter));
  }));
}

// ---- search ---------------------------------------------------------------------------------------
const search = { results: [], active: -1, ticket: 0 };

function closeResults() {
  $("search-results").hidden = true;
  $("search").setAttribute("aria-expanded", "false");
  $("search").removeAttribute("aria-activedescendant");
  search.active = -1;
}

function renderResults() {
  const list = $("search-results");
  const added = new Set(state.tracks.map((t) => t.uri));
  list.replaceChildren(...search.results.map((track, i) => {
    const item = el("li", { id: `result-${i}`, role: "option", "aria-selected": String(i === search.active),
                            className: added.has(track.uri) ? "added" : "" },
      el("div", { className: "name", text: track.name || track.uri }),
      el("div", { className: "by muted", text: byLine(track) + (added.has(track.uri) ? " · in playlist" : "") }));
    item.addEventListener("mousedown", (event) => { event.preventDefault(); pickResult(i); });
    return item;
  }));
  list.hidden = search.results.length === 0;
  $("search").setAttribute("aria-expanded", String(!list.hidden));
  if (search.active >= 0) {
    $("search").setAttribute("aria-activedescendant", `result-${search.active}`);
    list.children[search.active].scrollIntoView({ block: "nearest" });
  } else {
    $("search").removeAttribute("aria-activedescendant");
  }
}

async function runSearch() {
  const query = $("search").value.trim();
  const ticket = ++search.ticket;
  const status = $("search-status");
  if (!query) { search.results = []; closeResults(); status.textContent = ""; return; }
  try {
    const body = await api(`/v1/tracks/search?q=${encodeURIComponent(query)}&limit=10`);
    if (ticket !== search.ticket) return;
    search.results = body.tracks;
    search.active = body.tracks.length ? 0 : -1;
    status.className = "muted";
    status.textContent = body.tracks.length ? `${body.tracks.length} matches` : `No songs match “${query}”.`;
    renderResults();
  } catch (err) {
    if (ticket !== search.ticket) return;
    search.results = [];
    closeResults();
    status.className = "error";
    status.textContent = `Search failed: ${err.message}`;
  }
}

function pickResult(i) {
  const track = search.results[i];
  if (!track) return;
  const added = addTrack(track);
  $("search-status").className = "muted";
  $("search-status").textContent = added ? `Added “${track.name}”.` : `“${track.name}” is already in the playlist.`;
  $("search").value = "";
  search.results = [];
  closeResults();
  $("search").focus();
}

function onSearchKey(event) {
  const n = search.results.length;
  if (event.key === "ArrowDown" && n) { search.active = (search.active + 1) % n; renderResults(); }
  else if (event.key === "ArrowUp" && n) { search.active = (search.active - 1 + n) % n; renderResults(); }
  else if (event.key === "Enter") { if (n) pickResult(Math.max(0, search.active)); }
  else if (event.key === "Escape") { closeResults(); }
  else return;
  event.preventDefault();
}

// ---- start from a pid, export, clear ---------------------------------------------------------------
async function loadPid(event) {
  event.preventDefault();
  const raw = $("pid").value.trim();
  const status = $("pid-status");
  if (!/^[0-9]+$/.test(raw)) {
    status.className = "error";
    status.textContent = "A pid is a whole number, e.g. 123.";
    return;
  }
  try {
    const playlist = await api(`/v1/playlists/${raw}`);
    state.tracks = playlist.tracks;
    state.title = playlist.name || "";
    state.pid = playlist.pid;
    $("title").value = state.title;
    status.className = "muted";
    status.textContent = `Loaded playlist ${playlist.pid}: “${playlist.name || "untitled"}”, ${playlist.tracks.length} songs.`;
    changed();
  } catch (err) {
    status.className = "error";
    status.textContent = `Could not load pid ${raw}: ${err.message}`;
  }
}

// The playlist as one playlist object of the Million Playlist Dataset's slice files.
function exportPlaylist() {
  const distinct = (key) => new Set(state.tracks.map((t) => t[key] || t.uri)).size;
  return {
    name: $("title").value.trim() || "segue playlist", // the box, not state: its update waits for typing to pause
    collaborative: "false",
    pid: state.pid ?? 0,
    modified_at: Math.floor(Date.now() / 1000),
    num_tracks: state.tracks.length,
    num_albums: distinct("album_uri"),
    num_followers: 0,
    num_edits: 1,
    duration_ms: state.tracks.reduce((sum, t) => sum + (t.duration_ms || 0), 0),
    num_artists: distinct("artist_uri"),
    tracks: state.tracks.map((t, pos) => ({
      pos, artist_name: t.artist, track_uri: t.uri, artist_uri: t.artist_uri, track_name: t.name,
      album_uri: t.album_uri, duration_ms: t.duration_ms, album_name: t.album,
    })),
  };
}

function download() {
  const playlist = exportPlaylist();
  const blob = new Blob([JSON.stringify(playlist, null, 2)], { type: "application/json" });
  const link = el("a", { href: URL.createObjectURL(blob),
                         download: `${playlist.name.replace(/[^\w.-]+/g, "_").slice(0, 60) || "playlist"}.json` });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

function clearAll() {
  state.tracks = [];
  state.title = "";
  state.pid = null;
  $("title").value = "";
  $("pid-status").textContent = "";
  changed();
  $("search").focus();
}

// ---- start ------------------------------------------------------------------------------------------
async function showModel() {
  try {
    const info = await api("/v1/model");
    $("model-info").textContent = `model ${info.model} · ${info.store.tracks.toLocaleString()} songs`;
  } catch (err) {
    $("model-info").className = "error";
    $("model-info").textContent = `The server is not answering: ${err.message}`;
  }
}

function start() {
  restore();
  $("title").value = state.title;
  $("search").addEventListener("input", debounce(runSearch, 120));
  $("search").addEventListener("keydown", onSearchKey);
  $("search").addEventListener("blur", () => setTimeout(closeResults, 150));
  $("title").addEventListener("input", debounce(() => { state.title = $("title").value; save(); refreshRecs(); }, 300));
  $("from-pid").addEventListener("submit", loadPid);
  $("export").addEventListener("click", download);
  $("clear").addEventListener("click", clearAll);
  renderPlaylist();
  refreshRecs();
  showModel();
}

window.segue = { exportPlaylist, state };
document.addEventListener("DOMContentLoaded", start);
