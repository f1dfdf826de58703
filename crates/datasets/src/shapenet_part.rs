//! ShapeNetPart (the `shapenetcore_partanno_segmentation_benchmark_v0_normal` release used by
//! PointNet and PointNet++) as a 16-class point-cloud classification set, with the per-point
//! part labels kept for segmentation.
//!
//! # Layout
//! ```text
//! <dir>/synsetoffset2category.txt       16 lines `Airplane\t02691156`: category, synset id;
//!                                       label = line order (Airplane 0 … Table 15)
//! <dir>/<synset>/<shape id>.txt         one point per line: `x y z nx ny nz part_label`
//!                                       (seven numbers; part_label an integer-valued float, 0..=49)
//! <dir>/train_test_split/shuffled_train_file_list.json
//! <dir>/train_test_split/shuffled_val_file_list.json
//! <dir>/train_test_split/shuffled_test_file_list.json
//!                                       JSON lists of strings "shape_data/<synset>/<shape id>"
//! ```
//! `<dir>` is found like the other point sets (see [`crate::pointsets`]): one of
//! `shapenetcore_partanno_segmentation_benchmark_v0_normal/`, `shapenet-part/`,
//! `ShapeNetPart/` or `shapenet_part/` under a data root, or that release folder inside one of
//! them.
//!
//! # Splits
//! [`Split::Train`] is the train list plus the val list (as PointNet++ trains), [`Split::Test`]
//! the test list. Samples are ordered by category (label), then by shape id, whatever the order
//! of the shuffled lists.
//!
//! # Samples
//! The x, y, z columns (normals are ignored), brought to `num_points` points by the crate's
//! rules: a larger cloud keeps a seeded random subset of its points (in file order; the files'
//! point order is not a random sample, and PointNet++ draws a random choice as well), a
//! smaller one is repeated cyclically. Seeds derive from ([`PointOptions::seed`], split, index
//! in the sorted split), so a file always gives the same points. Then centred and scaled to
//! the unit sphere. The part label of each kept point is kept alongside
//! ([`PartCloudSet::part_labels`]); part labels are the global ids of the file (0..=49, each
//! category owning a contiguous range, [`PART_COUNTS`]; a point outside its category's range is
//! an error).

use std::path::{Path, PathBuf};

use rayon::prelude::*;

use crate::error::DatasetError;
use crate::part_clouds::PartCloudSet;
use crate::pointcloud::{PointCloudSet, Reduce, fit_indices, normalize_unit_sphere};
use crate::pointsets::{io_err, sample_seed, select, text_lines};
use crate::{PointOptions, Split};

/// Dataset name as in [`crate::POINT_DATASET_NAMES`].
pub const NAME: &str = "shapenet-part";

/// Folder name of the release (what its zip archive unpacks to).
pub const RELEASE_DIR: &str = "shapenetcore_partanno_segmentation_benchmark_v0_normal";

/// File listing the categories and their synset ids.
pub const CATEGORY_FILE: &str = "synsetoffset2category.txt";

/// Folder of the split lists.
pub const SPLIT_DIR: &str = "train_test_split";

/// The 16 categories of the official `synsetoffset2category.txt`, in label order.
pub const CATEGORIES: [(&str, &str); 16] = [
    ("Airplane", "02691156"),
    ("Bag", "02773838"),
    ("Cap", "02954340"),
    ("Car", "02958343"),
    ("Chair", "03001627"),
    ("Earphone", "03261776"),
    ("Guitar", "03467517"),
    ("Knife", "03624134"),
    ("Lamp", "03636649"),
    ("Laptop", "03642806"),
    ("Motorbike", "03790512"),
    ("Mug", "03797390"),
    ("Pistol", "03948459"),
    ("Rocket", "04099429"),
    ("Skateboard", "04225987"),
    ("Table", "04379243"),
];

/// Number of part labels (global ids `0..NUM_PARTS`, shared out among the categories).
pub const NUM_PARTS: usize = 50;

