//! IDX files (MNIST, Fashion-MNIST), plain or gzip-compressed.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use crate::Split;
use crate::error::DatasetError;
use crate::image::ImageSet;

/// Magic number of an IDX file of unsigned bytes with 3 dimensions (images).
pub const IMAGES_MAGIC: u32 = 0x0000_0803;
/// Magic number of an IDX file of unsigned bytes with 1 dimension (labels).
pub const LABELS_MAGIC: u32 = 0x0000_0801;
/// Number of classes of MNIST-style datasets.
pub const NUM_CLASSES: usize = 10;

/// Class names of MNIST.
pub const MNIST_CLASSES: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
/// Class names of Fashion-MNIST.
pub const FASHION_MNIST_CLASSES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

/// A file's bytes (decompressed when it is a `.gz`) and where they came from.
struct Loaded {
    path: PathBuf,
    gz: bool,
    bytes: Vec<u8>,
}

impl Loaded {
    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> DatasetError {
        let mut reason = reason.into();
        if self.gz {
            reason.push_str(" (offset in the decompressed data)");
        }
        DatasetError::Corrupt { path: self.path.clone(), offset, reason }
    }

    fn u32_at(&self, offset: usize) -> u32 {
        let b = &self.bytes[offset..offset + 4];
        u32::from_be_bytes([b[0], b[1], b[2], b[3]])
    }
}

/// Reads a whole file, gunzipping it when its name ends in `.gz`.
fn read_file(path: &Path) -> Result<Loaded, DatasetError> {
    let gz = path.extension().is_some_and(|e| e == "gz");
    let io = |source| DatasetError::Io { path: path.to_path_buf(), source };
    if !gz {
        let bytes = std::fs::read(path).map_err(io)?;
        return Ok(Loaded { path: path.to_path_buf(), gz, bytes });
    }
    let file = File::open(path).map_err(io)?;
    let mut dec = MultiGzDecoder::new(BufReader::new(file));
    let mut bytes = Vec::new();
    if let Err(e) = dec.read_to_end(&mut bytes) {
        return match e.kind() {
            ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof => Err(DatasetError::Corrupt {
                path: path.to_path_buf(),
                offset: bytes.len() as u64,
                reason: format!("invalid or truncated gzip stream ({e}) (offset in the decompressed data)"),
            }),
            _ => Err(io(e)),
        };
    }
    Ok(Loaded { path: path.to_path_buf(), gz, bytes })
}

/// Checks the magic number and header of an IDX file and returns its dimensions.
fn parse_header(f: &Loaded, magic: u32, ndims: usize) -> Result<Vec<usize>, DatasetError> {
    let header = 4 + 4 * ndims;
    if f.bytes.len() < 4 {
        return Err(f.corrupt(
            f.bytes.len() as u64,
            format!("file ends inside the 4-byte magic number ({} bytes)", f.bytes.len()),
        ));
    }
    let got = f.u32_at(0);
    if got != magic {
        return Err(f.corrupt(0, format!("bad magic number 0x{got:08x}, expected 0x{magic:08x}")));
    }
    if f.bytes.len() < header {
        return Err(f.corrupt(f.bytes.len() as u64, format!("file ends inside the {header}-byte header")));
    }
    Ok((0..ndims).map(|i| f.u32_at(4 + 4 * i) as usize).collect())
}

/// Checks that the payload after a `header`-byte header is exactly `expected` bytes long.
fn check_length(f: &Loaded, header: usize, expected: Option<usize>, what: &str) -> Result<(), DatasetError> {
    let Some(total) = expected.and_then(|e| e.checked_add(header)) else {
        return Err(f.corrupt(4, format!("{what} dimensions overflow")));
    };
    let len = f.bytes.len();
    if len < total {
        return Err(f.corrupt(
            len as u64,
            format!("truncated: the header announces {what} needing {total} bytes but the data ends at byte {len}"),
        ));
    }
    if len > total {
        return Err(f.corrupt(total as u64, format!("{} unexpected trailing bytes after the {what}", len - total)));
    }
    Ok(())
}

