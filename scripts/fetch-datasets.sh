#!/usr/bin/env bash
# Download a benchmark dataset into the data root, verify it and unpack it into the layout
# that the `datasets` crate expects.
#
# Usage: scripts/fetch-datasets.sh NAME [NAME...]
#   NAME: mnist | fashion-mnist | cifar10 | cifar100
#       | modelnet10 | modelnet40 | modelnet40-h5 | modelnet40-off | scanobjectnn
#       | imagenet | torchvision-resnet18 | torchvision-resnet34
#   imagenet cannot be downloaded (registration at image-net.org): the script prints how to
#   prepare it. torchvision-resnet18/34 download torchvision's pretrained weights
#   (resnet18-f37072fd.pth, resnet34-b627a593.pth) into $ROOT/torchvision/.
# Data root: $SNN_DATA_DIR if set, else ./datasets (relative to the current directory).
# Needs: curl, sha256sum (or shasum), tar; unzip (or python3) for the point-cloud archives.
# See datasets/README.md.
set -euo pipefail

ROOT="${SNN_DATA_DIR:-datasets}"

usage() {
    echo "usage: $0 NAME [NAME...]" >&2
    echo "  NAME: mnist | fashion-mnist | cifar10 | cifar100" >&2
    echo "      | modelnet10 | modelnet40 | modelnet40-h5 | modelnet40-off | scanobjectnn" >&2
    echo "      | imagenet | torchvision-resnet18 | torchvision-resnet34" >&2
    echo "  downloads into \${SNN_DATA_DIR:-datasets} (now: $ROOT)" >&2
}

die() {
    echo "fetch-datasets: $*" >&2
    exit 1
}

sha256_of() {
    if command -v sha256sum >/dev/null 2>&1; then
        sha256sum "$1" | cut -d' ' -f1
    else
        shasum -a 256 "$1" | cut -d' ' -f1
    fi
}

# fetch URL DEST SHA256: download URL to DEST (unless DEST is already there and intact) and
# check its SHA-256. An empty SHA256 means no trusted checksum is known: the computed one is
# printed and the file is reported as unverified; a DEST already present is then used as it
# is (so an archive downloaded by hand from a mirror can be dropped in place).
fetch() {
    local url="$1" dest="$2" expected="$3" actual
    if [[ -f "$dest" && -n "$expected" && "$(sha256_of "$dest")" == "$expected" ]]; then
        echo "ok (already present): $dest"
        return 0
    fi
    if [[ -f "$dest" && -z "$expected" ]]; then
        echo "WARNING: using $dest as it is: UNVERIFIED (no known checksum); its SHA-256 is $(sha256_of "$dest")" >&2
        return 0
    fi
    echo "downloading $url"
    mkdir -p "$(dirname "$dest")"
    curl -fL --retry 3 --connect-timeout 30 -o "$dest.part" "$url" \
        || die "download failed: $url"
    actual="$(sha256_of "$dest.part")"
    if [[ -z "$expected" ]]; then
        echo "WARNING: $dest is UNVERIFIED (no known checksum); its SHA-256 is $actual" >&2
    elif [[ "$actual" != "$expected" ]]; then
        rm -f "$dest.part"
        die "checksum mismatch for $url: expected $expected, got $actual"
    fi
    mv "$dest.part" "$dest"
    echo "ok: $dest"
}