/// The split-list files (in `train_test_split/`) whose shapes make up `split`.
pub fn split_lists(split: Split) -> &'static [&'static str] {
    match split {
        Split::Train => &["shuffled_train_file_list.json", "shuffled_val_file_list.json"],
        Split::Test => &["shuffled_test_file_list.json"],
    }
}

/// True when `dir` holds the category file and the split lists of `split`.
pub(crate) fn holds_split(dir: &Path, split: Split) -> bool {
    dir.join(CATEGORY_FILE).is_file() && split_lists(split).iter().all(|f| dir.join(SPLIT_DIR).join(f).is_file())
}

/// What a directory must hold for `split` (for [`DatasetError::Missing`]).
pub(crate) fn expected(split: Split) -> String {
    let lists: Vec<String> = split_lists(split).iter().map(|f| format!("`{SPLIT_DIR}/{f}`")).collect();
    format!(
        "`{CATEGORY_FILE}`, {} and `<synset>/<shape id>.txt` point files (directly or under `{RELEASE_DIR}/`)",
        lists.join(" + ")
    )
}

/// Number of parts of each category, in [`CATEGORIES`] order: category `c` owns the global part
/// ids following those of categories `0..c` (Airplane 0–3, Bag 4–5, …, Table 47–49).
pub const PART_COUNTS: [usize; 16] = [4, 2, 2, 4, 4, 3, 3, 2, 4, 2, 6, 2, 3, 3, 3, 3];

/// The global part ids of each category (contiguous ranges from [`PART_COUNTS`]).
pub fn category_parts() -> Vec<std::ops::Range<usize>> {
    let mut start = 0;
    PART_COUNTS
        .iter()
        .map(|&n| {
            start += n;
            start - n..start
        })
        .collect()
}

/// A name for every global part id: `<category>/<k>` (the release names parts by number only).
pub fn part_names() -> Vec<String> {
    CATEGORIES.iter().zip(PART_COUNTS).flat_map(|((c, _), n)| (0..n).map(move |k| format!("{c}/{k}"))).collect()
}

/// `(category, synset id)` per line of a `synsetoffset2category.txt` (category, then the
/// synset id after a tab or spaces); there must be exactly 16, with distinct synset ids made
/// of ASCII letters and digits.
pub fn read_categories(path: &Path) -> Result<Vec<(String, String)>, DatasetError> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (line, text) in text_lines(path)? {
        let malformed = |reason: String| DatasetError::Malformed {
            path: path.to_path_buf(),
            location: format!("line {line}"),
            reason,
        };
        let Some((name, synset)) = text.rsplit_once(char::is_whitespace) else {
            return Err(malformed(format!("expected `<category>\\t<synset id>`, found `{text}`")));
        };
        let (name, synset) = (name.trim(), synset.trim());
        if synset.is_empty() || !synset.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(malformed(format!("synset id `{synset}` is not made of letters and digits")));
        }
        if let Some((other, _)) = out.iter().find(|(_, s)| s == synset) {
            return Err(malformed(format!("synset id {synset} is listed twice (also for {other})")));
        }
        out.push((name.to_string(), synset.to_string()));
    }
    if out.len() != CATEGORIES.len() {
        return Err(DatasetError::Layout {
            path: path.to_path_buf(),
            reason: format!("expected {} categories, found {}", CATEGORIES.len(), out.len()),
        });
    }
    Ok(out)
}

/// Parses a JSON array of strings (`["a", "b\u00e9"]`: any JSON whitespace, all string escapes).
/// On failure returns the byte offset of the problem and what is wrong.
pub fn parse_json_string_list(text: &str) -> Result<Vec<String>, (usize, String)> {
    let b = text.as_bytes();
    let mut i = 0usize;
    let ws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\n' | b'\r') {
            *i += 1;
        }
    };
    let found = |i: usize| match text.get(i..).and_then(|s| s.chars().next()) {
        Some(c) => format!("`{c}`"),
        None => "the end of the file".to_string(),
    };
    if text.starts_with('\u{feff}') {
        i = 3;
    }
    ws(&mut i);
    if b.get(i) != Some(&b'[') {
        return Err((i, format!("expected a JSON list `[`, found {}", found(i))));
    }
    i += 1;
    let mut out = Vec::new();
    ws(&mut i);
    if b.get(i) == Some(&b']') {
        i += 1;
    } else {
        loop {
            ws(&mut i);
            if b.get(i) != Some(&b'"') {
                return Err((i, format!("expected a string, found {}", found(i))));
            }
            let (s, next) = json_string(text, i + 1)?;
            out.push(s);
            i = next;
            ws(&mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b']') => {
                    i += 1;
                    break;
                }
                _ => return Err((i, format!("expected `,` or `]`, found {}", found(i)))),
            }
        }
    }
    ws(&mut i);
    if i < b.len() {
        return Err((i, format!("unexpected {} after the list", found(i))));
    }
    Ok(out)
}

