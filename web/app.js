// The page: three GANs on shadergan's wasm build, trained step by step while Start is on, with
// live curves and pictures: the lectures' 1-D game, the ring of eight 2-D Gaussians with the
// count of modes the generator covers, and a DCGAN on the bundled digits (configs/dcgan-mnist.toml
// at batch 16, on 2,000 images) whose model.safetensors downloads. A checkpoint (the page's or a
// CLI run's) opens to sample from. ?game=toy|mixture|dcgan picks one, ?autostart starts it.
// Every failure becomes a message on the page.
import init, { WebGan, WebSampler, WebToy, WebMixture, mode_coverage } from "./pkg/shadergan_web.js";

const $ = (id) => document.getElementById(id);
const status = $("status");
const toggle = $("toggle");
const speed = $("speed");
const figures = $("figures");
const chart = $("losses").getContext("2d");
const view = $("view").getContext("2d");
const picker = $("game");
const downloadButton = $("download");

const COLOURS = ["#4c8bf5", "#f5a14c", "#3a3", "#d33", "#8a2be2"];
let history = []; // one array of series values per step
let running = false;
let game = null; // { spec, handle }
let loop = Promise.resolve(); // the training loop in flight

function fail(message) {
  status.textContent = message;
  status.className = "error";
  toggle.disabled = true;
  running = false;
  console.log("shadergan page: " + message);
}

