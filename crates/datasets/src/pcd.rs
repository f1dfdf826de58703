//! PCD (Point Cloud Library) files: ASCII header, then `DATA ascii` or `DATA binary`.
//!
//! Only the `x`, `y` and `z` fields are read; other fields (normals, colour, …) may be present
//! and are skipped. `x`, `y`, `z` must be floating point (`TYPE F`, `SIZE` 4 or 8, `COUNT` 1).
//! Points with a non-finite coordinate (PCL's marker for invalid points) are dropped.
//! `DATA binary_compressed` is reported as [`DatasetError::Unsupported`].

use std::path::Path;

use crate::error::DatasetError;

/// Storage of a field's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Int,
    Uint,
    Float,
}

/// One parsed `FIELDS` entry.
#[derive(Clone, Debug)]
struct Field {
    name: String,
    size: usize,
    kind: Kind,
    count: usize,
}

/// `DATA` encodings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoding {
    Ascii,
    Binary,
}

/// What the header says.
struct Header {
    fields: Vec<Field>,
    points: usize,
    encoding: Encoding,
    /// Byte offset of the first data byte.
    data_start: usize,
    /// Line number (1-based) of the first data line.
    data_line: usize,
}

fn malformed(path: &Path, line: usize, reason: impl Into<String>) -> DatasetError {
    DatasetError::Malformed { path: path.to_path_buf(), location: format!("line {line}"), reason: reason.into() }
}

/// Reads a PCD file and returns its valid points, point-major xyz.
pub fn read_pcd(path: &Path) -> Result<Vec<f32>, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io { path: path.to_path_buf(), source })?;
    parse_pcd(&bytes, path)
}