/// The string whose contents start at byte `start` (after the opening quote); returns it and
/// the offset after the closing quote.
fn json_string(text: &str, start: usize) -> Result<(String, usize), (usize, String)> {
    let b = text.as_bytes();
    let mut out = String::new();
    let mut i = start;
    let hex4 = |i: usize| -> Result<u32, (usize, String)> {
        text.get(i..i + 4)
            .filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| (i, "expected four hex digits after `\\u`".to_string()))
    };
    loop {
        let Some(c) = text[i..].chars().next() else {
            return Err((start - 1, "unterminated string".into()));
        };
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let e = b.get(i + 1).copied();
                i += 2;
                let ch = match e {
                    Some(b'"') => '"',
                    Some(b'\\') => '\\',
                    Some(b'/') => '/',
                    Some(b'b') => '\u{8}',
                    Some(b'f') => '\u{c}',
                    Some(b'n') => '\n',
                    Some(b'r') => '\r',
                    Some(b't') => '\t',
                    Some(b'u') => {
                        let hi = hex4(i)?;
                        i += 4;
                        let code = if (0xD800..0xDC00).contains(&hi) {
                            if text.get(i..i + 2) != Some("\\u") {
                                return Err((i, "unpaired UTF-16 surrogate in `\\u` escape".into()));
                            }
                            let lo = hex4(i + 2)?;
                            if !(0xDC00..0xE000).contains(&lo) {
                                return Err((i, "unpaired UTF-16 surrogate in `\\u` escape".into()));
                            }
                            i += 6;
                            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                        } else {
                            hi
                        };
                        char::from_u32(code)
                            .ok_or_else(|| (i - 4, "unpaired UTF-16 surrogate in `\\u` escape".into()))?
                    }
                    _ => return Err((i - 2, "invalid escape in a string".into())),
                };
                out.push(ch);
            }
            c if (c as u32) < 0x20 => return Err((i, "control character inside a string".into())),
            c => {
                out.push(c);
                i += c.len_utf8();
            }
        }
    }
}

/// The strings of a JSON list file (see [`parse_json_string_list`]).
pub fn read_string_list(path: &Path) -> Result<Vec<String>, DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let text = std::str::from_utf8(&bytes).map_err(|e| DatasetError::Malformed {
        path: path.to_path_buf(),
        location: format!("byte {}", e.valid_up_to()),
        reason: "not UTF-8 text".into(),
    })?;
    parse_json_string_list(text).map_err(|(at, reason)| DatasetError::Malformed {
        path: path.to_path_buf(),
        location: format!("byte {at}"),
        reason,
    })
}

