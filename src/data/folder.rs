//! A folder of PNG/JPEG images of any size; sub-folders name classes when there are any.

use std::path::{Path, PathBuf};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{to_unit_range, DataError, Dataset};

fn is_image(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).as_deref(),
        Some("png") | Some("jpg") | Some("jpeg")
    )
}

fn list(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|source| DataError::Io { path: dir.to_path_buf(), source })?;
    let mut out: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    out.sort();
    Ok(out)
}

/// An image file and its class, when it sits in a class sub-folder.
pub type LabelledFile = (PathBuf, Option<u32>);

/// The PNG/JPEG files of an image folder in name order, each with its class (the index of its
/// sub-folder, in name order) when the images sit in class sub-folders, and the class names.
pub fn list_images(dir: &Path) -> Result<(Vec<LabelledFile>, Vec<String>), DataError> {
    if !dir.is_dir() {
        return Err(DataError::invalid(dir, "is not a folder"));
    }
    let entries = list(dir)?;
    let subdirs: Vec<PathBuf> = entries.iter().filter(|p| p.is_dir()).cloned().collect();
    let mut files: Vec<(PathBuf, Option<u32>)> =
        entries.iter().filter(|p| is_image(p)).map(|p| (p.clone(), None)).collect();
    let mut class_names = Vec::new();
    if files.is_empty() && !subdirs.is_empty() {
        for (class, sub) in subdirs.iter().enumerate() {
            class_names.push(sub.file_name().unwrap_or_default().to_string_lossy().into_owned());
            for f in list(sub)?.into_iter().filter(|p| is_image(p)) {
                files.push((f, Some(class as u32)));
            }
        }
    }
    if files.is_empty() {
        return Err(DataError::invalid(dir, "contains no PNG or JPEG images"));
    }
    Ok((files, class_names))
}

/// Loads every image under `dir` (resized and centre-cropped to `size`, with `channels` 1 or 3);
/// images in sub-folders get the sub-folder's index (sorted by name) as label.
pub fn load_folder(dir: &Path, size: usize, channels: usize) -> Result<Dataset, DataError> {
    load_folder_crops(dir, size, channels, 0, 0, 0)
}

/// Like `load_folder`, but with `crops` > 0 the data set is that many random `crop_size`
/// squares (seeded) taken from the images in turn, each resized to `size` (texture domains).
pub fn load_folder_crops(
    dir: &Path,
    size: usize,
    channels: usize,
    crops: usize,
    crop_size: usize,
    seed: u64,
) -> Result<Dataset, DataError> {
    if channels != 1 && channels != 3 {
        return Err(DataError::invalid(dir, format!("channels must be 1 or 3, not {channels}")));
    }
    let (files, class_names) = list_images(dir)?;
    let mut pixels = Vec::with_capacity(if crops == 0 { files.len() } else { crops } * channels * size * size);
    let mut labels = Vec::new();
    let mut first: Option<(usize, &PathBuf)> = None;
    let mut decoded = Vec::new();
    for (path, label) in &files {
        let img = decode_image(path)?;
        // A colour image among gray ones, read as gray, is almost always a mistake; gray images
        // in a colour set (a black-and-white photo, a gray emoji) are simply repeated into RGB.
        let colour_channels = if img.color().has_color() { 3 } else { 1 };
        match first {
            None => first = Some((colour_channels, path)),
            Some((c, p)) if c != colour_channels && channels == 1 => {
                return Err(DataError::invalid(
                    path,
                    format!(
                        "has {colour_channels} colour channel(s) but {} has {c}: images of mixed channels",
                        p.display()
                    ),
                ));
            }
            _ => {}
        }
        if crops == 0 {
            // Converted at once, so only one decoded image is held at a time.
            pixels.extend(planes(&img, size, channels));
            labels.extend(label);
        } else {
            decoded.push((img, *label));
        }
    }
    let emit = |img: &image::DynamicImage, pixels: &mut Vec<f32>| pixels.extend(planes(img, size, channels));
    let len = if crops == 0 {
        files.len()
    } else {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for k in 0..crops {
            let (img, label) = &decoded[k % decoded.len()];
            let side = crop_size.min(img.width() as usize).min(img.height() as usize) as u32;
            let x = rng.random_range(0..=img.width() - side);
            let y = rng.random_range(0..=img.height() - side);
            emit(&img.crop_imm(x, y, side, side), &mut pixels);
            labels.extend(label);
        }
        crops
    };
    Ok(Dataset { pixels, labels: (!class_names.is_empty()).then_some(labels), class_names, len, channels, size })
}

/// Decodes a PNG or JPEG; transparent pixels are composited onto white, as a viewer shows them
/// on a page (dropping alpha would expose whatever colour the transparent pixels happen to hold).
pub fn decode_image(path: &Path) -> Result<image::DynamicImage, DataError> {
    let img = image::open(path).map_err(|e| DataError::invalid(path, format!("cannot decode image: {e}")))?;
    if !img.color().has_alpha() {
        return Ok(img);
    }
    let rgba = img.to_rgba8();
    let over_white = |v: u8, a: u8| ((v as u32 * a as u32 + 255 * (255 - a as u32) + 127) / 255) as u8;
    let flat = image::RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        image::Rgb([over_white(r, a), over_white(g, a), over_white(b, a)])
    });
    Ok(if img.color().has_color() {
        image::DynamicImage::ImageRgb8(flat)
    } else {
        image::DynamicImage::ImageLuma8(image::DynamicImage::ImageRgb8(flat).to_luma8())
    })
}

/// An image as `channels` planes of `size` x `size` values in [-1, 1] (resized, centre-cropped).
pub fn planes(img: &image::DynamicImage, size: usize, channels: usize) -> Vec<f32> {
    if channels == 1 {
        return to_unit_range(&img.to_luma8(), size as u32);
    }
    let rgb = img.to_rgb8();
    let mut out = Vec::with_capacity(3 * size * size);
    for c in 0..3 {
        let plane =
            image::GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| image::Luma([rgb.get_pixel(x, y).0[c]]));
        out.extend(to_unit_range(&plane, size as u32));
    }
    out
}