// Nothing may fail silently: an uncaught error or rejection becomes the page's message too.
window.addEventListener("error", (e) => fail(`shadergan stopped: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => fail(`shadergan stopped: ${e.reason?.message ?? e.reason}`));

// One call into the GAN at a time: a download waits for the step in flight, never meets it.
let queue = Promise.resolve();
function exclusive(task) {
  const result = queue.then(task);
  queue = result.catch(() => {});
  return result;
}

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

function showPng(img, png) {
  const url = URL.createObjectURL(new Blob([png], { type: "image/png" }));
  img.onload = () => URL.revokeObjectURL(url);
  img.src = url;
  img.hidden = false;
}

function clear(ctx) {
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, ctx.canvas.width, ctx.canvas.height);
}

// Curves of every series over the steps, on one scale that holds them all.
function drawCurves() {
  const { width, height } = chart.canvas;
  clear(chart);
  if (history.length < 2) return;
  const all = history.flat();
  const lo = Math.min(0, ...all);
  const hi = Math.max(1, ...all);
  history[0].forEach((_, k) => {
    chart.strokeStyle = COLOURS[k];
    chart.beginPath();
    history.forEach((h, i) => {
      const x = (i / (history.length - 1)) * (width - 10) + 5;
      const y = height - 5 - ((h[k] - lo) / (hi - lo)) * (height - 10);
      i === 0 ? chart.moveTo(x, y) : chart.lineTo(x, y);
    });
    chart.stroke();
  });
}

// Data density (black), G's density (green) and D(x) (blue) over x in [-4, 6].
function drawToy([theta, w, b]) {
  const { width, height } = view.canvas;
  clear(view);
  const toX = (x) => ((x + 4) / 10) * width;
  const toY = (y) => height - 10 - y * (height - 20);
  const curve = (colour, f) => {
    view.strokeStyle = colour;
    view.lineWidth = 2;
    view.beginPath();
    for (let i = 0; i <= 200; i++) {
      const x = -4 + (10 * i) / 200;
      i === 0 ? view.moveTo(toX(x), toY(f(x))) : view.lineTo(toX(x), toY(f(x)));
    }
    view.stroke();
  };
  const density = (mean) => (x) => (2 * Math.exp(-0.5 * (x - mean) ** 2)) / Math.sqrt(2 * Math.PI);
  curve("#000", density(0));
  curve("#2ca02c", density(theta));
  curve("#1f77b4", (x) => 1 / (1 + Math.exp(-(w * x + b))));
  figures.textContent = `θ = ${theta.toFixed(3)}, D(x) = sigmoid(${w.toFixed(3)} x + ${b.toFixed(3)})`;
}

// G's points (orange) against the ring's mode centres (black), over [-3, 3]².
function drawPoints(points) {
  const { width, height } = view.canvas;
  clear(view);
  const toX = (x) => ((x + 3) / 6) * width;
  const toY = (y) => height - ((y + 3) / 6) * height;
  view.fillStyle = "rgba(245, 130, 30, 0.5)";
  for (let i = 0; i < points.length; i += 2) view.fillRect(toX(points[i]) - 1, toY(points[i + 1]) - 1, 2, 2);
  const modes = WebMixture.modes();
  view.strokeStyle = "#000";
  for (let i = 0; i < modes.length; i += 2) {
    view.beginPath();
    view.arc(toX(modes[i]), toY(modes[i + 1]), 6, 0, 2 * Math.PI);
    view.stroke();
  }
}

let modesCovered = 0;
const GAMES = {
  toy: {
    title: "The 1-D game: x = z + θ against a logistic D, as in the lecture notes",
    series: ["θ", "D's w", "D's b"],
    open: () => WebToy.open(1),
    step: (handle) => handle.step(),
    draw: async (handle, last) => drawToy(last),
  },
  mixture: {
    title: "Eight Gaussians on a ring, G and D two small MLPs: watch how many modes G covers",
    series: ["D loss", "G loss", "D(x)", "D(G(z))", "modes covered / 8"],
    open: () => WebMixture.open(1),
    step: async (handle) => [...(await handle.step()), modesCovered / 8],
    draw: async (handle) => {
      const points = await handle.samples(1000);
      drawPoints(points);
      const [covered, share] = mode_coverage(points);
      modesCovered = covered;
      figures.textContent = `modes covered: ${covered} of 8; ${(100 * share).toFixed(0)}% of samples within 3σ of a mode`;
    },
  },
  dcgan: {
    title: "DCGAN-32 on 2,000 of the bundled MNIST digits, batch 16, width 32",
    series: ["D loss", "G loss", "D(x)", "D(G(z))"],
    open: async () => {
      const config = (await (await fetchOk("../configs/dcgan-mnist.toml")).text())
        .replace("batch_size = 64", "batch_size = 16")
        .replace("channels = 1", "channels = 1\nlimit = 2000");
      const images = new Uint8Array(await (await fetchOk("../assets/mnist-train-images-idx3-ubyte.gz")).arrayBuffer());
      return WebGan.open(config, images);
    },
    step: (handle) => exclusive(() => handle.step()),
    draw: async (handle) => showPng($("samples"), await exclusive(() => handle.samples_png())),
    download: true,
  },
};

async function train() {
  let since = performance.now();
  let stepsSince = 0;
  while (running) {
    const last = Array.from(await game.spec.step(game.handle));
    history.push(last);
    stepsSince += 1;
    const step = history.length;
    if (step % 10 === 0 || step === 1) {
      drawCurves();
      await game.spec.draw(game.handle, last);
      const now = performance.now();
      speed.textContent = `step ${step}, ${((1000 * stepsSince) / (now - since)).toFixed(2)} steps/s`;
      document.title = `shadergan: step ${step}`;
      since = now;
      stepsSince = 0;
    }
  }
}

async function openGame(name) {
  running = false;
  toggle.textContent = "Start";
  toggle.disabled = true;
  downloadButton.disabled = true;
  await loop;
  game?.handle.free();
  game = null;
  history = [];
  modesCovered = 0;
  const spec = GAMES[name];
  $("title").textContent = spec.title;
  $("legend").innerHTML = spec.series.map((s, k) => `<span style="color:${COLOURS[k]}">${s}</span>`).join("");
  $("samples").hidden = name !== "dcgan";
  $("view").hidden = name === "dcgan";
  figures.textContent = "";
  speed.textContent = "";
  clear(chart);
  clear(view);
  status.className = "";
  status.textContent = "Opening the GPU…";
  const handle = await spec.open();
  game = { spec, handle };
  const adapter = handle.adapter();
  const kind = adapter.software ? "the browser's software fallback, not a GPU" : "a GPU";
  status.textContent = `Ready on ${adapter.name}: ${kind}.`;
  adapter.free();
  await spec.draw(handle, name === "toy" ? [3, -1, 1.5] : null);
  toggle.disabled = false;
  downloadButton.disabled = !spec.download;
}

async function download() {
  const bytes = await exclusive(() => game.handle.model_file());
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  link.download = "model.safetensors";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// Opening a checkpoint. Its failures are the file's, shown beside it; training goes on.
const openStatus = $("open-status");
const resample = $("resample");
let sampler = null;
let seed = 0;
// A wasm32 heap holds at most 4 GiB; the file is copied into it.
const LARGEST_FILE = 1 << 30;

async function openCheckpoint(file) {
  openStatus.className = "";
  if (file.size > LARGEST_FILE) {
    throw new Error(`${file.name} is ${(file.size / 2 ** 20).toFixed(0)} MiB: a page opens checkpoints up to 1024 MiB`);
  }
  openStatus.textContent = `Opening ${file.name}…`;
  sampler?.free();
  sampler = null;
  resample.disabled = true;
  $("opened-samples").hidden = true;
  $("opened-walks").hidden = true;
  const opened = await WebSampler.open(new Uint8Array(await file.arrayBuffer()), file.name);
  sampler = opened;
  seed = 0;
  await drawOpened();
  openStatus.textContent = `${file.name}: ${sampler.describe()}.`;
  resample.disabled = false;
}

async function drawOpened() {
  showPng($("opened-samples"), await sampler.samples_png(seed));
  showPng($("opened-walks"), await sampler.interpolation_png(seed));
}

function openFailed(e) {
  openStatus.textContent = `${e.message ?? e}`;
  openStatus.className = "error";
  console.log("shadergan page: " + openStatus.textContent);
}

function setUpOpening() {
  const input = $("open");
  input.onchange = () => input.files[0] && openCheckpoint(input.files[0]).catch(openFailed);
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    const file = e.dataTransfer.files[0];
    if (file) openCheckpoint(file).catch(openFailed);
  });
  resample.onclick = () => {
    seed += 1;
    resample.disabled = true;
    drawOpened().catch(openFailed).finally(() => (resample.disabled = false));
  };
}

async function main() {
  if (!navigator.gpu) {
    fail("This browser has no WebGPU (navigator.gpu is missing): use a recent Chrome, Edge or Firefox, from https or localhost.");
    return;
  }
  await init();
  setUpOpening();
  const params = new URLSearchParams(location.search);
  picker.value = GAMES[params.get("game")] ? params.get("game") : "dcgan";
  toggle.onclick = () => {
    running = !running;
    toggle.textContent = running ? "Pause" : "Start";
    if (running) loop = train().catch((e) => fail(`Training stopped: ${e.message ?? e}`));
  };
  downloadButton.onclick = () => download().catch((e) => fail(`The download failed: ${e.message ?? e}`));
  picker.onchange = () => openGame(picker.value).catch((e) => fail(`${picker.value} could not start: ${e.message ?? e}`));
  await openGame(picker.value);
  if (params.has("autostart")) toggle.click();
}

main().catch((e) => fail(`shadergan could not start: ${e.message ?? e}`));