# IDX datasets: the loader reads the .gz files as they are.
fetch_idx() {
    local dir="$1" base="$2"
    shift 2
    local file sum
    while (($#)); do
        file="$1" sum="$2"
        shift 2
        fetch "$base/$file" "$dir/$file" "$sum"
    done
    echo "done: $dir"
}

# CIFAR: download the official binary archive and unpack it into the root.
fetch_cifar() {
    local archive="$1" sum="$2" subdir="$3" check="$4"
    if [[ -f "$ROOT/$subdir/$check" ]]; then
        echo "ok (already unpacked): $ROOT/$subdir"
        return 0
    fi
    fetch "https://www.cs.toronto.edu/~kriz/$archive" "$ROOT/$archive" "$sum"
    echo "unpacking $ROOT/$archive"
    tar -xzf "$ROOT/$archive" -C "$ROOT"
    [[ -f "$ROOT/$subdir/$check" ]] || die "unexpected archive layout: $ROOT/$subdir/$check missing"
    rm -f "$ROOT/$archive"
    echo "done: $ROOT/$subdir"
}

unzip_into() {
    local archive="$1" dir="$2"
    if command -v unzip >/dev/null 2>&1; then
        unzip -q -o "$archive" -d "$dir"
    elif command -v python3 >/dev/null 2>&1; then
        python3 -m zipfile -e "$archive" "$dir"
    else
        die "unzip (or python3) is required to unpack $archive"
    fi
}

# Point-cloud archives (zip): download ARCHIVE from URL into the root, unpack it there and
# check that CHECK (a path relative to the root) exists. No checksums are published for these
# archives, so SHA256 is usually empty and the download is reported as unverified.
fetch_zip() {
    local url="$1" archive="$2" sum="$3" check="$4"
    if [[ -e "$ROOT/$check" ]]; then
        echo "ok (already unpacked): $ROOT/$check"
        return 0
    fi
    fetch "$url" "$ROOT/$archive" "$sum"
    echo "unpacking $ROOT/$archive"
    unzip_into "$ROOT/$archive" "$ROOT"
    [[ -e "$ROOT/$check" ]] || die "unexpected archive layout: $ROOT/$check missing"
    rm -f "$ROOT/$archive"
    echo "done: $ROOT/$check"
}

# torchvision weights: the 8 hex digits before .pth are the start of the file's SHA-256
# (torch.hub's check_hash), so that prefix is verified.
fetch_torchvision() {
    local file="$1" dest="$ROOT/torchvision/$1" prefix actual
    prefix="${file##*-}"
    prefix="${prefix%.pth}"
    if [[ -f "$dest" && "$(sha256_of "$dest")" == "$prefix"* ]]; then
        echo "ok (already present): $dest"
        return 0
    fi
    mkdir -p "$ROOT/torchvision"
    echo "downloading https://download.pytorch.org/models/$file"
    curl -fL --retry 3 --connect-timeout 30 -o "$dest.part" "https://download.pytorch.org/models/$file" \
        || die "download failed: $file"
    actual="$(sha256_of "$dest.part")"
    if [[ "$actual" != "$prefix"* ]]; then
        rm -f "$dest.part"
        die "checksum mismatch for $file: SHA-256 $actual does not start with $prefix"
    fi
    mv "$dest.part" "$dest"
    echo "ok: $dest (use it as model.weights with model name ${file%%-*})"
}

imagenet_steps() {
    cat >&2 <<EOF
ImageNet (ILSVRC-2012) cannot be downloaded by this script: it needs an account at
https://image-net.org (or the Kaggle "ImageNet Object Localization Challenge").
Prepare it in torchvision's ImageFolder layout:
  $ROOT/imagenet/train/<wnid>/*.JPEG   and   $ROOT/imagenet/val/<wnid>/*.JPEG
e.g. with ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar and ILSVRC2012_devkit_t12.tar.gz
in $ROOT/imagenet:
  python -c "import torchvision as tv; [tv.datasets.ImageNet('$ROOT/imagenet', split=s) for s in ('train', 'val')]"
See datasets/README.md ("ImageNet") for doing it without torchvision, the Kaggle layout and
memory needs (the 50 000 validation images take ~7.5 GB in memory).
EOF
}

fetch_one() {
    case "$1" in
        mnist)
            fetch_idx "$ROOT/mnist" "https://ossci-datasets.s3.amazonaws.com/mnist" \
                train-images-idx3-ubyte.gz 440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609 \
                train-labels-idx1-ubyte.gz 3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c \
                t10k-images-idx3-ubyte.gz 8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6 \
                t10k-labels-idx1-ubyte.gz f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6
            ;;
        fashion-mnist)
            fetch_idx "$ROOT/fashion-mnist" "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com" \
                train-images-idx3-ubyte.gz 3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84 \
                train-labels-idx1-ubyte.gz a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845 \
                t10k-images-idx3-ubyte.gz 346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073 \
                t10k-labels-idx1-ubyte.gz 67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5
            echo "(on Debian/Ubuntu, 'apt-get install dataset-fashion-mnist' is an alternative)"
            ;;
        cifar10)
            fetch_cifar cifar-10-binary.tar.gz \
                c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd \
                cifar-10-batches-bin test_batch.bin
            ;;
        cifar100)
            fetch_cifar cifar-100-binary.tar.gz \
                58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec \
                cifar-100-binary test.bin
            ;;
        modelnet10)
            # Official meshes (OFF); the loader samples 1,024 points per mesh, seeded.
            fetch_zip http://3dvision.princeton.edu/projects/2014/3DShapeNets/ModelNet10.zip \
                ModelNet10.zip "" ModelNet10/chair/test
            ;;
        modelnet40)
            # PointNet++'s resampled text layout (10,000 points + normals per shape, 1.6 GB).
            # If the host is down, put a mirror's copy at $ROOT/modelnet40_normal_resampled.zip.
            fetch_zip https://shapenet.cs.stanford.edu/media/modelnet40_normal_resampled.zip \
                modelnet40_normal_resampled.zip "" modelnet40_normal_resampled/modelnet40_test.txt
            ;;
        modelnet40-h5)
            # PointNet's HDF5 files (2,048 points per shape); loaded under the name modelnet40.
            fetch_zip https://shapenet.cs.stanford.edu/media/modelnet40_ply_hdf5_2048.zip \
                modelnet40_ply_hdf5_2048.zip "" modelnet40_ply_hdf5_2048/ply_data_test0.h5
            ;;
        modelnet40-off)
            # Official meshes (OFF, 2 GB); loaded under the name modelnet40.
            fetch_zip http://modelnet.cs.princeton.edu/ModelNet40.zip ModelNet40.zip "" ModelNet40/chair/test
            ;;
        scanobjectnn)
            echo "ScanObjectNN is distributed under its authors' terms of use" \
                "(https://hkust-vgd.github.io/scanobjectnn/); downloading means accepting them."
            fetch_zip https://hkust-vgd.ust.hk/scanobjectnn/h5_files.zip h5_files.zip "" \
                h5_files/main_split/test_objectdataset_augmentedrot_scale75.h5
            ;;
        imagenet)
            imagenet_steps
            die "imagenet must be downloaded and prepared by hand (steps above)"
            ;;
        torchvision-resnet18)
            fetch_torchvision resnet18-f37072fd.pth
            ;;
        torchvision-resnet34)
            fetch_torchvision resnet34-b627a593.pth
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            usage
            die "unknown dataset '$1'"
            ;;
    esac
}

if (($# == 0)); then
    usage
    exit 2
fi
command -v curl >/dev/null 2>&1 || die "curl is required"
for name in "$@"; do
    fetch_one "$name"
done
