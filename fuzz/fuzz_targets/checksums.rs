//! The text of a `checksums.txt` as `aicr verify` reads it
//! (`bundler::checksum::parse`, after the UTF-8 check `verify` makes).
#![no_main]

use aicr::bundler::checksum;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(listed) = checksum::parse(text, "bundle/checksums.txt") {
        for (path, sum) in &listed {
            assert_eq!(sum.len(), 64, "{path}");
        }
    }
});
