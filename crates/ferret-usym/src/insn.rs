//! Whether an offset into a function starts an instruction: a uprobe in the
//! middle of one corrupts the traced program, so offsets are checked by
//! decoding the function from its start (x86-64, with iced-x86).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::Path;

use iced_x86::{Decoder, DecoderOptions};

use crate::elf::Function;

/// Decodes `f` in the file at `path` up to `offset`: true when an
/// instruction starts exactly there.
pub fn on_instruction_boundary(path: &Path, f: &Function, offset: u64) -> std::io::Result<bool> {
    let mut file = std::fs::File::open(path)?;
    file.seek(SeekFrom::Start(f.file_offset))?;
    let mut code = Vec::new();
    file.take(f.size.max(offset + 1)).read_to_end(&mut code)?;
    Ok(boundary_in(&code, offset))
}

/// Whether an instruction of `code` (decoded from its start) starts at
/// `offset`.
pub fn boundary_in(code: &[u8], offset: u64) -> bool {
    let mut decoder = Decoder::with_ip(64, code, 0, DecoderOptions::NONE);
    while decoder.can_decode() {
        let ip = decoder.ip();
        if ip >= offset {
            return ip == offset;
        }
        let _ = decoder.decode();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_of_known_code() {
        // push rbp; mov rbp, rsp; mov eax, 1; pop rbp; ret
        let code = [0x55, 0x48, 0x89, 0xe5, 0xb8, 1, 0, 0, 0, 0x5d, 0xc3];
        let starts: Vec<u64> = (0..code.len() as u64)
            .filter(|&o| boundary_in(&code, o))
            .collect();
        assert_eq!(starts, [0, 1, 4, 9, 10]);
        assert!(!boundary_in(&code, 50));
    }
}