/// Parses the bytes of a PCD file (`path` is only used in errors).
pub fn parse_pcd(bytes: &[u8], path: &Path) -> Result<Vec<f32>, DatasetError> {
    let header = parse_header(bytes, path)?;
    let Header { fields, points, encoding, data_start, data_line } = header;
    // value offsets (ASCII: token index) and byte offsets (binary) of x, y, z
    let mut token = 0usize;
    let mut byte = 0usize;
    let mut xyz = [(0usize, 0usize, 0usize); 3]; // (token, byte, size)
    let mut found = [false; 3];
    for f in &fields {
        if let Some(k) = ["x", "y", "z"].iter().position(|n| *n == f.name) {
            if f.kind != Kind::Float || !(f.size == 4 || f.size == 8) || f.count != 1 {
                return Err(DatasetError::Malformed {
                    path: path.to_path_buf(),
                    location: format!("field {}", f.name),
                    reason: "x, y and z must be TYPE F with SIZE 4 or 8 and COUNT 1".into(),
                });
            }
            xyz[k] = (token, byte, f.size);
            found[k] = true;
        }
        // COUNT comes from the file: a huge one must not overflow the record layout
        let width = f.size.checked_mul(f.count).and_then(|w| byte.checked_add(w));
        match (token.checked_add(f.count), width) {
            (Some(t), Some(b)) => (token, byte) = (t, b),
            _ => {
                return Err(DatasetError::Malformed {
                    path: path.to_path_buf(),
                    location: "header field COUNT".into(),
                    reason: format!("COUNT {} of field {} makes a point record too large", f.count, f.name),
                });
            }
        }
    }
    if found.iter().any(|&f| !f) {
        return Err(DatasetError::Malformed {
            path: path.to_path_buf(),
            location: "header field FIELDS".into(),
            reason: "FIELDS must include x, y and z".into(),
        });
    }
    // `points` comes from the header: reserve only what the data can actually hold
    let mut out = Vec::new();
    match encoding {
        Encoding::Binary => {
            let record = byte;
            let data = &bytes[data_start..];
            let need = points.saturating_mul(record);
            if data.len() < need {
                let whole = data.len() / record.max(1);
                return Err(DatasetError::Corrupt {
                    path: path.to_path_buf(),
                    offset: (data_start + whole * record) as u64,
                    reason: format!(
                        "truncated binary data: header says {points} points of {record} bytes ({need} bytes), \
                         but only {} bytes follow the header ({whole} whole points)",
                        data.len()
                    ),
                });
            }
            out.reserve_exact(points * 3); // points * record <= data.len(), record >= 12
            for rec in data[..need].chunks_exact(record) {
                let mut p = [0f32; 3];
                for (v, &(_, off, size)) in p.iter_mut().zip(&xyz) {
                    *v = if size == 4 {
                        f32::from_le_bytes(rec[off..off + 4].try_into().expect("4 bytes"))
                    } else {
                        f64::from_le_bytes(rec[off..off + 8].try_into().expect("8 bytes")) as f32
                    };
                }
                if p.iter().all(|v| v.is_finite()) {
                    out.extend_from_slice(&p);
                }
            }
        }
        Encoding::Ascii => {
            let text = &bytes[data_start..];
            let text = text.strip_suffix(b"\n").unwrap_or(text);
            // a point takes at least one line of several characters
            out.reserve_exact(3 * points.min(text.len() / 2 + 1));
            let mut read = 0usize;
            let mut line_no = data_line;
            for raw in text.split(|&b| b == b'\n') {
                if read == points {
                    break;
                }
                let line = String::from_utf8_lossy(raw);
                let line = line.trim();
                if line.is_empty() {
                    line_no += 1;
                    continue;
                }
                let toks: Vec<&str> = line.split_whitespace().collect();
                if toks.len() < token {
                    return Err(malformed(path, line_no, format!("expected {token} values, found {}", toks.len())));
                }
                let mut p = [0f32; 3];
                for (v, &(t, _, _)) in p.iter_mut().zip(&xyz) {
                    *v = toks[t]
                        .parse::<f32>()
                        .map_err(|_| malformed(path, line_no, format!("`{}` is not a number", toks[t])))?;
                }
                if p.iter().all(|v| v.is_finite()) {
                    out.extend_from_slice(&p);
                }
                read += 1;
                line_no += 1;
            }
            if read < points {
                return Err(malformed(
                    path,
                    line_no,
                    format!("truncated ASCII data: header says {points} points, file has {read}"),
                ));
            }
        }
    }
    if out.is_empty() {
        return Err(DatasetError::Malformed {
            path: path.to_path_buf(),
            location: "data".into(),
            reason: format!("no valid point (of {points}): every point has a non-finite coordinate"),
        });
    }
    Ok(out)
}

fn parse_usize(path: &Path, line: usize, key: &str, tok: &str) -> Result<usize, DatasetError> {
    tok.parse::<usize>().map_err(|_| malformed(path, line, format!("{key}: `{tok}` is not a non-negative integer")))
}

