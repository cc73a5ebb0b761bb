//! Real AVIF files from the shared corpus (`COMPRESSOR_CORPUS`): `other/avif` must mostly decode
//! (and a few named files must), `bad/avif` must fail cleanly or decode, quickly and without panics.

mod common;

use common::{corpus, mae};
use compressor_avif::{AvifError, decode, dimensions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MAX_PIXELS: u64 = 100_000_000;

fn avif_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn name(p: &Path) -> String {
    p.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn corpus_avif_files_decode_or_fail_cleanly() {
    let Some(root) = corpus() else { return };
    let files: Vec<PathBuf> = avif_files(&root.join("other/avif")).into_iter().filter(|p| name(p).ends_with(".avif")).collect();
    assert!(files.len() >= 10, "expected the corpus's AVIF files, found {}", files.len());
    let mut decoded = Vec::new();
    for path in &files {
        let data = std::fs::read(path).unwrap();
        match decode(&data, MAX_PIXELS) {
            Ok(d) => {
                assert_eq!(dimensions(&data), Ok((d.width, d.height)), "{}: dimensions() agrees with decode()", name(path));
                assert_eq!(d.rgba.len(), d.width as usize * d.height as usize * 4, "{}", name(path));
                assert!(matches!(d.bit_depth, 8 | 10 | 12), "{}", name(path));
                decoded.push(name(path));
            }
            Err(e @ (AvifError::Unsupported(_) | AvifError::Corrupt(_))) => eprintln!("{}: {e}", name(path)),
            Err(e) => panic!("{}: unexpected {e}", name(path)),
        }
    }
    eprintln!("decoded {} of {} corpus AVIF files", decoded.len(), files.len());
    assert!(decoded.len() * 4 >= files.len() * 3, "only {} of {} decoded", decoded.len(), files.len());
    for must in
        ["libavif__io_kodim03_yuv420_8bpc.avif", "pillow__hopper.avif", "libavif__paris_icc_exif_xmp.avif", "libavif__white_1x1.avif"]
    {
        assert!(decoded.iter().any(|n| n == must), "{must} must decode");
    }
}

#[test]
fn corpus_specific_files() {
    let Some(root) = corpus() else { return };
    let dir = root.join("other/avif");
    let read = |n: &str| std::fs::read(dir.join(n)).unwrap_or_else(|e| panic!("{n}: {e}"));

    let white = decode(&read("libavif__white_1x1.avif"), 1).expect("white 1x1");
    assert_eq!((white.width, white.height), (1, 1));
    // The file stores Y = 253 (lossy coding; libavif's decoders also give 253): white within 5.
    assert!(white.rgba[..3].iter().all(|&c| c >= 250) && white.rgba[3] == 255, "white and opaque: {:?}", white.rgba);

    let kodim = decode(&read("libavif__io_kodim03_yuv420_8bpc.avif"), MAX_PIXELS).expect("kodim03");
    assert_eq!((kodim.width, kodim.height, kodim.bit_depth), (768, 512, 8));

    let paris = decode(&read("libavif__paris_icc_exif_xmp.avif"), MAX_PIXELS).expect("paris");
    assert_eq!((paris.width, paris.height), (403, 302));
    let icc = paris.icc.expect("paris carries an ICC profile");
    assert!(icc.len() > 128 && &icc[36..40] == b"acsp", "the ICC profile is returned intact");

    let hopper = decode(&read("pillow__hopper.avif"), MAX_PIXELS).expect("hopper");
    assert_eq!((hopper.width, hopper.height), (128, 128));

    let cosmos = decode(&read("libavif__io_cosmos1650_yuv444_10bpc_p3pq.avif"), MAX_PIXELS).expect("10-bit 4:4:4");
    assert_eq!(cosmos.bit_depth, 10);
    let weld = decode(&read("libavif__weld_sato_12B_8B_q0.avif"), MAX_PIXELS).expect("12-bit");
    assert_eq!(weld.bit_depth, 12);

    // Transparency: some pixels are not opaque.
    let t = decode(&read("pillow__transparency.avif"), MAX_PIXELS).expect("transparency");
    assert!(t.rgba.chunks_exact(4).any(|p| p[3] < 255), "alpha is decoded");
    // A 'depth' auxiliary image is not alpha.
    let depth = decode(&read("libavif__colors-animated-8bpc-depth-exif-xmp.avif"), MAX_PIXELS).expect("animated with depth");
    assert!(depth.rgba.chunks_exact(4).all(|p| p[3] == 255), "a depth map is not taken for alpha");

    // Grids are assembled: a colour grid with one alpha image, and with an alpha grid whose
    // `dimg` lists one tile twice.
    for name in [
        "libavif__color_grid_alpha_nogrid.avif",
        "libavif__color_grid_alpha_grid_tile_shared_in_dimg.avif",
        "libavif__color_grid_alpha_grid_gainmap_nogrid.avif",
    ] {
        let grid = decode(&read(name), MAX_PIXELS).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(dimensions(&read(name)), Ok((grid.width, grid.height)), "{name}");
        assert!(grid.rgba.chunks_exact(4).any(|p| p[3] < 255), "{name}: alpha is decoded");
    }

    // The Pillow orientation set stores one photo with every irot/imir combination; decoded with
    // the transformations applied, all must show the same picture (they differ only by coding
    // error; a wrong orientation gives a mean error of about 70).
    let reference = decode(&read("pillow__rot0mir1.avif"), MAX_PIXELS).expect("rot0mir1");
    assert_eq!((reference.width, reference.height), (640, 427));
    for n in ["pillow__rot1mir0.avif", "pillow__rot2mir0.avif", "pillow__rot2mir1.avif", "pillow__rot3mir0.avif", "pillow__rot3mir1.avif"] {
        let d = decode(&read(n), MAX_PIXELS).unwrap_or_else(|e| panic!("{n}: {e}"));
        assert_eq!((d.width, d.height), (640, 427), "{n}");
        let e = mae(&d.rgba, &reference.rgba);
        assert!(e.iter().all(|&v| v < 15.0), "{n}: differs from rot0mir1 by {e:?}");
    }
}

#[test]
fn bad_avif_files_fail_cleanly_and_quickly() {
    let Some(root) = corpus() else { return };
    let files = avif_files(&root.join("bad/avif"));
    assert!(!files.is_empty(), "expected files in bad/avif");
    for path in &files {
        let data = std::fs::read(path).unwrap();
        let start = Instant::now();
        let _ = dimensions(&data);
        match decode(&data, MAX_PIXELS) {
            Ok(d) => assert_eq!(d.rgba.len(), d.width as usize * d.height as usize * 4, "{}", name(path)),
            Err(e) => eprintln!("{}: {e}", name(path)),
        }
        assert!(start.elapsed() < Duration::from_secs(5), "{} took {:?}", name(path), start.elapsed());
    }
}
