"""Writes the small `.npz` fixtures used by the `datasets` crate's tests (`npy` module).

They are written by Python's own `zipfile` module, called the way NumPy's `np.savez` and
`np.savez_compressed` call it (`numpy.lib.npyio._savez`: `zipf.open("frames.npy", "w",
force_zip64=True)`), with the `.npy` bytes laid out as `numpy.lib.format.write_array` writes
them (format 1.0; since NumPy 1.23 the header gets 21 - len(repr(shape[0])) spare spaces for
in-place growth, then is padded with spaces to a multiple of 64 bytes and ends in a newline).
Only the standard library is needed (no NumPy), so the ZIP side is the real writer's:

- frames_stored.npz: `np.savez` (ZIP_STORED).
- frames_deflated.npz: `np.savez_compressed` (ZIP_DEFLATED).
- frames_streamed.npz: `np.savez_compressed` into a non-seekable stream (e.g. a pipe), so
  zipfile writes data descriptors after the member data.

The array is `frames`, float64 of shape (2, 2, 3, 4) (SpikingJelly's [T, 2, H, W]) with element
(t, c, y, x) = 1000 t + 100 c + 10 y + x, plus an int16 `labels` array (3,) = [7, -1, 300].
Run: python3 make_npz_fixtures.py
"""
import struct
import zipfile


def npy(descr, shape, data):
    shape_repr = "(%d,)" % shape[0] if len(shape) == 1 else "(" + ", ".join(str(d) for d in shape) + ")"
    header = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_repr)
    header += " " * (21 - len(repr(shape[0])))
    pad = 64 - (10 + len(header) + 1) % 64
    header = header + " " * (pad % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1") + data


frames = npy(
    "<f8",
    (2, 2, 3, 4),
    b"".join(
        struct.pack("<d", 1000 * t + 100 * c + 10 * y + x)
        for t in range(2)
        for c in range(2)
        for y in range(3)
        for x in range(4)
    ),
)
labels = npy("<i2", (3,), struct.pack("<3h", 7, -1, 300))


class Unseekable:
    """A write-only stream without tell/seek, like a pipe."""

    def __init__(self, f):
        self.f = f

    def write(self, b):
        return self.f.write(b)

    def flush(self):
        self.f.flush()


def savez(target, compression):
    with zipfile.ZipFile(target, mode="w", compression=compression, allowZip64=True) as zipf:
        for name, data in (("frames.npy", frames), ("labels.npy", labels)):
            # date_time fixed so that the fixtures are reproducible
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = compression
            info.external_attr = 0o600 << 16
            with zipf.open(info, "w", force_zip64=True) as fid:
                fid.write(data)


savez("frames_stored.npz", zipfile.ZIP_STORED)
savez("frames_deflated.npz", zipfile.ZIP_DEFLATED)
with open("frames_streamed.npz", "wb") as f:
    savez(Unseekable(f), zipfile.ZIP_DEFLATED)
