//! NumPy arrays: `.npy` files and the `.npz` archives that hold them.
//!
//! # `.npy` (format versions 1.0, 2.0 and 3.0)
//! The six bytes `\x93NUMPY`, the major and minor version bytes, the header length (`u16`
//! little-endian in version 1, `u32` in versions 2 and 3), then the header: a Python dict
//! literal such as `{'descr': '<f4', 'fortran_order': False, 'shape': (10, 2, 128, 128), }`
//! padded with spaces and ending in `\n` (latin-1 text in versions 1 and 2, UTF-8 in version 3),
//! then the raw elements. The header must hold exactly the keys `descr`, `fortran_order` and
//! `shape`, as NumPy requires.
//!
//! Readable element types: `bool`, `int8` … `int64`, `uint8` … `uint64`, `float32` and
//! `float64`, little-endian (`<`, or `|` for one-byte types), in C (row-major) order. Big-endian
//! arrays, Fortran-order arrays, `float16`, complex, structured and object arrays are rejected
//! with a [`DatasetError::Unsupported`] error that says how to re-save the array. The data must
//! have exactly the length the header announces.
//!
//! # `.npz`
//! A ZIP archive with one `<name>.npy` member per array (`np.savez(f, frames=a)` writes
//! `frames.npy`). `np.savez` stores members uncompressed, `np.savez_compressed` DEFLATEs them;
//! both are read (through the `zip` crate with flate2's pure-Rust inflater), including the
//! ZIP64 extra fields that NumPy forces on every member and data descriptors. CRC-32 checksums
//! are verified.

use std::io::Read;
use std::path::Path;

use crate::error::DatasetError;

/// Element type of a `.npy` array.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    /// `|b1`, one byte, 0 or 1.
    Bool,
    /// `|i1`.
    I8,
    /// `|u1`.
    U8,
    /// `<i2`.
    I16,
    /// `<u2`.
    U16,
    /// `<i4`.
    I32,
    /// `<u4`.
    U32,
    /// `<i8`.
    I64,
    /// `<u8`.
    U64,
    /// `<f4`.
    F32,
    /// `<f8`.
    F64,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::Bool | DType::I8 | DType::U8 => 1,
            DType::I16 | DType::U16 => 2,
            DType::I32 | DType::U32 | DType::F32 => 4,
            DType::I64 | DType::U64 | DType::F64 => 8,
        }
    }

    /// NumPy's name of the type (`"float32"`, `"uint8"`, …).
    pub fn name(self) -> &'static str {
        match self {
            DType::Bool => "bool",
            DType::I8 => "int8",
            DType::U8 => "uint8",
            DType::I16 => "int16",
            DType::U16 => "uint16",
            DType::I32 => "int32",
            DType::U32 => "uint32",
            DType::I64 => "int64",
            DType::U64 => "uint64",
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// True for `float32` and `float64`.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F32 | DType::F64)
    }
}

/// A parsed `.npy` array: its header and a view of its raw little-endian elements.
#[derive(Clone, Debug)]
pub struct Npy<'a> {
    /// Format version `(major, minor)`.
    pub version: (u8, u8),
    /// Element type.
    pub dtype: DType,
    /// Shape (C order); empty for a scalar.
    pub shape: Vec<usize>,
    /// Byte offset of the first element in the `.npy` bytes.
    pub data_offset: usize,
    /// The raw elements, `shape.iter().product() * dtype.size()` bytes.
    pub data: &'a [u8],
}

impl Npy<'_> {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// True when the array has no element.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// Converts every element to `f32` into `out`, which must hold [`Npy::len`] values
    /// (integers and `float64` are rounded to the nearest `f32`; `bool` gives 0 or 1).
    ///
    /// # Panics
    /// If `out.len() != self.len()`.
    pub fn read_f32_into(&self, out: &mut [f32]) {
        assert_eq!(out.len(), self.len(), "output length must equal the element count");
        macro_rules! convert {
            ($t:ty, $n:expr) => {
                for (o, b) in out.iter_mut().zip(self.data.chunks_exact($n)) {
                    *o = <$t>::from_le_bytes(b.try_into().expect("chunk of the element size")) as f32;
                }
            };
        }
        match self.dtype {
            DType::Bool => {
                for (o, &b) in out.iter_mut().zip(self.data) {
                    *o = if b != 0 { 1.0 } else { 0.0 };
                }
            }
            DType::I8 => convert!(i8, 1),
            DType::U8 => convert!(u8, 1),
            DType::I16 => convert!(i16, 2),
            DType::U16 => convert!(u16, 2),
            DType::I32 => convert!(i32, 4),
            DType::U32 => convert!(u32, 4),
            DType::I64 => convert!(i64, 8),
            DType::U64 => convert!(u64, 8),
            DType::F32 => convert!(f32, 4),
            DType::F64 => convert!(f64, 8),
        }
    }

    /// All elements as `f32` (see [`Npy::read_f32_into`]).
    pub fn to_f32(&self) -> Vec<f32> {
        let mut out = vec![0f32; self.len()];
        self.read_f32_into(&mut out);
        out
    }
}

/// Describes where in a file a `.npy` array is: the whole file, or a member of an `.npz`.
fn place(member: Option<&str>, what: &str) -> String {
    match member {
        Some(m) => format!("member `{m}`, {what}"),
        None => what.to_string(),
    }
}

