// The page: opens a DCGAN (configs/dcgan-mnist.toml at batch 16, on 2,000 of the bundled
// digits) through shadergan's wasm build, trains it step by step while Start is on, and draws
// the losses and the fixed noise's samples; downloads what it learned as model.safetensors, and
// opens such a file (its own or a CLI run's) to sample from. Every failure becomes a message on
// the page.
import init, { WebGan, WebSampler } from "./pkg/shadergan_web.js";

const status = document.getElementById("status");
const toggle = document.getElementById("toggle");
const speed = document.getElementById("speed");
const samples = document.getElementById("samples");
const chart = document.getElementById("losses").getContext("2d");

const history = []; // [d_loss, g_loss, d_real, d_fake] per step
let running = false;

// One call into the GAN at a time: a download waits for the step in flight, never meets it.
let queue = Promise.resolve();
function exclusive(task) {
  const result = queue.then(task);
  queue = result.catch(() => {});
  return result;
}

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

async function fetchOk(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response;
}

function drawLosses() {
  const { width, height } = chart.canvas;
  chart.fillStyle = "#fff";
  chart.fillRect(0, 0, width, height);
  if (history.length < 2) return;
  const top = Math.max(2, ...history.map((h) => Math.max(h[0], h[1])));
  const colours = ["#4c8bf5", "#f5a14c", "#3a3", "#d33"];
  colours.forEach((colour, k) => {
    chart.strokeStyle = colour;
    chart.beginPath();
    history.forEach((h, i) => {
      const x = (i / (history.length - 1)) * (width - 10) + 5;
      const y = height - 5 - (h[k] / (k < 2 ? top : 1)) * (height - 10);
      i === 0 ? chart.moveTo(x, y) : chart.lineTo(x, y);
    });
    chart.stroke();
  });
}

async function showSamples(gan) {
  showPng(samples, await exclusive(() => gan.samples_png()));
}

async function train(gan) {
  let since = performance.now();
  let stepsSince = 0;
  while (running) {
    const figures = await exclusive(() => gan.step());
    history.push(Array.from(figures));
    stepsSince += 1;
    const step = history.length;
    if (step % 10 === 0 || step === 1) {
      drawLosses();
      await showSamples(gan);
      const now = performance.now();
      speed.textContent = `step ${step}, ${((1000 * stepsSince) / (now - since)).toFixed(2)} steps/s`;
      document.title = `shadergan: step ${step}`;
      since = now;
      stepsSince = 0;
    }
  }
}

function showPng(img, png) {
  const url = URL.createObjectURL(new Blob([png], { type: "image/png" }));
  img.onload = () => URL.revokeObjectURL(url);
  img.src = url;
  img.hidden = false;
}

async function download(gan) {
  const bytes = await exclusive(() => gan.model_file());
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  link.download = "model.safetensors";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// Opening a checkpoint. Its failures are the file's, shown beside it; training goes on.
const openStatus = document.getElementById("open-status");
const resample = document.getElementById("resample");
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
  const opened = await WebSampler.open(new Uint8Array(await file.arrayBuffer()), file.name);
  sampler = opened;
  seed = 0;
  await drawOpened();
  openStatus.textContent = `${file.name}: ${sampler.describe()}.`;
  resample.disabled = false;
}

async function drawOpened() {
  showPng(document.getElementById("opened-samples"), await sampler.samples_png(seed));
  showPng(document.getElementById("opened-walks"), await sampler.interpolation_png(seed));
}

function openFailed(e) {
  openStatus.textContent = `${e.message ?? e}`;
  openStatus.className = "error";
  console.log("shadergan page: " + openStatus.textContent);
}

function setUpOpening() {
  const input = document.getElementById("open");
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
  status.textContent = "Fetching the digits and opening the GPU…";
  const config = (await (await fetchOk("../configs/dcgan-mnist.toml")).text())
    .replace("batch_size = 64", "batch_size = 16")
    .replace("channels = 1", "channels = 1\nlimit = 2000");
  const images = new Uint8Array(await (await fetchOk("../assets/mnist-train-images-idx3-ubyte.gz")).arrayBuffer());
  const gan = await WebGan.open(config, images);
  const kind = gan.is_software() ? "the browser's software fallback, not a GPU" : "a GPU";
  status.textContent = `Ready on ${gan.adapter()}: ${kind}. DCGAN-32, batch 16, width 32, 2,000 digits.`;
  await showSamples(gan);
  toggle.disabled = false;
  const downloadButton = document.getElementById("download");
  downloadButton.disabled = false;
  downloadButton.onclick = () => download(gan).catch((e) => fail(`The download failed: ${e.message ?? e}`));
  toggle.onclick = () => {
    running = !running;
    toggle.textContent = running ? "Pause" : "Start";
    if (running) train(gan).catch((e) => fail(`Training stopped: ${e.message ?? e}`));
  };
  if (new URLSearchParams(location.search).has("autostart")) toggle.click();
}

main().catch((e) => fail(`shadergan could not start: ${e.message ?? e}`));