/// The header of an IDX3 image file, plain or `.gz`, reading only its first 16 bytes:
/// (count, rows, columns). What `runner plan` checks before a run.
pub fn read_images_header(path: &Path) -> Result<(usize, usize, usize), DatasetError> {
    let io = |source| DatasetError::Io { path: path.to_path_buf(), source };
    let gz = path.extension().is_some_and(|e| e == "gz");
    let file = BufReader::new(File::open(path).map_err(io)?);
    let mut reader: Box<dyn Read> = if gz { Box::new(MultiGzDecoder::new(file)) } else { Box::new(file) };
    let mut bytes = Vec::with_capacity(16);
    if let Err(e) = reader.by_ref().take(16).read_to_end(&mut bytes) {
        return Err(DatasetError::Corrupt {
            path: path.to_path_buf(),
            offset: bytes.len() as u64,
            reason: format!("unreadable header ({e})"),
        });
    }
    let f = Loaded { path: path.to_path_buf(), gz, bytes };
    let dims = parse_header(&f, IMAGES_MAGIC, 3)?;
    Ok((dims[0], dims[1], dims[2]))
}

/// Images read from an IDX3 file.
#[derive(Clone, Debug)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows per image.
    pub rows: usize,
    /// Columns per image.
    pub cols: usize,
    /// `count*rows*cols` pixels, row-major per image.
    pub pixels: Vec<u8>,
}

/// Reads an IDX3 image file (magic 0x00000803), plain or `.gz`.
pub fn read_images(path: &Path) -> Result<IdxImages, DatasetError> {
    let mut f = read_file(path)?;
    let dims = parse_header(&f, IMAGES_MAGIC, 3)?;
    let (count, rows, cols) = (dims[0], dims[1], dims[2]);
    if rows == 0 || cols == 0 {
        return Err(f.corrupt(8, format!("image size {rows}x{cols} has a zero dimension")));
    }
    let expected = count.checked_mul(rows).and_then(|x| x.checked_mul(cols));
    check_length(&f, 16, expected, &format!("{count} images of {rows}x{cols}"))?;
    f.bytes.drain(..16);
    Ok(IdxImages { count, rows, cols, pixels: f.bytes })
}

/// Reads an IDX1 label file (magic 0x00000801), plain or `.gz`, checking every label is
/// below `num_classes` and, when given, that there are `expected_count` labels.
pub fn read_labels(path: &Path, num_classes: usize, expected_count: Option<usize>) -> Result<Vec<u16>, DatasetError> {
    read_labels_for(path, num_classes, expected_count.map(|n| (n, None)))
}

/// [`read_labels`], with the image file the expected count comes from (named in the error
/// when the counts disagree: either file may be the damaged one).
fn read_labels_for(
    path: &Path,
    num_classes: usize,
    expected: Option<(usize, Option<&Path>)>,
) -> Result<Vec<u16>, DatasetError> {
    let f = read_file(path)?;
    let dims = parse_header(&f, LABELS_MAGIC, 1)?;
    let count = dims[0];
    if let Some((n, images)) = expected
        && n != count
    {
        let of = images.map(|p| format!(" of {}", p.display())).unwrap_or_default();
        return Err(f.corrupt(4, format!("label count {count} does not match the image count {n}{of}")));
    }
    check_length(&f, 8, Some(count), &format!("{count} labels"))?;
    let labels = &f.bytes[8..];
    if let Some(i) = labels.iter().position(|&l| usize::from(l) >= num_classes) {
        return Err(f.corrupt(
            (8 + i) as u64,
            format!("label {} of item {i} is out of range (must be < {num_classes})", labels[i]),
        ));
    }
    Ok(labels.iter().map(|&l| u16::from(l)).collect())
}

/// Finds `stem` in `dir`, plain first, then `.gz`; also accepts the `name.idxN-ubyte` spelling.
fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    let dotted = stem.replacen("-idx", ".idx", 1);
    for name in [stem, dotted.as_str()] {
        for cand in [name.to_string(), format!("{name}.gz")] {
            let p = dir.join(cand);
            if p.is_file() {
                return Some(p);
            }
        }
    }
    None
}

