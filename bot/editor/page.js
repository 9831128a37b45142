"use strict";
// The region editor. Every mark is kept in the image's own pixels (the canvas is the original's size and
// only its display is scaled), so the mask is drawn at the original's size however small the screen is.
(() => {
  const byId = (id) => document.getElementById(id);
  const canvas = byId("paint");
  const image = byId("original");
  const size = byId("size");
  const sizeValue = byId("size-value");
  const undo = byId("undo");
  const clear = byId("clear");
  const submit = byId("submit");
  const prompt = byId("prompt");
  const status = byId("status");
  const W = canvas.width;
  const H = canvas.height;
  const ctx = canvas.getContext("2d");
  const COLOUR = "#ff2d8a";

  const marks = []; // {tool: "brush", size, points} or {tool: "lasso", points}; points in image pixels
  let current = null; // the mark being drawn
  let pointer = null; // the pointer drawing it: a second finger meanwhile is ignored
  let done = false; // sent, or refused for good: the link can send nothing more

  byId("stage").style.setProperty("--ratio", String(W / H));

  const say = (text) => { status.textContent = text; };
  const tool = () => document.querySelector('input[name="tool"]:checked').value;
  // The brush is a share of the image's width, so a stroke covers the same part of it on any screen.
  const brushPixels = () => (Number(size.value) / 100) * W;

  function refresh() {
    sizeValue.textContent = `${size.value}%`;
    undo.disabled = clear.disabled = done || marks.length === 0;
    submit.disabled = done;
    for (const input of document.querySelectorAll("input, textarea")) input.disabled = done;
  }

  function at(event) {
    const box = canvas.getBoundingClientRect();
    return [((event.clientX - box.left) * W) / box.width, ((event.clientY - box.top) * H) / box.height];
  }

  function path(c, points, close) {
    c.beginPath();
    c.moveTo(points[0][0], points[0][1]);
    for (let i = 1; i < points.length; i += 1) c.lineTo(points[i][0], points[i][1]);
    if (close) c.closePath();
  }

  // Draws a finished mark in c's colour.
  function trace(c, mark) {
    const points = mark.points;
    if (mark.tool === "lasso") {
      if (points.length < 3) return;
      path(c, points, true);
      c.fill();
    } else if (points.length === 1) {
      c.beginPath();
      c.arc(points[0][0], points[0][1], mark.size / 2, 0, 2 * Math.PI);
      c.fill();
    } else {
      c.lineWidth = mark.size;
      c.lineCap = "round";
      c.lineJoin = "round";
      path(c, points, false);
      c.stroke();
    }
  }

  function paintAll(c, colour) {
    c.fillStyle = colour;
    c.strokeStyle = colour;
    for (const mark of marks) trace(c, mark);
  }

  // A lasso being drawn shows as its outline, about 2 screen pixels wide.
  function outline(mark) {
    if (mark.points.length < 2) return;
    ctx.strokeStyle = COLOUR;
    ctx.lineWidth = (2 * W) / canvas.getBoundingClientRect().width;
    ctx.lineCap = "round";
    ctx.lineJoin = "round";
    path(ctx, mark.points, false);
    ctx.stroke();
  }

  function redraw() {
    ctx.clearRect(0, 0, W, H);
    paintAll(ctx, COLOUR);
    if (current) {
      if (current.tool === "lasso") outline(current);
      else { ctx.fillStyle = ctx.strokeStyle = COLOUR; trace(ctx, current); }
    }
    refresh();
  }

  // Only the new segment is drawn while moving: redrawing every mark per move is slow on a large image.
  function extend(point) {
    const points = current.points;
    const last = points[points.length - 1];
    if (Math.hypot(point[0] - last[0], point[1] - last[1]) < 0.5) return;
    points.push(point);
    if (current.tool === "lasso") {
      outline({ points: [last, point] });
      return;
    }
    ctx.strokeStyle = COLOUR;
    ctx.lineWidth = current.size;
    ctx.lineCap = "round";
    path(ctx, [last, point], false);
    ctx.stroke();
  }

  canvas.addEventListener("pointerdown", (event) => {
    if (done || pointer !== null || (event.pointerType === "mouse" && event.button !== 0)) return;
    event.preventDefault();
    pointer = event.pointerId;
    try { canvas.setPointerCapture(event.pointerId); } catch { /* already gone: the up event ends it */ }
    const start = at(event);
    current = tool() === "lasso" ? { tool: "lasso", points: [start] }
      : { tool: "brush", size: brushPixels(), points: [start] };
    redraw();
  });

  canvas.addEventListener("pointermove", (event) => {
    if (event.pointerId !== pointer || !current) return;
    event.preventDefault();
    // Coalesced events: the points a fast stroke passed between two frames.
    const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    for (const each of events.length ? events : [event]) extend(at(each));
  });

  function finish(event, keep) {
    if (event.pointerId !== pointer) return;
    pointer = null;
    if (keep && current && (current.tool === "brush" || current.points.length >= 3)) marks.push(current);
    current = null;
    redraw();
  }
  canvas.addEventListener("pointerup", (event) => {
    if (event.pointerId === pointer && current) extend(at(event));
    finish(event, true);
  });
  // The browser took the gesture over (a system swipe): the unfinished mark is dropped.
  canvas.addEventListener("pointercancel", (event) => finish(event, false));

  undo.addEventListener("click", () => { marks.pop(); redraw(); });
  clear.addEventListener("click", () => { marks.length = 0; redraw(); });
  size.addEventListener("input", refresh);
  document.addEventListener("keydown", (event) => {
    if ((event.ctrlKey || event.metaKey) && event.key === "z" && event.target !== prompt && !done) {
      event.preventDefault();
      marks.pop();
      redraw();
    }
  });

  // The mask Midjourney expects: the original's size, black background, white = redraw.
  function maskURL() {
    const mask = document.createElement("canvas");
    mask.width = W;
    mask.height = H;
    const c = mask.getContext("2d");
    c.fillStyle = "#000";
    c.fillRect(0, 0, W, H);
    paintAll(c, "#fff");
    return mask.toDataURL("image/png");
  }

  submit.addEventListener("click", async () => {
    if (done) return;
    if (marks.length === 0) { say("Paint or lasso the area to redraw first."); return; }
    submit.disabled = true;
    say("Sending…");
    let answer;
    try {
      const response = await fetch(window.location.pathname, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ prompt: prompt.value, mask: maskURL() }),
        credentials: "omit",
        cache: "no-store",
      });
      answer = await response.json();
    } catch {
      say("The bot could not be reached: nothing was sent. Check the connection and send it again.");
      submit.disabled = false;
      return;
    }
    say(answer.message);
    done = answer.ok || answer.final;
    document.body.classList.toggle("done", done);
    refresh();
  });

  function broken() { say("The image could not be loaded. Reload the page, or press Vary (Region) again."); }
  image.addEventListener("error", broken);
  if (image.complete && image.naturalWidth === 0) broken();
  refresh();
})();
