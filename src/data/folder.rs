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
            class_names.push(sub.file_name().unwrap().to_string_lossy().into_owned());
            for f in list(sub)?.into_iter().filter(|p| is_image(p)) {
                files.push((f, Some(class as u32)));
            }
        }
    }
    if files.is_empty() {
        return Err(DataError::invalid(dir, "contains no PNG or JPEG images"));
    }
    let mut pixels = Vec::with_capacity(files.len() * channels * size * size);
    let mut labels = Vec::new();
    let mut first: Option<(usize, &PathBuf)> = None;
    let mut decoded = Vec::with_capacity(files.len());
    for (path, label) in &files {
        let img = image::open(path).map_err(|e| DataError::invalid(path, format!("cannot decode image: {e}")))?;
        // Alpha is dropped; gray and colour images mixed in one set are almost always a mistake.
        let colour_channels = if img.color().has_color() { 3 } else { 1 };
        match first {
            None => first = Some((colour_channels, path)),
            Some((c, p)) if c != colour_channels => {
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
        decoded.push((img, *label));
    }
    let emit = |img: &image::DynamicImage, pixels: &mut Vec<f32>| {
        if channels == 1 {
            pixels.extend(to_unit_range(&img.to_luma8(), size as u32));
        } else {
            let rgb = img.to_rgb8();
            for c in 0..3 {
                let plane = image::GrayImage::from_fn(rgb.width(), rgb.height(), |x, y| {
                    image::Luma([rgb.get_pixel(x, y).0[c]])
                });
                pixels.extend(to_unit_range(&plane, size as u32));
            }
        }
    };
    let len = if crops == 0 {
        for (img, label) in &decoded {
            emit(img, &mut pixels);
            labels.extend(label);
        }
        decoded.len()
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
