//! Pictures a person looks at: sample grids, loss curves (PNG), and the run's HTML report.

mod plot;
pub mod report;

pub use plot::{plot_curves, Curve};

use std::path::Path;

use image::{GrayImage, RgbImage};

use crate::checkpoint::{write_atomic, CheckpointError};

/// Images [n, channels, size, size] in [-1, 1] tiled `columns` wide with a 2-pixel gap.
pub fn grid(images: &[f32], channels: usize, size: usize, columns: usize) -> RgbImage {
    let n = images.len() / (channels * size * size);
    let columns = columns.max(1).min(n.max(1));
    let rows = n.div_ceil(columns);
    let gap = 2;
    let (w, h) = ((size + gap) * columns + gap, (size + gap) * rows + gap);
    let mut out = RgbImage::from_pixel(w as u32, h as u32, image::Rgb([40, 40, 40]));
    let plane = size * size;
    for i in 0..n {
        let (gx, gy) = (gap + (i % columns) * (size + gap), gap + (i / columns) * (size + gap));
        let img = &images[i * channels * plane..(i + 1) * channels * plane];
        for y in 0..size {
            for x in 0..size {
                let px = |c: usize| ((img[c * plane + y * size + x].clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
                let rgb = if channels == 3 { [px(0), px(1), px(2)] } else { [px(0); 3] };
                out.put_pixel((gx + x) as u32, (gy + y) as u32, image::Rgb(rgb));
            }
        }
    }
    out
}

/// `grid` as PNG bytes, each pixel shown `scale` times (for a page, which gets bytes, not files).
pub fn grid_png(images: &[f32], channels: usize, size: usize, columns: usize, scale: u32) -> Vec<u8> {
    png_bytes(&image::DynamicImage::ImageRgb8(grid(images, channels, size, columns)), scale)
}

/// One image in [-1, 1] as an 8-bit picture (gray or RGB).
pub fn to_image(img: &[f32], channels: usize, size: usize) -> image::DynamicImage {
    let plane = size * size;
    let px = |v: f32| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
    if channels == 3 {
        let buf: Vec<u8> = (0..plane).flat_map(|i| [px(img[i]), px(img[plane + i]), px(img[2 * plane + i])]).collect();
        image::DynamicImage::ImageRgb8(RgbImage::from_raw(size as u32, size as u32, buf).expect("size"))
    } else {
        image::DynamicImage::ImageLuma8(
            GrayImage::from_raw(size as u32, size as u32, img[..plane].iter().map(|&v| px(v)).collect()).expect("size"),
        )
    }
}

/// PNG bytes of an image, enlarged `scale` times with nearest-neighbour sampling.
pub fn png_bytes(img: &image::DynamicImage, scale: u32) -> Vec<u8> {
    let img = if scale > 1 {
        img.resize(img.width() * scale, img.height() * scale, image::imageops::FilterType::Nearest)
    } else {
        img.clone()
    };
    let mut bytes = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).expect("PNG encoding to memory");
    bytes
}

/// Writes a PNG atomically.
pub fn save_png(path: &Path, img: &image::DynamicImage, scale: u32) -> Result<(), CheckpointError> {
    write_atomic(path, &png_bytes(img, scale))
}
