//! ImageNet (ILSVRC-2012) in torchvision's `ImageFolder` layout.
//!
//! A split lives in `<dir>/train/<wnid>/*.JPEG` or `<dir>/val/<wnid>/*.JPEG` (the validation
//! images already sorted into class folders; see `datasets/README.md` for how to sort the
//! official flat validation folder). [`Split::Train`] reads `train/`, [`Split::Test`] reads
//! `val/`. Classes are the sub-folder names in sorted order (label = index), as in
//! `torchvision.datasets.ImageFolder`; images are the `.jpeg`/`.jpg`/`.png` files below each
//! class folder (any depth, any case of the extension), in sorted path order. Other files are
//! ignored.
//!
//! Every image is decoded (JPEG or PNG, detected from the content, not the extension),
//! converted to RGB and preprocessed like torchvision's evaluation transform
//! `Resize(resize)` + `CenterCrop(image_size)`: the shorter side is resized to
//! [`ImageNetOptions::resize`] with a triangle (bilinear, antialiased on downscaling) filter,
//! then the centre `image_size`×`image_size` square is cut out. The result is close to, not
//! bit-identical with, PIL's output. Normalisation happens later, per batch.
//!
//! The whole split is loaded **eagerly** into one in-memory [`ImageSet`] of `u8` pixels:
//! `N · 3 · image_size²` bytes, i.e. 150 528 bytes per image at 224. The 50 000 validation
//! images need about 7.5 GB; the 1.28 M training images (≈ 193 GB) cannot be held, so use
//! [`ImageNetOptions::max_per_class`] for the training split (e.g. 10 per class ≈ 1.5 GB is
//! plenty for threshold calibration). If the buffer cannot be allocated the load fails with
//! [`DatasetError::InvalidOptions`] before decoding anything. Decoding runs on all cores
//! (rayon).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::DatasetError;
use crate::image::ImageSet;
use crate::{DataRoot, Split};

/// Dataset name as in [`crate::DATASET_NAMES`].
pub const NAME: &str = "imagenet";

/// Per-channel mean of the ImageNet training set (RGB, units of `pixel / 255`), as used by
/// torchvision's pretrained models.
pub const MEAN: [f32; 3] = [0.485, 0.456, 0.406];

/// Per-channel standard deviation of the ImageNet training set (RGB, units of `pixel / 255`).
pub const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// File extensions (lower case) that are read as images.
pub const EXTENSIONS: [&str; 3] = ["jpeg", "jpg", "png"];

/// Preprocessing and subset options of the `imagenet` set.
///
/// Defaults: `image_size` 224, `resize` 256, `max_per_class` none (every image).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImageNetOptions {
    /// Side of the square centre crop, in pixels (torchvision `CenterCrop`, default 224).
    pub image_size: usize,
    /// Length the shorter image side is resized to before cropping (torchvision `Resize`,
    /// default 256). Must be at least `image_size`.
    pub resize: usize,
    /// Load at most this many images per class: the first ones in sorted file order.
    /// `None` loads every image (≈ 7.5 GB for the 50 000 validation images at 224).
    pub max_per_class: Option<usize>,
}

impl Default for ImageNetOptions {
    fn default() -> Self {
        ImageNetOptions { image_size: 224, resize: 256, max_per_class: None }
    }
}

impl ImageNetOptions {
    fn validate(&self) -> Result<(), DatasetError> {
        let invalid = |reason: String| DatasetError::InvalidOptions { dataset: NAME.to_string(), reason };
        if self.image_size == 0 {
            return Err(invalid("image_size must be at least 1".into()));
        }
        if self.resize < self.image_size {
            return Err(invalid(format!(
                "resize ({}) must be at least image_size ({}): the centre crop must fit in the resized image",
                self.resize, self.image_size
            )));
        }
        if self.max_per_class == Some(0) {
            return Err(invalid("max_per_class must be at least 1 (or absent for all images)".into()));
        }
        Ok(())
    }
}

/// Folder of `split` inside a dataset directory: `train` or `val`.
pub fn split_folder(split: Split) -> &'static str {
    match split {
        Split::Train => "train",
        Split::Test => "val",
    }
}

