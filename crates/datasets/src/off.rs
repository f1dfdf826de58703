//! OFF triangle/polygon meshes (the official ModelNet format) and area-weighted surface
//! sampling.
//!
//! Accepted: an `OFF` header line, optionally with the counts glued to it (`OFF490 518 0`, as
//! in some official ModelNet files) or on the same line after a space; the counts line
//! `vertices faces [edges]`; one vertex per line (the first three numbers are x y z, extra
//! numbers such as colours are ignored); one face per line (`k i1 … ik`, extra numbers are
//! ignored). `#` starts a comment; blank lines are skipped. Polygons are triangulated as fans
//! `(i1, ij, ij+1)`; faces with fewer than three vertices are skipped.

use std::path::Path;

use crate::error::DatasetError;
use crate::rng::Rng;

/// A triangulated mesh.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Mesh {
    /// Vertex positions.
    pub vertices: Vec<[f64; 3]>,
    /// Triangles as indices into `vertices` (always in range).
    pub triangles: Vec<[u32; 3]>,
}

fn malformed(path: &Path, line: usize, reason: impl Into<String>) -> DatasetError {
    DatasetError::Malformed { path: path.to_path_buf(), location: format!("line {line}"), reason: reason.into() }
}

/// Reads and triangulates an OFF file.
pub fn read_off(path: &Path) -> Result<Mesh, DatasetError> {
    let bytes = std::fs::read(path).map_err(|source| DatasetError::Io { path: path.to_path_buf(), source })?;
    parse_off(&String::from_utf8_lossy(&bytes), path)
}

/// Parses the text of an OFF file (`path` is only used in errors).
pub fn parse_off(text: &str, path: &Path) -> Result<Mesh, DatasetError> {
    // significant lines: (1-based line number, content without comment, trimmed)
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.split('#').next().unwrap_or("").trim()))
        .filter(|(_, l)| !l.is_empty());
    let last_line = text.lines().count().max(1);
    let Some((hline, header)) = lines.next() else {
        return Err(malformed(path, 1, "empty file: expected an `OFF` header"));
    };
    let Some(rest) = header.strip_prefix("OFF") else {
        return Err(malformed(path, hline, format!("expected an `OFF` header, found `{}`", clip(header))));
    };
    let (cline, counts) = if rest.trim().is_empty() {
        lines.next().ok_or_else(|| malformed(path, last_line, "truncated: no counts line after `OFF`"))?
    } else {
        (hline, rest.trim())
    };
    let nums: Vec<&str> = counts.split_whitespace().collect();
    if nums.len() < 2 {
        return Err(malformed(path, cline, format!("expected `vertices faces [edges]`, found `{}`", clip(counts))));
    }
    let parse_count = |t: &str| {
        t.parse::<usize>().map_err(|_| malformed(path, cline, format!("count `{t}` is not a non-negative integer")))
    };
    let nv = parse_count(nums[0])?;
    let nf = parse_count(nums[1])?;
    if nv > u32::MAX as usize {
        return Err(malformed(path, cline, format!("{nv} vertices is too many")));
    }
    // the counts come from the file: reserve no more than one entry per line it has
    let mut vertices = Vec::with_capacity(nv.min(last_line));
    for k in 0..nv {
        let (ln, l) = lines
            .next()
            .ok_or_else(|| malformed(path, last_line, format!("truncated: expected {nv} vertices, found {k}")))?;
        let mut v = [0f64; 3];
        let mut toks = l.split_whitespace();
        for c in &mut v {
            let t = toks.next().ok_or_else(|| malformed(path, ln, format!("vertex {k}: expected 3 coordinates")))?;
            // sampled points are float32: a coordinate beyond its range would sample to ±inf
            *c = t.parse::<f64>().ok().filter(|x| x.abs() <= f64::from(f32::MAX)).ok_or_else(|| {
                malformed(path, ln, format!("vertex {k}: `{}` is not a finite number in the float32 range", clip(t)))
            })?;
        }
        vertices.push(v);
    }
    let mut triangles = Vec::with_capacity(nf.min(last_line));
    for f in 0..nf {
        let (ln, l) = lines
            .next()
            .ok_or_else(|| malformed(path, last_line, format!("truncated: expected {nf} faces, found {f}")))?;
        let mut toks = l.split_whitespace();
        let k_tok = toks.next().unwrap_or_default();
        let k: usize = k_tok
            .parse()
            .map_err(|_| malformed(path, ln, format!("face {f}: vertex count `{}` is not an integer", clip(k_tok))))?;
        let mut idx = Vec::with_capacity(k.min(64));
        for _ in 0..k {
            let t = toks.next().ok_or_else(|| {
                malformed(path, ln, format!("face {f}: expected {k} vertex indices, found {}", idx.len()))
            })?;
            let i = t
                .parse::<usize>()
                .ok()
                .filter(|&i| i < nv)
                .ok_or_else(|| malformed(path, ln, format!("face {f}: index `{}` is not in 0..{nv}", clip(t))))?;
            idx.push(i as u32);
        }
        for j in 1..idx.len().saturating_sub(1) {
            triangles.push([idx[0], idx[j], idx[j + 1]]);
        }
    }
    Ok(Mesh { vertices, triangles })
}