/// Parses a `.npy` array held in `bytes` (the whole `.npy` file, or an `.npz` member).
///
/// `path` and `member` (the `.npz` member name, if any) only label errors: a wrong magic
/// number or header is [`DatasetError::Malformed`], a data length that disagrees with the
/// header [`DatasetError::Corrupt`] (offset within the `.npy` bytes), and an array in a layout
/// this reader does not handle (big-endian, Fortran order, other element types, format
/// version 4+) [`DatasetError::Unsupported`].
pub fn parse<'a>(bytes: &'a [u8], path: &Path, member: Option<&str>) -> Result<Npy<'a>, DatasetError> {
    let malformed = |what: &str, reason: String| DatasetError::Malformed {
        path: path.to_path_buf(),
        location: place(member, what),
        reason,
    };
    let unsupported = |reason: String| DatasetError::Unsupported {
        path: path.to_path_buf(),
        reason: match member {
            Some(m) => format!("member `{m}`: {reason}"),
            None => reason,
        },
    };
    let corrupt = |offset: usize, reason: String| DatasetError::Corrupt {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: match member {
            Some(m) => format!("member `{m}`: {reason}"),
            None => reason,
        },
    };
    if bytes.len() < 8 || &bytes[..6] != b"\x93NUMPY" {
        return Err(malformed("magic", "not a NumPy .npy array (it does not start with \\x93NUMPY)".into()));
    }
    let version = (bytes[6], bytes[7]);
    let (len_bytes, text_utf8) = match version.0 {
        1 => (2usize, false),
        2 => (4, false),
        3 => (4, true),
        v => {
            return Err(unsupported(format!(
                ".npy format version {v}.{} (versions 1.0, 2.0 and 3.0 are supported)",
                version.1
            )));
        }
    };
    let start = 8 + len_bytes;
    if bytes.len() < start {
        return Err(corrupt(bytes.len(), "truncated: the header length is missing".into()));
    }
    let header_len = if len_bytes == 2 {
        usize::from(u16::from_le_bytes([bytes[8], bytes[9]]))
    } else {
        u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize
    };
    let data_offset = start
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len())
        .ok_or_else(|| corrupt(bytes.len(), format!("truncated: the header announces {header_len} bytes")))?;
    let raw = &bytes[start..data_offset];
    let text: String = if text_utf8 {
        std::str::from_utf8(raw).map_err(|e| malformed("header", format!("not UTF-8 ({e})")))?.to_string()
    } else {
        raw.iter().map(|&b| char::from(b)).collect()
    };
    let header = parse_header(&text).map_err(|(at, reason)| malformed(&format!("header at character {at}"), reason))?;

    let dtype = match &header.descr {
        Literal::Str(d) => parse_descr(d).map_err(|e| match e {
            DescrError::Unsupported(r) => unsupported(r),
            DescrError::Malformed(r) => malformed("header field descr", r),
        })?,
        Literal::List(_) => {
            return Err(unsupported("structured (record) arrays are not supported; save a plain numeric array".into()));
        }
        other => return Err(malformed("header field descr", format!("expected a string, found {}", other.kind()))),
    };
    match header.fortran_order {
        Literal::Bool(false) => {}
        Literal::Bool(true) => {
            return Err(unsupported(
                "the array is in Fortran (column-major) order; re-save it in C order, e.g. \
                 `np.save(f, np.ascontiguousarray(a))`"
                    .into(),
            ));
        }
        other => {
            return Err(malformed(
                "header field fortran_order",
                format!("expected True or False, found {}", other.kind()),
            ));
        }
    }
    let shape = match &header.shape {
        Literal::Tuple(items) => items
            .iter()
            .map(|d| match d {
                Literal::Int(v) => usize::try_from(*v).map_err(|_| format!("dimension {v} is too large")),
                other => Err(format!("expected integer dimensions, found {}", other.kind())),
            })
            .collect::<Result<Vec<usize>, String>>()
            .map_err(|r| malformed("header field shape", r))?,
        other => return Err(malformed("header field shape", format!("expected a tuple, found {}", other.kind()))),
    };
    let need = shape
        .iter()
        .try_fold(dtype.size(), |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| malformed("header field shape", format!("shape {shape:?} is too large")))?;
    let have = bytes.len() - data_offset;
    if have < need {
        return Err(corrupt(
            bytes.len(),
            format!("truncated: shape {} of {} needs {need} data bytes, found {have}", shape_str(&shape), dtype.name()),
        ));
    }
    if have > need {
        return Err(corrupt(
            data_offset + need,
            format!("{} bytes after the data of shape {} of {}", have - need, shape_str(&shape), dtype.name()),
        ));
    }
    Ok(Npy { version, dtype, shape, data_offset, data: &bytes[data_offset..] })
}

