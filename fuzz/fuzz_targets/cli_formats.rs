//! `cli_formats`: the `quicseal` command's file formats (vectors/README.md, docs/formats.md)
//! on arbitrary text: each input is parsed as JSON and, if it is an object, checked as a
//! vector file and run as a seal job and as an open job.
//!
//! Properties: every path ends in a result or an `InputError` that says where, never a panic;
//! a document that seals fills in every packet it did not refuse.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use quicseal_userspace::formats::json::{self, Location};
use quicseal_userspace::formats::{job, vectors};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let at = Location::file(Path::new("fuzz.json"));
    let Ok(doc) = json::parse(text, &at) else {
        return;
    };
    let _ = vectors::check_document(&doc, &at);
    if let Ok(sealed) = job::seal_document(doc.clone(), &at) {
        let packets = sealed.doc["packets"].as_array().map_or(0, Vec::len);
        let filled = sealed.doc["packets"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|packet| packet.get("protected").is_some())
            .count();
        assert_eq!(
            filled + sealed.refused.len(),
            packets,
            "a packet neither sealed nor refused"
        );
    }
    let _ = job::open_document(doc, &at);
});
