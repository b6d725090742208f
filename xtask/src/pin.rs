//! The sha256 pin of the vendored registry inputs: `protocol/xml/SHA256SUMS` (the format of
//! `sha256sum`, so `cd protocol/xml && sha256sum -c SHA256SUMS` checks it too) lists every
//! `*.xml` file of the directory with its digest. `cargo xtask codegen [--check]` verifies it
//! before generating, so a changed, added or removed input fails with a message naming the
//! file instead of silently changing the generated code. SHA-256 is implemented here (FIPS
//! 180-4) to keep the generator's only dependency the pinned XML parser.

use std::path::Path;

/// The manifest's file name, next to the XML files.
pub const MANIFEST: &str = "SHA256SUMS";

const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// One 64-byte block into the state.
fn compress(h: &mut [u32; 8], block: &[u8]) {
    let mut w = [0u32; 64];
    for (i, c) in block.chunks_exact(4).enumerate() {
        w[i] = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    for i in 16..64 {
        let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
        let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16]
            .wrapping_add(s0)
            .wrapping_add(w[i - 7])
            .wrapping_add(s1);
    }
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = *h;
    for i in 0..64 {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = hh
            .wrapping_add(s1)
            .wrapping_add(ch)
            .wrapping_add(K[i])
            .wrapping_add(w[i]);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        hh = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (x, v) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
        *x = x.wrapping_add(v);
    }
}

/// The SHA-256 digest of `data`, as lowercase hex.
pub fn sha256_hex(data: &[u8]) -> String {
    let mut h = H0;
    let mut blocks = data.chunks_exact(64);
    for b in blocks.by_ref() {
        compress(&mut h, b);
    }
    let mut tail = blocks.remainder().to_vec();
    tail.push(0x80);
    while tail.len() % 64 != 56 {
        tail.push(0);
    }
    tail.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for b in tail.chunks_exact(64) {
        compress(&mut h, b);
    }
    h.iter().map(|x| format!("{x:08x}")).collect()
}

/// Checks `dir/SHA256SUMS` against every `*.xml` file of `dir` (`shown` is how messages name
/// the directory): each listed file must exist with that digest, and each XML file must be
/// listed. All problems are reported at once.
pub fn verify(dir: &Path, shown: &str) -> Result<(), String> {
    let manifest = std::fs::read_to_string(dir.join(MANIFEST))
        .map_err(|e| format!("{shown}/{MANIFEST}: {e} (the pin of the vendored XML inputs)"))?;
    let mut listed = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in manifest
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let Some((want, name)) = line.split_once("  ") else {
            problems.push(format!("{MANIFEST} line {}: not `<sha256>  <file>`", n + 1));
            continue;
        };
        listed.push(name.to_string());
        match std::fs::read(dir.join(name)) {
            Ok(bytes) => {
                let got = sha256_hex(&bytes);
                if got != want {
                    problems.push(format!(
                        "{shown}/{name} has sha256 {got}, but {MANIFEST} pins {want}"
                    ));
                }
            }
            Err(e) => problems.push(format!("{shown}/{name} (pinned in {MANIFEST}): {e}")),
        }
    }
    let entries = std::fs::read_dir(dir).map_err(|e| format!("{shown}: {e}"))?;
    for entry in entries {
        let name = entry
            .map_err(|e| format!("{shown}: {e}"))?
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.ends_with(".xml") && !listed.contains(&name) {
            problems.push(format!("{shown}/{name} is not pinned in {MANIFEST}"));
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "the vendored protocol inputs do not match their pin:\n  {}\nIf the change is intended, \
         record where the new file comes from in {shown}/README.md and update the pin \
         (`cd {shown} && sha256sum *.xml > {MANIFEST}`).",
        problems.join("\n  ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // FIPS 180-4 examples.
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            sha256_hex(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        // A length that needs a second padding block (56..64 bytes in the last block).
        assert_eq!(
            sha256_hex(&[b'a'; 60]),
            "11ee391211c6256460b6ed375957fadd8061cafbb31daf967db875aebd5aaad4"
        );
    }

    #[test]
    fn a_changed_added_or_missing_input_fails_with_its_name() {
        let dir = std::env::temp_dir().join(format!("xtask-pin-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.xml"), "abc").unwrap();
        let pin = format!("{}  a.xml\n", sha256_hex(b"abc"));
        std::fs::write(dir.join(MANIFEST), &pin).unwrap();
        assert_eq!(verify(&dir, "x"), Ok(()));

        std::fs::write(dir.join("a.xml"), "abd").unwrap();
        let err = verify(&dir, "x").unwrap_err();
        assert!(
            err.contains("x/a.xml has sha256 ") && err.contains("SHA256SUMS pins ba7816bf"),
            "{err}"
        );

        std::fs::write(dir.join("a.xml"), "abc").unwrap();
        std::fs::write(dir.join("b.xml"), "new").unwrap();
        let err = verify(&dir, "x").unwrap_err();
        assert!(err.contains("x/b.xml is not pinned in SHA256SUMS"), "{err}");

        std::fs::remove_file(dir.join("b.xml")).unwrap();
        std::fs::remove_file(dir.join("a.xml")).unwrap();
        let err = verify(&dir, "x").unwrap_err();
        assert!(err.contains("x/a.xml (pinned in SHA256SUMS)"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