/// True when `dir/<train|val>` exists and holds at least one class sub-folder.
pub fn has_split(dir: &Path, split: Split) -> bool {
    std::fs::read_dir(dir.join(split_folder(split)))
        .map(|entries| entries.flatten().any(|e| is_visible_dir(&e.path())))
        .unwrap_or(false)
}

/// Human-readable description of what a directory must hold for `split`.
pub(crate) fn expected_files(split: Split) -> String {
    format!("`{}/<wnid>/*.JPEG` class folders", split_folder(split))
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

fn is_visible_dir(path: &Path) -> bool {
    !is_hidden(path) && path.is_dir()
}

fn is_image_file(path: &Path) -> bool {
    !is_hidden(path)
        && path
            .extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| EXTENSIONS.iter().any(|x| e.eq_ignore_ascii_case(x)))
        && path.is_file()
}

/// Sorted entries of a directory.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>, DatasetError> {
    let io = |source| DatasetError::Io { path: dir.to_path_buf(), source };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        out.push(entry.map_err(io)?.path());
    }
    out.sort();
    Ok(out)
}

/// Appends the image files below `dir` (recursively, sorted) to `out`, stopping at `limit`.
fn collect_images(dir: &Path, out: &mut Vec<PathBuf>, limit: usize) -> Result<(), DatasetError> {
    for path in sorted_entries(dir)? {
        if out.len() >= limit {
            break;
        }
        if is_visible_dir(&path) {
            collect_images(&path, out, limit)?;
        } else if is_image_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The contents of one split folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FolderIndex {
    /// Class names: the sorted class sub-folder names (label = index).
    pub classes: Vec<String>,
    /// Image files with their labels, grouped by class, each class in sorted path order.
    pub files: Vec<(PathBuf, u16)>,
}

/// The classes (sorted sub-folder names) of a split folder and its image files with labels,
/// at most `max_per_class` per class.
///
/// A class folder without any image file is an error, as in torchvision.
pub fn scan(split_dir: &Path, max_per_class: Option<usize>) -> Result<FolderIndex, DatasetError> {
    let class_dirs: Vec<PathBuf> = sorted_entries(split_dir)?.into_iter().filter(|p| is_visible_dir(p)).collect();
    if class_dirs.is_empty() {
        return Err(DatasetError::ImageFolder { path: split_dir.to_path_buf(), reason: "no class sub-folders".into() });
    }
    if class_dirs.len() > usize::from(u16::MAX) {
        return Err(DatasetError::ImageFolder {
            path: split_dir.to_path_buf(),
            reason: format!("{} class folders; at most {} are supported", class_dirs.len(), u16::MAX),
        });
    }
    let limit = max_per_class.unwrap_or(usize::MAX);
    let mut classes = Vec::with_capacity(class_dirs.len());
    let mut files = Vec::new();
    for (label, dir) in class_dirs.iter().enumerate() {
        let mut images = Vec::new();
        collect_images(dir, &mut images, limit)?;
        if images.is_empty() {
            return Err(DatasetError::ImageFolder {
                path: dir.clone(),
                reason: format!("class folder holds no image file ({})", EXTENSIONS.join(", ")),
            });
        }
        classes.push(dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default());
        files.extend(images.into_iter().map(|p| (p, label as u16)));
    }
    Ok(FolderIndex { classes, files })
}

/// Output `(width, height)` of torchvision's `Resize(size)` for a `w`×`h` image: the shorter
/// side becomes `size`, the longer one `floor(size · long / short)`.
pub fn resized_dims(w: u32, h: u32, size: u32) -> (u32, u32) {
    let (short, long) = if w <= h { (w, h) } else { (h, w) };
    let new_long = (u64::from(size) * u64::from(long) / u64::from(short.max(1))) as u32;
    if w <= h { (size, new_long) } else { (new_long, size) }
}

/// Offset of a centred crop of `crop` pixels in a side of `side` pixels, as torchvision's
/// `CenterCrop` computes it: `round((side − crop) / 2)` with Python's round-half-to-even.
pub fn center_offset(side: u32, crop: u32) -> u32 {
    let d = side.saturating_sub(crop);
    let q = d / 2;
    if d % 2 == 1 && q % 2 == 1 { q + 1 } else { q }
}

/// Resizes (shorter side to `resize`) and centre-crops (`crop`×`crop`) a decoded image.
/// Returns planar RGB pixels, `3 · crop · crop` values (CHW).
///
/// Requires `resize >= crop` (checked by the loader's option validation).
pub fn preprocess(img: &::image::DynamicImage, resize: u32, crop: u32) -> Vec<u8> {
    use ::image::imageops::{FilterType, resize as resize_image};
    let rgb = img.to_rgb8();
    let (w, h) = rgb.dimensions();
    let (nw, nh) = resized_dims(w, h, resize);
    let rgb = if (nw, nh) == (w, h) { rgb } else { resize_image(&rgb, nw, nh, FilterType::Triangle) };
    let (top, left) = (center_offset(nh, crop), center_offset(nw, crop));
    let c = crop as usize;
    let mut out = vec![0u8; 3 * c * c];
    for y in 0..c {
        let sy = top + y as u32;
        if sy >= nh {
            break;
        }
        for x in 0..c {
            let sx = left + x as u32;
            if sx >= nw {
                break;
            }
            let p = rgb.get_pixel(sx, sy).0;
            for (ch, v) in p.iter().enumerate() {
                out[ch * c * c + y * c + x] = *v;
            }
        }
    }
    out
}

/// Reads and decodes one JPEG or PNG file (format detected from its content).
pub fn decode(path: &Path) -> Result<::image::DynamicImage, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io { path: path.to_path_buf(), source })?;
    let bad = |reason: String| DatasetError::ImageFolder { path: path.to_path_buf(), reason };
    ::image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(format!("cannot read image: {e}")))?
        .decode()
        .map_err(|e| bad(format!("cannot decode image (JPEG or PNG expected): {e}")))
}

