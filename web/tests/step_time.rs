//! The DCGAN step's time in the browser, for BENCHMARKS.md (not a test: `cargo test` skips it;
//! `bash web/test.sh --test step_time` runs it). configs/dcgan-mnist.toml at the batch
//! `shadergan bench --batch 16` uses, timed after two warm-up steps (which compile the kernels),
//! each step awaited as the page awaits it.

use shadergan_web::Session;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

#[wasm_bindgen_test]
async fn dcgan_step_time() {
    let config = include_str!("../../configs/dcgan-mnist.toml")
        .replace("batch_size = 64", "batch_size = 16")
        .replace("channels = 1", "channels = 1\nlimit = 1000");
    let images = include_bytes!("../../assets/mnist-train-images-idx3-ubyte.gz");
    let mut session = Session::open(&config, images).await.expect("dcgan-mnist opens");
    let now = wasm_bindgen_futures::js_sys::Date::now;
    let started = now();
    for _ in 0..2 {
        session.step().await.expect("a warm-up step");
    }
    let warm_up = now() - started;
    let mut times = Vec::new();
    for _ in 0..5 {
        let t = now();
        session.step().await.expect("a step");
        times.push(now() - t);
    }
    times.sort_by(f64::total_cmp);
    console_log!(
        "adapter: {}; batch 16, image 32, width 32; first two steps {:.0} ms; step median {:.0} ms, min {:.0}, max {:.0} over 5",
        shadergan::gpu::describe(session.gpu.info()),
        warm_up,
        times[2],
        times[0],
        times[4]
    );
}