/// Points (point-major xyz) and part labels of a ShapeNetPart point file: one point per line,
/// `x y z nx ny nz part_label` separated by spaces or tabs; the part label must be an integer
/// in `0..NUM_PARTS` (written as a float, e.g. `12.000000`).
pub fn read_part_points(path: &Path) -> Result<(Vec<f32>, Vec<u8>), DatasetError> {
    let bytes = std::fs::read(path).map_err(|e| io_err(path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut points = Vec::new();
    let mut parts = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let malformed = |reason: String| DatasetError::Malformed {
            path: path.to_path_buf(),
            location: format!("line {}", i + 1),
            reason,
        };
        let toks: Vec<&str> = line.split_whitespace().collect();
        if toks.is_empty() {
            continue;
        }
        if toks.len() != 7 {
            return Err(malformed(format!(
                "expected 7 numbers `x y z nx ny nz part_label`, found {} fields",
                toks.len()
            )));
        }
        for (axis, tok) in ["x", "y", "z"].iter().zip(&toks) {
            let v = tok
                .parse::<f32>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| malformed(format!("{axis} `{tok}` is not a finite number")))?;
            points.push(v);
        }
        let tok = toks[6];
        let part = tok
            .parse::<f64>()
            .ok()
            .filter(|v| v.fract() == 0.0 && (0.0..NUM_PARTS as f64).contains(v))
            .ok_or_else(|| malformed(format!("part label `{tok}` is not an integer in 0..={}", NUM_PARTS - 1)))?;
        parts.push(part as u8);
    }
    if parts.is_empty() {
        return Err(DatasetError::Malformed {
            path: path.to_path_buf(),
            location: "line 1".into(),
            reason: "the file holds no points".into(),
        });
    }
    Ok((points, parts))
}

/// Shape files of `split` with their labels, sorted by label then shape id.
fn split_items(dir: &Path, split: Split, categories: &[(String, String)]) -> Result<Vec<(PathBuf, u16)>, DatasetError> {
    let mut items: Vec<(u16, String, PathBuf)> = Vec::new();
    for list in split_lists(split) {
        let path = dir.join(SPLIT_DIR).join(list);
        for (k, entry) in read_string_list(&path)?.into_iter().enumerate() {
            let layout = |reason: String| DatasetError::Layout {
                path: path.clone(),
                reason: format!("entry {k} `{entry}`: {reason}"),
            };
            let mut parts = entry.rsplit('/');
            let (Some(id), Some(synset)) = (parts.next(), parts.next()) else {
                return Err(layout("expected `shape_data/<synset>/<shape id>`".into()));
            };
            if id.is_empty() || id == "." || id == ".." || id.contains('\\') {
                return Err(layout("the shape id is empty or not a file name".into()));
            }
            let Some(label) = categories.iter().position(|(_, s)| s == synset) else {
                return Err(layout(format!("synset {synset} is not in {CATEGORY_FILE}")));
            };
            items.push((label as u16, id.to_string(), dir.join(synset).join(format!("{id}.txt"))));
        }
    }
    items.sort();
    Ok(items.into_iter().map(|(label, _, path)| (path, label)).collect())
}

/// One prepared sample: `num_points` points (xyz) and their part labels.
type Sample = (Vec<f32>, Vec<u8>);