/// Loads `split` from a dataset directory holding `train/` and/or `val/` class folders.
pub fn load_dir(dir: &Path, split: Split, opts: &ImageNetOptions) -> Result<ImageSet, DatasetError> {
    opts.validate()?;
    let FolderIndex { classes, files } = scan(&dir.join(split_folder(split)), opts.max_per_class)?;
    let side = opts.image_size;
    let per = 3 * side * side;
    let total = files.len().checked_mul(per);
    let mut pixels: Vec<u8> = Vec::new();
    let reserved = total.is_some_and(|t| pixels.try_reserve_exact(t).is_ok());
    if !reserved {
        return Err(DatasetError::InvalidOptions {
            dataset: NAME.to_string(),
            reason: format!(
                "cannot allocate {:.1} GB for {} images of 3x{side}x{side} pixels (the set is held in memory); \
                 set max_per_class to load fewer images",
                files.len() as f64 * per as f64 / 1e9,
                files.len()
            ),
        });
    }
    pixels.resize(files.len() * per, 0);
    let (resize, crop) = (opts.resize as u32, side as u32);
    pixels.par_chunks_mut(per).zip(files.par_iter()).try_for_each(|(out, (path, _))| {
        let img = decode(path)?;
        out.copy_from_slice(&preprocess(&img, resize, crop));
        Ok::<(), DatasetError>(())
    })?;
    Ok(ImageSet {
        name: NAME.to_string(),
        pixels,
        labels: files.iter().map(|(_, l)| *l).collect(),
        shape: [3, side, side],
        num_classes: classes.len(),
        class_names: classes,
    })
}