/// A shape written like NumPy prints it: `(10, 2, 128, 128)`, `(5,)`, `()`.
pub fn shape_str(shape: &[usize]) -> String {
    match shape {
        [d] => format!("({d},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    }
}

enum DescrError {
    Unsupported(String),
    Malformed(String),
}

/// Element type of a NumPy type string such as `<f4` or `|u1`.
fn parse_descr(d: &str) -> Result<DType, DescrError> {
    let mut chars = d.chars();
    let order = chars.next().unwrap_or(' ');
    let code = chars.as_str();
    let dtype = match code {
        "b1" => DType::Bool,
        "i1" => DType::I8,
        "u1" => DType::U8,
        "i2" => DType::I16,
        "u2" => DType::U16,
        "i4" => DType::I32,
        "u4" => DType::U32,
        "i8" => DType::I64,
        "u8" => DType::U64,
        "f4" => DType::F32,
        "f8" => DType::F64,
        _ => {
            return Err(if matches!(order, '<' | '>' | '|' | '=') {
                DescrError::Unsupported(format!(
                    "element type `{d}` is not supported (bool, int8-int64, uint8-uint64, float32 and float64 \
                     are); convert it, e.g. `a.astype(np.float32)`"
                ))
            } else {
                DescrError::Malformed(format!("`{d}` is not a NumPy type string such as `<f4`"))
            });
        }
    };
    match order {
        '<' => Ok(dtype),
        '|' | '>' | '=' if dtype.size() == 1 => Ok(dtype),
        '>' => Err(DescrError::Unsupported(format!(
            "the array is big-endian (`{d}`); only little-endian arrays are supported: re-save it with \
             `a.astype(a.dtype.newbyteorder('<'))`"
        ))),
        '=' => Err(DescrError::Unsupported(format!(
            "native byte order `{d}` is ambiguous in a file; re-save the array with NumPy (which writes `<` or `>`)"
        ))),
        _ => Err(DescrError::Malformed(format!("`{d}` has no valid byte-order character (`<`, `>` or `|`)"))),
    }
}

/// A Python literal as it appears in a `.npy` header.
#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Str(String),
    Int(u64),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    List(Vec<Literal>),
}

impl Literal {
    fn kind(&self) -> &'static str {
        match self {
            Literal::Str(_) => "a string",
            Literal::Int(_) => "an integer",
            Literal::Bool(_) => "a boolean",
            Literal::None => "None",
            Literal::Tuple(_) => "a tuple",
            Literal::List(_) => "a list",
        }
    }
}

struct Header {
    descr: Literal,
    fortran_order: Literal,
    shape: Literal,
}

/// Position (in characters) and description of a header syntax error.
type SyntaxError = (usize, String);

struct LiteralParser {
    chars: Vec<char>,
    pos: usize,
}

impl LiteralParser {
    fn err<T>(&self, reason: impl Into<String>) -> Result<T, SyntaxError> {
        Err((self.pos, reason.into()))
    }

    fn skip_ws(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).copied()
    }

    fn expect(&mut self, c: char) -> Result<(), SyntaxError> {
        match self.peek() {
            Some(x) if x == c => {
                self.pos += 1;
                Ok(())
            }
            Some(x) => self.err(format!("expected `{c}`, found `{x}`")),
            None => self.err(format!("expected `{c}`, found the end of the header")),
        }
    }

    fn string(&mut self, quote: char) -> Result<String, SyntaxError> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            let Some(&c) = self.chars.get(self.pos) else {
                return self.err("unterminated string");
            };
            self.pos += 1;
            match c {
                _ if c == quote => return Ok(out),
                '\\' => {
                    let Some(&e) = self.chars.get(self.pos) else {
                        return self.err("unterminated string");
                    };
                    self.pos += 1;
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                }
                '\n' => return self.err("line break inside a string"),
                _ => out.push(c),
            }
        }
    }

    /// A comma-separated sequence up to `close`; returns the items and whether a comma
    /// followed the last one.
    fn sequence(&mut self, close: char) -> Result<(Vec<Literal>, bool), SyntaxError> {
        self.pos += 1;
        let mut items = Vec::new();
        let mut trailing = false;
        loop {
            if self.peek() == Some(close) {
                self.pos += 1;
                return Ok((items, trailing));
            }
            items.push(self.value()?);
            trailing = false;
            match self.peek() {
                Some(',') => {
                    self.pos += 1;
                    trailing = true;
                }
                Some(c) if c == close => {}
                Some(c) => return self.err(format!("expected `,` or `{close}`, found `{c}`")),
                None => return self.err(format!("expected `{close}`, found the end of the header")),
            }
        }
    }

    fn value(&mut self) -> Result<Literal, SyntaxError> {
        match self.peek() {
            Some(q @ ('\'' | '"')) => Ok(Literal::Str(self.string(q)?)),
            Some('(') => {
                let (items, trailing) = self.sequence(')')?;
                // `(x)` is a parenthesised value, `(x,)` a one-element tuple.
                if items.len() == 1 && !trailing {
                    return Ok(items.into_iter().next().unwrap_or(Literal::None));
                }
                Ok(Literal::Tuple(items))
            }
            Some('[') => Ok(Literal::List(self.sequence(']')?.0)),
            Some(c) if c.is_ascii_digit() => {
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
                let digits: String = self.chars[start..self.pos].iter().collect();
                // Python 2 long suffix, as in headers written by old NumPy versions.
                if self.chars.get(self.pos).is_some_and(|&c| c == 'L' || c == 'l') {
                    self.pos += 1;
                }
                match digits.parse::<u64>() {
                    Ok(v) => Ok(Literal::Int(v)),
                    Err(_) => {
                        self.pos = start;
                        self.err(format!("integer {digits} is too large"))
                    }
                }
            }
            Some(c) if c.is_alphabetic() => {
                let start = self.pos;
                while self.chars.get(self.pos).is_some_and(|c| c.is_alphanumeric() || *c == '_') {
                    self.pos += 1;
                }
                let word: String = self.chars[start..self.pos].iter().collect();
                match word.as_str() {
                    "True" => Ok(Literal::Bool(true)),
                    "False" => Ok(Literal::Bool(false)),
                    "None" => Ok(Literal::None),
                    _ => {
                        self.pos = start;
                        self.err(format!("unexpected name `{word}`"))
                    }
                }
            }
            Some(c) => self.err(format!("unexpected `{c}`")),
            None => self.err("unexpected end of the header"),
        }
    }
}