/// Loads `split` from a release directory `dir` (see the module docs).
pub fn load_dir(dir: &Path, split: Split, opts: &PointOptions) -> Result<PartCloudSet, DatasetError> {
    let categories = read_categories(&dir.join(CATEGORY_FILE))?;
    let items = split_items(dir, split, &categories)?;
    let limit = match split {
        Split::Train => opts.train_size,
        Split::Test => opts.test_size,
    };
    let n = opts.num_points;
    let ranges = category_parts();
    let keep = select(items.len(), limit, opts.seed, split);
    let samples: Vec<Result<Sample, DatasetError>> = keep
        .par_iter()
        .map(|&i| {
            let (raw, parts) = read_part_points(&items[i].0)?;
            let label = usize::from(items[i].1);
            let own = &ranges[label];
            if let Some(j) = parts.iter().position(|&p| !own.contains(&usize::from(p))) {
                return Err(DatasetError::Malformed {
                    path: items[i].0.clone(),
                    location: format!("point {}", j + 1),
                    reason: format!(
                        "part label {} is not a part of {} (its parts are {}..={})",
                        parts[j],
                        categories[label].0,
                        own.start,
                        own.end - 1
                    ),
                });
            }
            let idx = fit_indices(parts.len(), n, Reduce::Random(sample_seed(opts.seed, split, i)));
            let mut points = Vec::with_capacity(3 * n);
            for &s in &idx {
                points.extend_from_slice(&raw[3 * s..3 * s + 3]);
            }
            normalize_unit_sphere(&mut points);
            Ok((points, idx.iter().map(|&s| parts[s]).collect()))
        })
        .collect();
    let mut points = Vec::with_capacity(keep.len() * n * 3);
    let mut part_labels = Vec::with_capacity(keep.len() * n);
    let mut labels = Vec::with_capacity(keep.len());
    for (sample, &i) in samples.into_iter().zip(&keep) {
        let (p, parts) = sample?;
        points.extend_from_slice(&p);
        part_labels.extend_from_slice(&parts);
        labels.push(items[i].1);
    }
    let cloud = PointCloudSet {
        name: NAME.to_string(),
        points,
        labels,
        num_points: n,
        num_classes: categories.len(),
        class_names: categories.into_iter().map(|(name, _)| name).collect(),
    };
    let set = PartCloudSet { cloud, part_labels, part_names: part_names(), category_parts: category_parts() };
    set.validate(NAME)?;
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_string_lists() {
        let ok = |t: &str| parse_json_string_list(t).unwrap_or_else(|e| panic!("{t}: {e:?}"));
        assert_eq!(ok("[]"), Vec::<String>::new());
        assert_eq!(ok(" \r\n[ ]\n"), Vec::<String>::new());
        assert_eq!(ok("[\"shape_data/02691156/1a04\", \"b\"]"), vec!["shape_data/02691156/1a04", "b"]);
        assert_eq!(ok("\u{feff}[\"a\"]\n"), vec!["a"]);
        assert_eq!(ok(r#"["a\/b\"c\\d\n\t\u00e9\ud83d\ude00", "é"]"#), vec!["a/b\"c\\d\n\té😀", "é"]);
        let err = |t: &str, at: usize, needle: &str| {
            let (o, reason) = parse_json_string_list(t).unwrap_err();
            assert_eq!(o, at, "{t}: {reason}");
            assert!(reason.contains(needle), "{t}: {reason}");
        };
        err("", 0, "the end of the file");
        err("{\"a\": 1}", 0, "expected a JSON list");
        err("[\"a\",]", 5, "expected a string");
        err("[\"a\" \"b\"]", 5, "expected `,` or `]`");
        err("[\"a\"", 4, "expected `,` or `]`");
        err("[\"abc", 1, "unterminated");
        err("[\"a\\x\"]", 3, "invalid escape");
        err("[\"a\\u12\"]", 5, "hex digits");
        err("[\"\\ud83d\"]", 8, "surrogate");
        err("[\"a\nb\"]", 3, "control character");
        err("[\"a\"] x", 6, "after the list");
        err("[1]", 1, "expected a string");
    }

    #[test]
    fn point_file_rows() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("s.txt");
        std::fs::write(&f, "0.1 0.2 0.3 0 0 1 12.000000\n\n-1 2 3e-1 0 1 0 3\r\n").unwrap();
        let (p, parts) = read_part_points(&f).unwrap();
        assert_eq!(p, vec![0.1, 0.2, 0.3, -1.0, 2.0, 0.3]);
        assert_eq!(parts, vec![12, 3]);
        for (text, needle) in [
            ("0 0 0 0 0 1\n", "found 6 fields"),
            ("0 0 0 0 0 1 2 3\n", "found 8 fields"),
            ("0 nan 0 0 0 1 2\n", "y `nan`"),
            ("0 0 0 0 0 1 2.5\n", "part label `2.5`"),
            ("0 0 0 0 0 1 50\n", "0..=49"),
            ("0 0 0 0 0 1 -1\n", "`-1`"),
            ("\n\n", "no points"),
        ] {
            std::fs::write(&f, format!("1 1 1 0 0 1 0\n{text}")).unwrap();
            if text == "\n\n" {
                std::fs::write(&f, text).unwrap();
            }
            let e = read_part_points(&f).unwrap_err();
            let msg = e.to_string();
            assert!(matches!(e, DatasetError::Malformed { .. }), "{msg}");
            assert!(msg.contains("s.txt") && msg.contains(needle), "{needle}: {msg}");
            if text != "\n\n" {
                assert!(msg.contains("line 2"), "{msg}");
            }
        }
    }
}