/// Loads `split` from the first of `root.candidates("imagenet")` that holds it
/// (`train/` for [`Split::Train`], `val/` for [`Split::Test`]); [`DatasetError::Missing`] when
/// none does.
pub fn load(root: &DataRoot, split: Split, opts: &ImageNetOptions) -> Result<ImageSet, DatasetError> {
    opts.validate()?;
    load_dir(&crate::locate_images(NAME, split, root)?, split, opts)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ::image::{ImageFormat, Rgb, RgbImage};

    /// A `w`×`h` image of colour `fill` with a `border`-pixel frame of colour `frame`.
    fn framed(w: u32, h: u32, border: u32, fill: [u8; 3], frame: [u8; 3]) -> RgbImage {
        RgbImage::from_fn(w, h, |x, y| {
            let edge = x < border || y < border || x >= w - border || y >= h - border;
            Rgb(if edge { frame } else { fill })
        })
    }

    fn save(img: &RgbImage, path: &Path, format: ImageFormat) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        img.save_with_format(path, format).unwrap();
    }

    /// `<tmp>/imagenet/{train,val}` with three classes: `n01` green JPEGs (3), `n02` one blue
    /// PNG (plus ignored non-image files), `n03` red framed PNGs (2).
    pub(crate) fn tree() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("imagenet");
        for split in ["train", "val"] {
            let s = d.join(split);
            // "n02" sorts after "n01" and before "n03" whatever the creation order.
            save(&framed(40, 30, 3, [250, 0, 0], [0, 0, 0]), &s.join("n03/a.png"), ImageFormat::Png);
            save(&framed(30, 40, 3, [250, 0, 0], [0, 0, 0]), &s.join("n03/b.PNG"), ImageFormat::Png);
            save(&framed(32, 32, 0, [0, 200, 0], [0, 0, 0]), &s.join("n01/x.JPEG"), ImageFormat::Jpeg);
            save(&framed(48, 32, 0, [0, 200, 0], [0, 0, 0]), &s.join("n01/y.jpg"), ImageFormat::Jpeg);
            save(&framed(24, 24, 0, [0, 200, 0], [0, 0, 0]), &s.join("n01/sub/z.jpeg"), ImageFormat::Jpeg);
            save(&framed(24, 24, 0, [0, 0, 220], [0, 0, 0]), &s.join("n02/p.png"), ImageFormat::Png);
            std::fs::write(s.join("n02/readme.txt"), "not an image").unwrap();
            std::fs::write(s.join("n02/.hidden.png"), "ignored").unwrap();
        }
        tmp
    }

    fn root(tmp: &Path) -> DataRoot {
        DataRoot { explicit: Some(tmp.to_path_buf()), env: None, project: tmp.join("none") }
    }

    fn small() -> ImageNetOptions {
        ImageNetOptions { image_size: 16, resize: 24, max_per_class: None }
    }

    #[test]
    fn loads_sorted_classes_and_files() {
        let tmp = tree();
        let set = load(&root(tmp.path()), Split::Test, &small()).unwrap();
        assert_eq!(set.name, "imagenet");
        assert_eq!(set.class_names, ["n01", "n02", "n03"]);
        assert_eq!(set.num_classes, 3);
        assert_eq!(set.shape, [3, 16, 16]);
        // n01: sub/z.jpeg, x.JPEG, y.jpg (sorted paths); n02: p.png; n03: a.png, b.PNG
        assert_eq!(set.labels, [0, 0, 0, 1, 2, 2]);
        assert_eq!(set.pixels.len(), 6 * 3 * 16 * 16);
        let mean = |i: usize, ch: usize| {
            let img = set.image(i);
            img[ch * 256..(ch + 1) * 256].iter().map(|&p| f64::from(p)).sum::<f64>() / 256.0
        };
        for i in 0..3 {
            assert!(mean(i, 1) > 190.0 && mean(i, 0) < 15.0 && mean(i, 2) < 15.0, "green JPEG {i}");
        }
        assert_eq!(set.image(3)[2 * 256..], [220u8; 256], "blue PNG is exact");
        assert!(set.image(3)[..2 * 256].iter().all(|&p| p == 0));
        let train = load(&root(tmp.path()), Split::Train, &small()).unwrap();
        assert_eq!(train.labels, set.labels);
    }

    #[test]
    fn max_per_class_keeps_the_first_files() {
        let tmp = tree();
        let opts = ImageNetOptions { max_per_class: Some(1), ..small() };
        let set = load(&root(tmp.path()), Split::Train, &opts).unwrap();
        assert_eq!(set.labels, [0, 1, 2]);
        assert_eq!(set.num_classes, 3);
        let all = load(&root(tmp.path()), Split::Train, &small()).unwrap();
        assert_eq!(set.image(2), all.image(4), "n03's first file is a.png");
    }

    #[test]
    fn centre_crop_removes_the_border() {
        // n03/a.png: 40x30 red with a 3-pixel black frame. Resize shorter side 30 -> 24
        // (40 -> 32), crop 16 at top 4, left 8: the frame shrinks to 2.4 px (plus < 1 px of
        // filter blur) and is cut off entirely. b.PNG is the same image transposed.
        let tmp = tree();
        let set = load(&root(tmp.path()), Split::Test, &small()).unwrap();
        for i in [4, 5] {
            let img = set.image(i);
            assert!(img[..256].iter().all(|&p| p == 250), "red plane of image {i}: {:?}", &img[..256]);
            assert!(img[256..].iter().all(|&p| p == 0));
        }
        // resize = 30 keeps the size; crop 28 at top 1, left 6 keeps 2 rows of frame at the
        // top and bottom, none at the sides.
        let opts = ImageNetOptions { image_size: 28, resize: 30, max_per_class: None };
        let set = load(&root(tmp.path()), Split::Test, &opts).unwrap();
        let red = &set.image(4)[..28 * 28];
        let row = |y: usize| &red[y * 28..(y + 1) * 28];
        for y in 0..28 {
            let expect = if (2..26).contains(&y) { 250 } else { 0 };
            assert!(row(y).iter().all(|&p| p == expect), "row {y}: {:?}", row(y));
        }
    }

    #[test]
    fn geometry_matches_torchvision() {
        assert_eq!(resized_dims(500, 375, 256), (341, 256));
        assert_eq!(resized_dims(375, 500, 256), (256, 341));
        assert_eq!(resized_dims(256, 256, 256), (256, 256));
        assert_eq!(resized_dims(100, 300, 10), (10, 30));
        // round-half-to-even as Python's round: (257-224)/2 = 16.5 -> 16, (259-224)/2 = 17.5 -> 18
        assert_eq!(center_offset(257, 224), 16);
        assert_eq!(center_offset(259, 224), 18);
        assert_eq!(center_offset(256, 224), 16);
        assert_eq!(center_offset(341, 224), 58);
        assert_eq!(center_offset(224, 224), 0);
    }

    #[test]
    fn corrupt_image_is_named_in_the_error() {
        let tmp = tree();
        let bad = tmp.path().join("imagenet/val/n02/q.JPEG");
        std::fs::write(&bad, b"\xff\xd8\xff\xe0 truncated jpeg").unwrap();
        let err = load(&root(tmp.path()), Split::Test, &small()).unwrap_err();
        let msg = err.to_string();
        assert!(matches!(&err, DatasetError::ImageFolder { path, .. } if *path == bad), "{msg}");
        assert!(msg.contains("q.JPEG") && msg.contains("decode"), "{msg}");
        // the train split is still fine
        load(&root(tmp.path()), Split::Train, &small()).unwrap();
    }

    #[test]
    fn empty_class_folder_and_bad_options_are_errors() {
        let tmp = tree();
        let empty = tmp.path().join("imagenet/val/n04");
        std::fs::create_dir_all(&empty).unwrap();
        let err = load(&root(tmp.path()), Split::Test, &small()).unwrap_err();
        assert!(matches!(&err, DatasetError::ImageFolder { path, .. } if *path == empty), "{err}");
        let r = root(tmp.path());
        for opts in [
            ImageNetOptions { image_size: 0, ..small() },
            ImageNetOptions { resize: 15, ..small() },
            ImageNetOptions { max_per_class: Some(0), ..small() },
        ] {
            assert!(matches!(load(&r, Split::Train, &opts), Err(DatasetError::InvalidOptions { .. })), "{opts:?}");
        }
    }

    #[test]
    fn missing_split_names_candidates_and_hint() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("imagenet/train")).unwrap(); // no class folders
        let r = root(tmp.path());
        let err = load(&r, Split::Train, &ImageNetOptions::default()).unwrap_err();
        let msg = err.to_string();
        let DatasetError::Missing { searched, .. } = &err else { panic!("{msg}") };
        assert_eq!(*searched, r.candidates("imagenet"));
        assert!(searched.contains(&tmp.path().join("imagenet")));
        assert!(msg.contains("scripts/fetch-datasets.sh imagenet") && msg.contains("train/<wnid>"), "{msg}");
        let err = load(&r, Split::Test, &ImageNetOptions::default()).unwrap_err();
        assert!(err.to_string().contains("val/<wnid>"), "{err}");
    }

    #[test]
    fn options_parse_with_defaults() {
        let o: ImageNetOptions = toml::from_str("max_per_class = 5").unwrap();
        assert_eq!(o, ImageNetOptions { image_size: 224, resize: 256, max_per_class: Some(5) });
        assert_eq!(toml::from_str::<ImageNetOptions>("").unwrap(), ImageNetOptions::default());
        assert!(toml::from_str::<ImageNetOptions>("crop = 3").is_err(), "unknown fields are rejected");
    }
}
