//! The IDX format of MNIST and Fashion-MNIST, gzip'd or not.

use std::io::Read;
use std::path::Path;

use super::{to_unit_range, DataError, Dataset};

/// Dimensions and raw u8 payload of an IDX file (ubyte element type only, as image sets use).
pub fn read_idx(path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io { path: path.to_path_buf(), source })?;
    parse_idx(&raw, path)
}

/// `read_idx` of a file's bytes already in memory (a browser's download); `path` names the
/// file in errors.
pub fn parse_idx(raw: &[u8], path: &Path) -> Result<(Vec<usize>, Vec<u8>), DataError> {
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(raw)
            .read_to_end(&mut out)
            .map_err(|e| DataError::invalid(path, format!("corrupt gzip data: {e}")))?;
        out
    } else {
        raw.to_vec()
    };
    if bytes.len() < 4 {
        return Err(DataError::invalid(path, "too short to be an IDX file"));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(DataError::invalid(
            path,
            format!(
                "wrong magic number {:02x}{:02x}{:02x}{:02x} (not an IDX file)",
                bytes[0], bytes[1], bytes[2], bytes[3]
            ),
        ));
    }
    if bytes[2] != 0x08 {
        return Err(DataError::invalid(path, format!("element type 0x{:02x} is not unsigned bytes (0x08)", bytes[2])));
    }
    let rank = bytes[3] as usize;
    if rank == 0 || bytes.len() < 4 + 4 * rank {
        return Err(DataError::invalid(path, "header truncated"));
    }
    let dims: Vec<usize> =
        (0..rank).map(|d| u32::from_be_bytes(bytes[4 + 4 * d..8 + 4 * d].try_into().unwrap()) as usize).collect();
    let Some(expected) = dims.iter().try_fold(1usize, |a, &d| a.checked_mul(d)) else {
        return Err(DataError::invalid(path, format!("dimensions {dims:?} overflow: not an image set")));
    };
    let payload = &bytes[4 + 4 * rank..];
    if payload.len() != expected {
        return Err(DataError::invalid(
            path,
            format!("dimensions {dims:?} need {expected} bytes but the file holds {} (truncated?)", payload.len()),
        ));
    }
    Ok((dims, payload.to_vec()))
}

/// Images from an IDX file of shape [n, rows, cols], resized to `size`.
pub fn load_idx_images(path: &Path, size: usize) -> Result<Dataset, DataError> {
    let (dims, bytes) = read_idx(path)?;
    idx_images(path, &dims, &bytes, size, 0)
}

/// Images from an IDX file's bytes in memory (gzip'd or not), resized to `size`: the first
/// `limit` of them (0: all). `name` labels errors.
pub fn idx_images_from_bytes(raw: &[u8], name: &Path, size: usize, limit: usize) -> Result<Dataset, DataError> {
    let (dims, bytes) = parse_idx(raw, name)?;
    idx_images(name, &dims, &bytes, size, limit)
}

fn idx_images(path: &Path, dims: &[usize], bytes: &[u8], size: usize, limit: usize) -> Result<Dataset, DataError> {
    if dims.len() != 3 {
        return Err(DataError::invalid(path, format!("expected images [n, rows, cols], found dimensions {dims:?}")));
    }
    let (n, rows, cols) = (dims[0], dims[1], dims[2]);
    if n == 0 {
        return Err(DataError::invalid(path, "holds no images"));
    }
    let n = if limit > 0 { n.min(limit) } else { n };
    let mut pixels = Vec::with_capacity(n * size * size);
    for i in 0..n {
        let plane = image::GrayImage::from_raw(
            cols as u32,
            rows as u32,
            bytes[i * rows * cols..(i + 1) * rows * cols].to_vec(),
        )
        .expect("plane size checked above");
        pixels.extend(to_unit_range(&plane, size as u32));
    }
    Ok(Dataset { pixels, labels: None, class_names: vec![], len: n, channels: 1, size })
}

/// Class labels from an IDX label file (gzip'd or not).
pub fn load_idx_labels(path: &Path) -> Result<Vec<u32>, DataError> {
    let (dims, bytes) = read_idx(path)?;
    if dims.len() != 1 {
        return Err(DataError::invalid(path, format!("expected labels [n], found dimensions {dims:?}")));
    }
    Ok(bytes.into_iter().map(u32::from).collect())
}