/// First 40 characters of a token, for error messages.
fn clip(s: &str) -> String {
    s.chars().take(40).collect()
}

impl Mesh {
    /// Area of triangle `t`.
    pub fn triangle_area(&self, t: usize) -> f64 {
        let [a, b, c] = self.triangles[t].map(|i| self.vertices[i as usize]);
        let u = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let v = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let cx = u[1] * v[2] - u[2] * v[1];
        let cy = u[2] * v[0] - u[0] * v[2];
        let cz = u[0] * v[1] - u[1] * v[0];
        0.5 * (cx * cx + cy * cy + cz * cz).sqrt()
    }

    /// Total surface area.
    pub fn area(&self) -> f64 {
        (0..self.triangles.len()).map(|t| self.triangle_area(t)).sum()
    }

    /// Samples `n` points uniformly on the surface (point-major xyz): each point picks a
    /// triangle with probability proportional to its area, then a uniform point in it
    /// (`(1-√r1)·a + √r1(1-r2)·b + √r1·r2·c`). Draws three `f64` uniforms per point.
    ///
    /// Returns `None` when the mesh has no area (no triangle, or only degenerate ones).
    pub fn sample_surface(&self, n: usize, rng: &mut Rng) -> Option<Vec<f32>> {
        let mut cum = Vec::with_capacity(self.triangles.len());
        let mut total = 0f64;
        for t in 0..self.triangles.len() {
            total += self.triangle_area(t);
            cum.push(total);
        }
        if !(total > 0.0 && total.is_finite()) {
            return None;
        }
        let mut out = Vec::with_capacity(3 * n);
        for _ in 0..n {
            let x = rng.uniform_f64() * total;
            let t = cum.partition_point(|&c| c <= x).min(cum.len() - 1);
            let [a, b, c] = self.triangles[t].map(|i| self.vertices[i as usize]);
            let r1 = rng.uniform_f64().sqrt();
            let r2 = rng.uniform_f64();
            let (wa, wb, wc) = (1.0 - r1, r1 * (1.0 - r2), r1 * r2);
            for k in 0..3 {
                out.push((wa * a[k] + wb * b[k] + wc * c[k]) as f32);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::PathBuf;

    /// An axis-aligned box `[0,sx]×[0,sy]×[0,sz]` as an OFF file with quad faces, with the
    /// counts glued to the header when `glued` (as in some official ModelNet files).
    pub(crate) fn box_off(sx: f64, sy: f64, sz: f64, glued: bool) -> String {
        let mut s = String::from(if glued { "OFF8 6 0\n" } else { "OFF\n# a box\n8 6 0\n" });
        for i in 0..8 {
            let (x, y, z) = (((i & 1) as f64) * sx, ((i >> 1 & 1) as f64) * sy, ((i >> 2 & 1) as f64) * sz);
            s.push_str(&format!("{x} {y} {z}\n"));
        }
        for f in ["4 0 1 3 2", "4 4 5 7 6", "4 0 1 5 4", "4 2 3 7 6", "4 0 2 6 4", "4 1 3 7 5"] {
            s.push_str(f);
            s.push('\n');
        }
        s
    }

    fn p() -> PathBuf {
        PathBuf::from("mesh.off")
    }

    #[test]
    fn parses_glued_and_separate_headers_and_fans() {
        let a = parse_off(&box_off(1.0, 2.0, 3.0, true), &p()).unwrap();
        let b = parse_off(&box_off(1.0, 2.0, 3.0, false), &p()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.vertices.len(), 8);
        assert_eq!(a.vertices[7], [1.0, 2.0, 3.0]);
        assert_eq!(a.triangles.len(), 12, "6 quads -> 12 triangles");
        assert_eq!(a.triangles[0], [0, 1, 3]);
        assert_eq!(a.triangles[1], [0, 3, 2]);
        assert!((a.area() - 2.0 * (2.0 + 3.0 + 6.0)).abs() < 1e-12);
        // counts after a space on the header line, a pentagon, a skipped 2-gon, colours
        let text = "OFF 5 2 0\n0 0 0\n1 0 0 255 0 0\n1 1 0\n0 1 0\n-1 0.5 0\n5 0 1 2 3 4 1 1 1\n2 0 1\n";
        let m = parse_off(text, &p()).unwrap();
        assert_eq!(m.triangles, vec![[0, 1, 2], [0, 2, 3], [0, 3, 4]]);
        assert!((m.area() - 1.5).abs() < 1e-12);
    }

    #[test]
    fn errors_name_the_line() {
        let cases: &[(&str, &str, &str)] = &[
            ("", "line 1", "empty"),
            ("PLY\n", "line 1", "`OFF` header"),
            ("OFF\n", "line 1", "no counts"),
            ("OFF\n3\n", "line 2", "vertices faces"),
            ("OFF\n3 x 0\n", "line 2", "`x`"),
            ("OFF\n2 0 0\n0 0 0\n", "line 3", "expected 2 vertices, found 1"),
            ("OFF\n1 0 0\n0 0\n", "line 3", "3 coordinates"),
            ("OFF\n1 0 0\n0 nan 0\n", "line 3", "finite"),
            ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 3\n", "line 6", "not in 0..3"),
            ("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1\n", "line 6", "found 2"),
            ("OFF\n3 2 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n", "line 6", "expected 2 faces, found 1"),
        ];
        for (text, line, needle) in cases {
            match parse_off(text, &p()).unwrap_err() {
                DatasetError::Malformed { path, location, reason } => {
                    assert_eq!(path, p());
                    assert_eq!(&location, line, "{text:?}: {reason}");
                    assert!(reason.contains(needle), "{text:?}: {reason}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn sampling_is_area_weighted_seeded_and_on_surface() {
        // box 4 x 1 x 1: the two 4x1 faces at z=0 and z=1 hold 8 of the 18 area units
        let m = parse_off(&box_off(4.0, 1.0, 1.0, true), &p()).unwrap();
        let n = 6000;
        let a = m.sample_surface(n, &mut Rng::new(5)).unwrap();
        assert_eq!(a, m.sample_surface(n, &mut Rng::new(5)).unwrap());
        assert_ne!(a, m.sample_surface(n, &mut Rng::new(6)).unwrap());
        assert_eq!(a.len(), 3 * n);
        let eps = 1e-5;
        let mut top_bottom = 0;
        let mut end_caps = 0;
        for q in a.chunks(3) {
            let (x, y, z) = (q[0], q[1], q[2]);
            assert!(
                (-eps..=4.0 + eps).contains(&x) && (-eps..=1.0 + eps).contains(&y) && (-eps..=1.0 + eps).contains(&z)
            );
            let on = |v: f32, lo: f32, hi: f32| (v - lo).abs() < eps || (v - hi).abs() < eps;
            assert!(on(x, 0.0, 4.0) || on(y, 0.0, 1.0) || on(z, 0.0, 1.0), "{q:?} is not on the surface");
            if on(z, 0.0, 1.0) {
                top_bottom += 1;
            }
            if on(x, 0.0, 4.0) {
                end_caps += 1;
            }
        }
        let frac = top_bottom as f64 / n as f64;
        assert!((frac - 8.0 / 18.0).abs() < 0.03, "{frac}");
        let frac = end_caps as f64 / n as f64;
        assert!((frac - 2.0 / 18.0).abs() < 0.02, "{frac}");
        // uniform within a face: mean x over the top and bottom faces is about 2
        let xs: Vec<f32> = a.chunks(3).filter(|q| q[2].abs() < eps).map(|q| q[0]).collect();
        let mean = xs.iter().sum::<f32>() / xs.len() as f32;
        assert!((mean - 2.0).abs() < 0.1, "{mean}");
    }

    /// Found by the loader property tests: a vertex coordinate finite as f64 but beyond the
    /// float32 range (digits inserted into `1`) was accepted, and the sampled points were ±inf
    /// (NaN after normalisation).
    #[test]
    fn coordinates_beyond_float32_are_errors() {
        let text = "OFF\n3 1 0\n0 0 0\n1e39 0 0\n0 1 0\n3 0 1 2\n";
        match parse_off(text, &p()).unwrap_err() {
            DatasetError::Malformed { path, location, reason } => {
                assert_eq!((path, location.as_str()), (p(), "line 4"));
                assert!(reason.contains("`1e39`") && reason.contains("float32"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let edge = parse_off("OFF\n3 1 0\n0 0 0\n3.4e38 0 0\n0 -3.4e38 0\n3 0 1 2\n", &p()).unwrap();
        let pts = edge.sample_surface(64, &mut Rng::new(1)).unwrap();
        assert!(pts.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn zero_area_mesh_cannot_be_sampled() {
        let flat = parse_off("OFF\n3 1 0\n0 0 0\n1 1 1\n2 2 2\n3 0 1 2\n", &p()).unwrap();
        assert_eq!(flat.area(), 0.0);
        assert!(flat.sample_surface(10, &mut Rng::new(1)).is_none());
        assert!(Mesh::default().sample_surface(10, &mut Rng::new(1)).is_none());
    }
}