/// File stems of a split: (images, labels).
pub fn split_stems(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// The (images, labels) files of `split` in `dir`, if both exist.
pub fn find_split(dir: &Path, split: Split) -> Option<(PathBuf, PathBuf)> {
    let (img, lbl) = split_stems(split);
    Some((find(dir, img)?, find(dir, lbl)?))
}

/// Human-readable description of the files a directory must hold.
pub(crate) fn expected_files(split: Split) -> String {
    let (img, lbl) = split_stems(split);
    format!("`{img}` and `{lbl}` (each plain or with a .gz suffix)")
}

/// Loads one split of an MNIST-style dataset from `dir`.
pub fn load_dir(dir: &Path, split: Split, name: &str, class_names: &[&str]) -> Result<ImageSet, DatasetError> {
    let Some((img_path, lbl_path)) = find_split(dir, split) else {
        return Err(DatasetError::Missing {
            dataset: name.to_string(),
            searched: vec![dir.to_path_buf()],
            hint: crate::error::missing_hint(name, &expected_files(split)),
        });
    };
    load_files(&img_path, &lbl_path, name, class_names)
}

/// Loads an image file and a label file into an [`ImageSet`] with 1 channel.
pub fn load_files(images: &Path, labels: &Path, name: &str, class_names: &[&str]) -> Result<ImageSet, DatasetError> {
    let imgs = read_images(images)?;
    let labels = read_labels_for(labels, class_names.len(), Some((imgs.count, Some(images))))?;
    Ok(ImageSet {
        name: name.to_string(),
        pixels: imgs.pixels,
        labels,
        shape: [1, imgs.rows, imgs.cols],
        num_classes: class_names.len(),
        class_names: class_names.iter().map(|s| s.to_string()).collect(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use flate2::Compression;
    use flate2::write::GzEncoder;
    use std::io::Write;

    /// IDX3 bytes for `n` images of `r`x`c` with pixel = (i*7 + j) % 256.
    pub(crate) fn images_bytes(n: u32, r: u32, c: u32) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&IMAGES_MAGIC.to_be_bytes());
        for d in [n, r, c] {
            v.extend_from_slice(&d.to_be_bytes());
        }
        for i in 0..n as usize {
            for j in 0..(r * c) as usize {
                v.push(((i * 7 + j) % 256) as u8);
            }
        }
        v
    }

    pub(crate) fn labels_bytes(labels: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&LABELS_MAGIC.to_be_bytes());
        v.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        v.extend_from_slice(labels);
        v
    }

    pub(crate) fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn corrupt(e: DatasetError) -> (PathBuf, u64, String) {
        match e {
            DatasetError::Corrupt { path, offset, reason } => (path, offset, reason),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn plain_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("train-images-idx3-ubyte"), images_bytes(3, 2, 4)).unwrap();
        std::fs::write(dir.path().join("train-labels-idx1-ubyte"), labels_bytes(&[3, 0, 9])).unwrap();
        let set = load_dir(dir.path(), Split::Train, "mnist", &MNIST_CLASSES).unwrap();
        assert_eq!(set.len(), 3);
        assert_eq!(set.shape, [1, 2, 4]);
        assert_eq!(set.labels, vec![3, 0, 9]);
        assert_eq!(set.image(1), &[7, 8, 9, 10, 11, 12, 13, 14]);
        assert_eq!(set.num_classes, 10);
        assert!(matches!(
            load_dir(dir.path(), Split::Test, "mnist", &MNIST_CLASSES),
            Err(DatasetError::Missing { .. })
        ));
    }

    #[test]
    fn gz_round_trip_matches_plain() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte.gz"), gz(&images_bytes(5, 3, 3))).unwrap();
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), gz(&labels_bytes(&[1, 2, 3, 4, 5]))).unwrap();
        let set = load_dir(dir.path(), Split::Test, "fashion-mnist", &FASHION_MNIST_CLASSES).unwrap();
        assert_eq!(set.len(), 5);
        assert_eq!(set.labels, vec![1, 2, 3, 4, 5]);
        assert_eq!(set.pixels, images_bytes(5, 3, 3)[16..].to_vec());
        assert_eq!(set.class_names[9], "Ankle boot");
    }

    #[test]
    fn bad_magic_is_corrupt_at_offset_zero() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("imgs");
        let mut b = images_bytes(2, 2, 2);
        b[3] = 0x01;
        std::fs::write(&p, &b).unwrap();
        let (path, offset, reason) = corrupt(read_images(&p).unwrap_err());
        assert_eq!(path, p);
        assert_eq!(offset, 0);
        assert!(reason.contains("magic"), "{reason}");
        // a label file given as images has the wrong magic too
        std::fs::write(&p, labels_bytes(&[1, 2])).unwrap();
        assert_eq!(corrupt(read_images(&p).unwrap_err()).1, 0);
    }

    #[test]
    fn truncated_images_are_corrupt_with_path_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train-images-idx3-ubyte");
        let mut b = images_bytes(4, 5, 5);
        b.truncate(16 + 3 * 25 + 10);
        std::fs::write(&p, &b).unwrap();
        let err = read_images(&p).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(&p.display().to_string()), "{msg}");
        assert!(msg.contains("101"), "{msg}");
        let (path, offset, reason) = corrupt(err);
        assert_eq!(path, p);
        assert_eq!(offset, 101);
        assert!(reason.contains("truncated"), "{reason}");

        // truncated inside the header
        std::fs::write(&p, &images_bytes(1, 1, 1)[..10]).unwrap();
        assert_eq!(corrupt(read_images(&p).unwrap_err()).1, 10);

        // trailing garbage
        let mut b = images_bytes(1, 2, 2);
        b.push(0);
        std::fs::write(&p, &b).unwrap();
        assert_eq!(corrupt(read_images(&p).unwrap_err()).1, 20);

        // truncated gzip stream
        let g = gz(&images_bytes(50, 10, 10));
        let gp = dir.path().join("x.gz");
        std::fs::write(&gp, &g[..g.len() / 2]).unwrap();
        let (path, _, reason) = corrupt(read_images(&gp).unwrap_err());
        assert_eq!(path, gp);
        assert!(reason.contains("decompressed"), "{reason}");
    }

    #[test]
    fn label_problems_are_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("labels");
        std::fs::write(&p, labels_bytes(&[0, 9, 10, 1])).unwrap();
        let (path, offset, reason) = corrupt(read_labels(&p, 10, Some(4)).unwrap_err());
        assert_eq!(path, p);
        assert_eq!(offset, 10);
        assert!(reason.contains("out of range"), "{reason}");

        std::fs::write(&p, labels_bytes(&[0, 1, 2])).unwrap();
        let (_, offset, reason) = corrupt(read_labels(&p, 10, Some(4)).unwrap_err());
        assert_eq!(offset, 4);
        assert!(reason.contains("count"), "{reason}");

        let mut b = labels_bytes(&[0, 1, 2]);
        b.pop();
        std::fs::write(&p, &b).unwrap();
        assert_eq!(corrupt(read_labels(&p, 10, None).unwrap_err()).1, 10);
    }

    /// A counterexample to the loader property (an error names the damaged file): an image
    /// file whose count byte was damaged and that was cut at a whole image reads as valid, and
    /// the count mismatch was reported on the intact label file alone (`label count 3 does not
    /// match the image count 2`).
    #[test]
    fn count_mismatch_names_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (img, lbl) = (dir.path().join("t10k-images-idx3-ubyte"), dir.path().join("t10k-labels-idx1-ubyte"));
        let mut b = images_bytes(3, 4, 5);
        b[7] ^= 1; // count 3 -> 2
        b.truncate(16 + 2 * 20);
        std::fs::write(&img, &b).unwrap();
        std::fs::write(&lbl, labels_bytes(&[7, 0, 9])).unwrap();
        let msg = load_files(&img, &lbl, "mnist", &MNIST_CLASSES).unwrap_err().to_string();
        assert!(msg.contains("t10k-labels-idx1-ubyte") && msg.contains("t10k-images-idx3-ubyte"), "{msg}");
        assert!(msg.contains("label count 3 does not match the image count 2"), "{msg}");
    }

    #[test]
    fn missing_file_is_io() {
        let dir = tempfile::tempdir().unwrap();
        let err = read_images(&dir.path().join("nope")).unwrap_err();
        assert!(matches!(err, DatasetError::Io { .. }));
    }
}