/// Parses the dict literal of a `.npy` header.
fn parse_header(text: &str) -> Result<Header, SyntaxError> {
    let mut p = LiteralParser { chars: text.chars().collect(), pos: 0 };
    if p.peek() != Some('{') {
        return p.err("the header is not a dict literal (`{...}`)");
    }
    p.pos += 1;
    let (mut descr, mut fortran_order, mut shape) = (None, None, None);
    loop {
        match p.peek() {
            Some('}') => {
                p.pos += 1;
                break;
            }
            Some(q @ ('\'' | '"')) => {
                let key_at = p.pos;
                let key = p.string(q)?;
                p.expect(':')?;
                let value = p.value()?;
                let slot = match key.as_str() {
                    "descr" => &mut descr,
                    "fortran_order" => &mut fortran_order,
                    "shape" => &mut shape,
                    _ => {
                        return Err((key_at, format!("unexpected key `{key}` (expected descr, fortran_order, shape)")));
                    }
                };
                if slot.replace(value).is_some() {
                    return Err((key_at, format!("key `{key}` appears twice")));
                }
                match p.peek() {
                    Some(',') => p.pos += 1,
                    Some('}') => {}
                    Some(c) => return p.err(format!("expected `,` or `}}`, found `{c}`")),
                    None => return p.err("expected `}`, found the end of the header"),
                }
            }
            Some(c) => return p.err(format!("expected a quoted key or `}}`, found `{c}`")),
            None => return p.err("expected `}`, found the end of the header"),
        }
    }
    if let Some(c) = p.peek() {
        return p.err(format!("unexpected `{c}` after the dict"));
    }
    let missing = |k: &str| (0, format!("the header has no `{k}` key (it needs descr, fortran_order and shape)"));
    Ok(Header {
        descr: descr.ok_or_else(|| missing("descr"))?,
        fortran_order: fortran_order.ok_or_else(|| missing("fortran_order"))?,
        shape: shape.ok_or_else(|| missing("shape"))?,
    })
}

fn zip_error(path: &Path, e: zip::result::ZipError) -> DatasetError {
    use zip::result::ZipError;
    match e {
        ZipError::Io(source) => DatasetError::Io { path: path.to_path_buf(), source },
        ZipError::CompressionMethodNotSupported(m) => DatasetError::Unsupported {
            path: path.to_path_buf(),
            reason: format!(
                "the archive uses ZIP compression method {m}; only stored and DEFLATE members (what np.savez and \
                 np.savez_compressed write) are supported"
            ),
        },
        ZipError::UnsupportedArchive(reason) => {
            DatasetError::Unsupported { path: path.to_path_buf(), reason: format!("unsupported ZIP archive: {reason}") }
        }
        other => DatasetError::Malformed {
            path: path.to_path_buf(),
            location: "ZIP structure".into(),
            reason: format!("not a valid .npz (ZIP) archive: {other}"),
        },
    }
}

