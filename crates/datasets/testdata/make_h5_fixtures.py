"""Writes the two small HDF5 fixtures used by the `datasets` crate's tests.

They are written by h5py/libhdf5 (not by the Rust reader under test) in the formats of the
published files, so the tests check that the pure-Rust reader reads what libhdf5 writes:

- ply_data_test0.h5: like ModelNet40 `modelnet40_ply_hdf5_2048/ply_data_*.h5` (PointNet's
  `save_h5`): `data` float32 [N, P, 3] gzip level 4 in several chunks of [2, 8, 2] (partial edge
  chunks included, as h5py's automatic chunking gives for the real shapes), `label` uint8 [N, 1],
  plus `faceId` int32 and `normal` float32 datasets that the loader ignores.
- test_objectdataset_augmentedrot_scale75.h5: like ScanObjectNN `main_split/*.h5`: contiguous
  `data` float32 [N, P, 3], `label` int64 [N], `mask` int32 [N, P].

Sample i, point j has coordinates (i + j/16, -j/8, 2*i - j/32) (exact in float32).
Run: python3 make_h5_fixtures.py  (needs h5py and numpy; h5py's default format, libver earliest)
"""
import h5py
import numpy as np

N, P = 3, 16
data = np.zeros((N, P, 3), dtype=np.float32)
for i in range(N):
    for j in range(P):
        data[i, j] = (i + j / 16, -j / 8, 2 * i - j / 32)

with h5py.File("ply_data_test0.h5", "w") as f:
    f.create_dataset("data", data=data, chunks=(2, 8, 2), compression="gzip", compression_opts=4, dtype="float32")
    f.create_dataset("faceId", data=np.zeros((N, P), np.int32), compression="gzip", compression_opts=1)
    f.create_dataset("label", data=np.array([[4], [39], [0]], np.uint8), compression="gzip", compression_opts=1)
    f.create_dataset("normal", data=data, compression="gzip", compression_opts=4, dtype="float32")

with h5py.File("test_objectdataset_augmentedrot_scale75.h5", "w") as f:
    f["data"] = data
    f["label"] = np.array([14, 0, 7], np.int64)
    f["mask"] = np.zeros((N, P), np.int32)