fn parse_header(bytes: &[u8], path: &Path) -> Result<Header, DatasetError> {
    let mut names: Option<Vec<String>> = None;
    let mut sizes: Option<Vec<usize>> = None;
    let mut types: Option<Vec<Kind>> = None;
    let mut counts: Option<Vec<usize>> = None;
    let mut width: Option<usize> = None;
    let mut height: Option<usize> = None;
    let mut points: Option<usize> = None;
    let mut pos = 0usize;
    let mut line_no = 0usize;
    let (encoding, data_start) = loop {
        if pos >= bytes.len() {
            return Err(malformed(path, line_no.max(1), "header ends without a DATA line (not a PCD file?)"));
        }
        let end = bytes[pos..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |i| pos + i);
        let next = (end + 1).min(bytes.len());
        line_no += 1;
        let raw = &bytes[pos..end];
        pos = next;
        let Ok(line) = std::str::from_utf8(raw) else {
            return Err(malformed(path, line_no, "header line is not text (not a PCD file?)"));
        };
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut toks = line.split_whitespace();
        let key = toks.next().unwrap_or_default().to_ascii_uppercase();
        let rest: Vec<&str> = toks.collect();
        let single = |what: &str| -> Result<usize, DatasetError> {
            match rest.as_slice() {
                [v] => parse_usize(path, line_no, what, v),
                _ => Err(malformed(path, line_no, format!("{what} takes one value"))),
            }
        };
        match key.as_str() {
            "VERSION" | "VIEWPOINT" => {}
            "FIELDS" | "COLUMNS" => names = Some(rest.iter().map(|s| s.to_string()).collect()),
            "SIZE" => {
                let v = rest.iter().map(|t| parse_usize(path, line_no, "SIZE", t)).collect::<Result<Vec<_>, _>>()?;
                if let Some(bad) = v.iter().find(|s| ![1, 2, 4, 8].contains(*s)) {
                    return Err(malformed(path, line_no, format!("SIZE {bad} is not 1, 2, 4 or 8")));
                }
                sizes = Some(v);
            }
            "TYPE" => {
                let v = rest
                    .iter()
                    .map(|t| match *t {
                        "F" | "f" => Ok(Kind::Float),
                        "I" | "i" => Ok(Kind::Int),
                        "U" | "u" => Ok(Kind::Uint),
                        other => Err(malformed(path, line_no, format!("TYPE `{other}` is not F, I or U"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                types = Some(v);
            }
            "COUNT" => {
                counts =
                    Some(rest.iter().map(|t| parse_usize(path, line_no, "COUNT", t)).collect::<Result<Vec<_>, _>>()?)
            }
            "WIDTH" => width = Some(single("WIDTH")?),
            "HEIGHT" => height = Some(single("HEIGHT")?),
            "POINTS" => points = Some(single("POINTS")?),
            "DATA" => {
                let enc = match rest.as_slice() {
                    ["ascii"] => Encoding::Ascii,
                    ["binary"] => Encoding::Binary,
                    ["binary_compressed"] => {
                        return Err(DatasetError::Unsupported {
                            path: path.to_path_buf(),
                            reason: "PCD `DATA binary_compressed` is not supported; convert the file to binary or \
                                     ascii PCD (e.g. `pcl_convert_pcd_ascii_binary in.pcd out.pcd 1`)"
                                .into(),
                        });
                    }
                    _ => {
                        return Err(malformed(
                            path,
                            line_no,
                            format!("DATA `{}` is not ascii, binary or binary_compressed", rest.join(" ")),
                        ));
                    }
                };
                break (enc, next);
            }
            other => return Err(malformed(path, line_no, format!("unknown header keyword `{other}`"))),
        }
    };
    let data_line = line_no + 1;
    let field_err =
        |reason: String| DatasetError::Malformed { path: path.to_path_buf(), location: "header".into(), reason };
    let names = names.ok_or_else(|| field_err("no FIELDS line".into()))?;
    let sizes = sizes.ok_or_else(|| field_err("no SIZE line".into()))?;
    let types = types.ok_or_else(|| field_err("no TYPE line".into()))?;
    let counts = counts.unwrap_or_else(|| vec![1; names.len()]);
    if sizes.len() != names.len() || types.len() != names.len() || counts.len() != names.len() {
        return Err(field_err(format!(
            "FIELDS has {} entries but SIZE has {}, TYPE {} and COUNT {}",
            names.len(),
            sizes.len(),
            types.len(),
            counts.len()
        )));
    }
    let wh = match (width, height) {
        (Some(w), h) => Some(w.checked_mul(h.unwrap_or(1)).ok_or_else(|| field_err("WIDTH*HEIGHT overflows".into()))?),
        (None, _) => None,
    };
    let points = match (points, wh) {
        (Some(p), Some(wh)) if p != wh => {
            return Err(field_err(format!("POINTS {p} disagrees with WIDTH*HEIGHT {wh}")));
        }
        (Some(p), _) => p,
        (None, Some(wh)) => wh,
        (None, None) => return Err(field_err("neither POINTS nor WIDTH is given".into())),
    };
    if points == 0 {
        return Err(field_err("the cloud has no points (POINTS 0)".into()));
    }
    let fields = names
        .into_iter()
        .zip(sizes)
        .zip(types)
        .zip(counts)
        .map(|(((name, size), kind), count)| Field { name, size, kind, count })
        .collect();
    Ok(Header { fields, points, encoding, data_start, data_line })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// A PCD v0.7 file exactly like the ModelNet10 copy's (`FIELDS x y z`, binary float32).
    pub(crate) fn binary_pcd(points: &[[f32; 3]]) -> Vec<u8> {
        let n = points.len();
        let mut out = format!(
            "# .PCD v0.7 - Point Cloud Data file format\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\nTYPE F F F\n\
             COUNT 1 1 1\nWIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA binary\n"
        )
        .into_bytes();
        for p in points {
            for v in p {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out
    }

    fn p() -> PathBuf {
        PathBuf::from("cloud.pcd")
    }

    fn malformed_at(e: DatasetError) -> (String, String) {
        match e {
            DatasetError::Malformed { location, reason, .. } => (location, reason),
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn binary_round_trip() {
        let pts = [[1.0, 2.0, 3.0], [-4.5, 0.25, 1e-3], [7.0, 8.0, 9.0]];
        let got = parse_pcd(&binary_pcd(&pts), &p()).unwrap();
        assert_eq!(got, pts.iter().flatten().copied().collect::<Vec<_>>());
    }

    #[test]
    fn ascii_with_extra_fields_and_nan_points() {
        let text = "VERSION .7\nFIELDS intensity x y z rgb\nSIZE 2 4 4 8 4\nTYPE U F F F F\nCOUNT 1 1 1 1 1\n\
                    WIDTH 2\nHEIGHT 2\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 4\nDATA ascii\n\
                    7 1.5 2 3 0.1\n8 nan nan nan 0\n\n9 -1 -2e1 3.25 4\n1 0 0 0 0\n";
        let got = parse_pcd(text.as_bytes(), &p()).unwrap();
        assert_eq!(got, vec![1.5, 2.0, 3.0, -1.0, -20.0, 3.25, 0.0, 0.0, 0.0], "NaN point dropped");
    }

    #[test]
    fn binary_with_mixed_field_sizes() {
        // FIELDS a x y z with a: 2 x u16, x: f32, y: f64, z: f32
        let mut bytes =
            b"FIELDS a x y z\nSIZE 2 4 8 4\nTYPE U F F F\nCOUNT 2 1 1 1\nWIDTH 2\nHEIGHT 1\nPOINTS 2\nDATA binary\n"
                .to_vec();
        for (i, (x, y, z)) in [(1.0f32, 2.0f64, 3.0f32), (4.0, 5.0, 6.0)].into_iter().enumerate() {
            bytes.extend_from_slice(&(i as u16).to_le_bytes());
            bytes.extend_from_slice(&9u16.to_le_bytes());
            bytes.extend_from_slice(&x.to_le_bytes());
            bytes.extend_from_slice(&y.to_le_bytes());
            bytes.extend_from_slice(&z.to_le_bytes());
        }
        assert_eq!(parse_pcd(&bytes, &p()).unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn truncated_binary_is_corrupt_with_offset() {
        let bytes = binary_pcd(&[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]);
        let header_len = bytes.len() - 36;
        let cut = &bytes[..bytes.len() - 5];
        match parse_pcd(cut, &p()).unwrap_err() {
            DatasetError::Corrupt { path, offset, reason } => {
                assert_eq!(path, p());
                assert_eq!(offset, (header_len + 24) as u64, "start of the incomplete third point");
                assert!(reason.contains("3 points") && reason.contains("31 bytes"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn header_problems_name_the_line() {
        let ok = "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nPOINTS 1\nDATA ascii\n1 2 3\n";
        assert_eq!(parse_pcd(ok.as_bytes(), &p()).unwrap(), vec![1.0, 2.0, 3.0], "COUNT and HEIGHT optional");
        let cases: &[(&str, &str, &str)] = &[
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nPOINTS 1\n", "line 5", "without a DATA line"),
            ("FIELDS x y z\nSIZE 4 4 3\n", "line 2", "SIZE 3"),
            ("FIELDS x y z\nTYPE F F Q\n", "line 2", "TYPE `Q`"),
            ("FIELDS x y z\nWIDTH -1\n", "line 2", "WIDTH"),
            ("FIELDS x y z\nBOGUS 1\n", "line 2", "unknown header keyword `BOGUS`"),
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 2\nPOINTS 2\nDATA ascii\n1 2 3\n", "line 8", "has 1"),
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nPOINTS 1\nDATA ascii\n1 2\n", "line 7", "expected 3"),
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nPOINTS 1\nDATA ascii\n1 b 3\n", "line 7", "`b`"),
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nPOINTS 1\nDATA lzf\n", "line 6", "DATA `lzf`"),
            ("FIELDS x y\nSIZE 4 4\nTYPE F F\nWIDTH 1\nPOINTS 1\nDATA ascii\n1 2\n", "FIELDS", "x, y and z"),
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F I\nWIDTH 1\nPOINTS 1\nDATA ascii\n1 2 3\n", "field z", "TYPE F"),
            ("FIELDS x y z\nSIZE 4 4\nTYPE F F F\nWIDTH 1\nPOINTS 1\nDATA ascii\n1 2 3\n", "header", "SIZE has 2"),
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 3\nPOINTS 2\nDATA ascii\n", "header", "disagrees"),
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 0\nDATA ascii\n", "header", "no points"),
            ("FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nPOINTS 1\nDATA ascii\nnan 0 0\n", "data", "no valid point"),
        ];
        for (text, loc, needle) in cases {
            let (location, reason) = malformed_at(parse_pcd(text.as_bytes(), &p()).unwrap_err());
            assert!(location.contains(loc), "{text:?}: location {location}, reason {reason}");
            assert!(reason.contains(needle), "{text:?}: {reason}");
        }
        let e = parse_pcd(&[0xff, 0xfe, 0x00, b'\n'], &p()).unwrap_err();
        assert!(e.to_string().contains("cloud.pcd") && e.to_string().contains("line 1"), "{e}");
    }

    /// Header counts come from the file. Found by the loader property tests (which inflate
    /// header numbers): a huge WIDTH without a POINTS line aborted the process on an allocation
    /// of terabytes before the data was looked at (or panicked on `points * 3` overflowing);
    /// a huge WIDTH * HEIGHT did the same in binary files, and a huge COUNT overflowed the
    /// record size.
    #[test]
    fn huge_header_counts_are_errors_not_allocations() {
        let cases: &[(&[u8], &str)] = &[
            (b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 99999999999\nDATA ascii\n1 2 3\n", "has 1"),
            (b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 9999999999999999999\nDATA ascii\n1 2 3\n", "has 1"),
            (b"FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 999999\nHEIGHT 99999999\nDATA binary\n\0\0\0\0", "truncated"),
            (
                b"FIELDS x y z i\nSIZE 4 4 4 2\nTYPE F F F U\nCOUNT 1 1 1 9999999999999999991\nWIDTH 1\nDATA ascii\n1 2 3 4\n",
                "too large",
            ),
        ];
        for (bytes, needle) in cases {
            let e = parse_pcd(bytes, &p()).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("cloud.pcd") && msg.contains(needle), "{needle}: {msg}");
        }
    }

    #[test]
    fn binary_compressed_is_unsupported() {
        let text = "FIELDS x y z\nSIZE 4 4 4\nTYPE F F F\nWIDTH 1\nPOINTS 1\nDATA binary_compressed\n\0\0\0";
        let e = parse_pcd(text.as_bytes(), &p()).unwrap_err();
        assert!(matches!(e, DatasetError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("cloud.pcd") && e.to_string().contains("binary_compressed"), "{e}");
    }

    #[test]
    fn missing_file_is_io_error_naming_it() {
        let e = read_pcd(Path::new("/nonexistent/dir/a.pcd")).unwrap_err();
        assert!(matches!(e, DatasetError::Io { .. }));
        assert!(e.to_string().contains("/nonexistent/dir/a.pcd"));
    }
}
