//! DiffAugment (Zhao et al. 2020): the same random colour, translation and cutout changes
//! applied to real and generated images before D sees them, written in differentiable ops so
//! G's gradient passes through them. Images are in [-1, 1]; every draw is per sample.

use rand::Rng;

use crate::tensor::Tensor;

/// Which augmentations run, from `train.diffaugment` ("color,translation,cutout").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Policy {
    /// Brightness, saturation and contrast.
    pub color: bool,
    /// A shift of up to 1/8 of the image side in each direction, zeros shifted in.
    pub translation: bool,
    /// A square of half the image side set to zero.
    pub cutout: bool,
}

impl Policy {
    /// Parses a comma-separated list; an unknown name is an error naming the accepted ones.
    pub fn parse(text: &str) -> Result<Policy, String> {
        let mut p = Policy::default();
        for word in text.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            match word {
                "color" | "colour" => p.color = true,
                "translation" => p.translation = true,
                "cutout" => p.cutout = true,
                other => return Err(format!("unknown augmentation '{other}' (accepted: color, translation, cutout)")),
            }
        }
        Ok(p)
    }

    /// Whether any augmentation runs.
    pub fn is_on(&self) -> bool {
        self.color || self.translation || self.cutout
    }
}

/// One batch's random draws, so that a test (or a rank) can replay them.
#[derive(Clone, Debug, PartialEq)]
pub struct Draws {
    /// Per sample: brightness, saturation and contrast factors, each uniform in [0, 1).
    pub color: Vec<[f32; 3]>,
    /// Per sample: (rows, columns) shift.
    pub shift: Vec<(i64, i64)>,
    /// Per sample: the cutout square's top-left corner (may lie partly outside).
    pub cutout: Vec<(i64, i64)>,
}

impl Draws {
    /// Draws for `n` images of side `size`.
    pub fn sample(rng: &mut impl Rng, n: usize, size: usize) -> Draws {
        let max_shift = ((size as f64 / 8.0).round() as i64).max(1);
        let half = (size / 2) as i64;
        Draws {
            color: (0..n).map(|_| [rng.random(), rng.random(), rng.random()]).collect(),
            shift: (0..n)
                .map(|_| (rng.random_range(-max_shift..=max_shift), rng.random_range(-max_shift..=max_shift)))
                .collect(),
            cutout: (0..n)
                .map(|_| {
                    let (row, col) = (rng.random_range(0..size as i64), rng.random_range(0..size as i64));
                    (row - half / 2, col - half / 2)
                })
                .collect(),
        }
    }

    /// Leaves each image unchanged with probability 1 - `p` (ADA's augmentation probability),
    /// by giving it the draws that change nothing.
    pub fn with_probability(mut self, p: f32, rng: &mut impl Rng) -> Draws {
        for i in 0..self.color.len() {
            if rng.random::<f32>() >= p {
                self.color[i] = [0.5; 3];
                self.shift[i] = (0, 0);
                self.cutout[i] = (i64::MIN / 4, i64::MIN / 4);
            }
        }
        self
    }

    /// The draws of items `range` (a rank's share of a global batch).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Draws {
        Draws {
            color: self.color[range.clone()].to_vec(),
            shift: self.shift[range.clone()].to_vec(),
            cutout: self.cutout[range].to_vec(),
        }
    }
}

/// `x` [n, C, S, S] augmented by `policy` with `draws`.
pub fn augment(x: &Tensor, policy: Policy, draws: &Draws) -> Tensor {
    let [n, c, h, w] = [x.shape()[0], x.shape()[1], x.shape()[2], x.shape()[3]];
    let gpu = x.gpu();
    let per_sample =
        |f: &dyn Fn(usize) -> f32| Tensor::from_vec(gpu, &[n, 1, 1, 1], &(0..n).map(f).collect::<Vec<_>>());
    let mut y = x.clone();
    if policy.color {
        y = y.add(&per_sample(&|i| draws.color[i][0] - 0.5));
        let m = y.mean(&[1], true);
        y = y.sub(&m).mul(&per_sample(&|i| draws.color[i][1] * 2.0)).add(&m);
        let m = y.mean(&[1, 2, 3], true);
        y = y.sub(&m).mul(&per_sample(&|i| draws.color[i][2] + 0.5)).add(&m);
    }
    if policy.translation {
        let shifted: Vec<Tensor> = (0..n)
            .map(|i| {
                let (dy, dx) = draws.shift[i];
                y.narrow(0, i, 1).window(&[0, 0, dy, dx], &[1, c, h, w])
            })
            .collect();
        y = Tensor::cat(&shifted.iter().collect::<Vec<_>>(), 0);
    }
    if policy.cutout {
        let side = (h / 2) as i64;
        let mut mask = vec![1.0f32; n * h * w];
        for (i, &(top, left)) in draws.cutout.iter().enumerate() {
            for r in top.max(0)..(top + side).min(h as i64) {
                for col in left.max(0)..(left + side).min(w as i64) {
                    mask[i * h * w + r as usize * w + col as usize] = 0.0;
                }
            }
        }
        y = y.mul(&Tensor::from_vec(gpu, &[n, 1, h, w], &mask));
    }
    y
}

/// ADA's adaptive augmentation probability (Karras et al. 2020): r = E[sign(D(x))] over real
/// images, measured over every `interval` D steps; p moves toward more augmentation when r
/// exceeds `target` (D grows too sure of the reals) and back otherwise, by `images / speed_images`
/// per adjustment, within [0, 1].
#[derive(Clone, Debug, PartialEq)]
pub struct Adaptive {
    /// The current probability.
    pub p: f32,
    /// The r_t D is held to (0.6 in the paper).
    pub target: f32,
    /// Images over which p may move from 0 to 1 (the paper: 500,000).
    pub speed_images: f32,
    /// Sum of the signs of D's outputs on reals since the last adjustment.
    pub sign_sum: f64,
    /// How many outputs that sum covers.
    pub count: f64,
}

impl Adaptive {
    /// Adds the sum of the signs of `count` of D's scores on real images to the running r_t.
    pub fn observe(&mut self, sign_sum: f64, count: f64) {
        self.sign_sum += sign_sum;
        self.count += count;
    }

    /// Moves p after `images` real images have been seen since the last adjustment.
    pub fn adjust(&mut self, images: usize) {
        if self.count == 0.0 {
            return;
        }
        let r = self.sign_sum / self.count;
        let step = images as f32 / self.speed_images;
        self.p = (self.p + if r > self.target as f64 { step } else { -step }).clamp(0.0, 1.0);
        (self.sign_sum, self.count) = (0.0, 0.0);
    }
}