/// Reads the uncompressed bytes of member `member` (e.g. `"frames.npy"`) of the `.npz`
/// archive at `path`.
///
/// A file that is not a ZIP archive is [`DatasetError::Malformed`]; a missing member is
/// [`DatasetError::Malformed`] naming the members present; corrupt compressed data or a CRC
/// mismatch is [`DatasetError::Corrupt`].
pub fn read_npz_member(path: &Path, member: &str) -> Result<Vec<u8>, DatasetError> {
    let file = std::fs::File::open(path).map_err(|source| DatasetError::Io { path: path.to_path_buf(), source })?;
    let file_len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(|e| zip_error(path, e))?;
    let index = match archive.index_for_name(member) {
        Some(i) => i,
        None => {
            let mut names: Vec<String> = archive.file_names().filter_map(|n| n.ok().map(|n| n.into_owned())).collect();
            names.sort();
            let present = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            return Err(DatasetError::Malformed {
                path: path.to_path_buf(),
                location: "ZIP directory".into(),
                reason: format!("no member `{member}` (members: {present})"),
            });
        }
    };
    let mut entry = archive.by_index(index).map_err(|e| zip_error(path, e))?;
    let declared = entry.size();
    // `declared` comes from the ZIP directory: reserve no more than the archive's bytes can
    // inflate to (DEFLATE expands at most 1032:1)
    let bound = file_len.saturating_mul(1032).min(1 << 28);
    let mut out = Vec::with_capacity(usize::try_from(declared.min(bound)).unwrap_or(0));
    if let Err(e) = entry.read_to_end(&mut out) {
        use std::io::ErrorKind;
        if e.kind() == ErrorKind::Unsupported {
            return Err(DatasetError::Unsupported {
                path: path.to_path_buf(),
                reason: format!(
                    "member `{member}`: {e}; only stored and DEFLATE members (what np.savez and np.savez_compressed \
                     write) are supported"
                ),
            });
        }
        // flate2 reports a corrupt DEFLATE stream as InvalidInput
        if matches!(
            e.kind(),
            ErrorKind::InvalidData | ErrorKind::InvalidInput | ErrorKind::UnexpectedEof | ErrorKind::Other
        ) {
            return Err(DatasetError::Corrupt {
                path: path.to_path_buf(),
                offset: out.len() as u64,
                reason: format!("member `{member}`: cannot decompress: {e}"),
            });
        }
        return Err(DatasetError::Io { path: path.to_path_buf(), source: e });
    }
    if out.len() as u64 != declared {
        return Err(DatasetError::Corrupt {
            path: path.to_path_buf(),
            offset: out.len() as u64,
            reason: format!("member `{member}`: {} bytes decompressed, the ZIP directory says {declared}", out.len()),
        });
    }
    Ok(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write as _;

    /// The bytes NumPy's `np.save` writes for an array with type string `descr` (e.g. `<f4`),
    /// `shape` and raw little-endian elements `data`: format version `version`; the header
    /// dict, the spare spaces NumPy >= 1.23 adds for in-place growth (21 minus the digits of
    /// the first dimension), padding with spaces to a multiple of 64 bytes and a final `\n`,
    /// exactly like `numpy.lib.format.write_array`.
    pub(crate) fn npy_bytes(descr: &str, fortran: bool, shape: &[usize], data: &[u8], version: u8) -> Vec<u8> {
        let order = if fortran { "True" } else { "False" };
        let dict = format!("{{'descr': '{descr}', 'fortran_order': {order}, 'shape': {}, }}", shape_str(shape));
        let prefix = if version == 1 { 10 } else { 12 };
        let mut header = dict.into_bytes();
        if let Some(d) = shape.first() {
            header.extend(std::iter::repeat_n(b' ', 21 - d.to_string().len()));
        }
        let total = prefix + header.len() + 1;
        let pad = (64 - total % 64) % 64;
        header.extend(std::iter::repeat_n(b' ', pad));
        header.push(b'\n');
        let mut out = b"\x93NUMPY".to_vec();
        out.extend([version, 0]);
        if version == 1 {
            out.extend((header.len() as u16).to_le_bytes());
        } else {
            out.extend((header.len() as u32).to_le_bytes());
        }
        out.extend(header);
        out.extend_from_slice(data);
        out
    }

    /// Little-endian bytes of `f32` values.
    pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    /// How a member is stored in a test `.npz`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(crate) enum Member {
        /// `np.savez`: uncompressed (method 0).
        Stored,
        /// `np.savez_compressed`: raw DEFLATE (method 8).
        Deflated,
        /// DEFLATE written to a non-seekable stream: sizes and CRC in a ZIP64 data descriptor
        /// after the data (general-purpose flag bit 3), zeros in the local header.
        DeflatedStreamed,
    }

    /// A ZIP archive laid out as Python's `zipfile` writes it for `np.savez` /
    /// `np.savez_compressed` (`zipf.open(name, 'w', force_zip64=True)`): each local header
    /// needs version 4.5, has 0xFFFFFFFF in its 32-bit size fields and a ZIP64 extra field
    /// (id 1, the 64-bit uncompressed and compressed sizes); the central directory has the real
    /// 32-bit sizes and no extra field; then the end-of-central-directory record. Timestamps
    /// are 2024-01-01 00:00:00. For stored members the output is byte-identical to what
    /// `testdata/make_npz_fixtures.py` gets from Python's `zipfile` (checked by a test).
    pub(crate) fn zip_bytes(members: &[(&str, &[u8])], how: Member) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in members {
            let mut crc = flate2::Crc::new();
            crc.update(data);
            let crc = crc.sum();
            let (method, payload): (u16, Vec<u8>) = match how {
                Member::Stored => (0, data.to_vec()),
                Member::Deflated | Member::DeflatedStreamed => {
                    let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::new(6));
                    e.write_all(data).unwrap();
                    (8, e.finish().unwrap())
                }
            };
            let streamed = how == Member::DeflatedStreamed;
            let flags: u16 = if streamed { 0x08 } else { 0 };
            let (time, date) = (0u16, (44u16 << 9) | (1 << 5) | 1);
            let offset = out.len() as u32;
            let (h_crc, h_c, h_u) = if streamed { (0, 0, 0) } else { (crc, payload.len(), data.len()) };
            // local file header
            out.extend(0x0403_4b50u32.to_le_bytes());
            out.extend(45u16.to_le_bytes()); // version needed: 4.5 (ZIP64)
            out.extend(flags.to_le_bytes());
            out.extend(method.to_le_bytes());
            out.extend(time.to_le_bytes());
            out.extend(date.to_le_bytes());
            out.extend(h_crc.to_le_bytes());
            out.extend(u32::MAX.to_le_bytes()); // sizes in the ZIP64 extra field
            out.extend(u32::MAX.to_le_bytes());
            out.extend((name.len() as u16).to_le_bytes());
            out.extend(20u16.to_le_bytes()); // extra length: the ZIP64 field
            out.extend(name.as_bytes());
            out.extend(1u16.to_le_bytes());
            out.extend(16u16.to_le_bytes());
            out.extend((h_u as u64).to_le_bytes());
            out.extend((h_c as u64).to_le_bytes());
            out.extend(&payload);
            if streamed {
                out.extend(0x0807_4b50u32.to_le_bytes());
                out.extend(crc.to_le_bytes());
                out.extend((payload.len() as u64).to_le_bytes());
                out.extend((data.len() as u64).to_le_bytes());
            }
            // central directory entry
            central.extend(0x0201_4b50u32.to_le_bytes());
            central.extend(((3u16 << 8) | 45).to_le_bytes()); // made by: Unix, 4.5
            central.extend(45u16.to_le_bytes());
            central.extend(flags.to_le_bytes());
            central.extend(method.to_le_bytes());
            central.extend(time.to_le_bytes());
            central.extend(date.to_le_bytes());
            central.extend(crc.to_le_bytes());
            central.extend((payload.len() as u32).to_le_bytes());
            central.extend((data.len() as u32).to_le_bytes());
            central.extend((name.len() as u16).to_le_bytes());
            central.extend([0u8; 8]); // extra, comment, disk number, internal attributes
            central.extend((0o600u32 << 16).to_le_bytes()); // external attributes
            central.extend(offset.to_le_bytes());
            central.extend(name.as_bytes());
        }
        let cd_offset = out.len() as u32;
        let cd_len = central.len() as u32;
        out.extend(central);
        out.extend(0x0605_4b50u32.to_le_bytes());
        out.extend([0u8; 4]); // disk numbers
        out.extend((members.len() as u16).to_le_bytes());
        out.extend((members.len() as u16).to_le_bytes());
        out.extend(cd_len.to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn p() -> &'static Path {
        Path::new("a.npy")
    }

    #[test]
    fn header_is_padded_like_numpy() {
        let b = npy_bytes("<f4", false, &[2, 3], &[0; 24], 1);
        assert_eq!((b.len() - 24) % 64, 0);
        let text = std::str::from_utf8(&b[10..b.len() - 24]).unwrap();
        assert!(text.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"), "{text}");
        assert!(text.ends_with(" \n"));
        assert!(std::str::from_utf8(&npy_bytes("<i8", false, &[5], &[0; 40], 1)[10..]).unwrap().contains("(5,)"));
    }

    #[test]
    fn every_dtype_and_version_converts() {
        let values = [0.0f64, 1.0, 2.0, 100.0, 7.0];
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("|b1", values.iter().map(|&v| u8::from(v != 0.0)).collect()),
            ("|u1", values.iter().map(|&v| v as u8).collect()),
            ("|i1", values.iter().map(|&v| v as i8 as u8).collect()),
            ("<u2", values.iter().flat_map(|&v| (v as u16).to_le_bytes()).collect()),
            ("<i2", values.iter().flat_map(|&v| (v as i16).to_le_bytes()).collect()),
            ("<u4", values.iter().flat_map(|&v| (v as u32).to_le_bytes()).collect()),
            ("<i4", values.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect()),
            ("<u8", values.iter().flat_map(|&v| (v as u64).to_le_bytes()).collect()),
            ("<i8", values.iter().flat_map(|&v| (v as i64).to_le_bytes()).collect()),
            ("<f4", values.iter().flat_map(|&v| (v as f32).to_le_bytes()).collect()),
            ("<f8", values.iter().flat_map(|&v| v.to_le_bytes()).collect()),
        ];
        for (descr, data) in cases {
            for version in [1, 2, 3] {
                let b = npy_bytes(descr, false, &[5], &data, version);
                let a = parse(&b, p(), None).unwrap_or_else(|e| panic!("{descr} v{version}: {e}"));
                assert_eq!((a.version, a.shape.clone(), a.len()), ((version, 0), vec![5], 5));
                let expect: Vec<f32> =
                    if descr == "|b1" { vec![0.0, 1.0, 1.0, 1.0, 1.0] } else { values.map(|v| v as f32).to_vec() };
                assert_eq!(a.to_f32(), expect, "{descr}");
            }
        }
        // negative integers and fractional floats
        let b = npy_bytes("<i2", false, &[2], &[(-3i16).to_le_bytes(), 300i16.to_le_bytes()].concat(), 1);
        assert_eq!(parse(&b, p(), None).unwrap().to_f32(), vec![-3.0, 300.0]);
        let b = npy_bytes("<f8", false, &[1, 1], &0.25f64.to_le_bytes(), 1);
        assert_eq!(parse(&b, p(), None).unwrap().to_f32(), vec![0.25]);
        // a scalar and an empty array
        let b = npy_bytes("<f4", false, &[], &1.5f32.to_le_bytes(), 1);
        let a = parse(&b, p(), None).unwrap();
        assert_eq!((a.shape.clone(), a.to_f32()), (vec![], vec![1.5]));
        let b = npy_bytes("<f4", false, &[0, 4], &[], 1);
        assert!(parse(&b, p(), None).unwrap().is_empty());
    }

    #[test]
    fn header_variants_are_parsed() {
        // double quotes, other key order, no trailing comma, Python 2 long dimensions
        for dict in [
            "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}",
            "{'descr':'<f4','fortran_order':False,'shape':(2L,)}",
            "{ 'descr' : '<f4' , 'fortran_order' : False , 'shape' : ( 2 , ) , }   \n",
        ] {
            let mut b = b"\x93NUMPY\x01\x00".to_vec();
            b.extend((dict.len() as u16).to_le_bytes());
            b.extend(dict.as_bytes());
            b.extend(f32_bytes(&[1.0, 2.0]));
            assert_eq!(parse(&b, p(), None).unwrap_or_else(|e| panic!("{dict}: {e}")).to_f32(), vec![1.0, 2.0]);
        }
    }

    fn raw_npy(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut b = b"\x93NUMPY\x01\x00".to_vec();
        b.extend((dict.len() as u16).to_le_bytes());
        b.extend(dict.as_bytes());
        b.extend(data);
        b
    }

    #[test]
    fn bad_arrays_are_clear_errors() {
        let four = f32_bytes(&[1.0; 4]);
        let unsupported = |b: &[u8], needle: &str| {
            let e = parse(b, p(), Some("frames.npy")).unwrap_err();
            assert!(matches!(e, DatasetError::Unsupported { .. }), "{needle}: {e}");
            let msg = e.to_string();
            assert!(msg.contains(needle) && msg.contains("a.npy") && msg.contains("frames.npy"), "{msg}");
        };
        unsupported(&npy_bytes("<f4", true, &[2, 2], &four, 1), "Fortran");
        unsupported(&npy_bytes(">f4", false, &[2, 2], &four, 1), "big-endian");
        unsupported(&npy_bytes(">i8", false, &[2], &four, 1), "big-endian");
        unsupported(&npy_bytes("<f2", false, &[4], &four[..8], 1), "`<f2`");
        unsupported(&npy_bytes("<c8", false, &[2], &four, 1), "`<c8`");
        unsupported(&raw_npy("{'descr': [('x', '<f4')], 'fortran_order': False, 'shape': (4,)}", &four), "structured");
        let mut v4 = npy_bytes("<f4", false, &[4], &four, 2);
        v4[6] = 4;
        unsupported(&v4, "version 4.0");
        // a one-byte type with `>` or `|` is fine
        assert_eq!(parse(&npy_bytes(">u1", false, &[2], &[3, 4], 1), p(), None).unwrap().to_f32(), vec![3.0, 4.0]);

        let malformed = |b: &[u8], needle: &str| {
            let e = parse(b, p(), None).unwrap_err();
            assert!(matches!(e, DatasetError::Malformed { .. }), "{needle}: {e}");
            assert!(e.to_string().contains(needle) && e.to_string().contains("a.npy"), "{needle}: {e}");
        };
        malformed(b"PK\x03\x04 not numpy", "\\x93NUMPY");
        malformed(&raw_npy("{'descr': '<f4', 'fortran_order': False}", &four), "no `shape` key");
        malformed(&raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,), 'x': 1}", &four), "unexpected key");
        malformed(&raw_npy("{'descr': '<f4', 'fortran_order': 0, 'shape': (4,)}", &four), "True or False");
        malformed(&raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': [4]}", &four), "expected a tuple");
        malformed(&raw_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4,)", &four), "end of the header");
        malformed(&raw_npy("{'descr': '<f4', 'fortran_order': Nope, 'shape': (4,)}", &four), "`Nope`");
        malformed(&raw_npy("{'descr': 'f4', 'fortran_order': False, 'shape': (4,)}", &four), "not a NumPy type string");
        malformed(&raw_npy("{'descr': '^f4', 'fortran_order': False, 'shape': (4,)}", &four), "byte-order");
        malformed(&raw_npy("{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (4,)}", &four), "twice");
        malformed(&raw_npy("{'descr': 4, 'fortran_order': False, 'shape': (4,)}", &four), "expected a string");

        let corrupt = |b: &[u8], needle: &str, offset: u64| {
            let e = parse(b, p(), None).unwrap_err();
            let DatasetError::Corrupt { offset: o, .. } = &e else { panic!("{needle}: {e}") };
            assert_eq!(*o, offset, "{e}");
            assert!(e.to_string().contains(needle), "{needle}: {e}");
        };
        let good = npy_bytes("<f4", false, &[2, 2], &four, 1);
        corrupt(&good[..good.len() - 1], "needs 16 data bytes, found 15", good.len() as u64 - 1);
        corrupt(&[&good[..], &[0u8; 3]].concat(), "3 bytes after the data", good.len() as u64);
        corrupt(&good[..40], "header announces", 40);
        corrupt(&good[..9], "header length", 9);
    }

    fn fixture(name: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
    }

    /// The fixtures written by Python's `zipfile` as NumPy drives it (see
    /// `testdata/make_npz_fixtures.py`): stored, deflated, and deflated with data descriptors.
    #[test]
    fn python_zipfile_npz_fixtures() {
        let frames: Vec<f32> = (0..2)
            .flat_map(|t| {
                (0..2).flat_map(move |c| {
                    (0..3).flat_map(move |y| (0..4).map(move |x| (1000 * t + 100 * c + 10 * y + x) as f32))
                })
            })
            .collect();
        for name in ["frames_stored.npz", "frames_deflated.npz", "frames_streamed.npz"] {
            let path = fixture(name);
            let bytes = read_npz_member(&path, "frames.npy").unwrap_or_else(|e| panic!("{e}"));
            let a = parse(&bytes, &path, Some("frames.npy")).unwrap();
            assert_eq!(
                (a.version, a.dtype, a.shape.clone(), a.data_offset),
                ((1, 0), DType::F64, vec![2, 2, 3, 4], 128)
            );
            assert_eq!(a.to_f32(), frames, "{name}");
            let bytes = read_npz_member(&path, "labels.npy").unwrap();
            let l = parse(&bytes, &path, Some("labels.npy")).unwrap();
            assert_eq!((l.dtype, l.shape.clone(), l.to_f32()), (DType::I16, vec![3], vec![7.0, -1.0, 300.0]), "{name}");
        }
        // the test writer produces exactly what zipfile writes (stored members are deterministic)
        let f64s: Vec<u8> = frames.iter().flat_map(|&v| f64::from(v).to_le_bytes()).collect();
        let a = npy_bytes("<f8", false, &[2, 2, 3, 4], &f64s, 1);
        let l =
            npy_bytes("<i2", false, &[3], &[7i16, -1, 300].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(), 1);
        let ours = zip_bytes(&[("frames.npy", &a), ("labels.npy", &l)], Member::Stored);
        assert_eq!(ours, std::fs::read(fixture("frames_stored.npz")).unwrap());
        // and the deflated variants agree in everything but the compressed bytes
        let theirs = std::fs::read(fixture("frames_streamed.npz")).unwrap();
        let ours = zip_bytes(&[("frames.npy", &a), ("labels.npy", &l)], Member::DeflatedStreamed);
        assert_eq!(ours[..60], theirs[..60], "local header with ZIP64 extra field");
    }

    #[test]
    fn npz_members_stored_deflated_and_streamed() {
        let tmp = tempfile::tempdir().unwrap();
        let a = npy_bytes(
            "<f8",
            false,
            &[3],
            &[1.0f64, -2.0, 0.5].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<_>>(),
            1,
        );
        let b = npy_bytes("|u1", false, &[4], &[9, 8, 7, 6], 1);
        for how in [Member::Stored, Member::Deflated, Member::DeflatedStreamed] {
            let f = tmp.path().join(format!("{how:?}.npz"));
            std::fs::write(&f, zip_bytes(&[("frames.npy", &a), ("other.npy", &b)], how)).unwrap();
            assert_eq!(read_npz_member(&f, "frames.npy").unwrap(), a, "{how:?}");
            assert_eq!(read_npz_member(&f, "other.npy").unwrap(), b, "{how:?}");
            let e = read_npz_member(&f, "labels.npy").unwrap_err();
            assert!(matches!(e, DatasetError::Malformed { .. }), "{e}");
            assert!(e.to_string().contains("no member `labels.npy` (members: frames.npy, other.npy)"), "{e}");
        }
        // a deflated archive is smaller for repetitive data
        let zeros = npy_bytes("<f4", false, &[1000], &[0u8; 4000], 1);
        assert!(zip_bytes(&[("frames.npy", &zeros)], Member::Deflated).len() < 500);

        // not a zip at all, a truncated archive, flipped compressed bytes (CRC), a missing file
        let f = tmp.path().join("bad.npz");
        std::fs::write(&f, &a).unwrap();
        let e = read_npz_member(&f, "frames.npy").unwrap_err();
        assert!(matches!(e, DatasetError::Malformed { .. }) && e.to_string().contains("bad.npz"), "{e}");
        let good = zip_bytes(&[("frames.npy", &zeros)], Member::Stored);
        std::fs::write(&f, &good[..good.len() - 30]).unwrap();
        let e = read_npz_member(&f, "frames.npy").unwrap_err();
        assert!(e.to_string().contains("bad.npz"), "{e}");
        let mut flipped = good.clone();
        flipped[200] ^= 0xff;
        std::fs::write(&f, &flipped).unwrap();
        let e = read_npz_member(&f, "frames.npy").unwrap_err();
        assert!(matches!(e, DatasetError::Corrupt { .. }) && e.to_string().contains("bad.npz"), "{e}");
        let e = read_npz_member(&tmp.path().join("none.npz"), "frames.npy").unwrap_err();
        assert!(matches!(e, DatasetError::Io { .. }) && e.to_string().contains("none.npz"), "{e}");
    }

    /// Seen while running the loader property tests (and a sweep of single-byte flips): a
    /// corrupt DEFLATE stream (flate2's InvalidInput) and an unknown compression method in the
    /// central directory were reported as I/O errors ("cannot read ...: corrupt deflate
    /// stream"), not as a corrupt or an unsupported file.
    #[test]
    fn damaged_npz_members_are_corrupt_or_unsupported_not_io() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("frames.npz");
        let mut b = std::fs::read(fixture("frames_deflated.npz")).unwrap();
        b[98] ^= 0xff; // inside frames.npy's DEFLATE stream
        std::fs::write(&f, &b).unwrap();
        let e = read_npz_member(&f, "frames.npy").unwrap_err();
        assert!(matches!(e, DatasetError::Corrupt { .. }), "{e:?}");
        assert!(e.to_string().contains("frames.npz") && e.to_string().contains("frames.npy"), "{e}");
        let mut b = std::fs::read(fixture("frames_stored.npz")).unwrap();
        b[776] ^= 0x01; // frames.npy's compression method in the central directory: 0 -> 1
        std::fs::write(&f, &b).unwrap();
        let e = read_npz_member(&f, "frames.npy").unwrap_err();
        assert!(matches!(e, DatasetError::Unsupported { .. }), "{e:?}");
        assert!(e.to_string().contains("frames.npz") && e.to_string().contains("DEFLATE"), "{e}");
    }
}
